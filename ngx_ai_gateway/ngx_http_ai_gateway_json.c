
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

#include "ngx_http_ai_gateway_json.h"


/*
 * The JSON texts the gateway writes of its own (its error envelope, the
 * Unified API's model list, a client's body with another "model"), and
 * the top-level string lookup that gives $ai_gateway_model from a body
 * still in its buffers, with yajl's event parser stopping at the value.
 * Pools, strings and chains in: nothing of HTTP, so that every layer
 * above can use it.
 */


typedef struct {
    ngx_pool_t                    *pool;
    const char                    *key;
    size_t                         key_len;
    ngx_str_t                     *value;
    ngx_uint_t                     depth;
    unsigned                       want:1;
    unsigned                       found:1;
} ngx_http_ai_gateway_json_find_t;


static ngx_int_t ngx_http_ai_gateway_json_buf(ngx_pool_t *pool, yajl_gen g,
    ngx_str_t *out);
static int ngx_http_ai_gateway_json_null(void *ctx);
static int ngx_http_ai_gateway_json_boolean(void *ctx, int b);
static int ngx_http_ai_gateway_json_number(void *ctx, const char *s,
    size_t len);
static int ngx_http_ai_gateway_json_string(void *ctx,
    const unsigned char *s, size_t len);
static int ngx_http_ai_gateway_json_start(void *ctx);
static int ngx_http_ai_gateway_json_key(void *ctx, const unsigned char *s,
    size_t len);
static int ngx_http_ai_gateway_json_end(void *ctx);


static yajl_callbacks  ngx_http_ai_gateway_json_find_callbacks = {
    ngx_http_ai_gateway_json_null,
    ngx_http_ai_gateway_json_boolean,
    NULL,
    NULL,
    ngx_http_ai_gateway_json_number,
    ngx_http_ai_gateway_json_string,
    ngx_http_ai_gateway_json_start,
    ngx_http_ai_gateway_json_key,
    ngx_http_ai_gateway_json_end,
    ngx_http_ai_gateway_json_start,
    ngx_http_ai_gateway_json_end
};


#define ngx_http_ai_gateway_gen_lit(g, s)                                     \
    yajl_gen_string(g, (const unsigned char *) s, sizeof(s) - 1)


/*
 * The gateway's error envelope, as the hosted gateway sends it:
 *
 * {"success":false,"result":[],"messages":[],
 *  "error":[{"code":2008,"message":"Invalid provider"}],
 *  "name":"AiGatewayError","httpCode":400,"internalCode":2008,
 *  "message":"Invalid provider","description":"Invalid provider"}
 */

ngx_int_t
ngx_http_ai_gateway_json_error(ngx_pool_t *pool, ngx_uint_t status,
    ngx_uint_t code, ngx_str_t *message, ngx_str_t *out)
{
    yajl_gen   g;
    ngx_int_t  rc;

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return NGX_ERROR;
    }

    yajl_gen_map_open(g);

    ngx_http_ai_gateway_gen_lit(g, "success");
    yajl_gen_bool(g, 0);
    ngx_http_ai_gateway_gen_lit(g, "result");
    yajl_gen_array_open(g);
    yajl_gen_array_close(g);
    ngx_http_ai_gateway_gen_lit(g, "messages");
    yajl_gen_array_open(g);
    yajl_gen_array_close(g);

    ngx_http_ai_gateway_gen_lit(g, "error");
    yajl_gen_array_open(g);
    yajl_gen_map_open(g);
    ngx_http_ai_gateway_gen_lit(g, "code");
    yajl_gen_integer(g, code);
    ngx_http_ai_gateway_gen_lit(g, "message");
    yajl_gen_string(g, message->data, message->len);
    yajl_gen_map_close(g);
    yajl_gen_array_close(g);

    ngx_http_ai_gateway_gen_lit(g, "name");
    ngx_http_ai_gateway_gen_lit(g, "AiGatewayError");
    ngx_http_ai_gateway_gen_lit(g, "httpCode");
    yajl_gen_integer(g, status);
    ngx_http_ai_gateway_gen_lit(g, "internalCode");
    yajl_gen_integer(g, code);
    ngx_http_ai_gateway_gen_lit(g, "message");
    yajl_gen_string(g, message->data, message->len);
    ngx_http_ai_gateway_gen_lit(g, "description");
    yajl_gen_string(g, message->data, message->len);

    yajl_gen_map_close(g);

    rc = ngx_http_ai_gateway_json_buf(pool, g, out);

    yajl_gen_free(g);

    return rc;
}


/*
 * A parsed JSON object written again with the top-level "key" set to a
 * string (nested ones are not), by the translators' tree writer: numbers
 * keep their original text (large integers survive), strings are
 * re-escaped canonically.
 */

ngx_int_t
ngx_http_ai_gateway_json_replace(ngx_pool_t *pool, yajl_val v,
    const char *key, ngx_str_t *value, ngx_str_t *out)
{
    size_t                     i;
    ngx_http_ai_gateway_gen_t  gen;

    if (ngx_http_ai_gateway_gen_init(&gen, pool) != NGX_OK) {
        return NGX_ERROR;
    }

    if (!YAJL_IS_OBJECT(v)) {
        ngx_http_ai_gateway_gen_value(&gen, v);

    } else {
        ngx_http_ai_gateway_gen_map(&gen);

        for (i = 0; i < v->u.object.len; i++) {
            ngx_http_ai_gateway_gen_str(&gen, (u_char *) v->u.object.keys[i],
                                        ngx_strlen(v->u.object.keys[i]));

            if (ngx_strcmp(v->u.object.keys[i], key) == 0) {
                ngx_http_ai_gateway_gen_string(&gen, value);

            } else {
                ngx_http_ai_gateway_gen_value(&gen, v->u.object.values[i]);
            }
        }

        ngx_http_ai_gateway_gen_map_end(&gen);
    }

    return ngx_http_ai_gateway_gen_done(&gen, out) == NGX_OK
           ? NGX_OK : NGX_ERROR;
}


static ngx_int_t
ngx_http_ai_gateway_json_buf(ngx_pool_t *pool, yajl_gen g, ngx_str_t *out)
{
    size_t                len;
    const unsigned char  *buf;

    if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok) {
        return NGX_ERROR;
    }

    out->data = ngx_pnalloc(pool, len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, buf, len);
    out->len = len;

    return NGX_OK;
}


/*
 * The Unified API's model list:
 * {"object":"list","data":[{"id":"openai/gpt-4o","object":"model",
 *  "created":0,"owned_by":"openai"},...]}
 */

ngx_int_t
ngx_http_ai_gateway_json_models(ngx_pool_t *pool, ngx_array_t *models,
    ngx_str_t *out)
{
    u_char      *p;
    yajl_gen     g;
    ngx_int_t    rc;
    ngx_str_t   *m;
    ngx_uint_t   i;

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return NGX_ERROR;
    }

    yajl_gen_map_open(g);
    ngx_http_ai_gateway_gen_lit(g, "object");
    ngx_http_ai_gateway_gen_lit(g, "list");
    ngx_http_ai_gateway_gen_lit(g, "data");
    yajl_gen_array_open(g);

    m = models ? models->elts : NULL;

    for (i = 0; models && i < models->nelts; i++) {
        p = ngx_strlchr(m[i].data, m[i].data + m[i].len, '/');

        yajl_gen_map_open(g);
        ngx_http_ai_gateway_gen_lit(g, "id");
        yajl_gen_string(g, m[i].data, m[i].len);
        ngx_http_ai_gateway_gen_lit(g, "object");
        ngx_http_ai_gateway_gen_lit(g, "model");
        ngx_http_ai_gateway_gen_lit(g, "created");
        yajl_gen_integer(g, 0);
        ngx_http_ai_gateway_gen_lit(g, "owned_by");
        yajl_gen_string(g, m[i].data, p ? (size_t) (p - m[i].data) : 0);
        yajl_gen_map_close(g);
    }

    yajl_gen_array_close(g);
    yajl_gen_map_close(g);

    rc = ngx_http_ai_gateway_json_buf(pool, g, out);

    yajl_gen_free(g);

    return rc;
}


/*
 * Finds the string value of a top-level key ("model") in a JSON body held
 * in memory buffers.  The parse stops as soon as the value is seen.
 * Returns NGX_OK, NGX_DECLINED (not found, not JSON, body on disk) or
 * NGX_ERROR.
 */

ngx_int_t
ngx_http_ai_gateway_json_top_string(ngx_pool_t *pool, ngx_chain_t *in,
    const char *key, ngx_str_t *value)
{
    u_char                           *p;
    ngx_chain_t                      *cl;
    yajl_handle                       h;
    yajl_status                       st;
    ngx_http_ai_gateway_json_find_t   f;

    ngx_memzero(&f, sizeof(ngx_http_ai_gateway_json_find_t));

    f.pool = pool;
    f.key = key;
    f.key_len = ngx_strlen(key);
    f.value = value;

    h = yajl_alloc(&ngx_http_ai_gateway_json_find_callbacks, NULL, &f);
    if (h == NULL) {
        return NGX_ERROR;
    }

    st = yajl_status_ok;

    for (cl = in; cl; cl = cl->next) {

        if (!ngx_buf_in_memory(cl->buf)) {
            break;
        }

        /* a buffer sent upstream has its pos moved: read from start */

        p = cl->buf->start ? cl->buf->start : cl->buf->pos;

        if (cl->buf->last > p) {
            st = yajl_parse(h, p, cl->buf->last - p);

            if (st != yajl_status_ok) {
                break;
            }
        }
    }

    yajl_free(h);

    if (f.found) {
        return value->data ? NGX_OK : NGX_ERROR;
    }

    return NGX_DECLINED;
}


static int
ngx_http_ai_gateway_json_scalar(ngx_http_ai_gateway_json_find_t *f)
{
    f->want = 0;
    return 1;
}


static int
ngx_http_ai_gateway_json_null(void *ctx)
{
    return ngx_http_ai_gateway_json_scalar(ctx);
}


static int
ngx_http_ai_gateway_json_boolean(void *ctx, int b)
{
    return ngx_http_ai_gateway_json_scalar(ctx);
}


static int
ngx_http_ai_gateway_json_number(void *ctx, const char *s, size_t len)
{
    return ngx_http_ai_gateway_json_scalar(ctx);
}


static int
ngx_http_ai_gateway_json_string(void *ctx, const unsigned char *s,
    size_t len)
{
    ngx_http_ai_gateway_json_find_t *f = ctx;

    if (!f->want) {
        return 1;
    }

    f->found = 1;

    f->value->data = ngx_pnalloc(f->pool, len);
    if (f->value->data) {
        ngx_memcpy(f->value->data, s, len);
        f->value->len = len;
    }

    /* done: cancel the rest of the parse */

    return 0;
}


static int
ngx_http_ai_gateway_json_start(void *ctx)
{
    ngx_http_ai_gateway_json_find_t *f = ctx;

    f->want = 0;
    f->depth++;

    return 1;
}


static int
ngx_http_ai_gateway_json_key(void *ctx, const unsigned char *s, size_t len)
{
    ngx_http_ai_gateway_json_find_t *f = ctx;

    f->want = (f->depth == 1 && len == f->key_len
               && ngx_strncmp(s, f->key, len) == 0);

    return 1;
}


static int
ngx_http_ai_gateway_json_end(void *ctx)
{
    ngx_http_ai_gateway_json_find_t *f = ctx;

    f->depth--;

    /* the top-level object is closed without the key */

    return f->depth != 0;
}
