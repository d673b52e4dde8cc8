# Copyright (C) ngx_ai_gateway contributors

# Sourced by t/unit/run.sh and fuzz/run.sh: the nginx headers of the
# configured tree and the translator sources, compiled outside nginx with
# t/unit/shim.c standing in for nginx's core functions, and
# t/unit/yajl_ref.c, yajl's tree parser and generator on malloc() for
# comparisons.  The bottom layer of the module (translators, SSE, JSON,
# steps, check, the meter, prices, metadata) includes nothing of HTTP:
# the HTTP headers are not on the include path, so that it stays so.

NGINX_BUILD=${NGINX_BUILD:-build/nginx}

if [ ! -f "$NGINX_BUILD/objs/ngx_auto_config.h" ]; then
    echo "$0: no configured nginx tree in $NGINX_BUILD (run make first)" >&2
    exit 1
fi

INCS="-I $NGINX_BUILD/src/core -I $NGINX_BUILD/src/event
      -I $NGINX_BUILD/src/event/modules -I $NGINX_BUILD/src/os/unix
      -I $NGINX_BUILD/objs -I ngx_ai_gateway -I t/unit"

SRCS="ngx_ai_gateway/ngx_http_ai_gateway_sse.c
      ngx_ai_gateway/ngx_http_ai_gateway_yajl.c
      ngx_ai_gateway/ngx_http_ai_gateway_json.c
      ngx_ai_gateway/ngx_http_ai_gateway_canonical.c
      ngx_ai_gateway/ngx_http_ai_gateway_openai.c
      ngx_ai_gateway/ngx_http_ai_gateway_completion.c
      ngx_ai_gateway/ngx_http_ai_gateway_chunk.c
      ngx_ai_gateway/ngx_http_ai_gateway_embed.c
      ngx_ai_gateway/ngx_http_ai_gateway_anthropic.c
      ngx_ai_gateway/ngx_http_ai_gateway_gemini.c
      ngx_ai_gateway/ngx_http_ai_gateway_translate.c
      ngx_ai_gateway/ngx_http_ai_gateway_check.c
      ngx_ai_gateway/ngx_http_ai_gateway_buf.c
      ngx_ai_gateway/ngx_http_ai_gateway_steps.c
      ngx_ai_gateway/ngx_http_ai_gateway_cache_entry.c
      ngx_ai_gateway/ngx_http_ai_gateway_usage.c
      ngx_ai_gateway/ngx_http_ai_gateway_price.c
      ngx_ai_gateway/ngx_http_ai_gateway_metadata.c
      ngx_ai_gateway/ngx_http_ai_gateway_log_record.c
      ngx_ai_gateway/ngx_http_ai_gateway_query.c
      t/unit/shim.c
      t/unit/yajl_ref.c"
