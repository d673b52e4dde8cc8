
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <yajl/yajl_tree.h>

#include "ngx_http_ai_gateway_json.h"
#include "ngx_http_ai_gateway_usage.h"


/*
 * cf-aig-metadata: a JSON object whose entries tag a request in its logs.
 * The hosted gateway keeps at most five entries of string, number or
 * boolean values, the first five, in order; a null or an object among the
 * values (an array too) loses all of them, as does a header that is not a
 * JSON object; keys that start with "cf." are dropped; the request never
 * fails for its metadata.  A key given twice is one entry, where it first
 * came, with the last value (as JSON.parse() reads it).  What is kept is
 * written again as compact JSON, each number as it came.
 */


#define NGX_HTTP_AI_GATEWAY_METADATA_MAX  5


ngx_int_t
ngx_http_ai_gateway_metadata_parse(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_str_t *out)
{
    size_t                      i, j, n;
    size_t                      kept[NGX_HTTP_AI_GATEWAY_METADATA_MAX];
    size_t                      value[NGX_HTTP_AI_GATEWAY_METADATA_MAX];
    yajl_val                    v, e;
    ngx_int_t                   rc;
    const char                 *key;
    ngx_http_ai_gateway_gen_t   gen;

    rc = ngx_http_ai_gateway_json_parse(pool, p, len, &v);
    if (rc != NGX_OK) {
        return rc;
    }

    if (!YAJL_IS_OBJECT(v)) {
        return NGX_DECLINED;
    }

    n = 0;

    for (i = 0; i < v->u.object.len; i++) {
        e = v->u.object.values[i];

        if (e == NULL || YAJL_IS_NULL(e) || YAJL_IS_OBJECT(e)
            || YAJL_IS_ARRAY(e))
        {
            /* no metadata at all */
            return NGX_DECLINED;
        }

        key = v->u.object.keys[i];

        if (ngx_strncmp(key, "cf.", 3) == 0) {
            continue;
        }

        for (j = 0; j < n; j++) {
            if (ngx_strcmp(v->u.object.keys[kept[j]], key) == 0) {
                break;
            }
        }

        if (j < n) {
            /* a key given again: its last value */
            value[j] = i;
            continue;
        }

        if (n < NGX_HTTP_AI_GATEWAY_METADATA_MAX) {
            kept[n] = i;
            value[n] = i;
            n++;
        }
    }

    if (n == 0) {
        return NGX_DECLINED;
    }

    if (ngx_http_ai_gateway_gen_init(&gen, pool) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_ai_gateway_gen_map(&gen);

    for (j = 0; j < n; j++) {
        key = v->u.object.keys[kept[j]];

        ngx_http_ai_gateway_gen_str(&gen, (u_char *) key, ngx_strlen(key));
        ngx_http_ai_gateway_gen_value(&gen, v->u.object.values[value[j]]);
    }

    ngx_http_ai_gateway_gen_map_end(&gen);

    return ngx_http_ai_gateway_gen_done(&gen, out);
}
