
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/*
 * byte 0: the provider (bit 0), include_usage (bit 1), the body complete
 * (bit 2); byte 1: a seed for the split points; then a native SSE body.
 *
 * The body is translated whole, then in pieces whose sizes come from the
 * seed and the bytes: both outputs must be the same, every event a JSON
 * text (or [DONE]), and the stream must end with [DONE] or an error.
 */


#include "fuzz.h"


typedef struct {
    u_char                        *buf;
    size_t                         len;
    size_t                         size;
} fuzz_out_t;


static void
fuzz_append(fuzz_out_t *o, ngx_str_t *s)
{
    if (o->len + s->len > o->size) {
        o->size = ngx_max(o->size * 2, o->len + s->len);
        o->buf = realloc(o->buf, o->size);
    }

    if (s->len) {
        memcpy(o->buf + o->len, s->data, s->len);
        o->len += s->len;
    }
}


static void
fuzz_run(ngx_http_ai_gateway_translator_t *t, ngx_uint_t flags,
    const uint8_t *p, size_t len, ngx_uint_t seed, fuzz_out_t *o)
{
    size_t                          off, n;
    ngx_str_t                       out;
    ngx_pool_t                     *pool;
    ngx_http_ai_gateway_compat_t    c;
    ngx_http_ai_gateway_stream_t   *s;

    pool = ngx_create_pool(4096, NULL);
    fuzz_compat(&c, (flags >> 1) & 1);

    s = t->stream_create(pool, &c);
    if (s == NULL) {
        abort();
    }

    for (off = 0; off < len; off += n) {

        if (seed == 0) {
            n = len - off;

        } else {
            n = 1 + (p[off] ^ seed) % (seed & 0x3f ? seed & 0x3f : 64);
            n = ngx_min(n, len - off);
        }

        if (t->stream_feed(s, (u_char *) p + off, n, &out) != NGX_OK) {
            abort();
        }

        fuzz_append(o, &out);
    }

    if (t->stream_finish(s, (flags >> 2) & 1, &out) != NGX_OK) {
        abort();
    }

    fuzz_append(o, &out);

    ngx_destroy_pool(pool);
}


static void
fuzz_check(fuzz_out_t *o)
{
    u_char  *p, *last, *end;

    p = o->buf;
    last = o->buf + o->len;

    if (o->len < 14) {
        abort();
    }

    while (p < last) {
        end = (u_char *) memmem(p, last - p, "\n\n", 2);

        if (end == NULL || last - p < 6 || ngx_strncmp(p, "data: ", 6) != 0)
        {
            abort();
        }

        if (end - p == 12 && ngx_strncmp(p, "data: [DONE]", 12) == 0) {
            if (end + 2 != last) {
                abort();
            }

        } else {
            fuzz_json(p + 6, end - p - 6);
        }

        p = end + 2;
    }

    if (ngx_strncmp(last - 14, "data: [DONE]\n\n", 14) != 0
        && memmem(o->buf, o->len, "data: {\"error\":", 15) == NULL)
    {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_out_t                         whole, split;
    ngx_http_ai_gateway_translator_t  *t;

    if (size < 2) {
        return 0;
    }

    t = fuzz_translator(data[0]);

    ngx_memzero(&whole, sizeof(fuzz_out_t));
    ngx_memzero(&split, sizeof(fuzz_out_t));

    fuzz_run(t, data[0], data + 2, size - 2, 0, &whole);
    fuzz_run(t, data[0], data + 2, size - 2, data[1] | 1, &split);

    if (whole.len != split.len
        || memcmp(whole.buf, split.buf, whole.len) != 0)
    {
        fprintf(stderr, "split output differs\n");
        abort();
    }

    fuzz_check(&whole);

    free(whole.buf);
    free(split.buf);

    return 0;
}
