
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_module.h"
#include "ngx_http_ai_gateway_limit.h"


/*
 * The limits' store on one node: a shared memory zone
 * ("ai_gateway_limit_zone") holding one state per limit and key, in a
 * red-black tree keyed by the CRC32 of the key, and in a queue from the
 * most to the least recently used, as the limit_req module keeps its
 * states.  A state is either a window (fixed: the count of the clock-
 * aligned window now; sliding by estimate: the counts of this window and
 * the one before, weighted as Cloudflare's sliding limits are) or a ring
 * of the times of the last accepted requests (the exact sliding window of
 * a request limit of at most NGX_HTTP_AI_GATEWAY_LIMIT_RING_MAX).  Every
 * check and update is done under the zone's lock, so a check and the
 * count it makes are one step: no two workers both take the last place.
 * A new state that does not fit makes room by dropping the least recently
 * used ones (states that are idle first): the number of keys is bounded by
 * the zone's size, and a key dropped starts again from nothing.
 */


typedef struct {
    u_char                         color;
    u_char                         dummy;
    u_short                        len;        /* of the key */
    ngx_queue_t                    queue;
    uint64_t                       window;     /* its index */
    uint64_t                       count;      /* in it */
    uint64_t                       prev;       /* in the one before */
    uint64_t                       last;       /* ms: the last use */
    ngx_msec_t                     interval;
    ngx_uint_t                     slots;      /* ring: its size, or 0 */
    ngx_uint_t                     head;       /* ring: the oldest */
    ngx_uint_t                     used;       /* ring: times in it */
    u_char                         data[1];    /* the key, then the ring */
} ngx_http_ai_gateway_limit_node_t;


typedef struct {
    ngx_rbtree_t                   rbtree;
    ngx_rbtree_node_t              sentinel;
    ngx_queue_t                    queue;
} ngx_http_ai_gateway_limit_sh_t;


typedef struct {
    ngx_http_ai_gateway_limit_sh_t  *sh;
    ngx_slab_pool_t                 *shpool;
} ngx_http_ai_gateway_limit_zone_t;


static ngx_int_t ngx_http_ai_gateway_limit_shm_init(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_ai_gateway_limit_shm_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_http_ai_gateway_limit_node_t *ngx_http_ai_gateway_limit_shm_find(
    ngx_http_ai_gateway_limit_zone_t *lz, ngx_str_t *key, uint32_t hash);
static ngx_http_ai_gateway_limit_node_t *ngx_http_ai_gateway_limit_shm_new(
    ngx_http_ai_gateway_limit_zone_t *lz, ngx_http_ai_gateway_limit_t *lim,
    ngx_str_t *key, uint32_t hash, uint64_t now);
static void ngx_http_ai_gateway_limit_shm_expire(
    ngx_http_ai_gateway_limit_zone_t *lz, uint64_t now, ngx_uint_t force);
static void ngx_http_ai_gateway_limit_shm_ring(
    ngx_http_ai_gateway_limit_node_t *ln, ngx_http_ai_gateway_limit_t *lim,
    ngx_uint_t op, uint64_t now, ngx_http_ai_gateway_limit_res_t *res);
static void ngx_http_ai_gateway_limit_shm_window(
    ngx_http_ai_gateway_limit_node_t *ln, ngx_http_ai_gateway_limit_t *lim,
    ngx_uint_t op, uint64_t n, uint64_t now,
    ngx_http_ai_gateway_limit_res_t *res);


/* the tag of the limits' zones: a name is either a cache's or a limits' */
static ngx_uint_t  ngx_http_ai_gateway_limit_tag;


#define ngx_http_ai_gateway_limit_node(n)                                     \
    ((ngx_http_ai_gateway_limit_node_t *) &(n)->color)

#define ngx_http_ai_gateway_limit_ring(ln)                                    \
    ((uint64_t *) ngx_align_ptr((ln)->data + (ln)->len, sizeof(uint64_t)))


/* ai_gateway_limit_zone name:size; */

char *
ngx_http_ai_gateway_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    u_char                            *p;
    ssize_t                            size;
    ngx_str_t                         *value, name, s;
    ngx_shm_zone_t                    *shm_zone;
    ngx_http_ai_gateway_limit_zone_t  *lz;

    value = cf->args->elts;

    p = (u_char *) ngx_strchr(value[1].data, ':');

    if (p == NULL || p == value[1].data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\" in \"ai_gateway_limit_zone\" "
                           "directive, it must be \"name:size\", e.g. "
                           "\"limits:1m\"", &value[1]);
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
                           "\"ai_gateway_limit_zone\" directive, it must be "
                           "\"name:size\", e.g. \"limits:1m\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small in "
                           "\"ai_gateway_limit_zone\" directive, its size "
                           "must be at least %uzk", &value[1],
                           8 * ngx_pagesize / 1024);
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_http_ai_gateway_limit_tag);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\" in "
                           "\"ai_gateway_limit_zone\" directive, a zone is "
                           "declared once", &name);
        return NGX_CONF_ERROR;
    }

    lz = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_gateway_limit_zone_t));
    if (lz == NULL) {
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_ai_gateway_limit_shm_init;
    shm_zone->data = lz;

    return NGX_CONF_OK;
}


/*
 * The zone a limit names, declared before or after it: a zone never
 * declared has no size, which nginx refuses when it starts ("zero size
 * shared memory zone").
 */

ngx_shm_zone_t *
ngx_http_ai_gateway_limit_shm_zone(ngx_conf_t *cf, ngx_str_t *name)
{
    return ngx_shared_memory_add(cf, name, 0, &ngx_http_ai_gateway_limit_tag);
}


static ngx_int_t
ngx_http_ai_gateway_limit_shm_init(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_ai_gateway_limit_zone_t  *olz = data;

    size_t                             len;
    ngx_http_ai_gateway_limit_zone_t  *lz;

    lz = shm_zone->data;

    if (olz) {
        /* a reload: the counts stay */
        lz->sh = olz->sh;
        lz->shpool = olz->shpool;
        return NGX_OK;
    }

    lz->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        lz->sh = lz->shpool->data;
        return NGX_OK;
    }

    lz->sh = ngx_slab_alloc(lz->shpool,
                            sizeof(ngx_http_ai_gateway_limit_sh_t));
    if (lz->sh == NULL) {
        return NGX_ERROR;
    }

    lz->shpool->data = lz->sh;

    ngx_rbtree_init(&lz->sh->rbtree, &lz->sh->sentinel,
                    ngx_http_ai_gateway_limit_shm_insert);

    ngx_queue_init(&lz->sh->queue);

    len = sizeof(" in ai_gateway_limit_zone \"\"") + shm_zone->shm.name.len;

    lz->shpool->log_ctx = ngx_slab_alloc(lz->shpool, len);
    if (lz->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(lz->shpool->log_ctx, " in ai_gateway_limit_zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone is normal: the least recently used states go */

    lz->shpool->log_nomem = 0;

    return NGX_OK;
}


static void
ngx_http_ai_gateway_limit_shm_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t                 **p;
    ngx_http_ai_gateway_limit_node_t   *ln, *lnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else { /* node->key == temp->key */

            ln = ngx_http_ai_gateway_limit_node(node);
            lnt = ngx_http_ai_gateway_limit_node(temp);

            p = (ngx_memn2cmp(ln->data, lnt->data, ln->len, lnt->len) < 0)
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


static ngx_http_ai_gateway_limit_node_t *
ngx_http_ai_gateway_limit_shm_find(ngx_http_ai_gateway_limit_zone_t *lz,
    ngx_str_t *key, uint32_t hash)
{
    ngx_int_t                          rc;
    ngx_rbtree_node_t                 *node, *sentinel;
    ngx_http_ai_gateway_limit_node_t  *ln;

    node = lz->sh->rbtree.root;
    sentinel = lz->sh->rbtree.sentinel;

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

        ln = ngx_http_ai_gateway_limit_node(node);

        rc = ngx_memn2cmp(key->data, ln->data, key->len, (size_t) ln->len);

        if (rc == 0) {
            return ln;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


/*
 * One check or update of one limit's state for a key, under the zone's
 * lock.  Returns NGX_OK with the result, or NGX_ERROR when no state can be
 * made (the zone cannot hold even one).
 */

ngx_int_t
ngx_http_ai_gateway_limit_shm(ngx_http_ai_gateway_limit_t *lim,
    ngx_str_t *key, ngx_uint_t op, uint64_t n, uint64_t now,
    ngx_http_ai_gateway_limit_res_t *res)
{
    uint32_t                           hash;
    ngx_http_ai_gateway_limit_zone_t  *lz;
    ngx_http_ai_gateway_limit_node_t  *ln;

    lz = lim->zone->data;

    hash = ngx_crc32_short(key->data, key->len);

    ngx_shmtx_lock(&lz->shpool->mutex);

    ngx_http_ai_gateway_limit_shm_expire(lz, now, 0);

    ln = ngx_http_ai_gateway_limit_shm_find(lz, key, hash);

    if (ln == NULL) {

        if (op == NGX_HTTP_AI_GATEWAY_LIMIT_PEEK) {
            ngx_shmtx_unlock(&lz->shpool->mutex);

            res->used = 0;
            res->refused = (lim->limit == 0);
            res->remaining = lim->limit;
            res->reset = lim->interval;

            return NGX_OK;
        }

        ln = ngx_http_ai_gateway_limit_shm_new(lz, lim, key, hash, now);

        if (ln == NULL) {
            ngx_shmtx_unlock(&lz->shpool->mutex);
            return NGX_ERROR;
        }

    } else {
        ngx_queue_remove(&ln->queue);
    }

    ngx_queue_insert_head(&lz->sh->queue, &ln->queue);

    ln->last = now;

    if (ln->slots) {
        ngx_http_ai_gateway_limit_shm_ring(ln, lim, op, now, res);

    } else {
        ngx_http_ai_gateway_limit_shm_window(ln, lim, op, n, now, res);
    }

    ngx_shmtx_unlock(&lz->shpool->mutex);

    return NGX_OK;
}


static ngx_http_ai_gateway_limit_node_t *
ngx_http_ai_gateway_limit_shm_new(ngx_http_ai_gateway_limit_zone_t *lz,
    ngx_http_ai_gateway_limit_t *lim, ngx_str_t *key, uint32_t hash,
    uint64_t now)
{
    size_t                             size;
    ngx_uint_t                         slots, i;
    ngx_rbtree_node_t                 *node;
    ngx_http_ai_gateway_limit_node_t  *ln;

    slots = lim->ring ? (ngx_uint_t) lim->limit : 0;

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_http_ai_gateway_limit_node_t, data)
           + key->len + sizeof(uint64_t) + slots * sizeof(uint64_t);

    node = NULL;

    /* room is made from the least recently used end, idle states first */

    for (i = 0; i < 64; i++) {

        node = ngx_slab_alloc_locked(lz->shpool, size);

        if (node || ngx_queue_empty(&lz->sh->queue)) {
            break;
        }

        ngx_http_ai_gateway_limit_shm_expire(lz, now, 1);
    }

    if (node == NULL) {
        return NULL;
    }

    node->key = hash;

    ln = ngx_http_ai_gateway_limit_node(node);

    ln->len = (u_short) key->len;
    ngx_memcpy(ln->data, key->data, key->len);

    ln->window = 0;
    ln->count = 0;
    ln->prev = 0;
    ln->last = now;
    ln->interval = lim->interval;
    ln->slots = slots;
    ln->head = 0;
    ln->used = 0;

    ngx_rbtree_insert(&lz->sh->rbtree, node);

    /* the caller puts it at the head of the queue */

    ngx_queue_init(&ln->queue);

    return ln;
}


/*
 * Drops up to two states from the least recently used end when they are
 * idle (unused for two intervals: their counts are over), or the last one
 * whatever it holds when force is set (a new state needs room).
 */

static void
ngx_http_ai_gateway_limit_shm_expire(ngx_http_ai_gateway_limit_zone_t *lz,
    uint64_t now, ngx_uint_t force)
{
    ngx_uint_t                         n;
    ngx_queue_t                       *q;
    ngx_rbtree_node_t                 *node;
    ngx_http_ai_gateway_limit_node_t  *ln;

    for (n = 0; n < 2; n++) {

        if (ngx_queue_empty(&lz->sh->queue)) {
            return;
        }

        q = ngx_queue_last(&lz->sh->queue);

        ln = ngx_queue_data(q, ngx_http_ai_gateway_limit_node_t, queue);

        /* a clock that went back (or a test's) never makes one idle */

        if (!(force && n == 0)
            && (now <= ln->last
                || now - ln->last < 2 * (uint64_t) ln->interval))
        {
            return;
        }

        ngx_queue_remove(q);

        node = (ngx_rbtree_node_t *)
                   ((u_char *) ln - offsetof(ngx_rbtree_node_t, color));

        ngx_rbtree_delete(&lz->sh->rbtree, node);

        ngx_slab_free_locked(lz->shpool, node);
    }
}


/*
 * The exact sliding window: at most limit requests accepted in
 * (now - interval, now]; the ring holds the times of the last accepted
 * ones, the oldest at head.
 */

static void
ngx_http_ai_gateway_limit_shm_ring(ngx_http_ai_gateway_limit_node_t *ln,
    ngx_http_ai_gateway_limit_t *lim, ngx_uint_t op, uint64_t now,
    ngx_http_ai_gateway_limit_res_t *res)
{
    uint64_t  *ring;

    ring = ngx_http_ai_gateway_limit_ring(ln);

    while (ln->used && ring[ln->head] + ln->interval <= now) {
        ln->head = (ln->head + 1) % ln->slots;
        ln->used--;
    }

    if (ln->used == 0) {
        ln->head = 0;
    }

    res->used = ln->used;

    if (ln->used >= ln->slots) {
        res->refused = 1;
        res->remaining = 0;
        res->reset = (ngx_msec_t) (ring[ln->head] + ln->interval - now);
        return;
    }

    res->refused = 0;

    if (op == NGX_HTTP_AI_GATEWAY_LIMIT_TAKE) {
        ring[(ln->head + ln->used) % ln->slots] = now;
        ln->used++;
    }

    res->remaining = ln->slots - ln->used;
    res->reset = (ngx_msec_t) (ring[ln->head] + ln->interval - now);

    if (ln->used == 0) {
        res->reset = lim->interval;
    }
}


/*
 * Clock-aligned windows: the window is now / interval.  fixed counts the
 * window now; sliding (a token limit, or a request limit too large for a
 * ring) weighs the window before by the part of it still in the last
 * interval: prev * (interval - elapsed) / interval + count.
 */

static void
ngx_http_ai_gateway_limit_shm_window(ngx_http_ai_gateway_limit_node_t *ln,
    ngx_http_ai_gateway_limit_t *lim, ngx_uint_t op, uint64_t n, uint64_t now,
    ngx_http_ai_gateway_limit_res_t *res)
{
    uint64_t    w, elapsed, used, need;

    w = now / ln->interval;

    if (ln->window != w) {
        ln->prev = (ln->window + 1 == w) ? ln->count : 0;
        ln->count = 0;
        ln->window = w;
    }

    elapsed = now - w * ln->interval;

    used = ln->count;

    if (lim->technique == NGX_HTTP_AI_GATEWAY_LIMIT_SLIDING && ln->prev) {
        used += (uint64_t) ((double) ln->prev
                            * (double) (ln->interval - elapsed)
                            / (double) ln->interval);
    }

    res->used = used;
    res->reset = (ngx_msec_t) (ln->interval - elapsed);

    if (op == NGX_HTTP_AI_GATEWAY_LIMIT_CHARGE) {
        ln->count = (ln->count + n < ln->count) ? (uint64_t) -1
                                                : ln->count + n;
        used = (used + n < used) ? (uint64_t) -1 : used + n;

        res->refused = 0;
        res->remaining = (used < lim->limit) ? lim->limit - used : 0;
        return;
    }

    /* a request needs one place; tokens are refused once all are used */

    need = (lim->kind == NGX_HTTP_AI_GATEWAY_LIMIT_REQUESTS) ? 1 : 0;

    if (used + need > lim->limit || used >= lim->limit) {
        res->refused = 1;
        res->remaining = 0;
        return;
    }

    res->refused = 0;

    if (op == NGX_HTTP_AI_GATEWAY_LIMIT_TAKE) {
        ln->count++;
        used++;
    }

    res->remaining = lim->limit - used;
}
