
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#ifndef _NGX_HTTP_AI_GATEWAY_CACHE_H_INCLUDED_
#define _NGX_HTTP_AI_GATEWAY_CACHE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_redis.h"
#include "ngx_http_ai_gateway_cache_entry.h"


#define NGX_HTTP_AI_GATEWAY_CACHE_KEY_LEN     32
#define NGX_HTTP_AI_GATEWAY_CACHE_TTL_MIN     60
#define NGX_HTTP_AI_GATEWAY_CACHE_TTL_MAX     2592000
#define NGX_HTTP_AI_GATEWAY_CACHE_TTL_CUSTOM  300

#define NGX_HTTP_AI_GATEWAY_CACHE_SCOPE_CREDENTIAL  0
#define NGX_HTTP_AI_GATEWAY_CACHE_SCOPE_GATEWAY     1


typedef struct ngx_http_ai_gateway_cache_lock_s
    ngx_http_ai_gateway_cache_lock_t;


/* the cache settings of a location */

typedef struct {
    ngx_shm_zone_t                *zone;       /* ai_gateway_cache */
    ngx_http_ai_gateway_redis_t   *redis;      /* ai_gateway_cache_redis */
    ngx_str_t                      redis_prefix;
    time_t                         ttl;        /* 0: off by default */
    size_t                         max_size;
    ngx_msec_t                     lock_timeout;
    ngx_uint_t                     scope;
} ngx_http_ai_gateway_cache_conf_t;


/* where a request's lookup stands (ngx_http_ai_gateway_cache_lookup()) */

typedef enum {
    NGX_HTTP_AI_GATEWAY_CACHE_START = 0,
    NGX_HTTP_AI_GATEWAY_CACHE_REDIS,           /* a GET under way */
    NGX_HTTP_AI_GATEWAY_CACHE_NONE,            /* nothing found */
    NGX_HTTP_AI_GATEWAY_CACHE_LOCKED,          /* an identical request
                                                  is on its way */
    NGX_HTTP_AI_GATEWAY_CACHE_FOUND,           /* an entry to answer */
    NGX_HTTP_AI_GATEWAY_CACHE_UPSTREAM         /* the provider answers */
} ngx_http_ai_gateway_cache_state_e;


/* the cache state of one request */

typedef struct {
    ngx_http_request_t            *request;
    ngx_http_ai_gateway_cache_state_e  state;
    ngx_http_ai_gateway_cache_entry_t *entry;  /* FOUND: decoded */
    u_char                         key[NGX_HTTP_AI_GATEWAY_CACHE_KEY_LEN];
    u_char                         hex[2 * NGX_HTTP_AI_GATEWAY_CACHE_KEY_LEN];
    ngx_str_t                      custom;     /* cf-aig-cache-key */
    time_t                         ttl;

    u_char                        *buf;        /* the entry being kept */
    size_t                         len;
    size_t                         size;
    size_t                         head_size;  /* before the body */

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
char *ngx_http_ai_gateway_cache_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_ai_gateway_cache_scope(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void ngx_http_ai_gateway_cache_create_conf(
    ngx_http_ai_gateway_cache_conf_t *conf);
char *ngx_http_ai_gateway_cache_merge_conf(ngx_conf_t *cf,
    ngx_http_ai_gateway_cache_conf_t *prev,
    ngx_http_ai_gateway_cache_conf_t *conf);

/* ngx_http_ai_gateway_cache_key.c */

void ngx_http_ai_gateway_cache_exit_process(void);

/* ngx_http_ai_gateway_cache_shm.c */

char *ngx_http_ai_gateway_cache_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_gateway_shm_get(ngx_shm_zone_t *zone, u_char *key,
    ngx_pool_t *pool, ngx_str_t *entry);
void ngx_http_ai_gateway_shm_put(ngx_shm_zone_t *zone, u_char *key,
    u_char *data, size_t len, time_t ttl, ngx_log_t *log);
void ngx_http_ai_gateway_shm_remove(ngx_shm_zone_t *zone, u_char *key,
    ngx_str_t *entry);


#endif /* _NGX_HTTP_AI_GATEWAY_CACHE_H_INCLUDED_ */
