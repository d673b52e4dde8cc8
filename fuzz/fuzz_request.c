
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/* an OpenAI request (any bytes) to both native requests */


#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    yajl_val                           req;
    ngx_int_t                          rc;
    ngx_str_t                          out, err;
    ngx_uint_t                         i;
    ngx_pool_t                        *pool;
    ngx_http_ai_gateway_compat_t       c;
    ngx_http_ai_gateway_translator_t  *t;

    pool = ngx_create_pool(4096, NULL);

    if (ngx_http_ai_gateway_json_parse(pool, (u_char *) data, size, &req)
        != NGX_OK)
    {
        ngx_destroy_pool(pool);
        return 0;
    }

    for (i = 0; i < 2; i++) {
        t = fuzz_translator(i);
        fuzz_compat(&c, 0);

        ngx_str_null(&out);
        ngx_str_null(&err);

        rc = t->request(pool, req, &c, &out, &err);

        if (rc == NGX_OK) {
            fuzz_json(out.data, out.len);

        } else if (rc != NGX_DECLINED || err.len == 0) {
            abort();
        }
    }

    ngx_destroy_pool(pool);

    return 0;
}
