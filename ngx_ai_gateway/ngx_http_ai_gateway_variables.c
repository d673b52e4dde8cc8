
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_module.h"


/*
 * The $ai_gateway_* variables (docs/variables.md), all in one table,
 * computed when used, mostly from the request's context; the cache's and
 * the attempts' are computed by their files.  A request
 * that runs as attempts (ngx_http_ai_gateway_retry.c) has no provider
 * request of its own: its variables read its last attempt, the subrequest
 * that was routed, sent and answered, with the same code as a request
 * without attempts, so that the same outcome shows the same values.
 */


static ngx_int_t ngx_http_ai_gateway_str_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_gateway_model_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_gateway_log_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_gateway_event_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_gateway_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_gateway_ttfb_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_gateway_url_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_gateway_error_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_gateway_tokens_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_gateway_cost_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_gateway_flag_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_gateway_metadata_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_gateway_duration_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_http_request_t *ngx_http_ai_gateway_var_request(
    ngx_http_request_t *r);


/* what $ai_gateway_tokens_* count */

#define NGX_HTTP_AI_GATEWAY_TOKENS_IN           0
#define NGX_HTTP_AI_GATEWAY_TOKENS_OUT          1
#define NGX_HTTP_AI_GATEWAY_TOKENS_CACHED       2
#define NGX_HTTP_AI_GATEWAY_TOKENS_CACHE_WRITE  3
#define NGX_HTTP_AI_GATEWAY_TOKENS_REASONING    4

/* the flags of $ai_gateway_cached, _usage_partial, _custom_cost */

#define NGX_HTTP_AI_GATEWAY_FLAG_CACHED         0
#define NGX_HTTP_AI_GATEWAY_FLAG_PARTIAL        1
#define NGX_HTTP_AI_GATEWAY_FLAG_CUSTOM_COST    2


static ngx_http_variable_t  ngx_http_ai_gateway_vars[] = {

    { ngx_string("ai_gateway_id"), NULL,
      ngx_http_ai_gateway_str_variable,
      offsetof(ngx_http_ai_gateway_ctx_t, route.gateway_id),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_account_id"), NULL,
      ngx_http_ai_gateway_str_variable,
      offsetof(ngx_http_ai_gateway_ctx_t, route.account_id),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_provider"), NULL,
      ngx_http_ai_gateway_str_variable,
      offsetof(ngx_http_ai_gateway_ctx_t, route.provider),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_tls_name"), NULL,
      ngx_http_ai_gateway_str_variable,
      offsetof(ngx_http_ai_gateway_ctx_t, route.target.tls_name),
      NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_NOHASH, 0 },

    { ngx_string("ai_gateway_model"), NULL,
      ngx_http_ai_gateway_model_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_log_id"), NULL,
      ngx_http_ai_gateway_log_id_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_event_id"), NULL,
      ngx_http_ai_gateway_event_id_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_upstream_status"), NULL,
      ngx_http_ai_gateway_status_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_ttfb"), NULL,
      ngx_http_ai_gateway_ttfb_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_upstream_url"), NULL,
      ngx_http_ai_gateway_url_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_error_code"), NULL,
      ngx_http_ai_gateway_error_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    /* the cache (ngx_http_ai_gateway_cache.c) */

    { ngx_string("ai_gateway_cache_key"), NULL,
      ngx_http_ai_gateway_cache_key_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_cache_status"), NULL,
      ngx_http_ai_gateway_cache_status_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    /* attempts (ngx_http_ai_gateway_retry.c) */

    { ngx_string("ai_gateway_attempts"), NULL,
      ngx_http_ai_gateway_retry_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_attempt_statuses"), NULL,
      ngx_http_ai_gateway_retry_variable, 1, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_attempt_times"), NULL,
      ngx_http_ai_gateway_retry_variable, 2, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_step"), NULL,
      ngx_http_ai_gateway_retry_variable, 3, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    /* usage and cost (ngx_http_ai_gateway_cost.c) */

    { ngx_string("ai_gateway_tokens_in"), NULL,
      ngx_http_ai_gateway_tokens_variable, NGX_HTTP_AI_GATEWAY_TOKENS_IN,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_tokens_out"), NULL,
      ngx_http_ai_gateway_tokens_variable, NGX_HTTP_AI_GATEWAY_TOKENS_OUT,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_tokens_cached"), NULL,
      ngx_http_ai_gateway_tokens_variable,
      NGX_HTTP_AI_GATEWAY_TOKENS_CACHED, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_tokens_cache_write"), NULL,
      ngx_http_ai_gateway_tokens_variable,
      NGX_HTTP_AI_GATEWAY_TOKENS_CACHE_WRITE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_tokens_reasoning"), NULL,
      ngx_http_ai_gateway_tokens_variable,
      NGX_HTTP_AI_GATEWAY_TOKENS_REASONING, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_usage_partial"), NULL,
      ngx_http_ai_gateway_flag_variable, NGX_HTTP_AI_GATEWAY_FLAG_PARTIAL,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_cost"), NULL,
      ngx_http_ai_gateway_cost_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_custom_cost"), NULL,
      ngx_http_ai_gateway_flag_variable,
      NGX_HTTP_AI_GATEWAY_FLAG_CUSTOM_COST, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_cached"), NULL,
      ngx_http_ai_gateway_flag_variable, NGX_HTTP_AI_GATEWAY_FLAG_CACHED,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_metadata"), NULL,
      ngx_http_ai_gateway_metadata_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_duration"), NULL,
      ngx_http_ai_gateway_duration_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_client"), NULL,
      ngx_http_ai_gateway_client_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_key_alias"), NULL,
      ngx_http_ai_gateway_str_variable,
      offsetof(ngx_http_ai_gateway_ctx_t, access.alias),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    /* rate limits (ngx_http_ai_gateway_limit.c) */

    { ngx_string("ai_gateway_limit"), NULL,
      ngx_http_ai_gateway_limit_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_limit_remaining"), NULL,
      ngx_http_ai_gateway_limit_variable, 1, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_limit_spend_remaining"), NULL,
      ngx_http_ai_gateway_limit_variable, 2, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_ai_gateway_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_ai_gateway_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/*
 * A request that ran as attempts (retries, a request timeout, the
 * Universal Endpoint) reports what its last attempt did, the answer or the
 * last failure, exactly as a request without attempts reports what it did
 * itself: the attempt is the request, routed, sent and answered.  Before
 * any attempt ran, the request reports itself.  The log and event ids,
 * the duration and an error of the request's own are the request's.
 */

static ngx_http_request_t *
ngx_http_ai_gateway_var_request(ngx_http_request_t *r)
{
    ngx_http_request_t         *sr;
    ngx_http_ai_gateway_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    if (ctx == NULL) {
        return r;
    }

    sr = ngx_http_ai_gateway_retry_request(ctx);

    return sr ? sr : r;
}


static ngx_int_t
ngx_http_ai_gateway_str_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                  *s;
    ngx_http_ai_gateway_ctx_t  *ctx;

    r = ngx_http_ai_gateway_var_request(r);

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = (ngx_str_t *) ((char *) ctx + data);

    if (s->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->len = s->len;
    v->data = s->data;

    return NGX_OK;
}


/*
 * "model" of a JSON request body, looked up once, when first asked for.
 * A request's body is read once it is routed (the Unified API reads it
 * first); an attempt has its body from the start, and reports it from the
 * same point on, so that a routing error shows no model in either.
 */

static ngx_int_t
ngx_http_ai_gateway_model_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ai_gateway_ctx_t  *ctx;

    r = ngx_http_ai_gateway_var_request(r);

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    if (!ctx->route.model_done) {
        ctx->route.model_done = 1;

        if (r->request_body && r->request_body->bufs
            && (ctx->kind != NGX_HTTP_AI_GATEWAY_ATTEMPT || r->upstream
                || ctx->route.compat))
        {
            (void) ngx_http_ai_gateway_json_top_string(r->pool,
                                                       r->request_body->bufs,
                                                       "model",
                                                       &ctx->route.model);
        }
    }

    return ngx_http_ai_gateway_str_variable(r, v,
                             offsetof(ngx_http_ai_gateway_ctx_t, route.model));
}


static ngx_int_t
ngx_http_ai_gateway_log_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ai_gateway_ctx_t  *ctx;

    ctx = ngx_http_ai_gateway_get_ctx(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_http_ai_gateway_log_id(r, ctx);

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->len = sizeof(ctx->ids.log_id);
    v->data = ctx->ids.log_id;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_event_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ai_gateway_ctx_t  *ctx;

    ctx = ngx_http_ai_gateway_get_ctx(r);
    if (ctx == NULL || ngx_http_ai_gateway_event_id(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->len = ctx->ids.event_id.len;
    v->data = ctx->ids.event_id.data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_uint_t                  status;
    ngx_http_upstream_t        *u;
    ngx_http_ai_gateway_ctx_t  *ctx;

    r = ngx_http_ai_gateway_var_request(r);

    u = r->upstream;
    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    status = 0;

    if (u && ctx) {
        status = u->headers_in.status_n;

        if (status == 0 && u->state) {
            status = u->state->status;
        }
    }

    if (status == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (v->data == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(v->data, "%ui", status) - v->data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* seconds with milliseconds, as $upstream_response_time */

static ngx_int_t
ngx_http_ai_gateway_ttfb_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ai_gateway_ctx_t  *ctx;

    r = ngx_http_ai_gateway_var_request(r);

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    if (ctx == NULL || !ctx->relay.first_byte) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN + 4);
    if (v->data == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(v->data, "%T.%03M", (time_t) ctx->relay.ttfb / 1000,
                         ctx->relay.ttfb % 1000)
             - v->data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* the upstream URL without its query (which may carry a "key=") */

static ngx_int_t
ngx_http_ai_gateway_url_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                        *p;
    ngx_http_ai_gateway_ctx_t     *ctx;
    ngx_http_ai_gateway_target_t  *t;

    r = ngx_http_ai_gateway_var_request(r);

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    if (ctx == NULL || ctx->route.target.origin == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    t = &ctx->route.target;

    p = ngx_pnalloc(r->pool, sizeof("https://") - 1 + t->host_header.len
                             + t->path.len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;
    p = ngx_sprintf(p, "%s%V%V", t->ssl ? "https://" : "http://",
                    &t->host_header, &t->path);
    v->len = p - v->data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* an error of the request's own, else its last attempt's */

static ngx_int_t
ngx_http_ai_gateway_error_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ai_gateway_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    if (ctx && ctx->error.code == 0) {
        ctx = ngx_http_get_module_ctx(ngx_http_ai_gateway_var_request(r),
                                      ngx_http_ai_gateway_module);
    }

    if (ctx == NULL || ctx->error.code == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (v->data == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(v->data, "%ui", ctx->error.code) - v->data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* token counts; none when the answer reported none */

static ngx_int_t
ngx_http_ai_gateway_tokens_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    uint64_t                      n;
    ngx_http_ai_gateway_usage_t  *u;
    ngx_http_ai_gateway_ctx_t    *ctx;

    r = ngx_http_ai_gateway_var_request(r);

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    if (ctx == NULL || !ctx->usage.known) {
        v->not_found = 1;
        return NGX_OK;
    }

    u = &ctx->usage;

    switch (data) {

    case NGX_HTTP_AI_GATEWAY_TOKENS_IN:
        n = u->input + u->cached + u->cache_write;
        break;

    case NGX_HTTP_AI_GATEWAY_TOKENS_OUT:
        n = u->output;
        break;

    case NGX_HTTP_AI_GATEWAY_TOKENS_CACHED:
        n = u->cached;
        break;

    case NGX_HTTP_AI_GATEWAY_TOKENS_CACHE_WRITE:
        n = u->cache_write;
        break;

    default: /* NGX_HTTP_AI_GATEWAY_TOKENS_REASONING */
        n = u->reasoning;
    }

    v->data = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (v->data == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(v->data, "%uL", n) - v->data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* US dollars; none when there is no cost (no counts, no price) */

static ngx_int_t
ngx_http_ai_gateway_cost_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ai_gateway_ctx_t  *ctx;

    r = ngx_http_ai_gateway_var_request(r);

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    if (ctx == NULL || !ctx->cost.known) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = ngx_pnalloc(r->pool, NGX_HTTP_AI_GATEWAY_PRICE_LEN);
    if (v->data == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_http_ai_gateway_price_print(v->data, ctx->cost.value)
             - v->data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* "true" or "false" */

static ngx_int_t
ngx_http_ai_gateway_flag_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_uint_t                  flag;
    ngx_http_ai_gateway_ctx_t  *ctx;

    r = ngx_http_ai_gateway_var_request(r);

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    switch (data) {

    case NGX_HTTP_AI_GATEWAY_FLAG_CACHED:
        flag = ctx->cache.hit;
        break;

    case NGX_HTTP_AI_GATEWAY_FLAG_PARTIAL:
        flag = ctx->usage.known && ctx->usage.partial;
        break;

    default: /* NGX_HTTP_AI_GATEWAY_FLAG_CUSTOM_COST */
        flag = ctx->cost.known && ctx->cost.custom;
    }

    if (flag) {
        ngx_str_set(v, "true");

    } else {
        ngx_str_set(v, "false");
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* cf-aig-metadata's entries kept, as a JSON object */

static ngx_int_t
ngx_http_ai_gateway_metadata_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                  *md;
    ngx_http_ai_gateway_ctx_t  *ctx;

    r = ngx_http_ai_gateway_var_request(r);

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    md = ctx ? ngx_http_ai_gateway_cost_metadata(r, ctx) : NULL;

    if (md == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = md->data;
    v->len = md->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* milliseconds since the request came, as the hosted log's "duration" */

static ngx_int_t
ngx_http_ai_gateway_duration_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_msec_int_t   ms;
    ngx_time_t      *tp;

    if (ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module) == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    r = r->main;
    tp = ngx_timeofday();

    ms = (ngx_msec_int_t) ((tp->sec - r->start_sec) * 1000
                           + (tp->msec - r->start_msec));
    ms = ngx_max(ms, 0);

    v->data = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (v->data == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(v->data, "%M", ms) - v->data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}
