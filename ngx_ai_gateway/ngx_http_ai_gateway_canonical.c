
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

#include "ngx_http_ai_gateway_json.h"


/*
 * The canonical form of a JSON text, for cache keys: object members sorted
 * by name (byte order, equal names kept in their order), no whitespace,
 * strings as yajl escapes them, numbers as written.  The text is parsed by
 * yajl's event parser into a small tree allocated from the request's pool
 * (yajl's own memory too), then written back by a yajl generator: no
 * malloc() per request, which matters on the path of a cache hit.
 */


#define NGX_HTTP_AI_GATEWAY_CANONICAL_DEPTH  64


typedef struct ngx_http_ai_gateway_jnode_s  ngx_http_ai_gateway_jnode_t;

struct ngx_http_ai_gateway_jnode_s {
    ngx_http_ai_gateway_jnode_t   *next;       /* sibling */
    ngx_http_ai_gateway_jnode_t   *child;      /* first member or item */
    ngx_http_ai_gateway_jnode_t   *last;
    ngx_http_ai_gateway_jnode_t   *parent;
    ngx_str_t                      key;        /* as an object member */
    ngx_str_t                      text;       /* string or number */
    ngx_uint_t                     n;          /* members or items */
    ngx_uint_t                     index;      /* position in its object */
    u_char                         type;       /* s n t f z o a */
};


typedef struct {
    ngx_pool_t                    *pool;
    ngx_http_ai_gateway_jnode_t   *root;
    ngx_http_ai_gateway_jnode_t   *cur;        /* open object or array */
    ngx_str_t                      key;        /* pending member name */
    ngx_uint_t                     depth;
    ngx_uint_t                     error;
} ngx_http_ai_gateway_jtree_t;


static ngx_http_ai_gateway_jnode_t *ngx_http_ai_gateway_jnode(
    ngx_http_ai_gateway_jtree_t *t, u_char type);
static int ngx_http_ai_gateway_j_null(void *ctx);
static int ngx_http_ai_gateway_j_boolean(void *ctx, int b);
static int ngx_http_ai_gateway_j_number(void *ctx, const char *s,
    size_t len);
static int ngx_http_ai_gateway_j_string(void *ctx, const unsigned char *s,
    size_t len);
static int ngx_http_ai_gateway_j_start_map(void *ctx);
static int ngx_http_ai_gateway_j_map_key(void *ctx, const unsigned char *s,
    size_t len);
static int ngx_http_ai_gateway_j_end(void *ctx);
static int ngx_http_ai_gateway_j_start_array(void *ctx);
static void *ngx_http_ai_gateway_j_malloc(void *ctx, size_t size);
static void *ngx_http_ai_gateway_j_realloc(void *ctx, void *p, size_t size);
static void ngx_http_ai_gateway_j_free(void *ctx, void *p);
static yajl_gen_status ngx_http_ai_gateway_canonical_value(ngx_pool_t *pool,
    yajl_gen g, ngx_http_ai_gateway_jnode_t *v);
static int ngx_http_ai_gateway_member_cmp(const void *one, const void *two);
static void ngx_http_ai_gateway_gen_out(void *ctx, const char *s, size_t len);


static yajl_callbacks  ngx_http_ai_gateway_j_callbacks = {
    ngx_http_ai_gateway_j_null,
    ngx_http_ai_gateway_j_boolean,
    NULL,
    NULL,
    ngx_http_ai_gateway_j_number,
    ngx_http_ai_gateway_j_string,
    ngx_http_ai_gateway_j_start_map,
    ngx_http_ai_gateway_j_map_key,
    ngx_http_ai_gateway_j_end,
    ngx_http_ai_gateway_j_start_array,
    ngx_http_ai_gateway_j_end
};


/* one generator per worker, reset after each text */

static yajl_gen   ngx_http_ai_gateway_canonical_gen;

static void     (*ngx_http_ai_gateway_canonical_print)(void *data,
                                                       const char *s,
                                                       size_t len);
static void      *ngx_http_ai_gateway_canonical_data;


/*
 * print() gets the canonical text in pieces.  Returns NGX_OK, NGX_DECLINED
 * when the text is not JSON (or nests deeper than 64 levels), NGX_ERROR.
 * *stream is set when the text is an object with "stream": true, and
 * *model (if not NULL) to its "model" string, from the same parse.
 */

ngx_int_t
ngx_http_ai_gateway_canonical_json(ngx_pool_t *pool, u_char *p, size_t len,
    void (*print)(void *data, const char *s, size_t len), void *data,
    ngx_uint_t *stream, ngx_str_t *model)
{
    yajl_gen                      g;
    yajl_handle                   h;
    yajl_status                   st;
    yajl_gen_status               gs;
    yajl_alloc_funcs              af;
    ngx_http_ai_gateway_jnode_t  *m;
    ngx_http_ai_gateway_jtree_t   t;

    ngx_memzero(&t, sizeof(ngx_http_ai_gateway_jtree_t));
    t.pool = pool;

    af.malloc = ngx_http_ai_gateway_j_malloc;
    af.realloc = ngx_http_ai_gateway_j_realloc;
    af.free = ngx_http_ai_gateway_j_free;
    af.ctx = pool;

    h = yajl_alloc(&ngx_http_ai_gateway_j_callbacks, &af, &t);
    if (h == NULL) {
        return NGX_ERROR;
    }

    st = yajl_parse(h, p, len);

    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
    }

    yajl_free(h);

    if (t.error) {
        return NGX_ERROR;
    }

    if (st != yajl_status_ok || t.root == NULL || t.depth != 0) {
        return NGX_DECLINED;
    }

    if (t.root->type == 'o') {
        for (m = t.root->child; m; m = m->next) {
            if (m->key.len == 6 && ngx_strncmp(m->key.data, "stream", 6) == 0)
            {
                *stream = (m->type == 't');

            } else if (model && model->data == NULL && m->key.len == 5
                       && ngx_strncmp(m->key.data, "model", 5) == 0
                       && m->type == 's')
            {
                *model = m->text;
            }
        }
    }

    g = ngx_http_ai_gateway_canonical_gen;

    if (g == NULL) {
        g = yajl_gen_alloc(NULL);
        if (g == NULL) {
            return NGX_ERROR;
        }

        yajl_gen_config(g, yajl_gen_print_callback,
                        ngx_http_ai_gateway_gen_out, NULL);

        ngx_http_ai_gateway_canonical_gen = g;
    }

    ngx_http_ai_gateway_canonical_print = print;
    ngx_http_ai_gateway_canonical_data = data;

    gs = ngx_http_ai_gateway_canonical_value(pool, g, t.root);

    yajl_gen_reset(g, NULL);

    if (gs == yajl_gen_status_ok) {
        return NGX_OK;
    }

    return (gs == yajl_gen_in_error_state) ? NGX_ERROR : NGX_DECLINED;
}


void
ngx_http_ai_gateway_canonical_exit_process(void)
{
    if (ngx_http_ai_gateway_canonical_gen) {
        yajl_gen_free(ngx_http_ai_gateway_canonical_gen);
        ngx_http_ai_gateway_canonical_gen = NULL;
    }
}


static void
ngx_http_ai_gateway_gen_out(void *ctx, const char *s, size_t len)
{
    ngx_http_ai_gateway_canonical_print(ngx_http_ai_gateway_canonical_data,
                                        s, len);
}


/* a value: added to the open object or array, or the root */

static ngx_http_ai_gateway_jnode_t *
ngx_http_ai_gateway_jnode(ngx_http_ai_gateway_jtree_t *t, u_char type)
{
    ngx_http_ai_gateway_jnode_t  *v, *parent;

    v = ngx_pcalloc(t->pool, sizeof(ngx_http_ai_gateway_jnode_t));
    if (v == NULL) {
        t->error = 1;
        return NULL;
    }

    v->type = type;

    parent = t->cur;

    if (parent == NULL) {
        if (t->root) {
            /* a second top-level value */
            return NULL;
        }

        t->root = v;
        return v;
    }

    v->parent = parent;
    v->index = parent->n++;

    if (parent->type == 'o') {
        v->key = t->key;
    }

    if (parent->last) {
        parent->last->next = v;

    } else {
        parent->child = v;
    }

    parent->last = v;

    return v;
}


static int
ngx_http_ai_gateway_j_null(void *ctx)
{
    return ngx_http_ai_gateway_jnode(ctx, 'z') != NULL;
}


static int
ngx_http_ai_gateway_j_boolean(void *ctx, int b)
{
    return ngx_http_ai_gateway_jnode(ctx, b ? 't' : 'f') != NULL;
}


static int
ngx_http_ai_gateway_j_number(void *ctx, const char *s, size_t len)
{
    ngx_http_ai_gateway_jtree_t *t = ctx;

    ngx_http_ai_gateway_jnode_t  *v;

    v = ngx_http_ai_gateway_jnode(t, 'n');
    if (v == NULL) {
        return 0;
    }

    v->text.data = ngx_pnalloc(t->pool, len);
    if (v->text.data == NULL) {
        t->error = 1;
        return 0;
    }

    v->text.len = len;
    ngx_memcpy(v->text.data, s, len);

    return 1;
}


static int
ngx_http_ai_gateway_j_string(void *ctx, const unsigned char *s, size_t len)
{
    ngx_http_ai_gateway_jtree_t *t = ctx;

    ngx_http_ai_gateway_jnode_t  *v;

    v = ngx_http_ai_gateway_jnode(t, 's');
    if (v == NULL) {
        return 0;
    }

    v->text.data = ngx_pnalloc(t->pool, len);
    if (v->text.data == NULL) {
        t->error = 1;
        return 0;
    }

    v->text.len = len;
    ngx_memcpy(v->text.data, s, len);

    return 1;
}


static int
ngx_http_ai_gateway_j_start_map(void *ctx)
{
    ngx_http_ai_gateway_jtree_t *t = ctx;

    ngx_http_ai_gateway_jnode_t  *v;

    if (++t->depth > NGX_HTTP_AI_GATEWAY_CANONICAL_DEPTH) {
        return 0;
    }

    v = ngx_http_ai_gateway_jnode(t, 'o');
    if (v == NULL) {
        return 0;
    }

    t->cur = v;

    return 1;
}


static int
ngx_http_ai_gateway_j_map_key(void *ctx, const unsigned char *s, size_t len)
{
    ngx_http_ai_gateway_jtree_t *t = ctx;

    t->key.data = ngx_pnalloc(t->pool, len);
    if (t->key.data == NULL) {
        t->error = 1;
        return 0;
    }

    t->key.len = len;
    ngx_memcpy(t->key.data, s, len);

    return 1;
}


static int
ngx_http_ai_gateway_j_start_array(void *ctx)
{
    ngx_http_ai_gateway_jtree_t *t = ctx;

    ngx_http_ai_gateway_jnode_t  *v;

    if (++t->depth > NGX_HTTP_AI_GATEWAY_CANONICAL_DEPTH) {
        return 0;
    }

    v = ngx_http_ai_gateway_jnode(t, 'a');
    if (v == NULL) {
        return 0;
    }

    t->cur = v;

    return 1;
}


static int
ngx_http_ai_gateway_j_end(void *ctx)
{
    ngx_http_ai_gateway_jtree_t *t = ctx;

    t->depth--;
    t->cur = t->cur->parent;

    return 1;
}


/* yajl's memory from the pool: a size word before each block, for realloc */

static void *
ngx_http_ai_gateway_j_malloc(void *ctx, size_t size)
{
    size_t  *p;

    p = ngx_palloc(ctx, sizeof(size_t) + size);
    if (p == NULL) {
        return NULL;
    }

    *p = size;

    return p + 1;
}


static void *
ngx_http_ai_gateway_j_realloc(void *ctx, void *p, size_t size)
{
    void  *n;

    n = ngx_http_ai_gateway_j_malloc(ctx, size);
    if (n == NULL) {
        return NULL;
    }

    if (p) {
        ngx_memcpy(n, p, ngx_min(size, ((size_t *) p)[-1]));
        ngx_http_ai_gateway_j_free(ctx, p);
    }

    return n;
}


static void
ngx_http_ai_gateway_j_free(void *ctx, void *p)
{
    if (p) {
        /* large blocks go back at once, small ones with the pool */
        (void) ngx_pfree(ctx, (size_t *) p - 1);
    }
}


static yajl_gen_status
ngx_http_ai_gateway_canonical_value(ngx_pool_t *pool, yajl_gen g,
    ngx_http_ai_gateway_jnode_t *v)
{
    ngx_uint_t                     i, n;
    yajl_gen_status                st;
    ngx_http_ai_gateway_jnode_t   *c, **m, *local[16];

    switch (v->type) {

    case 's':
        return yajl_gen_string(g, v->text.data, v->text.len);

    case 'n':
        return yajl_gen_number(g, (const char *) v->text.data, v->text.len);

    case 't':
        return yajl_gen_bool(g, 1);

    case 'f':
        return yajl_gen_bool(g, 0);

    case 'z':
        return yajl_gen_null(g);

    case 'a':
        st = yajl_gen_array_open(g);

        for (c = v->child; st == yajl_gen_status_ok && c; c = c->next) {
            st = ngx_http_ai_gateway_canonical_value(pool, g, c);
        }

        return st == yajl_gen_status_ok ? yajl_gen_array_close(g) : st;

    default: /* 'o' */

        n = v->n;

        if (n <= 16) {
            m = local;

        } else {
            m = ngx_palloc(pool, n * sizeof(ngx_http_ai_gateway_jnode_t *));
            if (m == NULL) {
                return yajl_gen_in_error_state;
            }
        }

        for (i = 0, c = v->child; c; c = c->next) {
            m[i++] = c;
        }

        qsort(m, n, sizeof(ngx_http_ai_gateway_jnode_t *),
              ngx_http_ai_gateway_member_cmp);

        st = yajl_gen_map_open(g);

        for (i = 0; st == yajl_gen_status_ok && i < n; i++) {
            st = yajl_gen_string(g, m[i]->key.data, m[i]->key.len);

            if (st == yajl_gen_status_ok) {
                st = ngx_http_ai_gateway_canonical_value(pool, g, m[i]);
            }
        }

        if (m != local) {
            ngx_pfree(pool, m);
        }

        return st == yajl_gen_status_ok ? yajl_gen_map_close(g) : st;
    }
}


static int
ngx_http_ai_gateway_member_cmp(const void *one, const void *two)
{
    int                           rc;
    ngx_http_ai_gateway_jnode_t  *a, *b;

    a = *(ngx_http_ai_gateway_jnode_t **) one;
    b = *(ngx_http_ai_gateway_jnode_t **) two;

    rc = ngx_memcmp(a->key.data, b->key.data, ngx_min(a->key.len, b->key.len));

    if (rc) {
        return rc;
    }

    if (a->key.len != b->key.len) {
        return (a->key.len < b->key.len) ? -1 : 1;
    }

    return (a->index < b->index) ? -1 : 1;
}
