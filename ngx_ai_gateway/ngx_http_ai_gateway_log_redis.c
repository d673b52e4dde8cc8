
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_log_store.h"


/*
 * The log store in Redis (ai_gateway_logs_redis), shared by every nginx
 * that names the same server, over the connection of redis.c.  Per
 * gateway, with K = "{prefix}{gateway}":
 *
 *   K:i        a sorted set, every score 0, of members
 *              "{created_at, 16 digits}:{id}": the same order as the
 *              zone's tree (lexical = by time, then id), ranges by rank
 *              (ZRANGE) for pages and by member (ZRANGEBYLEX) for a
 *              scan's next batch, ZCARD for the count, ZPOPMIN for
 *              DELETE_OLDEST;
 *   K:r:{id}   a hash: "r" the record's bytes (log_record.c), "q" and
 *              "a" the request and response payloads, and "f", "c", "m"
 *              the feedback, score and metadata set by the Logs API
 *              (fields of their own: a PATCH is one HSET, no read,
 *              no lost update between two PATCHes).
 *
 * Streams (XADD MAXLEN) were the other candidate: they trim by count,
 * but cannot find a record by its log id, delete a chosen one, or refuse
 * a record when full (STOP_INSERTING) without a read first.  The sorted
 * set does all of it, and each operation is one Lua script, so that it is
 * atomic across nginx nodes: the count checked and the record added (or
 * the oldest popped) together.  The gateway's name is in braces, a Redis
 * Cluster hash tag; the scripts derive the record keys of popped members
 * from a prefix, which a single Redis (or one shard) serves.
 *
 * Replies with several values come back as one string, each value
 * framed as "{length}:{bytes}", "-" when absent (redis.c has no arrays):
 * a scan's reply is "{total}:{count}:" then the member and the "r", "f",
 * "c", "m" fields of each record.
 *
 * Writes never wait: a record is sent with EVAL and forgotten; its
 * reply only counts a loss.  When Redis is down (redis.c backs off and
 * logs), too slow (more than NGX_HTTP_AI_GATEWAY_LOG_REDIS_INFLIGHT
 * writes of a worker waiting), or the gateway is full with
 * STOP_INSERTING, the record is lost and counted
 * (ngx_http_ai_gateway_log_lost()).
 */


#define NGX_HTTP_AI_GATEWAY_LOG_REDIS_INFLIGHT  256
#define NGX_HTTP_AI_GATEWAY_LOG_MEMBER_LEN      (16 + 1 + 26)


typedef enum {
    NGX_HTTP_AI_GATEWAY_LOG_REDIS_SCAN = 0,
    NGX_HTTP_AI_GATEWAY_LOG_REDIS_GET,
    NGX_HTTP_AI_GATEWAY_LOG_REDIS_PATCH,
    NGX_HTTP_AI_GATEWAY_LOG_REDIS_REMOVE
} ngx_http_ai_gateway_log_redis_e;


typedef struct {
    ngx_http_ai_gateway_log_redis_e        kind;
    ngx_http_ai_gateway_log_done_pt        done;
    void                                  *data;
    ngx_pool_t                            *pool;
    ngx_http_ai_gateway_redis_op_t        *op;
    ngx_http_ai_gateway_log_target_t      *target;
    void                                  *out;    /* scan, item, count */
} ngx_http_ai_gateway_log_redis_op_t;


static ngx_int_t ngx_http_ai_gateway_log_redis_key(ngx_pool_t *pool,
    ngx_http_ai_gateway_log_target_t *t, const char *what, u_char *id,
    ngx_str_t *key);
static u_char *ngx_http_ai_gateway_log_redis_member(u_char *p,
    ngx_http_ai_gateway_log_pos_t *pos);
static void ngx_http_ai_gateway_log_redis_written(void *data,
    ngx_http_ai_gateway_redis_reply_t *reply);
static ngx_int_t ngx_http_ai_gateway_log_redis_run(
    ngx_http_ai_gateway_log_target_t *t, ngx_http_ai_gateway_log_redis_e kind,
    ngx_uint_t argc, ngx_str_t *argv, ngx_uint_t expect, void *out,
    ngx_pool_t *pool, ngx_http_ai_gateway_log_done_pt done, void *data,
    void **op, ngx_log_t *log);
static void ngx_http_ai_gateway_log_redis_reply(void *data,
    ngx_http_ai_gateway_redis_reply_t *reply);
static ngx_int_t ngx_http_ai_gateway_log_redis_scanned(
    ngx_http_ai_gateway_log_redis_op_t *g, ngx_str_t *s);
static ngx_int_t ngx_http_ai_gateway_log_redis_got(
    ngx_http_ai_gateway_log_redis_op_t *g, ngx_str_t *s);
static ngx_int_t ngx_http_ai_gateway_log_redis_field(ngx_pool_t *pool,
    u_char **pp, u_char *last, ngx_str_t *out);
static ngx_int_t ngx_http_ai_gateway_log_redis_number(u_char **pp,
    u_char *last, ngx_uint_t *n);


/* KEYS: index, record; ARGV: max, strategy, member, r, q, a, prefix */

static ngx_str_t  ngx_http_ai_gateway_log_redis_put_script = ngx_string(
    "local n = redis.call('ZCARD', KEYS[1]) "
    "local max = tonumber(ARGV[1]) "
    "if n >= max then "
    "  if ARGV[2] == '0' then return 0 end "
    "  local old = redis.call('ZPOPMIN', KEYS[1], n - max + 1) "
    "  for i = 1, #old, 2 do "
    "    redis.call('DEL', ARGV[7] .. string.sub(old[i], 18)) "
    "  end "
    "end "
    "redis.call('DEL', KEYS[2]) "
    "redis.call('HSET', KEYS[2], 'r', ARGV[4]) "
    "if #ARGV[5] > 0 then redis.call('HSET', KEYS[2], 'q', ARGV[5]) end "
    "if #ARGV[6] > 0 then redis.call('HSET', KEYS[2], 'a', ARGV[6]) end "
    "redis.call('ZADD', KEYS[1], 0, ARGV[3]) "
    "return 1");


/* KEYS: index; ARGV: direction, cursor member or "", n, skip, prefix */

static ngx_str_t  ngx_http_ai_gateway_log_redis_scan_script = ngx_string(
    "local total = redis.call('ZCARD', KEYS[1]) "
    "local n = tonumber(ARGV[3]) "
    "local skip = tonumber(ARGV[4]) "
    "local ids "
    "if ARGV[2] == '' then "
    "  if ARGV[1] == 'd' then "
    "    ids = redis.call('ZREVRANGE', KEYS[1], skip, skip + n - 1) "
    "  else "
    "    ids = redis.call('ZRANGE', KEYS[1], skip, skip + n - 1) "
    "  end "
    "elseif ARGV[1] == 'd' then "
    "  ids = redis.call('ZREVRANGEBYLEX', KEYS[1], '(' .. ARGV[2], '-', "
    "                   'LIMIT', skip, n) "
    "else "
    "  ids = redis.call('ZRANGEBYLEX', KEYS[1], '(' .. ARGV[2], '+', "
    "                   'LIMIT', skip, n) "
    "end "
    "local out = { total .. ':' .. #ids .. ':' } "
    "local function put(s) "
    "  if s then out[#out + 1] = #s .. ':' .. s "
    "  else out[#out + 1] = '-' end "
    "end "
    "for _, m in ipairs(ids) do "
    "  put(m) "
    "  local h = redis.call('HMGET', ARGV[5] .. string.sub(m, 18), "
    "                       'r', 'f', 'c', 'm') "
    "  put(h[1]) put(h[2]) put(h[3]) put(h[4]) "
    "end "
    "return table.concat(out)");


/* KEYS: record; ARGV: the payload's field, or "r" */

static ngx_str_t  ngx_http_ai_gateway_log_redis_get_script = ngx_string(
    "local h = redis.call('HMGET', KEYS[1], 'r', 'f', 'c', 'm', ARGV[1]) "
    "if not h[1] then return '' end "
    "local out = {} "
    "for i = 1, 5 do "
    "  if h[i] then out[#out + 1] = #h[i] .. ':' .. h[i] "
    "  else out[#out + 1] = '-' end "
    "end "
    "return table.concat(out)");


/* KEYS: record; ARGV: set?, feedback, set?, score, set?, metadata */

static ngx_str_t  ngx_http_ai_gateway_log_redis_patch_script = ngx_string(
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end "
    "if ARGV[1] == '1' then redis.call('HSET', KEYS[1], 'f', ARGV[2]) end "
    "if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'c', ARGV[4]) end "
    "if ARGV[5] == '1' then redis.call('HSET', KEYS[1], 'm', ARGV[6]) end "
    "return 1");


/* KEYS: index; ARGV: prefix, members (43 bytes each) */

static ngx_str_t  ngx_http_ai_gateway_log_redis_remove_script = ngx_string(
    "local n = 0 "
    "local s = ARGV[2] "
    "for i = 1, #s, 43 do "
    "  local m = string.sub(s, i, i + 42) "
    "  n = n + redis.call('ZREM', KEYS[1], m) "
    "  redis.call('DEL', ARGV[1] .. string.sub(m, 18)) "
    "end "
    "return n");


/* what = "i": the index; "r:": the prefix of records; "r:" with an id */

static ngx_int_t
ngx_http_ai_gateway_log_redis_key(ngx_pool_t *pool,
    ngx_http_ai_gateway_log_target_t *t, const char *what, u_char *id,
    ngx_str_t *key)
{
    u_char  *p;
    size_t   len;

    len = t->prefix.len + t->gateway.len + 3 + ngx_strlen(what)
          + (id ? NGX_HTTP_AI_GATEWAY_LOG_ID_LEN : 0);

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    key->data = p;

    p = ngx_sprintf(p, "%V{%V}:%s", &t->prefix, &t->gateway, what);

    if (id) {
        p = ngx_cpymem(p, id, NGX_HTTP_AI_GATEWAY_LOG_ID_LEN);
    }

    key->len = p - key->data;

    return NGX_OK;
}


static u_char *
ngx_http_ai_gateway_log_redis_member(u_char *p,
    ngx_http_ai_gateway_log_pos_t *pos)
{
    p = ngx_sprintf(p, "%016uL:", pos->created_at);

    return ngx_cpymem(p, pos->id, NGX_HTTP_AI_GATEWAY_LOG_ID_LEN);
}


static void
ngx_http_ai_gateway_log_redis_put(ngx_http_ai_gateway_log_target_t *t,
    ngx_http_ai_gateway_log_pos_t *pos, ngx_str_t *rec, ngx_str_t *req,
    ngx_str_t *resp, ngx_pool_t *pool, ngx_log_t *log)
{
    u_char     *member, max[NGX_INT_T_LEN];
    ngx_str_t   argv[12];

    if (t->inflight >= NGX_HTTP_AI_GATEWAY_LOG_REDIS_INFLIGHT) {
        ngx_http_ai_gateway_log_lost(t, 1, "too many writes waiting for "
                                     "Redis", log);
        return;
    }

    member = ngx_pnalloc(pool, NGX_HTTP_AI_GATEWAY_LOG_MEMBER_LEN);
    if (member == NULL) {
        return;
    }

    ngx_str_set(&argv[0], "EVAL");
    argv[1] = ngx_http_ai_gateway_log_redis_put_script;
    ngx_str_set(&argv[2], "2");

    if (ngx_http_ai_gateway_log_redis_key(pool, t, "i", NULL, &argv[3])
        != NGX_OK
        || ngx_http_ai_gateway_log_redis_key(pool, t, "r:", pos->id,
                                             &argv[4])
           != NGX_OK
        || ngx_http_ai_gateway_log_redis_key(pool, t, "r:", NULL, &argv[11])
           != NGX_OK)
    {
        return;
    }

    argv[5].data = max;
    argv[5].len = ngx_sprintf(max, "%ui", t->max) - max;
    argv[6].data = (u_char *)
                   ((t->strategy == NGX_HTTP_AI_GATEWAY_LOG_DELETE_OLDEST)
                    ? "1" : "0");
    argv[6].len = 1;
    argv[7].data = member;
    argv[7].len = ngx_http_ai_gateway_log_redis_member(member, pos) - member;
    argv[8] = *rec;
    argv[9] = *req;
    argv[10] = *resp;

    if (ngx_http_ai_gateway_redis_command(t->redis, 12, argv,
                                          NGX_HTTP_AI_GATEWAY_REDIS_INTEGER,
                                          ngx_http_ai_gateway_log_redis_written,
                                          t, log)
        == NULL)
    {
        ngx_http_ai_gateway_log_lost(t, 1, "Redis cannot be reached", log);
        return;
    }

    t->inflight++;
}


/* a write's reply: only its failure matters */

static void
ngx_http_ai_gateway_log_redis_written(void *data,
    ngx_http_ai_gateway_redis_reply_t *reply)
{
    ngx_http_ai_gateway_log_target_t *t = data;

    if (t->inflight) {
        t->inflight--;
    }

    if (reply == NULL) {
        ngx_http_ai_gateway_log_lost(t, 1, "Redis failed", NULL);
        return;
    }

    if (reply->integer == 0) {
        ngx_http_ai_gateway_log_lost(t, 1, "the gateway has its "
                                     "ai_gateway_logs_max records, "
                                     "stop_inserting", NULL);
    }
}


static ngx_int_t
ngx_http_ai_gateway_log_redis_scan(ngx_http_ai_gateway_log_target_t *t,
    ngx_http_ai_gateway_log_scan_t *scan, ngx_pool_t *pool,
    ngx_http_ai_gateway_log_done_pt done, void *data, void **op,
    ngx_log_t *log)
{
    u_char     *p;
    ngx_str_t   argv[9];

    p = ngx_pnalloc(pool, sizeof(scan->mark)
                          + NGX_HTTP_AI_GATEWAY_LOG_MEMBER_LEN
                          + 2 * NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_str_set(&argv[0], "EVAL");
    argv[1] = ngx_http_ai_gateway_log_redis_scan_script;
    ngx_str_set(&argv[2], "1");

    if (ngx_http_ai_gateway_log_redis_key(pool, t, "i", NULL, &argv[3])
        != NGX_OK
        || ngx_http_ai_gateway_log_redis_key(pool, t, "r:", NULL, &argv[8])
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    argv[4].data = (u_char *) (scan->desc ? "d" : "a");
    argv[4].len = 1;

    argv[5].data = p;
    argv[5].len = 0;

    if (scan->set && scan->mark_len) {
        p = ngx_cpymem(p, scan->mark, scan->mark_len);
        argv[5].len = p - argv[5].data;

    } else if (scan->set) {
        p = ngx_http_ai_gateway_log_redis_member(p, &scan->cursor);
        argv[5].len = p - argv[5].data;
    }

    argv[6].data = p;
    p = ngx_sprintf(p, "%ui", scan->n);
    argv[6].len = p - argv[6].data;

    argv[7].data = p;
    p = ngx_sprintf(p, "%ui", scan->skip);
    argv[7].len = p - argv[7].data;

    return ngx_http_ai_gateway_log_redis_run(t,
                                          NGX_HTTP_AI_GATEWAY_LOG_REDIS_SCAN,
                                          9, argv,
                                          NGX_HTTP_AI_GATEWAY_REDIS_STRING,
                                          scan, pool, done, data, op, log);
}


static ngx_int_t
ngx_http_ai_gateway_log_redis_get(ngx_http_ai_gateway_log_target_t *t,
    u_char *id, ngx_uint_t body, ngx_http_ai_gateway_log_item_t *item,
    ngx_pool_t *pool, ngx_http_ai_gateway_log_done_pt done, void *data,
    void **op, ngx_log_t *log)
{
    ngx_str_t  argv[5];

    ngx_memzero(item, sizeof(ngx_http_ai_gateway_log_item_t));

    ngx_str_set(&argv[0], "EVAL");
    argv[1] = ngx_http_ai_gateway_log_redis_get_script;
    ngx_str_set(&argv[2], "1");

    if (ngx_http_ai_gateway_log_redis_key(pool, t, "r:", id, &argv[3])
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    switch (body) {

    case NGX_HTTP_AI_GATEWAY_LOG_REQUEST:
        ngx_str_set(&argv[4], "q");
        break;

    case NGX_HTTP_AI_GATEWAY_LOG_RESPONSE:
        ngx_str_set(&argv[4], "a");
        break;

    default:
        ngx_str_set(&argv[4], "r");
    }

    return ngx_http_ai_gateway_log_redis_run(t,
                                          NGX_HTTP_AI_GATEWAY_LOG_REDIS_GET,
                                          5, argv,
                                          NGX_HTTP_AI_GATEWAY_REDIS_STRING,
                                          item, pool, done, data, op, log);
}


static ngx_int_t
ngx_http_ai_gateway_log_redis_patch(ngx_http_ai_gateway_log_target_t *t,
    u_char *id, ngx_http_ai_gateway_log_item_t *change, ngx_pool_t *pool,
    ngx_http_ai_gateway_log_done_pt done, void *data, void **op,
    ngx_log_t *log)
{
    ngx_str_t   argv[10], *v[3];
    ngx_uint_t  i;

    ngx_str_set(&argv[0], "EVAL");
    argv[1] = ngx_http_ai_gateway_log_redis_patch_script;
    ngx_str_set(&argv[2], "1");

    if (ngx_http_ai_gateway_log_redis_key(pool, t, "r:", id, &argv[3])
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    v[0] = &change->feedback;
    v[1] = &change->score;
    v[2] = &change->metadata;

    for (i = 0; i < 3; i++) {
        if (v[i]->data) {
            ngx_str_set(&argv[4 + 2 * i], "1");
            argv[5 + 2 * i] = *v[i];

        } else {
            ngx_str_set(&argv[4 + 2 * i], "0");
            ngx_str_null(&argv[5 + 2 * i]);
        }
    }

    return ngx_http_ai_gateway_log_redis_run(t,
                                          NGX_HTTP_AI_GATEWAY_LOG_REDIS_PATCH,
                                          10, argv,
                                          NGX_HTTP_AI_GATEWAY_REDIS_INTEGER,
                                          NULL, pool, done, data, op, log);
}


static ngx_int_t
ngx_http_ai_gateway_log_redis_remove(ngx_http_ai_gateway_log_target_t *t,
    ngx_http_ai_gateway_log_pos_t *pos, ngx_uint_t n, ngx_uint_t *removed,
    ngx_pool_t *pool, ngx_http_ai_gateway_log_done_pt done, void *data,
    void **op, ngx_log_t *log)
{
    u_char      *p;
    ngx_str_t    argv[6];
    ngx_uint_t   i;

    *removed = 0;

    if (n == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(pool, n * NGX_HTTP_AI_GATEWAY_LOG_MEMBER_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_str_set(&argv[0], "EVAL");
    argv[1] = ngx_http_ai_gateway_log_redis_remove_script;
    ngx_str_set(&argv[2], "1");

    if (ngx_http_ai_gateway_log_redis_key(pool, t, "i", NULL, &argv[3])
        != NGX_OK
        || ngx_http_ai_gateway_log_redis_key(pool, t, "r:", NULL, &argv[4])
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    argv[5].data = p;

    for (i = 0; i < n; i++) {
        p = ngx_http_ai_gateway_log_redis_member(p, &pos[i]);
    }

    argv[5].len = p - argv[5].data;

    return ngx_http_ai_gateway_log_redis_run(t,
                                          NGX_HTTP_AI_GATEWAY_LOG_REDIS_REMOVE,
                                          6, argv,
                                          NGX_HTTP_AI_GATEWAY_REDIS_INTEGER,
                                          removed, pool, done, data, op, log);
}


static ngx_int_t
ngx_http_ai_gateway_log_redis_run(ngx_http_ai_gateway_log_target_t *t,
    ngx_http_ai_gateway_log_redis_e kind, ngx_uint_t argc, ngx_str_t *argv,
    ngx_uint_t expect, void *out, ngx_pool_t *pool,
    ngx_http_ai_gateway_log_done_pt done, void *data, void **op,
    ngx_log_t *log)
{
    ngx_http_ai_gateway_log_redis_op_t  *g;

    g = ngx_pcalloc(pool, sizeof(ngx_http_ai_gateway_log_redis_op_t));
    if (g == NULL) {
        return NGX_ERROR;
    }

    g->kind = kind;
    g->done = done;
    g->data = data;
    g->pool = pool;
    g->target = t;
    g->out = out;

    g->op = ngx_http_ai_gateway_redis_command(t->redis, argc, argv, expect,
                                          ngx_http_ai_gateway_log_redis_reply,
                                          g, log);
    if (g->op == NULL) {
        return NGX_ERROR;
    }

    *op = g;

    return NGX_AGAIN;
}


static void
ngx_http_ai_gateway_log_redis_reply(void *data,
    ngx_http_ai_gateway_redis_reply_t *reply)
{
    ngx_http_ai_gateway_log_redis_op_t *g = data;

    ngx_int_t  rc;

    g->op = NULL;

    if (reply == NULL) {
        g->done(g->data, NGX_ERROR);
        return;
    }

    switch (g->kind) {

    case NGX_HTTP_AI_GATEWAY_LOG_REDIS_SCAN:
        rc = ngx_http_ai_gateway_log_redis_scanned(g, &reply->str);
        break;

    case NGX_HTTP_AI_GATEWAY_LOG_REDIS_GET:
        rc = ngx_http_ai_gateway_log_redis_got(g, &reply->str);
        break;

    case NGX_HTTP_AI_GATEWAY_LOG_REDIS_PATCH:
        rc = (reply->integer == 1) ? NGX_OK : NGX_DECLINED;
        break;

    default: /* NGX_HTTP_AI_GATEWAY_LOG_REDIS_REMOVE */
        *(ngx_uint_t *) g->out = (reply->integer > 0)
                                 ? (ngx_uint_t) reply->integer : 0;
        rc = NGX_OK;
    }

    if (rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "ai_gateway: an invalid reply of Redis %V for the "
                      "log store of gateway \"%V\"",
                      ngx_http_ai_gateway_redis_name(g->target->redis),
                      &g->target->gateway);
    }

    g->done(g->data, rc);
}


/* "{total}:{count}:" then count times member, r, f, c, m */

static ngx_int_t
ngx_http_ai_gateway_log_redis_scanned(ngx_http_ai_gateway_log_redis_op_t *g,
    ngx_str_t *s)
{
    off_t                            created_at;
    u_char                          *p, *last;
    ngx_str_t                        member;
    ngx_uint_t                       i, n, total;
    ngx_http_ai_gateway_log_scan_t  *scan;
    ngx_http_ai_gateway_log_item_t  *item;

    scan = g->out;

    p = s->data;
    last = p + s->len;

    if (ngx_http_ai_gateway_log_redis_number(&p, last, &total) != NGX_OK
        || ngx_http_ai_gateway_log_redis_number(&p, last, &n) != NGX_OK
        || n > scan->n)
    {
        return NGX_ERROR;
    }

    if (ngx_array_init(&scan->items, g->pool, n ? n : 1,
                       sizeof(ngx_http_ai_gateway_log_item_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    scan->total = total;
    scan->skipped = scan->skip;
    scan->end = (n < scan->n);

    for (i = 0; i < n; i++) {

        item = ngx_array_push(&scan->items);
        if (item == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(item, sizeof(ngx_http_ai_gateway_log_item_t));

        if (ngx_http_ai_gateway_log_redis_field(g->pool, &p, last, &member)
            != NGX_OK
            || member.data == NULL
            || member.len > sizeof(scan->mark)
            || ngx_http_ai_gateway_log_redis_field(g->pool, &p, last,
                                                   &item->rec)
               != NGX_OK
            || ngx_http_ai_gateway_log_redis_field(g->pool, &p, last,
                                                   &item->feedback)
               != NGX_OK
            || ngx_http_ai_gateway_log_redis_field(g->pool, &p, last,
                                                   &item->score)
               != NGX_OK
            || ngx_http_ai_gateway_log_redis_field(g->pool, &p, last,
                                                   &item->metadata)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        /*
         * the cursor moves past it, even if its hash went meanwhile or it
         * is not one of ours (then it is no record)
         */

        ngx_memcpy(scan->mark, member.data, member.len);
        scan->mark_len = member.len;

        created_at = (member.len == NGX_HTTP_AI_GATEWAY_LOG_MEMBER_LEN
                      && member.data[16] == ':')
                     ? ngx_atoof(member.data, 16) : NGX_ERROR;

        if (created_at < 0) {
            continue;
        }

        scan->last.created_at = created_at;
        ngx_memcpy(scan->last.id, member.data + 17,
                   NGX_HTTP_AI_GATEWAY_LOG_ID_LEN);

        item->found = (item->rec.data != NULL);
    }

    return (p == last) ? NGX_OK : NGX_ERROR;
}


/* "" (no such record), or r, f, c, m and the payload asked for */

static ngx_int_t
ngx_http_ai_gateway_log_redis_got(ngx_http_ai_gateway_log_redis_op_t *g,
    ngx_str_t *s)
{
    u_char                          *p, *last;
    ngx_http_ai_gateway_log_item_t  *item;

    item = g->out;

    if (s->len == 0) {
        return NGX_DECLINED;
    }

    p = s->data;
    last = p + s->len;

    if (ngx_http_ai_gateway_log_redis_field(g->pool, &p, last, &item->rec)
        != NGX_OK
        || item->rec.data == NULL
        || ngx_http_ai_gateway_log_redis_field(g->pool, &p, last,
                                               &item->feedback)
           != NGX_OK
        || ngx_http_ai_gateway_log_redis_field(g->pool, &p, last,
                                               &item->score)
           != NGX_OK
        || ngx_http_ai_gateway_log_redis_field(g->pool, &p, last,
                                               &item->metadata)
           != NGX_OK
        || ngx_http_ai_gateway_log_redis_field(g->pool, &p, last,
                                               &item->body)
           != NGX_OK
        || p != last)
    {
        return NGX_ERROR;
    }

    item->found = 1;

    return NGX_OK;
}


/*
 * One framed value, copied (the reply is hiredis's until the handler
 * returns): data NULL when absent.
 */

static ngx_int_t
ngx_http_ai_gateway_log_redis_field(ngx_pool_t *pool, u_char **pp,
    u_char *last, ngx_str_t *out)
{
    u_char      *p;
    ngx_uint_t   len;

    p = *pp;

    ngx_str_null(out);

    if (p < last && *p == '-') {
        *pp = p + 1;
        return NGX_OK;
    }

    if (ngx_http_ai_gateway_log_redis_number(&p, last, &len) != NGX_OK
        || len > (ngx_uint_t) (last - p))
    {
        return NGX_ERROR;
    }

    out->data = ngx_pnalloc(pool, len ? len : 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, p, len);
    out->len = len;

    *pp = p + len;

    return NGX_OK;
}


/* digits and a ':' */

static ngx_int_t
ngx_http_ai_gateway_log_redis_number(u_char **pp, u_char *last,
    ngx_uint_t *n)
{
    u_char      *p;
    ngx_uint_t   v, digits;

    v = 0;
    digits = 0;

    for (p = *pp; p < last && *p >= '0' && *p <= '9'; p++) {
        if (++digits > 12) {
            return NGX_ERROR;
        }

        v = v * 10 + (*p - '0');
    }

    if (digits == 0 || p == last || *p != ':') {
        return NGX_ERROR;
    }

    *n = v;
    *pp = p + 1;

    return NGX_OK;
}


static void
ngx_http_ai_gateway_log_redis_cancel(void *op)
{
    ngx_http_ai_gateway_log_redis_op_t *g = op;

    if (g->op) {
        ngx_http_ai_gateway_redis_cancel(g->op);
        g->op = NULL;
    }
}


ngx_http_ai_gateway_log_store_t  ngx_http_ai_gateway_log_redis_store = {
    ngx_http_ai_gateway_log_redis_put,
    ngx_http_ai_gateway_log_redis_scan,
    ngx_http_ai_gateway_log_redis_get,
    ngx_http_ai_gateway_log_redis_patch,
    ngx_http_ai_gateway_log_redis_remove,
    ngx_http_ai_gateway_log_redis_cancel
};
