
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_module.h"


/*
 * The cache store in Redis (ai_gateway_cache_redis), over the connection
 * of redis.c: an entry is the string "{prefix}{hex key}" with its time to
 * live in milliseconds (SET ... PX), read with GET and removed with DEL.
 * The store is shared by every nginx that names the same Redis; it fails
 * open: a Redis that does not answer in time is a miss.
 */


typedef struct {
    ngx_http_ai_gateway_cache_done_pt   done;
    void                               *data;
    ngx_pool_t                         *pool;
    ngx_http_ai_gateway_redis_op_t     *op;
} ngx_http_ai_gateway_cache_redis_get_t;


static ngx_int_t ngx_http_ai_gateway_cache_redis_key(
    ngx_http_ai_gateway_cache_conf_t *conf, u_char *key, ngx_pool_t *pool,
    ngx_str_t *name);
static void ngx_http_ai_gateway_cache_redis_reply(void *data,
    ngx_http_ai_gateway_redis_reply_t *reply);


static ngx_int_t
ngx_http_ai_gateway_cache_redis_get(ngx_http_ai_gateway_cache_conf_t *conf,
    u_char *key, ngx_pool_t *pool, ngx_str_t *entry,
    ngx_http_ai_gateway_cache_done_pt done, void *data, void **op,
    ngx_log_t *log)
{
    ngx_str_t                               argv[2];
    ngx_http_ai_gateway_cache_redis_get_t  *g;

    g = ngx_palloc(pool, sizeof(ngx_http_ai_gateway_cache_redis_get_t));
    if (g == NULL) {
        return NGX_DECLINED;
    }

    ngx_str_set(&argv[0], "GET");

    if (ngx_http_ai_gateway_cache_redis_key(conf, key, pool, &argv[1])
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    g->done = done;
    g->data = data;
    g->pool = pool;

    g->op = ngx_http_ai_gateway_redis_command(conf->redis, 2, argv,
                                          NGX_HTTP_AI_GATEWAY_REDIS_NIL
                                          |NGX_HTTP_AI_GATEWAY_REDIS_STRING,
                                          ngx_http_ai_gateway_cache_redis_reply,
                                          g, log);
    if (g->op == NULL) {
        /* not connected: a miss */
        return NGX_DECLINED;
    }

    *op = g;

    return NGX_AGAIN;
}


/* Redis answered (a string or nil) or failed (NULL) */

static void
ngx_http_ai_gateway_cache_redis_reply(void *data,
    ngx_http_ai_gateway_redis_reply_t *reply)
{
    ngx_http_ai_gateway_cache_redis_get_t *g = data;

    ngx_str_t   copy, *entry;

    g->op = NULL;
    entry = NULL;

    if (reply && reply->type == NGX_HTTP_AI_GATEWAY_REDIS_STRING) {
        /* hiredis frees its reply: the entry needs its own copy */

        copy.data = ngx_pnalloc(g->pool, reply->str.len);

        if (copy.data) {
            copy.len = reply->str.len;
            ngx_memcpy(copy.data, reply->str.data, reply->str.len);
            entry = &copy;
        }
    }

    g->done(g->data, entry);
}


static void
ngx_http_ai_gateway_cache_redis_cancel(void *op)
{
    ngx_http_ai_gateway_cache_redis_get_t *g = op;

    if (g->op) {
        ngx_http_ai_gateway_redis_cancel(g->op);
        g->op = NULL;
    }
}


static void
ngx_http_ai_gateway_cache_redis_put(ngx_http_ai_gateway_cache_conf_t *conf,
    u_char *key, u_char *p, size_t len, time_t ttl, ngx_pool_t *pool,
    ngx_log_t *log)
{
    u_char     px[NGX_TIME_T_LEN + 3];
    ngx_str_t  argv[5];

    ngx_str_set(&argv[0], "SET");
    argv[2].data = p;
    argv[2].len = len;
    ngx_str_set(&argv[3], "PX");
    argv[4].data = px;
    argv[4].len = ngx_sprintf(px, "%T", ttl * 1000) - px;

    if (ngx_http_ai_gateway_cache_redis_key(conf, key, pool, &argv[1])
        == NGX_OK)
    {
        ngx_http_ai_gateway_redis_send(conf->redis, 5, argv, log);
    }
}


static void
ngx_http_ai_gateway_cache_redis_remove(ngx_http_ai_gateway_cache_conf_t *conf,
    u_char *key, ngx_str_t *entry, ngx_pool_t *pool, ngx_log_t *log)
{
    ngx_str_t  argv[2];

    ngx_str_set(&argv[0], "DEL");

    if (ngx_http_ai_gateway_cache_redis_key(conf, key, pool, &argv[1])
        == NGX_OK)
    {
        ngx_http_ai_gateway_redis_send(conf->redis, 2, argv, log);
    }
}


static u_char *
ngx_http_ai_gateway_cache_redis_where(ngx_http_ai_gateway_cache_conf_t *conf,
    u_char *buf, size_t len)
{
    return ngx_snprintf(buf, len, "Redis %V",
                        ngx_http_ai_gateway_redis_name(conf->redis));
}


/* the entry's Redis key: the prefix and the hex key */

static ngx_int_t
ngx_http_ai_gateway_cache_redis_key(ngx_http_ai_gateway_cache_conf_t *conf,
    u_char *key, ngx_pool_t *pool, ngx_str_t *name)
{
    u_char  *p;

    name->len = conf->redis_prefix.len + 2 * NGX_HTTP_AI_GATEWAY_CACHE_KEY_LEN;

    name->data = ngx_pnalloc(pool, name->len);
    if (name->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(name->data, conf->redis_prefix.data,
                   conf->redis_prefix.len);

    (void) ngx_hex_dump(p, key, NGX_HTTP_AI_GATEWAY_CACHE_KEY_LEN);

    return NGX_OK;
}


ngx_http_ai_gateway_cache_store_t  ngx_http_ai_gateway_cache_redis_store = {
    ngx_http_ai_gateway_cache_redis_get,
    ngx_http_ai_gateway_cache_redis_put,
    ngx_http_ai_gateway_cache_redis_remove,
    ngx_http_ai_gateway_cache_redis_cancel,
    ngx_http_ai_gateway_cache_redis_where
};
