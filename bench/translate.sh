#!/bin/sh
# Copyright (C) ngx_ai_gateway contributors

# bench/translate.sh [EVENTS [ROUNDS]]: the CPU time of the /compat stream
# translators alone (bench/translate.c), built -O2 as the module is, on
# nginx's own pools (src/core/ngx_palloc.c of the configured tree).
#
# NGINX_BUILD: the configured nginx tree (default build/nginx, made by
# "make"); NGINX_SRC: a tree of nginx's C sources, for ngx_palloc.c (the
# configured tree of Debian's nginx-dev has only headers; apt-get source
# nginx, or the same version from nginx.org); CC: the compiler (gcc).

set -e

cd "$(dirname "$0")/.."

CC=${CC:-gcc}
OUT=build/bench

. t/unit/env.sh

mkdir -p "$OUT"

PALLOC=${NGINX_SRC:-$NGINX_BUILD}/src/core/ngx_palloc.c

if [ ! -f "$PALLOC" ]; then
    echo "bench/translate.sh: no $PALLOC: set NGINX_SRC to nginx's sources" >&2
    exit 1
fi

# shellcheck disable=SC2086
$CC -O2 -g -Wall -Wno-unused-parameter -DNGX_SHIM_REAL_POOL=1 \
    $INCS $SRCS "$PALLOC" bench/translate_os.c \
    bench/translate.c -o "$OUT/translate" -lyajl -lm

"$OUT/translate" "$@"
