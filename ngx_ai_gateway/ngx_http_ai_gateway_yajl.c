
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <math.h>
#include <setjmp.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

#include "ngx_http_ai_gateway_buf.h"
#include "ngx_http_ai_gateway_json.h"


/*
 * The JSON every part of the module reads and writes, over yajl and
 * knowing nothing of HTTP.  yajl allocates from the pool it is given (the
 * stream's event pool s->temp, reset after each event, or the request's):
 * no malloc() per value, per event or per request.  Pool memory is not
 * given back, so a realloc() of yajl's buffers is a copy into new pool
 * memory (its buffers double: at most twice the text); large blocks go
 * back with ngx_pfree().  yajl does not check every allocation it makes,
 * so an allocation that fails does not return to it: it jumps back to
 * the call into yajl, which reports no memory.
 *
 * Output: yajl_gen's output (not beautified) in a pool buffer that grows
 * by doubling; one generator per stream or request, reset between values.
 * The punctuation and the strings that need no escape (printable ASCII)
 * are written straight into the buffer, by yajl_gen's rules; every other
 * string goes through yajl_gen_string() (its UTF-8 check and escapes), so
 * that the bytes are yajl_gen's without a call per "," and quote.  Errors
 * are remembered (nomem, invalid) and reported once, by gen_done().  Text
 * written once may be saved and replayed: the head of every chunk of a
 * stream (gen_save(), gen_replay()).
 *
 * Input: yajl's callback parser (with comments, as yajl_tree_parse(),
 * and its UTF-8 check of strings: yajl_dont_validate_strings stays off)
 * building yajl trees (struct yajl_val_s, read with the macros of
 * yajl_tree.h) in the pool: a node is one allocation (a string's text or
 * a number's with it), an object's or array's members one more.  A text
 * with a NUL byte or nested deeper than NGX_HTTP_AI_GATEWAY_MAX_DEPTH is
 * refused; a "\u0000" is kept, as the two bytes C0 80 (the "modified
 * UTF-8" of Java and Tcl, never valid UTF-8 itself), which gen_str()
 * writes back as "\u0000"; numbers keep their text, with yajl_tree's
 * integer and double readings.  t/unit/yajl_ref.c is yajl_tree and yajl_gen
 * on malloc(), which the unit tests and fuzz/fuzz_json.c compare these
 * with.
 */


#define NGX_HTTP_AI_GATEWAY_GEN_BUF         1024

/* the members of open objects and arrays kept on the C stack */
#define NGX_HTTP_AI_GATEWAY_JSON_ITEMS      64

/* token counts above 2^53 are clamped: sums never overflow */
#define NGX_HTTP_AI_GATEWAY_MAX_COUNT       9007199254740992LL


/* yajl's allocator: a pool, and where a failed allocation jumps to */

typedef struct {
    ngx_pool_t                    *pool;
    jmp_buf                       *nomem;
} ngx_http_ai_gateway_yalloc_t;


typedef struct {
    char                          *key;        /* NULL in an array */
    yajl_val                       value;
} ngx_http_ai_gateway_jitem_t;


typedef struct {
    yajl_val                       node;       /* an object or array */
    size_t                         base;       /* its first member */
    char                          *key;        /* the member being read */
} ngx_http_ai_gateway_jlevel_t;


typedef struct {
    ngx_pool_t                    *pool;
    yajl_val                       root;
    ngx_uint_t                     depth;
    ngx_http_ai_gateway_jitem_t   *items;      /* of the open levels */
    size_t                         nitems;
    size_t                         size;
    ngx_uint_t                     nomem;
    ngx_http_ai_gateway_jlevel_t   level[NGX_HTTP_AI_GATEWAY_MAX_DEPTH];
} ngx_http_ai_gateway_jparser_t;


static void *ngx_http_ai_gateway_yajl_malloc(void *ctx, size_t size);
static void *ngx_http_ai_gateway_yajl_realloc(void *ctx, void *p,
    size_t size);
static void ngx_http_ai_gateway_yajl_free(void *ctx, void *p);

static void ngx_http_ai_gateway_gen_tree(ngx_http_ai_gateway_gen_t *gen,
    yajl_val v, ngx_uint_t depth);

static ngx_int_t ngx_http_ai_gateway_json_yajl(
    ngx_http_ai_gateway_jparser_t *jp, u_char *p, size_t len);
static u_char *ngx_http_ai_gateway_json_nul(ngx_pool_t *pool, u_char *p,
    size_t *len);
static int ngx_http_ai_gateway_json_add(ngx_http_ai_gateway_jparser_t *jp,
    yajl_val v);
static int ngx_http_ai_gateway_json_null(void *ctx);
static int ngx_http_ai_gateway_json_boolean(void *ctx, int b);
static int ngx_http_ai_gateway_json_number(void *ctx, const char *s,
    size_t len);
static int ngx_http_ai_gateway_json_string(void *ctx,
    const unsigned char *s, size_t len);
static int ngx_http_ai_gateway_json_key(void *ctx, const unsigned char *s,
    size_t len);
static int ngx_http_ai_gateway_json_start_map(void *ctx);
static int ngx_http_ai_gateway_json_start_array(void *ctx);
static int ngx_http_ai_gateway_json_open(ngx_http_ai_gateway_jparser_t *jp,
    yajl_type type);
static int ngx_http_ai_gateway_json_end(void *ctx);
static long long ngx_http_ai_gateway_json_integer(u_char *p, u_char *last,
    ngx_uint_t *valid);
static ngx_int_t ngx_http_ai_gateway_json_item(
    ngx_http_ai_gateway_jparser_t *jp, char *key, yajl_val v);
static ngx_int_t ngx_http_ai_gateway_json_close(
    ngx_http_ai_gateway_jparser_t *jp, ngx_http_ai_gateway_jlevel_t *lv);


static yajl_callbacks  ngx_http_ai_gateway_json_callbacks = {
    ngx_http_ai_gateway_json_null,
    ngx_http_ai_gateway_json_boolean,
    NULL,
    NULL,
    ngx_http_ai_gateway_json_number,
    ngx_http_ai_gateway_json_string,
    ngx_http_ai_gateway_json_start_map,
    ngx_http_ai_gateway_json_key,
    ngx_http_ai_gateway_json_end,
    ngx_http_ai_gateway_json_start_array,
    ngx_http_ai_gateway_json_end
};


/* yajl's allocator */

/*
 * A block is its size, then its bytes (sizeof(size_t) keeps the pool's
 * alignment), so that realloc() knows what to copy.
 */

static void *
ngx_http_ai_gateway_yajl_malloc(void *ctx, size_t size)
{
    ngx_http_ai_gateway_yalloc_t *a = ctx;

    size_t  *p;

    p = ngx_palloc(a->pool, sizeof(size_t) + size);

    if (p == NULL) {
        if (a->nomem) {
            longjmp(*a->nomem, 1);
        }

        return NULL;
    }

    *p = size;

    return p + 1;
}


static void *
ngx_http_ai_gateway_yajl_realloc(void *ctx, void *p, size_t size)
{
    size_t  *old;
    void    *n;

    if (p == NULL) {
        return ngx_http_ai_gateway_yajl_malloc(ctx, size);
    }

    old = (size_t *) p - 1;

    if (size <= *old) {
        return p;
    }

    n = ngx_http_ai_gateway_yajl_malloc(ctx, size);
    if (n == NULL) {
        return NULL;
    }

    ngx_memcpy(n, p, *old);

    ngx_http_ai_gateway_yajl_free(ctx, p);

    return n;
}


/* only the pool's large blocks can go back */

static void
ngx_http_ai_gateway_yajl_free(void *ctx, void *p)
{
    ngx_http_ai_gateway_yalloc_t *a = ctx;

    size_t  *b;

    if (p == NULL) {
        return;
    }

    b = (size_t *) p - 1;

    if (sizeof(size_t) + *b > a->pool->max) {
        ngx_pfree(a->pool, b);
    }
}


/* JSON output */

/*
 * The generator keeps yajl_gen's rules (t/unit/yajl_ref.c compares the
 * two, call by call, in the unit tests and fuzz/fuzz_json.c): a "," or ":"
 * before a value as its place asks, keys only strings, nothing after a
 * complete top-level value until gen_reset().  A call refused leaves the
 * state as it was and sets gen->invalid.
 */

/* a place's state, as yajl_gen's */

#define NGX_HTTP_AI_GATEWAY_GEN_START        0
#define NGX_HTTP_AI_GATEWAY_GEN_MAP_START    1
#define NGX_HTTP_AI_GATEWAY_GEN_MAP_KEY      2    /* a key comes next */
#define NGX_HTTP_AI_GATEWAY_GEN_MAP_VAL      3    /* a value comes next */
#define NGX_HTTP_AI_GATEWAY_GEN_ARRAY_START  4
#define NGX_HTTP_AI_GATEWAY_GEN_IN_ARRAY     5
#define NGX_HTTP_AI_GATEWAY_GEN_COMPLETE     6


/* 1: a byte yajl_gen writes in a string as it is, 0x20-0x7e but '"', '\\' */

static const u_char  ngx_http_ai_gateway_gen_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0
};


static u_char *ngx_http_ai_gateway_gen_room(ngx_http_ai_gateway_gen_t *gen,
    size_t len);
static ngx_int_t ngx_http_ai_gateway_gen_begin(ngx_http_ai_gateway_gen_t *gen,
    ngx_uint_t key);
static void ngx_http_ai_gateway_gen_appended(ngx_http_ai_gateway_gen_t *gen);
static ngx_int_t ngx_http_ai_gateway_gen_open(ngx_http_ai_gateway_gen_t *gen,
    u_char c, u_char state);
static void ngx_http_ai_gateway_gen_close(ngx_http_ai_gateway_gen_t *gen,
    u_char c);
static void ngx_http_ai_gateway_gen_yajl_str(ngx_http_ai_gateway_gen_t *gen,
    u_char *p, size_t len);
static ngx_int_t ngx_http_ai_gateway_gen_encoder(
    ngx_http_ai_gateway_gen_t *gen);
static void ngx_http_ai_gateway_gen_print(void *ctx, const char *s,
    size_t len);


ngx_int_t
ngx_http_ai_gateway_gen_init(ngx_http_ai_gateway_gen_t *gen, ngx_pool_t *pool)
{
    ngx_memzero(gen, sizeof(ngx_http_ai_gateway_gen_t));

    gen->pool = pool;

    return NGX_OK;
}


/* a new top-level value may follow (the buffer is kept) */

void
ngx_http_ai_gateway_gen_reset(ngx_http_ai_gateway_gen_t *gen)
{
    gen->depth = 0;
    gen->state[0] = NGX_HTTP_AI_GATEWAY_GEN_START;
}


void
ngx_http_ai_gateway_gen_raw(ngx_http_ai_gateway_gen_t *gen, u_char *p,
    size_t len)
{
    u_char  *d;

    if (len == 0) {
        return;
    }

    d = ngx_http_ai_gateway_gen_room(gen, len);

    if (d != NULL) {
        ngx_memcpy(d, p, len);
        gen->len += len;
    }
}


/* room for len more bytes: NULL when there is no memory */

static u_char *
ngx_http_ai_gateway_gen_room(ngx_http_ai_gateway_gen_t *gen, size_t len)
{
    if (gen->nomem) {
        return NULL;
    }

    if (gen->size - gen->len < len
        && ngx_http_ai_gateway_reserve(gen->pool, &gen->buf, &gen->size,
                                       gen->len, gen->len + len,
                                       NGX_HTTP_AI_GATEWAY_GEN_BUF, 0)
           != NGX_OK)
    {
        gen->nomem = 1;
        return NULL;
    }

    return gen->buf + gen->len;
}


/*
 * Before a value (or, with "key", a string, which may be a key): NGX_OK
 * and the "," or ":" its place asks for written, or refused.
 */

static ngx_int_t
ngx_http_ai_gateway_gen_begin(ngx_http_ai_gateway_gen_t *gen, ngx_uint_t key)
{
    u_char  st;

    st = gen->state[gen->depth];

    switch (st) {

    case NGX_HTTP_AI_GATEWAY_GEN_COMPLETE:
        gen->invalid = 1;
        return NGX_DECLINED;

    case NGX_HTTP_AI_GATEWAY_GEN_MAP_START:
        if (!key) {
            gen->invalid = 1;
            return NGX_DECLINED;
        }

        return NGX_OK;

    case NGX_HTTP_AI_GATEWAY_GEN_MAP_KEY:
        if (!key) {
            gen->invalid = 1;
            return NGX_DECLINED;
        }

        /* fall through */

    case NGX_HTTP_AI_GATEWAY_GEN_IN_ARRAY:
        ngx_http_ai_gateway_gen_raw(gen, (u_char *) ",", 1);
        return NGX_OK;

    case NGX_HTTP_AI_GATEWAY_GEN_MAP_VAL:
        ngx_http_ai_gateway_gen_raw(gen, (u_char *) ":", 1);
        return NGX_OK;

    default: /* NGX_HTTP_AI_GATEWAY_GEN_START, _ARRAY_START */
        return NGX_OK;
    }
}


/* after a value: what comes next in its place */

static void
ngx_http_ai_gateway_gen_appended(ngx_http_ai_gateway_gen_t *gen)
{
    u_char  *st;

    st = &gen->state[gen->depth];

    switch (*st) {

    case NGX_HTTP_AI_GATEWAY_GEN_START:
        *st = NGX_HTTP_AI_GATEWAY_GEN_COMPLETE;
        break;

    case NGX_HTTP_AI_GATEWAY_GEN_MAP_START:
    case NGX_HTTP_AI_GATEWAY_GEN_MAP_KEY:
        *st = NGX_HTTP_AI_GATEWAY_GEN_MAP_VAL;
        break;

    case NGX_HTTP_AI_GATEWAY_GEN_ARRAY_START:
        *st = NGX_HTTP_AI_GATEWAY_GEN_IN_ARRAY;
        break;

    case NGX_HTTP_AI_GATEWAY_GEN_MAP_VAL:
        *st = NGX_HTTP_AI_GATEWAY_GEN_MAP_KEY;
        break;

    default:
        break;
    }
}


/*
 * A string: printable ASCII without '"' or '\\', which yajl_gen would
 * print as it is, is written here; any other goes through yajl_gen_string()
 * (its UTF-8 check and its escapes), on a generator of its own made when
 * first needed, with NUL characters of the input (C0 80, see the head of
 * the file) given back to it as NUL bytes.
 */

void
ngx_http_ai_gateway_gen_str(ngx_http_ai_gateway_gen_t *gen, u_char *p,
    size_t len)
{
    u_char  *d, *last;

    if (p == NULL) {
        p = (u_char *) "";
    }

    last = p + len;

    for (d = p; d < last; d++) {
        if (!ngx_http_ai_gateway_gen_plain[*d]) {
            ngx_http_ai_gateway_gen_yajl_str(gen, p, len);
            return;
        }
    }

    if (ngx_http_ai_gateway_gen_begin(gen, 1) != NGX_OK) {
        return;
    }

    d = ngx_http_ai_gateway_gen_room(gen, len + 2);
    if (d == NULL) {
        return;
    }

    *d++ = '"';
    d = ngx_cpymem(d, p, len);
    *d++ = '"';

    gen->len = d - gen->buf;

    ngx_http_ai_gateway_gen_appended(gen);
}


static void
ngx_http_ai_gateway_gen_yajl_str(ngx_http_ai_gateway_gen_t *gen, u_char *p,
    size_t len)
{
    u_char           *q, *d, *last, *copy;
    yajl_gen_status   st;

    if (gen->enc == NULL && ngx_http_ai_gateway_gen_encoder(gen) != NGX_OK) {
        gen->nomem = 1;
        return;
    }

    copy = NULL;

    q = (len > 1) ? memchr(p, 0xc0, len - 1) : NULL;

    if (q != NULL) {
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

        p = copy;
        len = d - copy;
    }

    if (ngx_http_ai_gateway_gen_begin(gen, 1) != NGX_OK) {
        goto done;
    }

    /*
     * at the top of a reset generator: the string alone, no separator;
     * refused (no UTF-8), it leaves the separator written, with the
     * output that gen->invalid discards
     */

    yajl_gen_reset(gen->enc, NULL);

    st = yajl_gen_string(gen->enc, p, len);

    if (st != yajl_gen_status_ok) {
        gen->invalid = 1;
        goto done;
    }

    ngx_http_ai_gateway_gen_appended(gen);

done:

    if (copy) {
        ngx_pfree(gen->pool, copy);
    }
}


/* the generator of the strings that yajl_gen_string() writes */

static ngx_int_t
ngx_http_ai_gateway_gen_encoder(ngx_http_ai_gateway_gen_t *gen)
{
    jmp_buf                        nomem;
    yajl_alloc_funcs               funcs;
    ngx_http_ai_gateway_yalloc_t  *a;

    /* the generator keeps it: it allocates nothing more once configured */

    a = ngx_palloc(gen->pool, sizeof(ngx_http_ai_gateway_yalloc_t));
    if (a == NULL) {
        return NGX_ERROR;
    }

    a->pool = gen->pool;
    a->nomem = &nomem;

    funcs.malloc = ngx_http_ai_gateway_yajl_malloc;
    funcs.realloc = ngx_http_ai_gateway_yajl_realloc;
    funcs.free = ngx_http_ai_gateway_yajl_free;
    funcs.ctx = a;

    if (setjmp(nomem) != 0) {
        a->nomem = NULL;
        gen->enc = NULL;
        return NGX_ERROR;
    }

    gen->enc = yajl_gen_alloc(&funcs);

    if (gen->enc != NULL) {
        yajl_gen_config(gen->enc, yajl_gen_validate_utf8, 1);
        yajl_gen_config(gen->enc, yajl_gen_print_callback,
                        ngx_http_ai_gateway_gen_print, gen);
    }

    a->nomem = NULL;

    return (gen->enc != NULL) ? NGX_OK : NGX_ERROR;
}


static void
ngx_http_ai_gateway_gen_print(void *ctx, const char *s, size_t len)
{
    ngx_http_ai_gateway_gen_raw(ctx, (u_char *) s, len);
}


void
ngx_http_ai_gateway_gen_string(ngx_http_ai_gateway_gen_t *gen, ngx_str_t *s)
{
    ngx_http_ai_gateway_gen_str(gen, s->data, s->len);
}


/* a number as its text, which the caller checked */

void
ngx_http_ai_gateway_gen_num(ngx_http_ai_gateway_gen_t *gen, u_char *p,
    size_t len)
{
    if (ngx_http_ai_gateway_gen_begin(gen, 0) != NGX_OK) {
        return;
    }

    ngx_http_ai_gateway_gen_raw(gen, p, len);
    ngx_http_ai_gateway_gen_appended(gen);
}


/*
 * A double as the logs, analytics and spans write costs: "%.12g", as few
 * digits as tell it apart; NaN and infinities are no JSON and refused
 */

void
ngx_http_ai_gateway_gen_double(ngx_http_ai_gateway_gen_t *gen, double n)
{
    int   len;
    char  buf[64];

    len = snprintf(buf, sizeof(buf), "%.12g", n);

    if (isnan(n) || isinf(n) || len <= 0 || len >= (int) sizeof(buf)) {
        gen->invalid = 1;
        return;
    }

    ngx_http_ai_gateway_gen_num(gen, (u_char *) buf, len);
}


void
ngx_http_ai_gateway_gen_int(ngx_http_ai_gateway_gen_t *gen, long long n)
{
    u_char              buf[NGX_INT64_LEN + 1], *p;
    unsigned long long  u;

    p = buf + sizeof(buf);

    u = (n < 0) ? 0ULL - (unsigned long long) n : (unsigned long long) n;

    do {
        *--p = (u_char) ('0' + u % 10);
        u /= 10;
    } while (u);

    if (n < 0) {
        *--p = '-';
    }

    ngx_http_ai_gateway_gen_num(gen, p, buf + sizeof(buf) - p);
}


void
ngx_http_ai_gateway_gen_null(ngx_http_ai_gateway_gen_t *gen)
{
    ngx_http_ai_gateway_gen_num(gen, (u_char *) "null", 4);
}


void
ngx_http_ai_gateway_gen_bool(ngx_http_ai_gateway_gen_t *gen, ngx_uint_t b)
{
    if (b) {
        ngx_http_ai_gateway_gen_num(gen, (u_char *) "true", 4);

    } else {
        ngx_http_ai_gateway_gen_num(gen, (u_char *) "false", 5);
    }
}


/* a map or an array opened: refused past yajl_gen's depth */

static ngx_int_t
ngx_http_ai_gateway_gen_open(ngx_http_ai_gateway_gen_t *gen, u_char c,
    u_char state)
{
    if (gen->depth + 1 >= NGX_HTTP_AI_GATEWAY_GEN_DEPTH) {
        gen->invalid = 1;
        return NGX_DECLINED;
    }

    if (ngx_http_ai_gateway_gen_begin(gen, 0) != NGX_OK) {
        return NGX_DECLINED;
    }

    gen->state[++gen->depth] = state;

    ngx_http_ai_gateway_gen_raw(gen, &c, 1);

    return NGX_OK;
}


/* as yajl_gen: a map or an array closed, whichever is open */

static void
ngx_http_ai_gateway_gen_close(ngx_http_ai_gateway_gen_t *gen, u_char c)
{
    if (gen->state[gen->depth] == NGX_HTTP_AI_GATEWAY_GEN_COMPLETE
        || gen->depth == 0)
    {
        gen->invalid = 1;
        return;
    }

    gen->depth--;

    ngx_http_ai_gateway_gen_appended(gen);
    ngx_http_ai_gateway_gen_raw(gen, &c, 1);
}


void
ngx_http_ai_gateway_gen_map(ngx_http_ai_gateway_gen_t *gen)
{
    (void) ngx_http_ai_gateway_gen_open(gen, '{',
                                        NGX_HTTP_AI_GATEWAY_GEN_MAP_START);
}


void
ngx_http_ai_gateway_gen_map_end(ngx_http_ai_gateway_gen_t *gen)
{
    ngx_http_ai_gateway_gen_close(gen, '}');
}


void
ngx_http_ai_gateway_gen_array(ngx_http_ai_gateway_gen_t *gen)
{
    (void) ngx_http_ai_gateway_gen_open(gen, '[',
                                        NGX_HTTP_AI_GATEWAY_GEN_ARRAY_START);
}


void
ngx_http_ai_gateway_gen_array_end(ngx_http_ai_gateway_gen_t *gen)
{
    ngx_http_ai_gateway_gen_close(gen, ']');
}


/*
 * The output since "mark", copied to the pool, to be written again by
 * gen_replay().  It must leave one map open, after a member's value (the
 * only state gen_replay() gives back); NGX_DECLINED when it was refused
 * or leaves another state.
 */

ngx_int_t
ngx_http_ai_gateway_gen_save(ngx_http_ai_gateway_gen_t *gen, size_t mark,
    ngx_http_ai_gateway_gen_saved_t *saved)
{
    size_t   len;
    u_char  *p;

    if (gen->nomem || gen->invalid || mark > gen->len || gen->depth != 1
        || gen->state[1] != NGX_HTTP_AI_GATEWAY_GEN_MAP_KEY)
    {
        return NGX_DECLINED;
    }

    len = gen->len - mark;

    p = ngx_pnalloc(gen->pool, len ? len : 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, gen->buf + mark, len);

    saved->text.data = p;
    saved->text.len = len;

    return NGX_OK;
}


/* the saved text, and the state it left: a top-level map after a member */

void
ngx_http_ai_gateway_gen_replay(ngx_http_ai_gateway_gen_t *gen,
    ngx_http_ai_gateway_gen_saved_t *saved)
{
    gen->depth = 1;
    gen->state[0] = NGX_HTTP_AI_GATEWAY_GEN_START;
    gen->state[1] = NGX_HTTP_AI_GATEWAY_GEN_MAP_KEY;

    ngx_http_ai_gateway_gen_raw(gen, saved->text.data, saved->text.len);
}


/*
 * A string as the value of a member whose key the caller wrote itself
 * (raw, up to and without the ':'): the generator, whatever its state, is
 * put after a key, so that it writes ':' and the string, escaped and
 * checked as gen_str() does.  It is left as gen_replay() leaves it: a
 * top-level map after a member.
 */

void
ngx_http_ai_gateway_gen_member_str(ngx_http_ai_gateway_gen_t *gen,
    u_char *p, size_t len)
{
    gen->depth = 1;
    gen->state[0] = NGX_HTTP_AI_GATEWAY_GEN_START;
    gen->state[1] = NGX_HTTP_AI_GATEWAY_GEN_MAP_VAL;

    ngx_http_ai_gateway_gen_str(gen, p, len);
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
        ngx_http_ai_gateway_gen_num(gen, (u_char *) v->u.number.r,
                                       ngx_strlen(v->u.number.r));
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
    ngx_http_ai_gateway_gen_t  gen;

    if (ngx_http_ai_gateway_gen_init(&gen, pool) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_ai_gateway_gen_value(&gen, v);

    return ngx_http_ai_gateway_gen_done(&gen, out);
}


/* JSON input */

/*
 * A tree of p, allocated from the pool; strings and numbers are copies
 * (p is not kept).  NGX_DECLINED: not JSON, nested deeper than
 * NGX_HTTP_AI_GATEWAY_MAX_DEPTH, or with a NUL byte; NGX_ERROR: no memory.
 */

ngx_int_t
ngx_http_ai_gateway_json_parse(ngx_pool_t *pool, u_char *p, size_t len,
    yajl_val *v)
{
    u_char                         *text;
    size_t                          n;
    ngx_int_t                       rc;
    ngx_http_ai_gateway_jitem_t     items[NGX_HTTP_AI_GATEWAY_JSON_ITEMS];
    ngx_http_ai_gateway_jparser_t   jp;

    if (memchr(p, '\0', len) != NULL) {
        return NGX_DECLINED;
    }

    n = len;

    text = ngx_http_ai_gateway_json_nul(pool, p, &n);
    if (text == NULL) {
        return NGX_ERROR;
    }

    jp.pool = pool;
    jp.root = NULL;
    jp.depth = 0;
    jp.items = items;
    jp.nitems = 0;
    jp.size = NGX_HTTP_AI_GATEWAY_JSON_ITEMS;
    jp.nomem = 0;

    rc = ngx_http_ai_gateway_json_yajl(&jp, text, n);

    if (text != p) {
        ngx_pfree(pool, text);
    }

    if (rc == NGX_OK) {
        *v = jp.root;
    }

    return rc;
}


/* the call into yajl: NGX_DECLINED when it refuses the text */

static ngx_int_t
ngx_http_ai_gateway_json_yajl(ngx_http_ai_gateway_jparser_t *jp, u_char *p,
    size_t len)
{
    jmp_buf                       nomem;
    yajl_handle                   h;
    yajl_status                   st;
    yajl_alloc_funcs              funcs;
    ngx_http_ai_gateway_yalloc_t  a;

    a.pool = jp->pool;
    a.nomem = &nomem;

    funcs.malloc = ngx_http_ai_gateway_yajl_malloc;
    funcs.realloc = ngx_http_ai_gateway_yajl_realloc;
    funcs.free = ngx_http_ai_gateway_yajl_free;
    funcs.ctx = &a;

    if (setjmp(nomem) != 0) {
        return NGX_ERROR;
    }

    h = yajl_alloc(&ngx_http_ai_gateway_json_callbacks, &funcs, jp);
    if (h == NULL) {
        return NGX_ERROR;
    }

    yajl_config(h, yajl_allow_comments, 1);

    st = yajl_parse(h, p, len);

    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
    }

    yajl_free(h);

    if (jp->nomem) {
        return NGX_ERROR;
    }

    return (st == yajl_status_ok) ? NGX_OK : NGX_DECLINED;
}


/*
 * yajl gives a "\u0000" as a NUL byte, and yajl trees keep strings
 * NUL-terminated: the escape is read as the two bytes C0 80 instead, by
 * giving yajl a copy with them in its place (yajl accepts C0 80 as UTF-8,
 * and so reads "\ud800\u0000" as "?" and C0 80, as the module always
 * did).  p itself when there is no such escape, else the copy, *len
 * set to its length; NULL: no memory.
 */

static u_char *
ngx_http_ai_gateway_json_nul(ngx_pool_t *pool, u_char *p, size_t *len)
{
    u_char  *copy, *d, *last, *q;

    last = p + *len;

    for (q = p; q < last; q++) {
        q = memchr(q, '\\', last - q);

        if (q == NULL) {
            return p;
        }

        if (last - q >= 6 && ngx_strncmp(q + 1, "u0000", 5) == 0) {
            break;
        }

        /* the escaped character is skipped: "\\u0000" is no NUL */
        q++;
    }

    if (q >= last) {
        return p;
    }

    copy = ngx_pnalloc(pool, *len);
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

    *len = d - copy;

    return copy;
}


/* a value for the open level (or the root) */

static int
ngx_http_ai_gateway_json_add(ngx_http_ai_gateway_jparser_t *jp, yajl_val v)
{
    ngx_http_ai_gateway_jlevel_t  *lv;

    if (jp->depth == 0) {
        jp->root = v;
        return 1;
    }

    lv = &jp->level[jp->depth - 1];

    if (ngx_http_ai_gateway_json_item(jp, lv->key, v) != NGX_OK) {
        jp->nomem = 1;
        return 0;
    }

    lv->key = NULL;

    return 1;
}


static int
ngx_http_ai_gateway_json_null(void *ctx)
{
    ngx_http_ai_gateway_jparser_t *jp = ctx;

    yajl_val  v;

    v = ngx_pcalloc(jp->pool, sizeof(struct yajl_val_s));
    if (v == NULL) {
        jp->nomem = 1;
        return 0;
    }

    v->type = yajl_t_null;

    return ngx_http_ai_gateway_json_add(jp, v);
}


static int
ngx_http_ai_gateway_json_boolean(void *ctx, int b)
{
    ngx_http_ai_gateway_jparser_t *jp = ctx;

    yajl_val  v;

    v = ngx_pcalloc(jp->pool, sizeof(struct yajl_val_s));
    if (v == NULL) {
        jp->nomem = 1;
        return 0;
    }

    v->type = b ? yajl_t_true : yajl_t_false;

    return ngx_http_ai_gateway_json_add(jp, v);
}


/*
 * A number as yajl_tree reads it: its text, the integer
 * (yajl_parse_integer(), valid unless out of range or not an integer)
 * and strtod()'s double.
 */

static int
ngx_http_ai_gateway_json_number(void *ctx, const char *s, size_t len)
{
    ngx_http_ai_gateway_jparser_t *jp = ctx;

    char        *end;
    u_char      *p;
    yajl_val     v;
    ngx_err_t    err;
    ngx_uint_t   valid;

    v = ngx_palloc(jp->pool, sizeof(struct yajl_val_s) + len + 1);
    if (v == NULL) {
        jp->nomem = 1;
        return 0;
    }

    v->type = yajl_t_number;
    v->u.number.r = (char *) v + sizeof(struct yajl_val_s);

    p = (u_char *) v->u.number.r;

    ngx_memcpy(p, s, len);
    p[len] = '\0';

    v->u.number.i = ngx_http_ai_gateway_json_integer(p, p + len, &valid);
    v->u.number.flags = valid ? YAJL_NUMBER_INT_VALID : 0;

    /* small integers as strtod() reads them ("-0" is -0.0) */

    if (valid && len <= 15 && !(v->u.number.i == 0 && *p == '-')) {
        v->u.number.d = (double) v->u.number.i;
        v->u.number.flags |= YAJL_NUMBER_DOUBLE_VALID;
        return ngx_http_ai_gateway_json_add(jp, v);
    }

    err = ngx_errno;

    end = NULL;
    ngx_set_errno(0);

    v->u.number.d = strtod(v->u.number.r, &end);

    if (ngx_errno == 0 && end != NULL && *end == '\0') {
        v->u.number.flags |= YAJL_NUMBER_DOUBLE_VALID;
    }

    ngx_set_errno(err);

    return ngx_http_ai_gateway_json_add(jp, v);
}


static int
ngx_http_ai_gateway_json_string(void *ctx, const unsigned char *s,
    size_t len)
{
    ngx_http_ai_gateway_jparser_t *jp = ctx;

    u_char    *p;
    yajl_val   v;

    v = ngx_palloc(jp->pool, sizeof(struct yajl_val_s) + len + 1);
    if (v == NULL) {
        jp->nomem = 1;
        return 0;
    }

    p = (u_char *) v + sizeof(struct yajl_val_s);

    ngx_memcpy(p, s, len);
    p[len] = '\0';

    v->type = yajl_t_string;
    v->u.string = (char *) p;

    return ngx_http_ai_gateway_json_add(jp, v);
}


static int
ngx_http_ai_gateway_json_key(void *ctx, const unsigned char *s, size_t len)
{
    ngx_http_ai_gateway_jparser_t *jp = ctx;

    u_char  *p;

    p = ngx_pnalloc(jp->pool, len + 1);
    if (p == NULL) {
        jp->nomem = 1;
        return 0;
    }

    ngx_memcpy(p, s, len);
    p[len] = '\0';

    jp->level[jp->depth - 1].key = (char *) p;

    return 1;
}


static int
ngx_http_ai_gateway_json_start_map(void *ctx)
{
    return ngx_http_ai_gateway_json_open(ctx, yajl_t_object);
}


static int
ngx_http_ai_gateway_json_start_array(void *ctx)
{
    return ngx_http_ai_gateway_json_open(ctx, yajl_t_array);
}


/* a level too many cancels the parse */

static int
ngx_http_ai_gateway_json_open(ngx_http_ai_gateway_jparser_t *jp,
    yajl_type type)
{
    yajl_val                       v;
    ngx_http_ai_gateway_jlevel_t  *lv;

    if (jp->depth == NGX_HTTP_AI_GATEWAY_MAX_DEPTH) {
        return 0;
    }

    v = ngx_pcalloc(jp->pool, sizeof(struct yajl_val_s));
    if (v == NULL) {
        jp->nomem = 1;
        return 0;
    }

    v->type = type;

    lv = &jp->level[jp->depth++];
    lv->node = v;
    lv->base = jp->nitems;
    lv->key = NULL;

    return 1;
}


/* an object or array is complete: it goes to the level around it */

static int
ngx_http_ai_gateway_json_end(void *ctx)
{
    ngx_http_ai_gateway_jparser_t *jp = ctx;

    ngx_http_ai_gateway_jlevel_t  *lv;

    lv = &jp->level[--jp->depth];

    if (ngx_http_ai_gateway_json_close(jp, lv) != NGX_OK) {
        jp->nomem = 1;
        return 0;
    }

    return ngx_http_ai_gateway_json_add(jp, lv->node);
}


/*
 * yajl_parse_integer(): LLONG_MAX or LLONG_MIN, not valid, for a value
 * out of range or a text that is no integer ("1.5", "1e3").
 */

static long long
ngx_http_ai_gateway_json_integer(u_char *p, u_char *last, ngx_uint_t *valid)
{
    long long  n, sign;

    sign = 1;

    if (*p == '-') {
        p++;
        sign = -1;
    }

    for (n = 0; p < last; p++) {

        if (*p < '0' || *p > '9' || n > LLONG_MAX / 10
            || LLONG_MAX - n * 10 < *p - '0')
        {
            *valid = 0;
            return (sign == 1) ? LLONG_MAX : LLONG_MIN;
        }

        n = n * 10 + (*p - '0');
    }

    *valid = 1;

    return sign * n;
}


/* a member of the open level, on the stack of members */

static ngx_int_t
ngx_http_ai_gateway_json_item(ngx_http_ai_gateway_jparser_t *jp, char *key,
    yajl_val v)
{
    ngx_http_ai_gateway_jitem_t  *items;

    if (jp->nitems == jp->size) {
        items = ngx_palloc(jp->pool,
                           2 * jp->size * sizeof(ngx_http_ai_gateway_jitem_t));
        if (items == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(items, jp->items,
                   jp->nitems * sizeof(ngx_http_ai_gateway_jitem_t));

        if (jp->size > NGX_HTTP_AI_GATEWAY_JSON_ITEMS) {
            ngx_pfree(jp->pool, jp->items);
        }

        jp->items = items;
        jp->size *= 2;
    }

    jp->items[jp->nitems].key = key;
    jp->items[jp->nitems].value = v;
    jp->nitems++;

    return NGX_OK;
}


/* an object or array is complete: its members leave the stack */

static ngx_int_t
ngx_http_ai_gateway_json_close(ngx_http_ai_gateway_jparser_t *jp,
    ngx_http_ai_gateway_jlevel_t *lv)
{
    char                         **keys;
    size_t                         i, n;
    yajl_val                       v, *values;
    ngx_http_ai_gateway_jitem_t   *item;

    v = lv->node;
    n = jp->nitems - lv->base;
    item = &jp->items[lv->base];

    jp->nitems = lv->base;

    if (n == 0) {
        /* as yajl_tree leaves them: NULL, 0 */
        return NGX_OK;
    }

    if (v->type == yajl_t_array) {
        values = ngx_palloc(jp->pool, n * sizeof(yajl_val));
        if (values == NULL) {
            return NGX_ERROR;
        }

        for (i = 0; i < n; i++) {
            values[i] = item[i].value;
        }

        v->u.array.values = values;
        v->u.array.len = n;

        return NGX_OK;
    }

    keys = ngx_palloc(jp->pool, n * (sizeof(char *) + sizeof(yajl_val)));
    if (keys == NULL) {
        return NGX_ERROR;
    }

    values = (yajl_val *) (keys + n);

    for (i = 0; i < n; i++) {
        keys[i] = item[i].key;
        values[i] = item[i].value;
    }

    v->u.object.keys = (const char **) keys;
    v->u.object.values = values;
    v->u.object.len = n;

    return NGX_OK;
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
        if (obj->u.object.keys[i][0] == key[0]
            && ngx_strcmp(obj->u.object.keys[i], key) == 0)
        {
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
    return YAJL_IS_STRING(v) && v->u.string[0] == s[0]
           && ngx_strcmp(v->u.string, s) == 0;
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
