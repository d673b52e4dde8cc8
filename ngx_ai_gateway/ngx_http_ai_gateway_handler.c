
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_module.h"


/*
 * The driver: the content handler of a gateway location takes a request
 * through its stages, in this order, each owned by one file:
 *
 *   parse       the raw target split once: account, gateway, and what the
 *               rest names (a provider, /compat, the Universal Endpoint);
 *               cf-aig-* headers; a provider-native target routed
 *               (provider.c) before any body is read
 *   body        read whole (request_buffering); a copy is kept in memory
 *               by the request body filter below when the stages after
 *               need it (/compat, steps, cache keys, attempts)
 *   route       /compat routed and translated by its body (compat.c);
 *               the Universal Endpoint's steps (universal.c), and requests
 *               with retries, handed to the attempts (retry.c), each of
 *               which comes back here as a subrequest
 *   cache       looked up (cache.c): a hit is answered here, before any
 *               ngx_http_upstream_t exists
 *   limit       the rate limits (limit.c): a request over one is refused,
 *               counted once however many attempts it makes
 *   credential  a Vertex AI service-account key exchanged for a token
 *               (vertex.c)
 *   upstream    the provider request built, checked and started
 *               (upstream.c); its bytes come back through relay.c
 *
 * Waits (Redis, an identical request in flight, the token exchange) are
 * asynchronous: the service posts the request when its answer is there,
 * and ngx_http_ai_gateway_resume(), the request's write event handler,
 * runs the stage again, as limit_req and auth_request resume theirs.  No
 * service calls back into this file.
 */


typedef enum {
    NGX_HTTP_AI_GATEWAY_STAGE_CACHE = 0,
    NGX_HTTP_AI_GATEWAY_STAGE_LIMIT,
    NGX_HTTP_AI_GATEWAY_STAGE_CREDENTIAL,
    NGX_HTTP_AI_GATEWAY_STAGE_UPSTREAM,
    NGX_HTTP_AI_GATEWAY_STAGE_DONE
} ngx_http_ai_gateway_stage_e;


static ngx_int_t ngx_http_ai_gateway_parse(ngx_http_request_t *r,
    ngx_http_ai_gateway_loc_conf_t *alcf, ngx_http_ai_gateway_ctx_t *ctx);
static ngx_int_t ngx_http_ai_gateway_split(ngx_http_request_t *r,
    ngx_str_t *seg, ngx_str_t *rest);
static ngx_int_t ngx_http_ai_gateway_read_body(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
static void ngx_http_ai_gateway_body(ngx_http_request_t *r);
static void ngx_http_ai_gateway_run(ngx_http_request_t *r);
static void ngx_http_ai_gateway_resume(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_gateway_exchange(ngx_http_request_t *r,
    ngx_http_ai_gateway_loc_conf_t *alcf, ngx_http_ai_gateway_ctx_t *ctx);
static ngx_int_t ngx_http_ai_gateway_attempt_access(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_gateway_request_body_filter(
    ngx_http_request_t *r, ngx_chain_t *in);


static ngx_str_t  ngx_http_ai_gateway_compat = ngx_string("compat");


static ngx_http_request_body_filter_pt  ngx_http_next_request_body_filter;


ngx_int_t
ngx_http_ai_gateway_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_http_ai_gateway_ctx_t       *ctx;
    ngx_http_ai_gateway_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_module);

    ctx = ngx_http_ai_gateway_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->kind == NGX_HTTP_AI_GATEWAY_EXCHANGE) {
        /* the gateway's own subrequest for a Vertex AI token */
        return ngx_http_ai_gateway_exchange(r, alcf, ctx);
    }

    /* what its log record keeps, the body included (log.c) */

    ngx_http_ai_gateway_log_start(r, ctx);

    rc = ngx_http_ai_gateway_parse(r, alcf, ctx);

    if (rc != NGX_OK) {
        return (rc == NGX_DONE) ? NGX_DONE
                                : ngx_http_ai_gateway_send_error(r, ctx, rc);
    }

    if (ctx->route.compat
        && ctx->route.endpoint == NGX_HTTP_AI_GATEWAY_MODELS)
    {
        return ngx_http_ai_gateway_compat_models(r, ctx);
    }

    return ngx_http_ai_gateway_read_body(r, ctx);
}


/*
 * NGX_OK when the request goes on to its body, NGX_DONE when it has been
 * answered, or the status of an error recorded by fail().
 */

static ngx_int_t
ngx_http_ai_gateway_parse(ngx_http_request_t *r,
    ngx_http_ai_gateway_loc_conf_t *alcf, ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_int_t                         rc, split;
    ngx_str_t                         seg[3], rest;
    ngx_http_ai_gateway_headers_t    *hs;
    ngx_http_ai_gateway_provider_t   *provider;
    ngx_http_ai_gateway_retry_conf_t  s;

    if (ctx->kind == NGX_HTTP_AI_GATEWAY_REQUEST) {
        /*
         * the client's request, before its body and the cache; its
         * attempts and steps run only in this location (attempt_access())
         * and are not authenticated again
         */

        rc = ngx_http_ai_gateway_auth(r, alcf, ctx);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    split = ngx_http_ai_gateway_split(r, seg, &rest);

    if (ctx->kind != NGX_HTTP_AI_GATEWAY_ATTEMPT
        && !(split == NGX_OK && seg[2].len == 0))
    {
        /* not the Universal Endpoint, whose steps have settings of their own */

        s = alcf->retry;

        hs = ngx_http_ai_gateway_headers(r, ctx);
        if (hs == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rc = ngx_http_ai_gateway_retry_settings(r, hs, &s);
        if (rc != NGX_OK) {
            return rc;
        }

        if (s.max_attempts > 1 || s.timeout) {
            /* each attempt is a subrequest that comes back here */
            return ngx_http_ai_gateway_retry_plan(r, ctx, &s);
        }
    }

    if (split != NGX_OK) {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_PATH,
                                        "Malformed gateway path: expected "
                                        "/v1/{account_id}/{gateway_id}/"
                                        "{provider}/...");
    }

    ctx->route.account_id = seg[0];
    ctx->route.gateway_id = seg[1];

    if (seg[1].len != alcf->gateway_id.len
        || ngx_strncmp(seg[1].data, alcf->gateway_id.data, seg[1].len) != 0
        || (alcf->account_id.len
            && (seg[0].len != alcf->account_id.len
                || ngx_strncmp(seg[0].data, alcf->account_id.data,
                               seg[0].len) != 0)))
    {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_NO_GATEWAY,
                                        NULL);
    }

    rc = ngx_http_ai_gateway_cache_headers(r, alcf, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    if (seg[2].len == 0) {
        if (ctx->kind == NGX_HTTP_AI_GATEWAY_ATTEMPT) {
            return ngx_http_ai_gateway_fail(r, ctx,
                                         NGX_HTTP_AI_GATEWAY_ERR_BAD_REQUEST,
                                         "A Universal Endpoint step needs a "
                                         "provider");
        }

        return ngx_http_ai_gateway_universal_check(r, ctx);
    }

    if (seg[2].len == ngx_http_ai_gateway_compat.len
        && ngx_strncmp(seg[2].data, ngx_http_ai_gateway_compat.data,
                       seg[2].len) == 0)
    {
        return ngx_http_ai_gateway_compat_check(r, ctx, &rest);
    }

    rc = ngx_http_ai_gateway_route(r, alcf, ctx, &seg[2], &rest);

    if (rc == NGX_OK) {
        /* a stored provider key */

        rc = ngx_http_ai_gateway_keys_pick(r, alcf, ctx,
                                           &ctx->route.target.origin->slug);
        if (rc == NGX_OK) {
            rc = ngx_http_ai_gateway_keys_apply(r, ctx);
        }
    }

    provider = (rc == NGX_OK) ? ctx->route.target.origin->provider : NULL;

    if (provider && provider->rule == NGX_HTTP_AI_GATEWAY_RULE_VERTEX) {
        /* a service-account key is exchanged for a token */
        rc = ngx_http_ai_gateway_vertex_credential(r, ctx, 0);
    }

    if (rc == NGX_OK) {
        /* a stream may need include_usage: its body is kept */
        ngx_http_ai_gateway_cost_route(r, ctx);
    }

    return rc;
}


/*
 * Splits the raw request target "/v1/{account}/{gateway}/{provider}{rest}"
 * into three segments and the rest (escaped, as the client sent it, so that
 * signatures over the path stay valid).  The query is kept apart in r->args.
 */

static ngx_int_t
ngx_http_ai_gateway_split(ngx_http_request_t *r, ngx_str_t *seg,
    ngx_str_t *rest)
{
    u_char      *p, *last, *q;
    ngx_uint_t   i;

    if (r->valid_unparsed_uri) {
        p = r->unparsed_uri.data;
        last = p + r->unparsed_uri.len;

        q = ngx_strlchr(p, last, '?');
        if (q) {
            last = q;
        }

    } else {
        p = r->uri.data;
        last = p + r->uri.len;
    }

    if (last - p < 4 || ngx_strncmp(p, "/v1/", 4) != 0) {
        return NGX_ERROR;
    }

    p += 4;

    for (i = 0; i < 3; i++) {
        q = ngx_strlchr(p, last, '/');
        if (q == NULL) {
            q = last;
        }

        seg[i].data = p;
        seg[i].len = q - p;

        if (seg[i].len == 0 && i < 2) {
            return NGX_ERROR;
        }

        p = q;

        if (i < 2) {
            if (p == last) {
                /* ".../{gateway}" without a provider */
                for (i++; i < 3; i++) {
                    ngx_str_null(&seg[i]);
                }
                break;
            }

            p++;
        }
    }

    rest->data = p;
    rest->len = last - p;

    if (seg[1].len == 0 || (seg[2].len == 0 && rest->len)) {
        /* "/v1/{account}/{gateway}//..." */
        return NGX_ERROR;
    }

    /*
     * nginx chose the location on the normalized URI, the path is routed
     * and forwarded raw: the two must not differ.  The account, gateway
     * and provider segments are taken as they are, with nothing escaped,
     * and no segment is "." or "..", escaped or not, whatever separates
     * it ("/", "%2F", "\\").
     */

    for (i = 0; i < 3; i++) {
        if (ngx_strlchr(seg[i].data, seg[i].data + seg[i].len, '%')) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_ai_gateway_check_segments(seg[0].data, last - seg[0].data)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}



/*
 * The body is read, and kept in memory in ctx->body.raw by the request body
 * filter below when a later stage needs it.  A subrequest has its body
 * already: the handler runs at once.
 */

static ngx_int_t
ngx_http_ai_gateway_read_body(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    off_t                            size;
    ngx_int_t                        rc;
    ngx_http_ai_gateway_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_module);

    /*
     * ai_gateway_max_body_size, besides nginx's client_max_body_size: a
     * chunked body is counted by the request body filter as it comes
     */

    if (alcf->max_body_size
        && r->headers_in.content_length_n > alcf->max_body_size)
    {
        return ngx_http_ai_gateway_send_error(r, ctx,
                   ngx_http_ai_gateway_fail(r, ctx,
                                            NGX_HTTP_AI_GATEWAY_ERR_TOO_LARGE,
                                            NULL));
    }

    if (r->headers_in.content_length_n > 0 && ctx->body.raw.data == NULL
        && (ctx->route.compat || ctx->route.universal || ctx->cache.state
            || ctx->retry || ctx->body.keep || ctx->log.payload))
    {
        size = r->headers_in.content_length_n;

        if (!(ctx->route.compat || ctx->route.universal || ctx->cache.state
              || ctx->retry || ctx->body.keep))
        {
            /* only the request log keeps it: as much as it keeps */
            size = ngx_min(size, (off_t) ctx->log.limit);
        }

        ctx->body.raw.data = ngx_pnalloc(r->pool, size + 1);
        if (ctx->body.raw.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->body.raw_size = size + 1;
    }

    rc = ngx_http_read_client_request_body(r, ngx_http_ai_gateway_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/* the body is read: the stages that need it */

static void
ngx_http_ai_gateway_body(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_http_ai_gateway_ctx_t       *ctx;
    ngx_http_ai_gateway_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    if (ctx->route.universal) {
        rc = ngx_http_ai_gateway_universal_steps(r, ctx);

        if (rc != NGX_OK) {
            ngx_http_finalize_request(r,
                                   ngx_http_ai_gateway_send_error(r, ctx, rc));
            return;
        }
    }

    if (ctx->retry && ctx->kind != NGX_HTTP_AI_GATEWAY_ATTEMPT) {
        /* attempts, each a subrequest that runs this handler */

        rc = ngx_http_ai_gateway_retry_begin(r, ctx);

        if (rc != NGX_OK) {
            ngx_http_finalize_request(r, rc);
        }

        return;
    }

    if (ctx->route.compat) {
        rc = ngx_http_ai_gateway_compat_prepare(r, alcf, ctx);

        if (rc != NGX_OK) {
            ngx_http_finalize_request(r,
                                   ngx_http_ai_gateway_send_error(r, ctx, rc));
            return;
        }
    }

    ctx->stage = NGX_HTTP_AI_GATEWAY_STAGE_CACHE;

    ngx_http_ai_gateway_run(r);
}


/*
 * The stages after the body: each either goes on, or waits (the request is
 * posted when its wait is over, and runs from the same stage again), or
 * ends the request.
 */

static void
ngx_http_ai_gateway_run(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_http_ai_gateway_ctx_t       *ctx;
    ngx_http_ai_gateway_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    for ( ;; ) {

        switch (ctx->stage) {

        case NGX_HTTP_AI_GATEWAY_STAGE_CACHE:

            rc = ngx_http_ai_gateway_cache_lookup(r, ctx);

            if (rc == NGX_AGAIN) {
                goto wait;
            }

            if (rc == NGX_OK) {
                /* a hit, answered before any upstream exists: no cost */
                ctx->stage = NGX_HTTP_AI_GATEWAY_STAGE_DONE;
                ngx_http_ai_gateway_cost_cached(r, ctx);
                r->read_event_handler = ngx_http_block_reading;
                ngx_http_finalize_request(r,
                                      ngx_http_ai_gateway_cache_answer(r, ctx));
                return;
            }

            if (rc != NGX_DECLINED) {
                goto failed;
            }

            ctx->stage = NGX_HTTP_AI_GATEWAY_STAGE_LIMIT;
            break;

        case NGX_HTTP_AI_GATEWAY_STAGE_LIMIT:

            /* a miss: the rate limits (a hit is not counted) */

            rc = ngx_http_ai_gateway_limit_check(r, ctx);

            if (rc == NGX_AGAIN) {
                goto wait;
            }

            if (rc != NGX_OK) {
                goto failed;
            }

            ctx->stage = NGX_HTTP_AI_GATEWAY_STAGE_CREDENTIAL;
            break;

        case NGX_HTTP_AI_GATEWAY_STAGE_CREDENTIAL:

            rc = ngx_http_ai_gateway_vertex_token(r, ctx);

            if (rc == NGX_AGAIN) {
                goto wait;
            }

            if (rc != NGX_OK) {
                goto failed;
            }

            ctx->stage = NGX_HTTP_AI_GATEWAY_STAGE_UPSTREAM;
            break;

        case NGX_HTTP_AI_GATEWAY_STAGE_UPSTREAM:

            ctx->stage = NGX_HTTP_AI_GATEWAY_STAGE_DONE;

            r->read_event_handler = ngx_http_block_reading;
            r->write_event_handler = ngx_http_request_empty_handler;

            /* include_usage, when the client did not ask */

            rc = ngx_http_ai_gateway_cost_request(r, ctx);

            if (rc != NGX_OK) {
                goto failed;
            }

            ngx_http_ai_gateway_retry_armed(r, ctx);

            rc = ngx_http_ai_gateway_upstream_init(r, alcf, ctx);

            if (rc != NGX_OK) {
                goto failed;
            }

            return;

        default: /* NGX_HTTP_AI_GATEWAY_STAGE_DONE */
            return;
        }
    }

wait:

    /* a client that goes away ends the wait (its cleanups cancel it) */

    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_ai_gateway_resume;
    return;

failed:

    ctx->stage = NGX_HTTP_AI_GATEWAY_STAGE_DONE;
    r->read_event_handler = ngx_http_block_reading;

    ngx_http_finalize_request(r, ngx_http_ai_gateway_send_error(r, ctx, rc));
}


/* posted by a service whose wait is over, or a spurious write event */

static void
ngx_http_ai_gateway_resume(ngx_http_request_t *r)
{
    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai gateway resume");

    ngx_http_ai_gateway_run(r);
}


/* in the token exchange subrequest: Google's token endpoint is the target */

static ngx_int_t
ngx_http_ai_gateway_exchange(ngx_http_request_t *r,
    ngx_http_ai_gateway_loc_conf_t *alcf, ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_int_t  rc;

    rc = ngx_http_ai_gateway_vertex_exchange(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx->stage = NGX_HTTP_AI_GATEWAY_STAGE_DONE;

    rc = ngx_http_ai_gateway_upstream_init(r, alcf, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    r->main->count++;

    return NGX_DONE;
}


/*
 * nginx runs no access phase for subrequests: allow and deny, auth_basic,
 * auth_request are not applied to them, and they may enter "internal"
 * locations.  The attempts of a request with retries and the steps of the
 * Universal Endpoint are subrequests, so each may only run in the location
 * of its request, whose access rules the request itself has passed.  An
 * attempt that nginx placed in any other location (a step's provider
 * served by a location of its own, a rewrite) is refused there before
 * anything else runs: a step then fails with 403, as the direct request
 * would, and the next step is tried.  This runs first in the rewrite
 * phase of every location, gateway or not.
 */

static ngx_int_t
ngx_http_ai_gateway_attempt_access(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_http_ai_gateway_ctx_t  *ctx, *mctx;

    if (r == r->main || r->parent != r->main) {
        return NGX_DECLINED;
    }

    mctx = ngx_http_get_module_ctx(r->main, ngx_http_ai_gateway_module);

    if (mctx == NULL || mctx->retry == NULL
        || r->loc_conf == r->main->loc_conf)
    {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    if (ctx == NULL) {
        /* an internal redirect has cleared the attempt's context */

        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_gateway_ctx_t));
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->kind = NGX_HTTP_AI_GATEWAY_ATTEMPT;
        ctx->retry = mctx->retry;

        ngx_http_set_ctx(r, ctx, ngx_http_ai_gateway_module);
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "ai_gateway: \"%V\" of a Universal Endpoint step or an "
                  "attempt is served by another location than its request, "
                  "refused", &r->uri);

    rc = ngx_http_ai_gateway_fail(r, ctx, NGX_HTTP_AI_GATEWAY_ERR_LOCATION,
                                  NULL);

    ngx_http_finalize_request(r, ngx_http_ai_gateway_send_error(r, ctx, rc));

    return NGX_DONE;
}


ngx_http_ai_gateway_ctx_t *
ngx_http_ai_gateway_get_ctx(ngx_http_request_t *r)
{
    ngx_http_ai_gateway_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);
    if (ctx) {
        return ctx;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_gateway_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_ai_gateway_module);

    return ctx;
}




/*
 * Keeps a copy of the request body as nginx reads it, when a stage needs
 * it (a Unified API request, steps, a cache key, attempts), whether
 * nginx keeps the body in memory or in a temporary file, so that the body
 * is parsed without reading a file; when only the request log needs it,
 * as much of it as the log keeps.
 */

static ngx_int_t
ngx_http_ai_gateway_request_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in)
{
    size_t                           size;
    ngx_uint_t                       whole;
    ngx_chain_t                     *cl;
    ngx_http_ai_gateway_ctx_t       *ctx;
    ngx_http_ai_gateway_loc_conf_t  *alcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    if (ctx == NULL) {
        return ngx_http_next_request_body_filter(r, in);
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_module);

    for (cl = in; cl; cl = cl->next) {
        ctx->body.received += cl->buf->last - cl->buf->pos;
    }

    if (alcf->max_body_size && ctx->body.received > alcf->max_body_size) {
        (void) ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_TOO_LARGE,
                                        NULL);
        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
    }

    /*
     * the cache key needs the body too, and include_usage (cost.c); the
     * request log may
     */

    whole = ctx->route.compat || ctx->route.universal
            || ctx->cache.state != NULL || ctx->retry != NULL
            || ctx->body.keep;

    if (!whole && !ctx->log.payload) {
        return ngx_http_next_request_body_filter(r, in);
    }

    for (cl = in; cl; cl = cl->next) {
        size = cl->buf->last - cl->buf->pos;

        if (!whole) {
            /* for the log only: its first ctx->log.limit bytes */
            size = ngx_min(size, ctx->log.limit - ctx->body.raw.len);
        }

        if (size == 0) {
            continue;
        }

        /* a chunked body grows, a NUL follows for the parsers */

        if (ngx_http_ai_gateway_reserve(r->pool, &ctx->body.raw.data,
                                        &ctx->body.raw_size,
                                        ctx->body.raw.len,
                                        ctx->body.raw.len + size + 1,
                                        4096, 0)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(ctx->body.raw.data + ctx->body.raw.len, cl->buf->pos, size);
        ctx->body.raw.len += size;
    }

    return ngx_http_next_request_body_filter(r, in);
}


ngx_int_t
ngx_http_ai_gateway_handler_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    /* registered last, it runs first: before rewrite's "return" */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_ai_gateway_attempt_access;

    ngx_http_next_request_body_filter = ngx_http_top_request_body_filter;
    ngx_http_top_request_body_filter = ngx_http_ai_gateway_request_body_filter;

    return NGX_OK;
}
