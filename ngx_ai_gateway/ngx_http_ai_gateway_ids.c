
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/rand.h>

#include "ngx_http_ai_gateway_module.h"


/*
 * The ids of a request: its log id (a ULID, the id of its log record and
 * of "cf-aig-log-id", also the Unified API's "chatcmpl-" id) and its event
 * id ("cf-aig-event-id": the client's, or a random UUID), both made once
 * per request, when first asked for.
 */


static void ngx_http_ai_gateway_random(u_char *buf, size_t len);


/*
 * A ULID: 48 bits of milliseconds since the epoch and 80 random bits,
 * in Crockford's base32.
 */

void
ngx_http_ai_gateway_log_id(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    u_char       rnd[10], *p;
    uint64_t     ms, hi, lo;
    ngx_int_t    i;
    ngx_time_t  *tp;

    static u_char  alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

    if (ctx->ids.log_id_done) {
        return;
    }

    ctx->ids.log_id_done = 1;

    tp = ngx_timeofday();
    ms = (uint64_t) tp->sec * 1000 + tp->msec;

    ngx_http_ai_gateway_random(rnd, sizeof(rnd));

    /* 128 bits: hi = ms << 16 | rnd[0..1], lo = rnd[2..9] */

    hi = (ms << 16) | ((uint64_t) rnd[0] << 8) | rnd[1];
    lo = 0;

    for (i = 2; i < 10; i++) {
        lo = (lo << 8) | rnd[i];
    }

    /* 26 characters of 5 bits, the first one holding 3 bits */

    p = ctx->ids.log_id + sizeof(ctx->ids.log_id);

    for (i = 0; i < 26; i++) {
        *--p = alphabet[lo & 0x1f];
        lo = (lo >> 5) | ((hi & 0x1f) << 59);
        hi >>= 5;
    }
}


/*
 * The client's "cf-aig-event-id" when it is a sane token, else a random
 * UUID (version 4).
 */

ngx_int_t
ngx_http_ai_gateway_event_id(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    u_char                         *p, rnd[16];
    ngx_uint_t                      n;
    ngx_table_elt_t                *h;
    ngx_http_ai_gateway_headers_t  *hs;

    static u_char  hex[] = "0123456789abcdef";

    if (ctx->ids.event_id.len) {
        return NGX_OK;
    }

    hs = ngx_http_ai_gateway_headers(r, ctx);
    if (hs == NULL) {
        return NGX_ERROR;
    }

    h = hs->event_id;

    if (h && h->value.len && h->value.len <= 128) {

        for (p = h->value.data; p < h->value.data + h->value.len; p++) {
            if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '\\') {
                break;
            }
        }

        if (p == h->value.data + h->value.len) {
            ctx->ids.event_id = h->value;
            return NGX_OK;
        }
    }

    p = ngx_pnalloc(r->pool, 36);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_http_ai_gateway_random(rnd, sizeof(rnd));

    rnd[6] = (rnd[6] & 0x0f) | 0x40;
    rnd[8] = (rnd[8] & 0x3f) | 0x80;

    ctx->ids.event_id.data = p;

    for (n = 0; n < 16; n++) {
        if (n == 4 || n == 6 || n == 8 || n == 10) {
            *p++ = '-';
        }

        *p++ = hex[rnd[n] >> 4];
        *p++ = hex[rnd[n] & 0xf];
    }

    ctx->ids.event_id.len = p - ctx->ids.event_id.data;

    return NGX_OK;
}


/*
 * Random bytes for the ids, from OpenSSL's generator in batches: one call
 * per 4 KiB instead of two per request.  The batch is filled lazily, in
 * the worker that uses it, so that workers never share bytes.
 */

static void
ngx_http_ai_gateway_random(u_char *buf, size_t len)
{
    size_t  i;

    static u_char     batch[4096];
    static size_t     pos = sizeof(batch);
    static ngx_pid_t  pid;

    if (pos + len > sizeof(batch) || pid != ngx_pid) {

        if (RAND_bytes(batch, sizeof(batch)) != 1) {
            /* never fails with a seeded OpenSSL; a weaker source then */

            for (i = 0; i < sizeof(batch); i++) {
                batch[i] = (u_char) ngx_random();
            }
        }

        pos = 0;
        pid = ngx_pid;
    }

    ngx_memcpy(buf, batch + pos, len);
    pos += len;
}
