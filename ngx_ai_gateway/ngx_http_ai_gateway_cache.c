
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>

#include "ngx_http_ai_gateway_module.h"
#include "ngx_http_ai_gateway_cache_entry.h"


/*
 * The response cache, see docs/cache.md.  The request's cache headers are
 * read when it is routed (ngx_http_ai_gateway_cache_headers()); once its
 * body is read and its target known, ngx_http_ai_gateway_cache_start()
 * computes the key and looks it up, in the shared memory zone or in
 * Redis.  A hit is answered from the entry; a miss goes to the provider,
 * possibly after waiting for an identical request already on its way
 * there (coalescing, per worker).  A response is kept as it passes
 * through the header and body filters below and stored once complete.
 *
 * The bytes of an entry are made and read by ngx_http_ai_gateway_cache_entry.c,
 * the same in the zone and in Redis.  Whoever can write to the store can
 * write an entry: one that does not decode is a miss, is removed from the
 * store and is logged once (by its key and the reason, never its content).
 */


#define NGX_HTTP_AI_GATEWAY_CACHE_MISS  1
#define NGX_HTTP_AI_GATEWAY_CACHE_HIT   2


struct ngx_http_ai_gateway_cache_lock_s {
    ngx_queue_t                    queue;      /* in the worker's locks */
    ngx_queue_t                    waiters;
    u_char                         key[NGX_HTTP_AI_GATEWAY_CACHE_KEY_LEN];
};


static ngx_int_t ngx_http_ai_gateway_cache_ttl(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_table_elt_t *h, time_t *ttl);
static void ngx_http_ai_gateway_cache_get(ngx_http_request_t *r,
    ngx_http_ai_gateway_cache_t *c);
static void ngx_http_ai_gateway_cache_fetched(void *data, ngx_str_t *entry);
static void ngx_http_ai_gateway_cache_resume(ngx_http_request_t *r);
static void ngx_http_ai_gateway_cache_miss(ngx_http_request_t *r,
    ngx_http_ai_gateway_cache_t *c);
static void ngx_http_ai_gateway_cache_found(ngx_http_request_t *r,
    ngx_http_ai_gateway_cache_t *c, ngx_str_t *entry);
static void ngx_http_ai_gateway_cache_invalid(ngx_http_request_t *r,
    ngx_http_ai_gateway_cache_t *c, ngx_str_t *entry,
    ngx_http_ai_gateway_cache_entry_t *e);
static ngx_int_t ngx_http_ai_gateway_cache_send(ngx_http_request_t *r,
    ngx_http_ai_gateway_cache_entry_t *e);
static void ngx_http_ai_gateway_cache_wake(ngx_event_t *ev);
static void ngx_http_ai_gateway_cache_unlock(ngx_http_ai_gateway_cache_t *c,
    ngx_uint_t retry);
static void ngx_http_ai_gateway_cache_cleanup(void *data);
static ngx_int_t ngx_http_ai_gateway_cache_head(ngx_http_request_t *r,
    ngx_http_ai_gateway_cache_t *c);
static ngx_int_t ngx_http_ai_gateway_cache_append(ngx_http_request_t *r,
    ngx_http_ai_gateway_cache_t *c, u_char *p, size_t len);
static void ngx_http_ai_gateway_cache_abandon(ngx_http_request_t *r,
    ngx_http_ai_gateway_cache_t *c);
static void ngx_http_ai_gateway_cache_store(ngx_http_request_t *r,
    ngx_http_ai_gateway_cache_t *c);
static ngx_uint_t ngx_http_ai_gateway_cache_sse_error(u_char *p,
    u_char *last);




static ngx_str_t  ngx_http_ai_gateway_cache_status_name =
    ngx_string("cf-aig-cache-status");
static ngx_str_t  ngx_http_ai_gateway_cache_status_value[] = {
    ngx_null_string,
    ngx_string("MISS"),
    ngx_string("HIT")
};


static ngx_queue_t  ngx_http_ai_gateway_cache_locks;




/* ai_gateway_cache zone | off; */

char *
ngx_http_ai_gateway_cache_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_gateway_loc_conf_t *alcf = conf;

    ngx_str_t                        *value;
    ngx_http_ai_gateway_cache_ref_t  *ref;
    ngx_http_ai_gateway_main_conf_t  *amcf;

    if (alcf->cache.zone != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0) {
        alcf->cache.zone = NULL;
        return NGX_CONF_OK;
    }

    /* size 0: a reference to ai_gateway_cache_zone, declared anywhere */

    alcf->cache.zone = ngx_shared_memory_add(cf, &value[1], 0,
                                             &ngx_http_ai_gateway_module);
    if (alcf->cache.zone == NULL) {
        return NGX_CONF_ERROR;
    }

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_gateway_module);

    if (amcf->cache_refs == NULL) {
        amcf->cache_refs = ngx_array_create(cf->pool, 4,
                                     sizeof(ngx_http_ai_gateway_cache_ref_t));
        if (amcf->cache_refs == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    ref = ngx_array_push(amcf->cache_refs);
    if (ref == NULL) {
        return NGX_CONF_ERROR;
    }

    ref->zone = alcf->cache.zone;
    ref->file = cf->conf_file->file.name.data;
    ref->line = cf->conf_file->line;

    return NGX_CONF_OK;
}


/*
 * At postconfiguration every "ai_gateway_cache_zone" has been read: a zone
 * an "ai_gateway_cache" names must be one of them (its data is set there).
 */

ngx_int_t
ngx_http_ai_gateway_cache_check_zones(ngx_conf_t *cf)
{
    ngx_uint_t                        i;
    ngx_http_ai_gateway_cache_ref_t  *ref;
    ngx_http_ai_gateway_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_gateway_module);

    if (amcf->cache_refs == NULL) {
        return NGX_OK;
    }

    ref = amcf->cache_refs->elts;

    for (i = 0; i < amcf->cache_refs->nelts; i++) {
        if (ref[i].zone->data) {
            continue;
        }

        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "unknown zone \"%V\" in \"ai_gateway_cache\" "
                      "directive in %s:%ui, it must be declared with "
                      "\"ai_gateway_cache_zone %V:size\" in http{}, or the "
                      "cache turned off with \"ai_gateway_cache off\"",
                      &ref[i].zone->shm.name, ref[i].file, ref[i].line,
                      &ref[i].zone->shm.name);

        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * ai_gateway_cache_redis name [prefix=str];
 * ai_gateway_cache_redis ip:port [prefix=str] [timeout=time] [db=n]
 *     [user=name] [password_file=path];
 * ai_gateway_cache_redis off;
 *
 * A name refers to an "ai_gateway_redis" declaration; an address is a
 * server of this directive's own, with the same parameters.
 */

char *
ngx_http_ai_gateway_cache_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_gateway_loc_conf_t *alcf = conf;

    ngx_int_t                     rc;
    ngx_str_t                    *value;
    ngx_uint_t                    i, address;
    ngx_http_ai_gateway_redis_t  *rd;

    if (alcf->cache.redis != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0) {

        if (cf->args->nelts != 2) {
            return "has parameters after \"off\"";
        }

        alcf->cache.redis = NULL;
        return NGX_CONF_OK;
    }

    if (value[1].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "empty Redis server in \"ai_gateway_cache_redis\" "
                           "directive, it must be the name of an "
                           "\"ai_gateway_redis\", \"IPv4-address:port\" or "
                           "\"off\"");
        return NGX_CONF_ERROR;
    }

    address = (ngx_strlchr(value[1].data, value[1].data + value[1].len, ':')
               != NULL);

    if (address) {
        rd = ngx_http_ai_gateway_redis_add(cf, &value[1]);

    } else {
        rd = ngx_http_ai_gateway_redis_ref(cf, &value[1]);
    }

    if (rd == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&alcf->cache.redis_prefix, "aigw:cache:");

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "prefix=", 7) == 0) {
            alcf->cache.redis_prefix.data = value[i].data + 7;
            alcf->cache.redis_prefix.len = value[i].len - 7;
            continue;
        }

        if (address) {
            rc = ngx_http_ai_gateway_redis_parameter(cf, rd, &value[i]);

            if (rc == NGX_ERROR) {
                return NGX_CONF_ERROR;
            }

            if (rc == NGX_OK) {
                continue;
            }

            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in "
                               "\"ai_gateway_cache_redis\" directive, it "
                               "must be \"prefix=\", \"timeout=\", "
                               "\"db=\", \"user=\" or \"password_file=\"",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\": the parameters of a "
                           "named Redis server are those of its "
                           "\"ai_gateway_redis\"; after a name, "
                           "\"ai_gateway_cache_redis\" takes \"prefix=\" "
                           "only", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (address && ngx_http_ai_gateway_redis_done(cf, rd) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    alcf->cache.redis = rd;

    return NGX_CONF_OK;
}


/* ai_gateway_cache_scope credential | gateway; */

char *
ngx_http_ai_gateway_cache_scope(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_gateway_loc_conf_t *alcf = conf;

    ngx_str_t  *value;

    if (alcf->cache.scope != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 10
        && ngx_strncmp(value[1].data, "credential", 10) == 0)
    {
        alcf->cache.scope = NGX_HTTP_AI_GATEWAY_CACHE_SCOPE_CREDENTIAL;
        return NGX_CONF_OK;
    }

    if (value[1].len == 7 && ngx_strncmp(value[1].data, "gateway", 7) == 0) {
        alcf->cache.scope = NGX_HTTP_AI_GATEWAY_CACHE_SCOPE_GATEWAY;
        return NGX_CONF_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"ai_gateway_cache_scope\" "
                       "directive, it must be \"credential\" or "
                       "\"gateway\"", &value[1]);

    return NGX_CONF_ERROR;
}


void
ngx_http_ai_gateway_cache_create_conf(ngx_http_ai_gateway_cache_conf_t *conf)
{
    conf->zone = NGX_CONF_UNSET_PTR;
    conf->redis = NGX_CONF_UNSET_PTR;
    conf->ttl = NGX_CONF_UNSET;
    conf->max_size = NGX_CONF_UNSET_SIZE;
    conf->lock_timeout = NGX_CONF_UNSET_MSEC;
    conf->scope = NGX_CONF_UNSET_UINT;
}


char *
ngx_http_ai_gateway_cache_merge_conf(ngx_conf_t *cf,
    ngx_http_ai_gateway_cache_conf_t *prev,
    ngx_http_ai_gateway_cache_conf_t *conf)
{
    ngx_conf_merge_ptr_value(conf->zone, prev->zone, NULL);

    if (conf->redis == NGX_CONF_UNSET_PTR) {
        conf->redis = (prev->redis == NGX_CONF_UNSET_PTR) ? NULL
                                                           : prev->redis;
        conf->redis_prefix = prev->redis_prefix;
    }

    ngx_conf_merge_value(conf->ttl, prev->ttl, 0);
    ngx_conf_merge_size_value(conf->max_size, prev->max_size,
                              25 * 1024 * 1024);
    ngx_conf_merge_msec_value(conf->lock_timeout, prev->lock_timeout, 10000);
    ngx_conf_merge_uint_value(conf->scope, prev->scope,
                              NGX_HTTP_AI_GATEWAY_CACHE_SCOPE_CREDENTIAL);

    if (conf->ttl < 0 || conf->ttl > NGX_HTTP_AI_GATEWAY_CACHE_TTL_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ai_gateway_cache_ttl\" must be at most "
                           "one month (30d)");
        return NGX_CONF_ERROR;
    }

    /* Redis, when both are given */

    conf->store = conf->redis ? &ngx_http_ai_gateway_cache_redis_store
                  : conf->zone ? &ngx_http_ai_gateway_cache_shm_store
                  : NULL;

    return NGX_CONF_OK;
}


/*
 * The request's cache headers, read when the request is routed.  Returns
 * NGX_OK, or the status of an error recorded with ngx_http_ai_gateway_fail().
 * ctx->cache.state is set when the response may come from or go to the cache.
 */

ngx_int_t
ngx_http_ai_gateway_cache_headers(ngx_http_request_t *r,
    ngx_http_ai_gateway_loc_conf_t *alcf, ngx_http_ai_gateway_ctx_t *ctx)
{
    time_t                          ttl;
    ngx_int_t                       rc;
    ngx_uint_t                      skip;
    ngx_table_elt_t                *ttl_h, *legacy_ttl_h, *key_h;
    ngx_pool_cleanup_t             *cln;
    ngx_http_ai_gateway_cache_t    *c;
    ngx_http_ai_gateway_headers_t  *hs;

    if (alcf->cache.store == NULL) {
        return NGX_OK;
    }

    if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_POST) {
        return NGX_OK;
    }

    hs = ngx_http_ai_gateway_headers(r, ctx);
    if (hs == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ttl = 0;
    ttl_h = hs->cache_ttl;
    legacy_ttl_h = hs->legacy_cache_ttl;
    key_h = hs->cache_key;
    skip = ngx_http_ai_gateway_headers_true(hs->skip_cache)
           || ngx_http_ai_gateway_headers_true(hs->legacy_skip_cache);

    if (ttl_h == NULL) {
        ttl_h = legacy_ttl_h;
    }

    if (key_h && (key_h->value.len == 0 || key_h->value.len > 1024)) {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_HEADER,
                                        "cf-aig-cache-key must have 1 to "
                                        "1024 characters");
    }

    if (ttl_h) {
        rc = ngx_http_ai_gateway_cache_ttl(r, ctx, ttl_h, &ttl);
        if (rc != NGX_OK) {
            return rc;
        }

    } else if (key_h && alcf->cache.ttl == 0) {
        /* a custom key on a gateway without caching: five minutes */
        ttl = NGX_HTTP_AI_GATEWAY_CACHE_TTL_CUSTOM;

    } else {
        ttl = alcf->cache.ttl;
    }

    if (ttl == 0) {
        return NGX_OK;
    }

    c = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_gateway_cache_t));
    if (c == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_ai_gateway_cache_cleanup;
    cln->data = c;

    c->request = r;
    c->conf = &alcf->cache;
    c->ttl = ttl;
    c->skip = skip;

    if (key_h) {
        c->custom = key_h->value;
    }

    /* the body copy the key needs, kept by the request body filter */

    if (!ctx->route.compat && ctx->body.raw_size == 0
        && r->headers_in.content_length_n > 0
        && r->headers_in.content_length_n <= alcf->max_body_size)
    {
        ctx->body.raw.data = ngx_pnalloc(r->pool,
                                    r->headers_in.content_length_n + 1);
        if (ctx->body.raw.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->body.raw_size = r->headers_in.content_length_n + 1;
    }

    ctx->cache.state = c;

    return NGX_OK;
}


/* cf-aig-cache-ttl: 0 (no caching) or 60 seconds to one month */

static ngx_int_t
ngx_http_ai_gateway_cache_ttl(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_table_elt_t *h, time_t *ttl)
{
    ngx_int_t  n;

    n = ngx_atoi(h->value.data, h->value.len);

    if (n == NGX_ERROR
        || (n != 0 && (n < NGX_HTTP_AI_GATEWAY_CACHE_TTL_MIN
                       || n > NGX_HTTP_AI_GATEWAY_CACHE_TTL_MAX)))
    {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_HEADER,
                                        "%V must be 0, or 60 to 2592000 "
                                        "seconds", &h->key);
    }

    *ttl = n;

    return NGX_OK;
}


/*
 * The cache stage, once the request's body is read and its target known:
 * NGX_DECLINED when the provider answers (no cache, cf-aig-skip-cache, or
 * nothing found: the answer will be stored), NGX_OK for a hit, answered by
 * ngx_http_ai_gateway_cache_answer(), NGX_AGAIN while the request waits
 * (for Redis, or for an identical request already on its way to the
 * provider), or an error status.  The request is posted when a wait is
 * over and the driver asks again.
 */

ngx_int_t
ngx_http_ai_gateway_cache_lookup(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_http_ai_gateway_cache_t  *c;

    c = ctx->cache.state;

    if (c == NULL) {
        ctx->cache.status = NGX_HTTP_AI_GATEWAY_CACHE_MISS;
        return NGX_DECLINED;
    }

    for ( ;; ) {

        switch (c->state) {

        case NGX_HTTP_AI_GATEWAY_CACHE_START:

            ctx->cache.status = NGX_HTTP_AI_GATEWAY_CACHE_MISS;

            if (!c->keyed && ngx_http_ai_gateway_cache_key(r, ctx, c) != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            if (c->skip) {
                /* a fresh answer, stored for the requests after it */
                c->state = NGX_HTTP_AI_GATEWAY_CACHE_UPSTREAM;
                break;
            }

            ngx_http_ai_gateway_cache_get(r, c);
            break;

        case NGX_HTTP_AI_GATEWAY_CACHE_FETCHING:
        case NGX_HTTP_AI_GATEWAY_CACHE_LOCKED:
            /* still waiting: the answer or a timer changes the state */
            return NGX_AGAIN;

        case NGX_HTTP_AI_GATEWAY_CACHE_NONE:
            ngx_http_ai_gateway_cache_miss(r, c);
            break;

        case NGX_HTTP_AI_GATEWAY_CACHE_FOUND:
            return NGX_OK;

        default: /* NGX_HTTP_AI_GATEWAY_CACHE_UPSTREAM */
            c->store = 1;
            return NGX_DECLINED;
        }
    }
}


/* the answer of a hit */

ngx_int_t
ngx_http_ai_gateway_cache_answer(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    return ngx_http_ai_gateway_cache_send(r, ctx->cache.state->entry);
}


/* in the zone, or a GET sent to Redis: the state says which came */

static void
ngx_http_ai_gateway_cache_get(ngx_http_request_t *r,
    ngx_http_ai_gateway_cache_t *c)
{
    ngx_int_t   rc;
    ngx_str_t   entry;

    c->state = NGX_HTTP_AI_GATEWAY_CACHE_NONE;

    rc = c->conf->store->get(c->conf, c->key, r->pool, &entry,
                             ngx_http_ai_gateway_cache_fetched, c, &c->op,
                             r->connection->log);

    if (rc == NGX_AGAIN) {
        /* the answer, or the store's timeout, calls back */
        c->state = NGX_HTTP_AI_GATEWAY_CACHE_FETCHING;
        return;
    }

    if (rc == NGX_OK) {
        ngx_http_ai_gateway_cache_found(r, c, &entry);
    }
}


/* the store answered later (an entry, or NULL): the request goes on */

static void
ngx_http_ai_gateway_cache_fetched(void *data, ngx_str_t *entry)
{
    ngx_http_ai_gateway_cache_t *c = data;

    c->op = NULL;
    c->state = NGX_HTTP_AI_GATEWAY_CACHE_NONE;

    if (entry) {
        ngx_http_ai_gateway_cache_found(c->request, c, entry);
    }

    ngx_http_ai_gateway_cache_resume(c->request);
}


/* the driver asks the cache again (its write event handler) */

static void
ngx_http_ai_gateway_cache_resume(ngx_http_request_t *r)
{
    ngx_connection_t  *c;

    c = r->connection;

    if (ngx_http_post_request(r, NULL) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }

    ngx_http_run_posted_requests(c);
}


/*
 * Not in the cache: the first request of a key goes to the provider, the
 * identical ones arriving meanwhile (in this worker) wait for its answer.
 */

static void
ngx_http_ai_gateway_cache_miss(ngx_http_request_t *r,
    ngx_http_ai_gateway_cache_t *c)
{
    ngx_queue_t                       *q;
    ngx_http_ai_gateway_cache_lock_t  *lock;
    ngx_http_ai_gateway_loc_conf_t    *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_module);

    c->state = NGX_HTTP_AI_GATEWAY_CACHE_UPSTREAM;

    if (c->waited || alcf->cache.lock_timeout == 0) {
        return;
    }

    if (ngx_http_ai_gateway_cache_locks.next == NULL) {
        ngx_queue_init(&ngx_http_ai_gateway_cache_locks);
    }

    for (q = ngx_queue_head(&ngx_http_ai_gateway_cache_locks);
         q != ngx_queue_sentinel(&ngx_http_ai_gateway_cache_locks);
         q = ngx_queue_next(q))
    {
        lock = ngx_queue_data(q, ngx_http_ai_gateway_cache_lock_t, queue);

        if (ngx_memcmp(lock->key, c->key, NGX_HTTP_AI_GATEWAY_CACHE_KEY_LEN)
            != 0)
        {
            continue;
        }

        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "ai gateway cache: waiting for an identical request");

        c->lock = lock;
        c->waiting = 1;
        c->state = NGX_HTTP_AI_GATEWAY_CACHE_LOCKED;
        ngx_queue_insert_tail(&lock->waiters, &c->queue);

        c->wait.handler = ngx_http_ai_gateway_cache_wake;
        c->wait.data = c;
        c->wait.log = r->connection->log;

        ngx_add_timer(&c->wait, alcf->cache.lock_timeout);

        return;
    }

    lock = ngx_alloc(sizeof(ngx_http_ai_gateway_cache_lock_t),
                     r->connection->log);

    if (lock) {
        ngx_memcpy(lock->key, c->key, NGX_HTTP_AI_GATEWAY_CACHE_KEY_LEN);
        ngx_queue_init(&lock->waiters);
        ngx_queue_insert_tail(&ngx_http_ai_gateway_cache_locks, &lock->queue);

        c->lock = lock;
        c->leader = 1;
    }
}


/*
 * An entry found: decoded now, answered by the driver (FOUND); an entry
 * that does not decode is removed from the store, and the request goes on
 * as a miss.
 */

static void
ngx_http_ai_gateway_cache_found(ngx_http_request_t *r,
    ngx_http_ai_gateway_cache_t *c, ngx_str_t *entry)
{
    ngx_http_ai_gateway_cache_entry_t  *e;

    e = ngx_palloc(r->pool, sizeof(ngx_http_ai_gateway_cache_entry_t));
    if (e == NULL) {
        return;
    }

    if (ngx_http_ai_gateway_cache_entry_decode(entry->data, entry->len, e)
        != NGX_OK)
    {
        ngx_http_ai_gateway_cache_invalid(r, c, entry, e);
        return;
    }

    c->entry = e;
    c->state = NGX_HTTP_AI_GATEWAY_CACHE_FOUND;
}


/*
 * An invalid entry: logged once, by its key and the reason (never a header
 * value or the body), and removed, so that the next request does not find
 * it; this request's own answer is stored in its place.
 */

static void
ngx_http_ai_gateway_cache_invalid(ngx_http_request_t *r,
    ngx_http_ai_gateway_cache_t *c, ngx_str_t *entry,
    ngx_http_ai_gateway_cache_entry_t *e)
{
    u_char  at[32], buf[NGX_MAX_ERROR_STR], *p, *where;

    p = at;

    if (e->header) {
        p = ngx_sprintf(at, " in header %ui", e->header);
    }

    *p = '\0';

    where = c->conf->store->where(c->conf, buf, sizeof(buf) - 1);
    *where = '\0';

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "ai_gateway: invalid cache entry %*s in %s: %s%s, deleted, "
                  "the request goes to the provider",
                  sizeof(c->hex), c->hex, buf, e->error, at);

    c->conf->store->remove(c->conf, c->key, entry, r->pool,
                           r->connection->log);
}


/* a hit: the status, headers and body of a decoded entry */

static ngx_int_t
ngx_http_ai_gateway_cache_send(ngx_http_request_t *r,
    ngx_http_ai_gateway_cache_entry_t *e)
{
    ngx_int_t                   rc;
    ngx_buf_t                  *b;
    ngx_uint_t                  i;
    ngx_chain_t                 out;
    ngx_table_elt_t            *h;
    ngx_http_ai_gateway_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    r->headers_out.status = e->status;

    if (e->has_content_type) {
        r->headers_out.content_type = e->content_type;
        r->headers_out.content_type_len = e->content_type.len;
    }

    for (i = 0; i < e->nheaders; i++) {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        h->key = e->headers[i].key;
        h->value = e->headers[i].value;
        h->lowcase_key = h->key.data;
    }

    /* SSE is replayed chunked, as it was relayed */

    if (e->content_type.len >= 17
        && ngx_strncasecmp(e->content_type.data,
                           (u_char *) "text/event-stream", 17) == 0)
    {
        r->headers_out.content_length_n = -1;

    } else {
        r->headers_out.content_length_n = e->body.len;
    }

    ctx->cache.hit = 1;
    ctx->cache.status = NGX_HTTP_AI_GATEWAY_CACHE_HIT;

    r->read_event_handler = ngx_http_block_reading;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai gateway cache hit");

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = e->body.data;
    b->last = e->body.data + e->body.len;
    b->memory = (e->body.len != 0);
    b->last_buf = (r == r->main);
    b->sync = (e->body.len == 0 && r != r->main);
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* the lock timer expired, or the leader is done (a posted event) */

static void
ngx_http_ai_gateway_cache_wake(ngx_event_t *ev)
{
    ngx_http_ai_gateway_cache_t *c = ev->data;

    ngx_connection_t    *conn;
    ngx_http_request_t  *r;

    r = c->request;
    conn = r->connection;

    if (ev->timedout) {
        ev->timedout = 0;

        ngx_log_error(NGX_LOG_INFO, conn->log, 0,
                      "ai_gateway: cache lock timed out, the request goes "
                      "to the provider");

        if (c->lock) {
            ngx_queue_remove(&c->queue);
            c->lock = NULL;
        }

        c->retry = 0;
    }

    c->waiting = 0;
    c->waited = 1;

    /* look again (the leader stored its answer), or go to the provider */

    c->state = c->retry ? NGX_HTTP_AI_GATEWAY_CACHE_START
                        : NGX_HTTP_AI_GATEWAY_CACHE_UPSTREAM;
    c->retry = 0;

    ngx_http_ai_gateway_cache_resume(r);
}


/* the leader is done: its waiters look again (retry) or go upstream */

static void
ngx_http_ai_gateway_cache_unlock(ngx_http_ai_gateway_cache_t *c,
    ngx_uint_t retry)
{
    ngx_queue_t                       *q;
    ngx_http_ai_gateway_cache_t       *w;
    ngx_http_ai_gateway_cache_lock_t  *lock;

    lock = c->lock;

    if (!c->leader || lock == NULL) {
        return;
    }

    c->lock = NULL;
    c->leader = 0;

    ngx_queue_remove(&lock->queue);

    while (!ngx_queue_empty(&lock->waiters)) {
        q = ngx_queue_head(&lock->waiters);
        ngx_queue_remove(q);

        w = ngx_queue_data(q, ngx_http_ai_gateway_cache_t, queue);

        w->lock = NULL;
        w->retry = retry;

        if (w->wait.timer_set) {
            ngx_del_timer(&w->wait);
        }

        ngx_post_event(&w->wait, &ngx_posted_events);
    }

    ngx_free(lock);
}


/* the request ends: nothing of it stays in the worker's lists */

static void
ngx_http_ai_gateway_cache_cleanup(void *data)
{
    ngx_http_ai_gateway_cache_t *c = data;

    if (c->op) {
        c->conf->store->cancel(c->op);
        c->op = NULL;
    }

    if (c->wait.timer_set) {
        ngx_del_timer(&c->wait);
    }

    if (c->wait.posted) {
        ngx_delete_posted_event(&c->wait);
    }

    if (c->waiting && c->lock) {
        ngx_queue_remove(&c->queue);
        c->lock = NULL;
    }

    c->waiting = 0;

    ngx_http_ai_gateway_cache_unlock(c, 0);
}


/*
 * The upstream ended: rc 0 when the provider's body is complete; a
 * translated stream that ended with an error event is not (tc.failed)
 */

void
ngx_http_ai_gateway_cache_upstream_done(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_int_t rc)
{
    if (ctx->cache.state) {
        ctx->cache.state->complete = (rc == 0 && !r->connection->error
                                && !ctx->route.tc.failed);
    }
}


/*
 * The response header, in the filter module: cf-aig-cache-status, and the
 * start of the copy kept for the store.  The attempts of a request are
 * cached, not the request.
 */

ngx_int_t
ngx_http_ai_gateway_cache_header(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_table_elt_t              *h;
    ngx_http_ai_gateway_cache_t  *c;

    if ((r == r->main ? ctx->retry != NULL
                      : ctx->kind != NGX_HTTP_AI_GATEWAY_ATTEMPT)
        || ctx->cache.status == 0)
    {
        return NGX_OK;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key = ngx_http_ai_gateway_cache_status_name;
    h->value = ngx_http_ai_gateway_cache_status_value[ctx->cache.status];
    h->lowcase_key = h->key.data;

    c = ctx->cache.state;

    if (c == NULL || !c->store || ctx->cache.hit) {
        return NGX_OK;
    }

    if (r->headers_out.status < NGX_HTTP_OK
        || r->headers_out.status >= NGX_HTTP_SPECIAL_RESPONSE
        || r->headers_out.status == NGX_HTTP_NO_CONTENT
        || ctx->error.made
        || r->header_only
        || ngx_http_ai_gateway_cache_head(r, c) != NGX_OK)
    {
        ngx_http_ai_gateway_cache_abandon(r, c);
    }

    return NGX_OK;
}


/*
 * The entry's status and headers, at the start of the kept copy.  A
 * response whose head the decoder would refuse is not cached.
 */

static ngx_int_t
ngx_http_ai_gateway_cache_head(ngx_http_request_t *r,
    ngx_http_ai_gateway_cache_t *c)
{
    size_t                              len;
    ngx_uint_t                          i;
    ngx_list_part_t                    *part;
    ngx_table_elt_t                    *h;
    ngx_http_ai_gateway_cache_entry_t   e;

    e.status = r->headers_out.status;
    e.nheaders = 0;
    e.has_content_type = (r->headers_out.content_type.len != 0);
    e.content_type = r->headers_out.content_type;

    part = &r->headers_out.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash == 0
            || !ngx_http_ai_gateway_cache_entry_keeps(h[i].key.data,
                                                      h[i].key.len))
        {
            continue;
        }

        if (e.nheaders == NGX_HTTP_AI_GATEWAY_CACHE_HEADERS) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "ai_gateway: response with more than %d request "
                          "id headers not cached",
                          NGX_HTTP_AI_GATEWAY_CACHE_HEADERS);
            return NGX_DECLINED;
        }

        e.headers[e.nheaders].key = h[i].key;
        e.headers[e.nheaders].value = h[i].value;
        e.nheaders++;
    }

    if (ngx_http_ai_gateway_cache_entry_check(&e) != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ai_gateway: response not cached: %s", e.error);
        return NGX_DECLINED;
    }

    len = ngx_http_ai_gateway_cache_entry_head_size(&e);

    c->size = ngx_max(len, 4096);

    c->buf = ngx_palloc(r->pool, c->size);
    if (c->buf == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_http_ai_gateway_cache_entry_write_head(c->buf, &e);

    c->len = len;
    c->head_size = len;
    c->head = 1;

    return NGX_OK;
}


/* the response body, in the filter module: a copy for the store */

void
ngx_http_ai_gateway_cache_body(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_chain_t *in)
{
    ngx_chain_t                  *cl;
    ngx_http_ai_gateway_cache_t  *c;

    c = ctx->cache.state;

    if ((r == r->main ? ctx->retry != NULL
                      : ctx->kind != NGX_HTTP_AI_GATEWAY_ATTEMPT)
        || c == NULL || !c->store || !c->head)
    {
        return;
    }

    /* a copy of what passes, the stream is not held back */

    for (cl = in; cl && c->store; cl = cl->next) {

        if (!ngx_buf_in_memory(cl->buf) && ngx_buf_size(cl->buf)) {
            ngx_http_ai_gateway_cache_abandon(r, c);
            break;
        }

        if (ngx_buf_in_memory(cl->buf)
            && ngx_http_ai_gateway_cache_append(r, c, cl->buf->pos,
                                                cl->buf->last - cl->buf->pos)
               != NGX_OK)
        {
            ngx_http_ai_gateway_cache_abandon(r, c);
            break;
        }

        if (cl->buf->last_buf
            || (r != r->main && cl->buf->last_in_chain))
        {
            /* the end of the response, or of an attempt's */
            ngx_http_ai_gateway_cache_store(r, c);
            break;
        }
    }
}


static ngx_int_t
ngx_http_ai_gateway_cache_append(ngx_http_request_t *r,
    ngx_http_ai_gateway_cache_t *c, u_char *p, size_t len)
{
    ngx_http_ai_gateway_loc_conf_t  *alcf;

    if (len == 0) {
        return NGX_OK;
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_module);

    if (c->len + len > alcf->cache.max_size) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ai_gateway: response larger than "
                      "ai_gateway_cache_max_size, not cached");
        return NGX_DECLINED;
    }

    if (ngx_http_ai_gateway_reserve(r->pool, &c->buf, &c->size, c->len,
                                    c->len + len, 0, 0)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_memcpy(c->buf + c->len, p, len);
    c->len += len;

    return NGX_OK;
}


static void
ngx_http_ai_gateway_cache_abandon(ngx_http_request_t *r,
    ngx_http_ai_gateway_cache_t *c)
{
    c->store = 0;

    if (c->buf) {
        ngx_pfree(r->pool, c->buf);
        c->buf = NULL;
        c->len = 0;
        c->size = 0;
    }

    /* waiters need not wait for an answer that will not be stored */

    ngx_http_ai_gateway_cache_unlock(c, 0);
}


static void
ngx_http_ai_gateway_cache_store(ngx_http_request_t *r,
    ngx_http_ai_gateway_cache_t *c)
{
    if (!c->complete) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ai_gateway: incomplete response not cached");
        ngx_http_ai_gateway_cache_abandon(r, c);
        return;
    }

    if (r->headers_out.content_type.len >= 17
        && ngx_strncasecmp(r->headers_out.content_type.data,
                           (u_char *) "text/event-stream", 17) == 0
        && ngx_http_ai_gateway_cache_sse_error(c->buf + c->head_size,
                                               c->buf + c->len))
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ai_gateway: stream with an error event not cached");
        ngx_http_ai_gateway_cache_abandon(r, c);
        return;
    }

    ngx_http_ai_gateway_cache_entry_set_body(c->buf, c->head_size,
                                             c->len - c->head_size);

    c->conf->store->put(c->conf, c->key, c->buf, c->len, c->ttl, r->pool,
                        r->connection->log);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai gateway cache stored: %uz bytes, ttl %T",
                   c->len, c->ttl);

    c->store = 0;
    c->stored = 1;

    ngx_pfree(r->pool, c->buf);
    c->buf = NULL;

    ngx_http_ai_gateway_cache_unlock(c, 1);
}


/* "event: error", or a "data:" line whose JSON starts with "error" */

static ngx_uint_t
ngx_http_ai_gateway_cache_sse_error(u_char *p, u_char *last)
{
    u_char  *q;

    while (p < last) {
        q = ngx_strlchr(p, last, '\n');
        if (q == NULL) {
            q = last;
        }

        if (q - p >= 12 && ngx_strncmp(p, "event:", 6) == 0) {
            p += 6;

            while (p < q && *p == ' ') {
                p++;
            }

            if (q - p >= 5 && ngx_strncmp(p, "error", 5) == 0
                && (q - p == 5 || p[5] == '\r'))
            {
                return 1;
            }

        } else if (q - p >= 13 && ngx_strncmp(p, "data:", 5) == 0) {
            p += 5;

            while (p < q && *p == ' ') {
                p++;
            }

            if (q - p >= 8 && ngx_strncmp(p, "{\"error\"", 8) == 0) {
                return 1;
            }
        }

        p = q + 1;
    }

    return 0;
}


ngx_int_t
ngx_http_ai_gateway_cache_key_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ai_gateway_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    if (ctx == NULL || ctx->cache.state == NULL || !ctx->cache.state->keyed) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = sizeof(ctx->cache.state->hex);
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = ctx->cache.state->hex;

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_gateway_cache_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ai_gateway_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    if (ctx == NULL || ctx->cache.status == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = ngx_http_ai_gateway_cache_status_value[ctx->cache.status].len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = ngx_http_ai_gateway_cache_status_value[ctx->cache.status].data;

    return NGX_OK;
}
