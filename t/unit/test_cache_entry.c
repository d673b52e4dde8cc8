
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/* the cache entry codec: entries written and read back, crafted ones */


#include "unit.h"
#include "ngx_http_ai_gateway_cache_entry.h"


/* an entry: "AIG2", status, count, then the given bytes */

static size_t
unit_entry(u_char *buf, uint32_t status, uint32_t n, const char *rest,
    size_t len)
{
    u_char  *p;

    p = ngx_cpymem(buf, "AIG2", 4);

    *p++ = (u_char) (status >> 24); *p++ = (u_char) (status >> 16);
    *p++ = (u_char) (status >> 8); *p++ = (u_char) status;
    *p++ = (u_char) (n >> 24); *p++ = (u_char) (n >> 16);
    *p++ = (u_char) (n >> 8); *p++ = (u_char) n;

    p = ngx_cpymem(p, rest, len);

    return p - buf;
}


static void
unit_refused(const char *what, u_char *p, size_t len, const char *error)
{
    ngx_http_ai_gateway_cache_entry_t  e;

    unit_check(ngx_http_ai_gateway_cache_entry_decode(p, len, &e)
               == NGX_DECLINED, "%s: accepted", what);

    unit_check(e.error && strcmp(e.error, error) == 0,
               "%s: \"%s\", not \"%s\"", what, e.error ? e.error : "(null)",
               error);
}


static void
unit_round_trip(void)
{
    u_char                             *p, buf[512];
    size_t                              len;
    ngx_http_ai_gateway_cache_entry_t   e, d;

    ngx_memzero(&e, sizeof(e));

    e.status = 200;
    e.has_content_type = 1;
    ngx_str_set(&e.content_type, "text/event-stream; charset=utf-8");
    e.nheaders = 2;
    ngx_str_set(&e.headers[0].key, "x-request-id");
    ngx_str_set(&e.headers[0].value, "req_1");
    ngx_str_set(&e.headers[1].key, "anthropic-ratelimit-requests-limit");
    ngx_str_set(&e.headers[1].value, "50");

    unit_check(ngx_http_ai_gateway_cache_entry_check(&e) == NGX_OK,
               "round trip: check: %s", e.error);

    len = ngx_http_ai_gateway_cache_entry_head_size(&e);
    p = ngx_http_ai_gateway_cache_entry_write_head(buf, &e);

    unit_check((size_t) (p - buf) == len, "round trip: head size");

    p = ngx_cpymem(p, "data: {}\n\n", 10);
    ngx_http_ai_gateway_cache_entry_set_body(buf, len, 10);

    unit_check(ngx_http_ai_gateway_cache_entry_decode(buf, p - buf, &d)
               == NGX_OK, "round trip: refused: %s", d.error);

    unit_check(d.status == 200 && d.nheaders == 2 && d.has_content_type
               && d.content_type.len == e.content_type.len
               && d.body.len == 10
               && ngx_strncmp(d.body.data, "data: {}\n\n", 10) == 0
               && d.headers[1].value.len == 2,
               "round trip: decoded differently");

    /* one byte less, one byte more */

    unit_refused("round trip, truncated", buf, p - buf - 1,
                 "body shorter than declared");

    *p = 'x';
    unit_refused("round trip, longer", buf, p - buf + 1,
                 "bytes after the body");

    /* the encoder refuses what the decoder would */

    ngx_str_set(&e.headers[1].key, "Set-Cookie");
    unit_check(ngx_http_ai_gateway_cache_entry_check(&e) == NGX_DECLINED,
               "encoder: Set-Cookie taken");

    ngx_str_set(&e.headers[1].key, "x-request-id");
    ngx_str_set(&e.headers[1].value, "a\r\nSet-Cookie: b");
    unit_check(ngx_http_ai_gateway_cache_entry_check(&e) == NGX_DECLINED,
               "encoder: CRLF taken");

    e.status = 204;
    ngx_str_set(&e.headers[1].value, "b");
    unit_check(ngx_http_ai_gateway_cache_entry_check(&e) == NGX_DECLINED,
               "encoder: 204 taken");
}


static void
unit_crafted(void)
{
    u_char  buf[256];
    size_t  len;

#define unit_bytes(s)  s, sizeof(s) - 1

    /* a name length that wraps a 32-bit "klen + 4" */

    len = unit_entry(buf, 200, 1, unit_bytes("\xff\xff\xff\xfd" "abcdefgh"
                                             "\0\0\0\0\0\0\0\0"));
    unit_refused("name length 0xfffffffd", buf, len, "truncated");

    len = unit_entry(buf, 200, 1, unit_bytes("\0\0\0\x0cx-request-id"
                                             "\xff\xff\xff\xf8" "abcdefgh"));
    unit_refused("value length 0xfffffff8", buf, len, "truncated");

    len = unit_entry(buf, 200, 0, unit_bytes("\xff\xff\xff\xff\xff\xff\xff"
                                             "\xff" "{}"));
    unit_refused("body length 2^64-1", buf, len,
                 "body shorter than declared");

    len = unit_entry(buf, 200, 0xffffffff, unit_bytes("\0\0\0\0\0\0\0\0"));
    unit_refused("2^32-1 headers", buf, len, "too many headers");

    len = unit_entry(buf, 200, 1, unit_bytes("\0\0\0\x0cx-request-id"
                                             "\0\0\0\x0d" "a\r\nSet-Cookie"
                                             "\0\0\0\0\0\0\0\0"));
    unit_refused("CRLF in a value", buf, len, "invalid header value");

    len = unit_entry(buf, 200, 1, unit_bytes("\0\0\0\x08" "bad name"
                                             "\0\0\0\x01" "v"
                                             "\0\0\0\0\0\0\0\0"));
    unit_refused("space in a name", buf, len, "invalid header name");

    len = unit_entry(buf, 200, 1, unit_bytes("\0\0\0\x0aSet-Cookie"
                                             "\0\0\0\x01" "v"
                                             "\0\0\0\0\0\0\0\0"));
    unit_refused("Set-Cookie", buf, len, "header not kept by the cache");

    len = unit_entry(buf, 200, 2, unit_bytes("\0\0\0\x0c" "content-type"
                                             "\0\0\0\x01" "a"
                                             "\0\0\0\x0c" "Content-Type"
                                             "\0\0\0\x01" "b"
                                             "\0\0\0\0\0\0\0\0"));
    unit_refused("two Content-Types", buf, len, "Content-Type twice");

    len = unit_entry(buf, 204, 0, unit_bytes("\0\0\0\0\0\0\0\0"));
    unit_refused("status 204", buf, len, "status");

    len = unit_entry(buf, 0xffffffff, 0, unit_bytes("\0\0\0\0\0\0\0\0"));
    unit_refused("status 2^32-1", buf, len, "status");

    len = unit_entry(buf, 200, 0, unit_bytes("\0\0\0\0\0\0\0"));
    unit_refused("no body length", buf, len, "too short");

    unit_refused("AIG1", (u_char *) "AIG1\0\0\0\xc8\0\0\0\0\0\0\0\0\0\0\0\0",
                 20, "not an entry of this version");

    len = unit_entry(buf, 200, 0, unit_bytes("\0\0\0\0\0\0\0\0"));

    {
        ngx_http_ai_gateway_cache_entry_t  e;

        unit_check(ngx_http_ai_gateway_cache_entry_decode(buf, len, &e)
                   == NGX_OK && e.body.len == 0 && !e.has_content_type,
                   "an empty entry refused");
    }

#undef unit_bytes
}


/* entries the gateway stored (fuzz/seeds/cache_entry) decode */

static void
unit_seeds(void)
{
    u_char                             *p;
    size_t                              len;
    ngx_uint_t                          i;
    ngx_http_ai_gateway_cache_entry_t   e;

    static const char  *seeds[] = {
        "fuzz/seeds/cache_entry/openai-json",
        "fuzz/seeds/cache_entry/openai-sse",
        "fuzz/seeds/cache_entry/anthropic-json",
        "fuzz/seeds/cache_entry/anthropic-sse",
        "fuzz/seeds/cache_entry/compat-anthropic",
        "fuzz/seeds/cache_entry/embeddings",
        NULL
    };

    for (i = 0; seeds[i]; i++) {
        p = unit_read(seeds[i], &len);

        unit_check(p != NULL, "%s: not read", seeds[i]);

        if (p == NULL) {
            continue;
        }

        unit_check(ngx_http_ai_gateway_cache_entry_decode(p, len, &e)
                   == NGX_OK && e.status == 200 && e.has_content_type
                   && e.nheaders >= 1 && e.body.len > 0,
                   "%s: refused: %s", seeds[i], e.error);

        free(p);
    }
}


void
unit_cache_entries(void)
{
    unit_round_trip();
    unit_crafted();
    unit_seeds();
}
