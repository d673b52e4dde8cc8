
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_module.h"


/*
 * The embedded cache store: a shared memory zone holding entries in a
 * red-black tree keyed by the SHA-256 cache key, and in a queue from the
 * most to the least recently used, as the limit_req module keeps its
 * states.  When the zone is full the least recently used entries make
 * room; an entry that cannot fit is simply not stored.  The zone is found
 * again by "nginx -s reload" (same name and size), with its entries.
 * Entries are decoded by the same checks as the ones read from Redis: an
 * entry found invalid is removed (ngx_http_ai_gateway_shm_remove()).
 */


typedef struct {
    u_char                         color;
    u_char                         dummy;
    u_short                        padding;
    ngx_queue_t                    queue;
    time_t                         expire;
    size_t                         len;
    u_char                         key[NGX_HTTP_AI_GATEWAY_CACHE_KEY_LEN];
    u_char                         data[1];
} ngx_http_ai_gateway_shm_node_t;


typedef struct {
    ngx_rbtree_t                   rbtree;
    ngx_rbtree_node_t              sentinel;
    ngx_queue_t                    queue;
} ngx_http_ai_gateway_shm_sh_t;


typedef struct {
    ngx_http_ai_gateway_shm_sh_t  *sh;
    ngx_slab_pool_t               *shpool;
} ngx_http_ai_gateway_shm_ctx_t;


static ngx_int_t ngx_http_ai_gateway_shm_init(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_ai_gateway_shm_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_http_ai_gateway_shm_node_t *ngx_http_ai_gateway_shm_find(
    ngx_http_ai_gateway_shm_ctx_t *ctx, u_char *key);
static ngx_int_t ngx_http_ai_gateway_shm_get(
    ngx_http_ai_gateway_cache_conf_t *conf, u_char *key, ngx_pool_t *pool,
    ngx_str_t *entry, ngx_http_ai_gateway_cache_done_pt done, void *data,
    void **op, ngx_log_t *log);
static void ngx_http_ai_gateway_shm_put(ngx_http_ai_gateway_cache_conf_t *conf,
    u_char *key, u_char *data, size_t len, time_t ttl, ngx_pool_t *pool,
    ngx_log_t *log);
static void ngx_http_ai_gateway_shm_remove(
    ngx_http_ai_gateway_cache_conf_t *conf, u_char *key, ngx_str_t *entry,
    ngx_pool_t *pool, ngx_log_t *log);
static u_char *ngx_http_ai_gateway_shm_where(
    ngx_http_ai_gateway_cache_conf_t *conf, u_char *buf, size_t len);
static void ngx_http_ai_gateway_shm_delete(ngx_http_ai_gateway_shm_ctx_t *ctx,
    ngx_http_ai_gateway_shm_node_t *sn);


#define ngx_http_ai_gateway_shm_node(n)                                       \
    ((ngx_http_ai_gateway_shm_node_t *) &(n)->color)


/* the rbtree key: the first bytes of the SHA-256 */

static ngx_rbtree_key_t
ngx_http_ai_gateway_shm_hash(u_char *key)
{
    ngx_rbtree_key_t  k;

    ngx_memcpy(&k, key, sizeof(ngx_rbtree_key_t));

    return k;
}


/* ai_gateway_cache_zone name:size; */

char *
ngx_http_ai_gateway_cache_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    u_char                         *p;
    ssize_t                         size;
    ngx_str_t                      *value, name, s;
    ngx_shm_zone_t                 *shm_zone;
    ngx_http_ai_gateway_shm_ctx_t  *ctx;

    value = cf->args->elts;

    p = (u_char *) ngx_strchr(value[1].data, ':');

    if (p == NULL || p == value[1].data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\" in \"ai_gateway_cache_zone\" "
                           "directive, it must be \"name:size\", e.g. "
                           "\"aigw:10m\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data;
    name.len = p - value[1].data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\" in "
                           "\"ai_gateway_cache_zone\" directive, it must be "
                           "\"name:size\", e.g. \"aigw:10m\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small in "
                           "\"ai_gateway_cache_zone\" directive, its size "
                           "must be at least %uzk", &value[1],
                           8 * ngx_pagesize / 1024);
        return NGX_CONF_ERROR;
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_gateway_shm_ctx_t));
    if (ctx == NULL) {
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_http_ai_gateway_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\" in "
                           "\"ai_gateway_cache_zone\" directive, a zone is "
                           "declared once", &name);
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_ai_gateway_shm_init;
    shm_zone->data = ctx;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ai_gateway_shm_init(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_ai_gateway_shm_ctx_t  *octx = data;

    size_t                          len;
    ngx_http_ai_gateway_shm_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (octx) {
        /* a reload: the entries stay */
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;
        return NGX_OK;
    }

    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = ctx->shpool->data;
        return NGX_OK;
    }

    ctx->sh = ngx_slab_alloc(ctx->shpool,
                             sizeof(ngx_http_ai_gateway_shm_sh_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;

    ngx_rbtree_init(&ctx->sh->rbtree, &ctx->sh->sentinel,
                    ngx_http_ai_gateway_shm_insert);

    ngx_queue_init(&ctx->sh->queue);

    len = sizeof(" in ai_gateway_cache_zone \"\"") + shm_zone->shm.name.len;

    ctx->shpool->log_ctx = ngx_slab_alloc(ctx->shpool, len);
    if (ctx->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(ctx->shpool->log_ctx, " in ai_gateway_cache_zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone is normal: the least recently used entries go */

    ctx->shpool->log_nomem = 0;

    return NGX_OK;
}


static void
ngx_http_ai_gateway_shm_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t               **p;
    ngx_http_ai_gateway_shm_node_t   *sn, *snt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else { /* node->key == temp->key */

            sn = ngx_http_ai_gateway_shm_node(node);
            snt = ngx_http_ai_gateway_shm_node(temp);

            p = (ngx_memcmp(sn->key, snt->key,
                            NGX_HTTP_AI_GATEWAY_CACHE_KEY_LEN) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static ngx_http_ai_gateway_shm_node_t *
ngx_http_ai_gateway_shm_find(ngx_http_ai_gateway_shm_ctx_t *ctx, u_char *key)
{
    ngx_int_t                        rc;
    ngx_rbtree_key_t                 hash;
    ngx_rbtree_node_t               *node, *sentinel;
    ngx_http_ai_gateway_shm_node_t  *sn;

    hash = ngx_http_ai_gateway_shm_hash(key);

    node = ctx->sh->rbtree.root;
    sentinel = ctx->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        /* hash == node->key */

        sn = ngx_http_ai_gateway_shm_node(node);

        rc = ngx_memcmp(key, sn->key, NGX_HTTP_AI_GATEWAY_CACHE_KEY_LEN);

        if (rc == 0) {
            return sn;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_http_ai_gateway_shm_delete(ngx_http_ai_gateway_shm_ctx_t *ctx,
    ngx_http_ai_gateway_shm_node_t *sn)
{
    ngx_rbtree_node_t  *node;

    node = (ngx_rbtree_node_t *)
               ((u_char *) sn - offsetof(ngx_rbtree_node_t, color));

    ngx_queue_remove(&sn->queue);
    ngx_rbtree_delete(&ctx->sh->rbtree, node);
    ngx_slab_free_locked(ctx->shpool, node);
}


/*
 * Returns NGX_OK with a copy of the entry in the pool, NGX_DECLINED when
 * there is none (or it expired), NGX_ERROR.
 */

static ngx_int_t
ngx_http_ai_gateway_shm_get(ngx_http_ai_gateway_cache_conf_t *conf,
    u_char *key, ngx_pool_t *pool, ngx_str_t *entry,
    ngx_http_ai_gateway_cache_done_pt done, void *data, void **op,
    ngx_log_t *log)
{
    ngx_http_ai_gateway_shm_ctx_t   *ctx;
    ngx_http_ai_gateway_shm_node_t  *sn;

    ctx = conf->zone->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    sn = ngx_http_ai_gateway_shm_find(ctx, key);

    if (sn == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_DECLINED;
    }

    if (sn->expire <= ngx_time()) {
        ngx_http_ai_gateway_shm_delete(ctx, sn);
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_DECLINED;
    }

    ngx_queue_remove(&sn->queue);
    ngx_queue_insert_head(&ctx->sh->queue, &sn->queue);

    entry->data = ngx_pnalloc(pool, sn->len);
    if (entry->data == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_DECLINED;
    }

    entry->len = sn->len;
    ngx_memcpy(entry->data, sn->data, sn->len);

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;
}


/*
 * Removes the key's entry if it still is the one given (an entry found
 * invalid): an entry stored meanwhile in its place stays.
 */

static void
ngx_http_ai_gateway_shm_remove(ngx_http_ai_gateway_cache_conf_t *conf,
    u_char *key, ngx_str_t *entry, ngx_pool_t *pool, ngx_log_t *log)
{
    ngx_http_ai_gateway_shm_ctx_t   *ctx;
    ngx_http_ai_gateway_shm_node_t  *sn;

    ctx = conf->zone->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    sn = ngx_http_ai_gateway_shm_find(ctx, key);

    if (sn && sn->len == entry->len
        && ngx_memcmp(sn->data, entry->data, entry->len) == 0)
    {
        ngx_http_ai_gateway_shm_delete(ctx, sn);
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


/* stores an entry, replacing the key's previous one; never fails loudly */

static void
ngx_http_ai_gateway_shm_put(ngx_http_ai_gateway_cache_conf_t *conf,
    u_char *key, u_char *data, size_t len, time_t ttl, ngx_pool_t *pool,
    ngx_log_t *log)
{
    ngx_shm_zone_t                  *zone;

    size_t                           size;
    ngx_uint_t                       evicted;
    ngx_queue_t                     *q;
    ngx_rbtree_node_t               *node;
    ngx_http_ai_gateway_shm_ctx_t   *ctx;
    ngx_http_ai_gateway_shm_node_t  *sn;

    zone = conf->zone;
    ctx = zone->data;

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_http_ai_gateway_shm_node_t, data)
           + len;

    if (size > zone->shm.size) {
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "ai_gateway: cache entry of %uz bytes does not fit in "
                      "zone \"%V\"", len, &zone->shm.name);
        return;
    }

    ngx_shmtx_lock(&ctx->shpool->mutex);

    sn = ngx_http_ai_gateway_shm_find(ctx, key);

    if (sn) {
        ngx_http_ai_gateway_shm_delete(ctx, sn);
    }

    evicted = 0;

    for ( ;; ) {
        node = ngx_slab_alloc_locked(ctx->shpool, size);

        if (node) {
            break;
        }

        if (ngx_queue_empty(&ctx->sh->queue)) {
            ngx_shmtx_unlock(&ctx->shpool->mutex);

            ngx_log_error(NGX_LOG_INFO, log, 0,
                          "ai_gateway: no room for a cache entry of %uz "
                          "bytes in zone \"%V\"", len, &zone->shm.name);
            return;
        }

        /* the least recently used entry makes room */

        q = ngx_queue_last(&ctx->sh->queue);
        sn = ngx_queue_data(q, ngx_http_ai_gateway_shm_node_t, queue);

        ngx_http_ai_gateway_shm_delete(ctx, sn);
        evicted++;
    }

    sn = ngx_http_ai_gateway_shm_node(node);

    node->key = ngx_http_ai_gateway_shm_hash(key);
    ngx_memcpy(sn->key, key, NGX_HTTP_AI_GATEWAY_CACHE_KEY_LEN);
    sn->expire = ngx_time() + ttl;
    sn->len = len;
    ngx_memcpy(sn->data, data, len);

    ngx_rbtree_insert(&ctx->sh->rbtree, node);
    ngx_queue_insert_head(&ctx->sh->queue, &sn->queue);

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    if (evicted) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                       "ai gateway cache: %ui entries evicted", evicted);
    }
}


static u_char *
ngx_http_ai_gateway_shm_where(ngx_http_ai_gateway_cache_conf_t *conf,
    u_char *buf, size_t len)
{
    return ngx_snprintf(buf, len, "zone \"%V\"", &conf->zone->shm.name);
}


ngx_http_ai_gateway_cache_store_t  ngx_http_ai_gateway_cache_shm_store = {
    ngx_http_ai_gateway_shm_get,
    ngx_http_ai_gateway_shm_put,
    ngx_http_ai_gateway_shm_remove,
    NULL,
    ngx_http_ai_gateway_shm_where
};
