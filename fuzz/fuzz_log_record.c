
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/*
 * The whole input is a log record as read back from a store (the zone or
 * Redis).  The decoder must never read outside it (ASan); what it accepts
 * is written again by the encoder and reads back the same, its JSON is
 * written (valid UTF-8 whatever the strings hold), the filters and sort
 * keys take it.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_gateway_log.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ngx_str_t                          bytes, json, s;
    ngx_uint_t                         i;
    ngx_pool_t                        *pool;
    ngx_array_t                        filters;
    ngx_http_ai_gateway_gen_t          gen;
    ngx_http_ai_gateway_log_sort_t     a, b;
    ngx_http_ai_gateway_log_record_t   rec, d;
    ngx_http_ai_gateway_query_filter_t *f;
    ngx_http_ai_gateway_query_value_t  v;

    if (ngx_http_ai_gateway_log_decode((u_char *) data, size, &rec)
        != NGX_OK)
    {
        return 0;
    }

    pool = ngx_create_pool(4096, NULL);
    if (pool == NULL) {
        return 0;
    }

    if (ngx_http_ai_gateway_log_encode(pool, &rec, &bytes) != NGX_OK) {
        goto done;
    }

    if (bytes.len != size || ngx_memcmp(bytes.data, data, size) != 0
        || ngx_http_ai_gateway_log_decode(bytes.data, bytes.len, &d)
           != NGX_OK)
    {
        abort();
    }

    for (i = 0; i < 2; i++) {
        if (ngx_http_ai_gateway_gen_init(&gen, pool) != NGX_OK) {
            goto done;
        }

        if (ngx_http_ai_gateway_log_json(&gen, &rec, i) != NGX_OK
            || ngx_http_ai_gateway_gen_done(&gen, &json) == NGX_DECLINED)
        {
            /* the generator refused the record's bytes */
            abort();
        }
    }

    /* every key's filter runs on it */

    if (ngx_array_init(&filters, pool, 1,
                       sizeof(ngx_http_ai_gateway_query_filter_t))
        != NGX_OK)
    {
        goto done;
    }

    f = ngx_array_push(&filters);
    if (f == NULL) {
        goto done;
    }

    ngx_memzero(&v, sizeof(v));
    v.type = NGX_HTTP_AI_GATEWAY_VALUE_STRING;
    ngx_str_set(&s, "a");
    v.str = s;

    for (i = 0; ngx_http_ai_gateway_log_keys[i].name.len; i++) {
        f->key = i;
        f->op = (ngx_http_ai_gateway_log_keys[i].type
                 == NGX_HTTP_AI_GATEWAY_KEY_STRING)
                ? NGX_HTTP_AI_GATEWAY_OP_CONTAINS : NGX_HTTP_AI_GATEWAY_OP_EQ;
        f->nvalues = 1;
        f->values = &v;

        (void) ngx_http_ai_gateway_log_match(pool, &rec, &filters, &s);
    }

    for (i = 0; ngx_http_ai_gateway_log_orders[i].len; i++) {
        ngx_http_ai_gateway_log_sort_key(&rec, i, &a);
        ngx_http_ai_gateway_log_sort_key(&d, i, &b);

        if (ngx_http_ai_gateway_log_sort_cmp(&a, &b, i) != 0) {
            abort();
        }
    }

done:

    ngx_destroy_pool(pool);

    return 0;
}
