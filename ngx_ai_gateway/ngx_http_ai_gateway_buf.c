
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_gateway_buf.h"


/*
 * The one growing buffer of the module (a request body kept, a provider
 * answer kept whole, a cache entry, an SSE event, generated JSON): *buf
 * of *size bytes, the first "used" of them in use, gets room for "need"
 * bytes in all.  It grows by doubling, from "min" bytes, to at most "max"
 * (0: no bound) but never less than "need"; the old buffer goes back to
 * the pool (ngx_pfree() frees a large one at once).
 */

ngx_int_t
ngx_http_ai_gateway_reserve(ngx_pool_t *pool, u_char **buf, size_t *size,
    size_t used, size_t need, size_t min, size_t max)
{
    u_char  *p;
    size_t   n;

    if (need <= *size) {
        return NGX_OK;
    }

    n = ngx_max(*size * 2, min);

    while (n < need) {
        n *= 2;
    }

    if (max && n > max) {
        n = ngx_max(max, need);
    }

    p = ngx_pnalloc(pool, n);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (*buf != NULL) {
        ngx_memcpy(p, *buf, used);
        ngx_pfree(pool, *buf);
    }

    *buf = p;
    *size = n;

    return NGX_OK;
}
