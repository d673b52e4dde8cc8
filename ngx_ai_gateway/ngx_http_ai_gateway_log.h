
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#ifndef _NGX_HTTP_AI_GATEWAY_LOG_H_INCLUDED_
#define _NGX_HTTP_AI_GATEWAY_LOG_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_gateway_json.h"
#include "ngx_http_ai_gateway_query.h"


/*
 * A request log record, knowing nothing of HTTP
 * (ngx_http_ai_gateway_log_record.c): the fields of the hosted gateway's
 * log object, its bytes in a store (encoded, and decoded with every length
 * checked: a store's bytes are not trusted), its JSON for the Logs API,
 * and the filters and orders of the API applied to it.
 */


#define NGX_HTTP_AI_GATEWAY_LOG_ID_LEN          26

/* a string field of a record at most, heads included */
#define NGX_HTTP_AI_GATEWAY_LOG_MAX_STR         65536

/* a request or response head kept at most */
#define NGX_HTTP_AI_GATEWAY_LOG_MAX_HEAD        16384


/* the string fields, in their encoded order */

#define NGX_HTTP_AI_GATEWAY_LOG_PROVIDER        0
#define NGX_HTTP_AI_GATEWAY_LOG_MODEL           1
#define NGX_HTTP_AI_GATEWAY_LOG_MODEL_TYPE      2
#define NGX_HTTP_AI_GATEWAY_LOG_PATH            3
#define NGX_HTTP_AI_GATEWAY_LOG_REQUEST_TYPE    4
#define NGX_HTTP_AI_GATEWAY_LOG_REQUEST_CT      5
#define NGX_HTTP_AI_GATEWAY_LOG_RESPONSE_CT     6
#define NGX_HTTP_AI_GATEWAY_LOG_EVENT_ID        7
#define NGX_HTTP_AI_GATEWAY_LOG_METADATA        8     /* a JSON object, or
                                                         "null" */
#define NGX_HTTP_AI_GATEWAY_LOG_USER_AGENT      9
#define NGX_HTTP_AI_GATEWAY_LOG_REQUEST_HEAD    10
#define NGX_HTTP_AI_GATEWAY_LOG_RESPONSE_HEAD   11
#define NGX_HTTP_AI_GATEWAY_LOG_NSTR            12


/* flags */

#define NGX_HTTP_AI_GATEWAY_LOG_SUCCESS         0x0001
#define NGX_HTTP_AI_GATEWAY_LOG_CACHED          0x0002
#define NGX_HTTP_AI_GATEWAY_LOG_USAGE           0x0004  /* tokens known */
#define NGX_HTTP_AI_GATEWAY_LOG_COST            0x0008  /* cost known */
#define NGX_HTTP_AI_GATEWAY_LOG_CUSTOM_COST     0x0010
#define NGX_HTTP_AI_GATEWAY_LOG_PARTIAL         0x0020  /* usage partial */
#define NGX_HTTP_AI_GATEWAY_LOG_TTFB            0x0040
#define NGX_HTTP_AI_GATEWAY_LOG_SCORE           0x0080
#define NGX_HTTP_AI_GATEWAY_LOG_REQUEST_HEAD_OK 0x0100  /* head complete */
#define NGX_HTTP_AI_GATEWAY_LOG_RESPONSE_HEAD_OK 0x0200
#define NGX_HTTP_AI_GATEWAY_LOG_REQUEST_BODY    0x0400  /* payload kept */
#define NGX_HTTP_AI_GATEWAY_LOG_RESPONSE_BODY   0x0800
#define NGX_HTTP_AI_GATEWAY_LOG_REQUEST_CUT     0x1000  /* kept in part */
#define NGX_HTTP_AI_GATEWAY_LOG_RESPONSE_CUT    0x2000
#define NGX_HTTP_AI_GATEWAY_LOG_COMPAT          0x4000  /* the Unified
                                                           API */
#define NGX_HTTP_AI_GATEWAY_LOG_AUTHENTICATED   0x8000  /* a gateway
                                                           token */
#define NGX_HTTP_AI_GATEWAY_LOG_FLAGS           0xffff


typedef struct {
    u_char                         id[NGX_HTTP_AI_GATEWAY_LOG_ID_LEN];
    uint32_t                       flags;
    uint64_t                       created_at;  /* ms since the epoch */
    uint64_t                       duration;    /* ms */
    uint64_t                       ttfb;        /* ms */
    uint64_t                       input;       /* usage, see module.h */
    uint64_t                       cached;
    uint64_t                       cache_write;
    uint64_t                       output;
    uint64_t                       reasoning;
    uint64_t                       request_size;
    uint64_t                       response_size;
    double                         cost;
    ngx_uint_t                     status;
    ngx_uint_t                     step;
    ngx_int_t                      feedback;    /* -1, 0 (none), 1 */
    ngx_uint_t                     score;       /* 0..100, with the flag */
    ngx_str_t                      str[NGX_HTTP_AI_GATEWAY_LOG_NSTR];
} ngx_http_ai_gateway_log_record_t;


/* the keys of the Logs API's filters, in the order of their table */

#define NGX_HTTP_AI_GATEWAY_LOG_KEY_ID                  0
#define NGX_HTTP_AI_GATEWAY_LOG_KEY_CREATED_AT          1
#define NGX_HTTP_AI_GATEWAY_LOG_KEY_REQUEST_CT          2
#define NGX_HTTP_AI_GATEWAY_LOG_KEY_RESPONSE_CT         3
#define NGX_HTTP_AI_GATEWAY_LOG_KEY_REQUEST_TYPE        4
#define NGX_HTTP_AI_GATEWAY_LOG_KEY_SUCCESS             5
#define NGX_HTTP_AI_GATEWAY_LOG_KEY_CACHED              6
#define NGX_HTTP_AI_GATEWAY_LOG_KEY_PROVIDER            7
#define NGX_HTTP_AI_GATEWAY_LOG_KEY_MODEL               8
#define NGX_HTTP_AI_GATEWAY_LOG_KEY_MODEL_TYPE          9
#define NGX_HTTP_AI_GATEWAY_LOG_KEY_COST                10
#define NGX_HTTP_AI_GATEWAY_LOG_KEY_TOKENS              11
#define NGX_HTTP_AI_GATEWAY_LOG_KEY_TOKENS_IN           12
#define NGX_HTTP_AI_GATEWAY_LOG_KEY_TOKENS_OUT          13
#define NGX_HTTP_AI_GATEWAY_LOG_KEY_DURATION            14
#define NGX_HTTP_AI_GATEWAY_LOG_KEY_FEEDBACK            15
#define NGX_HTTP_AI_GATEWAY_LOG_KEY_EVENT_ID            16
#define NGX_HTTP_AI_GATEWAY_LOG_KEY_METADATA_KEY        17
#define NGX_HTTP_AI_GATEWAY_LOG_KEY_METADATA_VALUE      18
#define NGX_HTTP_AI_GATEWAY_LOG_KEY_AUTHENTICATION      19
#define NGX_HTTP_AI_GATEWAY_LOG_KEY_WHOLESALE           20
#define NGX_HTTP_AI_GATEWAY_LOG_KEY_COMPATIBILITY_MODE  21
#define NGX_HTTP_AI_GATEWAY_LOG_KEY_DLP_ACTION          22
#define NGX_HTTP_AI_GATEWAY_LOG_KEY_USER_AGENT          23


/* the orders of lists and deletes, in the order of their table */

#define NGX_HTTP_AI_GATEWAY_LOG_ORDER_CREATED_AT        0
#define NGX_HTTP_AI_GATEWAY_LOG_ORDER_PROVIDER          1
#define NGX_HTTP_AI_GATEWAY_LOG_ORDER_MODEL             2
#define NGX_HTTP_AI_GATEWAY_LOG_ORDER_MODEL_TYPE        3
#define NGX_HTTP_AI_GATEWAY_LOG_ORDER_SUCCESS           4
#define NGX_HTTP_AI_GATEWAY_LOG_ORDER_CACHED            5
#define NGX_HTTP_AI_GATEWAY_LOG_ORDER_COST              6
#define NGX_HTTP_AI_GATEWAY_LOG_ORDER_TOKENS_IN         7
#define NGX_HTTP_AI_GATEWAY_LOG_ORDER_TOKENS_OUT        8
#define NGX_HTTP_AI_GATEWAY_LOG_ORDER_DURATION          9
#define NGX_HTTP_AI_GATEWAY_LOG_ORDER_FEEDBACK          10


/* a record's place in an order other than created_at: its sort key */

#define NGX_HTTP_AI_GATEWAY_LOG_SORT_STR        64

typedef struct {
    double                         num;
    uint64_t                       created_at;
    size_t                         len;        /* of str: its first bytes */
    u_char                         str[NGX_HTTP_AI_GATEWAY_LOG_SORT_STR];
    u_char                         id[NGX_HTTP_AI_GATEWAY_LOG_ID_LEN];
} ngx_http_ai_gateway_log_sort_t;


extern ngx_http_ai_gateway_query_key_t  ngx_http_ai_gateway_log_keys[];
extern ngx_str_t  ngx_http_ai_gateway_log_orders[];


ngx_int_t ngx_http_ai_gateway_log_encode(ngx_pool_t *pool,
    ngx_http_ai_gateway_log_record_t *rec, ngx_str_t *out);
ngx_int_t ngx_http_ai_gateway_log_decode(u_char *p, size_t len,
    ngx_http_ai_gateway_log_record_t *rec);
ngx_int_t ngx_http_ai_gateway_log_override(
    ngx_http_ai_gateway_log_record_t *rec, ngx_str_t *feedback,
    ngx_str_t *score, ngx_str_t *metadata);
ngx_uint_t ngx_http_ai_gateway_log_secret_name(u_char *name, size_t len);
ngx_int_t ngx_http_ai_gateway_log_metadata(ngx_pool_t *pool, yajl_val v,
    ngx_str_t *out);
ngx_int_t ngx_http_ai_gateway_log_json(ngx_http_ai_gateway_gen_t *gen,
    ngx_http_ai_gateway_log_record_t *rec, ngx_uint_t full);
ngx_uint_t ngx_http_ai_gateway_log_match(ngx_pool_t *pool,
    ngx_http_ai_gateway_log_record_t *rec, ngx_array_t *filters,
    ngx_str_t *search);
void ngx_http_ai_gateway_log_sort_key(ngx_http_ai_gateway_log_record_t *rec,
    ngx_uint_t order, ngx_http_ai_gateway_log_sort_t *key);
ngx_int_t ngx_http_ai_gateway_log_sort_cmp(ngx_http_ai_gateway_log_sort_t *a,
    ngx_http_ai_gateway_log_sort_t *b, ngx_uint_t order);
u_char *ngx_http_ai_gateway_log_time(u_char *buf, uint64_t ms);


#endif /* _NGX_HTTP_AI_GATEWAY_LOG_H_INCLUDED_ */
