
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/rand.h>

#include "ngx_http_ai_gateway_module.h"


/*
 * The $ai_gateway_* variables (docs/variables.md), computed when used,
 * mostly from the request's context, and the log and event ids.  A request
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
static ngx_http_request_t *ngx_http_ai_gateway_var_request(
    ngx_http_request_t *r);
static void ngx_http_ai_gateway_random(u_char *buf, size_t len);


static ngx_http_variable_t  ngx_http_ai_gateway_vars[] = {

    { ngx_string("ai_gateway_id"), NULL,
      ngx_http_ai_gateway_str_variable,
      offsetof(ngx_http_ai_gateway_ctx_t, gateway_id),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_account_id"), NULL,
      ngx_http_ai_gateway_str_variable,
      offsetof(ngx_http_ai_gateway_ctx_t, account_id),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_provider"), NULL,
      ngx_http_ai_gateway_str_variable,
      offsetof(ngx_http_ai_gateway_ctx_t, provider),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_gateway_tls_name"), NULL,
      ngx_http_ai_gateway_str_variable,
      offsetof(ngx_http_ai_gateway_ctx_t, target.tls_name),
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

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_ai_gateway_event_header =
    ngx_string("cf-aig-event-id");


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
 * any attempt ran, the request reports itself.  The log and event ids and
 * an error of the request's own are the request's.
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

    if (!ctx->model_done) {
        ctx->model_done = 1;

        if (r->request_body && r->request_body->bufs
            && (!ctx->attempt || r->upstream || ctx->compat))
        {
            (void) ngx_http_ai_gateway_json_top_string(r->pool,
                                                       r->request_body->bufs,
                                                       "model", &ctx->model);
        }
    }

    return ngx_http_ai_gateway_str_variable(r, v,
                                   offsetof(ngx_http_ai_gateway_ctx_t, model));
}


/*
 * A ULID: 48 bits of milliseconds since the epoch and 80 random bits,
 * in Crockford's base32.
 */

void
ngx_http_ai_gateway_log_id(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    u_char       rnd[10], *p;
    uint64_t     ms, hi, lo;
    ngx_int_t    i;
    ngx_time_t  *tp;

    static u_char  alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

    if (ctx->log_id_done) {
        return;
    }

    ctx->log_id_done = 1;

    tp = ngx_timeofday();
    ms = (uint64_t) tp->sec * 1000 + tp->msec;

    ngx_http_ai_gateway_random(rnd, sizeof(rnd));

    /* 128 bits: hi = ms << 16 | rnd[0..1], lo = rnd[2..9] */

    hi = (ms << 16) | ((uint64_t) rnd[0] << 8) | rnd[1];
    lo = 0;

    for (i = 2; i < 10; i++) {
        lo = (lo << 8) | rnd[i];
    }

    /* 26 characters of 5 bits, the first one holding 3 bits */

    p = ctx->log_id + sizeof(ctx->log_id);

    for (i = 0; i < 26; i++) {
        *--p = alphabet[lo & 0x1f];
        lo = (lo >> 5) | ((hi & 0x1f) << 59);
        hi >>= 5;
    }
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
    v->len = sizeof(ctx->log_id);
    v->data = ctx->log_id;

    return NGX_OK;
}


/*
 * The client's "cf-aig-event-id" when it is a sane token, else a random
 * UUID (version 4).
 */

ngx_int_t
ngx_http_ai_gateway_event_id(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    u_char           *p, rnd[16];
    ngx_uint_t        i, n;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    static u_char  hex[] = "0123456789abcdef";

    if (ctx->event_id.len) {
        return NGX_OK;
    }

    part = &r->headers_in.headers.part;
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

        if (h[i].key.len != ngx_http_ai_gateway_event_header.len
            || ngx_strncasecmp(h[i].key.data,
                               ngx_http_ai_gateway_event_header.data,
                               h[i].key.len) != 0
            || h[i].value.len == 0 || h[i].value.len > 128)
        {
            continue;
        }

        for (p = h[i].value.data; p < h[i].value.data + h[i].value.len; p++) {
            if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '\\') {
                break;
            }
        }

        if (p == h[i].value.data + h[i].value.len) {
            ctx->event_id = h[i].value;
            return NGX_OK;
        }
    }

    p = ngx_pnalloc(r->pool, 36);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_http_ai_gateway_random(rnd, sizeof(rnd));

    rnd[6] = (rnd[6] & 0x0f) | 0x40;
    rnd[8] = (rnd[8] & 0x3f) | 0x80;

    ctx->event_id.data = p;

    for (n = 0; n < 16; n++) {
        if (n == 4 || n == 6 || n == 8 || n == 10) {
            *p++ = '-';
        }

        *p++ = hex[rnd[n] >> 4];
        *p++ = hex[rnd[n] & 0xf];
    }

    ctx->event_id.len = p - ctx->event_id.data;

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
    v->len = ctx->event_id.len;
    v->data = ctx->event_id.data;

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

    if (ctx == NULL || !ctx->first_byte) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN + 4);
    if (v->data == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(v->data, "%T.%03M", (time_t) ctx->ttfb / 1000,
                         ctx->ttfb % 1000)
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

    if (ctx == NULL || ctx->target.origin == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    t = &ctx->target;

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

    if (ctx && ctx->err_code == 0) {
        ctx = ngx_http_get_module_ctx(ngx_http_ai_gateway_var_request(r),
                                      ngx_http_ai_gateway_module);
    }

    if (ctx == NULL || ctx->err_code == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (v->data == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(v->data, "%ui", ctx->err_code) - v->data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * Random bytes for the ids, from OpenSSL's generator in batches: one call
 * per 4 KiB instead of two per request.  The batch is filled lazily, in
 * the worker that uses it, so that workers never share bytes.
 */

static void
ngx_http_ai_gateway_random(u_char *buf, size_t len)
{
    size_t  i;

    static u_char     batch[4096];
    static size_t     pos = sizeof(batch);
    static ngx_pid_t  pid;

    if (pos + len > sizeof(batch) || pid != ngx_pid) {

        if (RAND_bytes(batch, sizeof(batch)) != 1) {
            /* never fails with a seeded OpenSSL; a weaker source then */

            for (i = 0; i < sizeof(batch); i++) {
                batch[i] = (u_char) ngx_random();
            }
        }

        pos = 0;
        pid = ngx_pid;
    }

    ngx_memcpy(buf, batch + pos, len);
    pos += len;
}
