
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_gateway_buf.h"
#include "ngx_http_ai_gateway_sse.h"


/*
 * The server-sent events splitter described in ngx_http_ai_gateway_sse.h:
 * a line at a time into one pool buffer that grows up to
 * NGX_HTTP_AI_GATEWAY_MAX_EVENT, the event's data kept at its start and
 * the current line after it.  It knows bytes only: neither JSON nor the
 * translators.
 */


#define NGX_HTTP_AI_GATEWAY_SSE_BUF  4096

/* the bytes looked at for a line's end at a time */
#define NGX_HTTP_AI_GATEWAY_SSE_WINDOW  256


static ngx_uint_t ngx_http_ai_gateway_sse_next(
    ngx_http_ai_gateway_sse_t *sse);
static ngx_int_t ngx_http_ai_gateway_sse_reserve(
    ngx_http_ai_gateway_sse_t *sse, size_t need);
static ngx_uint_t ngx_http_ai_gateway_sse_line(ngx_http_ai_gateway_sse_t *sse);
static ngx_uint_t ngx_http_ai_gateway_sse_json(ngx_http_ai_gateway_sse_t *sse,
    u_char *line, size_t len);
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
    u_char  *p, *q, *cr, *lf, *end;
    size_t   n;

    if (ngx_http_ai_gateway_sse_next(sse)) {
        ngx_http_ai_gateway_sse_event(sse, ev);
        return NGX_OK;
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

        /*
         * The line's end, CR or LF: memchr() looks at many bytes at a
         * time, within a window, so that a line costs its length whichever
         * of the two ends it.
         */

        for (q = p; q < last; q = end) {
            end = ((size_t) (last - q) > NGX_HTTP_AI_GATEWAY_SSE_WINDOW)
                  ? q + NGX_HTTP_AI_GATEWAY_SSE_WINDOW : last;

            lf = memchr(q, '\n', end - q);

            if (lf != NULL) {
                end = lf;
            }

            cr = memchr(q, '\r', end - q);

            if (cr != NULL) {
                q = cr;
                break;
            }

            if (lf != NULL) {
                q = lf;
                break;
            }
        }

        n = q - p;

        if (n) {
            if (sse->data + sse->line + n > NGX_HTTP_AI_GATEWAY_MAX_EVENT) {
                *pos = q;
                return NGX_DECLINED;
            }

            /* one more byte: the LF joining the lines of bare JSON */

            if (ngx_http_ai_gateway_sse_reserve(sse,
                                                sse->data + sse->line + n + 2)
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
    if (ngx_http_ai_gateway_sse_next(sse)) {
        ngx_http_ai_gateway_sse_event(sse, ev);
        return NGX_OK;
    }

    if (sse->line) {
        if (partial) {
            (void) ngx_http_ai_gateway_sse_line(sse);

        } else {
            sse->line = 0;
        }
    }

    if (!sse->has_data || (sse->raw && !partial)) {
        sse->has_data = 0;
        return NGX_DONE;
    }

    ngx_http_ai_gateway_sse_event(sse, ev);

    return NGX_OK;
}


/*
 * After an event: the buffer is free again.  A line that started a bare
 * JSON text and ended the event before it is moved to the buffer's start
 * (its first byte was overwritten by the event's NUL); returns 1 when that
 * line is a whole JSON text already.
 */

static ngx_uint_t
ngx_http_ai_gateway_sse_next(ngx_http_ai_gateway_sse_t *sse)
{
    u_char  *line;
    size_t   held;

    if (!sse->dispatched) {
        return 0;
    }

    line = sse->buf + sse->data;
    held = sse->held;

    sse->dispatched = 0;
    sse->has_data = 0;
    sse->raw = 0;
    sse->data = 0;
    sse->name_len = 0;
    sse->held = 0;

    if (held == 0) {
        return 0;
    }

    line[0] = sse->held_first;

    return ngx_http_ai_gateway_sse_json(sse, line, held);
}


static ngx_int_t
ngx_http_ai_gateway_sse_reserve(ngx_http_ai_gateway_sse_t *sse, size_t need)
{
    return ngx_http_ai_gateway_reserve(sse->pool, &sse->buf, &sse->size,
                                       sse->data + sse->line, need,
                                       NGX_HTTP_AI_GATEWAY_SSE_BUF,
                                       NGX_HTTP_AI_GATEWAY_MAX_EVENT + 2);
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

    if (sse->raw) {
        /* a line of a bare JSON text; empty ones are whitespace */
        return len ? ngx_http_ai_gateway_sse_json(sse, line, len) : 0;
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

    if (line[0] == '{' || line[0] == '[') {

        if (sse->has_data) {
            /* the pending event ends here, the line waits for it */
            sse->held = len;
            sse->held_first = line[0];
            return 1;
        }

        return ngx_http_ai_gateway_sse_json(sse, line, len);
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


/*
 * A line of a bare JSON text, at or after buf + data: appended to the
 * text; returns 1 when the text's brackets are balanced (strings and
 * escapes skipped), which ends it.
 */

static ngx_uint_t
ngx_http_ai_gateway_sse_json(ngx_http_ai_gateway_sse_t *sse, u_char *line,
    size_t len)
{
    u_char  *p, *last;

    if (!sse->raw) {
        sse->raw = 1;
        sse->depth = 0;
        sse->string = 0;
        sse->escape = 0;
        sse->name_len = 0;
    }

    /* the LF before the line fits: the buffer has one more byte */

    if (sse->has_data) {
        ngx_memmove(sse->buf + sse->data + 1, line, len);
        sse->buf[sse->data++] = '\n';

    } else {
        ngx_memmove(sse->buf, line, len);
        sse->has_data = 1;
    }

    p = sse->buf + sse->data;
    last = p + len;

    sse->data += len;

    for ( /* void */ ; p < last; p++) {

        if (sse->string) {
            if (sse->escape) {
                sse->escape = 0;

            } else if (*p == '\\') {
                sse->escape = 1;

            } else if (*p == '"') {
                sse->string = 0;
            }

            continue;
        }

        switch (*p) {

        case '"':
            sse->string = 1;
            break;

        case '{':
        case '[':
            sse->depth++;
            break;

        case '}':
        case ']':
            if (sse->depth && --sse->depth == 0) {
                return 1;
            }

            break;
        }
    }

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
    ev->raw = sse->raw;
}
