
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <yajl/yajl_tree.h>

#include "ngx_http_ai_gateway_openai.h"


/*
 * Embeddings on the OpenAI side: the client's request read and checked,
 * and a provider's vectors written as OpenAI's list, floats or base64.
 */


/*
 * a double rounds to a finite float32 when its magnitude is below this:
 * FLT_MAX and half its ulp, (2^25 - 1) * 2^103 (which rounds to even:
 * infinity)
 */
#define NGX_HTTP_AI_GATEWAY_FLOAT_END  3.4028235677973366e38


static ngx_int_t ngx_http_ai_gateway_embed_field(
    ngx_http_ai_gateway_openai_req_t *r, const char *key, yajl_val v);
static ngx_int_t ngx_http_ai_gateway_embed_input(
    ngx_http_ai_gateway_openai_req_t *r, yajl_val v);
static yajl_val ngx_http_ai_gateway_embedding(yajl_val list, size_t i,
    const char *key);
static void ngx_http_ai_gateway_float32(yajl_val v, u_char *p);


/*
 * Reads and checks the client's OpenAI embeddings request: "input" is a
 * string or an array of strings, none empty, at most d->inputs of them;
 * token arrays are refused (the translated APIs embed text).  Sets
 * c->base64 from "encoding_format" and opens the native request's object
 * in gen.
 */

ngx_int_t
ngx_http_ai_gateway_openai_embeddings(ngx_pool_t *pool, yajl_val req,
    ngx_http_ai_gateway_dialect_t *d, ngx_http_ai_gateway_compat_t *c,
    ngx_http_ai_gateway_openai_req_t *r, ngx_http_ai_gateway_gen_t *gen,
    ngx_str_t *err)
{
    ngx_int_t  rc;

    rc = ngx_http_ai_gateway_openai_read(pool, req, d, r, err,
                                         ngx_http_ai_gateway_embed_field);
    if (rc != NGX_OK) {
        return rc;
    }

    if (r->input.nelts == 0) {
        return ngx_http_ai_gateway_openai_fail(r,
                         "\"input\" must be a string or an array of strings");
    }

    c->stream = 0;
    c->include_usage = 0;
    c->base64 = r->base64;

    return ngx_http_ai_gateway_openai_open(r, gen);
}


/*
 * The fields of an embeddings request: "model" and "user" as in Chat
 * Completions ("user", an abuse-monitoring id, is dropped), any other
 * field than "input", "dimensions" and "encoding_format" is refused.
 */

static ngx_int_t
ngx_http_ai_gateway_embed_field(ngx_http_ai_gateway_openai_req_t *r,
    const char *key, yajl_val v)
{
    if (ngx_strcmp(key, "input") == 0) {
        return ngx_http_ai_gateway_embed_input(r, v);
    }

    if (ngx_strcmp(key, "dimensions") == 0) {
        if (YAJL_IS_NULL(v)) {
            r->dimensions = NULL;
            return NGX_OK;
        }

        if (!YAJL_IS_INTEGER(v) || v->u.number.i < 1) {
            return ngx_http_ai_gateway_openai_fail(r,
                               "\"dimensions\" must be a positive integer");
        }

        r->dimensions = v;
        return NGX_OK;
    }

    if (ngx_strcmp(key, "encoding_format") == 0) {
        if (YAJL_IS_NULL(v) || ngx_http_ai_gateway_json_is(v, "float")) {
            r->base64 = 0;
            return NGX_OK;
        }

        if (ngx_http_ai_gateway_json_is(v, "base64")) {
            r->base64 = 1;
            return NGX_OK;
        }

        return ngx_http_ai_gateway_openai_fail(r,
                      "\"encoding_format\" must be \"float\" or \"base64\"");
    }

    if (ngx_strcmp(key, "model") == 0 || ngx_strcmp(key, "user") == 0) {
        return ngx_http_ai_gateway_openai_field(r, key, v);
    }

    return ngx_http_ai_gateway_openai_fail(r,
                       "unsupported parameter \"%s\" for %s embeddings",
                       key, r->provider);
}


static ngx_int_t
ngx_http_ai_gateway_embed_input(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val v)
{
    size_t      i, n;
    yajl_val   *items;
    ngx_str_t  *s;

    if (YAJL_IS_STRING(v)) {
        items = &v;
        n = 1;

    } else if (YAJL_IS_ARRAY(v)) {
        items = v->u.array.values;
        n = v->u.array.len;

    } else {
        return ngx_http_ai_gateway_openai_fail(r,
                         "\"input\" must be a string or an array of strings");
    }

    if (n == 0) {
        return ngx_http_ai_gateway_openai_fail(r,
                                         "\"input\" must not be empty");
    }

    if (YAJL_IS_NUMBER(items[0]) || YAJL_IS_ARRAY(items[0])) {
        return ngx_http_ai_gateway_openai_fail(r,
                         "\"input\" as tokens is not supported for %s "
                         "models, send text", r->provider);
    }

    if (n > r->dialect->inputs) {
        return ngx_http_ai_gateway_openai_fail(r,
                         "\"input\" must have at most %ui items for %s "
                         "models", r->dialect->inputs, r->provider);
    }

    if (ngx_array_init(&r->input, r->pool, n, sizeof(ngx_str_t)) != NGX_OK) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        s = ngx_array_push(&r->input);
        if (s == NULL) {
            return NGX_ERROR;
        }

        if (ngx_http_ai_gateway_json_str(items[i], s) == NGX_OK && s->len) {
            continue;
        }

        if (!YAJL_IS_ARRAY(v)) {
            return ngx_http_ai_gateway_openai_fail(r,
                                         "\"input\" must not be empty");
        }

        return ngx_http_ai_gateway_openai_fail(r,
                               "input[%ui] must be a non-empty string", i);
    }

    return NGX_OK;
}


/*
 * {"object":"list","data":[{"object":"embedding","index","embedding"}],
 *  "model","usage":{"prompt_tokens","total_tokens"}}: the vectors are the
 * elements of list (their "key" when key is not NULL), arrays of numbers;
 * each is written as sent, or with c->base64 as the base64 of its
 * little-endian float32 values, as OpenAI's.  u: the usage reported, or
 * NULL (zeros).  NGX_DECLINED: a vector is not an array of numbers, or a
 * number is beyond float32's range for base64.
 */

ngx_int_t
ngx_http_ai_gateway_embeddings_done(ngx_pool_t *pool, yajl_val list,
    const char *key, ngx_http_ai_gateway_usage_t *u,
    ngx_http_ai_gateway_compat_t *c, ngx_str_t *out)
{
    size_t                     i, j, max;
    u_char                    *raw;
    double                     d;
    uint64_t                   prompt, total;
    yajl_val                   vec, num;
    ngx_str_t                  src, dst;
    ngx_http_ai_gateway_gen_t  gen;

    if (!YAJL_IS_ARRAY(list)) {
        return NGX_DECLINED;
    }

    /* checked first: the longest vector sizes the base64 buffers */

    max = 0;

    for (i = 0; i < list->u.array.len; i++) {
        vec = ngx_http_ai_gateway_embedding(list, i, key);

        if (!YAJL_IS_ARRAY(vec)) {
            return NGX_DECLINED;
        }

        for (j = 0; j < vec->u.array.len; j++) {
            num = vec->u.array.values[j];

            if (!YAJL_IS_NUMBER(num)) {
                return NGX_DECLINED;
            }

            d = num->u.number.d;

            if (c->base64 && (d >= NGX_HTTP_AI_GATEWAY_FLOAT_END
                              || d <= -NGX_HTTP_AI_GATEWAY_FLOAT_END))
            {
                return NGX_DECLINED;
            }
        }

        max = ngx_max(max, vec->u.array.len);
    }

    raw = NULL;

    if (c->base64) {
        raw = ngx_pnalloc(pool, max * 4);
        dst.data = ngx_pnalloc(pool, ngx_base64_encoded_length(max * 4));

        if (raw == NULL || dst.data == NULL) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_ai_gateway_gen_init(&gen, pool) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_ai_gateway_gen_map(&gen);

    ngx_http_ai_gateway_gen_literal(&gen, "object");
    ngx_http_ai_gateway_gen_literal(&gen, "list");

    ngx_http_ai_gateway_gen_literal(&gen, "data");
    ngx_http_ai_gateway_gen_array(&gen);

    for (i = 0; i < list->u.array.len; i++) {
        vec = ngx_http_ai_gateway_embedding(list, i, key);

        ngx_http_ai_gateway_gen_map(&gen);

        ngx_http_ai_gateway_gen_literal(&gen, "object");
        ngx_http_ai_gateway_gen_literal(&gen, "embedding");
        ngx_http_ai_gateway_gen_literal(&gen, "index");
        ngx_http_ai_gateway_gen_int(&gen, i);
        ngx_http_ai_gateway_gen_literal(&gen, "embedding");

        if (raw != NULL) {
            for (j = 0; j < vec->u.array.len; j++) {
                ngx_http_ai_gateway_float32(vec->u.array.values[j],
                                            raw + j * 4);
            }

            src.data = raw;
            src.len = vec->u.array.len * 4;

            ngx_encode_base64(&dst, &src);
            ngx_http_ai_gateway_gen_string(&gen, &dst);

        } else {
            ngx_http_ai_gateway_gen_value(&gen, vec);
        }

        ngx_http_ai_gateway_gen_map_end(&gen);
    }

    ngx_http_ai_gateway_gen_array_end(&gen);

    ngx_http_ai_gateway_gen_literal(&gen, "model");
    ngx_http_ai_gateway_gen_string(&gen, &c->model);

    prompt = 0;
    total = 0;

    if (u != NULL) {
        prompt = u->prompt;
        total = u->prompt + u->completion;

        ngx_http_ai_gateway_usage_report(c, u);
    }

    ngx_http_ai_gateway_gen_literal(&gen, "usage");
    ngx_http_ai_gateway_gen_map(&gen);
    ngx_http_ai_gateway_gen_literal(&gen, "prompt_tokens");
    ngx_http_ai_gateway_gen_int(&gen, prompt);
    ngx_http_ai_gateway_gen_literal(&gen, "total_tokens");
    ngx_http_ai_gateway_gen_int(&gen, total);
    ngx_http_ai_gateway_gen_map_end(&gen);

    ngx_http_ai_gateway_gen_map_end(&gen);

    return ngx_http_ai_gateway_gen_done(&gen, out);
}


static yajl_val
ngx_http_ai_gateway_embedding(yajl_val list, size_t i, const char *key)
{
    yajl_val  v;

    v = list->u.array.values[i];

    return key ? ngx_http_ai_gateway_json_get(v, key) : v;
}


/*
 * A number as the 4 little-endian bytes of a float32: its text as a
 * double (yajl's strtod()), then rounded to float; it is below
 * NGX_HTTP_AI_GATEWAY_FLOAT_END.
 */

static void
ngx_http_ai_gateway_float32(yajl_val v, u_char *p)
{
    float     f;
    uint32_t  bits;

    f = (float) v->u.number.d;

    ngx_memcpy(&bits, &f, sizeof(uint32_t));

    p[0] = (u_char) (bits & 0xff);
    p[1] = (u_char) ((bits >> 8) & 0xff);
    p[2] = (u_char) ((bits >> 16) & 0xff);
    p[3] = (u_char) (bits >> 24);
}
