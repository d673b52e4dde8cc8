
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#ifndef _NGX_HTTP_AI_GATEWAY_CACHE_H_INCLUDED_
#define _NGX_HTTP_AI_GATEWAY_CACHE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


#define NGX_HTTP_AI_GATEWAY_CACHE_KEY_LEN     32
#define NGX_HTTP_AI_GATEWAY_CACHE_TTL_MIN     60
#define NGX_HTTP_AI_GATEWAY_CACHE_TTL_MAX     2592000
#define NGX_HTTP_AI_GATEWAY_CACHE_TTL_CUSTOM  300

#define NGX_HTTP_AI_GATEWAY_CACHE_SCOPE_CREDENTIAL  0
#define NGX_HTTP_AI_GATEWAY_CACHE_SCOPE_GATEWAY     1


typedef struct ngx_http_ai_gateway_redis_s  ngx_http_ai_gateway_redis_t;
typedef struct ngx_http_ai_gateway_redis_op_s  ngx_http_ai_gateway_redis_op_t;
typedef struct ngx_http_ai_gateway_cache_lock_s
    ngx_http_ai_gateway_cache_lock_t;


/* the cache settings of a location */

typedef struct {
    ngx_shm_zone_t                *zone;       /* ai_gateway_cache */
    ngx_http_ai_gateway_redis_t   *redis;      /* ai_gateway_cache_redis */
    time_t                         ttl;        /* 0: off by default */
    size_t                         max_size;
    ngx_msec_t                     lock_timeout;
    ngx_uint_t                     scope;
} ngx_http_ai_gateway_cache_conf_t;


/* the cache state of one request */

typedef struct {
    ngx_http_request_t            *request;
    u_char                         key[NGX_HTTP_AI_GATEWAY_CACHE_KEY_LEN];
    u_char                         hex[2 * NGX_HTTP_AI_GATEWAY_CACHE_KEY_LEN];
    ngx_str_t                      custom;     /* cf-aig-cache-key */
    time_t                         ttl;

    u_char                        *buf;        /* the entry being kept */
    size_t                         len;
    size_t                         size;

    ngx_http_ai_gateway_cache_lock_t  *lock;   /* leader or waiter of */
    ngx_queue_t                    queue;      /* in lock->waiters */
    ngx_event_t                    wait;
    ngx_http_ai_gateway_redis_op_t *op;        /* a Redis GET under way */

    unsigned                       skip:1;     /* no lookup */
    unsigned                       keyed:1;
    unsigned                       store:1;    /* keeping a copy */
    unsigned                       head:1;     /* status, headers kept */
    unsigned                       complete:1; /* provider body ended */
    unsigned                       leader:1;
    unsigned                       waiting:1;
    unsigned                       waited:1;   /* no second wait */
    unsigned                       stored:1;
    unsigned                       retry:1;    /* woken: look up again */
} ngx_http_ai_gateway_cache_t;


/* ngx_http_ai_gateway_cache.c */

char *ngx_http_ai_gateway_cache_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_ai_gateway_cache_scope(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void ngx_http_ai_gateway_cache_create_conf(
    ngx_http_ai_gateway_cache_conf_t *conf);
char *ngx_http_ai_gateway_cache_merge_conf(ngx_conf_t *cf,
    ngx_http_ai_gateway_cache_conf_t *prev,
    ngx_http_ai_gateway_cache_conf_t *conf);
ngx_int_t ngx_http_ai_gateway_cache_init(ngx_conf_t *cf);
ngx_int_t ngx_http_ai_gateway_cache_add_variables(ngx_conf_t *cf);

/* ngx_http_ai_gateway_cache_key.c */

void ngx_http_ai_gateway_cache_exit_process(void);

/* ngx_http_ai_gateway_cache_shm.c */

char *ngx_http_ai_gateway_cache_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_gateway_shm_get(ngx_shm_zone_t *zone, u_char *key,
    ngx_pool_t *pool, ngx_str_t *entry);
void ngx_http_ai_gateway_shm_put(ngx_shm_zone_t *zone, u_char *key,
    u_char *data, size_t len, time_t ttl, ngx_log_t *log);

/* ngx_http_ai_gateway_redis.c */

typedef void (*ngx_http_ai_gateway_redis_handler_pt)(void *data,
    ngx_str_t *entry);

char *ngx_http_ai_gateway_cache_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_http_ai_gateway_redis_op_t *ngx_http_ai_gateway_redis_get(
    ngx_http_ai_gateway_redis_t *rd, u_char *key, size_t len,
    ngx_http_ai_gateway_redis_handler_pt handler, void *data,
    ngx_log_t *log);
void ngx_http_ai_gateway_redis_cancel(ngx_http_ai_gateway_redis_op_t *op);
void ngx_http_ai_gateway_redis_set(ngx_http_ai_gateway_redis_t *rd,
    u_char *key, size_t len, u_char *data, size_t size, time_t ttl,
    ngx_log_t *log);


#endif /* _NGX_HTTP_AI_GATEWAY_CACHE_H_INCLUDED_ */
