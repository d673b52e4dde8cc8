
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/*
 * The whole input is a cache entry as read back from a store.  The decoder
 * must never read outside it (ASan), and what it accepts must be safe to
 * send: a 2xx status but 204, names and values that pass the validator,
 * only the headers the cache keeps, the body the rest of the input.  An
 * accepted entry, written again by the encoder, decodes to the same thing.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_gateway_check.h"
#include "ngx_http_ai_gateway_cache_entry.h"


static void
fuzz_same(ngx_str_t *a, ngx_str_t *b)
{
    if (a->len != b->len
        || (a->len && ngx_memcmp(a->data, b->data, a->len) != 0))
    {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                             *buf, *p;
    size_t                              len;
    ngx_uint_t                          i;
    ngx_http_ai_gateway_cache_entry_t   e, e2;

    if (ngx_http_ai_gateway_cache_entry_decode((u_char *) data, size, &e)
        != NGX_OK)
    {
        if (e.error == NULL) {
            abort();
        }

        return 0;
    }

    if (e.status < 200 || e.status > 299 || e.status == 204
        || e.nheaders > NGX_HTTP_AI_GATEWAY_CACHE_HEADERS
        || e.body.data + e.body.len != data + size
        || e.body.data < data)
    {
        abort();
    }

    if (e.has_content_type
        && ngx_http_ai_gateway_check_value(e.content_type.data,
                                           e.content_type.len)
           != NGX_OK)
    {
        abort();
    }

    for (i = 0; i < e.nheaders; i++) {
        if (ngx_http_ai_gateway_check_name(e.headers[i].key.data,
                                           e.headers[i].key.len)
            != NGX_OK
            || ngx_http_ai_gateway_check_value(e.headers[i].value.data,
                                               e.headers[i].value.len)
               != NGX_OK
            || !ngx_http_ai_gateway_cache_entry_keeps(e.headers[i].key.data,
                                                      e.headers[i].key.len))
        {
            abort();
        }
    }

    /* written again: the encoder takes it, and it reads back the same */

    if (ngx_http_ai_gateway_cache_entry_check(&e) != NGX_OK) {
        abort();
    }

    len = ngx_http_ai_gateway_cache_entry_head_size(&e);

    buf = malloc(len + e.body.len);
    if (buf == NULL) {
        return 0;
    }

    p = ngx_http_ai_gateway_cache_entry_write_head(buf, &e);

    if ((size_t) (p - buf) != len) {
        abort();
    }

    ngx_http_ai_gateway_cache_entry_set_body(buf, len, e.body.len);
    ngx_memcpy(p, e.body.data, e.body.len);

    if (ngx_http_ai_gateway_cache_entry_decode(buf, len + e.body.len, &e2)
        != NGX_OK
        || e2.status != e.status
        || e2.nheaders != e.nheaders
        || e2.has_content_type != e.has_content_type)
    {
        abort();
    }

    fuzz_same(&e2.content_type, &e.content_type);
    fuzz_same(&e2.body, &e.body);

    for (i = 0; i < e.nheaders; i++) {
        fuzz_same(&e2.headers[i].key, &e.headers[i].key);
        fuzz_same(&e2.headers[i].value, &e.headers[i].value);
    }

    free(buf);

    return 0;
}
