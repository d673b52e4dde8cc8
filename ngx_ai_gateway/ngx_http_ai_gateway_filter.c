
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_module.h"


/*
 * The gateway's filter module: one header filter and one body filter, in
 * which each concern that looks at a response has its turn, in this order:
 *
 *   1. hold      a body translated whole decides its own status, so its
 *                header waits until then (relay.c releases it)
 *   2. gateway   on the request's response: cf-aig-log-id,
 *                cf-aig-event-id, cf-aig-step; the translated type and
 *                length; for an error nginx produced in a gateway location,
 *                the gateway's envelope (error.c) in place of nginx's page
 *   3. cache     cf-aig-cache-status, and the copy kept for the store
 *                (cache.c)
 *   4. attempt   an attempt's response swallowed (it failed, another
 *                attempt follows) or made the request's (retry.c)
 *
 * The module is declared as an HTTP filter in "config"; its place in
 * nginx's filter chain is nginx's usual one for a third-party filter.
 */


static ngx_int_t ngx_http_ai_gateway_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_gateway_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_ai_gateway_gateway_headers(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
static ngx_int_t ngx_http_ai_gateway_add_header(ngx_http_request_t *r,
    ngx_str_t *name, ngx_str_t *value);
static ngx_int_t ngx_http_ai_gateway_filter_init(ngx_conf_t *cf);


static ngx_http_module_t  ngx_http_ai_gateway_filter_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_ai_gateway_filter_init,       /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_ai_gateway_filter_module = {
    NGX_MODULE_V1,
    &ngx_http_ai_gateway_filter_module_ctx, /* module context */
    NULL,                                  /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_http_ai_gateway_log_id_name =
    ngx_string("cf-aig-log-id");
static ngx_str_t  ngx_http_ai_gateway_event_id_name =
    ngx_string("cf-aig-event-id");
static ngx_str_t  ngx_http_ai_gateway_step_name = ngx_string("cf-aig-step");
static ngx_str_t  ngx_http_ai_gateway_step_zero = ngx_string("0");


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


static ngx_int_t
ngx_http_ai_gateway_header_filter(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_http_ai_gateway_ctx_t       *ctx;
    ngx_http_ai_gateway_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    /* 1. hold */

    if (ctx && ctx->relay.hold) {
        if (r->err_status == 0) {
            /* an answer translated whole: its header leaves with it */
            return NGX_OK;
        }

        /* nginx's own error response, the upstream failed before */
        ctx->relay.hold = 0;
    }

    /* 2. gateway */

    if (alcf->gateway_id.len) {

        if (r == r->main) {
            /* every response of a gateway location, errors included */

            ctx = ngx_http_ai_gateway_get_ctx(r);
            if (ctx == NULL) {
                return NGX_ERROR;
            }

        } else if (ctx == NULL || ctx->kind != NGX_HTTP_AI_GATEWAY_ATTEMPT) {
            return ngx_http_next_header_filter(r);
        }

        if (ngx_http_ai_gateway_gateway_headers(r, ctx) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (ctx == NULL) {
        return ngx_http_next_header_filter(r);
    }

    /* 3. cache */

    if (ngx_http_ai_gateway_cache_header(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    /* 4. attempt */

    if (r != r->main && ctx->kind == NGX_HTTP_AI_GATEWAY_ATTEMPT) {
        rc = ngx_http_ai_gateway_retry_header(r, ctx);

        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_ai_gateway_gateway_headers(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_str_t  value, step;

    if (r == r->main) {

        /* the ids (an attempt's go on the request's response) */

        ngx_http_ai_gateway_log_id(r, ctx);

        value.data = ctx->ids.log_id;
        value.len = sizeof(ctx->ids.log_id);

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

        if (ngx_http_ai_gateway_add_header(r,
                                           &ngx_http_ai_gateway_log_id_name,
                                           &value)
            != NGX_OK
            || ngx_http_ai_gateway_event_id(r, ctx) != NGX_OK
            || ngx_http_ai_gateway_add_header(r,
                                         &ngx_http_ai_gateway_event_id_name,
                                         &ctx->ids.event_id)
               != NGX_OK
            || ngx_http_ai_gateway_add_header(r,
                                              &ngx_http_ai_gateway_step_name,
                                              &step)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ctx->relay.mode == NGX_HTTP_AI_GATEWAY_TRANSLATE_STREAM) {
        ngx_http_ai_gateway_relay_headers_out(r, ctx);
    }

    if (r->err_status >= NGX_HTTP_BAD_REQUEST && !ctx->error.made) {

        /* a response nginx made for an error: the envelope instead */

        if (ngx_http_ai_gateway_envelope(r, ctx, r->err_status) != NGX_OK) {
            return NGX_ERROR;
        }
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

    if (ctx == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    /* 1. hold: before a held header, the upstream's empty flush only */

    if (ctx->relay.hold) {
        return NGX_OK;
    }

    if (r != r->main && ctx->kind != NGX_HTTP_AI_GATEWAY_ATTEMPT) {
        return ngx_http_next_body_filter(r, in);
    }

    /* 2. gateway: nginx's own error page dropped, the envelope sent once */

    if (ctx->error.made) {

        if (ctx->error.sent) {
            return NGX_OK;
        }

        ctx->error.sent = 1;

        b = ngx_calloc_buf(r->pool);
        if (b == NULL) {
            return NGX_ERROR;
        }

        b->pos = ctx->error.body.data;
        b->last = b->pos + ctx->error.body.len;
        b->memory = 1;
        b->last_buf = (r == r->main);
        b->last_in_chain = 1;

        out.buf = b;
        out.next = NULL;

        in = &out;
    }

    /* 3. cache */

    ngx_http_ai_gateway_cache_body(r, ctx, in);

    /* 4. attempt: a failed attempt's bytes are consumed here */

    if (r != r->main
        && ngx_http_ai_gateway_retry_body(r, ctx, in) != NGX_DECLINED)
    {
        return NGX_OK;
    }

    return ngx_http_next_body_filter(r, in);
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


static ngx_int_t
ngx_http_ai_gateway_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_ai_gateway_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_ai_gateway_body_filter;

    return NGX_OK;
}
