
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_module.h"


/*
 * Every error the gateway itself produces leaves through one place: the
 * request is finalized with an HTTP status, nginx produces its special
 * response, and the header and body filters below replace that response
 * with the gateway's JSON envelope.  This covers errors found by the
 * module (ngx_http_ai_gateway_fail()), by the upstream machinery (502,
 * 504) and by nginx itself (413, 400, 500) alike.  Responses relayed from
 * a provider are never touched.
 */


typedef struct {
    ngx_uint_t                     code;
    ngx_uint_t                     status;
    ngx_str_t                      message;
} ngx_http_ai_gateway_code_t;


static ngx_http_ai_gateway_code_t *ngx_http_ai_gateway_code(ngx_uint_t code,
    ngx_uint_t status);
static ngx_int_t ngx_http_ai_gateway_envelope(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_uint_t status);
static ngx_int_t ngx_http_ai_gateway_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_gateway_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_ai_gateway_add_header(ngx_http_request_t *r,
    ngx_str_t *name, ngx_str_t *value);


static ngx_http_ai_gateway_code_t  ngx_http_ai_gateway_codes[] = {

    { NGX_HTTP_AI_GATEWAY_ERR_NO_GATEWAY, NGX_HTTP_BAD_REQUEST,
      ngx_string("Please configure AI Gateway in the Cloudflare dashboard") },

    { NGX_HTTP_AI_GATEWAY_ERR_RATE_LIMITED, NGX_HTTP_TOO_MANY_REQUESTS,
      ngx_string("Rate limited") },

    { NGX_HTTP_AI_GATEWAY_ERR_PROVIDER_FAILED, NGX_HTTP_BAD_GATEWAY,
      ngx_string("Failed to get response from provider") },

    { NGX_HTTP_AI_GATEWAY_ERR_BAD_PROVIDER, NGX_HTTP_BAD_REQUEST,
      ngx_string("Invalid provider") },

    { NGX_HTTP_AI_GATEWAY_ERR_UNAUTHORIZED, NGX_HTTP_UNAUTHORIZED,
      ngx_string("Unauthorized") },

    { NGX_HTTP_AI_GATEWAY_ERR_BAD_PATH, NGX_HTTP_BAD_REQUEST,
      ngx_string("Malformed gateway path") },

    { NGX_HTTP_AI_GATEWAY_ERR_TOO_LARGE, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
      ngx_string("Request body too large") },

    { NGX_HTTP_AI_GATEWAY_ERR_TIMEOUT, NGX_HTTP_GATEWAY_TIME_OUT,
      ngx_string("Provider did not respond in time") },

    { NGX_HTTP_AI_GATEWAY_ERR_BAD_HEADER, NGX_HTTP_BAD_REQUEST,
      ngx_string("Invalid header value") },

    { NGX_HTTP_AI_GATEWAY_ERR_NOT_AVAILABLE, NGX_HTTP_NOT_IMPLEMENTED,
      ngx_string("Not available") },

    { NGX_HTTP_AI_GATEWAY_ERR_BAD_MODEL, NGX_HTTP_BAD_REQUEST,
      ngx_string("Invalid model") },

    { NGX_HTTP_AI_GATEWAY_ERR_BAD_REQUEST, NGX_HTTP_BAD_REQUEST,
      ngx_string("Bad request") },

    { NGX_HTTP_AI_GATEWAY_ERR_LOCATION, NGX_HTTP_FORBIDDEN,
      ngx_string("Forbidden: a Universal Endpoint step or a retried "
                 "request must be served by the location of the request, "
                 "whose access rules it passed") },

    { NGX_HTTP_AI_GATEWAY_ERR_CREDENTIALS, NGX_HTTP_UNAUTHORIZED,
      ngx_string("Provider credentials refused") },

    { NGX_HTTP_AI_GATEWAY_ERR_GATEWAY, 0,
      ngx_string("Gateway error") },

    { 0, 0, ngx_null_string }
};


static ngx_str_t  ngx_http_ai_gateway_log_id_name =
    ngx_string("cf-aig-log-id");
static ngx_str_t  ngx_http_ai_gateway_event_id_name =
    ngx_string("cf-aig-event-id");
static ngx_str_t  ngx_http_ai_gateway_step_name = ngx_string("cf-aig-step");
static ngx_str_t  ngx_http_ai_gateway_step_zero = ngx_string("0");


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


/*
 * Records the gateway error for the response and returns its HTTP status,
 * for ngx_http_ai_gateway_send_error().  fmt == NULL means the code's own
 * message.
 */

ngx_int_t
ngx_http_ai_gateway_fail(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_uint_t code, const char *fmt, ...)
{
    u_char                      *p;
    va_list                      args;
    ngx_http_ai_gateway_code_t  *c;

    c = ngx_http_ai_gateway_code(code, 0);

    ctx->err_code = code;

    if (fmt) {
        p = ngx_pnalloc(r->pool, 512);

        if (p) {
            va_start(args, fmt);
            ctx->err_message.len = ngx_vslprintf(p, p + 512, fmt, args) - p;
            va_end(args);
            ctx->err_message.data = p;
        }
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "ai_gateway: %ui %V", code,
                  ctx->err_message.len ? &ctx->err_message : &c->message);

    return c->status ? c->status : NGX_HTTP_INTERNAL_SERVER_ERROR;
}


/*
 * The gateway answers its own errors itself rather than through nginx's
 * special responses, so that the client connection stays alive.
 */

ngx_int_t
ngx_http_ai_gateway_send_error(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_uint_t status)
{
    ngx_int_t  rc;

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_ai_gateway_envelope(r, ctx, status) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = status;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    /* the body filter puts the envelope in */

    return ngx_http_send_special(r, NGX_HTTP_LAST);
}


static ngx_http_ai_gateway_code_t *
ngx_http_ai_gateway_code(ngx_uint_t code, ngx_uint_t status)
{
    ngx_http_ai_gateway_code_t  *c;

    if (code == 0) {
        /* an error nginx produced: find its code by status */

        switch (status) {

        case NGX_HTTP_BAD_GATEWAY:
            code = NGX_HTTP_AI_GATEWAY_ERR_PROVIDER_FAILED;
            break;

        case NGX_HTTP_GATEWAY_TIME_OUT:
            code = NGX_HTTP_AI_GATEWAY_ERR_TIMEOUT;
            break;

        case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
            code = NGX_HTTP_AI_GATEWAY_ERR_TOO_LARGE;
            break;

        case NGX_HTTP_UNAUTHORIZED:
            code = NGX_HTTP_AI_GATEWAY_ERR_UNAUTHORIZED;
            break;

        case NGX_HTTP_TOO_MANY_REQUESTS:
            code = NGX_HTTP_AI_GATEWAY_ERR_RATE_LIMITED;
            break;

        default:
            code = NGX_HTTP_AI_GATEWAY_ERR_GATEWAY;
        }
    }

    for (c = ngx_http_ai_gateway_codes; c->code; c++) {
        if (c->code == code) {
            return c;
        }
    }

    return c - 1;
}


static ngx_int_t
ngx_http_ai_gateway_header_filter(ngx_http_request_t *r)
{
    ngx_str_t                        value, step;
    ngx_http_ai_gateway_ctx_t       *ctx;
    ngx_http_ai_gateway_loc_conf_t  *alcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    if (ctx && ctx->hold) {
        if (r->err_status == 0) {
            /* an answer translated whole: its header leaves with it */
            return NGX_OK;
        }

        /* nginx's own error response, the upstream failed before */
        ctx->hold = 0;
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_module);

    if (alcf->gateway_id.len == 0) {
        return ngx_http_next_header_filter(r);
    }

    if (r != r->main) {
        if (ctx == NULL || !ctx->attempt) {
            return ngx_http_next_header_filter(r);
        }

        /* an attempt: the request it is made for gets the ids */

        goto body;
    }

    ctx = ngx_http_ai_gateway_get_ctx(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    /* every response carries the log and event ids, errors included */

    ngx_http_ai_gateway_log_id(r, ctx);

    value.data = ctx->log_id;
    value.len = sizeof(ctx->log_id);

    /* the Universal Endpoint's step that answered */

    step = ngx_http_ai_gateway_step_zero;

    if (ctx->retry) {
        step.data = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
        if (step.data == NULL) {
            return NGX_ERROR;
        }

        step.len = ngx_sprintf(step.data, "%ui",
                               ngx_http_ai_gateway_retry_step(ctx))
                   - step.data;
    }

    if (ngx_http_ai_gateway_add_header(r, &ngx_http_ai_gateway_log_id_name,
                                       &value)
        != NGX_OK
        || ngx_http_ai_gateway_event_id(r, ctx) != NGX_OK
        || ngx_http_ai_gateway_add_header(r,
                                          &ngx_http_ai_gateway_event_id_name,
                                          &ctx->event_id)
           != NGX_OK
        || ngx_http_ai_gateway_add_header(r, &ngx_http_ai_gateway_step_name,
                                          &step)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

body:

    if (ctx->relay == NGX_HTTP_AI_GATEWAY_TRANSLATE_STREAM) {
        ngx_http_ai_gateway_relay_headers_out(r, ctx);
    }

    if (r->err_status >= NGX_HTTP_BAD_REQUEST && !ctx->error_body) {

        /* a response nginx made for an error: the envelope instead */

        if (ngx_http_ai_gateway_envelope(r, ctx, r->err_status) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_ai_gateway_envelope(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_uint_t status)
{
    ngx_str_t                    message;
    ngx_http_ai_gateway_code_t  *c;

    c = ngx_http_ai_gateway_code(ctx->err_code, status);

    if (ctx->err_code == 0) {
        ctx->err_code = c->code;
    }

    message = ctx->err_message.len ? ctx->err_message : c->message;

    if (c->status == 0) {
        /* no code of its own: nginx's reason phrase */

        switch (status) {

        case NGX_HTTP_BAD_REQUEST:
            ngx_str_set(&message, "Bad request");
            break;

        case NGX_HTTP_FORBIDDEN:
            ngx_str_set(&message, "Forbidden");
            break;

        case NGX_HTTP_NOT_FOUND:
            ngx_str_set(&message, "Not found");
            break;

        case NGX_HTTP_REQUEST_TIME_OUT:
            ngx_str_set(&message, "Request timed out");
            break;

        case NGX_HTTP_NOT_ALLOWED:
            ngx_str_set(&message, "Method not allowed");
            break;

        case NGX_HTTP_REQUEST_URI_TOO_LARGE:
            ngx_str_set(&message, "Request URI too long");
            break;

        case NGX_HTTP_REQUEST_HEADER_TOO_LARGE:
            ngx_str_set(&message, "Request header too large");
            break;

        case NGX_HTTP_SERVICE_UNAVAILABLE:
            ngx_str_set(&message, "Service unavailable");
            break;

        default:
            ngx_str_set(&message, "Internal gateway error");
        }
    }

    if (ngx_http_ai_gateway_json_error(r->pool, status, ctx->err_code,
                                       &message, &ctx->err_body)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->error_body = 1;

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    ngx_str_null(&r->headers_out.charset);

    r->headers_out.content_length_n = ctx->err_body.len;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t                  *b;
    ngx_chain_t                 out;
    ngx_http_ai_gateway_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    if (ctx && ctx->hold) {
        /* before a held header: the upstream's empty flush only */
        return NGX_OK;
    }

    if (ctx == NULL || !ctx->error_body || (r != r->main && !ctx->attempt))
    {
        return ngx_http_next_body_filter(r, in);
    }

    /* nginx's own error page is dropped, the envelope goes once */

    if (ctx->error_sent) {
        return NGX_OK;
    }

    ctx->error_sent = 1;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = ctx->err_body.data;
    b->last = b->pos + ctx->err_body.len;
    b->memory = 1;
    b->last_buf = (r == r->main);
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}


static ngx_int_t
ngx_http_ai_gateway_add_header(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key = *name;
    h->value = *value;
    h->lowcase_key = name->data;

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_gateway_filter_init(ngx_conf_t *cf)
{
    /*
     * the cache's filters see the response after these ones, and the
     * retry filters, deciding on an attempt's response, after all
     */

    if (ngx_http_ai_gateway_retry_init(cf) != NGX_OK
        || ngx_http_ai_gateway_cache_init(cf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_ai_gateway_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_ai_gateway_body_filter;

    return NGX_OK;
}
