
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#ifndef _NGX_HTTP_AI_GATEWAY_LIMIT_H_INCLUDED_
#define _NGX_HTTP_AI_GATEWAY_LIMIT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_redis.h"


/* what a limit counts */

#define NGX_HTTP_AI_GATEWAY_LIMIT_REQUESTS     0
#define NGX_HTTP_AI_GATEWAY_LIMIT_TOKENS       1
#define NGX_HTTP_AI_GATEWAY_LIMIT_COST         2   /* a spend limit */

/* a spend limit counts in billionths of a US dollar */

#define NGX_HTTP_AI_GATEWAY_LIMIT_NANO         1000000000.0

/* which tokens */

#define NGX_HTTP_AI_GATEWAY_LIMIT_TOTAL        0
#define NGX_HTTP_AI_GATEWAY_LIMIT_INPUT        1
#define NGX_HTTP_AI_GATEWAY_LIMIT_OUTPUT       2

/* the technique */

#define NGX_HTTP_AI_GATEWAY_LIMIT_FIXED        0
#define NGX_HTTP_AI_GATEWAY_LIMIT_SLIDING      1

/* the exact sliding window keeps one time per request up to this limit */

#define NGX_HTTP_AI_GATEWAY_LIMIT_RING_MAX     4096

/* what a store is asked to do */

#define NGX_HTTP_AI_GATEWAY_LIMIT_PEEK         0   /* check only */
#define NGX_HTTP_AI_GATEWAY_LIMIT_TAKE         1   /* check, count 1 */
#define NGX_HTTP_AI_GATEWAY_LIMIT_CHARGE       2   /* add n, no check */

/* keys longer than this are replaced by their SHA-256 (hex) */

#define NGX_HTTP_AI_GATEWAY_LIMIT_KEY_MAX      256


/* one "ai_gateway_limit" directive */

typedef struct {
    ngx_str_t                      name;
    ngx_shm_zone_t                *zone;
    ngx_http_complex_value_t      *key;        /* NULL: the gateway */
    uint64_t                       limit;
    ngx_msec_t                     interval;
    ngx_uint_t                     kind;
    ngx_uint_t                     count;      /* tokens: which */
    ngx_uint_t                     technique;
    ngx_http_ai_gateway_redis_t   *redis;      /* else the zone */
    ngx_str_t                      cost;       /* cost=, as written */
    ngx_array_t                   *models;     /* model= filter */
    ngx_array_t                   *providers;  /* provider= filter */
    ngx_http_complex_value_t      *when;       /* applies if non-empty,
                                                  not "0" */
    unsigned                       refuse:1;   /* fail=refuse */
    unsigned                       ring:1;     /* exact sliding window */
} ngx_http_ai_gateway_limit_t;


struct ngx_http_ai_gateway_limit_conf_s {
    ngx_array_t                   *limits;     /* of limit_t */
    ngx_flag_t                     headers;    /* RateLimit-* */
    ngx_http_complex_value_t      *clock;      /* tests only */
};


/* a store's answer for one limit and key */

typedef struct {
    uint64_t                       used;       /* in the window, before */
    uint64_t                       remaining;  /* after this request */
    ngx_msec_t                     reset;      /* ms: until one passes
                                                  again (refused), or the
                                                  window is new */
    unsigned                       refused:1;
} ngx_http_ai_gateway_limit_res_t;


/* a Redis check's answer; res NULL: Redis failed */

typedef void (*ngx_http_ai_gateway_limit_done_pt)(void *data,
    ngx_http_ai_gateway_limit_res_t *res);


/* ngx_http_ai_gateway_limit_redis.c */

ngx_int_t ngx_http_ai_gateway_limit_redis(ngx_http_ai_gateway_limit_t *lim,
    ngx_str_t *key, ngx_uint_t op, uint64_t now, ngx_pool_t *pool,
    ngx_log_t *log, ngx_http_ai_gateway_limit_done_pt done, void *data,
    void **opp);
void ngx_http_ai_gateway_limit_redis_charge(ngx_http_ai_gateway_limit_t *lim,
    ngx_str_t *key, uint64_t n, uint64_t now, ngx_pool_t *pool,
    ngx_log_t *log);
void ngx_http_ai_gateway_limit_redis_cancel(void *op);

/* ngx_http_ai_gateway_limit_shm.c */

ngx_shm_zone_t *ngx_http_ai_gateway_limit_shm_zone(ngx_conf_t *cf,
    ngx_str_t *name);
ngx_int_t ngx_http_ai_gateway_limit_shm(ngx_http_ai_gateway_limit_t *lim,
    ngx_str_t *key, ngx_uint_t op, uint64_t n, uint64_t now,
    ngx_http_ai_gateway_limit_res_t *res);


#endif /* _NGX_HTTP_AI_GATEWAY_LIMIT_H_INCLUDED_ */
