
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "ngx_http_ai_gateway_module.h"


/*
 * The Redis cache store: hiredis's asynchronous API on nginx's event loop.
 * Each worker keeps one connection per ai_gateway_cache_redis, opened when
 * first needed and again after a failure.  hiredis reads and writes the
 * socket when nginx says it is ready (the adapter below); command timeouts
 * are nginx timers, since hiredis 0.14 has none for async commands.  Every
 * failure is a miss: the request goes to the provider, the error is logged
 * at most once per interval, the connection is dropped and, for a second,
 * not tried again.
 */


#define NGX_HTTP_AI_GATEWAY_REDIS_LOG_INTERVAL  10
#define NGX_HTTP_AI_GATEWAY_REDIS_BACKOFF       1000


struct ngx_http_ai_gateway_redis_s {
    ngx_str_t                      name;       /* "ip:port", for logs */
    u_char                        *host;       /* an IP address, '\0' */
    in_port_t                      port;
    ngx_str_t                      prefix;
    ngx_msec_t                     timeout;

    /* the worker's connection */

    redisAsyncContext             *ac;
    ngx_msec_t                     retry;      /* not before */
    time_t                         logged;
    ngx_uint_t                     quiet;      /* errors not logged */
};


struct ngx_http_ai_gateway_redis_op_s {
    ngx_http_ai_gateway_redis_t           *rd;
    ngx_http_ai_gateway_redis_handler_pt   handler;
    void                                  *data;  /* NULL: cancelled */
    ngx_event_t                            timer;
};


static redisAsyncContext *ngx_http_ai_gateway_redis_connect(
    ngx_http_ai_gateway_redis_t *rd, ngx_log_t *log);
static void ngx_http_ai_gateway_redis_failed(ngx_http_ai_gateway_redis_t *rd,
    ngx_log_t *log, const char *what, const char *err);
static void ngx_http_ai_gateway_redis_connected(const redisAsyncContext *ac,
    int status);
static void ngx_http_ai_gateway_redis_disconnected(
    const redisAsyncContext *ac, int status);
static void ngx_http_ai_gateway_redis_got(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_ai_gateway_redis_set_done(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_ai_gateway_redis_timeout(ngx_event_t *ev);
static void ngx_http_ai_gateway_redis_read(ngx_event_t *ev);
static void ngx_http_ai_gateway_redis_write(ngx_event_t *ev);
static void ngx_http_ai_gateway_redis_add_read(void *data);
static void ngx_http_ai_gateway_redis_del_read(void *data);
static void ngx_http_ai_gateway_redis_add_write(void *data);
static void ngx_http_ai_gateway_redis_del_write(void *data);
static void ngx_http_ai_gateway_redis_cleanup(void *data);


/* ai_gateway_cache_redis ip:port [prefix=...] [timeout=...] | off; */

char *
ngx_http_ai_gateway_cache_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_gateway_loc_conf_t *alcf = conf;

    u_char                       *p;
    ngx_int_t                     port;
    ngx_str_t                    *value, host, s;
    ngx_uint_t                    i;
    ngx_http_ai_gateway_redis_t  *rd;

    if (alcf->cache.redis != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0
        && cf->args->nelts == 2)
    {
        alcf->cache.redis = NULL;
        return NGX_CONF_OK;
    }

    rd = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_gateway_redis_t));
    if (rd == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&rd->prefix, "aigw:cache:");
    rd->timeout = 200;

    /* an IP address: no name is resolved, at start or later */

    p = ngx_strlchr(value[1].data, value[1].data + value[1].len, ':');

    if (p == NULL) {
        goto invalid;
    }

    host.data = value[1].data;
    host.len = p - value[1].data;

    port = ngx_atoi(p + 1, value[1].data + value[1].len - p - 1);

    if (port < 1 || port > 65535
        || ngx_inet_addr(host.data, host.len) == INADDR_NONE)
    {
        goto invalid;
    }

    rd->host = ngx_pnalloc(cf->pool, host.len + 1);
    if (rd->host == NULL) {
        return NGX_CONF_ERROR;
    }

    (void) ngx_cpystrn(rd->host, host.data, host.len + 1);

    rd->port = (in_port_t) port;
    rd->name = value[1];

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "prefix=", 7) == 0) {
            rd->prefix.data = value[i].data + 7;
            rd->prefix.len = value[i].len - 7;
            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            rd->timeout = ngx_parse_time(&s, 0);

            if (rd->timeout == (ngx_msec_t) NGX_ERROR || rd->timeout == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid timeout \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    alcf->cache.redis = rd;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid Redis address \"%V\", use "
                       "\"IPv4-address:port\"", &value[1]);

    return NGX_CONF_ERROR;
}


/*
 * Starts a GET; handler(data, entry) is called once, from the event loop,
 * with the entry or NULL (none, an error, the timeout).  Returns NULL when
 * Redis cannot be asked now: a miss at once.
 */

ngx_http_ai_gateway_redis_op_t *
ngx_http_ai_gateway_redis_get(ngx_http_ai_gateway_redis_t *rd, u_char *key,
    size_t len, ngx_http_ai_gateway_redis_handler_pt handler, void *data,
    ngx_log_t *log)
{
    redisAsyncContext               *ac;
    ngx_http_ai_gateway_redis_op_t  *op;

    ac = ngx_http_ai_gateway_redis_connect(rd, log);
    if (ac == NULL) {
        return NULL;
    }

    op = ngx_calloc(sizeof(ngx_http_ai_gateway_redis_op_t), ngx_cycle->log);
    if (op == NULL) {
        return NULL;
    }

    op->rd = rd;
    op->handler = handler;
    op->data = data;

    if (redisAsyncCommand(ac, ngx_http_ai_gateway_redis_got, op, "GET %b%b",
                          rd->prefix.data, rd->prefix.len, key, len)
        != REDIS_OK)
    {
        ngx_free(op);
        ngx_http_ai_gateway_redis_failed(rd, log, "GET", ac->errstr);
        return NULL;
    }

    op->timer.handler = ngx_http_ai_gateway_redis_timeout;
    op->timer.data = op;
    op->timer.log = ngx_cycle->log;

    ngx_add_timer(&op->timer, rd->timeout);

    return op;
}


/* the request went away: hiredis still owns the op, until its reply */

void
ngx_http_ai_gateway_redis_cancel(ngx_http_ai_gateway_redis_op_t *op)
{
    op->data = NULL;

    if (op->timer.timer_set) {
        ngx_del_timer(&op->timer);
    }
}


/* SET key entry PX ttl, not waited for */

void
ngx_http_ai_gateway_redis_set(ngx_http_ai_gateway_redis_t *rd, u_char *key,
    size_t len, u_char *data, size_t size, time_t ttl, ngx_log_t *log)
{
    redisAsyncContext  *ac;

    ac = ngx_http_ai_gateway_redis_connect(rd, log);
    if (ac == NULL) {
        return;
    }

    if (redisAsyncCommand(ac, ngx_http_ai_gateway_redis_set_done, rd,
                          "SET %b%b %b PX %lld",
                          rd->prefix.data, rd->prefix.len, key, len,
                          data, size, (long long) ttl * 1000)
        != REDIS_OK)
    {
        ngx_http_ai_gateway_redis_failed(rd, log, "SET", ac->errstr);
    }
}


static redisAsyncContext *
ngx_http_ai_gateway_redis_connect(ngx_http_ai_gateway_redis_t *rd,
    ngx_log_t *log)
{
    redisAsyncContext  *ac;
    ngx_connection_t   *c;

    if (rd->ac) {
        return rd->ac;
    }

    if (rd->retry && (ngx_msec_int_t) (rd->retry - ngx_current_msec) > 0) {
        return NULL;
    }

    rd->retry = 0;

    /* a non-blocking connect to an address, no name resolution */

    ac = redisAsyncConnect((char *) rd->host, rd->port);

    if (ac == NULL) {
        ngx_http_ai_gateway_redis_failed(rd, log, "connect", "no memory");
        return NULL;
    }

    if (ac->err) {
        ngx_http_ai_gateway_redis_failed(rd, log, "connect", ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }

    c = ngx_get_connection(ac->c.fd, ngx_cycle->log);
    if (c == NULL) {
        redisAsyncFree(ac);
        return NULL;
    }

    c->data = ac;
    c->read->handler = ngx_http_ai_gateway_redis_read;
    c->write->handler = ngx_http_ai_gateway_redis_write;
    c->read->log = c->log;
    c->write->log = c->log;

    ac->data = rd;
    ac->ev.data = c;
    ac->ev.addRead = ngx_http_ai_gateway_redis_add_read;
    ac->ev.delRead = ngx_http_ai_gateway_redis_del_read;
    ac->ev.addWrite = ngx_http_ai_gateway_redis_add_write;
    ac->ev.delWrite = ngx_http_ai_gateway_redis_del_write;
    ac->ev.cleanup = ngx_http_ai_gateway_redis_cleanup;

    redisAsyncSetConnectCallback(ac, ngx_http_ai_gateway_redis_connected);
    redisAsyncSetDisconnectCallback(ac,
                                    ngx_http_ai_gateway_redis_disconnected);

    rd->ac = ac;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                   "ai gateway redis: connecting to %V", &rd->name);

    return ac;
}


/* logged once per interval; Redis is not tried again for a while */

static void
ngx_http_ai_gateway_redis_failed(ngx_http_ai_gateway_redis_t *rd,
    ngx_log_t *log, const char *what, const char *err)
{
    rd->retry = ngx_current_msec + NGX_HTTP_AI_GATEWAY_REDIS_BACKOFF;

    if (rd->retry == 0) {
        rd->retry = 1;
    }

    if (ngx_time() - rd->logged < NGX_HTTP_AI_GATEWAY_REDIS_LOG_INTERVAL) {
        rd->quiet++;
        return;
    }

    ngx_log_error(NGX_LOG_ERR, log ? log : ngx_cycle->log, 0,
                  "ai_gateway: Redis %V %s failed: %s, the cache is "
                  "bypassed (%ui more errors not logged)",
                  &rd->name, what, err ? err : "", rd->quiet);

    rd->logged = ngx_time();
    rd->quiet = 0;
}


static void
ngx_http_ai_gateway_redis_connected(const redisAsyncContext *ac, int status)
{
    ngx_http_ai_gateway_redis_t  *rd = ac->data;

    if (status != REDIS_OK) {
        /* hiredis frees the context after this */
        ngx_http_ai_gateway_redis_failed(rd, NULL, "connect", ac->errstr);

        if (rd->ac == ac) {
            rd->ac = NULL;
        }
    }
}


static void
ngx_http_ai_gateway_redis_disconnected(const redisAsyncContext *ac,
    int status)
{
    ngx_http_ai_gateway_redis_t  *rd = ac->data;

    if (status != REDIS_OK) {
        ngx_http_ai_gateway_redis_failed(rd, NULL, "connection",
                                         ac->errstr);
    }

    if (rd->ac == ac) {
        rd->ac = NULL;
    }
}


static void
ngx_http_ai_gateway_redis_got(redisAsyncContext *ac, void *r, void *privdata)
{
    ngx_http_ai_gateway_redis_op_t  *op = privdata;

    void                                  *data;
    ngx_str_t                              entry, *e;
    redisReply                            *reply = r;
    ngx_http_ai_gateway_redis_handler_pt   handler;

    if (op->timer.timer_set) {
        ngx_del_timer(&op->timer);
    }

    data = op->data;
    handler = op->handler;

    ngx_free(op);

    e = NULL;

    if (reply == NULL) {
        /* the connection failed or was closed: logged there */

    } else if (reply->type == REDIS_REPLY_STRING) {
        entry.data = (u_char *) reply->str;
        entry.len = reply->len;
        e = &entry;

    } else if (reply->type != REDIS_REPLY_NIL) {
        ngx_http_ai_gateway_redis_failed(ac->data, NULL, "GET",
                                         reply->type == REDIS_REPLY_ERROR
                                         ? reply->str : "unexpected reply");
    }

    if (data) {
        handler(data, e);
    }
}


static void
ngx_http_ai_gateway_redis_set_done(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply  *reply = r;

    if (reply && reply->type == REDIS_REPLY_ERROR) {
        ngx_http_ai_gateway_redis_failed(privdata, NULL, "SET", reply->str);
    }
}


/*
 * Redis did not answer in time: the request goes on as a miss, and the
 * connection is dropped (its pending replies would be late as well).
 */

static void
ngx_http_ai_gateway_redis_timeout(ngx_event_t *ev)
{
    ngx_http_ai_gateway_redis_op_t  *op = ev->data;

    void                                  *data;
    redisAsyncContext                     *ac;
    ngx_http_ai_gateway_redis_t           *rd;
    ngx_http_ai_gateway_redis_handler_pt   handler;

    rd = op->rd;
    data = op->data;
    handler = op->handler;

    /* hiredis still owns op and frees it in its callback */

    op->data = NULL;

    ngx_http_ai_gateway_redis_failed(rd, NULL, "GET", "timed out");

    if (data) {
        handler(data, NULL);
    }

    ac = rd->ac;

    if (ac) {
        rd->ac = NULL;
        redisAsyncFree(ac);
    }
}


static void
ngx_http_ai_gateway_redis_read(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    redisAsyncHandleRead(c->data);
}


static void
ngx_http_ai_gateway_redis_write(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    redisAsyncHandleWrite(c->data);
}


/*
 * Level-triggered events: hiredis reads at most 16K per call, an entry
 * larger than that needs the event again while bytes are waiting.
 */

static void
ngx_http_ai_gateway_redis_add_read(void *data)
{
    ngx_connection_t  *c = data;

    if (!c->read->active) {
        (void) ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_ai_gateway_redis_del_read(void *data)
{
    ngx_connection_t  *c = data;

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }
}


static void
ngx_http_ai_gateway_redis_add_write(void *data)
{
    ngx_connection_t  *c = data;

    if (!c->write->active) {
        (void) ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_ai_gateway_redis_del_write(void *data)
{
    ngx_connection_t  *c = data;

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }
}


/* hiredis frees the context and closes the socket: the connection goes */

static void
ngx_http_ai_gateway_redis_cleanup(void *data)
{
    ngx_connection_t  *c = data;

    redisAsyncContext            *ac;
    ngx_http_ai_gateway_redis_t  *rd;

    ac = c->data;
    rd = ac->data;

    if (rd && rd->ac == ac) {
        rd->ac = NULL;
    }

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    ngx_free_connection(c);

    c->fd = (ngx_socket_t) -1;
}
