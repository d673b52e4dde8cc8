
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_module.h"


static ngx_int_t ngx_http_ai_gateway_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_gateway_prepare(ngx_http_request_t *r,
    ngx_http_ai_gateway_loc_conf_t *alcf, ngx_http_ai_gateway_ctx_t *ctx,
    ngx_int_t split, ngx_str_t *seg, ngx_str_t *rest);
static ngx_int_t ngx_http_ai_gateway_split(ngx_http_request_t *r,
    ngx_str_t *seg, ngx_str_t *rest);

static ngx_int_t ngx_http_ai_gateway_attempt_access(ngx_http_request_t *r);

static ngx_int_t ngx_http_ai_gateway_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_ai_gateway_postconfiguration(ngx_conf_t *cf);
static void ngx_http_ai_gateway_exit_process(ngx_cycle_t *cycle);
static void *ngx_http_ai_gateway_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_ai_gateway_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ai_gateway_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_ai_gateway(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_gateway_models(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_conf_bitmask_t  ngx_http_ai_gateway_ssl_protocols[] = {
    { ngx_string("TLSv1"), NGX_SSL_TLSv1 },
    { ngx_string("TLSv1.1"), NGX_SSL_TLSv1_1 },
    { ngx_string("TLSv1.2"), NGX_SSL_TLSv1_2 },
    { ngx_string("TLSv1.3"), NGX_SSL_TLSv1_3 },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_ai_gateway_commands[] = {

    { ngx_string("ai_gateway"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_ai_gateway,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_gateway_provider"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_ai_gateway_provider_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_gateway_models"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ai_gateway_models,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_gateway_max_body_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_off_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, max_body_size),
      NULL },

    { ngx_string("ai_gateway_connect_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, upstream.connect_timeout),
      NULL },

    { ngx_string("ai_gateway_send_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, upstream.send_timeout),
      NULL },

    { ngx_string("ai_gateway_request_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, retry.timeout),
      NULL },

    { ngx_string("ai_gateway_max_attempts"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, retry.max_attempts),
      &ngx_http_ai_gateway_attempts_bounds },

    { ngx_string("ai_gateway_retry_delay"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, retry.delay),
      NULL },

    { ngx_string("ai_gateway_retry_backoff"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, retry.backoff),
      ngx_http_ai_gateway_backoffs },

    { ngx_string("ai_gateway_read_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, upstream.read_timeout),
      NULL },

    { ngx_string("ai_gateway_buffer_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, upstream.buffer_size),
      NULL },

    { ngx_string("ai_gateway_ssl_verify"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, upstream.ssl_verify),
      NULL },

    { ngx_string("ai_gateway_ssl_trusted_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, ssl_trusted_certificate),
      NULL },

    { ngx_string("ai_gateway_ssl_verify_depth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, ssl_verify_depth),
      NULL },

    { ngx_string("ai_gateway_ssl_protocols"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_conf_set_bitmask_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, ssl_protocols),
      &ngx_http_ai_gateway_ssl_protocols },

    { ngx_string("ai_gateway_cache_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_cache_zone,
      0,
      0,
      NULL },

    { ngx_string("ai_gateway_cache"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_cache_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_gateway_cache_redis"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ai_gateway_cache_redis,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_gateway_cache_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, cache.ttl),
      NULL },

    { ngx_string("ai_gateway_cache_max_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, cache.max_size),
      NULL },

    { ngx_string("ai_gateway_cache_lock_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, cache.lock_timeout),
      NULL },

    { ngx_string("ai_gateway_cache_scope"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_cache_scope,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ai_gateway_module_ctx = {
    ngx_http_ai_gateway_preconfiguration,  /* preconfiguration */
    ngx_http_ai_gateway_postconfiguration, /* postconfiguration */

    ngx_http_ai_gateway_create_main_conf,  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ai_gateway_create_loc_conf,   /* create location configuration */
    ngx_http_ai_gateway_merge_loc_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_ai_gateway_module = {
    NGX_MODULE_V1,
    &ngx_http_ai_gateway_module_ctx,       /* module context */
    ngx_http_ai_gateway_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_ai_gateway_exit_process,      /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* what a worker made once for itself goes with it */

static void
ngx_http_ai_gateway_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_ai_gateway_cache_exit_process();
    ngx_http_ai_gateway_canonical_exit_process();
}


static ngx_str_t  ngx_http_ai_gateway_compat = ngx_string("compat");


static ngx_int_t
ngx_http_ai_gateway_handler(ngx_http_request_t *r)
{
    ngx_int_t                          rc, split;
    ngx_str_t                          seg[3], rest;
    ngx_http_ai_gateway_ctx_t         *ctx;
    ngx_http_ai_gateway_loc_conf_t    *alcf;
    ngx_http_ai_gateway_retry_conf_t   s;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_module);

    ctx = ngx_http_ai_gateway_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->exchange) {
        /* the gateway's own subrequest for a Vertex AI token */
        return ngx_http_ai_gateway_vertex_exchange(r, alcf, ctx);
    }

    /* the path is split once; prepare() reports a malformed one */

    split = ngx_http_ai_gateway_split(r, seg, &rest);

    if (!ctx->attempt && !(split == NGX_OK && seg[2].len == 0)) {
        /* not the Universal Endpoint, whose steps have settings of their own */

        s = alcf->retry;

        rc = ngx_http_ai_gateway_retry_settings(r, &r->headers_in.headers,
                                                &s);
        if (rc != NGX_OK) {
            return ngx_http_ai_gateway_send_error(r, ctx, rc);
        }

        if (s.max_attempts > 1 || s.timeout) {
            /* each attempt is a subrequest running what follows */
            return ngx_http_ai_gateway_retry_start(r, ctx, &s);
        }
    }

    rc = ngx_http_ai_gateway_prepare(r, alcf, ctx, split, seg, &rest);

    if (ctx->compat || ctx->universal) {
        /* the Unified API: routed once the body is read */
        return rc;
    }

    if (rc != NGX_OK) {
        return ngx_http_ai_gateway_send_error(r, ctx, rc);
    }

    return ngx_http_ai_gateway_upstream_start(r, alcf, ctx);
}


/*
 * Returns NGX_OK when the request has its target, NGX_DONE when the
 * Unified API reads the body first, or an error status.
 */

static ngx_int_t
ngx_http_ai_gateway_prepare(ngx_http_request_t *r,
    ngx_http_ai_gateway_loc_conf_t *alcf, ngx_http_ai_gateway_ctx_t *ctx,
    ngx_int_t split, ngx_str_t *seg, ngx_str_t *rest)
{
    ngx_int_t                        rc;
    ngx_http_ai_gateway_provider_t  *provider;

    if (split != NGX_OK) {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_PATH,
                                        "Malformed gateway path: expected "
                                        "/v1/{account_id}/{gateway_id}/"
                                        "{provider}/...");
    }

    ctx->account_id = seg[0];
    ctx->gateway_id = seg[1];

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
        if (ctx->attempt) {
            return ngx_http_ai_gateway_fail(r, ctx,
                                         NGX_HTTP_AI_GATEWAY_ERR_BAD_REQUEST,
                                         "A Universal Endpoint step needs a "
                                         "provider");
        }

        return ngx_http_ai_gateway_universal_start(r, ctx);
    }

    if (seg[2].len == ngx_http_ai_gateway_compat.len
        && ngx_strncmp(seg[2].data, ngx_http_ai_gateway_compat.data,
                       seg[2].len) == 0)
    {
        return ngx_http_ai_gateway_compat_start(r, ctx, rest);
    }

    rc = ngx_http_ai_gateway_route(r, alcf, ctx, &seg[2], rest);

    provider = (rc == NGX_OK) ? ctx->target.origin->provider : NULL;

    if (provider && provider->rule == NGX_HTTP_AI_GATEWAY_RULE_VERTEX) {
        /* a service-account key is exchanged for a token */
        rc = ngx_http_ai_gateway_vertex_credential(r, ctx, 0);
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

        ctx->attempt = 1;
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


static char *
ngx_http_ai_gateway(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_gateway_loc_conf_t *alcf = conf;

    u_char                    *p;
    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    if (alcf->gateway_id.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (p = value[1].data; p < value[1].data + value[1].len; p++) {
        if (*p == '/' || *p == '?' || *p <= ' ') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid gateway id \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    if (value[1].len == 0 || value[1].len > 64) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "gateway id \"%V\" must have 1 to 64 characters",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    alcf->gateway_id = value[1];

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "account=", 8) != 0
            || value[2].len == 8)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        alcf->account_id.data = value[2].data + 8;
        alcf->account_id.len = value[2].len - 8;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_ai_gateway_handler;

    return NGX_CONF_OK;
}


/* ai_gateway_models provider/model ...; what GET /compat/v1/models lists */

static char *
ngx_http_ai_gateway_models(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_gateway_loc_conf_t *alcf = conf;

    u_char      *p;
    ngx_str_t   *value, *m, prefix;
    ngx_uint_t   i;

    if (alcf->models != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    alcf->models = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                    sizeof(ngx_str_t));
    if (alcf->models == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        p = ngx_strlchr(value[i].data, value[i].data + value[i].len, '/');

        prefix.data = value[i].data;
        prefix.len = p ? (size_t) (p - value[i].data) : 0;

        if (p == NULL || prefix.len == 0
            || (size_t) (p + 1 - value[i].data) == value[i].len
            || (ngx_http_ai_gateway_provider_find(&prefix) == NULL
                && !(prefix.len > 7
                     && ngx_strncmp(prefix.data, "custom-", 7) == 0)))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid model \"%V\", use "
                               "\"{provider}/{model}\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        m = ngx_array_push(alcf->models);
        if (m == NULL) {
            return NGX_CONF_ERROR;
        }

        *m = value[i];
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ai_gateway_preconfiguration(ngx_conf_t *cf)
{
    if (ngx_http_ai_gateway_cache_add_variables(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_ai_gateway_add_variables(cf);
}


static ngx_int_t
ngx_http_ai_gateway_postconfiguration(ngx_conf_t *cf)
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

    if (ngx_http_ai_gateway_filter_init(cf) != NGX_OK
        || ngx_http_ai_gateway_compat_init(cf) != NGX_OK
        || ngx_http_ai_gateway_provider_init(cf) != NGX_OK
        || ngx_http_ai_gateway_vertex_init(cf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void *
ngx_http_ai_gateway_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ai_gateway_main_conf_t  *amcf;

    amcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_gateway_main_conf_t));
    if (amcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&amcf->ssl, cf->pool, 2, sizeof(void *)) != NGX_OK) {
        return NULL;
    }

    return amcf;
}


static void *
ngx_http_ai_gateway_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ai_gateway_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_gateway_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->gateway_id = { 0, NULL };
     *     conf->account_id = { 0, NULL };
     *     conf->ssl_trusted_certificate = { 0, NULL };
     *     conf->ssl_protocols = 0;
     */

    conf->origins = NGX_CONF_UNSET_PTR;
    conf->models = NGX_CONF_UNSET_PTR;
    conf->max_body_size = NGX_CONF_UNSET;
    conf->ssl_verify_depth = NGX_CONF_UNSET_UINT;

    conf->upstream.connect_timeout = NGX_CONF_UNSET_MSEC;
    conf->upstream.send_timeout = NGX_CONF_UNSET_MSEC;
    conf->upstream.read_timeout = NGX_CONF_UNSET_MSEC;
    conf->upstream.buffer_size = NGX_CONF_UNSET_SIZE;
    conf->upstream.ssl_verify = NGX_CONF_UNSET;

    conf->upstream.hide_headers = NGX_CONF_UNSET_PTR;
    conf->upstream.pass_headers = NGX_CONF_UNSET_PTR;

    ngx_http_ai_gateway_cache_create_conf(&conf->cache);
    ngx_http_ai_gateway_retry_create_conf(&conf->retry);

    return conf;
}


static char *
ngx_http_ai_gateway_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_ai_gateway_loc_conf_t *prev = parent;
    ngx_http_ai_gateway_loc_conf_t *conf = child;

    ngx_http_core_loc_conf_t  *clcf;

    /* nested locations (limit_except too) belong to the same gateway */

    if (conf->gateway_id.data == NULL) {
        conf->gateway_id = prev->gateway_id;
        conf->account_id = prev->account_id;
    }

    ngx_conf_merge_ptr_value(conf->models, prev->models, NULL);
    ngx_conf_merge_off_value(conf->max_body_size, prev->max_body_size,
                             32 * 1024 * 1024);

    if (ngx_http_ai_gateway_cache_merge_conf(cf, &prev->cache, &conf->cache)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_ai_gateway_retry_merge_conf(cf, &prev->retry, &conf->retry)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_ai_gateway_upstream_merge(cf, prev, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (conf->gateway_id.len) {
        /*
         * the gateway's own limit replaces client_max_body_size; a body
         * over it is answered by nginx with 413, which the error filter
         * turns into the gateway's JSON envelope
         */

        clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
        clcf->client_max_body_size = conf->max_body_size;
    }

    return NGX_CONF_OK;
}
