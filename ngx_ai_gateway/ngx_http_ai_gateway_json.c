
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

#include "ngx_http_ai_gateway_module.h"


typedef struct {
    ngx_pool_t                    *pool;
    const char                    *key;
    size_t                         key_len;
    ngx_str_t                     *value;
    ngx_uint_t                     depth;
    unsigned                       want:1;
    unsigned                       found:1;
} ngx_http_ai_gateway_json_find_t;


static yajl_gen_status ngx_http_ai_gateway_json_gen(yajl_gen g, yajl_val v,
    const char *key, ngx_str_t *value);
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
 * string.  Numbers keep their original text (large integers survive);
 * strings are re-escaped canonically.
 */

ngx_int_t
ngx_http_ai_gateway_json_replace(ngx_pool_t *pool, void *tree,
    const char *key, ngx_str_t *value, ngx_str_t *out)
{
    yajl_gen   g;
    ngx_int_t  rc;

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return NGX_ERROR;
    }

    yajl_gen_config(g, yajl_gen_validate_utf8, 1);

    rc = NGX_ERROR;

    if (ngx_http_ai_gateway_json_gen(g, tree, key, value)
        == yajl_gen_status_ok)
    {
        rc = ngx_http_ai_gateway_json_buf(pool, g, out);
    }

    yajl_gen_free(g);

    return rc;
}


static yajl_gen_status
ngx_http_ai_gateway_json_gen(yajl_gen g, yajl_val v, const char *key,
    ngx_str_t *value)
{
    size_t           i;
    const char      *k;
    yajl_gen_status  st;

    switch (v->type) {

    case yajl_t_string:
        return yajl_gen_string(g, (const unsigned char *) v->u.string,
                               ngx_strlen(v->u.string));

    case yajl_t_number:
        return yajl_gen_number(g, v->u.number.r, ngx_strlen(v->u.number.r));

    case yajl_t_true:
        return yajl_gen_bool(g, 1);

    case yajl_t_false:
        return yajl_gen_bool(g, 0);

    case yajl_t_null:
        return yajl_gen_null(g);

    case yajl_t_array:
        st = yajl_gen_array_open(g);

        for (i = 0; st == yajl_gen_status_ok && i < v->u.array.len; i++) {
            st = ngx_http_ai_gateway_json_gen(g, v->u.array.values[i], NULL,
                                              NULL);
        }

        return st == yajl_gen_status_ok ? yajl_gen_array_close(g) : st;

    case yajl_t_object:
        st = yajl_gen_map_open(g);

        for (i = 0; st == yajl_gen_status_ok && i < v->u.object.len; i++) {
            k = v->u.object.keys[i];

            st = yajl_gen_string(g, (const unsigned char *) k, ngx_strlen(k));
            if (st != yajl_gen_status_ok) {
                break;
            }

            if (key && ngx_strcmp(k, key) == 0) {
                /* the top-level key replaced (nested ones are not) */
                st = yajl_gen_string(g, value->data, value->len);
                continue;
            }

            st = ngx_http_ai_gateway_json_gen(g, v->u.object.values[i], NULL,
                                              NULL);
        }

        return st == yajl_gen_status_ok ? yajl_gen_map_close(g) : st;

    default:
        return yajl_gen_in_error_state;
    }
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
