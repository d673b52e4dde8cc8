
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#ifndef _NGX_HTTP_AI_GATEWAY_LOG_STORE_H_INCLUDED_
#define _NGX_HTTP_AI_GATEWAY_LOG_STORE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_redis.h"
#include "ngx_http_ai_gateway_log.h"


/*
 * Where request log records go (docs/logs.md): a gateway's store, in a
 * shared memory zone (log_shm.c) or in Redis (log_redis.c), two
 * implementations of one interface, as the cache's stores are.  Writes
 * come from the log phase and never wait nor fail a request; reads come
 * from the Logs API, in batches.
 */


#define NGX_HTTP_AI_GATEWAY_LOG_STOP_INSERTING  0
#define NGX_HTTP_AI_GATEWAY_LOG_DELETE_OLDEST   1

/* a gateway's records at most, by default (the hosted gateway's) */
#define NGX_HTTP_AI_GATEWAY_LOG_MAX_DEFAULT     10000000

/* which payload a get() brings */
#define NGX_HTTP_AI_GATEWAY_LOG_NO_BODY         0
#define NGX_HTTP_AI_GATEWAY_LOG_REQUEST         1
#define NGX_HTTP_AI_GATEWAY_LOG_RESPONSE        2


typedef struct ngx_http_ai_gateway_log_store_s
    ngx_http_ai_gateway_log_store_t;


/* a gateway's store: one per gateway id, shared by its locations */

typedef struct {
    ngx_str_t                          gateway;
    ngx_str_t                          account;    /* empty: any */
    ngx_http_ai_gateway_log_store_t   *store;
    ngx_shm_zone_t                    *zone;
    ngx_http_ai_gateway_redis_t       *redis;
    ngx_str_t                          prefix;     /* Redis keys */
    ngx_uint_t                         max;
    ngx_uint_t                         strategy;

    /* the worker's own */

    ngx_uint_t                         inflight;   /* Redis writes */
    ngx_uint_t                         lost;       /* not logged yet */
    time_t                             logged;
} ngx_http_ai_gateway_log_target_t;


/* the log settings of a location */

typedef struct {
    ngx_http_ai_gateway_log_target_t  *target;     /* NULL: no store */
    ngx_shm_zone_t                    *zone;
    ngx_http_ai_gateway_redis_t       *redis;
    ngx_str_t                          redis_prefix;
    ngx_uint_t                         max;
    ngx_uint_t                         strategy;
    ngx_flag_t                         collect;
    ngx_flag_t                         payload;
    size_t                             payload_size;
} ngx_http_ai_gateway_log_conf_t;


/* the place of a record in its gateway's order */

typedef struct {
    uint64_t                           created_at;
    u_char                             id[NGX_HTTP_AI_GATEWAY_LOG_ID_LEN];
} ngx_http_ai_gateway_log_pos_t;


/*
 * A record read from a store: its bytes (log_record.c decodes them), the
 * fields a PATCH changed when the store keeps them apart (data NULL when
 * not), the payload asked for.
 */

typedef struct {
    ngx_str_t                          rec;
    ngx_str_t                          feedback;
    ngx_str_t                          score;
    ngx_str_t                          metadata;
    ngx_str_t                          body;
    unsigned                           found:1;
} ngx_http_ai_gateway_log_item_t;


/*
 * A scan: up to n records in created_at order (desc: newest first),
 * after the cursor when it is set, else after skipping "skip" of them
 * (a store skips at most NGX_HTTP_AI_GATEWAY_LOG_MAX_SKIP per scan and
 * says how many it did).
 */

#define NGX_HTTP_AI_GATEWAY_LOG_MAX_SKIP   65536

typedef struct {
    ngx_http_ai_gateway_log_pos_t      cursor;
    ngx_uint_t                         skip;
    ngx_uint_t                         n;
    unsigned                           set:1;      /* the cursor */
    unsigned                           desc:1;

    /* the answer */

    ngx_array_t                        items;      /* of log_item_t */
    ngx_uint_t                         total;      /* the gateway's */
    ngx_uint_t                         skipped;
    ngx_http_ai_gateway_log_pos_t      last;       /* the last one seen */
    unsigned                           end:1;      /* nothing after */

    /* a store's own cursor (Redis: the last member, as it is) */

    size_t                             mark_len;
    u_char                             mark[128];
} ngx_http_ai_gateway_log_scan_t;


/*
 * Done later: rc NGX_OK, NGX_DECLINED (no such record) or NGX_ERROR (the
 * store failed; logged).
 */

typedef void (*ngx_http_ai_gateway_log_done_pt)(void *data, ngx_int_t rc);


/*
 * Each call returns NGX_OK (done), NGX_DECLINED (no such record),
 * NGX_ERROR (the store cannot be reached), or NGX_AGAIN: done(data, rc)
 * follows, unless cancel(*op) is called first.  put() never fails
 * loudly: a record that cannot be stored is counted and reported by
 * ngx_http_ai_gateway_log_lost().
 */

struct ngx_http_ai_gateway_log_store_s {
    void        (*put)(ngx_http_ai_gateway_log_target_t *t,
                    ngx_http_ai_gateway_log_pos_t *pos, ngx_str_t *rec,
                    ngx_str_t *req, ngx_str_t *resp, ngx_pool_t *pool,
                    ngx_log_t *log);
    ngx_int_t   (*scan)(ngx_http_ai_gateway_log_target_t *t,
                    ngx_http_ai_gateway_log_scan_t *scan, ngx_pool_t *pool,
                    ngx_http_ai_gateway_log_done_pt done, void *data,
                    void **op, ngx_log_t *log);
    ngx_int_t   (*get)(ngx_http_ai_gateway_log_target_t *t, u_char *id,
                    ngx_uint_t body, ngx_http_ai_gateway_log_item_t *item,
                    ngx_pool_t *pool, ngx_http_ai_gateway_log_done_pt done,
                    void *data, void **op, ngx_log_t *log);
    ngx_int_t   (*patch)(ngx_http_ai_gateway_log_target_t *t, u_char *id,
                    ngx_http_ai_gateway_log_item_t *change, ngx_pool_t *pool,
                    ngx_http_ai_gateway_log_done_pt done, void *data,
                    void **op, ngx_log_t *log);
    ngx_int_t   (*remove)(ngx_http_ai_gateway_log_target_t *t,
                    ngx_http_ai_gateway_log_pos_t *pos, ngx_uint_t n,
                    ngx_uint_t *removed, ngx_pool_t *pool,
                    ngx_http_ai_gateway_log_done_pt done, void *data,
                    void **op, ngx_log_t *log);
    void        (*cancel)(void *op);
};


extern ngx_http_ai_gateway_log_store_t  ngx_http_ai_gateway_log_shm_store;
extern ngx_http_ai_gateway_log_store_t  ngx_http_ai_gateway_log_redis_store;


/* ngx_http_ai_gateway_log_store.c */

void ngx_http_ai_gateway_log_lost(ngx_http_ai_gateway_log_target_t *t,
    ngx_uint_t n, const char *why, ngx_log_t *log);
ngx_http_ai_gateway_log_target_t *ngx_http_ai_gateway_log_target(
    ngx_array_t *targets, ngx_str_t *gateway);

/* ngx_http_ai_gateway_log_shm.c */

char *ngx_http_ai_gateway_log_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_AI_GATEWAY_LOG_STORE_H_INCLUDED_ */
