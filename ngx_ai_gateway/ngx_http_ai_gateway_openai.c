
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

#include "ngx_http_ai_gateway_openai.h"


#define NGX_HTTP_AI_GATEWAY_GEN_BUF   1024
#define NGX_HTTP_AI_GATEWAY_ERR_LEN   256

/* token counts above 2^53 are clamped: sums never overflow */
#define NGX_HTTP_AI_GATEWAY_MAX_COUNT  9007199254740992LL

/*
 * a double rounds to a finite float32 when its magnitude is below this:
 * FLT_MAX and half its ulp, (2^25 - 1) * 2^103 (which rounds to even:
 * infinity)
 */
#define NGX_HTTP_AI_GATEWAY_FLOAT_END  3.4028235677973366e38


typedef struct {
    ngx_uint_t                     depth;
} ngx_http_ai_gateway_depth_t;


/* the reader of one top-level field of a request */

typedef ngx_int_t (*ngx_http_ai_gateway_field_pt)(
    ngx_http_ai_gateway_openai_req_t *r, const char *key, yajl_val v);


static ngx_int_t ngx_http_ai_gateway_gen_open(ngx_http_ai_gateway_gen_t *gen,
    ngx_pool_t *pool);
static void ngx_http_ai_gateway_gen_print(void *ctx, const char *s,
    size_t len);
static void ngx_http_ai_gateway_gen_cleanup(void *data);
static void ngx_http_ai_gateway_gen_status(ngx_http_ai_gateway_gen_t *gen,
    yajl_gen_status st);
static void ngx_http_ai_gateway_gen_tree(ngx_http_ai_gateway_gen_t *gen,
    yajl_val v, ngx_uint_t depth);
static void ngx_http_ai_gateway_gen_call(ngx_http_ai_gateway_gen_t *gen,
    ngx_str_t *id, ngx_str_t *name, ngx_str_t *arguments,
    ngx_str_t *signature);
static void ngx_http_ai_gateway_gen_usage(ngx_http_ai_gateway_gen_t *gen,
    ngx_http_ai_gateway_usage_t *u);
static yajl_val ngx_http_ai_gateway_embedding(yajl_val list, size_t i,
    const char *key);
static void ngx_http_ai_gateway_float32(yajl_val v, u_char *p);
static void ngx_http_ai_gateway_tree_cleanup(void *data);
static ngx_uint_t ngx_http_ai_gateway_json_shallow(u_char *p, size_t len);
static u_char *ngx_http_ai_gateway_json_nul(u_char *p, size_t len);
static int ngx_http_ai_gateway_depth_open(void *ctx);
static int ngx_http_ai_gateway_depth_close(void *ctx);
static ngx_int_t ngx_http_ai_gateway_openai_read(ngx_pool_t *pool,
    yajl_val req, ngx_http_ai_gateway_dialect_t *d,
    ngx_http_ai_gateway_openai_req_t *r, ngx_str_t *err,
    ngx_http_ai_gateway_field_pt field);
static ngx_int_t ngx_http_ai_gateway_openai_open(
    ngx_http_ai_gateway_openai_req_t *r, ngx_http_ai_gateway_gen_t *gen);
static ngx_int_t ngx_http_ai_gateway_embed_field(
    ngx_http_ai_gateway_openai_req_t *r, const char *key, yajl_val v);
static ngx_int_t ngx_http_ai_gateway_embed_input(
    ngx_http_ai_gateway_openai_req_t *r, yajl_val v);
static ngx_int_t ngx_http_ai_gateway_openai_field(
    ngx_http_ai_gateway_openai_req_t *r, const char *key, yajl_val v);
static ngx_int_t ngx_http_ai_gateway_openai_number(
    ngx_http_ai_gateway_openai_req_t *r, const char *key, yajl_val v,
    yajl_val *number);
static ngx_int_t ngx_http_ai_gateway_openai_tools(
    ngx_http_ai_gateway_openai_req_t *r, yajl_val v);
static ngx_int_t ngx_http_ai_gateway_openai_choice(
    ngx_http_ai_gateway_openai_req_t *r, yajl_val v);
static ngx_int_t ngx_http_ai_gateway_openai_format(
    ngx_http_ai_gateway_openai_req_t *r, yajl_val v);
static ngx_int_t ngx_http_ai_gateway_openai_stop(
    ngx_http_ai_gateway_openai_req_t *r, yajl_val v);
static ngx_int_t ngx_http_ai_gateway_openai_effort(
    ngx_http_ai_gateway_openai_req_t *r, yajl_val v);
static ngx_int_t ngx_http_ai_gateway_openai_array(
    ngx_http_ai_gateway_openai_req_t *r, yajl_val v, ngx_array_t *a,
    size_t size);
static ngx_int_t ngx_http_ai_gateway_openai_content(
    ngx_http_ai_gateway_openai_req_t *r, yajl_val content, ngx_uint_t media,
    ngx_array_t *parts);
static ngx_int_t ngx_http_ai_gateway_openai_part(
    ngx_http_ai_gateway_openai_req_t *r, yajl_val v, ngx_uint_t media,
    ngx_http_ai_gateway_part_t *part);
static ngx_int_t ngx_http_ai_gateway_data_url(ngx_str_t *url,
    ngx_str_t *mime, ngx_str_t *data);
static ngx_int_t ngx_http_ai_gateway_join(ngx_pool_t *pool, ngx_array_t *a,
    ngx_str_t *out);
static void ngx_http_ai_gateway_chunk_begin(ngx_http_ai_gateway_chunks_t *ch,
    ngx_uint_t i);
static void ngx_http_ai_gateway_chunk_tool(ngx_http_ai_gateway_chunks_t *ch,
    ngx_uint_t i, ngx_uint_t n);
static void ngx_http_ai_gateway_chunk_close(ngx_http_ai_gateway_chunks_t *ch,
    const char *finish);
static void ngx_http_ai_gateway_chunk_head(ngx_http_ai_gateway_chunks_t *ch);
static void ngx_http_ai_gateway_chunk_check(ngx_http_ai_gateway_chunks_t *ch);
static ngx_int_t ngx_http_ai_gateway_stream_event(
    ngx_http_ai_gateway_stream_t *s, ngx_http_ai_gateway_sse_event_t *ev);
static ngx_int_t ngx_http_ai_gateway_stream_out(
    ngx_http_ai_gateway_stream_t *s, ngx_str_t *out);


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


/* "arguments": "" stands for no arguments */
static struct yajl_val_s  ngx_http_ai_gateway_empty_object = {
    yajl_t_object, { NULL }
};


/*
 * reasoning_effort to a thinking budget in tokens, the same for both
 * providers ("none": no thinking; 1024 is Anthropic's smallest budget,
 * 24576 Gemini 2.5 Flash's largest)
 */

static struct {
    ngx_str_t                      name;
    ngx_int_t                      budget;
} ngx_http_ai_gateway_efforts[] = {
    { ngx_string("none"), 0 },
    { ngx_string("minimal"), 1024 },
    { ngx_string("low"), 1024 },
    { ngx_string("medium"), 8192 },
    { ngx_string("high"), 24576 },
    { ngx_null_string, 0 }
};


/*
 * Request fields read elsewhere or dropped.  Dropped fields do not change
 * what the model says: "store", "metadata" (OpenAI's stored completions),
 * "service_tier", "prompt_cache_key", "safety_identifier" (routing and
 * billing hints) and "prediction" (a latency hint).
 */

static char  *ngx_http_ai_gateway_dropped[] = {
    "store",
    "metadata",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
    "prediction",
    NULL
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


static ngx_int_t
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
    u_char  *buf;
    size_t   size;

    if (gen->nomem || len == 0) {
        return;
    }

    if (gen->size - gen->len < len) {
        size = ngx_max(gen->size * 2, NGX_HTTP_AI_GATEWAY_GEN_BUF);

        while (size - gen->len < len) {
            size *= 2;
        }

        buf = ngx_pnalloc(gen->pool, size);
        if (buf == NULL) {
            gen->nomem = 1;
            return;
        }

        if (gen->buf != NULL) {
            ngx_memcpy(buf, gen->buf, gen->len);
            ngx_pfree(gen->pool, gen->buf);
        }

        gen->buf = buf;
        gen->size = size;
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


/* requests */

/*
 * Reads and checks the client's OpenAI request.  What no provider can do
 * is refused here, then what the dialect cannot express (d->refuse).  Sets
 * the stream flags of c and opens the native request's object in gen.
 */

ngx_int_t
ngx_http_ai_gateway_openai_request(ngx_pool_t *pool, yajl_val req,
    ngx_http_ai_gateway_dialect_t *d, ngx_http_ai_gateway_compat_t *c,
    ngx_http_ai_gateway_openai_req_t *r, ngx_http_ai_gateway_gen_t *gen,
    ngx_str_t *err)
{
    ngx_int_t  rc;

    rc = ngx_http_ai_gateway_openai_read(pool, req, d, r, err,
                                         ngx_http_ai_gateway_openai_field);
    if (rc != NGX_OK) {
        return rc;
    }

    if (r->messages == NULL) {
        return ngx_http_ai_gateway_openai_fail(r,
                                      "\"messages\" must be a non-empty array");
    }

    if (r->tool_choice != NGX_HTTP_AI_GATEWAY_CHOICE_UNSET
        && r->tools.nelts == 0)
    {
        if (r->tool_choice == NGX_HTTP_AI_GATEWAY_CHOICE_REQUIRED
            || r->tool_choice == NGX_HTTP_AI_GATEWAY_CHOICE_FUNCTION)
        {
            return ngx_http_ai_gateway_openai_fail(r,
                                 "\"tool_choice\" requires \"tools\"");
        }

        /* "auto" and "none" without tools: nothing to say */

        r->tool_choice = NGX_HTTP_AI_GATEWAY_CHOICE_UNSET;
    }

    if (!r->stream) {
        r->include_usage = 0;
    }

    rc = d->refuse(r);
    if (rc != NGX_OK) {
        return rc;
    }

    c->stream = r->stream;
    c->include_usage = r->include_usage;

    return ngx_http_ai_gateway_openai_open(r, gen);
}


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


/* the request's fields, each read by "field" */

static ngx_int_t
ngx_http_ai_gateway_openai_read(ngx_pool_t *pool, yajl_val req,
    ngx_http_ai_gateway_dialect_t *d, ngx_http_ai_gateway_openai_req_t *r,
    ngx_str_t *err, ngx_http_ai_gateway_field_pt field)
{
    size_t     i;
    ngx_int_t  rc;

    ngx_memzero(r, sizeof(ngx_http_ai_gateway_openai_req_t));

    r->pool = pool;
    r->dialect = d;
    r->provider = d->provider;
    r->err = err;
    r->n = 1;

    if (ngx_array_init(&r->tools, pool, 4, sizeof(ngx_http_ai_gateway_tool_t))
        != NGX_OK
        || ngx_array_init(&r->stop, pool, 4, sizeof(ngx_str_t)) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (!YAJL_IS_OBJECT(req)) {
        return ngx_http_ai_gateway_openai_fail(r,
                                      "the request must be a JSON object");
    }

    for (i = 0; i < req->u.object.len; i++) {
        rc = field(r, req->u.object.keys[i], req->u.object.values[i]);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


/* the native request's object opened */

static ngx_int_t
ngx_http_ai_gateway_openai_open(ngx_http_ai_gateway_openai_req_t *r,
    ngx_http_ai_gateway_gen_t *gen)
{
    if (ngx_http_ai_gateway_gen_init(gen, r->pool) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_ai_gateway_gen_map(gen);

    return NGX_OK;
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
 * The text parts of the system and developer messages, in order; every
 * message is checked for a "role" on the way.
 */

ngx_int_t
ngx_http_ai_gateway_openai_system(ngx_http_ai_gateway_openai_req_t *r,
    ngx_array_t *parts)
{
    size_t     i;
    yajl_val   m, role;
    ngx_int_t  rc;

    if (ngx_array_init(parts, r->pool, 1, sizeof(ngx_http_ai_gateway_part_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < r->messages->u.array.len; i++) {
        m = r->messages->u.array.values[i];
        role = ngx_http_ai_gateway_json_get(m, "role");
        r->msg = i;

        if (!YAJL_IS_STRING(role)) {
            return ngx_http_ai_gateway_openai_fail(r,
                                 "messages[%ui] needs a \"role\"", i);
        }

        if (!ngx_http_ai_gateway_json_is(role, "system")
            && !ngx_http_ai_gateway_json_is(role, "developer"))
        {
            continue;
        }

        rc = ngx_http_ai_gateway_openai_content(r,
                                   ngx_http_ai_gateway_json_get(m, "content"),
                                   0, parts);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


/* a turn opened: {"role":role,<the dialect's content key>: */

void
ngx_http_ai_gateway_gen_turn(ngx_http_ai_gateway_gen_t *gen,
    ngx_http_ai_gateway_openai_req_t *r, const char *role)
{
    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_literal(gen, "role");
    ngx_http_ai_gateway_gen_str(gen, (u_char *) role, ngx_strlen(role));
    ngx_http_ai_gateway_gen_str(gen, (u_char *) r->dialect->content,
                                ngx_strlen(r->dialect->content));
}


/*
 * The other messages, in order, as the dialect's turns (an array), after
 * ngx_http_ai_gateway_openai_system() checked every "role"; consecutive
 * tool results are one user turn.  "data" is the dialect's, passed to its
 * turn writers.
 */

ngx_int_t
ngx_http_ai_gateway_openai_messages(ngx_http_ai_gateway_openai_req_t *r,
    ngx_http_ai_gateway_gen_t *gen, void *data)
{
    size_t                          i;
    yajl_val                        m, role;
    ngx_int_t                       rc;
    ngx_uint_t                      results;
    ngx_http_ai_gateway_dialect_t  *d;

    d = r->dialect;
    results = 0;

    ngx_http_ai_gateway_gen_array(gen);

    for (i = 0; i < r->messages->u.array.len; i++) {
        m = r->messages->u.array.values[i];
        role = ngx_http_ai_gateway_json_get(m, "role");
        r->msg = i;

        if (ngx_http_ai_gateway_json_is(role, "system")
            || ngx_http_ai_gateway_json_is(role, "developer"))
        {
            continue;
        }

        if (ngx_http_ai_gateway_json_is(role, "tool")) {

            if (!results) {
                results = 1;

                ngx_http_ai_gateway_gen_turn(gen, r, "user");
                ngx_http_ai_gateway_gen_array(gen);
            }

            rc = d->result(r, gen, m, data);
            if (rc != NGX_OK) {
                return rc;
            }

            continue;
        }

        if (results) {
            results = 0;

            ngx_http_ai_gateway_gen_array_end(gen);
            ngx_http_ai_gateway_gen_map_end(gen);
        }

        if (ngx_http_ai_gateway_json_is(role, "user")) {
            rc = d->user(r, gen, m, data);

        } else if (ngx_http_ai_gateway_json_is(role, "assistant")) {
            rc = d->assistant(r, gen, m, data);

        } else {
            rc = ngx_http_ai_gateway_openai_fail(r,
                            "messages[%ui]: role \"%s\" is not supported for "
                            "%s models", i, role->u.string, r->provider);
        }

        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (results) {
        ngx_http_ai_gateway_gen_array_end(gen);
        ngx_http_ai_gateway_gen_map_end(gen);
    }

    ngx_http_ai_gateway_gen_array_end(gen);

    return NGX_OK;
}


/* a user message's parts, images and files allowed; its turn opened */

ngx_int_t
ngx_http_ai_gateway_openai_user(ngx_http_ai_gateway_openai_req_t *r,
    ngx_http_ai_gateway_gen_t *gen, yajl_val msg, ngx_array_t *parts)
{
    ngx_int_t  rc;

    rc = ngx_http_ai_gateway_openai_parts(r, msg, 1, parts);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_http_ai_gateway_gen_turn(gen, r, "user");

    return NGX_OK;
}


/* the native request's object closed and its text */

ngx_int_t
ngx_http_ai_gateway_openai_done(ngx_http_ai_gateway_openai_req_t *r,
    ngx_http_ai_gateway_gen_t *gen, ngx_str_t *out)
{
    ngx_int_t  rc;

    ngx_http_ai_gateway_gen_map_end(gen);

    rc = ngx_http_ai_gateway_gen_done(gen, out);

    if (rc == NGX_DECLINED) {
        return ngx_http_ai_gateway_openai_fail(r,
                      "the request has invalid UTF-8 or is nested too deeply");
    }

    return rc;
}


static ngx_int_t
ngx_http_ai_gateway_openai_field(ngx_http_ai_gateway_openai_req_t *r,
    const char *key, yajl_val v)
{
    yajl_val     o;
    ngx_uint_t   i;

    if (ngx_strcmp(key, "model") == 0) {
        if (ngx_http_ai_gateway_json_str(v, &r->model) != NGX_OK) {
            return ngx_http_ai_gateway_openai_fail(r,
                                         "\"model\" must be a string");
        }

        return NGX_OK;
    }

    if (ngx_strcmp(key, "messages") == 0) {
        if (!YAJL_IS_ARRAY(v) || v->u.array.len == 0) {
            return ngx_http_ai_gateway_openai_fail(r,
                                      "\"messages\" must be a non-empty array");
        }

        for (i = 0; i < v->u.array.len; i++) {
            if (!YAJL_IS_OBJECT(v->u.array.values[i])) {
                return ngx_http_ai_gateway_openai_fail(r,
                                  "messages[%ui] must be an object", i);
            }
        }

        r->messages = v;
        return NGX_OK;
    }

    if (ngx_strcmp(key, "tools") == 0) {
        return ngx_http_ai_gateway_openai_tools(r, v);
    }

    if (ngx_strcmp(key, "tool_choice") == 0) {
        return ngx_http_ai_gateway_openai_choice(r, v);
    }

    if (ngx_strcmp(key, "parallel_tool_calls") == 0) {
        if (YAJL_IS_FALSE(v)) {
            r->no_parallel = 1;

        } else if (!YAJL_IS_TRUE(v) && !YAJL_IS_NULL(v)) {
            return ngx_http_ai_gateway_openai_fail(r,
                             "\"parallel_tool_calls\" must be a boolean");
        }

        return NGX_OK;
    }

    if (ngx_strcmp(key, "response_format") == 0) {
        return ngx_http_ai_gateway_openai_format(r, v);
    }

    if (ngx_strcmp(key, "stop") == 0) {
        return ngx_http_ai_gateway_openai_stop(r, v);
    }

    if (ngx_strcmp(key, "temperature") == 0) {
        return ngx_http_ai_gateway_openai_number(r, key, v, &r->temperature);
    }

    if (ngx_strcmp(key, "top_p") == 0) {
        return ngx_http_ai_gateway_openai_number(r, key, v, &r->top_p);
    }

    if (ngx_strcmp(key, "top_k") == 0) {
        return ngx_http_ai_gateway_openai_number(r, key, v, &r->top_k);
    }

    if (ngx_strcmp(key, "seed") == 0) {
        return ngx_http_ai_gateway_openai_number(r, key, v, &r->seed);
    }

    if (ngx_strcmp(key, "presence_penalty") == 0) {
        return ngx_http_ai_gateway_openai_number(r, key, v,
                                                 &r->presence_penalty);
    }

    if (ngx_strcmp(key, "frequency_penalty") == 0) {
        return ngx_http_ai_gateway_openai_number(r, key, v,
                                                 &r->frequency_penalty);
    }

    if (ngx_strcmp(key, "max_tokens") == 0
        || ngx_strcmp(key, "max_completion_tokens") == 0)
    {
        if (YAJL_IS_NULL(v)) {
            return NGX_OK;
        }

        if (!YAJL_IS_INTEGER(v) || v->u.number.i < 1) {
            return ngx_http_ai_gateway_openai_fail(r,
                              "\"%s\" must be a positive integer", key);
        }

        /* max_completion_tokens wins over the deprecated max_tokens */

        if (!r->has_max_tokens || key[4] == 'c') {
            r->max_tokens = v->u.number.i;
            r->has_max_tokens = 1;
        }

        return NGX_OK;
    }

    if (ngx_strcmp(key, "n") == 0) {
        if (YAJL_IS_NULL(v)) {
            return NGX_OK;
        }

        if (!YAJL_IS_INTEGER(v) || v->u.number.i < 1) {
            return ngx_http_ai_gateway_openai_fail(r,
                                      "\"n\" must be a positive integer");
        }

        r->n = (v->u.number.i > NGX_HTTP_AI_GATEWAY_MAX_CHOICES)
               ? NGX_HTTP_AI_GATEWAY_MAX_CHOICES + 1 : v->u.number.i;

        return NGX_OK;
    }

    if (ngx_strcmp(key, "user") == 0) {
        if (YAJL_IS_NULL(v)) {
            return NGX_OK;
        }

        if (ngx_http_ai_gateway_json_str(v, &r->user) != NGX_OK) {
            return ngx_http_ai_gateway_openai_fail(r,
                                          "\"user\" must be a string");
        }

        return NGX_OK;
    }

    if (ngx_strcmp(key, "reasoning_effort") == 0) {
        return ngx_http_ai_gateway_openai_effort(r, v);
    }

    if (ngx_strcmp(key, "stream") == 0) {
        if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v) && !YAJL_IS_NULL(v)) {
            return ngx_http_ai_gateway_openai_fail(r,
                                        "\"stream\" must be a boolean");
        }

        r->stream = YAJL_IS_TRUE(v);
        return NGX_OK;
    }

    if (ngx_strcmp(key, "stream_options") == 0) {
        if (YAJL_IS_NULL(v)) {
            return NGX_OK;
        }

        if (!YAJL_IS_OBJECT(v)) {
            return ngx_http_ai_gateway_openai_fail(r,
                                   "\"stream_options\" must be an object");
        }

        o = ngx_http_ai_gateway_json_get(v, "include_usage");
        r->include_usage = YAJL_IS_TRUE(o);

        /* include_obfuscation and others only shape the stream */

        return NGX_OK;
    }

    if (ngx_strcmp(key, "logprobs") == 0) {
        if (YAJL_IS_TRUE(v)) {
            return ngx_http_ai_gateway_openai_fail(r,
                         "\"logprobs\" is not supported for %s models",
                         r->provider);
        }

        return NGX_OK;
    }

    if (ngx_strcmp(key, "logit_bias") == 0) {
        if (YAJL_IS_NULL(v) || (YAJL_IS_OBJECT(v) && v->u.object.len == 0)) {
            return NGX_OK;
        }

        return ngx_http_ai_gateway_openai_fail(r,
                       "\"logit_bias\" is not supported for %s models",
                       r->provider);
    }

    if (ngx_strcmp(key, "modalities") == 0) {
        if (YAJL_IS_NULL(v)
            || (YAJL_IS_ARRAY(v) && v->u.array.len == 1
                && ngx_http_ai_gateway_json_is(v->u.array.values[0], "text")))
        {
            return NGX_OK;
        }

        return ngx_http_ai_gateway_openai_fail(r,
                       "only the \"text\" modality is supported for %s models",
                       r->provider);
    }

    if (ngx_strcmp(key, "top_logprobs") == 0
        || ngx_strcmp(key, "audio") == 0
        || ngx_strcmp(key, "web_search_options") == 0
        || ngx_strcmp(key, "verbosity") == 0)
    {
        if (YAJL_IS_NULL(v)) {
            return NGX_OK;
        }

        return ngx_http_ai_gateway_openai_fail(r,
                               "\"%s\" is not supported for %s models",
                               key, r->provider);
    }

    if (ngx_strcmp(key, "functions") == 0
        || ngx_strcmp(key, "function_call") == 0)
    {
        if (YAJL_IS_NULL(v)) {
            return NGX_OK;
        }

        return ngx_http_ai_gateway_openai_fail(r,
                       "\"%s\" is not supported, use \"tools\" and "
                       "\"tool_choice\"", key);
    }

    for (i = 0; ngx_http_ai_gateway_dropped[i] != NULL; i++) {
        if (ngx_strcmp(key, ngx_http_ai_gateway_dropped[i]) == 0) {
            return NGX_OK;
        }
    }

    return ngx_http_ai_gateway_openai_fail(r,
                       "unsupported parameter \"%s\" for %s models",
                       key, r->provider);
}


static ngx_int_t
ngx_http_ai_gateway_openai_number(ngx_http_ai_gateway_openai_req_t *r,
    const char *key, yajl_val v, yajl_val *number)
{
    if (YAJL_IS_NULL(v)) {
        *number = NULL;
        return NGX_OK;
    }

    if (!YAJL_IS_NUMBER(v)) {
        return ngx_http_ai_gateway_openai_fail(r, "\"%s\" must be a number",
                                               key);
    }

    *number = v;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_openai_tools(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val v)
{
    size_t                       i;
    yajl_val                     t, f, type;
    ngx_http_ai_gateway_tool_t  *tool;

    if (YAJL_IS_NULL(v)) {
        return NGX_OK;
    }

    if (!YAJL_IS_ARRAY(v)) {
        return ngx_http_ai_gateway_openai_fail(r,
                                               "\"tools\" must be an array");
    }

    for (i = 0; i < v->u.array.len; i++) {
        t = v->u.array.values[i];

        type = ngx_http_ai_gateway_json_get(t, "type");

        if (!ngx_http_ai_gateway_json_is(type, "function")) {
            return ngx_http_ai_gateway_openai_fail(r,
                          "tools[%ui]: only \"function\" tools are supported "
                          "for %s models", i, r->provider);
        }

        tool = ngx_array_push(&r->tools);
        if (tool == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(tool, sizeof(ngx_http_ai_gateway_tool_t));

        f = ngx_http_ai_gateway_json_get(t, "function");

        if (ngx_http_ai_gateway_json_str(ngx_http_ai_gateway_json_get(f,
                                                                      "name"),
                                         &tool->name)
            != NGX_OK
            || tool->name.len == 0)
        {
            return ngx_http_ai_gateway_openai_fail(r,
                                  "tools[%ui].function.name must be a string",
                                  i);
        }

        (void) ngx_http_ai_gateway_json_str(
                   ngx_http_ai_gateway_json_get(f, "description"),
                   &tool->description);

        tool->parameters = ngx_http_ai_gateway_json_get(f, "parameters");

        if (tool->parameters != NULL && YAJL_IS_NULL(tool->parameters)) {
            tool->parameters = NULL;
        }

        if (tool->parameters != NULL && !YAJL_IS_OBJECT(tool->parameters)) {
            return ngx_http_ai_gateway_openai_fail(r,
                          "tools[%ui].function.parameters must be an object",
                          i);
        }

        tool->strict = ngx_http_ai_gateway_json_get(f, "strict");

        if (!YAJL_IS_TRUE(tool->strict) && !YAJL_IS_FALSE(tool->strict)) {
            tool->strict = NULL;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_openai_choice(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val v)
{
    yajl_val  f;

    if (YAJL_IS_NULL(v)) {
        return NGX_OK;
    }

    if (ngx_http_ai_gateway_json_is(v, "auto")) {
        r->tool_choice = NGX_HTTP_AI_GATEWAY_CHOICE_AUTO;
        return NGX_OK;
    }

    if (ngx_http_ai_gateway_json_is(v, "none")) {
        r->tool_choice = NGX_HTTP_AI_GATEWAY_CHOICE_NONE;
        return NGX_OK;
    }

    if (ngx_http_ai_gateway_json_is(v, "required")) {
        r->tool_choice = NGX_HTTP_AI_GATEWAY_CHOICE_REQUIRED;
        return NGX_OK;
    }

    if (ngx_http_ai_gateway_json_is(ngx_http_ai_gateway_json_get(v, "type"),
                                    "function"))
    {
        f = ngx_http_ai_gateway_json_get(v, "function");

        if (ngx_http_ai_gateway_json_str(ngx_http_ai_gateway_json_get(f,
                                                                      "name"),
                                         &r->tool_name)
            == NGX_OK
            && r->tool_name.len)
        {
            r->tool_choice = NGX_HTTP_AI_GATEWAY_CHOICE_FUNCTION;
            return NGX_OK;
        }
    }

    return ngx_http_ai_gateway_openai_fail(r,
                     "\"tool_choice\" must be \"auto\", \"none\", "
                     "\"required\" or {\"type\":\"function\",\"function\":"
                     "{\"name\":...}} for %s models", r->provider);
}


static ngx_int_t
ngx_http_ai_gateway_openai_format(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val v)
{
    yajl_val  type, js;

    if (YAJL_IS_NULL(v)) {
        return NGX_OK;
    }

    type = ngx_http_ai_gateway_json_get(v, "type");

    if (ngx_http_ai_gateway_json_is(type, "text")) {
        r->format = NGX_HTTP_AI_GATEWAY_FORMAT_TEXT;
        return NGX_OK;
    }

    if (ngx_http_ai_gateway_json_is(type, "json_object")) {
        r->format = NGX_HTTP_AI_GATEWAY_FORMAT_JSON;
        return NGX_OK;
    }

    if (ngx_http_ai_gateway_json_is(type, "json_schema")) {
        js = ngx_http_ai_gateway_json_get(v, "json_schema");

        if (!YAJL_IS_OBJECT(js)) {
            return ngx_http_ai_gateway_openai_fail(r,
                          "\"response_format.json_schema\" must be an object");
        }

        r->schema = ngx_http_ai_gateway_json_get(js, "schema");

        if (!YAJL_IS_OBJECT(r->schema)) {
            return ngx_http_ai_gateway_openai_fail(r,
                   "\"response_format.json_schema.schema\" must be an object");
        }

        /* "name", "description" and "strict" only label the schema */

        r->format = NGX_HTTP_AI_GATEWAY_FORMAT_SCHEMA;
        return NGX_OK;
    }

    return ngx_http_ai_gateway_openai_fail(r,
                     "\"response_format.type\" must be \"text\", "
                     "\"json_object\" or \"json_schema\"");
}


static ngx_int_t
ngx_http_ai_gateway_openai_stop(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val v)
{
    size_t      i;
    ngx_str_t  *s;

    if (YAJL_IS_NULL(v)) {
        return NGX_OK;
    }

    if (YAJL_IS_STRING(v)) {
        s = ngx_array_push(&r->stop);
        if (s == NULL) {
            return NGX_ERROR;
        }

        (void) ngx_http_ai_gateway_json_str(v, s);
        return NGX_OK;
    }

    if (!YAJL_IS_ARRAY(v)) {
        return ngx_http_ai_gateway_openai_fail(r,
                          "\"stop\" must be a string or an array of strings");
    }

    for (i = 0; i < v->u.array.len; i++) {
        s = ngx_array_push(&r->stop);
        if (s == NULL) {
            return NGX_ERROR;
        }

        if (ngx_http_ai_gateway_json_str(v->u.array.values[i], s) != NGX_OK) {
            return ngx_http_ai_gateway_openai_fail(r,
                          "\"stop\" must be a string or an array of strings");
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_openai_effort(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val v)
{
    ngx_uint_t  i;

    if (YAJL_IS_NULL(v)) {
        return NGX_OK;
    }

    if (ngx_http_ai_gateway_json_str(v, &r->effort) == NGX_OK) {

        for (i = 0; ngx_http_ai_gateway_efforts[i].name.len; i++) {
            if (r->effort.len == ngx_http_ai_gateway_efforts[i].name.len
                && ngx_strncmp(r->effort.data,
                               ngx_http_ai_gateway_efforts[i].name.data,
                               r->effort.len)
                   == 0)
            {
                r->budget = ngx_http_ai_gateway_efforts[i].budget;
                r->has_effort = 1;
                return NGX_OK;
            }
        }
    }

    return ngx_http_ai_gateway_openai_fail(r,
                     "\"reasoning_effort\" must be \"none\", \"minimal\", "
                     "\"low\", \"medium\" or \"high\" for %s models",
                     r->provider);
}


/*
 * A message's "content" as checked parts: a string is one text part,
 * null none.  "media": images and files are allowed (user messages).
 */

ngx_int_t
ngx_http_ai_gateway_openai_parts(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val msg, ngx_uint_t media, ngx_array_t *parts)
{
    yajl_val  content;

    content = ngx_http_ai_gateway_json_get(msg, "content");

    if (ngx_http_ai_gateway_openai_array(r, content, parts,
                                         sizeof(ngx_http_ai_gateway_part_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_ai_gateway_openai_content(r, content, media, parts);
}


/* an array for the elements of v: as many as v has, or one */

static ngx_int_t
ngx_http_ai_gateway_openai_array(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val v, ngx_array_t *a, size_t size)
{
    return ngx_array_init(a, r->pool,
                          YAJL_IS_ARRAY(v) && v->u.array.len
                          ? v->u.array.len : 1,
                          size);
}


/* the checked parts of a message's "content" added to parts */

static ngx_int_t
ngx_http_ai_gateway_openai_content(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val content, ngx_uint_t media, ngx_array_t *parts)
{
    size_t                       i;
    ngx_int_t                    rc;
    ngx_http_ai_gateway_part_t  *part;

    if (content == NULL || YAJL_IS_NULL(content)) {
        return NGX_OK;
    }

    if (YAJL_IS_STRING(content)) {
        part = ngx_array_push(parts);
        if (part == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(part, sizeof(ngx_http_ai_gateway_part_t));

        part->type = NGX_HTTP_AI_GATEWAY_PART_TEXT;
        (void) ngx_http_ai_gateway_json_str(content, &part->text);

        return NGX_OK;
    }

    if (!YAJL_IS_ARRAY(content)) {
        return ngx_http_ai_gateway_openai_fail(r,
                   "messages[%ui]: \"content\" must be a string or an array "
                   "of parts", r->msg);
    }

    for (i = 0; i < content->u.array.len; i++) {
        part = ngx_array_push(parts);
        if (part == NULL) {
            return NGX_ERROR;
        }

        rc = ngx_http_ai_gateway_openai_part(r, content->u.array.values[i],
                                             media, part);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_openai_part(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val v, ngx_uint_t media, ngx_http_ai_gateway_part_t *part)
{
    yajl_val   type, o;
    ngx_str_t  url;

    ngx_memzero(part, sizeof(ngx_http_ai_gateway_part_t));

    type = ngx_http_ai_gateway_json_get(v, "type");

    if (ngx_http_ai_gateway_json_is(type, "text")
        || ngx_http_ai_gateway_json_is(type, "refusal"))
    {
        o = ngx_http_ai_gateway_json_get(v, type->u.string);

        if (ngx_http_ai_gateway_json_str(o, &part->text) != NGX_OK) {
            return ngx_http_ai_gateway_openai_fail(r,
                                 "messages[%ui]: a \"%s\" part needs a \"%s\" "
                                 "string", r->msg, type->u.string,
                                 type->u.string);
        }

        part->type = NGX_HTTP_AI_GATEWAY_PART_TEXT;
        return NGX_OK;
    }

    if (ngx_http_ai_gateway_json_is(type, "input_audio")) {
        return ngx_http_ai_gateway_openai_fail(r,
                             "messages[%ui]: audio input is not supported "
                             "for %s models", r->msg, r->provider);
    }

    if (!ngx_http_ai_gateway_json_is(type, "image_url")
        && !ngx_http_ai_gateway_json_is(type, "file"))
    {
        return ngx_http_ai_gateway_openai_fail(r,
                             "messages[%ui]: content parts of type \"%s\" "
                             "are not supported for %s models", r->msg,
                             YAJL_IS_STRING(type) ? type->u.string : "?",
                             r->provider);
    }

    if (!media) {
        return ngx_http_ai_gateway_openai_fail(r,
                             "messages[%ui]: \"%s\" parts are only supported "
                             "in user messages", r->msg, type->u.string);
    }

    if (type->u.string[0] == 'i') {
        o = ngx_http_ai_gateway_json_get(v, "image_url");

        if (YAJL_IS_OBJECT(o)) {
            /* "detail" is a resolution hint with no equivalent: dropped */
            o = ngx_http_ai_gateway_json_get(o, "url");
        }

        if (ngx_http_ai_gateway_json_str(o, &url) != NGX_OK) {
            return ngx_http_ai_gateway_openai_fail(r,
                                 "messages[%ui]: an \"image_url\" part needs a "
                                 "\"url\"", r->msg);
        }

        part->type = NGX_HTTP_AI_GATEWAY_PART_IMAGE;

        if ((url.len > 7 && ngx_strncasecmp(url.data, (u_char *) "http://", 7)
                            == 0)
            || (url.len > 8
                && ngx_strncasecmp(url.data, (u_char *) "https://", 8) == 0))
        {
            part->url = url;
            return NGX_OK;
        }

        if (ngx_http_ai_gateway_data_url(&url, &part->mime, &part->data)
            == NGX_OK)
        {
            return NGX_OK;
        }

        return ngx_http_ai_gateway_openai_fail(r,
                     "messages[%ui]: \"image_url.url\" must be an http(s) URL "
                     "or a base64 data URL", r->msg);
    }

    o = ngx_http_ai_gateway_json_get(v, "file");

    if (ngx_http_ai_gateway_json_get(o, "file_id") != NULL) {
        return ngx_http_ai_gateway_openai_fail(r,
                     "messages[%ui]: \"file.file_id\" is not supported for %s "
                     "models, send \"file.file_data\"", r->msg, r->provider);
    }

    if (ngx_http_ai_gateway_json_str(ngx_http_ai_gateway_json_get(o,
                                                                  "file_data"),
                                     &url)
        != NGX_OK
        || ngx_http_ai_gateway_data_url(&url, &part->mime, &part->data)
           != NGX_OK)
    {
        return ngx_http_ai_gateway_openai_fail(r,
                     "messages[%ui]: \"file.file_data\" must be a base64 data "
                     "URL", r->msg);
    }

    (void) ngx_http_ai_gateway_json_str(ngx_http_ai_gateway_json_get(o,
                                                                  "filename"),
                                        &part->filename);

    part->type = NGX_HTTP_AI_GATEWAY_PART_FILE;

    return NGX_OK;
}


/* "data:<mime>[;param]...;base64,<data>" */

static ngx_int_t
ngx_http_ai_gateway_data_url(ngx_str_t *url, ngx_str_t *mime,
    ngx_str_t *data)
{
    u_char  *p, *last, *comma, *semi;

    if (url->len < 5 || ngx_strncasecmp(url->data, (u_char *) "data:", 5) != 0)
    {
        return NGX_DECLINED;
    }

    p = url->data + 5;
    last = url->data + url->len;

    comma = ngx_strlchr(p, last, ',');

    if (comma == NULL
        || comma - p < 7
        || ngx_strncasecmp(comma - 7, (u_char *) ";base64", 7) != 0)
    {
        return NGX_DECLINED;
    }

    semi = ngx_strlchr(p, comma, ';');

    if (semi == p) {
        return NGX_DECLINED;
    }

    mime->data = p;
    mime->len = semi - p;

    data->data = comma + 1;
    data->len = last - comma - 1;

    return NGX_OK;
}


/* whether parts say anything: a part that is not empty text */

ngx_uint_t
ngx_http_ai_gateway_openai_some(ngx_array_t *parts)
{
    ngx_uint_t                   i;
    ngx_http_ai_gateway_part_t  *part;

    part = parts->elts;

    for (i = 0; i < parts->nelts; i++) {
        if (part[i].type != NGX_HTTP_AI_GATEWAY_PART_TEXT
            || part[i].text.len)
        {
            return 1;
        }
    }

    return 0;
}


/* the text of a message's content (string or text parts, concatenated) */

ngx_int_t
ngx_http_ai_gateway_openai_text(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val msg, ngx_str_t *text)
{
    u_char                      *p;
    size_t                       len;
    ngx_int_t                    rc;
    ngx_uint_t                   i;
    ngx_array_t                  parts;
    ngx_http_ai_gateway_part_t  *part;

    rc = ngx_http_ai_gateway_openai_parts(r, msg, 0, &parts);
    if (rc != NGX_OK) {
        return rc;
    }

    part = parts.elts;

    if (parts.nelts == 1) {
        *text = part[0].text;
        return NGX_OK;
    }

    len = 0;

    for (i = 0; i < parts.nelts; i++) {
        len += part[i].text.len;
    }

    text->len = len;
    text->data = ngx_pnalloc(r->pool, len + 1);
    if (text->data == NULL) {
        return NGX_ERROR;
    }

    p = text->data;

    for (i = 0; i < parts.nelts; i++) {
        p = ngx_cpymem(p, part[i].text.data, part[i].text.len);
    }

    return NGX_OK;
}


/* a tool message's "tool_call_id" */

ngx_int_t
ngx_http_ai_gateway_openai_call_id(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val msg, ngx_str_t *id)
{
    if (ngx_http_ai_gateway_json_str(ngx_http_ai_gateway_json_get(msg,
                                                              "tool_call_id"),
                                     id)
        != NGX_OK)
    {
        return ngx_http_ai_gateway_openai_fail(r,
                         "messages[%ui]: a tool message needs a "
                         "\"tool_call_id\"", r->msg);
    }

    return NGX_OK;
}


/* an assistant message's "tool_calls", arguments parsed */

ngx_int_t
ngx_http_ai_gateway_openai_calls(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val msg, ngx_array_t *calls)
{
    size_t                       i;
    yajl_val                     tc, t, f, o;
    ngx_int_t                    rc;
    ngx_str_t                    args;
    ngx_http_ai_gateway_call_t  *call;

    tc = ngx_http_ai_gateway_json_get(msg, "tool_calls");

    if (ngx_http_ai_gateway_openai_array(r, tc, calls,
                                         sizeof(ngx_http_ai_gateway_call_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (tc == NULL || YAJL_IS_NULL(tc)) {
        return NGX_OK;
    }

    if (!YAJL_IS_ARRAY(tc)) {
        return ngx_http_ai_gateway_openai_fail(r,
                          "messages[%ui]: \"tool_calls\" must be an array",
                          r->msg);
    }

    for (i = 0; i < tc->u.array.len; i++) {
        t = tc->u.array.values[i];

        o = ngx_http_ai_gateway_json_get(t, "type");

        if (o != NULL && !ngx_http_ai_gateway_json_is(o, "function")) {
            return ngx_http_ai_gateway_openai_fail(r,
                        "messages[%ui]: only \"function\" tool calls are "
                        "supported for %s models", r->msg, r->provider);
        }

        call = ngx_array_push(calls);
        if (call == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(call, sizeof(ngx_http_ai_gateway_call_t));

        f = ngx_http_ai_gateway_json_get(t, "function");

        if (ngx_http_ai_gateway_json_str(ngx_http_ai_gateway_json_get(t, "id"),
                                         &call->id)
            != NGX_OK
            || ngx_http_ai_gateway_json_str(
                   ngx_http_ai_gateway_json_get(f, "name"), &call->name)
               != NGX_OK)
        {
            return ngx_http_ai_gateway_openai_fail(r,
                        "messages[%ui]: tool_calls[%ui] needs an \"id\" and a "
                        "\"function.name\"", r->msg, i);
        }

        o = ngx_http_ai_gateway_json_get(f, "arguments");

        if (o == NULL || YAJL_IS_NULL(o)) {
            call->args = &ngx_http_ai_gateway_empty_object;

        } else if (ngx_http_ai_gateway_json_str(o, &args) != NGX_OK) {
            return ngx_http_ai_gateway_openai_fail(r,
                        "messages[%ui]: tool_calls[%ui].function.arguments "
                        "must be a string", r->msg, i);

        } else if (args.len == 0) {
            call->args = &ngx_http_ai_gateway_empty_object;

        } else {
            rc = ngx_http_ai_gateway_json_parse(r->pool, args.data, args.len,
                                                &call->args);
            if (rc == NGX_ERROR) {
                return NGX_ERROR;
            }

            if (rc != NGX_OK || !YAJL_IS_OBJECT(call->args)) {
                return ngx_http_ai_gateway_openai_fail(r,
                        "messages[%ui]: tool_calls[%ui].function.arguments "
                        "must be a JSON object", r->msg, i);
            }
        }

        /* Google's OpenAI-compatible carrier of Gemini thought signatures */

        o = ngx_http_ai_gateway_json_get(t, "extra_content");
        o = ngx_http_ai_gateway_json_get(o, "google");

        (void) ngx_http_ai_gateway_json_str(
                   ngx_http_ai_gateway_json_get(o, "thought_signature"),
                   &call->signature);
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_gateway_openai_fail(ngx_http_ai_gateway_openai_req_t *r,
    const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    p = ngx_pnalloc(r->pool, NGX_HTTP_AI_GATEWAY_ERR_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    r->err->data = p;

    va_start(args, fmt);
    p = ngx_vslprintf(p, p + NGX_HTTP_AI_GATEWAY_ERR_LEN, fmt, args);
    va_end(args);

    r->err->len = p - r->err->data;

    return NGX_DECLINED;
}


/*
 * A text part as the dialect's text part, unless empty (both providers
 * refuse those): {"type":"text","text"} when "typed" (Anthropic's blocks),
 * else {"text"}.  Returns how many were written: 1 or 0.
 */

ngx_uint_t
ngx_http_ai_gateway_gen_text(ngx_http_ai_gateway_gen_t *gen, ngx_str_t *text,
    ngx_uint_t typed)
{
    if (text->len == 0) {
        return 0;
    }

    ngx_http_ai_gateway_gen_map(gen);

    if (typed) {
        ngx_http_ai_gateway_gen_literal(gen, "type");
        ngx_http_ai_gateway_gen_literal(gen, "text");
    }

    ngx_http_ai_gateway_gen_literal(gen, "text");
    ngx_http_ai_gateway_gen_string(gen, text);
    ngx_http_ai_gateway_gen_map_end(gen);

    return 1;
}


/* the text parts, in order, as above; returns how many were written */

ngx_uint_t
ngx_http_ai_gateway_gen_texts(ngx_http_ai_gateway_gen_t *gen,
    ngx_array_t *parts, ngx_uint_t typed)
{
    ngx_uint_t                   i, n;
    ngx_http_ai_gateway_part_t  *part;

    n = 0;
    part = parts->elts;

    for (i = 0; i < parts->nelts; i++) {
        n += ngx_http_ai_gateway_gen_text(gen, &part[i].text, typed);
    }

    return n;
}


/* a number of the request under the dialect's key, as sent, when set */

void
ngx_http_ai_gateway_gen_number(ngx_http_ai_gateway_gen_t *gen,
    const char *key, yajl_val v)
{
    if (v == NULL) {
        return;
    }

    ngx_http_ai_gateway_gen_str(gen, (u_char *) key, ngx_strlen(key));
    ngx_http_ai_gateway_gen_value(gen, v);
}


/*
 * The function tools, an array of {"name","description"?,...}: the rest
 * is the dialect's (d->tool).
 */

void
ngx_http_ai_gateway_gen_tools(ngx_http_ai_gateway_gen_t *gen,
    ngx_http_ai_gateway_openai_req_t *r)
{
    ngx_uint_t                   i;
    ngx_http_ai_gateway_tool_t  *tool;

    ngx_http_ai_gateway_gen_array(gen);

    tool = r->tools.elts;

    for (i = 0; i < r->tools.nelts; i++) {
        ngx_http_ai_gateway_gen_map(gen);

        ngx_http_ai_gateway_gen_literal(gen, "name");
        ngx_http_ai_gateway_gen_string(gen, &tool[i].name);

        if (tool[i].description.len) {
            ngx_http_ai_gateway_gen_literal(gen, "description");
            ngx_http_ai_gateway_gen_string(gen, &tool[i].description);
        }

        r->dialect->tool(gen, &tool[i]);

        ngx_http_ai_gateway_gen_map_end(gen);
    }

    ngx_http_ai_gateway_gen_array_end(gen);
}


void
ngx_http_ai_gateway_gen_stop(ngx_http_ai_gateway_gen_t *gen,
    ngx_http_ai_gateway_openai_req_t *r)
{
    ngx_str_t   *s;
    ngx_uint_t   i;

    s = r->stop.elts;

    ngx_http_ai_gateway_gen_array(gen);

    for (i = 0; i < r->stop.nelts; i++) {
        ngx_http_ai_gateway_gen_string(gen, &s[i]);
    }

    ngx_http_ai_gateway_gen_array_end(gen);
}


/* responses */

ngx_int_t
ngx_http_ai_gateway_completion_init(ngx_http_ai_gateway_completion_t *cmp,
    ngx_pool_t *pool)
{
    ngx_memzero(cmp, sizeof(ngx_http_ai_gateway_completion_t));

    cmp->pool = pool;

    return ngx_array_init(&cmp->choices, pool, 1,
                          sizeof(ngx_http_ai_gateway_choice_t));
}


/* the choice of that index, added when new */

ngx_http_ai_gateway_choice_t *
ngx_http_ai_gateway_completion_choice(ngx_http_ai_gateway_completion_t *cmp,
    ngx_uint_t index)
{
    ngx_uint_t                     i;
    ngx_http_ai_gateway_choice_t  *ch;

    ch = cmp->choices.elts;

    for (i = 0; i < cmp->choices.nelts; i++) {
        if (ch[i].index == index) {
            return &ch[i];
        }
    }

    if (cmp->choices.nelts >= NGX_HTTP_AI_GATEWAY_MAX_CHOICES) {
        return NULL;
    }

    ch = ngx_array_push(&cmp->choices);
    if (ch == NULL) {
        return NULL;
    }

    ngx_memzero(ch, sizeof(ngx_http_ai_gateway_choice_t));

    ch->index = index;

    if (ngx_array_init(&ch->content, cmp->pool, 1, sizeof(ngx_str_t))
        != NGX_OK
        || ngx_array_init(&ch->reasoning, cmp->pool, 1, sizeof(ngx_str_t))
           != NGX_OK
        || ngx_array_init(&ch->calls, cmp->pool, 1,
                          sizeof(ngx_http_ai_gateway_tool_call_t))
           != NGX_OK
        || ngx_array_init(&ch->blocks, cmp->pool, 1, sizeof(yajl_val))
           != NGX_OK)
    {
        return NULL;
    }

    return ch;
}


ngx_int_t
ngx_http_ai_gateway_choice_text(ngx_http_ai_gateway_choice_t *ch,
    ngx_str_t *text, ngx_uint_t reasoning)
{
    ngx_str_t  *s;

    s = ngx_array_push(reasoning ? &ch->reasoning : &ch->content);
    if (s == NULL) {
        return NGX_ERROR;
    }

    *s = *text;

    return NGX_OK;
}


ngx_http_ai_gateway_tool_call_t *
ngx_http_ai_gateway_choice_call(ngx_http_ai_gateway_choice_t *ch)
{
    ngx_http_ai_gateway_tool_call_t  *call;

    call = ngx_array_push(&ch->calls);
    if (call == NULL) {
        return NULL;
    }

    ngx_memzero(call, sizeof(ngx_http_ai_gateway_tool_call_t));

    return call;
}


/* a tool call's "arguments": the JSON text of args, "{}" when absent */

ngx_int_t
ngx_http_ai_gateway_call_args(ngx_pool_t *pool,
    ngx_http_ai_gateway_tool_call_t *call, yajl_val args)
{
    if (args == NULL) {
        ngx_str_set(&call->arguments, "{}");
        return NGX_OK;
    }

    return ngx_http_ai_gateway_json_text(pool, args, &call->arguments);
}


static ngx_int_t
ngx_http_ai_gateway_join(ngx_pool_t *pool, ngx_array_t *a, ngx_str_t *out)
{
    u_char      *p;
    size_t       len;
    ngx_str_t   *s;
    ngx_uint_t   i;

    s = a->elts;

    if (a->nelts == 1) {
        *out = s[0];
        return NGX_OK;
    }

    len = 0;

    for (i = 0; i < a->nelts; i++) {
        len += s[i].len;
    }

    out->len = len;
    out->data = ngx_pnalloc(pool, len + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = out->data;

    for (i = 0; i < a->nelts; i++) {
        p = ngx_cpymem(p, s[i].data, s[i].len);
    }

    return NGX_OK;
}


/*
 * {"id","object":"chat.completion","created","model","choices":[{"index",
 *  "message":{"role":"assistant","content","reasoning_content"?,
 *  "tool_calls"?},"finish_reason","logprobs":null}],"usage"?}
 */

ngx_int_t
ngx_http_ai_gateway_completion_done(ngx_http_ai_gateway_completion_t *cmp,
    ngx_http_ai_gateway_compat_t *c, ngx_str_t *out)
{
    ngx_str_t                         text;
    ngx_uint_t                        i, j;
    ngx_http_ai_gateway_gen_t         gen;
    ngx_http_ai_gateway_choice_t     *ch;
    ngx_http_ai_gateway_tool_call_t  *call;

    if (ngx_http_ai_gateway_gen_init(&gen, cmp->pool) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_ai_gateway_gen_map(&gen);

    ngx_http_ai_gateway_gen_literal(&gen, "id");
    ngx_http_ai_gateway_gen_string(&gen, c->id.len ? &c->id : &cmp->id);
    ngx_http_ai_gateway_gen_literal(&gen, "object");
    ngx_http_ai_gateway_gen_literal(&gen, "chat.completion");
    ngx_http_ai_gateway_gen_literal(&gen, "created");
    ngx_http_ai_gateway_gen_int(&gen, c->created);
    ngx_http_ai_gateway_gen_literal(&gen, "model");
    ngx_http_ai_gateway_gen_string(&gen,
                                   cmp->model.len ? &cmp->model : &c->model);

    ngx_http_ai_gateway_gen_literal(&gen, "choices");
    ngx_http_ai_gateway_gen_array(&gen);

    ch = cmp->choices.elts;

    for (i = 0; i < cmp->choices.nelts; i++) {
        ngx_http_ai_gateway_gen_map(&gen);

        ngx_http_ai_gateway_gen_literal(&gen, "index");
        ngx_http_ai_gateway_gen_int(&gen, ch[i].index);

        ngx_http_ai_gateway_gen_literal(&gen, "message");
        ngx_http_ai_gateway_gen_map(&gen);

        ngx_http_ai_gateway_gen_literal(&gen, "role");
        ngx_http_ai_gateway_gen_literal(&gen, "assistant");

        ngx_http_ai_gateway_gen_literal(&gen, "content");

        if (ch[i].content.nelts == 0) {
            ngx_http_ai_gateway_gen_null(&gen);

        } else {
            if (ngx_http_ai_gateway_join(cmp->pool, &ch[i].content, &text)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            if (text.len == 0 && ch[i].calls.nelts) {
                ngx_http_ai_gateway_gen_null(&gen);

            } else {
                ngx_http_ai_gateway_gen_string(&gen, &text);
            }
        }

        if (ch[i].reasoning.nelts) {
            if (ngx_http_ai_gateway_join(cmp->pool, &ch[i].reasoning, &text)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            if (text.len) {
                ngx_http_ai_gateway_gen_literal(&gen, "reasoning_content");
                ngx_http_ai_gateway_gen_string(&gen, &text);
            }
        }

        if (ch[i].blocks.nelts) {
            /* for the client to send back in its next turn */

            ngx_http_ai_gateway_gen_literal(&gen, "thinking_blocks");
            ngx_http_ai_gateway_gen_array(&gen);

            for (j = 0; j < ch[i].blocks.nelts; j++) {
                ngx_http_ai_gateway_gen_block(&gen,
                                         ((yajl_val *) ch[i].blocks.elts)[j]);
            }

            ngx_http_ai_gateway_gen_array_end(&gen);
        }

        if (ch[i].calls.nelts) {
            ngx_http_ai_gateway_gen_literal(&gen, "tool_calls");
            ngx_http_ai_gateway_gen_array(&gen);

            call = ch[i].calls.elts;

            for (j = 0; j < ch[i].calls.nelts; j++) {
                ngx_http_ai_gateway_gen_map(&gen);
                ngx_http_ai_gateway_gen_call(&gen, &call[j].id, &call[j].name,
                                             &call[j].arguments,
                                             &call[j].signature);
                ngx_http_ai_gateway_gen_map_end(&gen);
            }

            ngx_http_ai_gateway_gen_array_end(&gen);
        }

        ngx_http_ai_gateway_gen_map_end(&gen);

        ngx_http_ai_gateway_gen_literal(&gen, "finish_reason");

        if (ch[i].finish != NULL) {
            ngx_http_ai_gateway_gen_str(&gen, (u_char *) ch[i].finish,
                                        ngx_strlen(ch[i].finish));

        } else {
            ngx_http_ai_gateway_gen_null(&gen);
        }

        ngx_http_ai_gateway_gen_literal(&gen, "logprobs");
        ngx_http_ai_gateway_gen_null(&gen);

        ngx_http_ai_gateway_gen_map_end(&gen);
    }

    ngx_http_ai_gateway_gen_array_end(&gen);

    if (cmp->has_usage) {
        ngx_http_ai_gateway_gen_literal(&gen, "usage");
        ngx_http_ai_gateway_gen_usage(&gen, &cmp->usage);

        ngx_http_ai_gateway_usage_report(c, &cmp->usage);
    }

    ngx_http_ai_gateway_gen_map_end(&gen);

    return ngx_http_ai_gateway_gen_done(&gen, out);
}


/*
 * A tool call's "id","type":"function","function":{"name","arguments"},
 * and a Gemini thought signature where Google's OpenAI-compatible API has
 * it: "extra_content":{"google":{"thought_signature"}}
 */

static void
ngx_http_ai_gateway_gen_call(ngx_http_ai_gateway_gen_t *gen, ngx_str_t *id,
    ngx_str_t *name, ngx_str_t *arguments, ngx_str_t *signature)
{
    ngx_http_ai_gateway_gen_literal(gen, "id");
    ngx_http_ai_gateway_gen_string(gen, id);
    ngx_http_ai_gateway_gen_literal(gen, "type");
    ngx_http_ai_gateway_gen_literal(gen, "function");
    ngx_http_ai_gateway_gen_literal(gen, "function");
    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_literal(gen, "name");
    ngx_http_ai_gateway_gen_string(gen, name);
    ngx_http_ai_gateway_gen_literal(gen, "arguments");
    ngx_http_ai_gateway_gen_string(gen, arguments);
    ngx_http_ai_gateway_gen_map_end(gen);

    if (signature != NULL && signature->len) {
        ngx_http_ai_gateway_gen_literal(gen, "extra_content");
        ngx_http_ai_gateway_gen_map(gen);
        ngx_http_ai_gateway_gen_literal(gen, "google");
        ngx_http_ai_gateway_gen_map(gen);
        ngx_http_ai_gateway_gen_literal(gen, "thought_signature");
        ngx_http_ai_gateway_gen_string(gen, signature);
        ngx_http_ai_gateway_gen_map_end(gen);
        ngx_http_ai_gateway_gen_map_end(gen);
    }
}


static void
ngx_http_ai_gateway_gen_usage(ngx_http_ai_gateway_gen_t *gen,
    ngx_http_ai_gateway_usage_t *u)
{
    ngx_http_ai_gateway_gen_map(gen);

    ngx_http_ai_gateway_gen_literal(gen, "prompt_tokens");
    ngx_http_ai_gateway_gen_int(gen, u->prompt);
    ngx_http_ai_gateway_gen_literal(gen, "completion_tokens");
    ngx_http_ai_gateway_gen_int(gen, u->completion);
    ngx_http_ai_gateway_gen_literal(gen, "total_tokens");
    ngx_http_ai_gateway_gen_int(gen, u->prompt + u->completion);

    ngx_http_ai_gateway_gen_literal(gen, "prompt_tokens_details");
    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_literal(gen, "cached_tokens");
    ngx_http_ai_gateway_gen_int(gen, u->cached);
    ngx_http_ai_gateway_gen_map_end(gen);

    ngx_http_ai_gateway_gen_literal(gen, "completion_tokens_details");
    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_literal(gen, "reasoning_tokens");
    ngx_http_ai_gateway_gen_int(gen, u->reasoning);
    ngx_http_ai_gateway_gen_map_end(gen);

    ngx_http_ai_gateway_gen_map_end(gen);
}


void
ngx_http_ai_gateway_usage_report(ngx_http_ai_gateway_compat_t *c,
    ngx_http_ai_gateway_usage_t *u)
{
    c->prompt_tokens = u->prompt;
    c->completion_tokens = u->completion;
    c->cached_tokens = u->cached;
    c->reasoning_tokens = u->reasoning;
    c->usage = 1;
}


/* a provider's name (a string value) mapped by a table, or dflt */

const char *
ngx_http_ai_gateway_map(ngx_http_ai_gateway_map_t *map, yajl_val name,
    const char *dflt)
{
    size_t  len;

    if (!YAJL_IS_STRING(name)) {
        return dflt;
    }

    len = ngx_strlen(name->u.string);

    for ( /* void */ ; map->name.len; map++) {
        if (map->name.len == len
            && ngx_strncmp(map->name.data, name->u.string, len) == 0)
        {
            return map->value;
        }
    }

    return dflt;
}


/* "call_<n>": buf has room for NGX_INT_T_LEN + 5 bytes */

void
ngx_http_ai_gateway_call_id(ngx_uint_t n, ngx_str_t *id, u_char *buf)
{
    id->data = buf;
    id->len = ngx_sprintf(buf, "call_%ui", n) - buf;
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


/* errors */

const char *
ngx_http_ai_gateway_error_type(ngx_uint_t status)
{
    switch (status) {

    case 401:
        return "authentication_error";

    case 403:
        return "permission_error";

    case 429:
        return "rate_limit_error";

    default:
        break;
    }

    if (status >= 400 && status < 500) {
        return "invalid_request_error";
    }

    return "server_error";
}


/* {"error":{"message","type","param":null,"code"}} */

void
ngx_http_ai_gateway_gen_error(ngx_http_ai_gateway_gen_t *gen,
    ngx_str_t *message, const char *type, ngx_str_t *code)
{
    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_literal(gen, "error");
    ngx_http_ai_gateway_gen_map(gen);

    ngx_http_ai_gateway_gen_literal(gen, "message");
    ngx_http_ai_gateway_gen_string(gen, message);
    ngx_http_ai_gateway_gen_literal(gen, "type");
    ngx_http_ai_gateway_gen_str(gen, (u_char *) type, ngx_strlen(type));
    ngx_http_ai_gateway_gen_literal(gen, "param");
    ngx_http_ai_gateway_gen_null(gen);
    ngx_http_ai_gateway_gen_literal(gen, "code");

    if (code != NULL && code->len) {
        ngx_http_ai_gateway_gen_string(gen, code);

    } else {
        ngx_http_ai_gateway_gen_null(gen);
    }

    ngx_http_ai_gateway_gen_map_end(gen);
    ngx_http_ai_gateway_gen_map_end(gen);
}


ngx_int_t
ngx_http_ai_gateway_error_body(ngx_pool_t *pool, ngx_str_t *message,
    const char *type, ngx_str_t *code, ngx_str_t *out)
{
    ngx_int_t                  rc;
    ngx_http_ai_gateway_gen_t  gen;

    if (ngx_http_ai_gateway_gen_open(&gen, pool) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_ai_gateway_gen_error(&gen, message, type, code);

    rc = ngx_http_ai_gateway_gen_done(&gen, out);

    yajl_gen_free(gen.g);

    return (rc == NGX_OK) ? NGX_OK : NGX_ERROR;
}


/*
 * The message for a provider error body that is not the provider's JSON:
 * "the provider answered HTTP <status>: <the body's start>", with
 * invalid UTF-8 and control characters replaced by spaces.
 */

ngx_int_t
ngx_http_ai_gateway_error_text(ngx_pool_t *pool, ngx_uint_t status,
    u_char *body, size_t len, ngx_str_t *message)
{
    u_char    *p, *p2, *q, *last, *start;
    uint32_t   ch;

    p = ngx_pnalloc(pool, sizeof("the provider answered HTTP : ") - 1
                          + NGX_INT_T_LEN + NGX_HTTP_AI_GATEWAY_MAX_QUOTE);
    if (p == NULL) {
        return NGX_ERROR;
    }

    message->data = p;

    p = ngx_sprintf(p, "the provider answered HTTP %ui", status);

    last = body + len;

    while (body < last && (*body == ' ' || *body == '\t' || *body == '\r'
                           || *body == '\n'))
    {
        body++;
    }

    while (last > body && (last[-1] == ' ' || last[-1] == '\t'
                           || last[-1] == '\r' || last[-1] == '\n'))
    {
        last--;
    }

    if (body < last) {
        p = ngx_cpymem(p, ": ", 2);
        start = p;

        while (body < last) {
            q = body;

            if (*q < 0x80) {
                ch = *q++;

            } else if (*q >= 0xf5) {
                q++;
                ch = 0;

            } else {
                ch = ngx_utf8_decode(&q, last - body);

                /* ngx_utf8_decode() does not check continuation bytes */

                for (p2 = body + 1; ch <= 0x10ffff && p2 < q; p2++) {
                    if ((*p2 & 0xc0) != 0x80) {
                        ch = 0xffffffff;
                    }
                }

                if (ch > 0x10ffff || (ch >= 0xd800 && ch <= 0xdfff)) {
                    /* invalid or cut sequence: one byte becomes a space */
                    q = body + 1;
                    ch = 0;
                }
            }

            if ((size_t) (p - start) + (q - body)
                > NGX_HTTP_AI_GATEWAY_MAX_QUOTE)
            {
                break;
            }

            if (ch < 0x20 || ch == 0x7f) {
                *p++ = ' ';
                body = q;
                continue;
            }

            while (body < q) {
                *p++ = *body++;
            }
        }
    }

    message->len = p - message->data;

    return NGX_OK;
}


/*
 * A provider's error body to the OpenAI error object.  The provider's
 * JSON, {"error":{"message",...}} (or an array of them if d->array): its
 * message, its code (d->code), the type mapped from the code (d->errors)
 * or from the status.  Anything else: ngx_http_ai_gateway_error_text().
 */

ngx_int_t
ngx_http_ai_gateway_error_native(ngx_pool_t *pool,
    ngx_http_ai_gateway_dialect_t *d, ngx_uint_t status, u_char *body,
    size_t len, ngx_str_t *out)
{
    yajl_val     v, e;
    ngx_int_t    rc;
    ngx_str_t    message, code;
    const char  *type;

    type = ngx_http_ai_gateway_error_type(status);
    ngx_str_null(&code);

    rc = ngx_http_ai_gateway_json_parse(pool, body, len, &v);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_OK && d->array && YAJL_IS_ARRAY(v) && v->u.array.len) {
        v = v->u.array.values[0];
    }

    e = (rc == NGX_OK) ? ngx_http_ai_gateway_json_get(v, "error") : NULL;

    if (ngx_http_ai_gateway_json_str(ngx_http_ai_gateway_json_get(e,
                                                                  "message"),
                                     &message)
        == NGX_OK)
    {
        e = ngx_http_ai_gateway_json_get(e, d->code);

        if (d->errors != NULL) {
            type = ngx_http_ai_gateway_map(d->errors, e, type);
        }

        (void) ngx_http_ai_gateway_json_str(e, &code);

    } else if (ngx_http_ai_gateway_error_text(pool, status, body, len,
                                              &message)
               != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_ai_gateway_error_body(pool, &message, type, &code, out);
}


/* streams */

ngx_http_ai_gateway_stream_t *
ngx_http_ai_gateway_stream_alloc(ngx_pool_t *pool,
    ngx_http_ai_gateway_compat_t *c, ngx_http_ai_gateway_event_pt event,
    ngx_http_ai_gateway_end_pt end, size_t size)
{
    ngx_http_ai_gateway_stream_t  *s;

    s = ngx_pcalloc(pool, sizeof(ngx_http_ai_gateway_stream_t));
    if (s == NULL) {
        return NULL;
    }

    if (size) {
        s->data = ngx_pcalloc(pool, size);
        if (s->data == NULL) {
            return NULL;
        }
    }

    ngx_http_ai_gateway_sse_init(&s->sse, pool);

    if (ngx_http_ai_gateway_gen_init(&s->chunks.gen, pool) != NGX_OK) {
        return NULL;
    }

    s->chunks.compat = c;
    s->event = event;
    s->end = end;

    return s;
}


ngx_int_t
ngx_http_ai_gateway_stream_feed(ngx_http_ai_gateway_stream_t *s, u_char *p,
    size_t len, ngx_str_t *out)
{
    u_char                           *pos, *last;
    ngx_int_t                         rc;
    ngx_http_ai_gateway_sse_event_t   ev;

    static ngx_str_t  too_long =
        ngx_string("the provider sent a stream event over the size limit");

    s->chunks.gen.len = 0;

    pos = p;
    last = p + len;

    while (!s->chunks.done) {

        rc = ngx_http_ai_gateway_sse_parse(&s->sse, &pos, last, &ev);

        if (rc == NGX_AGAIN) {
            break;
        }

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_DECLINED) {
            ngx_http_ai_gateway_chunk_error(&s->chunks, &too_long,
                                            "server_error", NULL);
            break;
        }

        if (ngx_http_ai_gateway_stream_event(s, &ev) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return ngx_http_ai_gateway_stream_out(s, out);
}


ngx_int_t
ngx_http_ai_gateway_stream_finish(ngx_http_ai_gateway_stream_t *s,
    ngx_uint_t complete, ngx_str_t *out)
{
    ngx_http_ai_gateway_sse_event_t  ev;

    s->chunks.gen.len = 0;

    while (!s->chunks.done) {

        if (ngx_http_ai_gateway_sse_eof(&s->sse, complete, &ev) != NGX_OK) {
            break;
        }

        if (ngx_http_ai_gateway_stream_event(s, &ev) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (!s->chunks.done) {
        if (s->end(s, complete) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return ngx_http_ai_gateway_stream_out(s, out);
}


static ngx_int_t
ngx_http_ai_gateway_stream_event(ngx_http_ai_gateway_stream_t *s,
    ngx_http_ai_gateway_sse_event_t *ev)
{
    yajl_val   json;
    ngx_int_t  rc;

    static ngx_str_t  invalid =
        ngx_string("the provider sent an invalid stream event");

    if (ev->data.len == 0) {
        return NGX_OK;
    }

    json = ngx_http_ai_gateway_json_tree(ev->data.data, ev->data.len);

    if (json == NULL) {
        ngx_http_ai_gateway_chunk_error(&s->chunks, &invalid, "server_error",
                                        NULL);
        return NGX_OK;
    }

    rc = s->event(s, ev, json);

    yajl_tree_free(json);

    if (rc == NGX_DECLINED) {
        ngx_http_ai_gateway_chunk_error(&s->chunks, &invalid, "server_error",
                                        NULL);
        return NGX_OK;
    }

    return rc;
}


static ngx_int_t
ngx_http_ai_gateway_stream_out(ngx_http_ai_gateway_stream_t *s,
    ngx_str_t *out)
{
    if (s->chunks.gen.nomem) {
        return NGX_ERROR;
    }

    out->data = s->chunks.gen.buf;
    out->len = s->chunks.gen.len;

    return NGX_OK;
}


/* the provider's id and model, when the caller set none: the first wins */

void
ngx_http_ai_gateway_chunks_meta(ngx_http_ai_gateway_chunks_t *ch,
    ngx_str_t *id, ngx_str_t *model)
{
    ngx_pool_t  *pool;

    pool = ch->gen.pool;

    if (!ch->has_id && id != NULL && id->len) {
        ch->has_id = 1;

        if (ch->compat->id.len) {
            ch->id = ch->compat->id;

        } else {
            ch->id.data = ngx_pstrdup(pool, id);
            ch->id.len = ch->id.data ? id->len : 0;
        }
    }

    if (!ch->has_model && model != NULL && model->len) {
        ch->has_model = 1;
        ch->model.data = ngx_pstrdup(pool, model);
        ch->model.len = ch->model.data ? model->len : 0;
    }
}


void
ngx_http_ai_gateway_chunks_usage(ngx_http_ai_gateway_chunks_t *ch,
    ngx_http_ai_gateway_usage_t *u)
{
    ch->usage = *u;
    ch->has_usage = 1;

    ngx_http_ai_gateway_usage_report(ch->compat, u);
}


/* "data: {"id","object","created","model", ... */

static void
ngx_http_ai_gateway_chunk_head(ngx_http_ai_gateway_chunks_t *ch)
{
    ngx_http_ai_gateway_gen_t  *gen;

    gen = &ch->gen;

    if (!ch->has_id) {
        ch->has_id = 1;
        ch->id = ch->compat->id;
    }

    if (!ch->has_model) {
        ch->has_model = 1;
        ch->model = ch->compat->model;
    }

    ch->mark = gen->len;

    ngx_http_ai_gateway_gen_raw(gen, (u_char *) "data: ", 6);
    ngx_http_ai_gateway_gen_reset(gen);

    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_literal(gen, "id");
    ngx_http_ai_gateway_gen_string(gen, &ch->id);
    ngx_http_ai_gateway_gen_literal(gen, "object");
    ngx_http_ai_gateway_gen_literal(gen, "chat.completion.chunk");
    ngx_http_ai_gateway_gen_literal(gen, "created");
    ngx_http_ai_gateway_gen_int(gen, ch->compat->created);
    ngx_http_ai_gateway_gen_literal(gen, "model");
    ngx_http_ai_gateway_gen_string(gen, &ch->model);
}


/* ..."choices":[{"index":i,"delta":{ */

static void
ngx_http_ai_gateway_chunk_begin(ngx_http_ai_gateway_chunks_t *ch,
    ngx_uint_t i)
{
    ngx_http_ai_gateway_gen_t  *gen;

    gen = &ch->gen;

    ngx_http_ai_gateway_chunk_head(ch);

    ngx_http_ai_gateway_gen_literal(gen, "choices");
    ngx_http_ai_gateway_gen_array(gen);
    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_literal(gen, "index");
    ngx_http_ai_gateway_gen_int(gen, i);
    ngx_http_ai_gateway_gen_literal(gen, "delta");
    ngx_http_ai_gateway_gen_map(gen);
}


/* ..."tool_calls":[{"index":n, */

static void
ngx_http_ai_gateway_chunk_tool(ngx_http_ai_gateway_chunks_t *ch, ngx_uint_t i,
    ngx_uint_t n)
{
    ngx_http_ai_gateway_gen_t  *gen;

    gen = &ch->gen;

    ngx_http_ai_gateway_chunk_begin(ch, i);

    ngx_http_ai_gateway_gen_literal(gen, "tool_calls");
    ngx_http_ai_gateway_gen_array(gen);
    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_literal(gen, "index");
    ngx_http_ai_gateway_gen_int(gen, n);
}


/* ...},"finish_reason":...,"logprobs":null}]}\n\n */

static void
ngx_http_ai_gateway_chunk_close(ngx_http_ai_gateway_chunks_t *ch,
    const char *finish)
{
    ngx_http_ai_gateway_gen_t  *gen;

    gen = &ch->gen;

    ngx_http_ai_gateway_gen_map_end(gen);
    ngx_http_ai_gateway_gen_literal(gen, "finish_reason");

    if (finish != NULL) {
        ngx_http_ai_gateway_gen_str(gen, (u_char *) finish,
                                    ngx_strlen(finish));

    } else {
        ngx_http_ai_gateway_gen_null(gen);
    }

    ngx_http_ai_gateway_gen_literal(gen, "logprobs");
    ngx_http_ai_gateway_gen_null(gen);
    ngx_http_ai_gateway_gen_map_end(gen);
    ngx_http_ai_gateway_gen_array_end(gen);
    ngx_http_ai_gateway_gen_map_end(gen);

    ngx_http_ai_gateway_gen_raw(gen, (u_char *) "\n\n", 2);

    ngx_http_ai_gateway_chunk_check(ch);
}


/* a chunk that could not be encoded is taken back: an error event instead */

static void
ngx_http_ai_gateway_chunk_check(ngx_http_ai_gateway_chunks_t *ch)
{
    static ngx_str_t  failed =
        ngx_string("the gateway could not encode a stream chunk");

    if (!ch->gen.invalid) {
        return;
    }

    ch->gen.len = ch->mark;
    ch->gen.invalid = 0;

    ngx_http_ai_gateway_chunk_error(ch, &failed, "server_error", NULL);
}


void
ngx_http_ai_gateway_chunk_role(ngx_http_ai_gateway_chunks_t *ch,
    ngx_uint_t i)
{
    ngx_http_ai_gateway_gen_t  *gen;

    if (ch->done || ch->choice[i].started) {
        return;
    }

    ch->choice[i].started = 1;

    gen = &ch->gen;

    ngx_http_ai_gateway_chunk_begin(ch, i);
    ngx_http_ai_gateway_gen_literal(gen, "role");
    ngx_http_ai_gateway_gen_literal(gen, "assistant");
    ngx_http_ai_gateway_gen_literal(gen, "content");
    ngx_http_ai_gateway_gen_literal(gen, "");
    ngx_http_ai_gateway_chunk_close(ch, NULL);
}


void
ngx_http_ai_gateway_chunk_text(ngx_http_ai_gateway_chunks_t *ch,
    ngx_uint_t i, ngx_str_t *text, ngx_uint_t reasoning)
{
    ngx_http_ai_gateway_gen_t  *gen;

    ngx_http_ai_gateway_chunk_role(ch, i);

    if (ch->done || text->len == 0) {
        return;
    }

    gen = &ch->gen;

    ngx_http_ai_gateway_chunk_begin(ch, i);

    if (reasoning) {
        ngx_http_ai_gateway_gen_literal(gen, "reasoning_content");

    } else {
        ngx_http_ai_gateway_gen_literal(gen, "content");
    }

    ngx_http_ai_gateway_gen_string(gen, text);
    ngx_http_ai_gateway_chunk_close(ch, NULL);
}


/*
 * A thinking block's delta, for the client to send back: a redacted block
 * whole, a thinking block's signature (its text was reasoning_content):
 * "thinking_blocks":[{"type":"thinking","signature":"..."}]
 */

void
ngx_http_ai_gateway_chunk_block(ngx_http_ai_gateway_chunks_t *ch,
    ngx_uint_t i, yajl_val block, ngx_str_t *signature)
{
    ngx_http_ai_gateway_gen_t  *gen;

    ngx_http_ai_gateway_chunk_role(ch, i);

    if (ch->done) {
        return;
    }

    gen = &ch->gen;

    ngx_http_ai_gateway_chunk_begin(ch, i);
    ngx_http_ai_gateway_gen_literal(gen, "thinking_blocks");
    ngx_http_ai_gateway_gen_array(gen);

    if (block) {
        ngx_http_ai_gateway_gen_block(gen, block);

    } else {
        ngx_http_ai_gateway_gen_map(gen);
        ngx_http_ai_gateway_gen_literal(gen, "type");
        ngx_http_ai_gateway_gen_literal(gen, "thinking");
        ngx_http_ai_gateway_gen_literal(gen, "signature");
        ngx_http_ai_gateway_gen_string(gen, signature);
        ngx_http_ai_gateway_gen_map_end(gen);
    }

    ngx_http_ai_gateway_gen_array_end(gen);
    ngx_http_ai_gateway_chunk_close(ch, NULL);
}


/*
 * A thinking block with the keys Anthropic takes back: "type" with
 * "thinking" and "signature", or "data" (redacted_thinking); the block
 * has been checked (a response's, or ngx_http_ai_gateway_openai_block())
 */

void
ngx_http_ai_gateway_gen_block(ngx_http_ai_gateway_gen_t *gen, yajl_val block)
{
    ngx_uint_t   i;
    const char  *keys[3] = { "type", "thinking", "signature" };

    if (ngx_http_ai_gateway_json_is(ngx_http_ai_gateway_json_get(block,
                                                                 "type"),
                                    "redacted_thinking"))
    {
        keys[1] = "data";
        keys[2] = NULL;
    }

    ngx_http_ai_gateway_gen_map(gen);

    for (i = 0; i < 3 && keys[i]; i++) {
        ngx_http_ai_gateway_gen_str(gen, (u_char *) keys[i],
                                    ngx_strlen(keys[i]));
        ngx_http_ai_gateway_gen_value(gen,
                                 ngx_http_ai_gateway_json_get(block, keys[i]));
    }

    ngx_http_ai_gateway_gen_map_end(gen);
}


/*
 * A tool call's first delta: index (0, 1, ... over the choice's calls),
 * id, type and name, empty arguments.  Returns the index.
 */

ngx_uint_t
ngx_http_ai_gateway_chunk_call(ngx_http_ai_gateway_chunks_t *ch,
    ngx_uint_t i, ngx_str_t *id, ngx_str_t *name, ngx_str_t *signature)
{
    ngx_str_t                   empty;
    ngx_uint_t                  n;
    ngx_http_ai_gateway_gen_t  *gen;

    ngx_http_ai_gateway_chunk_role(ch, i);

    n = ch->choice[i].calls++;

    if (ch->done) {
        return n;
    }

    gen = &ch->gen;

    ngx_str_null(&empty);

    ngx_http_ai_gateway_chunk_tool(ch, i, n);
    ngx_http_ai_gateway_gen_call(gen, id, name, &empty, signature);

    ngx_http_ai_gateway_gen_map_end(gen);
    ngx_http_ai_gateway_gen_array_end(gen);

    ngx_http_ai_gateway_chunk_close(ch, NULL);

    return n;
}


/* a fragment of a tool call's arguments */

void
ngx_http_ai_gateway_chunk_args(ngx_http_ai_gateway_chunks_t *ch,
    ngx_uint_t i, ngx_uint_t call, ngx_str_t *args)
{
    ngx_http_ai_gateway_gen_t  *gen;

    if (ch->done || args->len == 0) {
        return;
    }

    gen = &ch->gen;

    ngx_http_ai_gateway_chunk_tool(ch, i, call);

    ngx_http_ai_gateway_gen_literal(gen, "function");
    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_literal(gen, "arguments");
    ngx_http_ai_gateway_gen_string(gen, args);
    ngx_http_ai_gateway_gen_map_end(gen);
    ngx_http_ai_gateway_gen_map_end(gen);
    ngx_http_ai_gateway_gen_array_end(gen);

    ngx_http_ai_gateway_chunk_close(ch, NULL);
}


/*
 * Whole arguments (a parsed object) as one fragment, serialized in the
 * stream's scratch generator: its buffer is reused, memory stays bounded.
 */

ngx_int_t
ngx_http_ai_gateway_stream_args(ngx_http_ai_gateway_stream_t *s,
    ngx_uint_t i, ngx_uint_t call, yajl_val args)
{
    ngx_str_t                   text;
    ngx_http_ai_gateway_gen_t  *gen;

    gen = &s->scratch;

    if (gen->g == NULL) {
        if (ngx_http_ai_gateway_gen_init(gen, s->chunks.gen.pool) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    gen->len = 0;
    gen->invalid = 0;

    ngx_http_ai_gateway_gen_reset(gen);
    ngx_http_ai_gateway_gen_value(gen, args);

    switch (ngx_http_ai_gateway_gen_done(gen, &text)) {

    case NGX_OK:
        break;

    case NGX_DECLINED:
        return NGX_DECLINED;

    default:
        return NGX_ERROR;
    }

    ngx_http_ai_gateway_chunk_args(&s->chunks, i, call, &text);

    return NGX_OK;
}


/* the choice's last chunk: an empty delta and the finish_reason */

void
ngx_http_ai_gateway_chunk_finish(ngx_http_ai_gateway_chunks_t *ch,
    ngx_uint_t i, const char *finish)
{
    ngx_http_ai_gateway_chunk_role(ch, i);

    if (ch->done || ch->choice[i].finished) {
        return;
    }

    ch->choice[i].finished = 1;

    ngx_http_ai_gateway_chunk_begin(ch, i);
    ngx_http_ai_gateway_chunk_close(ch, finish);
}


/* the usage chunk when asked for and known, then [DONE] */

void
ngx_http_ai_gateway_chunk_end(ngx_http_ai_gateway_chunks_t *ch)
{
    ngx_http_ai_gateway_gen_t  *gen;

    if (ch->done) {
        return;
    }

    gen = &ch->gen;

    if (ch->compat->include_usage && ch->has_usage) {
        ngx_http_ai_gateway_chunk_head(ch);

        ngx_http_ai_gateway_gen_literal(gen, "choices");
        ngx_http_ai_gateway_gen_array(gen);
        ngx_http_ai_gateway_gen_array_end(gen);
        ngx_http_ai_gateway_gen_literal(gen, "usage");
        ngx_http_ai_gateway_gen_usage(gen, &ch->usage);
        ngx_http_ai_gateway_gen_map_end(gen);

        ngx_http_ai_gateway_gen_raw(gen, (u_char *) "\n\n", 2);

        ngx_http_ai_gateway_chunk_check(ch);

        if (ch->done) {
            return;
        }
    }

    ngx_http_ai_gateway_gen_raw(gen, (u_char *) "data: [DONE]\n\n", 14);

    ch->done = 1;
}


/*
 * The stream's last event: "data: {"error":{...}}", no [DONE] (which
 * would tell the client the answer is complete).
 */

void
ngx_http_ai_gateway_chunk_error(ngx_http_ai_gateway_chunks_t *ch,
    ngx_str_t *message, const char *type, ngx_str_t *code)
{
    ngx_http_ai_gateway_gen_t  *gen;

    if (ch->done) {
        return;
    }

    static u_char  failed[] =
        "data: {\"error\":{\"message\":\"the gateway could not encode an "
        "error\",\"type\":\"server_error\",\"param\":null,\"code\":null}}"
        "\n\n";

    gen = &ch->gen;

    ch->mark = gen->len;

    ngx_http_ai_gateway_gen_raw(gen, (u_char *) "data: ", 6);
    ngx_http_ai_gateway_gen_reset(gen);
    ngx_http_ai_gateway_gen_error(gen, message, type, code);
    ngx_http_ai_gateway_gen_raw(gen, (u_char *) "\n\n", 2);

    if (gen->invalid) {
        gen->len = ch->mark;
        gen->invalid = 0;
        ngx_http_ai_gateway_gen_raw(gen, failed, sizeof(failed) - 1);
    }

    ch->done = 1;
    ch->compat->failed = 1;
}


/*
 * An error in the stream, e its "error" object: the type mapped from the
 * code (d->errors), else from the HTTP status in "code".
 */

void
ngx_http_ai_gateway_stream_error(ngx_http_ai_gateway_stream_t *s,
    ngx_http_ai_gateway_dialect_t *d, yajl_val e)
{
    yajl_val     v;
    ngx_str_t    message, code;
    const char  *type;

    if (ngx_http_ai_gateway_json_str(ngx_http_ai_gateway_json_get(e,
                                                                  "message"),
                                     &message)
        != NGX_OK)
    {
        ngx_str_set(&message, "the provider reported an error");
    }

    v = ngx_http_ai_gateway_json_get(e, d->code);

    ngx_str_null(&code);
    (void) ngx_http_ai_gateway_json_str(v, &code);

    if (d->errors != NULL) {
        type = ngx_http_ai_gateway_map(d->errors, v, "server_error");

    } else {
        v = ngx_http_ai_gateway_json_get(e, "code");

        type = ngx_http_ai_gateway_error_type(
                   (YAJL_IS_INTEGER(v) && v->u.number.i > 0
                    && v->u.number.i < 1000)
                   ? (ngx_uint_t) v->u.number.i : 500);
    }

    ngx_http_ai_gateway_chunk_error(&s->chunks, &message, type, &code);
}
