
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


typedef struct ngx_http_ai_gateway_cache_store_s
    ngx_http_ai_gateway_cache_store_t;


/*
 * An "ai_gateway_cache zone" as written, kept until every zone is known:
 * a zone never declared is reported at this place (nginx itself would
 * only say "zero size shared memory zone", without a place).
 */

typedef struct {
    ngx_shm_zone_t                *zone;
    u_char                        *file;
    ngx_uint_t                     line;
} ngx_http_ai_gateway_cache_ref_t;


/* the cache settings of a location */

typedef struct {
    ngx_http_ai_gateway_cache_store_t  *store;  /* NULL: no cache */
    ngx_shm_zone_t                *zone;       /* ai_gateway_cache */
    ngx_http_ai_gateway_redis_t   *redis;      /* ai_gateway_cache_redis */
    ngx_str_t                      redis_prefix;
    time_t                         ttl;        /* 0: off by default */
    size_t                         max_size;
    ngx_msec_t                     lock_timeout;
    ngx_uint_t                     scope;
} ngx_http_ai_gateway_cache_conf_t;


/*
 * A cache store, by key (NGX_HTTP_AI_GATEWAY_CACHE_KEY_LEN bytes): the
 * shared memory zone (cache_shm.c) or Redis (cache_redis.c).  get()
 * returns NGX_OK with a copy of the entry in the pool, NGX_DECLINED when
 * there is none (or the store cannot be reached: a miss), or NGX_AGAIN
 * when it has asked: done(data, entry) follows, entry NULL for none,
 * unless cancel(*op) is called first.  put() and remove() never fail
 * loudly.
 */

typedef void (*ngx_http_ai_gateway_cache_done_pt)(void *data,
    ngx_str_t *entry);

struct ngx_http_ai_gateway_cache_store_s {
    ngx_int_t   (*get)(ngx_http_ai_gateway_cache_conf_t *conf, u_char *key,
                    ngx_pool_t *pool, ngx_str_t *entry,
                    ngx_http_ai_gateway_cache_done_pt done, void *data,
                    void **op, ngx_log_t *log);
    void        (*put)(ngx_http_ai_gateway_cache_conf_t *conf, u_char *key,
                    u_char *p, size_t len, time_t ttl, ngx_pool_t *pool,
                    ngx_log_t *log);
    void        (*remove)(ngx_http_ai_gateway_cache_conf_t *conf,
                    u_char *key, ngx_str_t *entry, ngx_pool_t *pool,
                    ngx_log_t *log);
    void        (*cancel)(void *op);
    u_char     *(*where)(ngx_http_ai_gateway_cache_conf_t *conf, u_char *buf,
                    size_t len);
};


extern ngx_http_ai_gateway_cache_store_t  ngx_http_ai_gateway_cache_shm_store;
extern ngx_http_ai_gateway_cache_store_t
    ngx_http_ai_gateway_cache_redis_store;


/* where a request's lookup stands (ngx_http_ai_gateway_cache_lookup()) */

typedef enum {
    NGX_HTTP_AI_GATEWAY_CACHE_START = 0,
    NGX_HTTP_AI_GATEWAY_CACHE_FETCHING,        /* the store's get under
                                                  way */
    NGX_HTTP_AI_GATEWAY_CACHE_NONE,            /* nothing found */
    NGX_HTTP_AI_GATEWAY_CACHE_LOCKED,          /* an identical request
                                                  is on its way */
    NGX_HTTP_AI_GATEWAY_CACHE_FOUND,           /* an entry to answer */
    NGX_HTTP_AI_GATEWAY_CACHE_UPSTREAM         /* the provider answers */
} ngx_http_ai_gateway_cache_state_e;


/* the cache state of one request */

typedef struct {
    ngx_http_request_t            *request;
    ngx_http_ai_gateway_cache_conf_t  *conf;
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
    void                          *op;         /* a store's get under way */

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

ngx_int_t ngx_http_ai_gateway_cache_check_zones(ngx_conf_t *cf);
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


#endif /* _NGX_HTTP_AI_GATEWAY_CACHE_H_INCLUDED_ */
