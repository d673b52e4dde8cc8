
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#ifndef _NGX_HTTP_AI_GATEWAY_SSE_H_INCLUDED_
#define _NGX_HTTP_AI_GATEWAY_SSE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * An incremental server-sent events splitter.  Bytes go in split anywhere
 * (mid-line, between CR and LF, mid-UTF-8); complete events come out, one
 * at a time: the "event" field and the "data" lines joined with LF.  Lines
 * end with LF, CRLF or CR; comments (":...") and "id" / "retry" fields are
 * skipped.  One buffer holds the event's data and the current line, never
 * more than NGX_HTTP_AI_GATEWAY_MAX_EVENT bytes.
 *
 * A line that starts with "{" or "[" is no SSE field (WHATWG would read a
 * field named '{"error"' and ignore it): it starts a bare JSON text, which
 * Gemini sends, pretty-printed over several lines, when a stream fails
 * part-way.  Its lines are collected (joined with LF) until its brackets
 * are balanced, and it comes out as an event of its own, marked "raw"; an
 * event pending before it ends there.
 */


/* the longest SSE event a stream translator accepts (then: an error) */
#define NGX_HTTP_AI_GATEWAY_MAX_EVENT  (1024 * 1024)

#define NGX_HTTP_AI_GATEWAY_SSE_NAME   64


typedef struct {
    ngx_pool_t                    *pool;
    u_char                        *buf;        /* data, then the line */
    size_t                         size;
    size_t                         data;       /* joined data length */
    size_t                         line;       /* current line length */
    size_t                         name_len;
    u_char                         name[NGX_HTTP_AI_GATEWAY_SSE_NAME];
    size_t                         depth;      /* bare JSON: open brackets */
    size_t                         held;       /* a line starting bare JSON,
                                                  after the event it ends */
    u_char                         held_first;
    unsigned                       cr:1;       /* a CR ended the last line */
    unsigned                       has_data:1;
    unsigned                       dispatched:1;
    unsigned                       started:1;  /* the first line is done */
    unsigned                       raw:1;      /* in a bare JSON text */
    unsigned                       string:1;   /* ... in a string */
    unsigned                       escape:1;   /* ... after a backslash */
} ngx_http_ai_gateway_sse_t;


typedef struct {
    ngx_str_t                      name;       /* empty without "event:" */
    ngx_str_t                      data;       /* data.data[data.len] == 0 */
    unsigned                       raw:1;      /* a bare JSON text, not an
                                                  SSE event */
} ngx_http_ai_gateway_sse_event_t;


void ngx_http_ai_gateway_sse_init(ngx_http_ai_gateway_sse_t *sse,
    ngx_pool_t *pool);

/*
 * Consumes bytes from *pos up to last.  NGX_OK: an event is complete, *pos
 * is just after it and ev points into the splitter's buffer until the next
 * call; NGX_AGAIN: all bytes consumed, no event yet; NGX_DECLINED: an event
 * or a line is longer than NGX_HTTP_AI_GATEWAY_MAX_EVENT; NGX_ERROR: no
 * memory.
 */
ngx_int_t ngx_http_ai_gateway_sse_parse(ngx_http_ai_gateway_sse_t *sse,
    u_char **pos, u_char *last, ngx_http_ai_gateway_sse_event_t *ev);

/*
 * The body ended: a pending event without its blank line is given out
 * (NGX_OK), as is an unterminated last line when "partial" is set;
 * NGX_DONE when nothing is left.  An unfinished bare JSON text is given
 * out only when "partial" is set (the body ended normally).
 */
ngx_int_t ngx_http_ai_gateway_sse_eof(ngx_http_ai_gateway_sse_t *sse,
    ngx_uint_t partial, ngx_http_ai_gateway_sse_event_t *ev);


#endif /* _NGX_HTTP_AI_GATEWAY_SSE_H_INCLUDED_ */
