
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#ifndef _NGX_HTTP_AI_GATEWAY_QUERY_H_INCLUDED_
#define _NGX_HTTP_AI_GATEWAY_QUERY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * The management API's query strings, knowing nothing of HTTP
 * (ngx_http_ai_gateway_query.c): the arguments split and unescaped, and
 * the "filters" of list and delete requests, checked against a resource's
 * table of keys.  Shared by every resource that filters (logs today,
 * datasets and evaluations later).
 */


#define NGX_HTTP_AI_GATEWAY_QUERY_MAX_ARGS      64
#define NGX_HTTP_AI_GATEWAY_QUERY_MAX_FILTERS   32
#define NGX_HTTP_AI_GATEWAY_QUERY_MAX_VALUES    64


/* what a filter key compares */

#define NGX_HTTP_AI_GATEWAY_KEY_STRING   0
#define NGX_HTTP_AI_GATEWAY_KEY_NUMBER   1
#define NGX_HTTP_AI_GATEWAY_KEY_BOOL     2
#define NGX_HTTP_AI_GATEWAY_KEY_DATE     3     /* RFC 3339, or ms */


/* operators: the first five are the API's, the others the deprecated
   parameters' (min_cost...) */

#define NGX_HTTP_AI_GATEWAY_OP_EQ        0
#define NGX_HTTP_AI_GATEWAY_OP_NEQ       1
#define NGX_HTTP_AI_GATEWAY_OP_CONTAINS  2
#define NGX_HTTP_AI_GATEWAY_OP_LT        3
#define NGX_HTTP_AI_GATEWAY_OP_GT        4
#define NGX_HTTP_AI_GATEWAY_OP_LE        5
#define NGX_HTTP_AI_GATEWAY_OP_GE        6


/* a value of a filter, converted for its key */

#define NGX_HTTP_AI_GATEWAY_VALUE_NULL    0
#define NGX_HTTP_AI_GATEWAY_VALUE_STRING  1
#define NGX_HTTP_AI_GATEWAY_VALUE_NUMBER  2    /* numbers, booleans, dates */


typedef struct {
    ngx_str_t                      name;
    ngx_uint_t                     type;
} ngx_http_ai_gateway_query_key_t;


typedef struct {
    ngx_uint_t                     type;
    ngx_str_t                      str;
    double                         num;
} ngx_http_ai_gateway_query_value_t;


typedef struct {
    ngx_uint_t                     key;        /* index in the table */
    ngx_uint_t                     op;
    ngx_uint_t                     nvalues;
    ngx_http_ai_gateway_query_value_t  *values;
} ngx_http_ai_gateway_query_filter_t;


ngx_int_t ngx_http_ai_gateway_query_args(ngx_pool_t *pool, ngx_str_t *args,
    ngx_array_t *out);
ngx_str_t *ngx_http_ai_gateway_query_arg(ngx_array_t *args, const char *name);
ngx_int_t ngx_http_ai_gateway_query_filters(ngx_pool_t *pool,
    ngx_array_t *args, ngx_http_ai_gateway_query_key_t *keys,
    ngx_array_t *filters, ngx_str_t *err);
ngx_int_t ngx_http_ai_gateway_query_add(ngx_pool_t *pool,
    ngx_http_ai_gateway_query_key_t *keys, ngx_array_t *filters,
    ngx_uint_t key, ngx_uint_t op, ngx_str_t *value, ngx_str_t *err);
ngx_int_t ngx_http_ai_gateway_query_enum(ngx_pool_t *pool, ngx_str_t *names,
    ngx_str_t *value, ngx_str_t *err);
ngx_int_t ngx_http_ai_gateway_query_number(u_char *p, size_t len,
    double *n);
ngx_int_t ngx_http_ai_gateway_query_date(u_char *p, size_t len,
    double *ms);


#endif /* _NGX_HTTP_AI_GATEWAY_QUERY_H_INCLUDED_ */
