
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_gateway_compat.h"
#include "ngx_http_ai_gateway_sse.h"


#define NGX_HTTP_AI_GATEWAY_SSE_BUF  4096


static ngx_int_t ngx_http_ai_gateway_sse_reserve(
    ngx_http_ai_gateway_sse_t *sse, size_t need);
static ngx_uint_t ngx_http_ai_gateway_sse_line(ngx_http_ai_gateway_sse_t *sse);
static void ngx_http_ai_gateway_sse_event(ngx_http_ai_gateway_sse_t *sse,
    ngx_http_ai_gateway_sse_event_t *ev);


void
ngx_http_ai_gateway_sse_init(ngx_http_ai_gateway_sse_t *sse, ngx_pool_t *pool)
{
    ngx_memzero(sse, sizeof(ngx_http_ai_gateway_sse_t));

    sse->pool = pool;
}


ngx_int_t
ngx_http_ai_gateway_sse_parse(ngx_http_ai_gateway_sse_t *sse, u_char **pos,
    u_char *last, ngx_http_ai_gateway_sse_event_t *ev)
{
    u_char  *p, *q;
    size_t   n;

    if (sse->dispatched) {
        sse->dispatched = 0;
        sse->has_data = 0;
        sse->data = 0;
        sse->name_len = 0;
    }

    p = *pos;

    while (p < last) {

        if (sse->cr) {
            sse->cr = 0;

            if (*p == '\n') {
                /* the LF of a CRLF split from its CR */
                p++;
                continue;
            }
        }

        for (q = p; q < last; q++) {
            if (*q == '\n' || *q == '\r') {
                break;
            }
        }

        n = q - p;

        if (n) {
            if (sse->data + sse->line + n > NGX_HTTP_AI_GATEWAY_MAX_EVENT) {
                *pos = q;
                return NGX_DECLINED;
            }

            if (ngx_http_ai_gateway_sse_reserve(sse,
                                                sse->data + sse->line + n + 1)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            ngx_memcpy(sse->buf + sse->data + sse->line, p, n);
            sse->line += n;
        }

        if (q == last) {
            p = q;
            break;
        }

        sse->cr = (*q == '\r');
        p = q + 1;

        if (ngx_http_ai_gateway_sse_line(sse)) {
            *pos = p;
            ngx_http_ai_gateway_sse_event(sse, ev);
            return NGX_OK;
        }
    }

    *pos = p;

    return NGX_AGAIN;
}


ngx_int_t
ngx_http_ai_gateway_sse_eof(ngx_http_ai_gateway_sse_t *sse,
    ngx_uint_t partial, ngx_http_ai_gateway_sse_event_t *ev)
{
    if (sse->dispatched) {
        sse->dispatched = 0;
        sse->has_data = 0;
        sse->data = 0;
        sse->name_len = 0;
    }

    if (sse->line) {
        if (partial) {
            (void) ngx_http_ai_gateway_sse_line(sse);

        } else {
            sse->line = 0;
        }
    }

    if (!sse->has_data) {
        return NGX_DONE;
    }

    ngx_http_ai_gateway_sse_event(sse, ev);

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_sse_reserve(ngx_http_ai_gateway_sse_t *sse, size_t need)
{
    u_char  *p;
    size_t   size;

    if (need <= sse->size) {
        return NGX_OK;
    }

    size = sse->size ? sse->size * 2 : NGX_HTTP_AI_GATEWAY_SSE_BUF;

    while (size < need) {
        size *= 2;
    }

    if (size > NGX_HTTP_AI_GATEWAY_MAX_EVENT + 1) {
        size = NGX_HTTP_AI_GATEWAY_MAX_EVENT + 1;
    }

    p = ngx_pnalloc(sse->pool, size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (sse->buf != NULL) {
        ngx_memcpy(p, sse->buf, sse->data + sse->line);
        ngx_pfree(sse->pool, sse->buf);
    }

    sse->buf = p;
    sse->size = size;

    return NGX_OK;
}


/* a line is complete at buf + data; returns 1 when it ends an event */

static ngx_uint_t
ngx_http_ai_gateway_sse_line(ngx_http_ai_gateway_sse_t *sse)
{
    u_char  *line, *value, *colon;
    size_t   len, flen, vlen;

    len = sse->line;
    sse->line = 0;

    line = (len != 0) ? sse->buf + sse->data : NULL;

    if (!sse->started) {
        sse->started = 1;

        /* a UTF-8 byte order mark starts the stream */

        if (len >= 3 && line[0] == 0xef && line[1] == 0xbb && line[2] == 0xbf)
        {
            line += 3;
            len -= 3;
        }
    }

    if (len == 0) {
        if (sse->has_data) {
            return 1;
        }

        sse->name_len = 0;
        return 0;
    }

    if (line[0] == ':') {
        return 0;
    }

    colon = ngx_strlchr(line, line + len, ':');

    if (colon != NULL) {
        flen = colon - line;
        value = colon + 1;
        vlen = len - flen - 1;

        if (vlen && *value == ' ') {
            value++;
            vlen--;
        }

    } else {
        flen = len;
        value = line + len;
        vlen = 0;
    }

    if (flen == 4 && ngx_strncmp(line, "data", 4) == 0) {

        /* the value starts at least 4 bytes after buf + data + 1 */

        if (sse->has_data) {
            sse->buf[sse->data++] = '\n';
        }

        ngx_memmove(sse->buf + sse->data, value, vlen);
        sse->data += vlen;
        sse->has_data = 1;

        return 0;
    }

    if (flen == 5 && ngx_strncmp(line, "event", 5) == 0) {
        sse->name_len = ngx_min(vlen, NGX_HTTP_AI_GATEWAY_SSE_NAME);
        ngx_memcpy(sse->name, value, sse->name_len);
    }

    /* "id", "retry" and unknown fields are ignored */

    return 0;
}


static void
ngx_http_ai_gateway_sse_event(ngx_http_ai_gateway_sse_t *sse,
    ngx_http_ai_gateway_sse_event_t *ev)
{
    sse->buf[sse->data] = '\0';
    sse->dispatched = 1;

    ev->name.data = sse->name;
    ev->name.len = sse->name_len;
    ev->data.data = sse->buf;
    ev->data.len = sse->data;
}
