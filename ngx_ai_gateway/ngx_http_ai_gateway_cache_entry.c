
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_gateway_check.h"
#include "ngx_http_ai_gateway_cache_entry.h"


/*
 * The bytes of a cache entry, the same in the shared memory zone and in
 * Redis:
 *
 *   "AIG2"
 *   status                      4 bytes, big-endian
 *   number of headers           4 bytes
 *   each header                 name length (4 bytes), name,
 *                               value length (4 bytes), value
 *   body length                 8 bytes
 *   body
 *
 * Whoever can write to the store can write an entry, so an entry read back
 * is untrusted input.  The decoder is a pure function (bytes in, a struct
 * out, nothing of nginx's HTTP side) so that it can be unit tested and
 * fuzzed.  It never adds a length read from the entry to anything: each
 * length is compared with what is left of the entry first, then taken off
 * it.  It accepts exactly what the encoder writes: a 2xx status but 204,
 * Content-Type at most once, the provider request-id headers the cache
 * keeps and nothing else, names and values that pass the module's one
 * validator, and a body of exactly the declared length.  Anything else
 * refuses the whole entry, with a reason that names no header value.
 */


static ngx_str_t  ngx_http_ai_gateway_cache_entry_magic =
    ngx_string("AIG2");

static ngx_str_t  ngx_http_ai_gateway_cache_entry_ct =
    ngx_string("Content-Type");


/* headers an entry keeps besides Content-Type; "-" at the end: a prefix */

static ngx_str_t  ngx_http_ai_gateway_cache_entry_ids[] = {
    ngx_string("x-request-id"),
    ngx_string("request-id"),
    ngx_string("apim-request-id"),
    ngx_string("x-amzn-requestid"),
    ngx_string("openai-"),
    ngx_string("anthropic-"),
    ngx_null_string
};


#define ngx_http_ai_gateway_get32(p)                                          \
    (((uint32_t) (p)[0] << 24) | ((uint32_t) (p)[1] << 16)                    \
     | ((uint32_t) (p)[2] << 8) | (uint32_t) (p)[3])

#define ngx_http_ai_gateway_put32(p, v)                                       \
    (p)[0] = (u_char) ((v) >> 24); (p)[1] = (u_char) ((v) >> 16);             \
    (p)[2] = (u_char) ((v) >> 8); (p)[3] = (u_char) (v); (p) += 4


static ngx_int_t ngx_http_ai_gateway_cache_entry_header(
    ngx_http_ai_gateway_cache_entry_t *e, u_char *name, size_t nlen,
    u_char *value, size_t vlen);


/* a header the cache keeps (other than Content-Type) */

ngx_uint_t
ngx_http_ai_gateway_cache_entry_keeps(u_char *name, size_t len)
{
    ngx_str_t  *s;

    for (s = ngx_http_ai_gateway_cache_entry_ids; s->len; s++) {

        if (len < s->len || ngx_strncasecmp(name, s->data, s->len) != 0) {
            continue;
        }

        if (len == s->len) {
            return s->data[s->len - 1] != '-';
        }

        if (s->data[s->len - 1] == '-') {
            return 1;
        }
    }

    return 0;
}


/* an entry about to be written: would the decoder take it back? */

ngx_int_t
ngx_http_ai_gateway_cache_entry_check(ngx_http_ai_gateway_cache_entry_t *e)
{
    ngx_uint_t  i;

    e->error = NULL;
    e->header = 0;

    if (e->status < 200 || e->status > 299 || e->status == 204) {
        e->error = "status";
        return NGX_DECLINED;
    }

    if (e->nheaders > NGX_HTTP_AI_GATEWAY_CACHE_HEADERS) {
        e->error = "too many headers";
        return NGX_DECLINED;
    }

    if (e->has_content_type
        && ((uint64_t) e->content_type.len > 0xffffffff
            || ngx_http_ai_gateway_check_value(e->content_type.data,
                                               e->content_type.len)
               != NGX_OK))
    {
        e->error = "invalid header value";
        return NGX_DECLINED;
    }

    for (i = 0; i < e->nheaders; i++) {
        e->header = i + 1 + e->has_content_type;

        if ((uint64_t) e->headers[i].key.len > 0xffffffff
            || (uint64_t) e->headers[i].value.len > 0xffffffff)
        {
            e->error = "header too long";
            return NGX_DECLINED;
        }

        if (ngx_http_ai_gateway_check_name(e->headers[i].key.data,
                                           e->headers[i].key.len)
            != NGX_OK)
        {
            e->error = "invalid header name";
            return NGX_DECLINED;
        }

        if (ngx_http_ai_gateway_check_value(e->headers[i].value.data,
                                            e->headers[i].value.len)
            != NGX_OK)
        {
            e->error = "invalid header value";
            return NGX_DECLINED;
        }

        if (!ngx_http_ai_gateway_cache_entry_keeps(e->headers[i].key.data,
                                                   e->headers[i].key.len))
        {
            e->error = "header not kept by the cache";
            return NGX_DECLINED;
        }
    }

    e->header = 0;

    return NGX_OK;
}


/* the bytes before the body; the entry's buffer starts with them */

size_t
ngx_http_ai_gateway_cache_entry_head_size(
    ngx_http_ai_gateway_cache_entry_t *e)
{
    size_t      len;
    ngx_uint_t  i;

    len = 12 + 8;

    if (e->has_content_type) {
        len += 8 + ngx_http_ai_gateway_cache_entry_ct.len
               + e->content_type.len;
    }

    for (i = 0; i < e->nheaders; i++) {
        len += 8 + e->headers[i].key.len + e->headers[i].value.len;
    }

    return len;
}


/* writes the head of a checked entry; the body length is set later */

u_char *
ngx_http_ai_gateway_cache_entry_write_head(u_char *p,
    ngx_http_ai_gateway_cache_entry_t *e)
{
    size_t      n;
    ngx_uint_t  i;

    p = ngx_cpymem(p, ngx_http_ai_gateway_cache_entry_magic.data,
                   ngx_http_ai_gateway_cache_entry_magic.len);

    n = e->nheaders + e->has_content_type;

    ngx_http_ai_gateway_put32(p, e->status);
    ngx_http_ai_gateway_put32(p, n);

    if (e->has_content_type) {
        ngx_http_ai_gateway_put32(p, ngx_http_ai_gateway_cache_entry_ct.len);
        p = ngx_cpymem(p, ngx_http_ai_gateway_cache_entry_ct.data,
                       ngx_http_ai_gateway_cache_entry_ct.len);
        ngx_http_ai_gateway_put32(p, e->content_type.len);
        p = ngx_cpymem(p, e->content_type.data, e->content_type.len);
    }

    for (i = 0; i < e->nheaders; i++) {
        ngx_http_ai_gateway_put32(p, e->headers[i].key.len);
        p = ngx_cpymem(p, e->headers[i].key.data, e->headers[i].key.len);
        ngx_http_ai_gateway_put32(p, e->headers[i].value.len);
        p = ngx_cpymem(p, e->headers[i].value.data, e->headers[i].value.len);
    }

    ngx_memzero(p, 8);

    return p + 8;
}


/* the body length, at the end of the head */

void
ngx_http_ai_gateway_cache_entry_set_body(u_char *head, size_t head_size,
    size_t len)
{
    u_char    *p;
    uint64_t   n;

    n = len;
    p = head + head_size - 8;

    ngx_http_ai_gateway_put32(p, (uint32_t) (n >> 32));
    ngx_http_ai_gateway_put32(p, (uint32_t) n);
}


/*
 * NGX_OK: e describes the entry, its pieces point into p.  NGX_DECLINED:
 * the entry is refused, e->error says why (e->header: in which header,
 * counted from 1).
 */

ngx_int_t
ngx_http_ai_gateway_cache_entry_decode(u_char *p, size_t len,
    ngx_http_ai_gateway_cache_entry_t *e)
{
    u_char      *name, *value;
    size_t       left, nlen, vlen;
    uint32_t     i, n;
    uint64_t     blen;

    e->status = 0;
    e->nheaders = 0;
    e->has_content_type = 0;
    e->error = NULL;
    e->header = 0;
    ngx_str_null(&e->content_type);
    ngx_str_null(&e->body);

    left = len;

    if (left < 12 + 8) {
        e->error = "too short";
        return NGX_DECLINED;
    }

    if (ngx_memcmp(p, ngx_http_ai_gateway_cache_entry_magic.data, 4) != 0) {
        e->error = "not an entry of this version";
        return NGX_DECLINED;
    }

    e->status = ngx_http_ai_gateway_get32(p + 4);

    if (e->status < 200 || e->status > 299 || e->status == 204) {
        e->error = "status";
        return NGX_DECLINED;
    }

    n = ngx_http_ai_gateway_get32(p + 8);

    if (n > NGX_HTTP_AI_GATEWAY_CACHE_HEADERS + 1) {
        e->error = "too many headers";
        return NGX_DECLINED;
    }

    p += 12;
    left -= 12;

    for (i = 0; i < n; i++) {
        e->header = i + 1;

        if (left < 4) {
            goto truncated;
        }

        nlen = ngx_http_ai_gateway_get32(p);
        p += 4;
        left -= 4;

        if (nlen > left) {
            goto truncated;
        }

        name = p;
        p += nlen;
        left -= nlen;

        if (left < 4) {
            goto truncated;
        }

        vlen = ngx_http_ai_gateway_get32(p);
        p += 4;
        left -= 4;

        if (vlen > left) {
            goto truncated;
        }

        value = p;
        p += vlen;
        left -= vlen;

        if (ngx_http_ai_gateway_cache_entry_header(e, name, nlen, value, vlen)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }
    }

    e->header = 0;

    if (left < 8) {
        goto truncated;
    }

    blen = (uint64_t) ngx_http_ai_gateway_get32(p) << 32
           | ngx_http_ai_gateway_get32(p + 4);
    p += 8;
    left -= 8;

    if (blen > left) {
        e->error = "body shorter than declared";
        return NGX_DECLINED;
    }

    if (blen < left) {
        e->error = "bytes after the body";
        return NGX_DECLINED;
    }

    e->body.data = p;
    e->body.len = left;

    return NGX_OK;

truncated:

    e->error = "truncated";
    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_ai_gateway_cache_entry_header(ngx_http_ai_gateway_cache_entry_t *e,
    u_char *name, size_t nlen, u_char *value, size_t vlen)
{
    if (ngx_http_ai_gateway_check_name(name, nlen) != NGX_OK) {
        e->error = "invalid header name";
        return NGX_DECLINED;
    }

    if (ngx_http_ai_gateway_check_value(value, vlen) != NGX_OK) {
        e->error = "invalid header value";
        return NGX_DECLINED;
    }

    if (nlen == ngx_http_ai_gateway_cache_entry_ct.len
        && ngx_strncasecmp(name, ngx_http_ai_gateway_cache_entry_ct.data,
                           nlen)
           == 0)
    {
        if (e->has_content_type) {
            e->error = "Content-Type twice";
            return NGX_DECLINED;
        }

        e->has_content_type = 1;
        e->content_type.data = value;
        e->content_type.len = vlen;

        return NGX_OK;
    }

    if (!ngx_http_ai_gateway_cache_entry_keeps(name, nlen)) {
        e->error = "header not kept by the cache";
        return NGX_DECLINED;
    }

    if (e->nheaders == NGX_HTTP_AI_GATEWAY_CACHE_HEADERS) {
        e->error = "too many headers";
        return NGX_DECLINED;
    }

    e->headers[e->nheaders].key.data = name;
    e->headers[e->nheaders].key.len = nlen;
    e->headers[e->nheaders].value.data = value;
    e->headers[e->nheaders].value.len = vlen;
    e->nheaders++;

    return NGX_OK;
}
