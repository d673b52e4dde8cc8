
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/*
 * byte 0: bit 0 clear: an OpenAI embeddings request to Gemini's; set: a
 * Gemini embeddings response, translated with encoding_format float and
 * base64.  The outputs must be JSON; a response accepted as base64 must
 * be accepted as float too, with the same vectors: each base64 string
 * the little-endian float32 of the numbers of the float one.
 */


#include "fuzz.h"


static ngx_http_ai_gateway_translator_t *
fuzz_gemini(void)
{
    ngx_str_t  name;

    ngx_str_set(&name, "gemini");

    return ngx_http_ai_gateway_translator(&name);
}


static void
fuzz_request(ngx_pool_t *pool, const uint8_t *data, size_t size)
{
    yajl_val                       req;
    ngx_int_t                      rc;
    ngx_str_t                      out, err;
    ngx_http_ai_gateway_compat_t   c;

    if (ngx_http_ai_gateway_json_parse(pool, (u_char *) data, size, &req)
        != NGX_OK)
    {
        return;
    }

    fuzz_compat(&c, 1);

    ngx_str_null(&out);
    ngx_str_null(&err);

    rc = fuzz_gemini()->embed_request(pool, req, &c, &out, &err);

    if (rc == NGX_OK) {
        fuzz_json(out.data, out.len);

        if (c.stream || c.include_usage) {
            abort();
        }

    } else if (rc != NGX_DECLINED || err.len == 0) {
        abort();
    }
}


/* the "data" array of an output */

static yajl_val
fuzz_data(ngx_pool_t *pool, ngx_str_t *out)
{
    yajl_val  v;

    if (ngx_http_ai_gateway_json_parse(pool, out->data, out->len, &v)
        != NGX_OK)
    {
        abort();
    }

    v = ngx_http_ai_gateway_json_get(v, "data");

    if (!YAJL_IS_ARRAY(v)) {
        abort();
    }

    return v;
}


/* every base64 vector: the float32 of each number of the float vector */

static void
fuzz_same(ngx_pool_t *pool, ngx_str_t *fl, ngx_str_t *b64)
{
    float      f, g;
    size_t     i, j;
    u_char    *p;
    yajl_val   fd, bd, fv, bv;
    uint32_t   bits;
    ngx_str_t  src, dst;

    fd = fuzz_data(pool, fl);
    bd = fuzz_data(pool, b64);

    if (fd->u.array.len != bd->u.array.len) {
        abort();
    }

    for (i = 0; i < fd->u.array.len; i++) {
        fv = ngx_http_ai_gateway_json_get(fd->u.array.values[i], "embedding");
        bv = ngx_http_ai_gateway_json_get(bd->u.array.values[i], "embedding");

        if (!YAJL_IS_ARRAY(fv)
            || ngx_http_ai_gateway_json_str(bv, &src) != NGX_OK)
        {
            abort();
        }

        dst.data = ngx_pnalloc(pool, src.len);
        if (dst.data == NULL) {
            return;
        }

        if (ngx_decode_base64(&dst, &src) != NGX_OK
            || dst.len != fv->u.array.len * 4)
        {
            abort();
        }

        for (j = 0; j < fv->u.array.len; j++) {
            p = dst.data + j * 4;
            bits = p[0] | p[1] << 8 | p[2] << 16 | (uint32_t) p[3] << 24;
            ngx_memcpy(&f, &bits, sizeof(float));

            g = (float) fv->u.array.values[j]->u.number.d;

            if (ngx_memcmp(&f, &g, sizeof(float)) != 0) {
                abort();
            }
        }
    }
}


static void
fuzz_response(ngx_pool_t *pool, const uint8_t *data, size_t size)
{
    ngx_int_t                          rc[2];
    ngx_str_t                          out[2];
    ngx_uint_t                         b;
    ngx_http_ai_gateway_compat_t       c;
    ngx_http_ai_gateway_translator_t  *t;

    t = fuzz_gemini();

    for (b = 0; b < 2; b++) {
        fuzz_compat(&c, 0);
        c.base64 = b;

        rc[b] = t->embed_response(pool, (u_char *) data, size, &c, &out[b]);

        if (rc[b] == NGX_OK) {
            fuzz_json(out[b].data, out[b].len);

        } else if (rc[b] != NGX_DECLINED) {
            abort();
        }
    }

    if (rc[1] == NGX_OK) {
        if (rc[0] != NGX_OK) {
            abort();
        }

        fuzz_same(pool, &out[0], &out[1]);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ngx_pool_t  *pool;

    if (size < 1) {
        return 0;
    }

    pool = ngx_create_pool(4096, NULL);

    if (data[0] & 1) {
        fuzz_response(pool, data + 1, size - 1);

    } else {
        fuzz_request(pool, data + 1, size - 1);
    }

    ngx_destroy_pool(pool);

    return 0;
}
