
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_module.h"
#include "ngx_http_ai_gateway_redis.h"
#include "ngx_http_ai_gateway_limit.h"


/*
 * The limits' store across nodes: Redis (a limit's "redis=" names an
 * "ai_gateway_redis"), over the module's connection (redis.c: hiredis on
 * nginx's event loop, command timeouts on nginx timers, failures logged
 * at a bounded rate).  Each check or update is one EVAL of the script
 * below, which Redis runs atomically: the check and the count it makes
 * are one step for all the nodes, with no read-then-write race.  The
 * states are the same as in shared memory (limit_shm.c): a window's count
 * in a key of its own ("<key>:<window>", expiring two intervals after its
 * last update), or the exact sliding window as a sorted set of the times
 * of the accepted requests ("<key>", expiring one interval after the last
 * one; members made unique by a counter "<key>:seq").  Keys are
 * "aigw:limit:{<limit key>}...", the braces keeping one limit key's
 * states in one Redis Cluster slot.  The times are the nodes' clocks.
 *
 * The script answers "refused used remaining reset", four integers, which
 * are checked as any untrusted input.
 */


typedef struct {
    ngx_http_ai_gateway_limit_done_pt    done;
    void                                *data;
    ngx_http_ai_gateway_redis_op_t      *op;
} ngx_http_ai_gateway_limit_redis_op_t;


static void ngx_http_ai_gateway_limit_redis_reply(void *data,
    ngx_http_ai_gateway_redis_reply_t *reply);
static ngx_int_t ngx_http_ai_gateway_limit_redis_args(
    ngx_http_ai_gateway_limit_t *lim, ngx_str_t *key, ngx_uint_t op,
    uint64_t n, uint64_t now, ngx_pool_t *pool, ngx_str_t *argv);
static ngx_int_t ngx_http_ai_gateway_limit_redis_parse(ngx_str_t *s,
    ngx_http_ai_gateway_limit_res_t *res);


static ngx_str_t  ngx_http_ai_gateway_limit_script = ngx_string(
    "local k, op, lim, iv, now, how, n = KEYS[1], ARGV[1],"
    " tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5],"
    " tonumber(ARGV[6])\n"
    "if how == 'ring' then\n"
    "  redis.call('ZREMRANGEBYSCORE', k, '-inf', now - iv)\n"
    "  local c = redis.call('ZCARD', k)\n"
    "  local o = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')\n"
    "  local reset = iv\n"
    "  if o[2] then reset = tonumber(o[2]) + iv - now end\n"
    "  if c >= lim then\n"
    "    return string.format('1 %d 0 %d', c, reset)\n"
    "  end\n"
    "  if op == 'take' then\n"
    "    local s = redis.call('INCR', k .. ':seq')\n"
    "    redis.call('ZADD', k, now, string.format('%d:%d', now, s))\n"
    "    redis.call('PEXPIRE', k, iv)\n"
    "    redis.call('PEXPIRE', k .. ':seq', iv)\n"
    "    c = c + 1\n"
    "  end\n"
    "  return string.format('0 %d %d %d', c, lim - c, reset)\n"
    "end\n"
    "local w = math.floor(now / iv)\n"
    "local e = now - w * iv\n"
    "local ck = k .. ':' .. string.format('%d', w)\n"
    "local used = tonumber(redis.call('GET', ck) or '0') or 0\n"
    "if how == 'sliding' then\n"
    "  local p = redis.call('GET', k .. ':' .. string.format('%d', w - 1))\n"
    "  p = tonumber(p or '0') or 0\n"
    "  used = used + math.floor(p * (iv - e) / iv)\n"
    "end\n"
    "local reset = iv - e\n"
    "if op == 'charge' then\n"
    "  redis.call('INCRBY', ck, n)\n"
    "  redis.call('PEXPIRE', ck, 2 * iv)\n"
    "  used = used + n\n"
    "  local r = lim - used\n"
    "  if r < 0 then r = 0 end\n"
    "  return string.format('0 %d %d %d', used, r, reset)\n"
    "end\n"
    "local need = 0\n"
    "if n > 0 then need = 1 end\n"
    "if used + need > lim or used >= lim then\n"
    "  return string.format('1 %d 0 %d', used, reset)\n"
    "end\n"
    "if op == 'take' then\n"
    "  redis.call('INCR', ck)\n"
    "  redis.call('PEXPIRE', ck, 2 * iv)\n"
    "  used = used + 1\n"
    "end\n"
    "return string.format('0 %d %d %d', used, lim - used, reset)\n");


/*
 * A check (PEEK or TAKE): NGX_AGAIN when asked, done(data, res) follows
 * (res NULL: Redis failed) unless ngx_http_ai_gateway_limit_redis_cancel()
 * is called first; NGX_ERROR when it cannot be asked (not connected).
 */

ngx_int_t
ngx_http_ai_gateway_limit_redis(ngx_http_ai_gateway_limit_t *lim,
    ngx_str_t *key, ngx_uint_t op, uint64_t now, ngx_pool_t *pool,
    ngx_log_t *log, ngx_http_ai_gateway_limit_done_pt done, void *data,
    void **opp)
{
    ngx_str_t                              argv[10];
    ngx_http_ai_gateway_limit_redis_op_t  *o;

    o = ngx_palloc(pool, sizeof(ngx_http_ai_gateway_limit_redis_op_t));
    if (o == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_ai_gateway_limit_redis_args(lim, key, op, 0, now, pool,
                                             argv)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    o->done = done;
    o->data = data;

    o->op = ngx_http_ai_gateway_redis_command(lim->redis, 10, argv,
                                          NGX_HTTP_AI_GATEWAY_REDIS_STRING,
                                          ngx_http_ai_gateway_limit_redis_reply,
                                          o, log);
    if (o->op == NULL) {
        return NGX_ERROR;
    }

    *opp = o;

    return NGX_AGAIN;
}


/* tokens charged: sent, the reply not waited for */

void
ngx_http_ai_gateway_limit_redis_charge(ngx_http_ai_gateway_limit_t *lim,
    ngx_str_t *key, uint64_t n, uint64_t now, ngx_pool_t *pool,
    ngx_log_t *log)
{
    ngx_str_t  argv[10];

    if (ngx_http_ai_gateway_limit_redis_args(lim, key,
                                             NGX_HTTP_AI_GATEWAY_LIMIT_CHARGE,
                                             n, now, pool, argv)
        != NGX_OK)
    {
        return;
    }

    ngx_http_ai_gateway_redis_send(lim->redis, 10, argv, log);
}


void
ngx_http_ai_gateway_limit_redis_cancel(void *op)
{
    ngx_http_ai_gateway_limit_redis_op_t *o = op;

    if (o->op) {
        ngx_http_ai_gateway_redis_cancel(o->op);
        o->op = NULL;
    }
}


static void
ngx_http_ai_gateway_limit_redis_reply(void *data,
    ngx_http_ai_gateway_redis_reply_t *reply)
{
    ngx_http_ai_gateway_limit_redis_op_t *o = data;

    ngx_http_ai_gateway_limit_res_t   res, *rp;

    o->op = NULL;
    rp = NULL;

    if (reply && reply->type == NGX_HTTP_AI_GATEWAY_REDIS_STRING
        && ngx_http_ai_gateway_limit_redis_parse(&reply->str, &res) == NGX_OK)
    {
        rp = &res;
    }

    o->done(o->data, rp);
}


/* EVAL script 1 key op limit interval now how n */

static ngx_int_t
ngx_http_ai_gateway_limit_redis_args(ngx_http_ai_gateway_limit_t *lim,
    ngx_str_t *key, ngx_uint_t op, uint64_t n, uint64_t now, ngx_pool_t *pool,
    ngx_str_t *argv)
{
    u_char  *p;

    ngx_str_set(&argv[0], "EVAL");
    argv[1] = ngx_http_ai_gateway_limit_script;
    ngx_str_set(&argv[2], "1");

    p = ngx_pnalloc(pool, sizeof("aigw:limit:{}") + key->len
                          + 4 * NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    argv[3].data = p;
    p = ngx_sprintf(p, "aigw:limit:{%V}", key);
    argv[3].len = p - argv[3].data;

    switch (op) {

    case NGX_HTTP_AI_GATEWAY_LIMIT_PEEK:
        ngx_str_set(&argv[4], "peek");
        break;

    case NGX_HTTP_AI_GATEWAY_LIMIT_TAKE:
        ngx_str_set(&argv[4], "take");
        break;

    default: /* NGX_HTTP_AI_GATEWAY_LIMIT_CHARGE */
        ngx_str_set(&argv[4], "charge");
    }

    argv[5].data = p;
    p = ngx_sprintf(p, "%uL", lim->limit);
    argv[5].len = p - argv[5].data;

    argv[6].data = p;
    p = ngx_sprintf(p, "%M", lim->interval);
    argv[6].len = p - argv[6].data;

    argv[7].data = p;
    p = ngx_sprintf(p, "%uL", now);
    argv[7].len = p - argv[7].data;

    if (lim->ring) {
        ngx_str_set(&argv[8], "ring");

    } else if (lim->technique == NGX_HTTP_AI_GATEWAY_LIMIT_SLIDING) {
        ngx_str_set(&argv[8], "sliding");

    } else {
        ngx_str_set(&argv[8], "fixed");
    }

    /* a check: 1 for a request (it needs a place), 0 for tokens */

    if (op != NGX_HTTP_AI_GATEWAY_LIMIT_CHARGE) {
        n = (lim->kind == NGX_HTTP_AI_GATEWAY_LIMIT_REQUESTS) ? 1 : 0;
    }

    argv[9].data = p;
    p = ngx_sprintf(p, "%uL", n);
    argv[9].len = p - argv[9].data;

    return NGX_OK;
}


/* "refused used remaining reset": four decimal integers, nothing else */

static ngx_int_t
ngx_http_ai_gateway_limit_redis_parse(ngx_str_t *s,
    ngx_http_ai_gateway_limit_res_t *res)
{
    off_t       v[4];
    u_char     *p, *last, *start;
    ngx_uint_t  i;

    p = s->data;
    last = s->data + s->len;

    for (i = 0; i < 4; i++) {
        start = p;

        while (p < last && *p >= '0' && *p <= '9') {
            p++;
        }

        if (p == start || p - start > 19) {
            return NGX_ERROR;
        }

        v[i] = ngx_atoof(start, p - start);

        if (v[i] == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (i < 3) {
            if (p == last || *p != ' ') {
                return NGX_ERROR;
            }

            p++;
        }
    }

    if (p != last || v[0] > 1) {
        return NGX_ERROR;
    }

    res->refused = (v[0] == 1);
    res->used = (uint64_t) v[1];
    res->remaining = (uint64_t) v[2];
    res->reset = (ngx_msec_t) ngx_min(v[3], (off_t) NGX_MAX_INT32_VALUE);

    return NGX_OK;
}
