
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "ngx_http_ai_gateway_redis.h"


/*
 * The module's Redis servers: hiredis's asynchronous API on nginx's event
 * loop, for every use of Redis (the cache store today).  A server is
 * written where it is used (ai_gateway_cache_redis address ...); each
 * worker keeps one connection to it, opened when first needed and again
 * after a failure.
 *
 * The address is an IPv4 address: hiredis is never handed a name, which it
 * would resolve with a blocking call.  hiredis reads and writes the socket
 * when nginx says it is ready (the adapter below); command timeouts are
 * nginx timers, since hiredis 0.14 has none for async commands.  Every
 * failure is logged at most once per interval, the connection is dropped
 * and, for a second, not tried again.
 */


#define NGX_HTTP_AI_GATEWAY_REDIS_LOG_INTERVAL  10
#define NGX_HTTP_AI_GATEWAY_REDIS_BACKOFF       1000
#define NGX_HTTP_AI_GATEWAY_REDIS_TIMEOUT       200


struct ngx_http_ai_gateway_redis_s {
    ngx_str_t                      address;    /* "ip:port" */
    ngx_str_t                      log_name;
    u_char                        *host;       /* an IP address, '\0' */
    in_port_t                      port;
    ngx_msec_t                     timeout;

    /* the worker's connection */

    redisAsyncContext             *ac;
    ngx_msec_t                     retry;      /* not before */
    time_t                         logged;
    ngx_uint_t                     quiet;      /* errors not logged */
};


struct ngx_http_ai_gateway_redis_op_s {
    ngx_http_ai_gateway_redis_t           *rd;
    ngx_http_ai_gateway_redis_handler_pt   handler;  /* NULL: not waited */
    void                                  *data;     /* NULL: cancelled */
    ngx_uint_t                             expect;
    ngx_event_t                            timer;
    u_char                                 what[16]; /* the command */
};


static ngx_int_t ngx_http_ai_gateway_redis_address(ngx_conf_t *cf,
    ngx_http_ai_gateway_redis_t *rd, ngx_str_t *address);
static ngx_http_ai_gateway_redis_op_t *ngx_http_ai_gateway_redis_exec(
    ngx_http_ai_gateway_redis_t *rd, ngx_uint_t argc, ngx_str_t *argv,
    ngx_uint_t expect, ngx_http_ai_gateway_redis_handler_pt handler,
    void *data, ngx_log_t *log);
static redisAsyncContext *ngx_http_ai_gateway_redis_connect(
    ngx_http_ai_gateway_redis_t *rd, ngx_log_t *log);
static void ngx_http_ai_gateway_redis_failed(ngx_http_ai_gateway_redis_t *rd,
    ngx_log_t *log, const char *what, const char *err);
static void ngx_http_ai_gateway_redis_error_text(u_char *buf, size_t size,
    char *s, size_t len);
static void ngx_http_ai_gateway_redis_connected(const redisAsyncContext *ac,
    int status);
static void ngx_http_ai_gateway_redis_disconnected(
    const redisAsyncContext *ac, int status);
static void ngx_http_ai_gateway_redis_got(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_ai_gateway_redis_timeout(ngx_event_t *ev);
static void ngx_http_ai_gateway_redis_read(ngx_event_t *ev);
static void ngx_http_ai_gateway_redis_write(ngx_event_t *ev);
static void ngx_http_ai_gateway_redis_add_read(void *data);
static void ngx_http_ai_gateway_redis_del_read(void *data);
static void ngx_http_ai_gateway_redis_add_write(void *data);
static void ngx_http_ai_gateway_redis_del_write(void *data);
static void ngx_http_ai_gateway_redis_cleanup(void *data);


/* a server written in place: "ip:port", its parameters follow */

ngx_http_ai_gateway_redis_t *
ngx_http_ai_gateway_redis_add(ngx_conf_t *cf, ngx_str_t *address)
{
    ngx_http_ai_gateway_redis_t  *rd;

    rd = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_gateway_redis_t));
    if (rd == NULL) {
        return NULL;
    }

    rd->timeout = NGX_CONF_UNSET_MSEC;

    if (ngx_http_ai_gateway_redis_address(cf, rd, address) != NGX_OK) {
        return NULL;
    }

    return rd;
}


/* an IP address: no name is resolved, at start or later */

static ngx_int_t
ngx_http_ai_gateway_redis_address(ngx_conf_t *cf,
    ngx_http_ai_gateway_redis_t *rd, ngx_str_t *address)
{
    u_char     *p;
    ngx_int_t   port;
    ngx_str_t   host;

    p = ngx_strlchr(address->data, address->data + address->len, ':');

    if (p == NULL) {
        goto invalid;
    }

    host.data = address->data;
    host.len = p - address->data;

    port = ngx_atoi(p + 1, address->data + address->len - p - 1);

    if (port < 1 || port > 65535
        || ngx_inet_addr(host.data, host.len) == INADDR_NONE)
    {
        goto invalid;
    }

    rd->host = ngx_pnalloc(cf->pool, host.len + 1);
    if (rd->host == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_cpystrn(rd->host, host.data, host.len + 1);

    rd->port = (in_port_t) port;
    rd->address = *address;

    return NGX_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid Redis address \"%V\", use "
                       "\"IPv4-address:port\"", address);

    return NGX_ERROR;
}


/*
 * A server parameter: NGX_OK, NGX_DECLINED when the value is not one,
 * NGX_ERROR (logged).
 */

ngx_int_t
ngx_http_ai_gateway_redis_parameter(ngx_conf_t *cf,
    ngx_http_ai_gateway_redis_t *rd, ngx_str_t *value)
{
    ngx_str_t  s;

    if (value->len >= 8 && ngx_strncmp(value->data, "timeout=", 8) == 0) {

        if (rd->timeout != NGX_CONF_UNSET_MSEC) {
            goto duplicate;
        }

        s.data = value->data + 8;
        s.len = value->len - 8;

        rd->timeout = ngx_parse_time(&s, 0);

        if (rd->timeout == (ngx_msec_t) NGX_ERROR || rd->timeout == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid timeout \"%V\"", value);
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    return NGX_DECLINED;

duplicate:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "duplicate parameter \"%V\"", value);

    return NGX_ERROR;
}


/* the server's parameters are all read */

char *
ngx_http_ai_gateway_redis_done(ngx_conf_t *cf, ngx_http_ai_gateway_redis_t *rd)
{
    ngx_conf_init_msec_value(rd->timeout, NGX_HTTP_AI_GATEWAY_REDIS_TIMEOUT);

    rd->log_name = rd->address;

    return NGX_CONF_OK;
}


ngx_str_t *
ngx_http_ai_gateway_redis_name(ngx_http_ai_gateway_redis_t *rd)
{
    return &rd->log_name;
}


/*
 * Starts a command; handler(data, reply) is called once, from the event
 * loop, with the reply or NULL (see ngx_http_ai_gateway_redis.h).  Returns
 * NULL when Redis cannot be asked now: the handler is not called, the
 * caller goes on as after a failure.
 */

ngx_http_ai_gateway_redis_op_t *
ngx_http_ai_gateway_redis_command(ngx_http_ai_gateway_redis_t *rd,
    ngx_uint_t argc, ngx_str_t *argv, ngx_uint_t expect,
    ngx_http_ai_gateway_redis_handler_pt handler, void *data,
    ngx_log_t *log)
{
    return ngx_http_ai_gateway_redis_exec(rd, argc, argv, expect, handler,
                                          data, log);
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


/* a command not waited for (SET, DEL): only its failure is logged */

void
ngx_http_ai_gateway_redis_send(ngx_http_ai_gateway_redis_t *rd,
    ngx_uint_t argc, ngx_str_t *argv, ngx_log_t *log)
{
    (void) ngx_http_ai_gateway_redis_exec(rd, argc, argv, 0, NULL, NULL,
                                          log);
}


static ngx_http_ai_gateway_redis_op_t *
ngx_http_ai_gateway_redis_exec(ngx_http_ai_gateway_redis_t *rd,
    ngx_uint_t argc, ngx_str_t *argv, ngx_uint_t expect,
    ngx_http_ai_gateway_redis_handler_pt handler, void *data,
    ngx_log_t *log)
{
    size_t                           lens[NGX_HTTP_AI_GATEWAY_REDIS_MAX_ARGS];
    ngx_uint_t                       i;
    const char                      *args[NGX_HTTP_AI_GATEWAY_REDIS_MAX_ARGS];
    redisAsyncContext               *ac;
    ngx_http_ai_gateway_redis_op_t  *op;

    if (argc == 0 || argc > NGX_HTTP_AI_GATEWAY_REDIS_MAX_ARGS) {
        return NULL;
    }

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
    op->expect = expect;

    (void) ngx_cpystrn(op->what, argv[0].data,
                       ngx_min(argv[0].len + 1, sizeof(op->what)));

    for (i = 0; i < argc; i++) {
        args[i] = (const char *) argv[i].data;
        lens[i] = argv[i].len;
    }

    if (redisAsyncCommandArgv(ac, ngx_http_ai_gateway_redis_got, op,
                              (int) argc, args, lens)
        != REDIS_OK)
    {
        ngx_http_ai_gateway_redis_failed(rd, log, (char *) op->what,
                                         ac->errstr);
        ngx_free(op);
        return NULL;
    }

    if (handler == NULL) {
        /* hiredis frees the op with the reply */
        return op;
    }

    op->timer.handler = ngx_http_ai_gateway_redis_timeout;
    op->timer.data = op;
    op->timer.log = ngx_cycle->log;

    ngx_add_timer(&op->timer, rd->timeout);

    return op;
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
                   "ai gateway redis: connecting to %V", &rd->log_name);

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
                  &rd->log_name, what, err ? err : "", rd->quiet);

    rd->logged = ngx_time();
    rd->quiet = 0;
}


/* an error reply for the log: its printable bytes */

static void
ngx_http_ai_gateway_redis_error_text(u_char *buf, size_t size, char *s,
    size_t len)
{
    u_char  *p, *last;

    p = buf;
    last = buf + size - 1;

    while (len-- && p < last) {

        *p++ = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
        s++;
    }

    *p = '\0';
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
    u_char                                 err[128], what[16];
    ngx_uint_t                             expect;
    redisReply                            *reply = r;
    ngx_http_ai_gateway_redis_t           *rd;
    ngx_http_ai_gateway_redis_reply_t      rp, *rpp;
    ngx_http_ai_gateway_redis_handler_pt   handler;

    if (op->timer.timer_set) {
        ngx_del_timer(&op->timer);
    }

    rd = op->rd;
    data = op->data;
    handler = op->handler;
    expect = op->expect;
    ngx_memcpy(what, op->what, sizeof(what));

    ngx_free(op);

    rpp = NULL;

    if (reply == NULL) {
        /* the connection failed or was closed: logged there */
        goto done;
    }

    ngx_memzero(&rp, sizeof(ngx_http_ai_gateway_redis_reply_t));

    switch (reply->type) {

    case REDIS_REPLY_NIL:
        rp.type = NGX_HTTP_AI_GATEWAY_REDIS_NIL;
        break;

    case REDIS_REPLY_STRING:
        rp.type = NGX_HTTP_AI_GATEWAY_REDIS_STRING;
        rp.str.data = (u_char *) reply->str;
        rp.str.len = reply->len;
        break;

    case REDIS_REPLY_STATUS:
        rp.type = NGX_HTTP_AI_GATEWAY_REDIS_STATUS;
        rp.str.data = (u_char *) reply->str;
        rp.str.len = reply->len;
        break;

    case REDIS_REPLY_INTEGER:
        rp.type = NGX_HTTP_AI_GATEWAY_REDIS_INTEGER;
        rp.integer = reply->integer;
        break;

    case REDIS_REPLY_ERROR:

        ngx_http_ai_gateway_redis_error_text(err, sizeof(err), reply->str,
                                             reply->len);
        ngx_http_ai_gateway_redis_failed(rd, NULL, (char *) what,
                                         (char *) err);
        goto done;

    default:
        break;
    }

    if (handler && !(rp.type & expect)) {
        ngx_http_ai_gateway_redis_failed(rd, NULL, (char *) what,
                                         "unexpected reply");
        goto done;
    }

    rpp = &rp;

done:

    if (handler && data) {
        handler(data, rpp);
    }
}


/*
 * Redis did not answer in time: the request goes on as after a failure,
 * and the connection is dropped (its pending replies would be late too).
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

    ngx_http_ai_gateway_redis_failed(rd, NULL, (char *) op->what,
                                     "timed out");

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
