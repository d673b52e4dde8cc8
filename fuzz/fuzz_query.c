
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/*
 * The whole input is the query string of a Logs API list: the arguments
 * split and unescaped, the filters parsed in either encoding (JSON or the
 * SDKs').  Nothing may read outside the input (ASan); what is accepted
 * holds keys of the table, the API's operators, at most the bounds of
 * filters and values, and is matched against a record; what is refused
 * says why.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_gateway_log.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ngx_int_t                            rc;
    ngx_str_t                            q, err;
    ngx_uint_t                           i, nkeys;
    ngx_pool_t                          *pool;
    ngx_array_t                          args, filters;
    ngx_http_ai_gateway_log_record_t     rec;
    ngx_http_ai_gateway_query_filter_t  *f;

    pool = ngx_create_pool(4096, NULL);
    if (pool == NULL) {
        return 0;
    }

    q.data = (u_char *) data;
    q.len = size;

    ngx_str_null(&err);

    if (ngx_array_init(&filters, pool, 4,
                       sizeof(ngx_http_ai_gateway_query_filter_t))
        != NGX_OK
        || ngx_http_ai_gateway_query_args(pool, &q, &args) != NGX_OK)
    {
        goto done;
    }

    rc = ngx_http_ai_gateway_query_filters(pool, &args,
                                           ngx_http_ai_gateway_log_keys,
                                           &filters, &err);

    if (rc == NGX_DECLINED && err.len == 0) {
        abort();
    }

    if (rc != NGX_OK) {
        goto done;
    }

    for (nkeys = 0; ngx_http_ai_gateway_log_keys[nkeys].name.len; nkeys++) {
        /* void */
    }

    if (filters.nelts > NGX_HTTP_AI_GATEWAY_QUERY_MAX_FILTERS) {
        abort();
    }

    f = filters.elts;

    for (i = 0; i < filters.nelts; i++) {
        if (f[i].key >= nkeys || f[i].op > NGX_HTTP_AI_GATEWAY_OP_GT
            || f[i].nvalues == 0
            || f[i].nvalues > NGX_HTTP_AI_GATEWAY_QUERY_MAX_VALUES)
        {
            abort();
        }
    }

    ngx_memzero(&rec, sizeof(rec));
    ngx_memcpy(rec.id, "01ARZ3NDEKTSV4RRFFQ69G5FAV", 26);
    ngx_str_set(&rec.str[NGX_HTTP_AI_GATEWAY_LOG_PROVIDER], "openai");
    ngx_str_set(&rec.str[NGX_HTTP_AI_GATEWAY_LOG_METADATA],
                "{\"user\":\"alice\",\"n\":5}");

    (void) ngx_http_ai_gateway_log_match(pool, &rec, &filters, NULL);

done:

    ngx_destroy_pool(pool);

    return 0;
}
