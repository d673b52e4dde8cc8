
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/* byte 0: the provider; then a native response body */


#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ngx_str_t                          out;
    ngx_int_t                          rc;
    ngx_pool_t                        *pool;
    ngx_http_ai_gateway_compat_t       c;
    ngx_http_ai_gateway_translator_t  *t;

    if (size < 1) {
        return 0;
    }

    t = fuzz_translator(data[0]);
    fuzz_compat(&c, 0);

    pool = ngx_create_pool(4096, NULL);

    rc = t->response(pool, (u_char *) data + 1, size - 1, &c, &out);

    if (rc == NGX_OK) {
        fuzz_json(out.data, out.len);

    } else if (rc != NGX_DECLINED) {
        abort();
    }

    ngx_destroy_pool(pool);

    return 0;
}
