
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_module.h"
#include "ngx_http_ai_gateway_otel.h"


/*
 * Request logs (docs/logs.md): one record per request, or per attempt of
 * a request with attempts (retries, a request timeout, the Universal
 * Endpoint's steps, each with its step), in the gateway's store.
 *
 * When the content handler takes a request or an attempt,
 * ngx_http_ai_gateway_log_start() decides what is kept: a record at all
 * (ai_gateway_log_collect, or "cf-aig-collect-log: true|false") and the
 * request and response bodies (ai_gateway_log_payload, or
 * "cf-aig-collect-log-payload"), each up to ai_gateway_log_payload_size.
 * The request body is kept by the request body filter (handler.c); the
 * answer, as the client gets it, by relay.c as it passes, without
 * holding it.  An attempt joins its request's list.
 *
 * The record is made in nginx's log phase, once the request is over, from
 * what the stages left in the request's context and its attempts': the
 * route, the status, the usage and cost (usage.c and cost.c fill those),
 * the cache's verdict, the heads with every credential redacted, the
 * times.  The attempt that answered (the last one started) carries the
 * request's log id, the one its client got in cf-aig-log-id; the others
 * have ids of their own.  The record goes to the store with a put() that
 * never waits and never fails the request: a record the store cannot
 * take is counted (log_store.c).  With ai_gateway_otel_exporter, each
 * record made (with or without a store, and whether or not it is
 * collected) is also handed to otel.c, the request's last, as a span.
 *
 * Credentials never reach a record: the values of Authorization,
 * x-api-key, api-key, x-goog-api-key, cf-aig-authorization, cookies and
 * any header or query argument whose name speaks of a key, token, secret,
 * password, signature or authorization are replaced by "[REDACTED]"; the
 * Universal Endpoint's own body, which carries its steps' keys, is never
 * kept (each step's record keeps the step's body).
 */


#define NGX_HTTP_AI_GATEWAY_LOG_REDACTED   "[REDACTED]"

/* the credentials of a request, looked for in its payloads */
#define NGX_HTTP_AI_GATEWAY_LOG_SECRETS    16
#define NGX_HTTP_AI_GATEWAY_LOG_SECRET_MIN 6


typedef struct {
    ngx_uint_t                     n;
    ngx_str_t                      s[NGX_HTTP_AI_GATEWAY_LOG_SECRETS];
} ngx_http_ai_gateway_log_secrets_t;


static ngx_int_t ngx_http_ai_gateway_log_handler(ngx_http_request_t *r);
static void ngx_http_ai_gateway_log_one(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_request_t *mr,
    ngx_http_ai_gateway_ctx_t *mctx, u_char *id,
    ngx_http_ai_gateway_log_target_t *t);
static void ngx_http_ai_gateway_log_route(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_ctx_t *mctx,
    ngx_http_ai_gateway_log_record_t *rec);
static void ngx_http_ai_gateway_log_bodies(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_log_record_t *rec,
    ngx_http_ai_gateway_log_secrets_t *secrets, ngx_str_t *req,
    ngx_str_t *resp);
static ngx_int_t ngx_http_ai_gateway_log_request_head(ngx_http_request_t *r,
    ngx_http_ai_gateway_log_record_t *rec,
    ngx_http_ai_gateway_log_secrets_t *secrets);
static ngx_int_t ngx_http_ai_gateway_log_response_head(ngx_http_request_t *r,
    ngx_uint_t status, ngx_http_ai_gateway_log_record_t *rec);
static size_t ngx_http_ai_gateway_log_headers_size(ngx_list_t *list);
static u_char *ngx_http_ai_gateway_log_headers(u_char *p, u_char *last,
    ngx_list_t *list, ngx_uint_t *complete,
    ngx_http_ai_gateway_log_secrets_t *secrets);
static u_char *ngx_http_ai_gateway_log_query(u_char *p, u_char *last,
    ngx_str_t *args, ngx_uint_t *complete,
    ngx_http_ai_gateway_log_secrets_t *secrets);
static void ngx_http_ai_gateway_log_keep_secret(
    ngx_http_ai_gateway_log_secrets_t *secrets, u_char *p, size_t len);
static void ngx_http_ai_gateway_log_scrub(ngx_pool_t *pool, ngx_str_t *body,
    ngx_http_ai_gateway_log_secrets_t *secrets);
static ngx_table_elt_t *ngx_http_ai_gateway_log_header(ngx_list_t *list,
    const char *name);
static ngx_uint_t ngx_http_ai_gateway_log_flag(ngx_table_elt_t *h,
    ngx_uint_t dflt);
static ngx_uint_t ngx_http_ai_gateway_log_differ(ngx_str_t *a, ngx_str_t *b);


ngx_conf_enum_t  ngx_http_ai_gateway_log_strategies[] = {
    { ngx_string("stop_inserting"), NGX_HTTP_AI_GATEWAY_LOG_STOP_INSERTING },
    { ngx_string("delete_oldest"), NGX_HTTP_AI_GATEWAY_LOG_DELETE_OLDEST },
    { ngx_null_string, 0 }
};


ngx_conf_num_bounds_t  ngx_http_ai_gateway_log_max_bounds = {
    ngx_conf_check_num_bounds, 1, NGX_HTTP_AI_GATEWAY_LOG_MAX_DEFAULT
};


/* the type of model an endpoint serves, by the end of its path */

typedef struct {
    ngx_str_t                      suffix;
    ngx_str_t                      type;
} ngx_http_ai_gateway_log_type_t;


static ngx_http_ai_gateway_log_type_t  ngx_http_ai_gateway_log_types[] = {
    { ngx_string("chat/completions"), ngx_string("chat") },
    { ngx_string("/messages"), ngx_string("chat") },
    { ngx_string("/responses"), ngx_string("chat") },
    { ngx_string(":generateContent"), ngx_string("chat") },
    { ngx_string(":streamGenerateContent"), ngx_string("chat") },
    { ngx_string("/converse"), ngx_string("chat") },
    { ngx_string("/converse-stream"), ngx_string("chat") },
    { ngx_string("/chat"), ngx_string("chat") },
    { ngx_string("completions"), ngx_string("completion") },
    { ngx_string("embeddings"), ngx_string("embeddings") },
    { ngx_string(":embedContent"), ngx_string("embeddings") },
    { ngx_string(":batchEmbedContents"), ngx_string("embeddings") },
    { ngx_string("/embed"), ngx_string("embeddings") },
    { ngx_null_string, ngx_null_string }
};


static ngx_str_t  ngx_http_ai_gateway_log_model_var =
    ngx_string("ai_gateway_model");
static ngx_str_t  ngx_http_ai_gateway_log_chat = ngx_string("chat");
static ngx_str_t  ngx_http_ai_gateway_log_embeddings =
    ngx_string("embeddings");


/* ai_gateway_logs zone | off; */

char *
ngx_http_ai_gateway_logs_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_gateway_loc_conf_t *alcf = conf;

    ngx_str_t  *value;

    if (alcf->log.zone != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0) {
        alcf->log.zone = NULL;
        return NGX_CONF_OK;
    }

    /* size 0: a reference to ai_gateway_log_zone, declared anywhere */

    alcf->log.zone = ngx_shared_memory_add(cf, &value[1], 0,
                                           &ngx_http_ai_gateway_log_shm_store);
    if (alcf->log.zone == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * ai_gateway_logs_redis name [prefix=str];
 * ai_gateway_logs_redis ip:port [prefix=str] [timeout=time] [db=n]
 *     [user=name] [password_file=path];
 * ai_gateway_logs_redis off;
 */

char *
ngx_http_ai_gateway_logs_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_gateway_loc_conf_t *alcf = conf;

    u_char                       *p;
    ngx_int_t                     rc;
    ngx_str_t                    *value;
    ngx_uint_t                    i, address;
    ngx_http_ai_gateway_redis_t  *rd;

    if (alcf->log.redis != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0) {

        if (cf->args->nelts != 2) {
            return "has parameters after \"off\"";
        }

        alcf->log.redis = NULL;
        return NGX_CONF_OK;
    }

    if (value[1].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "empty Redis server");
        return NGX_CONF_ERROR;
    }

    address = (ngx_strlchr(value[1].data, value[1].data + value[1].len, ':')
               != NULL);

    rd = address ? ngx_http_ai_gateway_redis_add(cf, &value[1])
                 : ngx_http_ai_gateway_redis_ref(cf, &value[1]);

    if (rd == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&alcf->log.redis_prefix, "aigw:logs:");

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "prefix=", 7) == 0) {
            alcf->log.redis_prefix.data = value[i].data + 7;
            alcf->log.redis_prefix.len = value[i].len - 7;

            for (p = value[i].data + 7; p < value[i].data + value[i].len; p++)
            {
                if (*p <= ' ' || *p >= 0x7f || *p == '{' || *p == '}') {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "invalid Redis key prefix \"%V\"",
                                       &value[i]);
                    return NGX_CONF_ERROR;
                }
            }

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
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (address && ngx_http_ai_gateway_redis_done(cf, rd) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    alcf->log.redis = rd;

    return NGX_CONF_OK;
}


void
ngx_http_ai_gateway_log_create_conf(ngx_http_ai_gateway_log_conf_t *conf)
{
    conf->zone = NGX_CONF_UNSET_PTR;
    conf->redis = NGX_CONF_UNSET_PTR;
    conf->max = NGX_CONF_UNSET_UINT;
    conf->strategy = NGX_CONF_UNSET_UINT;
    conf->collect = NGX_CONF_UNSET;
    conf->payload = NGX_CONF_UNSET;
    conf->payload_size = NGX_CONF_UNSET_SIZE;
}


/*
 * The settings merged; a gateway location with a store makes its
 * gateway's target, shared by every location of that gateway (which must
 * then name the same store and limits), and found there by the Logs API.
 */

char *
ngx_http_ai_gateway_log_merge_conf(ngx_conf_t *cf,
    ngx_http_ai_gateway_log_conf_t *prev, ngx_http_ai_gateway_log_conf_t *conf,
    ngx_str_t *gateway, ngx_str_t *account)
{
    ngx_http_ai_gateway_main_conf_t    *amcf;
    ngx_http_ai_gateway_log_target_t   *t, **tp;

    ngx_conf_merge_ptr_value(conf->zone, prev->zone, NULL);

    if (conf->redis == NGX_CONF_UNSET_PTR) {
        conf->redis = (prev->redis == NGX_CONF_UNSET_PTR) ? NULL
                                                           : prev->redis;
        conf->redis_prefix = prev->redis_prefix;
    }

    ngx_conf_merge_uint_value(conf->max, prev->max,
                              NGX_HTTP_AI_GATEWAY_LOG_MAX_DEFAULT);
    ngx_conf_merge_uint_value(conf->strategy, prev->strategy,
                              NGX_HTTP_AI_GATEWAY_LOG_STOP_INSERTING);
    ngx_conf_merge_value(conf->collect, prev->collect, 1);
    ngx_conf_merge_value(conf->payload, prev->payload, 1);
    ngx_conf_merge_size_value(conf->payload_size, prev->payload_size,
                              64 * 1024);

    conf->target = NULL;

    if (gateway->len == 0 || (conf->zone == NULL && conf->redis == NULL)) {
        return NGX_CONF_OK;
    }

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_gateway_module);

    if (amcf->log_targets.elts == NULL
        && ngx_array_init(&amcf->log_targets, cf->pool, 4,
                          sizeof(ngx_http_ai_gateway_log_target_t *))
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    t = ngx_http_ai_gateway_log_target(&amcf->log_targets, gateway);

    if (t) {
        /* Redis wins when both are given, as for the cache */

        if ((conf->redis ? NULL : conf->zone) != t->zone
            || (conf->redis == NULL) != (t->redis == NULL)
            || (conf->redis
                && (ngx_http_ai_gateway_log_differ(
                        ngx_http_ai_gateway_redis_name(conf->redis),
                        ngx_http_ai_gateway_redis_name(t->redis))
                    || ngx_http_ai_gateway_log_differ(&conf->redis_prefix,
                                                      &t->prefix)))
            || conf->max != t->max || conf->strategy != t->strategy)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "the locations of gateway \"%V\" name "
                               "different log stores or limits", gateway);
            return NGX_CONF_ERROR;
        }

        if (conf->redis == t->redis) {
            conf->target = t;
            return NGX_CONF_OK;
        }

        /*
         * the same Redis, written in place again: a target of its own,
         * with that server's connection; the API reads the first one
         */
    }

    t = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_gateway_log_target_t));
    if (t == NULL) {
        return NGX_CONF_ERROR;
    }

    t->gateway = *gateway;
    t->account = *account;
    t->max = conf->max;
    t->strategy = conf->strategy;

    if (conf->redis) {
        t->store = &ngx_http_ai_gateway_log_redis_store;
        t->redis = conf->redis;
        t->prefix = conf->redis_prefix;

    } else {
        t->store = &ngx_http_ai_gateway_log_shm_store;
        t->zone = conf->zone;
    }

    conf->target = t;

    if (ngx_http_ai_gateway_log_target(&amcf->log_targets, gateway)) {
        return NGX_CONF_OK;
    }

    tp = ngx_array_push(&amcf->log_targets);
    if (tp == NULL) {
        return NGX_CONF_ERROR;
    }

    *tp = t;

    return NGX_CONF_OK;
}


static ngx_uint_t
ngx_http_ai_gateway_log_differ(ngx_str_t *a, ngx_str_t *b)
{
    return a->len != b->len || ngx_strncmp(a->data, b->data, a->len) != 0;
}


ngx_int_t
ngx_http_ai_gateway_log_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_ai_gateway_log_handler;

    return NGX_OK;
}


/*
 * The content handler takes a request or an attempt: what its record
 * keeps is decided now, before its body is read.
 */

void
ngx_http_ai_gateway_log_start(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_http_ai_gateway_ctx_t        *mctx, **cp;
    ngx_http_ai_gateway_headers_t    *hs;
    ngx_http_ai_gateway_loc_conf_t   *alcf;

    if (ctx->log.started) {
        return;
    }

    ctx->log.started = 1;
    ctx->log.request = r;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_module);

    if (alcf->log.target == NULL
        && !ngx_http_ai_gateway_otel_enabled(r->main))
    {
        return;
    }

    hs = ngx_http_ai_gateway_headers(r, ctx);
    if (hs == NULL) {
        return;
    }

    ctx->log.collect = ngx_http_ai_gateway_log_flag(hs->collect_log,
                                                    alcf->log.collect);
    ctx->log.payload = ctx->log.collect
                       && ngx_http_ai_gateway_log_flag(hs->collect_log_payload,
                                                       alcf->log.payload)
                       && alcf->log.payload_size;

    ctx->log.limit = ctx->log.payload ? alcf->log.payload_size : 0;

    if (ctx->kind != NGX_HTTP_AI_GATEWAY_ATTEMPT) {
        return;
    }

    ctx->log.step = ngx_http_ai_gateway_retry_step(ctx);

    mctx = ngx_http_get_module_ctx(r->main, ngx_http_ai_gateway_module);

    if (mctx == NULL) {
        return;
    }

    if (mctx->log.attempts == NULL) {
        mctx->log.attempts = ngx_array_create(r->pool, 4,
                                         sizeof(ngx_http_ai_gateway_ctx_t *));
        if (mctx->log.attempts == NULL) {
            return;
        }
    }

    cp = ngx_array_push(mctx->log.attempts);
    if (cp == NULL) {
        return;
    }

    *cp = ctx;
}


/* "true" or "false", in any case; anything else is the default */

static ngx_uint_t
ngx_http_ai_gateway_log_flag(ngx_table_elt_t *h, ngx_uint_t dflt)
{
    if (h == NULL) {
        return dflt;
    }

    if (h->value.len == 4
        && ngx_strncasecmp(h->value.data, (u_char *) "true", 4) == 0)
    {
        return 1;
    }

    if (h->value.len == 5
        && ngx_strncasecmp(h->value.data, (u_char *) "false", 5) == 0)
    {
        return 0;
    }

    return dflt;
}


/* the log phase of the main request: its record, or its attempts' */

static ngx_int_t
ngx_http_ai_gateway_log_handler(ngx_http_request_t *r)
{
    ngx_uint_t                         i, otel;
    ngx_http_request_t                *last;
    ngx_http_ai_gateway_ctx_t         *ctx, **attempts;
    ngx_http_ai_gateway_loc_conf_t    *alcf;
    ngx_http_ai_gateway_log_target_t  *t;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    if (ctx == NULL || !ctx->log.started
        || ctx->kind != NGX_HTTP_AI_GATEWAY_REQUEST)
    {
        return NGX_OK;
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_module);

    t = alcf->log.target;
    otel = ngx_http_ai_gateway_otel_enabled(r);

    if (t == NULL && !otel) {
        return NGX_OK;
    }

    if (ctx->log.attempts == NULL || ctx->log.attempts->nelts == 0) {

        if (ctx->log.collect || otel) {
            ngx_http_ai_gateway_log_id(r, ctx);
            ngx_http_ai_gateway_log_one(r, ctx, r, ctx, ctx->ids.log_id, t);
        }

        if (otel) {
            ngx_http_ai_gateway_otel_end(r);
        }

        return NGX_OK;
    }

    /* the answer carries the request's log id, as its client got it */

    last = ngx_http_ai_gateway_retry_request(ctx);
    attempts = ctx->log.attempts->elts;

    for (i = 0; i < ctx->log.attempts->nelts; i++) {

        if (!attempts[i]->log.collect && !otel) {
            continue;
        }

        if (attempts[i]->log.request == last) {
            ngx_http_ai_gateway_log_id(r, ctx);
            ngx_http_ai_gateway_log_one(attempts[i]->log.request, attempts[i],
                                        r, ctx, ctx->ids.log_id, t);
            continue;
        }

        ngx_http_ai_gateway_log_id(attempts[i]->log.request, attempts[i]);
        ngx_http_ai_gateway_log_one(attempts[i]->log.request, attempts[i],
                                    r, ctx, attempts[i]->ids.log_id, t);
    }

    if (otel) {
        /* the request's own record: its span, the attempts' parent */
        ngx_http_ai_gateway_log_id(r, ctx);
        ngx_http_ai_gateway_log_one(r, ctx, r, ctx, ctx->ids.log_id, NULL);
        ngx_http_ai_gateway_otel_end(r);
    }

    return NGX_OK;
}


/*
 * One record: of the request r (mr itself, or one of its attempts), sent
 * to the store t when collected, and to otel.c.
 */

static void
ngx_http_ai_gateway_log_one(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_request_t *mr,
    ngx_http_ai_gateway_ctx_t *mctx, u_char *id,
    ngx_http_ai_gateway_log_target_t *t)
{
    uint64_t                            now, end;
    ngx_str_t                           bytes, req, resp, *md;
    ngx_uint_t                          status;
    ngx_time_t                         *tp;
    ngx_http_ai_gateway_log_pos_t       pos;
    ngx_http_ai_gateway_log_record_t    rec;
    ngx_http_ai_gateway_log_secrets_t   secrets;

    ngx_memzero(&rec, sizeof(ngx_http_ai_gateway_log_record_t));

    ngx_memcpy(rec.id, id, NGX_HTTP_AI_GATEWAY_LOG_ID_LEN);

    tp = ngx_timeofday();
    now = (uint64_t) tp->sec * 1000 + tp->msec;

    rec.created_at = (uint64_t) r->start_sec * 1000 + r->start_msec;

    /*
     * the request ends now; an attempt ended with its provider exchange
     * (relay.c), or at once when it had none (a cache hit, an error of
     * its own), unless it is the last one, which ends with the request
     */

    end = now;

    if (r != mr) {
        end = ctx->log.end ? ctx->log.end
              : (ctx->log.request == ngx_http_ai_gateway_retry_request(mctx))
                ? now : rec.created_at;
    }

    rec.duration = (end > rec.created_at) ? end - rec.created_at : 0;

    if (ctx->relay.first_byte) {
        rec.flags |= NGX_HTTP_AI_GATEWAY_LOG_TTFB;
        rec.ttfb = ctx->relay.ttfb;
    }

    status = r->err_status ? r->err_status : r->headers_out.status;

    if (status == 0 && r->connection->error) {
        status = NGX_HTTP_CLIENT_CLOSED_REQUEST;
    }

    rec.status = (status <= 999) ? status : 0;

    if (status >= NGX_HTTP_OK && status < NGX_HTTP_BAD_REQUEST
        && !ctx->log.failed)
    {
        rec.flags |= NGX_HTTP_AI_GATEWAY_LOG_SUCCESS;
    }

    if (ctx->cache.hit) {
        rec.flags |= NGX_HTTP_AI_GATEWAY_LOG_CACHED;
    }

    if (ctx->route.compat) {
        rec.flags |= NGX_HTTP_AI_GATEWAY_LOG_COMPAT;
    }

    if (mctx && mctx->access.done) {
        /* with a gateway token (auth.c) */
        rec.flags |= NGX_HTTP_AI_GATEWAY_LOG_AUTHENTICATED;
    }

    rec.step = (r != mr) ? ctx->log.step : 0;

    /* usage and cost, as usage.c and cost.c left them */

    if (ctx->usage.known) {
        rec.flags |= NGX_HTTP_AI_GATEWAY_LOG_USAGE;
        rec.input = ctx->usage.input;
        rec.cached = ctx->usage.cached;
        rec.cache_write = ctx->usage.cache_write;
        rec.output = ctx->usage.output;
        rec.reasoning = ctx->usage.reasoning;

        if (ctx->usage.partial) {
            rec.flags |= NGX_HTTP_AI_GATEWAY_LOG_PARTIAL;
        }
    }

    if (ctx->cost.known) {
        rec.flags |= NGX_HTTP_AI_GATEWAY_LOG_COST;
        rec.cost = ctx->cost.value;
    }

    if (ctx->cost.custom) {
        rec.flags |= NGX_HTTP_AI_GATEWAY_LOG_CUSTOM_COST;
    }

    /* cf-aig-metadata: a Universal step's own, else its request's */

    md = ngx_http_ai_gateway_cost_metadata(r, ctx);

    if (md) {
        rec.str[NGX_HTTP_AI_GATEWAY_LOG_METADATA] = *md;
    }

    if (ngx_http_ai_gateway_event_id(mr, mctx) == NGX_OK) {
        rec.str[NGX_HTTP_AI_GATEWAY_LOG_EVENT_ID] = mctx->ids.event_id;
    }

    ngx_http_ai_gateway_log_route(r, ctx, mctx, &rec);

    secrets.n = 0;

    if (ngx_http_ai_gateway_log_request_head(r, &rec, &secrets) != NGX_OK
        || ngx_http_ai_gateway_log_response_head(r, status, &rec) != NGX_OK)
    {
        return;
    }

    if (ctx->access.key) {
        /* a stored provider key (keys.c), should the provider echo it */
        ngx_http_ai_gateway_log_keep_secret(&secrets, ctx->access.key->data,
                                            ctx->access.key->len);
    }

    ngx_http_ai_gateway_log_bodies(r, ctx, &rec, &secrets, &req, &resp);

    if (ngx_http_ai_gateway_otel_enabled(mr)) {
        ngx_http_ai_gateway_otel_span(r, mr, &rec, &req, &resp);
    }

    if (t == NULL || !ctx->log.collect) {
        return;
    }

    if (ngx_http_ai_gateway_log_encode(r->pool, &rec, &bytes) != NGX_OK) {
        return;
    }

    pos.created_at = rec.created_at;
    ngx_memcpy(pos.id, rec.id, NGX_HTTP_AI_GATEWAY_LOG_ID_LEN);

    /* no payload: an empty string, never a NULL one, to the stores */

    if (req.data == NULL) {
        ngx_str_set(&req, "");
    }

    if (resp.data == NULL) {
        ngx_str_set(&resp, "");
    }

    t->store->put(t, &pos, &bytes, &req, &resp, r->pool, r->connection->log);
}


/* provider, model, path, request type, model type, content types */

static void
ngx_http_ai_gateway_log_route(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_ctx_t *mctx,
    ngx_http_ai_gateway_log_record_t *rec)
{
    u_char                          *p, *last;
    ngx_str_t                        path, *type;
    ngx_uint_t                       n;
    ngx_table_elt_t                 *h;
    ngx_http_variable_value_t       *vv;
    ngx_http_ai_gateway_log_type_t  *lt;

    rec->str[NGX_HTTP_AI_GATEWAY_LOG_PROVIDER] = ctx->route.provider;

    vv = ngx_http_get_variable(r, &ngx_http_ai_gateway_log_model_var,
                               ngx_hash_key(
                                   ngx_http_ai_gateway_log_model_var.data,
                                   ngx_http_ai_gateway_log_model_var.len));

    /* (a value nginx allocated: only not_found is set when not found) */

    if (vv && !vv->not_found) {
        rec->str[NGX_HTTP_AI_GATEWAY_LOG_MODEL].data = vv->data;
        rec->str[NGX_HTTP_AI_GATEWAY_LOG_MODEL].len = vv->len;
    }

    /* the path after "/v1/{account}/{gateway}/{provider}/" */

    p = r->uri.data;
    last = p + r->uri.len;

    for (n = 0; p < last && n < 5; p++) {
        if (*p == '/') {
            n++;

            if (n == 5) {
                p++;
                break;
            }
        }
    }

    path.data = p;
    path.len = (n == 5) ? (size_t) (last - p) : 0;

    rec->str[NGX_HTTP_AI_GATEWAY_LOG_PATH] = path;

    if (ctx->route.compat) {
        ngx_str_set(&rec->str[NGX_HTTP_AI_GATEWAY_LOG_REQUEST_TYPE], "compat");

    } else if (mctx->route.universal) {
        ngx_str_set(&rec->str[NGX_HTTP_AI_GATEWAY_LOG_REQUEST_TYPE],
                    "universal");

    } else {
        ngx_str_set(&rec->str[NGX_HTTP_AI_GATEWAY_LOG_REQUEST_TYPE],
                    "provider");
    }

    type = NULL;

    if (ctx->route.compat) {
        if (ctx->route.endpoint == NGX_HTTP_AI_GATEWAY_CHAT) {
            type = &ngx_http_ai_gateway_log_chat;

        } else if (ctx->route.endpoint == NGX_HTTP_AI_GATEWAY_EMBEDDINGS) {
            type = &ngx_http_ai_gateway_log_embeddings;
        }

    } else if (path.len) {
        for (lt = ngx_http_ai_gateway_log_types; lt->suffix.len; lt++) {
            if (path.len >= lt->suffix.len
                && ngx_strncmp(path.data + path.len - lt->suffix.len,
                               lt->suffix.data, lt->suffix.len) == 0)
            {
                type = &lt->type;
                break;
            }
        }
    }

    if (type) {
        rec->str[NGX_HTTP_AI_GATEWAY_LOG_MODEL_TYPE] = *type;
    }

    /* a step has a header list of its own, without headers_in's fields */

    h = r->headers_in.content_type;

    if (h == NULL) {
        h = ngx_http_ai_gateway_log_header(&r->headers_in.headers,
                                           "content-type");
    }

    if (h) {
        rec->str[NGX_HTTP_AI_GATEWAY_LOG_REQUEST_CT] = h->value;
    }

    rec->str[NGX_HTTP_AI_GATEWAY_LOG_RESPONSE_CT] =
                                             r->headers_out.content_type;

    h = r->main->headers_in.user_agent;

    if (h) {
        rec->str[NGX_HTTP_AI_GATEWAY_LOG_USER_AGENT] = h->value;
    }

    if (r == r->main) {
        rec->request_size = ctx->body.received;

    } else {
        rec->request_size = ctx->body.raw.len;
    }
}


/*
 * The payloads: the request's body as the gateway received it (an
 * attempt's: its step's body), and the answer as its client got it, each
 * at most the limit.  A cache hit's answer is the entry's body; an error
 * of the gateway's own, its envelope.
 */

static void
ngx_http_ai_gateway_log_bodies(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_log_record_t *rec,
    ngx_http_ai_gateway_log_secrets_t *secrets, ngx_str_t *req,
    ngx_str_t *resp)
{
    ngx_str_t  body;

    ngx_str_null(req);
    ngx_str_null(resp);

    if (ctx->log.resp_bytes) {
        body = ctx->log.resp;
        rec->response_size = ctx->log.resp_bytes;

        if (ctx->log.cut) {
            rec->flags |= NGX_HTTP_AI_GATEWAY_LOG_RESPONSE_CUT;
        }

    } else if (ctx->cache.hit && ctx->cache.state
               && ctx->cache.state->entry)
    {
        body = ctx->cache.state->entry->body;
        rec->response_size = body.len;

    } else if (ctx->error.made) {
        body = ctx->error.body;
        rec->response_size = body.len;

    } else {
        ngx_str_null(&body);
    }

    if (!ctx->log.payload) {
        return;
    }

    if (body.len > ctx->log.limit) {
        body.len = ctx->log.limit;
        rec->flags |= NGX_HTTP_AI_GATEWAY_LOG_RESPONSE_CUT;
    }

    ngx_http_ai_gateway_log_scrub(r->pool, &body, secrets);

    *resp = body;
    rec->flags |= NGX_HTTP_AI_GATEWAY_LOG_RESPONSE_BODY;

    /* the Universal Endpoint's own body holds its steps' credentials */

    if (r == r->main && ctx->route.universal) {
        return;
    }

    body = ctx->body.raw;

    if (body.len > ctx->log.limit) {
        body.len = ctx->log.limit;
    }

    if (body.len < rec->request_size) {
        rec->flags |= NGX_HTTP_AI_GATEWAY_LOG_REQUEST_CUT;
    }

    ngx_http_ai_gateway_log_scrub(r->pool, &body, secrets);

    *req = body;
    rec->flags |= NGX_HTTP_AI_GATEWAY_LOG_REQUEST_BODY;
}


/* "POST /v1/a/g/openai/chat/completions HTTP/1.1", the headers */

static ngx_int_t
ngx_http_ai_gateway_log_request_head(ngx_http_request_t *r,
    ngx_http_ai_gateway_log_record_t *rec,
    ngx_http_ai_gateway_log_secrets_t *secrets)
{
    u_char      *p, *q, *last;
    size_t       size;
    ngx_str_t    uri, args;
    ngx_uint_t   complete;

    size = r->method_name.len + r->uri.len + r->unparsed_uri.len
           + r->args.len + sizeof(" ? HTTP/1.1" CRLF) + 16 * 16
           + ngx_http_ai_gateway_log_headers_size(&r->headers_in.headers);
    size = ngx_min(size, NGX_HTTP_AI_GATEWAY_LOG_MAX_HEAD);

    p = ngx_pnalloc(r->pool, size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    rec->str[NGX_HTTP_AI_GATEWAY_LOG_REQUEST_HEAD].data = p;
    last = p + size;
    complete = 1;

    uri = r->valid_unparsed_uri ? r->unparsed_uri : r->uri;
    ngx_str_null(&args);

    q = ngx_strlchr(uri.data, uri.data + uri.len, '?');

    if (q) {
        args.data = q + 1;
        args.len = uri.data + uri.len - args.data;
        uri.len = q - uri.data;

    } else if (!r->valid_unparsed_uri) {
        args = r->args;
    }

    if ((size_t) (last - p) < r->method_name.len + uri.len + 32) {
        return NGX_OK;
    }

    p = ngx_sprintf(p, "%V %V", &r->method_name, &uri);

    if (args.len) {
        *p++ = '?';
        p = ngx_http_ai_gateway_log_query(p, last - 16, &args, &complete,
                                          secrets);
    }

    p = ngx_cpymem(p, " HTTP/1.1" CRLF, sizeof(" HTTP/1.1" CRLF) - 1);

    p = ngx_http_ai_gateway_log_headers(p, last, &r->headers_in.headers,
                                        &complete, secrets);

    rec->str[NGX_HTTP_AI_GATEWAY_LOG_REQUEST_HEAD].len =
                   p - rec->str[NGX_HTTP_AI_GATEWAY_LOG_REQUEST_HEAD].data;

    if (complete) {
        rec->flags |= NGX_HTTP_AI_GATEWAY_LOG_REQUEST_HEAD_OK;
    }

    return NGX_OK;
}


/* "HTTP/1.1 200", the type, the length, the headers */

static ngx_int_t
ngx_http_ai_gateway_log_response_head(ngx_http_request_t *r,
    ngx_uint_t status, ngx_http_ai_gateway_log_record_t *rec)
{
    u_char      *p, *last;
    size_t       size;
    ngx_uint_t   complete;

    size = sizeof("HTTP/1.1 000" CRLF "Content-Type: " CRLF
                  "Content-Length: " CRLF) + NGX_OFF_T_LEN + 1024
           + ngx_http_ai_gateway_log_headers_size(&r->headers_out.headers);
    size = ngx_min(size, NGX_HTTP_AI_GATEWAY_LOG_MAX_HEAD);

    p = ngx_pnalloc(r->pool, size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    rec->str[NGX_HTTP_AI_GATEWAY_LOG_RESPONSE_HEAD].data = p;
    last = p + size;
    complete = 1;

    p = ngx_sprintf(p, "HTTP/1.1 %03ui" CRLF, status % 1000);

    if (r->headers_out.content_type.len
        && r->headers_out.content_type.len < 1024)
    {
        p = ngx_sprintf(p, "Content-Type: %V" CRLF,
                        &r->headers_out.content_type);
    }

    if (r->headers_out.content_length_n >= 0) {
        p = ngx_sprintf(p, "Content-Length: %O" CRLF,
                        r->headers_out.content_length_n);
    }

    p = ngx_http_ai_gateway_log_headers(p, last, &r->headers_out.headers,
                                        &complete, NULL);

    rec->str[NGX_HTTP_AI_GATEWAY_LOG_RESPONSE_HEAD].len =
                   p - rec->str[NGX_HTTP_AI_GATEWAY_LOG_RESPONSE_HEAD].data;

    if (complete) {
        rec->flags |= NGX_HTTP_AI_GATEWAY_LOG_RESPONSE_HEAD_OK;
    }

    return NGX_OK;
}


/* the room the lines of a header list take, redacted or not */

static size_t
ngx_http_ai_gateway_log_headers_size(ngx_list_t *list)
{
    size_t            size;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    size = 0;
    part = &list->part;
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

        size += h[i].key.len + 2
                + ngx_max(h[i].value.len,
                          sizeof(NGX_HTTP_AI_GATEWAY_LOG_REDACTED))
                + 2;
    }

    return size;
}


/* "name: value" lines, credentials redacted, while they fit */

static u_char *
ngx_http_ai_gateway_log_headers(u_char *p, u_char *last, ngx_list_t *list,
    ngx_uint_t *complete, ngx_http_ai_gateway_log_secrets_t *secrets)
{
    size_t            len;
    ngx_str_t         value;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    static ngx_str_t  redacted = ngx_string(NGX_HTTP_AI_GATEWAY_LOG_REDACTED);

    part = &list->part;
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

        if (h[i].hash == 0 || h[i].key.len == 0) {
            continue;
        }

        value = h[i].value;

        if (ngx_http_ai_gateway_log_secret_name(h[i].key.data, h[i].key.len)) {
            value = redacted;

            if (secrets) {
                ngx_http_ai_gateway_log_keep_secret(secrets, h[i].value.data,
                                                    h[i].value.len);
            }
        }

        len = h[i].key.len + 2 + value.len + 2;

        if ((size_t) (last - p) < len) {
            *complete = 0;
            break;
        }

        p = ngx_sprintf(p, "%V: %V" CRLF, &h[i].key, &value);
    }

    return p;
}


/* a query string, the values of its credentials redacted */

static u_char *
ngx_http_ai_gateway_log_query(u_char *p, u_char *last, ngx_str_t *args,
    ngx_uint_t *complete, ngx_http_ai_gateway_log_secrets_t *secrets)
{
    u_char  *a, *q, *eq, *end;
    size_t   len;

    a = args->data;
    end = a + args->len;

    while (a < end) {
        q = ngx_strlchr(a, end, '&');
        if (q == NULL) {
            q = end;
        }

        eq = ngx_strlchr(a, q, '=');

        if (eq && ngx_http_ai_gateway_log_secret_name(a, eq - a)) {
            ngx_http_ai_gateway_log_keep_secret(secrets, eq + 1, q - eq - 1);
        }

        len = (eq && ngx_http_ai_gateway_log_secret_name(a, eq - a))
              ? (size_t) (eq + 1 - a) + sizeof(NGX_HTTP_AI_GATEWAY_LOG_REDACTED)
              : (size_t) (q - a) + 1;

        if ((size_t) (last - p) < len) {
            *complete = 0;
            break;
        }

        if (a != args->data) {
            *p++ = '&';
        }

        if (eq && ngx_http_ai_gateway_log_secret_name(a, eq - a)) {
            p = ngx_cpymem(p, a, eq + 1 - a);
            p = ngx_cpymem(p, NGX_HTTP_AI_GATEWAY_LOG_REDACTED,
                           sizeof(NGX_HTTP_AI_GATEWAY_LOG_REDACTED) - 1);

        } else {
            p = ngx_cpymem(p, a, q - a);
        }

        a = q + 1;
    }

    return p;
}


/*
 * A credential's value, to be looked for in the payloads too (a provider
 * may echo it): the whole value and, after a scheme ("Bearer ..."), the
 * token alone.
 */

static void
ngx_http_ai_gateway_log_keep_secret(ngx_http_ai_gateway_log_secrets_t *secrets,
    u_char *p, size_t len)
{
    u_char  *sp;

    if (len >= NGX_HTTP_AI_GATEWAY_LOG_SECRET_MIN
        && secrets->n < NGX_HTTP_AI_GATEWAY_LOG_SECRETS)
    {
        secrets->s[secrets->n].data = p;
        secrets->s[secrets->n].len = len;
        secrets->n++;
    }

    sp = ngx_strlchr(p, p + len, ' ');

    if (sp) {
        while (sp < p + len && *sp == ' ') {
            sp++;
        }

        if ((size_t) (p + len - sp) >= NGX_HTTP_AI_GATEWAY_LOG_SECRET_MIN
            && secrets->n < NGX_HTTP_AI_GATEWAY_LOG_SECRETS)
        {
            secrets->s[secrets->n].data = sp;
            secrets->s[secrets->n].len = p + len - sp;
            secrets->n++;
        }
    }
}


/* every credential of the request in a payload replaced, in a copy */

static void
ngx_http_ai_gateway_log_scrub(ngx_pool_t *pool, ngx_str_t *body,
    ngx_http_ai_gateway_log_secrets_t *secrets)
{
    u_char      *p, *q, *last, *copy, *d;
    size_t       len;
    ngx_str_t   *s;
    ngx_uint_t   i;

    for (i = 0; i < secrets->n; i++) {
        s = &secrets->s[i];

        if (body->len < s->len) {
            continue;
        }

        /* the occurrences, counted, then replaced */

        last = body->data + body->len - s->len + 1;
        len = 0;

        for (p = body->data; p < last; p++) {
            p = ngx_strlchr(p, last, s->data[0]);

            if (p == NULL) {
                break;
            }

            if (ngx_memcmp(p, s->data, s->len) == 0) {
                len++;
                p += s->len - 1;
            }
        }

        if (len == 0) {
            continue;
        }

        len = body->len + len * sizeof(NGX_HTTP_AI_GATEWAY_LOG_REDACTED);

        copy = ngx_pnalloc(pool, len);
        if (copy == NULL) {
            /* not kept rather than kept with a credential */
            body->len = 0;
            return;
        }

        d = copy;
        q = body->data;

        for (p = body->data; p < last; p++) {
            p = ngx_strlchr(p, last, s->data[0]);

            if (p == NULL) {
                break;
            }

            if (ngx_memcmp(p, s->data, s->len) == 0) {
                d = ngx_cpymem(d, q, p - q);
                d = ngx_cpymem(d, NGX_HTTP_AI_GATEWAY_LOG_REDACTED,
                               sizeof(NGX_HTTP_AI_GATEWAY_LOG_REDACTED) - 1);
                q = p + s->len;
                p = q - 1;
            }
        }

        d = ngx_cpymem(d, q, body->data + body->len - q);

        body->data = copy;
        body->len = d - copy;
    }
}


static ngx_table_elt_t *
ngx_http_ai_gateway_log_header(ngx_list_t *list, const char *name)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);

    part = &list->part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}
