
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/*
 * The references the module's JSON is compared with (t/unit/test_json.c,
 * fuzz/fuzz_json.c): yajl's own tree parser and generator on malloc(),
 * called as the module called them before it put them on its pools:
 * a NUL byte refused, the nesting checked first, "\u0000" kept as C0 80
 * and written back as "\u0000", a value nested deeper than 100 refused.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

#include "ngx_http_ai_gateway_json.h"
#include "yajl_ref.h"


#define YAJL_REF_DEPTH  100


typedef struct {
    u_char                        *buf;
    size_t                         len;
    size_t                         size;
} yajl_ref_buf_t;


typedef struct {
    ngx_uint_t                     depth;
} yajl_ref_depth_t;


static u_char *yajl_ref_nul(u_char *p, size_t len);
static void yajl_ref_print(void *ctx, const char *s, size_t len);
static ngx_uint_t yajl_ref_tree(yajl_gen g, yajl_val v, ngx_uint_t depth);
static ngx_uint_t yajl_ref_op(yajl_gen g, ngx_http_ai_gateway_gen_t *gen,
    u_char **pos, u_char *last, ngx_uint_t *done);
static int yajl_ref_open(void *ctx);
static int yajl_ref_close(void *ctx);


static yajl_callbacks  yajl_ref_depth_callbacks = {
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    yajl_ref_open,
    NULL,
    yajl_ref_close,
    yajl_ref_open,
    yajl_ref_close
};


/*
 * A tree freed with yajl_tree_free(), or NULL: not JSON, a NUL byte,
 * nested deeper than 100.  p need not end with a NUL.
 */

yajl_val
yajl_ref_parse(u_char *p, size_t len)
{
    char              errbuf[64];
    u_char           *copy, *nul;
    yajl_val          v;
    yajl_handle       h;
    yajl_status       st;
    yajl_ref_depth_t  d;

    if (memchr(p, '\0', len) != NULL) {
        return NULL;
    }

    d.depth = 0;

    h = yajl_alloc(&yajl_ref_depth_callbacks, NULL, &d);
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

    nul = yajl_ref_nul(p, len);

    if (nul == NULL) {
        copy = malloc(len + 1);
        if (copy == NULL) {
            return NULL;
        }

        memcpy(copy, p, len);
        copy[len] = '\0';

    } else {
        copy = nul;
    }

    v = yajl_tree_parse((const char *) copy, errbuf, sizeof(errbuf));

    free(copy);

    return v;
}


/* "\u0000" as C0 80: a copy with NUL after it, or NULL when there is none */

static u_char *
yajl_ref_nul(u_char *p, size_t len)
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

    copy = malloc(len + 1);
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


static int
yajl_ref_open(void *ctx)
{
    yajl_ref_depth_t *d = ctx;

    return ++d->depth <= YAJL_REF_DEPTH;
}


static int
yajl_ref_close(void *ctx)
{
    yajl_ref_depth_t *d = ctx;

    d->depth--;

    return 1;
}


/* two trees alike: types, texts, integer and double readings, members */

ngx_uint_t
yajl_ref_equal(yajl_val a, yajl_val b)
{
    size_t  i;

    if (a == NULL || b == NULL) {
        return a == b;
    }

    if (a->type != b->type) {
        return 0;
    }

    switch (a->type) {

    case yajl_t_string:
        return strcmp(a->u.string, b->u.string) == 0;

    case yajl_t_number:
        return strcmp(a->u.number.r, b->u.number.r) == 0
               && a->u.number.flags == b->u.number.flags
               && a->u.number.i == b->u.number.i
               && memcmp(&a->u.number.d, &b->u.number.d, sizeof(double))
                  == 0;

    case yajl_t_object:

        if (a->u.object.len != b->u.object.len) {
            return 0;
        }

        for (i = 0; i < a->u.object.len; i++) {
            if (strcmp(a->u.object.keys[i], b->u.object.keys[i]) != 0
                || !yajl_ref_equal(a->u.object.values[i],
                                   b->u.object.values[i]))
            {
                return 0;
            }
        }

        return 1;

    case yajl_t_array:

        if (a->u.array.len != b->u.array.len) {
            return 0;
        }

        for (i = 0; i < a->u.array.len; i++) {
            if (!yajl_ref_equal(a->u.array.values[i], b->u.array.values[i])) {
                return 0;
            }
        }

        return 1;

    default:
        return 1;
    }
}


/*
 * A value written by yajl_gen (malloc()ed into *out), or NGX_DECLINED:
 * what the module's generator writes and refuses.
 */

ngx_int_t
yajl_ref_text(yajl_val v, u_char **out, size_t *len)
{
    yajl_gen        g;
    ngx_uint_t      ok;
    yajl_ref_buf_t  b;

    b.buf = NULL;
    b.len = 0;
    b.size = 0;

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return NGX_ERROR;
    }

    yajl_gen_config(g, yajl_gen_validate_utf8, 1);
    yajl_gen_config(g, yajl_gen_print_callback, yajl_ref_print, &b);

    ok = yajl_ref_tree(g, v, 0);

    yajl_gen_free(g);

    if (!ok) {
        free(b.buf);
        return NGX_DECLINED;
    }

    *out = b.buf;
    *len = b.len;

    return NGX_OK;
}


/* a string as the module gave it to yajl_gen: C0 80 back to NUL */

ngx_uint_t
yajl_ref_string(yajl_gen g, const u_char *p, size_t len)
{
    u_char           *copy, *d;
    size_t            i;
    yajl_gen_status   st;

    copy = malloc(len + 1);
    if (copy == NULL) {
        return 0;
    }

    d = copy;

    for (i = 0; i < len; i++) {
        if (p[i] == 0xc0 && i + 1 < len && p[i + 1] == 0x80) {
            *d++ = '\0';
            i++;
            continue;
        }

        *d++ = p[i];
    }

    st = yajl_gen_string(g, copy, d - copy);

    free(copy);

    return st == yajl_gen_status_ok;
}


static ngx_uint_t
yajl_ref_tree(yajl_gen g, yajl_val v, ngx_uint_t depth)
{
    size_t  i;

    if (v == NULL) {
        return yajl_gen_null(g) == yajl_gen_status_ok;
    }

    switch (v->type) {

    case yajl_t_string:
        return yajl_ref_string(g, (u_char *) v->u.string,
                               strlen(v->u.string));

    case yajl_t_number:
        return yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r))
               == yajl_gen_status_ok;

    case yajl_t_object:

        if (depth >= YAJL_REF_DEPTH
            || yajl_gen_map_open(g) != yajl_gen_status_ok)
        {
            return 0;
        }

        for (i = 0; i < v->u.object.len; i++) {
            if (!yajl_ref_string(g, (u_char *) v->u.object.keys[i],
                                 strlen(v->u.object.keys[i]))
                || !yajl_ref_tree(g, v->u.object.values[i], depth + 1))
            {
                return 0;
            }
        }

        return yajl_gen_map_close(g) == yajl_gen_status_ok;

    case yajl_t_array:

        if (depth >= YAJL_REF_DEPTH
            || yajl_gen_array_open(g) != yajl_gen_status_ok)
        {
            return 0;
        }

        for (i = 0; i < v->u.array.len; i++) {
            if (!yajl_ref_tree(g, v->u.array.values[i], depth + 1)) {
                return 0;
            }
        }

        return yajl_gen_array_close(g) == yajl_gen_status_ok;

    case yajl_t_true:
        return yajl_gen_bool(g, 1) == yajl_gen_status_ok;

    case yajl_t_false:
        return yajl_gen_bool(g, 0) == yajl_gen_status_ok;

    default:
        return yajl_gen_null(g) == yajl_gen_status_ok;
    }
}


static void
yajl_ref_print(void *ctx, const char *s, size_t len)
{
    yajl_ref_buf_t *b = ctx;

    u_char  *p;

    if (b->len + len > b->size) {
        b->size = (b->len + len) * 2 + 64;

        p = realloc(b->buf, b->size);
        if (p == NULL) {
            abort();
        }

        b->buf = p;
    }

    memcpy(b->buf + b->len, s, len);
    b->len += len;
}


/*
 * The module's parser and generator against these: the same tree (or
 * both refuse the text), and the tree written the same (or both refuse
 * it).  Returns 0 and says why on stderr when they differ.
 */

ngx_uint_t
yajl_ref_same_parse(u_char *p, size_t len)
{
    u_char      *text;
    size_t       text_len;
    yajl_val     v, ref;
    ngx_int_t    rc, ref_rc;
    ngx_str_t    out;
    ngx_uint_t   same;
    ngx_pool_t  *pool;

    pool = ngx_create_pool(4096, NULL);
    if (pool == NULL) {
        return 0;
    }

    rc = ngx_http_ai_gateway_json_parse(pool, p, len, &v);
    ref = yajl_ref_parse(p, len);

    same = 0;

    if (rc == NGX_ERROR) {
        fprintf(stderr, "json_parse: no memory\n");
        goto done;
    }

    if ((rc == NGX_OK) != (ref != NULL)) {
        fprintf(stderr, "json_parse %s, yajl %s: %.*s\n",
                rc == NGX_OK ? "parses" : "refuses",
                ref ? "parses" : "refuses", (int) len, p);
        goto done;
    }

    if (ref == NULL) {
        same = 1;
        goto done;
    }

    if (!yajl_ref_equal(v, ref)) {
        fprintf(stderr, "json_parse and yajl differ: %.*s\n", (int) len, p);
        goto done;
    }

    rc = ngx_http_ai_gateway_json_text(pool, v, &out);
    ref_rc = yajl_ref_text(ref, &text, &text_len);

    if (rc != ref_rc) {
        fprintf(stderr, "gen %ld, yajl_gen %ld: %.*s\n", (long) rc,
                (long) ref_rc, (int) len, p);

    } else if (rc == NGX_OK
               && (out.len != text_len
                   || (text_len && memcmp(out.data, text, text_len) != 0)))
    {
        fprintf(stderr, "gen \"%.*s\", yajl_gen \"%.*s\"\n",
                (int) out.len, out.data, (int) text_len, text);

    } else {
        same = 1;
    }

    if (ref_rc == NGX_OK) {
        free(text);
    }

done:

    if (ref) {
        yajl_tree_free(ref);
    }

    ngx_destroy_pool(pool);

    return same;
}


/*
 * Generator calls read from the bytes, made on both generators until
 * one refuses one: both refuse the same call, and write the same bytes
 * until then.  A byte is a call (its value modulo 10): map, map end,
 * array, array end, a string (a length byte, then its bytes), an integer
 * (8 bytes), null, a boolean (a byte), a number's text, reset.
 */

ngx_uint_t
yajl_ref_same_gen(u_char *p, size_t len)
{
    u_char                     *last;
    yajl_gen                    g;
    ngx_uint_t                  same, done;
    ngx_pool_t                 *pool;
    yajl_ref_buf_t              b;
    ngx_http_ai_gateway_gen_t   gen;

    pool = ngx_create_pool(4096, NULL);
    if (pool == NULL) {
        return 0;
    }

    b.buf = NULL;
    b.len = 0;
    b.size = 0;

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        ngx_destroy_pool(pool);
        return 0;
    }

    yajl_gen_config(g, yajl_gen_validate_utf8, 1);
    yajl_gen_config(g, yajl_gen_print_callback, yajl_ref_print, &b);

    (void) ngx_http_ai_gateway_gen_init(&gen, pool);

    same = 1;
    done = 0;
    last = p + len;

    while (p < last && !done) {
        if (!yajl_ref_op(g, &gen, &p, last, &done)) {
            same = 0;
            break;
        }

        if (gen.nomem) {
            fprintf(stderr, "gen: no memory\n");
            same = 0;
            break;
        }

        if (!done
            && (gen.len != b.len
                || (b.len && memcmp(gen.buf, b.buf, b.len) != 0)))
        {
            fprintf(stderr, "gen \"%.*s\", yajl_gen \"%.*s\"\n",
                    (int) gen.len, gen.buf, (int) b.len, b.buf);
            same = 0;
            break;
        }
    }

    yajl_gen_free(g);
    free(b.buf);
    ngx_destroy_pool(pool);

    return same;
}


/* one call on both: 0 when only one refuses it; *done when both do */

static ngx_uint_t
yajl_ref_op(yajl_gen g, ngx_http_ai_gateway_gen_t *gen, u_char **pos,
    u_char *last, ngx_uint_t *done)
{
    u_char           *p, op;
    size_t            n;
    int64_t           i;
    ngx_uint_t        ok;
    yajl_gen_status   st;
    struct yajl_val_s number;

    static const char  *numbers[] = { "0", "-1.5e3", "12345678901234567890",
                                      "1E-7", "-0" };

    p = *pos;
    op = *p++ % 10;

    switch (op) {

    case 0:
        st = yajl_gen_map_open(g);
        ngx_http_ai_gateway_gen_map(gen);
        ok = (st == yajl_gen_status_ok);
        break;

    case 1:
        st = yajl_gen_map_close(g);
        ngx_http_ai_gateway_gen_map_end(gen);
        ok = (st == yajl_gen_status_ok);
        break;

    case 2:
        st = yajl_gen_array_open(g);
        ngx_http_ai_gateway_gen_array(gen);
        ok = (st == yajl_gen_status_ok);
        break;

    case 3:
        st = yajl_gen_array_close(g);
        ngx_http_ai_gateway_gen_array_end(gen);
        ok = (st == yajl_gen_status_ok);
        break;

    case 4:
        n = (p < last) ? *p++ % 32 : 0;
        n = ngx_min(n, (size_t) (last - p));
        ok = yajl_ref_string(g, p, n);
        ngx_http_ai_gateway_gen_str(gen, p, n);
        p += n;
        break;

    case 5:
        i = 0;
        n = ngx_min((size_t) 8, (size_t) (last - p));
        ngx_memcpy(&i, p, n);
        p += n;
        st = yajl_gen_integer(g, i);
        ngx_http_ai_gateway_gen_int(gen, i);
        ok = (st == yajl_gen_status_ok);
        break;

    case 6:
        st = yajl_gen_null(g);
        ngx_http_ai_gateway_gen_null(gen);
        ok = (st == yajl_gen_status_ok);
        break;

    case 7:
        n = (p < last) ? (*p++ & 1) : 0;
        st = yajl_gen_bool(g, (int) n);
        ngx_http_ai_gateway_gen_bool(gen, n);
        ok = (st == yajl_gen_status_ok);
        break;

    case 8:
        n = (p < last) ? *p++ % 5 : 0;
        st = yajl_gen_number(g, numbers[n], strlen(numbers[n]));
        number.type = yajl_t_number;
        number.u.number.r = (char *) numbers[n];
        ngx_http_ai_gateway_gen_value(gen, &number);
        ok = (st == yajl_gen_status_ok);
        break;

    default:
        yajl_gen_reset(g, NULL);
        ngx_http_ai_gateway_gen_reset(gen);
        ok = 1;
        break;
    }

    *pos = p;

    if (ok == !gen->invalid) {
        *done = !ok;
        return 1;
    }

    fprintf(stderr, "call %d: yajl_gen %s, gen %s\n", op,
            ok ? "accepts" : "refuses", gen->invalid ? "refuses" : "accepts");

    return 0;
}
