
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_module.h"


/*
 * Retries and the request timeout.
 *
 * A request with more than one attempt, or with a timeout to the first
 * byte, runs each attempt as a subrequest to its own URI, the way
 * auth_request waits for its subrequest: the subrequest goes through the
 * whole gateway (cache, credentials, upstream) exactly as the request
 * would, and whatever nginx does when the provider fails (502, 504) only
 * finalizes the subrequest.  The attempt's response headers decide:
 *
 *   - a failure (connect error, timeout, 429, 5xx) with an attempt left is
 *     swallowed: nothing reaches the client, a timer waits for the delay
 *     and the next subrequest starts;
 *   - anything else is the answer: its status and headers become the
 *     request's and its body passes to the client as it comes, streams
 *     included.  When the attempt ends, so does the request: with the
 *     last buffer if the attempt's output reached its end, else (the
 *     provider cut the body) by closing the client's connection without
 *     it, as nginx does for a request without attempts.
 *
 * The timeout to the first byte is a timer of the attempt, armed when its
 * upstream starts and removed when the status line arrives; it ends the
 * attempt's upstream and makes the attempt a 504.
 */


#define NGX_HTTP_AI_GATEWAY_BACKOFF_CONSTANT     0
#define NGX_HTTP_AI_GATEWAY_BACKOFF_LINEAR       1
#define NGX_HTTP_AI_GATEWAY_BACKOFF_EXPONENTIAL  2

#define NGX_HTTP_AI_GATEWAY_MAX_ATTEMPTS         5
#define NGX_HTTP_AI_GATEWAY_MAX_DELAY            5000
#define NGX_HTTP_AI_GATEWAY_MAX_TIMEOUT          3600000


typedef struct {
    ngx_uint_t                     status;
    ngx_msec_t                     time;
} ngx_http_ai_gateway_try_t;


struct ngx_http_ai_gateway_retry_s {
    ngx_http_request_t            *request;    /* the main request */
    ngx_http_request_t            *sr;         /* the attempt running */
    ngx_http_ai_gateway_retry_conf_t  conf;

    ngx_event_t                    delay;
    ngx_event_t                    deadline;

    ngx_http_ai_gateway_step_t    *steps;
    ngx_uint_t                     nsteps;
    ngx_uint_t                     step;       /* the one running */

    ngx_array_t                    tries;      /* recorded attempts */
    ngx_uint_t                     ntries;
    ngx_uint_t                     started;    /* in the step */
    ngx_msec_t                     start;      /* of the attempt */

    unsigned                       failed:1;   /* the attempt swallowed */
    unsigned                       again:1;    /* the same step again */
    unsigned                       committed:1;
    unsigned                       ended:1;    /* its output's end */
    unsigned                       timed_out:1;
    unsigned                       recorded:1;
    unsigned                       finished:1;
};


static ngx_int_t ngx_http_ai_gateway_retry_number(ngx_http_request_t *r,
    ngx_str_t *name, ngx_str_t *value, ngx_uint_t *n, ngx_uint_t min,
    ngx_uint_t max);
static ngx_http_ai_gateway_retry_t *ngx_http_ai_gateway_retry_create(
    ngx_http_request_t *r, ngx_http_ai_gateway_ctx_t *ctx);
static ngx_int_t ngx_http_ai_gateway_retry_attempt(ngx_http_request_t *r,
    ngx_http_ai_gateway_retry_t *rt);
static ngx_int_t ngx_http_ai_gateway_retry_done(ngx_http_request_t *sr,
    void *data, ngx_int_t rc);
static void ngx_http_ai_gateway_retry_next(ngx_http_request_t *r);
static void ngx_http_ai_gateway_retry_delay_handler(ngx_event_t *ev);
static void ngx_http_ai_gateway_retry_deadline_handler(ngx_event_t *ev);
static void ngx_http_ai_gateway_retry_cleanup(void *data);
static ngx_uint_t ngx_http_ai_gateway_retry_last(
    ngx_http_ai_gateway_retry_t *rt);


ngx_conf_enum_t  ngx_http_ai_gateway_backoffs[] = {
    { ngx_string("constant"), NGX_HTTP_AI_GATEWAY_BACKOFF_CONSTANT },
    { ngx_string("linear"), NGX_HTTP_AI_GATEWAY_BACKOFF_LINEAR },
    { ngx_string("exponential"), NGX_HTTP_AI_GATEWAY_BACKOFF_EXPONENTIAL },
    { ngx_null_string, 0 }
};


ngx_conf_num_bounds_t  ngx_http_ai_gateway_attempts_bounds = {
    ngx_conf_check_num_bounds, 1, NGX_HTTP_AI_GATEWAY_MAX_ATTEMPTS
};






void
ngx_http_ai_gateway_retry_create_conf(ngx_http_ai_gateway_retry_conf_t *conf)
{
    conf->timeout = NGX_CONF_UNSET_MSEC;
    conf->delay = NGX_CONF_UNSET_MSEC;
    conf->max_attempts = NGX_CONF_UNSET_UINT;
    conf->backoff = NGX_CONF_UNSET_UINT;
}


char *
ngx_http_ai_gateway_retry_merge_conf(ngx_conf_t *cf,
    ngx_http_ai_gateway_retry_conf_t *prev,
    ngx_http_ai_gateway_retry_conf_t *conf)
{
    ngx_conf_merge_msec_value(conf->timeout, prev->timeout, 0);
    ngx_conf_merge_msec_value(conf->delay, prev->delay, 100);
    ngx_conf_merge_uint_value(conf->max_attempts, prev->max_attempts, 1);
    ngx_conf_merge_uint_value(conf->backoff, prev->backoff,
                              NGX_HTTP_AI_GATEWAY_BACKOFF_CONSTANT);

    if (conf->delay > NGX_HTTP_AI_GATEWAY_MAX_DELAY) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ai_gateway_retry_delay\" must not be more "
                           "than 5s");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Settings from the gateway's headers (headers.c) over those in s (the
 * gateway's directives, or settings of a lower level).  NGX_OK, or the
 * status of a 400 for a bad value.
 */

ngx_int_t
ngx_http_ai_gateway_retry_settings(ngx_http_request_t *r,
    ngx_http_ai_gateway_headers_t *hs, ngx_http_ai_gateway_retry_conf_t *s)
{
    ngx_int_t          rc;
    ngx_uint_t         i;
    ngx_table_elt_t   *h[4];

    h[0] = hs->request_timeout;
    h[1] = hs->max_attempts;
    h[2] = hs->retry_delay;
    h[3] = hs->backoff;

    for (i = 0; i < 4; i++) {
        if (h[i] == NULL) {
            continue;
        }

        rc = ngx_http_ai_gateway_retry_value(r, &h[i]->key, &h[i]->value, s);

        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


/* one cf-aig-* header (any case); others are let be */

ngx_int_t
ngx_http_ai_gateway_retry_value(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value, ngx_http_ai_gateway_retry_conf_t *s)
{
    ngx_int_t         rc;
    ngx_uint_t        n;
    ngx_conf_enum_t  *e;

    rc = NGX_OK;

    if (name->len == 22
        && ngx_strncasecmp(name->data, (u_char *) "cf-aig-request-timeout",
                           22) == 0)
    {
        rc = ngx_http_ai_gateway_retry_number(r, name, value, &n, 1,
                                              NGX_HTTP_AI_GATEWAY_MAX_TIMEOUT);
        s->timeout = n;

    } else if (name->len == 19
               && ngx_strncasecmp(name->data,
                                  (u_char *) "cf-aig-max-attempts", 19) == 0)
    {
        rc = ngx_http_ai_gateway_retry_number(r, name, value, &n, 1,
                                          NGX_HTTP_AI_GATEWAY_MAX_ATTEMPTS);
        s->max_attempts = n;

    } else if (name->len == 18
               && ngx_strncasecmp(name->data,
                                  (u_char *) "cf-aig-retry-delay", 18) == 0)
    {
        rc = ngx_http_ai_gateway_retry_number(r, name, value, &n, 0,
                                              NGX_HTTP_AI_GATEWAY_MAX_DELAY);
        s->delay = n;

    } else if (name->len == 14
               && ngx_strncasecmp(name->data, (u_char *) "cf-aig-backoff",
                                  14) == 0)
    {
        for (e = ngx_http_ai_gateway_backoffs; e->name.len; e++) {
            if (e->name.len == value->len
                && ngx_strncasecmp(e->name.data, value->data, value->len)
                   == 0)
            {
                break;
            }
        }

        if (e->name.len == 0) {
            return ngx_http_ai_gateway_fail(r, ngx_http_ai_gateway_ctx(r),
                                     NGX_HTTP_AI_GATEWAY_ERR_BAD_HEADER,
                                     "Invalid %V: expected constant, linear "
                                     "or exponential", name);
        }

        s->backoff = e->value;
    }

    return rc;
}


static ngx_int_t
ngx_http_ai_gateway_retry_number(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value, ngx_uint_t *n, ngx_uint_t min, ngx_uint_t max)
{
    ngx_int_t  v;

    v = (value->len && value->len <= 7)
        ? ngx_atoi(value->data, value->len) : NGX_ERROR;

    if (v == NGX_ERROR || (ngx_uint_t) v < min || (ngx_uint_t) v > max) {
        return ngx_http_ai_gateway_fail(r, ngx_http_ai_gateway_ctx(r),
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_HEADER,
                                        "Invalid %V: expected an integer "
                                        "from %ui to %ui", name, min, max);
    }

    *n = v;

    return NGX_OK;
}


/*
 * The wait before attempt n (n >= 2), d the retry delay: constant d,
 * linear d * (n - 1), exponential d * 2^(n - 2); never more than 5 s.
 */

ngx_msec_t
ngx_http_ai_gateway_retry_wait(ngx_http_ai_gateway_retry_conf_t *s,
    ngx_uint_t n)
{
    ngx_msec_t  d;

    d = s->delay;

    switch (s->backoff) {

    case NGX_HTTP_AI_GATEWAY_BACKOFF_LINEAR:
        d *= n - 1;
        break;

    case NGX_HTTP_AI_GATEWAY_BACKOFF_EXPONENTIAL:
        d <<= n - 2;
        break;
    }

    return ngx_min(d, NGX_HTTP_AI_GATEWAY_MAX_DELAY);
}


static ngx_http_ai_gateway_retry_t *
ngx_http_ai_gateway_retry_create(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_pool_cleanup_t           *cln;
    ngx_http_ai_gateway_retry_t  *rt;

    rt = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_gateway_retry_t));
    if (rt == NULL) {
        return NULL;
    }

    if (ngx_array_init(&rt->tries, r->pool, 4,
                       sizeof(ngx_http_ai_gateway_try_t))
        != NGX_OK)
    {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_ai_gateway_retry_cleanup;
    cln->data = rt;

    rt->request = r;

    rt->delay.handler = ngx_http_ai_gateway_retry_delay_handler;
    rt->delay.data = rt;
    rt->delay.log = r->connection->log;

    rt->deadline.handler = ngx_http_ai_gateway_retry_deadline_handler;
    rt->deadline.data = rt;
    rt->deadline.log = r->connection->log;

    ctx->retry = rt;

    return rt;
}


/*
 * A request with retries or a timeout: the plan is the request itself, in
 * one step.  Its body is read next (the request body filter keeps a copy
 * for the attempts' cache keys), then ngx_http_ai_gateway_retry_begin().
 */

ngx_int_t
ngx_http_ai_gateway_retry_plan(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_retry_conf_t *s)
{
    ngx_http_ai_gateway_step_t  *step;

    step = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_gateway_step_t));
    if (step == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    step->uri = r->uri;
    step->args = r->args;
    step->unparsed = r->unparsed_uri;
    step->conf = *s;

    return ngx_http_ai_gateway_retry_steps(r, ctx, step, 1);
}


/* the plan: steps (the Universal Endpoint's, or the request itself) */

ngx_int_t
ngx_http_ai_gateway_retry_steps(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_step_t *steps,
    ngx_uint_t n)
{
    ngx_http_ai_gateway_retry_t  *rt;

    rt = ngx_http_ai_gateway_retry_create(r, ctx);
    if (rt == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rt->steps = steps;
    rt->nsteps = n;
    rt->conf = steps[0].conf;

    return NGX_OK;
}


/* the body is read: attempt 1; this file drives the request from now on */

ngx_int_t
ngx_http_ai_gateway_retry_begin(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_ai_gateway_retry_next;

    return ngx_http_ai_gateway_retry_attempt(r, ctx->retry);
}


static ngx_int_t
ngx_http_ai_gateway_retry_attempt(ngx_http_request_t *r,
    ngx_http_ai_gateway_retry_t *rt)
{
    ngx_buf_t                     *b;
    ngx_http_request_t            *sr;
    ngx_http_request_body_t       *rb;
    ngx_http_ai_gateway_ctx_t     *ctx, *sctx;
    ngx_http_ai_gateway_step_t    *step;
    ngx_http_post_subrequest_t    *ps;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    sctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_gateway_ctx_t));
    if (ps == NULL || sctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ps->handler = ngx_http_ai_gateway_retry_done;
    ps->data = rt;

    step = &rt->steps[rt->step];

    if (ngx_http_subrequest(r, &step->uri, &step->args, &sr, ps,
                            NGX_HTTP_SUBREQUEST_WAITED)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the attempt is the request itself, raw path and method included */

    sr->method = r->method;
    sr->method_name = r->method_name;
    sr->unparsed_uri = step->unparsed;
    sr->valid_unparsed_uri = (step->headers || r->valid_unparsed_uri);

    sctx->retry = rt;
    sctx->kind = NGX_HTTP_AI_GATEWAY_ATTEMPT;
    sctx->body.raw = ctx->body.raw;
    sctx->body.raw_size = ctx->body.raw.len;

    if (step->headers) {
        /*
         * a step: its own headers and body; a step without a "query" has
         * no body buffer at all (a buffer of no bytes is an error to
         * nginx's output chain), and is sent with "Content-Length: 0", as
         * a POST without a body is
         */

        rb = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
        if (rb == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (step->body.len) {
            b = ngx_calloc_buf(r->pool);
            rb->bufs = ngx_alloc_chain_link(r->pool);
            if (b == NULL || rb->bufs == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            b->pos = step->body.data;
            b->last = b->pos + step->body.len;
            b->start = b->pos;
            b->end = b->last;
            b->memory = 1;
            b->last_buf = 1;

            rb->bufs->buf = b;
            rb->bufs->next = NULL;
            rb->buf = b;
        }

        sr->request_body = rb;

        ngx_memzero(&sr->headers_in, sizeof(ngx_http_headers_in_t));
        sr->headers_in.headers = *step->headers;
        sr->headers_in.authorization = step->authorization;
        sr->headers_in.content_length_n = step->body.len;
        sr->headers_in.keep_alive_n = -1;

        sctx->body.raw = step->body;
        sctx->body.raw_size = step->body.len;
    }

    ngx_http_set_ctx(sr, sctx, ngx_http_ai_gateway_module);

    rt->sr = sr;
    rt->started++;
    rt->failed = 0;
    rt->recorded = 0;
    rt->timed_out = 0;
    rt->start = ngx_current_msec;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai gateway step %ui attempt %ui", rt->step, rt->started);

    return NGX_OK;
}


/* the attempt is the last of its step */

static ngx_uint_t
ngx_http_ai_gateway_retry_last(ngx_http_ai_gateway_retry_t *rt)
{
    return rt->started >= rt->conf.max_attempts;
}


/*
 * In the attempt, as its upstream starts: the first byte is awaited at
 * most the request timeout.  The final attempt of a request with retries
 * waits as long as the provider takes; a request of one attempt gets 504.
 * Before another step, the timeout is always kept: it is what falls back.
 */

void
ngx_http_ai_gateway_retry_armed(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_msec_t                    t, spent;
    ngx_http_ai_gateway_retry_t  *rt;

    rt = ctx->retry;

    if (ctx->kind != NGX_HTTP_AI_GATEWAY_ATTEMPT || rt->conf.timeout == 0
        || (ngx_http_ai_gateway_retry_last(rt) && rt->conf.max_attempts > 1
            && rt->step + 1 == rt->nsteps))
    {
        return;
    }

    /* the time of the cache lookup and the token exchange counts too */

    spent = ngx_current_msec - rt->start;
    t = (spent < rt->conf.timeout) ? rt->conf.timeout - spent : 1;

    ngx_add_timer(&rt->deadline, t);
}


static void
ngx_http_ai_gateway_retry_deadline_handler(ngx_event_t *ev)
{
    ngx_http_ai_gateway_retry_t *rt = ev->data;

    ngx_connection_t           *c;
    ngx_http_request_t         *sr;
    ngx_http_upstream_t        *u;
    ngx_http_ai_gateway_ctx_t  *sctx;

    sr = rt->sr;
    c = sr->connection;
    u = sr->upstream;

    sctx = ngx_http_get_module_ctx(sr, ngx_http_ai_gateway_module);

    if (sctx && sctx->relay.first_byte) {
        /* the status line came in time */
        return;
    }

    ngx_log_error(NGX_LOG_WARN, c->log, 0,
                  "ai_gateway: no response within the request timeout "
                  "of %M ms", rt->conf.timeout);

    rt->timed_out = 1;

    if (u && u->state && u->state->status == 0) {
        /* the status nginx records for a timeout of its own */
        u->state->status = NGX_HTTP_GATEWAY_TIME_OUT;
    }

    if (u && u->cleanup) {
        /* the upstream goes; its finalization takes back this count */
        sr->main->count++;
        (*u->cleanup)(sr);
    }

    ngx_http_finalize_request(sr, NGX_HTTP_GATEWAY_TIME_OUT);

    ngx_http_run_posted_requests(c);
}


/* the attempt's end, maybe reported more than once */

static ngx_int_t
ngx_http_ai_gateway_retry_done(ngx_http_request_t *sr, void *data,
    ngx_int_t rc)
{
    ngx_http_ai_gateway_retry_t *rt = data;

    ngx_uint_t                  status;
    ngx_http_ai_gateway_try_t  *t;
    ngx_http_ai_gateway_ctx_t  *ctx, *sctx;

    if (rt->deadline.timer_set) {
        ngx_del_timer(&rt->deadline);
    }

    if (rt->recorded) {
        return rc;
    }

    rt->recorded = 1;

    status = sr->headers_out.status;

    if (status == 0 || rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        status = (rc >= NGX_HTTP_SPECIAL_RESPONSE) ? (ngx_uint_t) rc
                                                   : status;
    }

    if (rt->timed_out) {
        status = NGX_HTTP_GATEWAY_TIME_OUT;
    }

    t = ngx_array_push(&rt->tries);
    if (t) {
        t->status = status;
        t->time = ngx_current_msec - rt->start;
        rt->ntries++;
    }

    /*
     * the request's own variables read the last attempt itself (see
     * ngx_http_ai_gateway_retry_request()); the cache's read these
     */

    ctx = ngx_http_get_module_ctx(sr->main, ngx_http_ai_gateway_module);
    sctx = ngx_http_get_module_ctx(sr, ngx_http_ai_gateway_module);

    if (ctx && sctx) {
        ctx->cache.state = sctx->cache.state;
        ctx->cache.status = sctx->cache.status;
        ctx->cache.hit = sctx->cache.hit;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                   "ai gateway attempt %ui done: %ui, failed: %d",
                   rt->ntries, status, rt->failed);

    return rc;
}


/* the main request's write handler: the attempt is over */

static void
ngx_http_ai_gateway_retry_next(ngx_http_request_t *r)
{
    ngx_http_ai_gateway_ctx_t    *ctx;
    ngx_http_ai_gateway_retry_t  *rt;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);
    rt = ctx->retry;

    if (rt->finished || rt->delay.timer_set || rt->delay.posted
        || !rt->sr->done)
    {
        return;
    }

    if (rt->failed) {
        rt->failed = 0;

        if (rt->again) {
            ngx_add_timer(&rt->delay,
                          ngx_http_ai_gateway_retry_wait(&rt->conf,
                                                         rt->started + 1));
            return;
        }

        /* the step failed: the next one, at once */

        rt->step++;
        rt->started = 0;
        rt->conf = rt->steps[rt->step].conf;

        ngx_post_event(&rt->delay, &ngx_posted_events);
        return;
    }

    rt->finished = 1;

    if (!rt->committed) {
        /* the attempt answered nothing at all */
        ngx_http_finalize_request(r, NGX_HTTP_BAD_GATEWAY);
        return;
    }

    if (r->header_only) {
        ngx_http_finalize_request(r, NGX_OK);
        return;
    }

    if (!rt->ended) {
        /*
         * the answer was cut: the provider's connection broke (or timed
         * out) in the middle of the body.  As nginx does for a request
         * without attempts, what came is flushed and the connection is
         * closed without the last buffer, so that the client sees the
         * cut: no terminating chunk, a Content-Length never reached.
         */

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ai_gateway: the answer of step %ui attempt %ui was "
                      "cut, closing the connection", rt->step, rt->started);

        r->keepalive = 0;

        ngx_http_finalize_request(r,
                                  ngx_http_send_special(r, NGX_HTTP_FLUSH));
        return;
    }

    ngx_http_finalize_request(r, ngx_http_send_special(r, NGX_HTTP_LAST));
}


static void
ngx_http_ai_gateway_retry_delay_handler(ngx_event_t *ev)
{
    ngx_http_ai_gateway_retry_t *rt = ev->data;

    ngx_int_t            rc;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = rt->request;
    c = r->connection;

    rc = ngx_http_ai_gateway_retry_attempt(r, rt);

    if (rc != NGX_OK) {
        rt->finished = 1;
        ngx_http_finalize_request(r, rc);
    }

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_ai_gateway_retry_cleanup(void *data)
{
    ngx_http_ai_gateway_retry_t *rt = data;

    if (rt->delay.timer_set) {
        ngx_del_timer(&rt->delay);
    }

    if (rt->delay.posted) {
        ngx_delete_posted_event(&rt->delay);
    }

    if (rt->deadline.timer_set) {
        ngx_del_timer(&rt->deadline);
    }
}


/*
 * An attempt's response header, in the filter module: swallowed when it
 * failed and another attempt follows (NGX_OK: nothing passes), otherwise
 * the request's response (its header is sent for the request).
 */

ngx_int_t
ngx_http_ai_gateway_retry_header(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_uint_t                    status;
    ngx_http_request_t           *mr;
    ngx_http_ai_gateway_retry_t  *rt;

    rt = ctx->retry;

    /* nginx's own response for a failed upstream has err_status */
    status = r->err_status ? r->err_status : r->headers_out.status;

    if (rt->failed || rt->committed) {
        /* nginx's own page after a response already decided on */
        r->header_sent = 1;
        return NGX_OK;
    }

    rt->again = (status == NGX_HTTP_TOO_MANY_REQUESTS
                 || status >= NGX_HTTP_INTERNAL_SERVER_ERROR)
                && !ngx_http_ai_gateway_retry_last(rt);

    if ((rt->again
         || (status >= NGX_HTTP_BAD_REQUEST && rt->step + 1 < rt->nsteps))
        && !r->connection->error)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ai_gateway: step %ui attempt %ui of %ui failed with "
                      "%ui, %s", rt->step, rt->started,
                      rt->conf.max_attempts, status,
                      rt->again ? "retrying" : "falling back");

        rt->failed = 1;
        r->header_sent = 1;

        if (r->upstream) {
            /* a failed attempt's body is of no use */
            r->upstream->keepalive = 0;
        }

        return NGX_OK;
    }

    /* the answer: its status and headers become the request's */

    rt->committed = 1;
    r->header_sent = 1;

    mr = r->main;

    mr->headers_out = r->headers_out;

    if (mr->headers_out.headers.last == &r->headers_out.headers.part) {
        mr->headers_out.headers.last = &mr->headers_out.headers.part;
    }

    return ngx_http_send_header(mr);
}


ngx_int_t
ngx_http_ai_gateway_retry_body(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_chain_t *in)
{
    ngx_chain_t                  *cl;
    ngx_http_ai_gateway_retry_t  *rt;

    rt = ctx->retry;

    if (rt->committed) {

        /*
         * the answer: a subrequest's output ends with a buffer marked
         * last_in_chain (the upstream's last buffer, the cache's, the
         * envelope's); without it the answer was cut
         */

        for (cl = in; cl; cl = cl->next) {
            if (cl->buf->last_in_chain) {
                rt->ended = 1;
            }
        }

        return NGX_DECLINED;
    }

    /* a failed attempt: its bytes are consumed, nothing leaves */

    for (cl = in; cl; cl = cl->next) {
        cl->buf->pos = cl->buf->last;
        cl->buf->file_pos = cl->buf->file_last;
    }

    return NGX_OK;
}


ngx_uint_t
ngx_http_ai_gateway_retry_step(ngx_http_ai_gateway_ctx_t *ctx)
{
    return ctx->retry ? ctx->retry->step : 0;
}


ngx_int_t
ngx_http_ai_gateway_retry_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                       *p, *last;
    ngx_uint_t                    i;
    ngx_http_ai_gateway_try_t    *t;
    ngx_http_ai_gateway_ctx_t    *ctx;
    ngx_http_ai_gateway_retry_t  *rt;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_ai_gateway_module);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    rt = ctx->retry;

    p = ngx_pnalloc(r->pool, ((rt ? rt->ntries : 0) + 1)
                             * (NGX_INT_T_LEN + 2));
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;
    last = p;

    switch (data) {

    case 0:
        last = ngx_sprintf(p, "%ui",
                           rt ? rt->ntries + (rt->committed && !rt->recorded)
                              : 1);
        break;

    case 3:
        last = ngx_sprintf(p, "%ui", ngx_http_ai_gateway_retry_step(ctx));
        break;

    default:
        if (rt == NULL) {
            v->not_found = 1;
            return NGX_OK;
        }

        t = rt->tries.elts;

        for (i = 0; i < rt->ntries; i++) {
            if (i) {
                *last++ = ','; *last++ = ' ';
            }

            last = ngx_sprintf(last, "%ui", (data == 1) ? t[i].status
                                            : (ngx_uint_t) t[i].time);
        }

        if (rt->committed && !rt->recorded) {
            /* asked for while the answer's headers go out */

            last = ngx_sprintf(last, "%s%ui", i ? ", " : "",
                               (data == 1)
                               ? (rt->sr->err_status ? rt->sr->err_status
                                  : rt->sr->headers_out.status)
                               : (ngx_uint_t) (ngx_current_msec - rt->start));
        }
    }

    v->len = last - p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * The attempt a request with attempts reports in its variables, as a
 * request without attempts reports what it did: the last one started (the
 * answer, or the last failure).  NULL before the first one, and for other
 * requests.
 */

ngx_http_request_t *
ngx_http_ai_gateway_retry_request(ngx_http_ai_gateway_ctx_t *ctx)
{
    return (ctx->retry && ctx->kind != NGX_HTTP_AI_GATEWAY_ATTEMPT)
           ? ctx->retry->sr : NULL;
}
