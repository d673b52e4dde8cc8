
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#ifndef _NGX_HTTP_AI_GATEWAY_API_H_INCLUDED_
#define _NGX_HTTP_AI_GATEWAY_API_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_module.h"


/*
 * The management API (ngx_http_ai_gateway_api.c): the hosted gateway's
 * REST API under /accounts/{account_id}/ai-gateway/, served by a location
 * with "ai_gateway_api".  api.c finds the resource, checks the token and
 * the query, and writes every answer (the envelope, result_info, the
 * error shape); a resource (api_logs.c) only fills in the answer, at once
 * or later (api->done()).
 */


/* error codes of the API, see docs/logs.md */

#define NGX_HTTP_AI_GATEWAY_API_NO_ROUTE        7000
#define NGX_HTTP_AI_GATEWAY_API_INVALID         7001
#define NGX_HTTP_AI_GATEWAY_API_NOT_FOUND       7003
#define NGX_HTTP_AI_GATEWAY_API_METHOD          7005
#define NGX_HTTP_AI_GATEWAY_API_UNAVAILABLE     7010
#define NGX_HTTP_AI_GATEWAY_API_INTERNAL        7500
#define NGX_HTTP_AI_GATEWAY_API_AUTH            10000


/* pages */

#define NGX_HTTP_AI_GATEWAY_API_PER_PAGE        20
#define NGX_HTTP_AI_GATEWAY_API_MAX_PER_PAGE    50


typedef struct ngx_http_ai_gateway_api_s  ngx_http_ai_gateway_api_t;

/*
 * NGX_OK: the answer is in api (a result, a payload, or an error);
 * NGX_AGAIN: api->done(api) follows; NGX_ERROR: a 500.
 */

typedef ngx_int_t (*ngx_http_ai_gateway_api_handler_pt)(
    ngx_http_ai_gateway_api_t *api);


/* a resource: a path under ai-gateway/ ("*" is one segment), a method */

typedef struct {
    ngx_str_t                              path;
    ngx_uint_t                             method;
    ngx_http_ai_gateway_api_handler_pt     handler;
    ngx_http_ai_gateway_query_key_t       *keys;      /* its filters */
    ngx_str_t                             *orders;    /* its order_by */
    ngx_uint_t                             what;
} ngx_http_ai_gateway_api_resource_t;


struct ngx_http_ai_gateway_api_s {
    ngx_http_request_t                    *request;
    ngx_http_ai_gateway_api_resource_t    *resource;

    ngx_str_t                              account;
    ngx_str_t                              gateway;
    ngx_str_t                              id;
    ngx_http_ai_gateway_log_target_t      *target;    /* the gateway's */

    ngx_array_t                            args;      /* of ngx_keyval_t */
    ngx_array_t                            filters;
    ngx_str_t                             *search;
    ngx_uint_t                             page;
    ngx_uint_t                             per_page;
    ngx_uint_t                             order;
    unsigned                               desc:1;
    unsigned                               ordered:1; /* order_by given */
    ngx_str_t                              body;

    /* the answer */

    ngx_uint_t                             status;
    ngx_uint_t                             code;      /* an error */
    ngx_str_t                              message;
    ngx_str_t                              result;    /* JSON */
    ngx_str_t                              raw;       /* a payload */
    ngx_str_t                              content_type;
    ngx_uint_t                             count;
    ngx_uint_t                             total;
    unsigned                               info:1;    /* result_info */
    unsigned                               is_raw:1;
    unsigned                               finished:1;

    /* set by api.c: the answer is there */
    void                                 (*done)(ngx_http_ai_gateway_api_t *a);

    /* set by the resource: the request ends, answered or not */
    void                                 (*cancel)(
                                               ngx_http_ai_gateway_api_t *a);
    void                                  *data;
};


#define ngx_http_ai_gateway_api_fail(api, st, c, text)                        \
    (api)->status = st;                                                       \
    (api)->code = c;                                                          \
    ngx_str_set(&(api)->message, text)


/* ngx_http_ai_gateway_api_logs.c */

ngx_int_t ngx_http_ai_gateway_api_logs_list(ngx_http_ai_gateway_api_t *api);
ngx_int_t ngx_http_ai_gateway_api_logs_delete(ngx_http_ai_gateway_api_t *api);
ngx_int_t ngx_http_ai_gateway_api_logs_get(ngx_http_ai_gateway_api_t *api);
ngx_int_t ngx_http_ai_gateway_api_logs_edit(ngx_http_ai_gateway_api_t *api);
ngx_int_t ngx_http_ai_gateway_api_logs_payload(
    ngx_http_ai_gateway_api_t *api);

/* ngx_http_ai_gateway_analytics.c */

ngx_int_t ngx_http_ai_gateway_api_analytics(ngx_http_ai_gateway_api_t *api);


extern ngx_module_t  ngx_http_ai_gateway_api_module;


#endif /* _NGX_HTTP_AI_GATEWAY_API_H_INCLUDED_ */
