
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#ifndef _FUZZ_H_INCLUDED_
#define _FUZZ_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <yajl/yajl_parse.h>

#include "ngx_http_ai_gateway_openai.h"


/* the first input byte: bit 0 the provider, bit 1 a flag */

static ngx_inline ngx_http_ai_gateway_translator_t *
fuzz_translator(const uint8_t b)
{
    ngx_str_t  name;

    if (b & 1) {
        ngx_str_set(&name, "gemini");

    } else {
        ngx_str_set(&name, "anthropic");
    }

    return ngx_http_ai_gateway_translator(&name);
}


static ngx_inline void
fuzz_compat(ngx_http_ai_gateway_compat_t *c, ngx_uint_t include_usage)
{
    ngx_memzero(c, sizeof(ngx_http_ai_gateway_compat_t));

    ngx_str_set(&c->model, "fuzz-model");
    ngx_str_set(&c->id, "chatcmpl-fuzz");
    c->created = 1700000000;
    c->stream = 1;
    c->include_usage = include_usage;
}


/* every output document is one valid JSON text, valid UTF-8 */

static ngx_inline void
fuzz_json(const u_char *p, size_t len)
{
    yajl_handle  h;
    yajl_status  st;

    h = yajl_alloc(NULL, NULL, NULL);

    st = yajl_parse(h, p, len);
    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
    }

    yajl_free(h);

    if (st != yajl_status_ok) {
        fprintf(stderr, "invalid JSON output: %.*s\n", (int) len, p);
        abort();
    }
}


#endif /* _FUZZ_H_INCLUDED_ */
