
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

#include "ngx_http_ai_gateway_buf.h"
#include "ngx_http_ai_gateway_json.h"


/*
 * The JSON every part of the module reads and writes, over yajl and
 * knowing nothing of HTTP.  Output: a yajl generator (UTF-8 checked)
 * printing into a pool buffer that grows by doubling; errors are
 * remembered (nomem, invalid) and reported once, by gen_done().  Input:
 * yajl trees, parsed only after the nesting is known to be at most
 * NGX_HTTP_AI_GATEWAY_MAX_DEPTH (yajl_tree_free() recurses), with
 * "\u0000" kept as the two bytes C0 80 and written back as it came;
 * numbers keep their original text.  Trees and the generators of
 * gen_init() are freed by pool cleanups.
 */


#define NGX_HTTP_AI_GATEWAY_GEN_BUF   1024

/* token counts above 2^53 are clamped: sums never overflow */
#define NGX_HTTP_AI_GATEWAY_MAX_COUNT  9007199254740992LL


typedef struct {
    ngx_uint_t                     depth;
} ngx_http_ai_gateway_depth_t;


static void ngx_http_ai_gateway_gen_print(void *ctx, const char *s,
    size_t len);
static void ngx_http_ai_gateway_gen_cleanup(void *data);
static void ngx_http_ai_gateway_gen_status(ngx_http_ai_gateway_gen_t *gen,
    yajl_gen_status st);
static void ngx_http_ai_gateway_gen_tree(ngx_http_ai_gateway_gen_t *gen,
    yajl_val v, ngx_uint_t depth);
static void ngx_http_ai_gateway_tree_cleanup(void *data);
static ngx_uint_t ngx_http_ai_gateway_json_shallow(u_char *p, size_t len);
static u_char *ngx_http_ai_gateway_json_nul(u_char *p, size_t len);
static int ngx_http_ai_gateway_depth_open(void *ctx);
static int ngx_http_ai_gateway_depth_close(void *ctx);


static yajl_callbacks  ngx_http_ai_gateway_depth_callbacks = {
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    ngx_http_ai_gateway_depth_open,
    NULL,
    ngx_http_ai_gateway_depth_close,
    ngx_http_ai_gateway_depth_open,
    ngx_http_ai_gateway_depth_close
};


/* JSON output */

ngx_int_t
ngx_http_ai_gateway_gen_init(ngx_http_ai_gateway_gen_t *gen, ngx_pool_t *pool)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_ai_gateway_gen_open(gen, pool) != NGX_OK) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_ai_gateway_gen_cleanup;
    cln->data = gen->g;

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_gateway_gen_open(ngx_http_ai_gateway_gen_t *gen, ngx_pool_t *pool)
{
    ngx_memzero(gen, sizeof(ngx_http_ai_gateway_gen_t));

    gen->pool = pool;

    gen->g = yajl_gen_alloc(NULL);
    if (gen->g == NULL) {
        return NGX_ERROR;
    }

    yajl_gen_config(gen->g, yajl_gen_validate_utf8, 1);
    yajl_gen_config(gen->g, yajl_gen_print_callback,
                    ngx_http_ai_gateway_gen_print, gen);

    return NGX_OK;
}


static void
ngx_http_ai_gateway_gen_cleanup(void *data)
{
    yajl_gen  g = data;

    yajl_gen_free(g);
}


static void
ngx_http_ai_gateway_gen_print(void *ctx, const char *s, size_t len)
{
    ngx_http_ai_gateway_gen_t *gen = ctx;

    ngx_http_ai_gateway_gen_raw(gen, (u_char *) s, len);
}


void
ngx_http_ai_gateway_gen_reset(ngx_http_ai_gateway_gen_t *gen)
{
    yajl_gen_reset(gen->g, NULL);
}


void
ngx_http_ai_gateway_gen_raw(ngx_http_ai_gateway_gen_t *gen, u_char *p,
    size_t len)
{
    if (gen->nomem || len == 0) {
        return;
    }

    if (ngx_http_ai_gateway_reserve(gen->pool, &gen->buf, &gen->size,
                                    gen->len, gen->len + len,
                                    NGX_HTTP_AI_GATEWAY_GEN_BUF, 0)
        != NGX_OK)
    {
        gen->nomem = 1;
        return;
    }

    ngx_memcpy(gen->buf + gen->len, p, len);
    gen->len += len;
}


static void
ngx_http_ai_gateway_gen_status(ngx_http_ai_gateway_gen_t *gen,
    yajl_gen_status st)
{
    if (st != yajl_gen_status_ok) {
        gen->invalid = 1;
    }
}


void
ngx_http_ai_gateway_gen_str(ngx_http_ai_gateway_gen_t *gen, u_char *p,
    size_t len)
{
    u_char  *q, *d, *last, *copy;

    if (p == NULL) {
        p = (u_char *) "";
    }

    q = (len > 1) ? ngx_strlchr(p, p + len - 1, 0xc0) : NULL;

    if (q == NULL) {
        ngx_http_ai_gateway_gen_status(gen, yajl_gen_string(gen->g, p, len));
        return;
    }

    /* NUL characters of the input (see ngx_http_ai_gateway_json_nul()) */

    copy = ngx_pnalloc(gen->pool, len);
    if (copy == NULL) {
        gen->nomem = 1;
        return;
    }

    last = p + len;

    d = ngx_cpymem(copy, p, q - p);

    while (q < last) {
        if (q[0] == 0xc0 && q + 1 < last && q[1] == 0x80) {
            *d++ = '\0';
            q += 2;
            continue;
        }

        *d++ = *q++;
    }

    ngx_http_ai_gateway_gen_status(gen,
                                   yajl_gen_string(gen->g, copy, d - copy));
    ngx_pfree(gen->pool, copy);
}


void
ngx_http_ai_gateway_gen_string(ngx_http_ai_gateway_gen_t *gen, ngx_str_t *s)
{
    ngx_http_ai_gateway_gen_str(gen, s->data, s->len);
}


void
ngx_http_ai_gateway_gen_int(ngx_http_ai_gateway_gen_t *gen, long long n)
{
    ngx_http_ai_gateway_gen_status(gen, yajl_gen_integer(gen->g, n));
}


void
ngx_http_ai_gateway_gen_null(ngx_http_ai_gateway_gen_t *gen)
{
    ngx_http_ai_gateway_gen_status(gen, yajl_gen_null(gen->g));
}


void
ngx_http_ai_gateway_gen_bool(ngx_http_ai_gateway_gen_t *gen, ngx_uint_t b)
{
    ngx_http_ai_gateway_gen_status(gen, yajl_gen_bool(gen->g, b ? 1 : 0));
}


void
ngx_http_ai_gateway_gen_map(ngx_http_ai_gateway_gen_t *gen)
{
    ngx_http_ai_gateway_gen_status(gen, yajl_gen_map_open(gen->g));
}


void
ngx_http_ai_gateway_gen_map_end(ngx_http_ai_gateway_gen_t *gen)
{
    ngx_http_ai_gateway_gen_status(gen, yajl_gen_map_close(gen->g));
}


void
ngx_http_ai_gateway_gen_array(ngx_http_ai_gateway_gen_t *gen)
{
    ngx_http_ai_gateway_gen_status(gen, yajl_gen_array_open(gen->g));
}


void
ngx_http_ai_gateway_gen_array_end(ngx_http_ai_gateway_gen_t *gen)
{
    ngx_http_ai_gateway_gen_status(gen, yajl_gen_array_close(gen->g));
}


/* a parsed value as it came: numbers keep their original text */

void
ngx_http_ai_gateway_gen_value(ngx_http_ai_gateway_gen_t *gen, yajl_val v)
{
    ngx_http_ai_gateway_gen_tree(gen, v, 0);
}


static void
ngx_http_ai_gateway_gen_tree(ngx_http_ai_gateway_gen_t *gen, yajl_val v,
    ngx_uint_t depth)
{
    size_t  i;

    if (v == NULL) {
        ngx_http_ai_gateway_gen_null(gen);
        return;
    }

    switch (v->type) {

    case yajl_t_string:
        ngx_http_ai_gateway_gen_str(gen, (u_char *) v->u.string,
                                    ngx_strlen(v->u.string));
        return;

    case yajl_t_number:
        ngx_http_ai_gateway_gen_status(gen,
            yajl_gen_number(gen->g, v->u.number.r,
                            ngx_strlen(v->u.number.r)));
        return;

    case yajl_t_object:

        if (depth >= NGX_HTTP_AI_GATEWAY_MAX_DEPTH) {
            gen->invalid = 1;
            return;
        }

        ngx_http_ai_gateway_gen_map(gen);

        for (i = 0; i < v->u.object.len; i++) {
            ngx_http_ai_gateway_gen_str(gen, (u_char *) v->u.object.keys[i],
                                        ngx_strlen(v->u.object.keys[i]));
            ngx_http_ai_gateway_gen_tree(gen, v->u.object.values[i],
                                         depth + 1);
        }

        ngx_http_ai_gateway_gen_map_end(gen);
        return;

    case yajl_t_array:

        if (depth >= NGX_HTTP_AI_GATEWAY_MAX_DEPTH) {
            gen->invalid = 1;
            return;
        }

        ngx_http_ai_gateway_gen_array(gen);

        for (i = 0; i < v->u.array.len; i++) {
            ngx_http_ai_gateway_gen_tree(gen, v->u.array.values[i],
                                         depth + 1);
        }

        ngx_http_ai_gateway_gen_array_end(gen);
        return;

    case yajl_t_true:
        ngx_http_ai_gateway_gen_bool(gen, 1);
        return;

    case yajl_t_false:
        ngx_http_ai_gateway_gen_bool(gen, 0);
        return;

    default:
        ngx_http_ai_gateway_gen_null(gen);
        return;
    }
}


/* NGX_ERROR: no memory; NGX_DECLINED: invalid UTF-8 or too deep */

ngx_int_t
ngx_http_ai_gateway_gen_done(ngx_http_ai_gateway_gen_t *gen, ngx_str_t *out)
{
    if (gen->nomem) {
        return NGX_ERROR;
    }

    if (gen->invalid) {
        return NGX_DECLINED;
    }

    out->data = gen->buf;
    out->len = gen->len;

    return NGX_OK;
}


/* a value as a JSON text (tool call arguments) */

ngx_int_t
ngx_http_ai_gateway_json_text(ngx_pool_t *pool, yajl_val v, ngx_str_t *out)
{
    ngx_int_t                  rc;
    ngx_http_ai_gateway_gen_t  gen;

    if (ngx_http_ai_gateway_gen_open(&gen, pool) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_ai_gateway_gen_value(&gen, v);

    rc = ngx_http_ai_gateway_gen_done(&gen, out);

    yajl_gen_free(gen.g);

    return rc;
}


/* JSON input */

/*
 * A parsed copy of p, freed with the pool.  NGX_DECLINED: not JSON (or
 * nested deeper than NGX_HTTP_AI_GATEWAY_MAX_DEPTH).
 */

ngx_int_t
ngx_http_ai_gateway_json_parse(ngx_pool_t *pool, u_char *p, size_t len,
    yajl_val *v)
{
    u_char              *copy;
    ngx_pool_cleanup_t  *cln;

    copy = ngx_pnalloc(pool, len + 1);
    if (copy == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(copy, p, len);
    copy[len] = '\0';

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    *v = ngx_http_ai_gateway_json_tree(copy, len);

    ngx_pfree(pool, copy);

    if (*v == NULL) {
        return NGX_DECLINED;
    }

    cln->handler = ngx_http_ai_gateway_tree_cleanup;
    cln->data = *v;

    return NGX_OK;
}


static void
ngx_http_ai_gateway_tree_cleanup(void *data)
{
    yajl_val  v = data;

    yajl_tree_free(v);
}


/*
 * p[len] must be 0.  yajl_tree_parse() reads a C string, so a NUL inside
 * is refused; yajl_tree_free() recurses, so the nesting is checked first,
 * by a yajl pass counting levels when the text has enough brackets.
 * The caller frees the tree with yajl_tree_free().
 */

yajl_val
ngx_http_ai_gateway_json_tree(u_char *p, size_t len)
{
    char                          errbuf[64];
    u_char                       *nul;
    yajl_val                      v;
    yajl_handle                   h;
    yajl_status                   st;
    ngx_http_ai_gateway_depth_t   d;

    if (ngx_strlen(p) != len) {
        return NULL;
    }

    if (!ngx_http_ai_gateway_json_shallow(p, len)) {
        d.depth = 0;

        h = yajl_alloc(&ngx_http_ai_gateway_depth_callbacks, NULL, &d);
        if (h == NULL) {
            return NULL;
        }

        yajl_config(h, yajl_allow_comments, 1);

        st = yajl_parse(h, p, len);

        if (st == yajl_status_ok) {
            st = yajl_complete_parse(h);
        }

        yajl_free(h);

        if (st != yajl_status_ok) {
            return NULL;
        }
    }

    nul = ngx_http_ai_gateway_json_nul(p, len);

    if (nul == NULL) {
        return yajl_tree_parse((const char *) p, errbuf, sizeof(errbuf));
    }

    v = yajl_tree_parse((const char *) nul, errbuf, sizeof(errbuf));

    ngx_free(nul);

    return v;
}


/*
 * yajl_tree keeps strings NUL-terminated, so a "\u0000" escape would cut
 * its string short.  It is parsed as the two bytes C0 80 instead (the
 * "modified UTF-8" of Java and Tcl, never valid UTF-8 itself), which
 * ngx_http_ai_gateway_gen_str() writes back as "\u0000".  Returns a copy
 * to parse (ngx_free() it), or NULL when there is no such escape.
 */

static u_char *
ngx_http_ai_gateway_json_nul(u_char *p, size_t len)
{
    u_char  *copy, *d, *last, *q;

    last = p + len;

    for (q = p; q < last; q++) {
        q = ngx_strlchr(q, last, '\\');

        if (q == NULL) {
            return NULL;
        }

        if (last - q >= 6 && ngx_strncmp(q + 1, "u0000", 5) == 0) {
            break;
        }

        /* the escaped character is skipped: "\\u0000" is no NUL */
        q++;
    }

    if (q >= last) {
        return NULL;
    }

    copy = ngx_alloc(len + 1, ngx_cycle->log);
    if (copy == NULL) {
        return NULL;
    }

    d = ngx_cpymem(copy, p, q - p);

    while (q < last) {
        if (*q != '\\' || q + 1 == last) {
            *d++ = *q++;
            continue;
        }

        if (last - q >= 6 && ngx_strncmp(q + 1, "u0000", 5) == 0) {
            *d++ = 0xc0;
            *d++ = 0x80;
            q += 6;
            continue;
        }

        *d++ = *q++;
        *d++ = *q++;
    }

    *d = '\0';

    return copy;
}


static ngx_uint_t
ngx_http_ai_gateway_json_shallow(u_char *p, size_t len)
{
    u_char      *last;
    ngx_uint_t   n;

    n = 0;

    for (last = p + len; p < last; p++) {
        if (*p == '{' || *p == '[') {
            if (++n > NGX_HTTP_AI_GATEWAY_MAX_DEPTH) {
                return 0;
            }
        }
    }

    return 1;
}


static int
ngx_http_ai_gateway_depth_open(void *ctx)
{
    ngx_http_ai_gateway_depth_t *d = ctx;

    return ++d->depth <= NGX_HTTP_AI_GATEWAY_MAX_DEPTH;
}


static int
ngx_http_ai_gateway_depth_close(void *ctx)
{
    ngx_http_ai_gateway_depth_t *d = ctx;

    d->depth--;

    return 1;
}


yajl_val
ngx_http_ai_gateway_json_get(yajl_val obj, const char *key)
{
    size_t  i;

    if (!YAJL_IS_OBJECT(obj)) {
        return NULL;
    }

    /* the first of duplicate keys, as the module's other readers */

    for (i = 0; i < obj->u.object.len; i++) {
        if (ngx_strcmp(obj->u.object.keys[i], key) == 0) {
            return obj->u.object.values[i];
        }
    }

    return NULL;
}


ngx_int_t
ngx_http_ai_gateway_json_str(yajl_val v, ngx_str_t *s)
{
    if (!YAJL_IS_STRING(v)) {
        return NGX_DECLINED;
    }

    s->data = (u_char *) v->u.string;
    s->len = ngx_strlen(v->u.string);

    return NGX_OK;
}


ngx_uint_t
ngx_http_ai_gateway_json_has_nul(ngx_str_t *s)
{
    u_char  *p, *last;

    last = s->data + s->len;

    for (p = s->data; p + 1 < last; p++) {
        p = ngx_strlchr(p, last - 1, 0xc0);

        if (p == NULL) {
            return 0;
        }

        if (p[1] == 0x80) {
            return 1;
        }
    }

    return 0;
}


ngx_uint_t
ngx_http_ai_gateway_json_is(yajl_val v, const char *s)
{
    return YAJL_IS_STRING(v) && ngx_strcmp(v->u.string, s) == 0;
}


/* a token count: a non-negative integer */

ngx_uint_t
ngx_http_ai_gateway_json_count(yajl_val v, uint64_t *n)
{
    if (!YAJL_IS_INTEGER(v) || v->u.number.i < 0) {
        return 0;
    }

    *n = ngx_min(v->u.number.i, NGX_HTTP_AI_GATEWAY_MAX_COUNT);

    return 1;
}
