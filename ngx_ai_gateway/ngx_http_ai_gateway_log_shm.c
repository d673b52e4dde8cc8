
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_log_store.h"


/*
 * The embedded log store: a shared memory zone (ai_gateway_log_zone) on
 * one node, shared by its workers.  Each gateway that logs into the zone
 * has a head in it, with its records in two red-black trees: by
 * (created_at, id), the order of the Logs API and of DELETE_OLDEST, and
 * by id, for the API's single log.  A record is one allocation: its node,
 * its encoded bytes (log_record.c), the request and response payloads.
 *
 * A gateway holds at most its ai_gateway_logs_max records; when it has
 * them, STOP_INSERTING refuses the new one and DELETE_OLDEST deletes the
 * oldest.  A zone out of memory is full too: DELETE_OLDEST makes room with
 * the gateway's oldest records, STOP_INSERTING refuses.  A refused record
 * is counted (ngx_http_ai_gateway_log_lost()).
 *
 * Every operation runs under the zone's mutex and is bounded: a put
 * copies one record; a scan copies at most the records asked for (the
 * Logs API asks for a batch at a time and yields to the event loop
 * between batches) and skips at most NGX_HTTP_AI_GATEWAY_LOG_MAX_SKIP.
 * The zone is found again, with its records, by "nginx -s reload".
 */


typedef struct {
    ngx_rbtree_node_t                  tnode;      /* by created_at, id */
    ngx_rbtree_node_t                  inode;      /* by id */
    ngx_http_ai_gateway_log_pos_t      pos;
    uint32_t                           rec_len;
    uint32_t                           req_len;
    uint32_t                           resp_len;
    u_char                             data[1];
} ngx_http_ai_gateway_log_node_t;


typedef struct {
    ngx_queue_t                        queue;      /* in sh->gateways */
    ngx_rbtree_t                       time;
    ngx_rbtree_node_t                  time_sentinel;
    ngx_rbtree_t                       ids;
    ngx_rbtree_node_t                  ids_sentinel;
    ngx_uint_t                         count;
    size_t                             len;
    u_char                             name[1];
} ngx_http_ai_gateway_log_gw_t;


typedef struct {
    ngx_queue_t                        gateways;
} ngx_http_ai_gateway_log_sh_t;


typedef struct {
    ngx_http_ai_gateway_log_sh_t      *sh;
    ngx_slab_pool_t                   *shpool;
} ngx_http_ai_gateway_log_shm_ctx_t;


static ngx_int_t ngx_http_ai_gateway_log_shm_init(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_ai_gateway_log_time_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static void ngx_http_ai_gateway_log_id_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_int_t ngx_http_ai_gateway_log_pos_cmp(
    ngx_http_ai_gateway_log_pos_t *a, ngx_http_ai_gateway_log_pos_t *b);
static ngx_http_ai_gateway_log_gw_t *ngx_http_ai_gateway_log_shm_gw(
    ngx_http_ai_gateway_log_shm_ctx_t *ctx, ngx_str_t *name,
    ngx_uint_t create);
static ngx_http_ai_gateway_log_node_t *ngx_http_ai_gateway_log_shm_find(
    ngx_http_ai_gateway_log_gw_t *gw, u_char *id);
static ngx_http_ai_gateway_log_node_t *ngx_http_ai_gateway_log_shm_first(
    ngx_http_ai_gateway_log_gw_t *gw, ngx_http_ai_gateway_log_scan_t *scan);
static ngx_http_ai_gateway_log_node_t *ngx_http_ai_gateway_log_shm_next(
    ngx_http_ai_gateway_log_gw_t *gw, ngx_http_ai_gateway_log_node_t *ln,
    ngx_uint_t desc);
static void ngx_http_ai_gateway_log_shm_delete(
    ngx_http_ai_gateway_log_shm_ctx_t *ctx, ngx_http_ai_gateway_log_gw_t *gw,
    ngx_http_ai_gateway_log_node_t *ln);
static ngx_uint_t ngx_http_ai_gateway_log_shm_oldest(
    ngx_http_ai_gateway_log_shm_ctx_t *ctx, ngx_http_ai_gateway_log_gw_t *gw);
static ngx_int_t ngx_http_ai_gateway_log_shm_copy(ngx_pool_t *pool,
    u_char *p, size_t len, ngx_str_t *out);


#define ngx_http_ai_gateway_log_tnode(n)                                      \
    ((ngx_http_ai_gateway_log_node_t *)                                       \
     ((u_char *) (n) - offsetof(ngx_http_ai_gateway_log_node_t, tnode)))

#define ngx_http_ai_gateway_log_inode(n)                                      \
    ((ngx_http_ai_gateway_log_node_t *)                                       \
     ((u_char *) (n) - offsetof(ngx_http_ai_gateway_log_node_t, inode)))


/* ai_gateway_log_zone name:size; */

char *
ngx_http_ai_gateway_log_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    u_char                             *p;
    ssize_t                             size;
    ngx_str_t                          *value, name, s;
    ngx_shm_zone_t                     *shm_zone;
    ngx_http_ai_gateway_log_shm_ctx_t  *ctx;

    value = cf->args->elts;

    p = (u_char *) ngx_strchr(value[1].data, ':');

    if (p == NULL || p == value[1].data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\", use \"name:size\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data;
    name.len = p - value[1].data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small", &value[1]);
        return NGX_CONF_ERROR;
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_gateway_log_shm_ctx_t));
    if (ctx == NULL) {
        return NGX_CONF_ERROR;
    }

    /* a tag of its own: a cache cannot name a log zone, nor the reverse */

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_http_ai_gateway_log_shm_store);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_ai_gateway_log_shm_init;
    shm_zone->data = ctx;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ai_gateway_log_shm_init(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_ai_gateway_log_shm_ctx_t  *octx = data;

    size_t                              len;
    ngx_http_ai_gateway_log_shm_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (octx) {
        /* a reload: the records stay */
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
                             sizeof(ngx_http_ai_gateway_log_sh_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;

    ngx_queue_init(&ctx->sh->gateways);

    len = sizeof(" in ai_gateway_log_zone \"\"") + shm_zone->shm.name.len;

    ctx->shpool->log_ctx = ngx_slab_alloc(ctx->shpool, len);
    if (ctx->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(ctx->shpool->log_ctx, " in ai_gateway_log_zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone is counted and reported by the store itself */

    ctx->shpool->log_nomem = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_log_pos_cmp(ngx_http_ai_gateway_log_pos_t *a,
    ngx_http_ai_gateway_log_pos_t *b)
{
    if (a->created_at != b->created_at) {
        return (a->created_at < b->created_at) ? -1 : 1;
    }

    return ngx_memcmp(a->id, b->id, NGX_HTTP_AI_GATEWAY_LOG_ID_LEN);
}


static void
ngx_http_ai_gateway_log_time_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t               **p;
    ngx_http_ai_gateway_log_node_t   *a, *b;

    a = ngx_http_ai_gateway_log_tnode(node);

    for ( ;; ) {
        b = ngx_http_ai_gateway_log_tnode(temp);

        p = (ngx_http_ai_gateway_log_pos_cmp(&a->pos, &b->pos) < 0)
            ? &temp->left : &temp->right;

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


static void
ngx_http_ai_gateway_log_id_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t               **p;
    ngx_http_ai_gateway_log_node_t   *a, *b;

    a = ngx_http_ai_gateway_log_inode(node);

    for ( ;; ) {

        if (node->key != temp->key) {
            p = (node->key < temp->key) ? &temp->left : &temp->right;

        } else {
            b = ngx_http_ai_gateway_log_inode(temp);

            p = (ngx_memcmp(a->pos.id, b->pos.id,
                            NGX_HTTP_AI_GATEWAY_LOG_ID_LEN) < 0)
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


static ngx_http_ai_gateway_log_gw_t *
ngx_http_ai_gateway_log_shm_gw(ngx_http_ai_gateway_log_shm_ctx_t *ctx,
    ngx_str_t *name, ngx_uint_t create)
{
    ngx_queue_t                   *q;
    ngx_http_ai_gateway_log_gw_t  *gw;

    for (q = ngx_queue_head(&ctx->sh->gateways);
         q != ngx_queue_sentinel(&ctx->sh->gateways);
         q = ngx_queue_next(q))
    {
        gw = ngx_queue_data(q, ngx_http_ai_gateway_log_gw_t, queue);

        if (gw->len == name->len
            && ngx_memcmp(gw->name, name->data, name->len) == 0)
        {
            return gw;
        }
    }

    if (!create) {
        return NULL;
    }

    gw = ngx_slab_alloc_locked(ctx->shpool,
                               offsetof(ngx_http_ai_gateway_log_gw_t, name)
                               + name->len);
    if (gw == NULL) {
        return NULL;
    }

    ngx_rbtree_init(&gw->time, &gw->time_sentinel,
                    ngx_http_ai_gateway_log_time_insert);
    ngx_rbtree_init(&gw->ids, &gw->ids_sentinel,
                    ngx_http_ai_gateway_log_id_insert);

    gw->count = 0;
    gw->len = name->len;
    ngx_memcpy(gw->name, name->data, name->len);

    ngx_queue_insert_tail(&ctx->sh->gateways, &gw->queue);

    return gw;
}


static ngx_http_ai_gateway_log_node_t *
ngx_http_ai_gateway_log_shm_find(ngx_http_ai_gateway_log_gw_t *gw, u_char *id)
{
    ngx_int_t                        rc;
    ngx_rbtree_key_t                 key;
    ngx_rbtree_node_t               *node, *sentinel;
    ngx_http_ai_gateway_log_node_t  *ln;

    key = ngx_crc32_short(id, NGX_HTTP_AI_GATEWAY_LOG_ID_LEN);

    node = gw->ids.root;
    sentinel = gw->ids.sentinel;

    while (node != sentinel) {

        if (key != node->key) {
            node = (key < node->key) ? node->left : node->right;
            continue;
        }

        ln = ngx_http_ai_gateway_log_inode(node);

        rc = ngx_memcmp(id, ln->pos.id, NGX_HTTP_AI_GATEWAY_LOG_ID_LEN);

        if (rc == 0) {
            return ln;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


/*
 * Where a scan starts: the first record after the cursor in its
 * direction, or the first of all.
 */

static ngx_http_ai_gateway_log_node_t *
ngx_http_ai_gateway_log_shm_first(ngx_http_ai_gateway_log_gw_t *gw,
    ngx_http_ai_gateway_log_scan_t *scan)
{
    ngx_int_t                        rc;
    ngx_rbtree_node_t               *node, *sentinel, *best;
    ngx_http_ai_gateway_log_node_t  *ln;

    node = gw->time.root;
    sentinel = gw->time.sentinel;

    if (node == sentinel) {
        return NULL;
    }

    if (!scan->set) {
        if (scan->desc) {
            while (node->right != sentinel) {
                node = node->right;
            }

        } else {
            node = ngx_rbtree_min(node, sentinel);
        }

        return ngx_http_ai_gateway_log_tnode(node);
    }

    best = NULL;

    while (node != sentinel) {
        ln = ngx_http_ai_gateway_log_tnode(node);

        rc = ngx_http_ai_gateway_log_pos_cmp(&ln->pos, &scan->cursor);

        if (scan->desc) {
            if (rc < 0) {
                best = node;
                node = node->right;

            } else {
                node = node->left;
            }

        } else {
            if (rc > 0) {
                best = node;
                node = node->left;

            } else {
                node = node->right;
            }
        }
    }

    return best ? ngx_http_ai_gateway_log_tnode(best) : NULL;
}


static ngx_http_ai_gateway_log_node_t *
ngx_http_ai_gateway_log_shm_next(ngx_http_ai_gateway_log_gw_t *gw,
    ngx_http_ai_gateway_log_node_t *ln, ngx_uint_t desc)
{
    ngx_rbtree_node_t  *node, *parent, *sentinel;

    node = &ln->tnode;

    if (!desc) {
        node = ngx_rbtree_next(&gw->time, node);
        return node ? ngx_http_ai_gateway_log_tnode(node) : NULL;
    }

    /* the previous node: ngx_rbtree_next() mirrored */

    sentinel = gw->time.sentinel;

    if (node->left != sentinel) {
        node = node->left;

        while (node->right != sentinel) {
            node = node->right;
        }

        return ngx_http_ai_gateway_log_tnode(node);
    }

    for ( ;; ) {
        parent = node->parent;

        if (node == gw->time.root) {
            return NULL;
        }

        if (node == parent->right) {
            return ngx_http_ai_gateway_log_tnode(parent);
        }

        node = parent;
    }
}


static void
ngx_http_ai_gateway_log_shm_delete(ngx_http_ai_gateway_log_shm_ctx_t *ctx,
    ngx_http_ai_gateway_log_gw_t *gw, ngx_http_ai_gateway_log_node_t *ln)
{
    ngx_rbtree_delete(&gw->time, &ln->tnode);
    ngx_rbtree_delete(&gw->ids, &ln->inode);
    ngx_slab_free_locked(ctx->shpool, ln);

    gw->count--;
}


/* the gateway's oldest record goes: 0 when it has none */

static ngx_uint_t
ngx_http_ai_gateway_log_shm_oldest(ngx_http_ai_gateway_log_shm_ctx_t *ctx,
    ngx_http_ai_gateway_log_gw_t *gw)
{
    ngx_rbtree_node_t  *node;

    if (gw->time.root == gw->time.sentinel) {
        return 0;
    }

    node = ngx_rbtree_min(gw->time.root, gw->time.sentinel);

    ngx_http_ai_gateway_log_shm_delete(ctx, gw,
                                       ngx_http_ai_gateway_log_tnode(node));

    return 1;
}


static void
ngx_http_ai_gateway_log_shm_put(ngx_http_ai_gateway_log_target_t *t,
    ngx_http_ai_gateway_log_pos_t *pos, ngx_str_t *rec, ngx_str_t *req,
    ngx_str_t *resp, ngx_pool_t *pool, ngx_log_t *log)
{
    u_char                             *p;
    size_t                              size;
    ngx_http_ai_gateway_log_gw_t       *gw;
    ngx_http_ai_gateway_log_node_t     *ln;
    ngx_http_ai_gateway_log_shm_ctx_t  *ctx;

    ctx = t->zone->data;

    size = offsetof(ngx_http_ai_gateway_log_node_t, data)
           + rec->len + req->len + resp->len;

    if (size > t->zone->shm.size / 2) {
        ngx_http_ai_gateway_log_lost(t, 1, "a record larger than half "
                                     "its ai_gateway_log_zone", log);
        return;
    }

    ngx_shmtx_lock(&ctx->shpool->mutex);

    gw = ngx_http_ai_gateway_log_shm_gw(ctx, &t->gateway, 1);
    if (gw == NULL) {
        goto full;
    }

    ln = ngx_http_ai_gateway_log_shm_find(gw, pos->id);
    if (ln) {
        ngx_http_ai_gateway_log_shm_delete(ctx, gw, ln);
    }

    while (gw->count >= t->max) {
        if (t->strategy == NGX_HTTP_AI_GATEWAY_LOG_STOP_INSERTING) {
            ngx_shmtx_unlock(&ctx->shpool->mutex);

            ngx_http_ai_gateway_log_lost(t, 1, "the gateway has its "
                                         "ai_gateway_logs_max records, "
                                         "stop_inserting", log);
            return;
        }

        (void) ngx_http_ai_gateway_log_shm_oldest(ctx, gw);
    }

    for ( ;; ) {
        ln = ngx_slab_alloc_locked(ctx->shpool, size);

        if (ln) {
            break;
        }

        if (t->strategy == NGX_HTTP_AI_GATEWAY_LOG_STOP_INSERTING
            || !ngx_http_ai_gateway_log_shm_oldest(ctx, gw))
        {
            goto full;
        }
    }

    ln->pos = *pos;
    ln->rec_len = rec->len;
    ln->req_len = req->len;
    ln->resp_len = resp->len;

    p = ngx_cpymem(ln->data, rec->data, rec->len);
    p = ngx_cpymem(p, req->data, req->len);
    (void) ngx_cpymem(p, resp->data, resp->len);

    ln->tnode.key = (ngx_rbtree_key_t) pos->created_at;
    ln->inode.key = ngx_crc32_short(pos->id, NGX_HTTP_AI_GATEWAY_LOG_ID_LEN);

    ngx_rbtree_insert(&gw->time, &ln->tnode);
    ngx_rbtree_insert(&gw->ids, &ln->inode);
    gw->count++;

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return;

full:

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    ngx_http_ai_gateway_log_lost(t, 1, "no room in its ai_gateway_log_zone",
                                 log);
}


static ngx_int_t
ngx_http_ai_gateway_log_shm_scan(ngx_http_ai_gateway_log_target_t *t,
    ngx_http_ai_gateway_log_scan_t *scan, ngx_pool_t *pool,
    ngx_http_ai_gateway_log_done_pt done, void *data, void **op,
    ngx_log_t *log)
{
    ngx_uint_t                          skip;
    ngx_http_ai_gateway_log_gw_t       *gw;
    ngx_http_ai_gateway_log_item_t     *item;
    ngx_http_ai_gateway_log_node_t     *ln;
    ngx_http_ai_gateway_log_shm_ctx_t  *ctx;

    ctx = t->zone->data;

    if (ngx_array_init(&scan->items, pool, scan->n ? scan->n : 1,
                       sizeof(ngx_http_ai_gateway_log_item_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    scan->total = 0;
    scan->skipped = 0;
    scan->end = 1;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    gw = ngx_http_ai_gateway_log_shm_gw(ctx, &t->gateway, 0);

    if (gw == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_OK;
    }

    scan->total = gw->count;

    ln = ngx_http_ai_gateway_log_shm_first(gw, scan);

    skip = ngx_min(scan->skip, NGX_HTTP_AI_GATEWAY_LOG_MAX_SKIP);

    while (ln && scan->skipped < skip) {
        scan->last = ln->pos;
        scan->skipped++;
        ln = ngx_http_ai_gateway_log_shm_next(gw, ln, scan->desc);
    }

    if (scan->skipped == scan->skip) {

        while (ln && scan->items.nelts < scan->n) {
            item = ngx_array_push(&scan->items);
            if (item == NULL) {
                goto failed;
            }

            ngx_memzero(item, sizeof(ngx_http_ai_gateway_log_item_t));

            if (ngx_http_ai_gateway_log_shm_copy(pool, ln->data, ln->rec_len,
                                                 &item->rec)
                != NGX_OK)
            {
                goto failed;
            }

            item->found = 1;
            scan->last = ln->pos;

            ln = ngx_http_ai_gateway_log_shm_next(gw, ln, scan->desc);
        }
    }

    scan->end = (ln == NULL);

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;

failed:

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_ai_gateway_log_shm_get(ngx_http_ai_gateway_log_target_t *t,
    u_char *id, ngx_uint_t body, ngx_http_ai_gateway_log_item_t *item,
    ngx_pool_t *pool, ngx_http_ai_gateway_log_done_pt done, void *data,
    void **op, ngx_log_t *log)
{
    u_char                             *p;
    size_t                              len;
    ngx_int_t                           rc;
    ngx_http_ai_gateway_log_gw_t       *gw;
    ngx_http_ai_gateway_log_node_t     *ln;
    ngx_http_ai_gateway_log_shm_ctx_t  *ctx;

    ctx = t->zone->data;

    ngx_memzero(item, sizeof(ngx_http_ai_gateway_log_item_t));

    ngx_shmtx_lock(&ctx->shpool->mutex);

    gw = ngx_http_ai_gateway_log_shm_gw(ctx, &t->gateway, 0);
    ln = gw ? ngx_http_ai_gateway_log_shm_find(gw, id) : NULL;

    if (ln == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_DECLINED;
    }

    rc = ngx_http_ai_gateway_log_shm_copy(pool, ln->data, ln->rec_len,
                                          &item->rec);

    if (rc == NGX_OK && body != NGX_HTTP_AI_GATEWAY_LOG_NO_BODY) {
        p = ln->data + ln->rec_len;
        len = ln->req_len;

        if (body == NGX_HTTP_AI_GATEWAY_LOG_RESPONSE) {
            p += ln->req_len;
            len = ln->resp_len;
        }

        rc = ngx_http_ai_gateway_log_shm_copy(pool, p, len, &item->body);
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    item->found = 1;

    return rc;
}


/* feedback, score, metadata: the record is made again with them */

static ngx_int_t
ngx_http_ai_gateway_log_shm_patch(ngx_http_ai_gateway_log_target_t *t,
    u_char *id, ngx_http_ai_gateway_log_item_t *change, ngx_pool_t *pool,
    ngx_http_ai_gateway_log_done_pt done, void *data, void **op,
    ngx_log_t *log)
{
    u_char                             *p;
    size_t                              size;
    ngx_int_t                           rc;
    ngx_str_t                           copy, rec;
    ngx_http_ai_gateway_log_gw_t       *gw;
    ngx_http_ai_gateway_log_node_t     *ln, *nn;
    ngx_http_ai_gateway_log_record_t    r;
    ngx_http_ai_gateway_log_shm_ctx_t  *ctx;

    ctx = t->zone->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    gw = ngx_http_ai_gateway_log_shm_gw(ctx, &t->gateway, 0);
    ln = gw ? ngx_http_ai_gateway_log_shm_find(gw, id) : NULL;

    if (ln == NULL) {
        rc = NGX_DECLINED;
        goto done;
    }

    rc = NGX_ERROR;

    if (ngx_http_ai_gateway_log_shm_copy(pool, ln->data, ln->rec_len, &copy)
        != NGX_OK
        || ngx_http_ai_gateway_log_decode(copy.data, copy.len, &r) != NGX_OK
        || ngx_http_ai_gateway_log_override(&r, &change->feedback,
                                            &change->score,
                                            &change->metadata)
           != NGX_OK
        || ngx_http_ai_gateway_log_encode(pool, &r, &rec) != NGX_OK)
    {
        goto done;
    }

    size = offsetof(ngx_http_ai_gateway_log_node_t, data)
           + rec.len + ln->req_len + ln->resp_len;

    nn = ngx_slab_alloc_locked(ctx->shpool, size);

    if (nn == NULL) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "ai_gateway: no room in ai_gateway_log_zone \"%V\" "
                      "to change a log record", &t->zone->shm.name);
        goto done;
    }

    nn->pos = ln->pos;
    nn->rec_len = rec.len;
    nn->req_len = ln->req_len;
    nn->resp_len = ln->resp_len;

    p = ngx_cpymem(nn->data, rec.data, rec.len);
    (void) ngx_cpymem(p, ln->data + ln->rec_len, ln->req_len + ln->resp_len);

    nn->tnode.key = ln->tnode.key;
    nn->inode.key = ln->inode.key;

    ngx_http_ai_gateway_log_shm_delete(ctx, gw, ln);

    ngx_rbtree_insert(&gw->time, &nn->tnode);
    ngx_rbtree_insert(&gw->ids, &nn->inode);
    gw->count++;

    rc = NGX_OK;

done:

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


static ngx_int_t
ngx_http_ai_gateway_log_shm_remove(ngx_http_ai_gateway_log_target_t *t,
    ngx_http_ai_gateway_log_pos_t *pos, ngx_uint_t n, ngx_uint_t *removed,
    ngx_pool_t *pool, ngx_http_ai_gateway_log_done_pt done, void *data,
    void **op, ngx_log_t *log)
{
    ngx_uint_t                          i;
    ngx_http_ai_gateway_log_gw_t       *gw;
    ngx_http_ai_gateway_log_node_t     *ln;
    ngx_http_ai_gateway_log_shm_ctx_t  *ctx;

    ctx = t->zone->data;

    *removed = 0;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    gw = ngx_http_ai_gateway_log_shm_gw(ctx, &t->gateway, 0);

    for (i = 0; gw && i < n; i++) {
        ln = ngx_http_ai_gateway_log_shm_find(gw, pos[i].id);

        if (ln) {
            ngx_http_ai_gateway_log_shm_delete(ctx, gw, ln);
            (*removed)++;
        }
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_log_shm_copy(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_str_t *out)
{
    out->len = len;
    out->data = ngx_pnalloc(pool, len ? len : 1);

    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, p, len);

    return NGX_OK;
}


ngx_http_ai_gateway_log_store_t  ngx_http_ai_gateway_log_shm_store = {
    ngx_http_ai_gateway_log_shm_put,
    ngx_http_ai_gateway_log_shm_scan,
    ngx_http_ai_gateway_log_shm_get,
    ngx_http_ai_gateway_log_shm_patch,
    ngx_http_ai_gateway_log_shm_remove,
    NULL
};
