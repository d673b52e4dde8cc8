
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/* byte 0: the provider, bytes 1-2: the HTTP status; then an error body */


#include "fuzz.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ngx_str_t                          out;
    ngx_uint_t                         status;
    ngx_pool_t                        *pool;
    ngx_http_ai_gateway_translator_t  *t;

    if (size < 3) {
        return 0;
    }

    t = fuzz_translator(data[0]);
    status = (data[1] << 8 | data[2]) % 1000;

    pool = ngx_create_pool(4096, NULL);

    /* an error body always becomes an OpenAI error object */

    if (t->error(pool, status, (u_char *) data + 3, size - 3, &out)
        != NGX_OK)
    {
        abort();
    }

    fuzz_json(out.data, out.len);

    if (out.len < 10 || ngx_strncmp(out.data, "{\"error\":{", 10) != 0) {
        abort();
    }

    ngx_destroy_pool(pool);

    return 0;
}
