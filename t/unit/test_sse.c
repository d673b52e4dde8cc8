
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/* the SSE splitter: events are the same whatever the split */


#include "unit.h"


/*
 * events as "name|data\n" lines ("(raw)|data\n" for bare JSON), fed in
 * pieces of "step" bytes
 */

static u_char *
unit_sse_print(u_char *p, u_char *end, ngx_http_ai_gateway_sse_event_t *ev)
{
    if (ev->raw) {
        unit_check(ev->name.len == 0, "a bare JSON text has no name");
        return ngx_snprintf(p, end - p, "(raw)|%V\n", &ev->data);
    }

    return ngx_snprintf(p, end - p, "%V|%V\n", &ev->name, &ev->data);
}


static ngx_int_t
unit_sse_run(u_char *in, size_t len, size_t step, ngx_uint_t partial,
    u_char *out, size_t size, size_t *out_len)
{
    u_char                           *pos, *last, *p, *end;
    size_t                            off, n;
    ngx_int_t                         rc;
    ngx_pool_t                       *pool;
    ngx_http_ai_gateway_sse_t         sse;
    ngx_http_ai_gateway_sse_event_t   ev;

    pool = ngx_create_pool(4096, NULL);
    ngx_http_ai_gateway_sse_init(&sse, pool);

    p = out;
    end = out + size;
    rc = NGX_OK;

    for (off = 0; off < len; off += n) {
        n = step ? ngx_min(step, len - off) : len - off;

        pos = in + off;
        last = pos + n;

        for ( ;; ) {
            rc = ngx_http_ai_gateway_sse_parse(&sse, &pos, last, &ev);

            if (rc != NGX_OK) {
                break;
            }

            unit_check(ev.data.data[ev.data.len] == '\0', "NUL after data");

            p = unit_sse_print(p, end, &ev);
        }

        if (rc != NGX_AGAIN) {
            goto done;
        }
    }

    while (ngx_http_ai_gateway_sse_eof(&sse, partial, &ev) == NGX_OK) {
        unit_check(ev.data.data[ev.data.len] == '\0', "NUL after data");

        p = unit_sse_print(p, end, &ev);
    }

    rc = NGX_OK;

done:

    *out_len = p - out;
    ngx_destroy_pool(pool);

    return rc;
}


static void
unit_sse_case(const char *in, ngx_uint_t partial, const char *expected)
{
    u_char     out[4096], first[4096];
    size_t     len, n, first_len, step;
    ngx_int_t  rc;

    len = strlen(in);

    rc = unit_sse_run((u_char *) in, len, 0, partial, first, sizeof(first),
                      &first_len);

    unit_check(rc == NGX_OK && first_len == strlen(expected)
               && memcmp(first, expected, first_len) == 0,
               "sse %s: got \"%.*s\", expected \"%s\"", in, (int) first_len,
               first, expected);

    for (step = 1; step < len; step++) {
        rc = unit_sse_run((u_char *) in, len, step, partial, out, sizeof(out),
                          &n);

        unit_check(rc == NGX_OK && n == first_len
                   && memcmp(out, first, n) == 0,
                   "sse %s in pieces of %lu", in, (unsigned long) step);
    }
}


static void
unit_sse_long(void)
{
    char  in[1024], expected[1024];

    /* a CR-ended line of 600 bytes, then an LF-ended one of 300 */

    ngx_memcpy(in, "data: ", 6);
    ngx_memset(in + 6, 'x', 600);
    ngx_memcpy(in + 606, "\rdata: ", 7);
    ngx_memset(in + 613, 'y', 300);
    ngx_memcpy(in + 913, "\n\r\n", 4);
    in[917] = '\0';

    expected[0] = '|';
    ngx_memset(expected + 1, 'x', 600);
    expected[601] = '\n';
    ngx_memset(expected + 602, 'y', 300);
    ngx_memcpy(expected + 902, "\n", 2);

    unit_sse_case(in, 0, expected);

    /* CR-ended lines of one byte, many of them: the same events */

    unit_sse_case("data:a\r\rdata:b\r\rdata:c\r\rdata:d\r\r", 0,
                  "|a\n|b\n|c\n|d\n");
}


void
unit_sse(void)
{
    u_char     *big, out[256];
    size_t      n;
    ngx_int_t   rc;

    unit_sse_case("data: a\n\n", 0, "|a\n");

    /* lines longer than the window looked at for their end, CR and LF */

    unit_sse_long();
    unit_sse_case("data: a\r\n\r\n", 0, "|a\n");
    unit_sse_case("data: a\r\rdata: b\r\r", 0, "|a\n|b\n");
    unit_sse_case("event: x\ndata: a\ndata: b\n\n", 0, "x|a\nb\n");
    unit_sse_case("event: x\r\ndata:a\r\ndata:  b\r\n\r\n", 0, "x|a\n b\n");
    unit_sse_case(": comment\ndata: a\n: more\n\n", 0, "|a\n");
    unit_sse_case("id: 1\nretry: 5\ndata: a\nfoo\n\n", 0, "|a\n");
    unit_sse_case("data\n\n", 0, "|\n");
    unit_sse_case("data:\ndata:\n\n", 0, "|\n\n");
    unit_sse_case("event: only\n\ndata: a\n\n", 0, "|a\n");
    unit_sse_case("\n\n\ndata: a\n\n\n\n", 0, "|a\n");
    unit_sse_case("\xef\xbb\xbf" "data: a\n\n", 0, "|a\n");
    unit_sse_case("data: \xc3\xa9\xe4\xb8\x96\xf0\x9f\x8e\x89\n\n", 0,
                  "|\xc3\xa9\xe4\xb8\x96\xf0\x9f\x8e\x89\n");
    unit_sse_case("data: a\r\n\r\ndata: b\n\ndata: c\r\r", 0,
                  "|a\n|b\n|c\n");

    /* the body ends without the blank line, or mid-line */

    unit_sse_case("data: a\n\ndata: b\n", 0, "|a\n|b\n");
    unit_sse_case("data: a\n\ndata: b", 0, "|a\n");
    unit_sse_case("data: a\n\ndata: b", 1, "|a\n|b\n");
    unit_sse_case("data: a\r", 0, "|a\n");

    /*
     * bare JSON outside the SSE framing (Gemini's error part-way through
     * a stream): one line or pretty-printed, after an event or ending the
     * pending one, brackets in strings and escapes skipped
     */

    unit_sse_case("data: a\n\n{\"error\":{\"code\":499}}\n", 0,
                  "|a\n(raw)|{\"error\":{\"code\":499}}\n");
    unit_sse_case("data: a\r\n\r\n{\r\n  \"error\": {\r\n    \"code\": 499"
                  "\r\n  }\r\n}\r\n", 0,
                  "|a\n(raw)|{\n  \"error\": {\n    \"code\": 499\n  }\n}\n");
    unit_sse_case("data: a\n{\"e\":1}\n", 0, "|a\n(raw)|{\"e\":1}\n");
    unit_sse_case("event: x\ndata: a\n{\n\"e\":\"}]\"\n}\ndata: b\n\n", 0,
                  "x|a\n(raw)|{\n\"e\":\"}]\"\n}\n|b\n");
    unit_sse_case("{\"e\":\"\\\"}\\\\\"}\n", 0,
                  "(raw)|{\"e\":\"\\\"}\\\\\"}\n");
    unit_sse_case("[{\"error\":{}}]\r[1]\r", 0,
                  "(raw)|[{\"error\":{}}]\n(raw)|[1]\n");
    unit_sse_case("{\n\n\"e\":1}\n", 0, "(raw)|{\n\"e\":1}\n");
    unit_sse_case("\xef\xbb\xbf{\"e\":1}\n", 0, "(raw)|{\"e\":1}\n");
    unit_sse_case("event: x\n{\"e\":1}\n", 0, "(raw)|{\"e\":1}\n");
    unit_sse_case("{\"e\":1} tail\n", 0, "(raw)|{\"e\":1} tail\n");
    unit_sse_case("data: a\n\n{\"e\":1}", 1, "|a\n(raw)|{\"e\":1}\n");
    unit_sse_case("data: a\n\n{\"e\":1}", 0, "|a\n");
    unit_sse_case("data: a\n\n{\"e\":\n", 1, "|a\n(raw)|{\"e\":\n");
    unit_sse_case("data: a\n\n{\"e\":\n", 0, "|a\n");
    unit_sse_case("data: a\n{\"e\":\n", 0, "|a\n");
    unit_sse_case("data: a\n{\"e\":", 1, "|a\n(raw)|{\"e\":\n");

    /* an event at the limit, then one byte over it */

    n = NGX_HTTP_AI_GATEWAY_MAX_EVENT;
    big = malloc(n + 16);

    memcpy(big, "data:", 5);
    memset(big + 5, 'x', n - 5);
    memcpy(big + n, "\n\n", 2);

    rc = unit_sse_run(big, n + 2, 65536, 0, out, sizeof(out), &n);
    unit_check(rc == NGX_OK && n == sizeof(out),
               "an event of the largest size");

    n = NGX_HTTP_AI_GATEWAY_MAX_EVENT;
    memcpy(big, "data:", 5);
    memset(big + 5, 'x', n - 4);
    memcpy(big + n + 1, "\n\n", 2);

    rc = unit_sse_run(big, n + 3, 65536, 0, out, sizeof(out), &n);
    unit_check(rc == NGX_DECLINED, "an event over the largest size");

    /* a bare JSON text at the limit (with the LF joining its lines) */

    n = NGX_HTTP_AI_GATEWAY_MAX_EVENT;
    big[0] = '[';
    memset(big + 1, 'x', 1000);
    big[1001] = '\n';
    memset(big + 1002, 'x', n - 1002);
    big[n] = ']';
    big[n + 1] = '\n';

    rc = unit_sse_run(big, n + 2, 65536, 0, out, sizeof(out), &n);
    unit_check(rc == NGX_OK && n == sizeof(out) && out[0] == '(',
               "a bare JSON text of the largest size");

    n = NGX_HTTP_AI_GATEWAY_MAX_EVENT;
    memset(big + 1002, 'x', n - 1001);
    big[n + 1] = ']';
    big[n + 2] = '\n';

    rc = unit_sse_run(big, n + 3, 65536, 0, out, sizeof(out), &n);
    unit_check(rc == NGX_DECLINED, "a bare JSON text over the largest size");

    /* a long comment line counts too */

    n = NGX_HTTP_AI_GATEWAY_MAX_EVENT;
    big[0] = ':';
    memset(big + 1, 'y', n);
    big[n + 1] = '\n';

    rc = unit_sse_run(big, n + 2, 4096, 0, out, sizeof(out), &n);
    unit_check(rc == NGX_DECLINED, "a line over the largest size");

    free(big);
}
