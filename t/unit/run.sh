#!/bin/sh
# Copyright (C) ngx_ai_gateway contributors

# Builds and runs the unit tests of the Unified API translators (with
# AddressSanitizer, LeakSanitizer and UBSan): sh t/unit/run.sh
#
# NGINX_BUILD: the configured nginx tree (default build/nginx, made by
# "make"); CC: the compiler (default gcc).

set -e

cd "$(dirname "$0")/../.."

CC=${CC:-gcc}
OUT=build/unit

. t/unit/env.sh

mkdir -p "$OUT"

SRCS="$SRCS t/unit/unit.c t/unit/test_sse.c t/unit/test_translate.c
      t/unit/test_check.c t/unit/test_cache_entry.c t/unit/test_json.c
      t/unit/test_log.c t/unit/test_usage.c"

# the warnings of nginx's own build (objs/Makefile): unused parameters are
# allowed, handlers share signatures

# shellcheck disable=SC2086
$CC -Wall -Wextra -Wno-unused-parameter -Werror -fsanitize=address,undefined \
    -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1 \
    $INCS $SRCS -o "$OUT/unit" -lyajl -lm

ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "$OUT/unit"
