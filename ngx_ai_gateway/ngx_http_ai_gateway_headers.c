
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_module.h"


/*
 * The gateway's own request headers (cf-aig-*, and the legacy cf-cache-ttl
 * and cf-skip-cache), found in one walk over a header list: the request's,
 * once per request (ngx_http_ai_gateway_headers()), or a Universal
 * Endpoint step's.  Each header the gateway reads is kept by name, the last
 * one of a name counting; every cf-* header is kept in order too, for the
 * steps that inherit them.  The values are checked where they are used.
 */


typedef struct {
    ngx_str_t                      name;
    ngx_uint_t                     offset;
} ngx_http_ai_gateway_header_name_t;


static ngx_http_ai_gateway_header_name_t  ngx_http_ai_gateway_header_names[] =
{
    { ngx_string("cf-aig-cache-ttl"),
      offsetof(ngx_http_ai_gateway_headers_t, cache_ttl) },
    { ngx_string("cf-cache-ttl"),
      offsetof(ngx_http_ai_gateway_headers_t, legacy_cache_ttl) },
    { ngx_string("cf-aig-cache-key"),
      offsetof(ngx_http_ai_gateway_headers_t, cache_key) },
    { ngx_string("cf-aig-skip-cache"),
      offsetof(ngx_http_ai_gateway_headers_t, skip_cache) },
    { ngx_string("cf-skip-cache"),
      offsetof(ngx_http_ai_gateway_headers_t, legacy_skip_cache) },
    { ngx_string("cf-aig-request-timeout"),
      offsetof(ngx_http_ai_gateway_headers_t, request_timeout) },
    { ngx_string("cf-aig-max-attempts"),
      offsetof(ngx_http_ai_gateway_headers_t, max_attempts) },
    { ngx_string("cf-aig-retry-delay"),
      offsetof(ngx_http_ai_gateway_headers_t, retry_delay) },
    { ngx_string("cf-aig-backoff"),
      offsetof(ngx_http_ai_gateway_headers_t, backoff) },
    { ngx_string("cf-aig-event-id"),
      offsetof(ngx_http_ai_gateway_headers_t, event_id) },
    { ngx_string("cf-aig-metadata"),
      offsetof(ngx_http_ai_gateway_headers_t, metadata) },
    { ngx_string("cf-aig-custom-cost"),
      offsetof(ngx_http_ai_gateway_headers_t, custom_cost) },
    { ngx_string("cf-aig-collect-log"),
      offsetof(ngx_http_ai_gateway_headers_t, collect_log) },
    { ngx_string("cf-aig-collect-log-payload"),
      offsetof(ngx_http_ai_gateway_headers_t, collect_log_payload) },
    { ngx_string("cf-aig-authorization"),
      offsetof(ngx_http_ai_gateway_headers_t, authorization) },
    { ngx_string("cf-aig-byok-alias"),
      offsetof(ngx_http_ai_gateway_headers_t, byok_alias) },
    { ngx_null_string, 0 }
};


/* the request's own, parsed when first asked for */

ngx_http_ai_gateway_headers_t *
ngx_http_ai_gateway_headers(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    if (!ctx->headers.parsed) {
        if (ngx_http_ai_gateway_headers_parse(r->pool, &r->headers_in.headers,
                                              &ctx->headers)
            != NGX_OK)
        {
            return NULL;
        }
    }

    return &ctx->headers;
}


ngx_int_t
ngx_http_ai_gateway_headers_parse(ngx_pool_t *pool, ngx_list_t *list,
    ngx_http_ai_gateway_headers_t *hs)
{
    ngx_uint_t                          i;
    ngx_list_part_t                    *part;
    ngx_table_elt_t                    *h, **hp;
    ngx_http_ai_gateway_header_name_t  *n;

    ngx_memzero(hs, sizeof(ngx_http_ai_gateway_headers_t));

    hs->parsed = 1;

    part = &list->part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len < 4 || ngx_strncmp(h[i].lowcase_key, "cf-", 3) != 0)
        {
            continue;
        }

        if (hs->all.elts == NULL
            && ngx_array_init(&hs->all, pool, 4, sizeof(ngx_table_elt_t *))
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        hp = ngx_array_push(&hs->all);
        if (hp == NULL) {
            return NGX_ERROR;
        }

        *hp = &h[i];

        for (n = ngx_http_ai_gateway_header_names; n->name.len; n++) {
            if (n->name.len == h[i].key.len
                && ngx_strncmp(n->name.data, h[i].lowcase_key, n->name.len)
                   == 0)
            {
                *(ngx_table_elt_t **) ((u_char *) hs + n->offset) = &h[i];
                break;
            }
        }
    }

    return NGX_OK;
}


/* cf-aig-skip-cache or cf-skip-cache: "true", in any case */

ngx_uint_t
ngx_http_ai_gateway_headers_true(ngx_table_elt_t *h)
{
    return h && h->value.len == 4
           && ngx_strncasecmp(h->value.data, (u_char *) "true", 4) == 0;
}
