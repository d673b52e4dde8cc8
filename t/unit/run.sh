#!/bin/sh
# Builds and runs the unit tests of the Unified API translators (with
# AddressSanitizer, LeakSanitizer and UBSan): sh t/unit/run.sh
#
# NGINX_BUILD: the configured nginx tree (default build/nginx, made by
# "make"); CC: the compiler (default gcc).

set -e

cd "$(dirname "$0")/../.."

NGINX_BUILD=${NGINX_BUILD:-build/nginx}
CC=${CC:-gcc}
OUT=build/unit

if [ ! -f "$NGINX_BUILD/objs/ngx_auto_config.h" ]; then
    echo "t/unit/run.sh: no configured nginx tree in $NGINX_BUILD" \
         "(run make first)" >&2
    exit 1
fi

mkdir -p "$OUT"

INCS="-I $NGINX_BUILD/src/core -I $NGINX_BUILD/src/event
      -I $NGINX_BUILD/src/event/modules -I $NGINX_BUILD/src/os/unix
      -I $NGINX_BUILD/objs -I $NGINX_BUILD/src/http
      -I $NGINX_BUILD/src/http/modules -I ngx_ai_gateway -I t/unit"

SRCS="ngx_ai_gateway/ngx_http_ai_gateway_sse.c
      ngx_ai_gateway/ngx_http_ai_gateway_openai.c
      ngx_ai_gateway/ngx_http_ai_gateway_anthropic.c
      ngx_ai_gateway/ngx_http_ai_gateway_gemini.c
      ngx_ai_gateway/ngx_http_ai_gateway_translate.c
      t/unit/shim.c t/unit/unit.c t/unit/test_sse.c t/unit/test_translate.c"

# the warnings of nginx's own build (objs/Makefile): unused parameters are
# allowed, handlers share signatures

# shellcheck disable=SC2086
$CC -Wall -Wextra -Wno-unused-parameter -Werror -fsanitize=address,undefined \
    -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1 \
    $INCS $SRCS -o "$OUT/unit" -lyajl

ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "$OUT/unit"
