
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_module.h"


/*
 * The gateway's errors: the code table, ngx_http_ai_gateway_fail() that
 * records a code and message for the request, and the one envelope
 * builder.  An error the module finds is answered by
 * ngx_http_ai_gateway_send_error(); one that nginx produces (its special
 * responses: 502 and 504 of the upstream machinery, 413, 500...) gets
 * the envelope in place of nginx's page from the filter module
 * (ngx_http_ai_gateway_filter.c), which calls
 * ngx_http_ai_gateway_envelope().  Responses relayed from a provider are
 * never touched.  This file registers nothing.
 */


typedef struct {
    ngx_uint_t                     code;
    ngx_uint_t                     status;
    ngx_str_t                      message;
} ngx_http_ai_gateway_code_t;


static ngx_http_ai_gateway_code_t *ngx_http_ai_gateway_code(ngx_uint_t code,
    ngx_uint_t status);


static ngx_http_ai_gateway_code_t  ngx_http_ai_gateway_codes[] = {

    { NGX_HTTP_AI_GATEWAY_ERR_NO_GATEWAY, NGX_HTTP_BAD_REQUEST,
      ngx_string("Please configure AI Gateway in the Cloudflare dashboard") },

    { NGX_HTTP_AI_GATEWAY_ERR_RATE_LIMITED, NGX_HTTP_TOO_MANY_REQUESTS,
      ngx_string("Rate limited") },

    { NGX_HTTP_AI_GATEWAY_ERR_SPEND_LIMITED, NGX_HTTP_TOO_MANY_REQUESTS,
      ngx_string("Spend limit exceeded") },

    { NGX_HTTP_AI_GATEWAY_ERR_PROVIDER_FAILED, NGX_HTTP_BAD_GATEWAY,
      ngx_string("Failed to get response from provider") },

    { NGX_HTTP_AI_GATEWAY_ERR_BAD_PROVIDER, NGX_HTTP_BAD_REQUEST,
      ngx_string("Invalid provider") },

    { NGX_HTTP_AI_GATEWAY_ERR_UNAUTHORIZED, NGX_HTTP_UNAUTHORIZED,
      ngx_string("Unauthorized") },

    { NGX_HTTP_AI_GATEWAY_ERR_BYOK_ALIAS, NGX_HTTP_BAD_REQUEST,
      ngx_string("No stored provider key of that alias") },

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

    ctx->error.code = code;

    if (fmt) {
        p = ngx_pnalloc(r->pool, 512);

        if (p) {
            va_start(args, fmt);
            ctx->error.message.len = ngx_vslprintf(p, p + 512, fmt, args) - p;
            va_end(args);
            ctx->error.message.data = p;
        }
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "ai_gateway: %ui %V", code,
                  ctx->error.message.len ? &ctx->error.message : &c->message);

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


ngx_int_t
ngx_http_ai_gateway_envelope(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_uint_t status)
{
    ngx_str_t                    message;
    ngx_http_ai_gateway_code_t  *c;

    c = ngx_http_ai_gateway_code(ctx->error.code, status);

    if (ctx->error.code == 0) {
        ctx->error.code = c->code;
    }

    message = ctx->error.message.len ? ctx->error.message : c->message;

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

    if (ngx_http_ai_gateway_json_error(r->pool, status, ctx->error.code,
                                       &message, &ctx->error.body)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->error.made = 1;

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    ngx_str_null(&r->headers_out.charset);

    r->headers_out.content_length_n = ctx->error.body.len;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    return NGX_OK;
}
