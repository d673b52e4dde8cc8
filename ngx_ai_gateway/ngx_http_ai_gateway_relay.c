
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_module.h"
#include "ngx_http_ai_gateway_sse.h"


/*
 * What happens to a provider's response body on its way to the client.
 * upstream.c parses the provider's answer and hands every piece of its
 * body here, once, in order:
 *
 *   ngx_http_ai_gateway_relay_header()    the status and headers are in:
 *                                          the body's mode is decided
 *   ngx_http_ai_gateway_relay_body()      a piece of the (de-chunked) body
 *   ngx_http_ai_gateway_relay_end()       the body is complete
 *   ngx_http_ai_gateway_relay_finalize()  the upstream ends: a body that
 *                                          ends with the connection ends
 *                                          here, a cut one is handled here
 *
 * The modes: relayed as it is (a buffer pointing into the upstream's
 * buffer, flushed at once), translated as a stream (each piece through the
 * Unified API's stream translator, in buffers of the upstream's free
 * list, so that a stream of any length needs only the memory of the bytes
 * in flight), translated whole or an error translated whole (kept until
 * it ends; the header is held until then, so that the translation decides
 * the status), or kept whole for the gateway itself (a token exchange).
 * This is the one place where every provider byte passes: usage
 * accounting, DLP on responses and payload capture tap it here.  The
 * request log's copy of the answer is the answer as the client gets it
 * (the provider's bytes when relayed, the translation otherwise), up to
 * the log's limit, copied as it passes (nothing waits for the log); the
 * end of the exchange and a cut answer are noted for the record too.
 *
 * Usage: a body relayed as it is passes the meter (cost.c, usage.c) on
 * its way; a translated one is counted by its translator.  When the
 * gateway asked for a stream's usage that the client did not
 * (stream_options.include_usage), the usage chunk is left out: the
 * stream then leaves event by event, the bytes of an event not yet
 * complete held back (no more than NGX_HTTP_AI_GATEWAY_MAX_EVENT), and
 * the event the meter finds to be that chunk dropped.
 */


static ngx_int_t ngx_http_ai_gateway_relay_keep(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, u_char *p, size_t len);
static ngx_int_t ngx_http_ai_gateway_relay_whole(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
static ngx_int_t ngx_http_ai_gateway_relay_out(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_str_t *out);
static ngx_int_t ngx_http_ai_gateway_relay_point(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, u_char *p, size_t len);
static ngx_int_t ngx_http_ai_gateway_relay_strip(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, u_char *p, size_t len);
static ngx_int_t ngx_http_ai_gateway_relay_held(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
static void ngx_http_ai_gateway_relay_capture(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, u_char *p, size_t len);


/*
 * The provider's status and headers are in: decide what its body becomes.
 * A body translated whole decides the response's status too (a 200 that
 * cannot be translated is a 502), so its header is held (the filter
 * module) until the body is in and translated.
 */

void
ngx_http_ai_gateway_relay_header(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_http_upstream_t  *u;

    u = r->upstream;

    ctx->relay.ended = 0;

    ngx_http_ai_gateway_cost_start(r, ctx);

    if (ctx->kind == NGX_HTTP_AI_GATEWAY_EXCHANGE) {
        /* a token response: kept for the main request */
        ctx->relay.mode = NGX_HTTP_AI_GATEWAY_KEEP;
        return;
    }

    if (ctx->route.translator == NULL) {
        ctx->relay.mode = NGX_HTTP_AI_GATEWAY_RELAY;
        return;
    }

    ctx->relay.hold = 1;

    if (u->headers_in.status_n < NGX_HTTP_OK
        || u->headers_in.status_n >= NGX_HTTP_SPECIAL_RESPONSE)
    {
        ctx->relay.mode = NGX_HTTP_AI_GATEWAY_TRANSLATE_ERROR;
        return;
    }

    if (ctx->route.tc.stream) {
        ctx->relay.stream = ctx->route.translator->stream_create(r->pool,
                                                             &ctx->route.tc);
        if (ctx->relay.stream) {
            ctx->relay.mode = NGX_HTTP_AI_GATEWAY_TRANSLATE_STREAM;
            ctx->relay.hold = 0;
            return;
        }
    }

    ctx->relay.mode = NGX_HTTP_AI_GATEWAY_TRANSLATE_WHOLE;
}


/*
 * A translated body has its own length and type; called by the filter
 * module as the header leaves, like nginx's own filters that change a
 * body (gzip, sub_filter) clear the length in their header filters.
 */

void
ngx_http_ai_gateway_relay_headers_out(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_http_clear_content_length(r);

    if (ctx->relay.mode == NGX_HTTP_AI_GATEWAY_TRANSLATE_STREAM) {
        ngx_str_set(&r->headers_out.content_type, "text/event-stream");

    } else {
        ngx_str_set(&r->headers_out.content_type, "application/json");
    }

    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    ngx_str_null(&r->headers_out.charset);
}


/*
 * The end of u->out_bufs, found once per read: the pieces of one read
 * are appended there in turn, however many chunks the read holds.
 */

void
ngx_http_ai_gateway_relay_tail(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_chain_t  *cl, **ll;

    ll = &r->upstream->out_bufs;

    for (cl = *ll; cl; cl = cl->next) {
        ll = &cl->next;
    }

    ctx->relay.out = ll;
}


/* a piece of the provider's body, split anywhere */

ngx_int_t
ngx_http_ai_gateway_relay_body(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, u_char *p, size_t len)
{
    ngx_str_t  out;

    switch (ctx->relay.mode) {

    case NGX_HTTP_AI_GATEWAY_RELAY:

        if (ctx->meter.parser) {
            if (ctx->meter.strip) {
                return ngx_http_ai_gateway_relay_strip(r, ctx, p, len);
            }

            ngx_http_ai_gateway_cost_feed(r, ctx, p, len);
        }

        return ngx_http_ai_gateway_relay_point(r, ctx, p, len);

    case NGX_HTTP_AI_GATEWAY_TRANSLATE_STREAM:

        if (ctx->route.translator->stream_feed(ctx->relay.stream, p, len, &out)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "ai_gateway: %V stream could not be translated",
                          &ctx->route.translator->name);
            return NGX_ERROR;
        }

        return ngx_http_ai_gateway_relay_out(r, ctx, &out);

    default: /* whole, error, kept */
        return ngx_http_ai_gateway_relay_keep(r, ctx, p, len);
    }
}


/* bytes of the upstream's buffer, relayed as they are */

static ngx_int_t
ngx_http_ai_gateway_relay_point(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, u_char *p, size_t len)
{
    ngx_chain_t          *cl;
    ngx_http_upstream_t  *u;

    if (len == 0) {
        return NGX_OK;
    }

    u = r->upstream;

    cl = ngx_chain_get_free_buf(r->pool, &u->free_bufs);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    *ctx->relay.out = cl;
    ctx->relay.out = &cl->next;

    cl->buf->flush = 1;
    cl->buf->memory = 1;
    cl->buf->pos = p;
    cl->buf->last = p + len;
    cl->buf->tag = u->output.tag;

    ngx_http_ai_gateway_relay_capture(r, ctx, p, len);

    return NGX_OK;
}


/*
 * A stream whose usage chunk the client did not ask for: each complete
 * event is relayed (the bytes held from earlier reads copied out, the
 * rest pointed at), the usage chunk is not; the start of an event not
 * complete yet is held.  An event too long to hold is no usage chunk:
 * the stream is then relayed as it is.
 */

static ngx_int_t
ngx_http_ai_gateway_relay_strip(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, u_char *p, size_t len)
{
    u_char     *pos, *last, *start;
    ngx_int_t   rc;
    ngx_uint_t  drop;

    pos = p;
    start = p;
    last = p + len;

    for ( ;; ) {
        rc = ngx_http_ai_gateway_meter_feed(ctx->meter.parser, &pos, last,
                                            &drop);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_AGAIN) {
            break;
        }

        /* an event ends at pos */

        if (drop) {
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "ai gateway: the usage chunk is left out");

            ctx->meter.hold_len = 0;

        } else if (ngx_http_ai_gateway_relay_held(r, ctx) != NGX_OK
                   || ngx_http_ai_gateway_relay_point(r, ctx, start,
                                                      pos - start)
                      != NGX_OK)
        {
            return NGX_ERROR;
        }

        start = pos;
    }

    if (start == last) {
        return NGX_OK;
    }

    if (ctx->meter.hold_len + (last - start) > NGX_HTTP_AI_GATEWAY_MAX_EVENT)
    {
        ctx->meter.strip = 0;

        if (ngx_http_ai_gateway_relay_held(r, ctx) != NGX_OK) {
            return NGX_ERROR;
        }

        return ngx_http_ai_gateway_relay_point(r, ctx, start, last - start);
    }

    if (ngx_http_ai_gateway_reserve(r->pool, &ctx->meter.hold,
                                    &ctx->meter.hold_size,
                                    ctx->meter.hold_len,
                                    ctx->meter.hold_len + (last - start),
                                    1024, 0)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_memcpy(ctx->meter.hold + ctx->meter.hold_len, start, last - start);
    ctx->meter.hold_len += last - start;

    return NGX_OK;
}


/* the bytes held of an event, relayed */

static ngx_int_t
ngx_http_ai_gateway_relay_held(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_str_t  held;

    if (ctx->meter.hold_len == 0) {
        return NGX_OK;
    }

    held.data = ctx->meter.hold;
    held.len = ctx->meter.hold_len;

    ctx->meter.hold_len = 0;

    return ngx_http_ai_gateway_relay_out(r, ctx, &held);
}


/* a whole body: kept until it is complete */

static ngx_int_t
ngx_http_ai_gateway_relay_keep(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, u_char *p, size_t len)
{
    if (ctx->relay.resp.len + len > NGX_HTTP_AI_GATEWAY_MAX_RESPONSE) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai_gateway: provider response too large to "
                      "translate");
        return NGX_ERROR;
    }

    if (ngx_http_ai_gateway_reserve(r->pool, &ctx->relay.resp.data,
                                    &ctx->relay.resp_size,
                                    ctx->relay.resp.len,
                                    ctx->relay.resp.len + len, 16384, 0)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_memcpy(ctx->relay.resp.data + ctx->relay.resp.len, p, len);
    ctx->relay.resp.len += len;

    return NGX_OK;
}


/*
 * The provider's body is complete (its length reached, its last chunk
 * read, or its connection closed where that ends it): the last translated
 * bytes go out with the body's last buffer.
 */

ngx_int_t
ngx_http_ai_gateway_relay_end(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_int_t  rc;
    ngx_str_t  out;

    if (ctx->relay.ended) {
        return NGX_OK;
    }

    ctx->relay.ended = 1;

    if (ctx->relay.hold) {
        rc = ngx_http_ai_gateway_relay_whole(r, ctx);

    } else if (ctx->relay.mode != NGX_HTTP_AI_GATEWAY_TRANSLATE_STREAM) {
        /* an event the stream did not end: the provider's bytes as sent */
        rc = ngx_http_ai_gateway_relay_held(r, ctx);

    } else {
        ngx_str_null(&out);

        if (ctx->route.translator->stream_finish(ctx->relay.stream, 1, &out)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "ai_gateway: %V stream could not be translated",
                          &ctx->route.translator->name);
            rc = NGX_ERROR;

        } else {
            rc = ngx_http_ai_gateway_relay_out(r, ctx, &out);
        }
    }

    /* the translation's counts are in */

    ngx_http_ai_gateway_cost_end(r, ctx, 1);

    return rc;
}


/*
 * The upstream ends (rc 0), or fails (an error status, NGX_ERROR): the
 * end of a body that ends when the connection closes; a translated
 * stream cut short ends with an error event; a body translated whole and
 * cut short gets nginx's own answer for a failed provider (502, 504),
 * since nothing has been sent.  Then the cache learns whether the body
 * ended well.
 */

void
ngx_http_ai_gateway_relay_finalize(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_int_t rc)
{
    ngx_str_t             out;
    ngx_uint_t            complete;
    ngx_time_t           *tp;
    ngx_http_upstream_t  *u;

    u = r->upstream;

    /*
     * a body that ends with the connection ended well (rc 0); any other
     * that did not reach its end was cut short
     */

    complete = ctx->relay.ended || rc == 0;

    /* for the request log: when the exchange ended, and whether it was cut */

    tp = ngx_timeofday();
    ctx->log.end = (uint64_t) tp->sec * 1000 + tp->msec;

    if (rc != 0 && u->header_sent && !ctx->relay.ended
        && rc != NGX_HTTP_CLIENT_CLOSED_REQUEST && !r->connection->error)
    {
        ctx->log.failed = 1;
    }

    if (ctx->relay.mode == NGX_HTTP_AI_GATEWAY_KEEP || !u->header_sent) {
        goto done;
    }

    if (rc == 0) {
        if (!ctx->relay.ended
            && (ctx->relay.mode != NGX_HTTP_AI_GATEWAY_RELAY
                || ctx->meter.hold_len))
        {
            /* u->out_bufs has been sent since the last read */
            ngx_http_ai_gateway_relay_tail(r, ctx);

            if (ngx_http_ai_gateway_relay_end(r, ctx) == NGX_OK) {
                (void) ngx_http_output_filter(r, u->out_bufs);
                u->out_bufs = NULL;
            }
        }

        goto done;
    }

    if (ctx->relay.ended) {
        goto done;
    }

    ctx->relay.ended = 1;

    if (ctx->relay.hold) {
        ctx->relay.hold = 0;
        ctx->relay.mode = NGX_HTTP_AI_GATEWAY_RELAY;

        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            if (rc == NGX_HTTP_BAD_GATEWAY) {
                (void) ngx_http_ai_gateway_fail(r, ctx,
                                       NGX_HTTP_AI_GATEWAY_ERR_PROVIDER_FAILED,
                                       "The provider's answer was cut short");
            }

            /* ngx_http_upstream_finalize_request() then sends rc */
            u->header_sent = 0;
        }

        /* NGX_ERROR, NGX_DONE: the request is ended without an answer */

        goto done;
    }

    if (ctx->relay.mode != NGX_HTTP_AI_GATEWAY_TRANSLATE_STREAM
        || rc == NGX_HTTP_CLIENT_CLOSED_REQUEST || rc == NGX_ERROR
        || r->connection->error)
    {
        goto done;
    }

    ngx_str_null(&out);

    if (ctx->route.translator->stream_finish(ctx->relay.stream, 0, &out)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai_gateway: %V stream could not be translated",
                      &ctx->route.translator->name);
        goto done;
    }

    ngx_http_ai_gateway_relay_tail(r, ctx);

    if (ngx_http_ai_gateway_relay_out(r, ctx, &out) == NGX_OK) {
        (void) ngx_http_output_filter(r, u->out_bufs);
        u->out_bufs = NULL;

        /*
         * the stream ended with an error event: it is complete for the
         * client, even though nginx closes the connection after it
         */
        (void) ngx_http_send_special(r, NGX_HTTP_LAST);
    }

done:

    ngx_http_ai_gateway_cost_end(r, ctx, complete);

    /* after the translation's end: a stream may have ended with an error */

    ngx_http_ai_gateway_cache_upstream_done(r, ctx, rc);
}


/*
 * A body translated whole, and its header held until now: the status,
 * headers and translated body leave together, so that the filters below
 * (the cache's, the retry's) see the final status.  An answer that cannot
 * be translated is the provider's failure: 502, code 2005.
 */

static ngx_int_t
ngx_http_ai_gateway_relay_whole(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_int_t                          ok, rc;
    ngx_str_t                          out;
    ngx_uint_t                         status;
    ngx_http_upstream_t               *u;
    ngx_http_ai_gateway_translator_t  *t;

    u = r->upstream;
    t = ctx->route.translator;

    ctx->relay.hold = 0;

    ngx_str_null(&out);

    status = u->headers_in.status_n;

    switch (ctx->relay.mode) {

    case NGX_HTTP_AI_GATEWAY_TRANSLATE_ERROR:
        ok = t->error(r->pool, status, ctx->relay.resp.data,
                      ctx->relay.resp.len, &out);
        break;

    default: /* NGX_HTTP_AI_GATEWAY_TRANSLATE_WHOLE */

        if (ctx->route.endpoint == NGX_HTTP_AI_GATEWAY_EMBEDDINGS) {
            ok = t->embed_response(r->pool, ctx->relay.resp.data,
                                   ctx->relay.resp.len, &ctx->route.tc, &out);

        } else {
            ok = t->response(r->pool, ctx->relay.resp.data, ctx->relay.resp.len,
                             &ctx->route.tc, &out);
        }
    }

    if (ok != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai_gateway: %V response could not be translated",
                      &t->name);

        ctx->relay.mode = NGX_HTTP_AI_GATEWAY_RELAY;

        if (ok == NGX_DECLINED) {
            status = ngx_http_ai_gateway_fail(r, ctx,
                                       NGX_HTTP_AI_GATEWAY_ERR_PROVIDER_FAILED,
                                       "The provider's answer could not be "
                                       "translated");

        } else {
            status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /* not the provider's "200 OK" */
        r->headers_out.status_line.len = 0;

        /* the envelope, then nginx's last buffer finds it sent */

        (void) ngx_http_ai_gateway_send_error(r, ctx, status);
        return NGX_OK;
    }

    /* the translated body's type and length */

    ngx_http_ai_gateway_relay_headers_out(r, ctx);
    r->headers_out.content_length_n = out.len;

    ctx->relay.mode = NGX_HTTP_AI_GATEWAY_RELAY;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return NGX_OK;
    }

    ngx_http_ai_gateway_relay_tail(r, ctx);

    return ngx_http_ai_gateway_relay_out(r, ctx, &out);
}


/*
 * Translated bytes leave in buffers of the upstream's free list: they are
 * reused once sent, so a long stream needs no more memory than the bytes
 * in flight.  The events of one read fill the read's last buffer before
 * another is taken: a read of many events costs one buffer, not one each.
 */

static ngx_int_t
ngx_http_ai_gateway_relay_out(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_str_t *out)
{
    size_t                size;
    u_char               *p, *last;
    ngx_buf_t            *b;
    ngx_chain_t          *cl;
    ngx_http_upstream_t  *u;

    u = r->upstream;

    p = out->data;
    last = p + out->len;

    if (p < last && ctx->relay.out != &u->out_bufs) {

        /* the link ctx->relay.out ends: not sent yet */

        cl = (ngx_chain_t *) ((u_char *) ctx->relay.out
                              - offsetof(ngx_chain_t, next));
        b = cl->buf;

        if (b->temporary && b->tag == u->output.tag && !b->last_buf
            && b->start != NULL && b->pos == b->start && b->last < b->end)
        {
            size = ngx_min((size_t) (last - p), (size_t) (b->end - b->last));

            b->last = ngx_cpymem(b->last, p, size);
            p += size;
        }
    }

    while (p < last) {
        cl = ngx_chain_get_free_buf(r->pool, &u->free_bufs);
        if (cl == NULL) {
            return NGX_ERROR;
        }

        b = cl->buf;

        if (b->start == NULL) {
            b->start = ngx_palloc(r->pool, 4096);
            if (b->start == NULL) {
                return NGX_ERROR;
            }

            b->end = b->start + 4096;
        }

        size = ngx_min((size_t) (last - p), (size_t) (b->end - b->start));

        b->pos = b->start;
        b->last = ngx_cpymem(b->pos, p, size);
        b->temporary = 1;
        b->flush = 1;
        b->tag = u->output.tag;

        p += size;

        *ctx->relay.out = cl;
        ctx->relay.out = &cl->next;
    }

    ngx_http_ai_gateway_relay_capture(r, ctx, out->data, out->len);

    return NGX_OK;
}


/*
 * The request log's copy of the answer: every byte counted, the first
 * ctx->log.limit of them kept (none when the log keeps no payload).
 */

static void
ngx_http_ai_gateway_relay_capture(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, u_char *p, size_t len)
{
    size_t  n;

    ctx->log.resp_bytes += len;

    if (ctx->log.limit == 0 || ctx->log.cut || len == 0) {
        return;
    }

    n = ngx_min(len, ctx->log.limit - ctx->log.resp.len);

    if (n < len) {
        ctx->log.cut = 1;
    }

    if (n == 0) {
        return;
    }

    if (ngx_http_ai_gateway_reserve(r->pool, &ctx->log.resp.data,
                                    &ctx->log.resp_size, ctx->log.resp.len,
                                    ctx->log.resp.len + n, 4096,
                                    ctx->log.limit)
        != NGX_OK)
    {
        ctx->log.cut = 1;
        return;
    }

    ngx_memcpy(ctx->log.resp.data + ctx->log.resp.len, p, n);
    ctx->log.resp.len += n;
}
