
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <yajl/yajl_tree.h>

#include "ngx_http_ai_gateway_buf.h"
#include "ngx_http_ai_gateway_json.h"


/*
 * The JSON every part of the module reads and writes, knowing nothing of
 * HTTP and allocating nothing but from the pool it is given: no malloc()
 * per value, per event or per request.
 *
 * Output: a generator printing straight into a pool buffer that grows by
 * doubling.  It writes what yajl_gen writes, byte for byte, and refuses
 * what it refuses: the same states (a map's key must be a string, one
 * top-level value until gen_reset(), at most 128 levels), the same
 * escapes (\" \\ \b \f \n \r \t, \u00XX in capitals for the other
 * control characters, "/" as it is) and the same UTF-8 check of strings.
 * Errors are remembered (nomem, invalid) and reported once, by
 * gen_done().
 *
 * Input: a one-pass parser building yajl trees (struct yajl_val_s, read
 * with the macros of yajl_tree.h) from the pool, with what
 * yajl_tree_parse() gives for every text: its grammar with comments, its
 * lexical rules (control characters, escapes, its UTF-8 check, "\v" and
 * "\f" as white space), its decoding of escapes (surrogates included),
 * numbers with their original text and yajl's integer and double
 * readings, duplicate keys kept in order, and what it accepts after the
 * value (white space and comments, and a comment or a string the text
 * ends in).  Besides, a "\u0000" is kept, as the two bytes C0 80 (the
 * "modified UTF-8" of Java and Tcl, never valid UTF-8 itself), which
 * gen_str() writes back as "\u0000"; a text with a NUL byte or nested
 * deeper than NGX_HTTP_AI_GATEWAY_MAX_DEPTH is refused.  Each node is one
 * allocation (a string's text with it), an object's or array's members
 * one more; a stream parses every event into a pool it resets after the
 * event (chunk.c).  t/unit/yajl_ref.c is yajl's own parser, which the
 * unit tests and fuzz/fuzz_json.c compare this one with.
 */


#define NGX_HTTP_AI_GATEWAY_GEN_BUF         1024

/* the members of open objects and arrays kept on the C stack */
#define NGX_HTTP_AI_GATEWAY_JSON_ITEMS      64

/* token counts above 2^53 are clamped: sums never overflow */
#define NGX_HTTP_AI_GATEWAY_MAX_COUNT       9007199254740992LL


/* the generator's states, yajl_gen's */

#define NGX_HTTP_AI_GATEWAY_GEN_START        0
#define NGX_HTTP_AI_GATEWAY_GEN_MAP_START    1
#define NGX_HTTP_AI_GATEWAY_GEN_MAP_KEY      2
#define NGX_HTTP_AI_GATEWAY_GEN_MAP_VAL      3
#define NGX_HTTP_AI_GATEWAY_GEN_ARRAY_START  4
#define NGX_HTTP_AI_GATEWAY_GEN_IN_ARRAY     5
#define NGX_HTTP_AI_GATEWAY_GEN_COMPLETE     6


/*
 * A byte of a string: as it is (0), the lead of a UTF-8 sequence of 2, 3
 * or 4 bytes (its length), escaped as \X or as \u00XX, or no UTF-8 at all
 * (yajl's check: continuation bytes and F8-FF).
 */

#define NGX_HTTP_AI_GATEWAY_CHAR_PLAIN       0
#define NGX_HTTP_AI_GATEWAY_CHAR_ESCAPE      5
#define NGX_HTTP_AI_GATEWAY_CHAR_HEX         6
#define NGX_HTTP_AI_GATEWAY_CHAR_BAD         7


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
    u_char                        *pos;
    u_char                        *last;
    ngx_http_ai_gateway_jitem_t   *items;      /* of the open levels */
    size_t                         nitems;
    size_t                         size;
} ngx_http_ai_gateway_jparser_t;


static u_char *ngx_http_ai_gateway_gen_room(ngx_http_ai_gateway_gen_t *gen,
    size_t n);
static ngx_int_t ngx_http_ai_gateway_gen_sep(ngx_http_ai_gateway_gen_t *gen,
    ngx_uint_t key);
static void ngx_http_ai_gateway_gen_atom(ngx_http_ai_gateway_gen_t *gen);
static void ngx_http_ai_gateway_gen_token(ngx_http_ai_gateway_gen_t *gen,
    u_char *p, size_t len);
static void ngx_http_ai_gateway_gen_quoted(ngx_http_ai_gateway_gen_t *gen,
    u_char *p, size_t len);
static void ngx_http_ai_gateway_gen_open(ngx_http_ai_gateway_gen_t *gen,
    u_char c, u_char state);
static void ngx_http_ai_gateway_gen_close(ngx_http_ai_gateway_gen_t *gen,
    u_char c);
static void ngx_http_ai_gateway_gen_tree(ngx_http_ai_gateway_gen_t *gen,
    yajl_val v, ngx_uint_t depth);

static ngx_int_t ngx_http_ai_gateway_json_space(
    ngx_http_ai_gateway_jparser_t *jp);
static ngx_inline ngx_int_t ngx_http_ai_gateway_json_skip(
    ngx_http_ai_gateway_jparser_t *jp);
static ngx_int_t ngx_http_ai_gateway_json_lex(
    ngx_http_ai_gateway_jparser_t *jp, u_char **end, ngx_uint_t *escapes);
static u_char *ngx_http_ai_gateway_json_chars(
    ngx_http_ai_gateway_jparser_t *jp, size_t before, size_t *len);
static u_char *ngx_http_ai_gateway_json_decode(u_char *d, u_char *p,
    u_char *last);
static ngx_uint_t ngx_http_ai_gateway_json_hex(u_char *p);
static u_char *ngx_http_ai_gateway_json_utf8(u_char *d, ngx_uint_t cp);
static yajl_val ngx_http_ai_gateway_json_number(
    ngx_http_ai_gateway_jparser_t *jp);
static long long ngx_http_ai_gateway_json_integer(u_char *p, u_char *last,
    ngx_uint_t *valid);
static ngx_int_t ngx_http_ai_gateway_json_item(
    ngx_http_ai_gateway_jparser_t *jp, char *key, yajl_val v);
static ngx_int_t ngx_http_ai_gateway_json_close(
    ngx_http_ai_gateway_jparser_t *jp, ngx_http_ai_gateway_jlevel_t *lv);
static ngx_int_t ngx_http_ai_gateway_json_trailing(
    ngx_http_ai_gateway_jparser_t *jp);


static const u_char  ngx_http_ai_gateway_json_class[256] = {

    /* 00 - 0f: \b \t \n \f \r, the others as \u00XX */
    6, 6, 6, 6, 6, 6, 6, 6, 5, 5, 5, 6, 5, 5, 6, 6,
    /* 10 - 1f */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
    /* 20 - 2f: '"' */
    0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 40 - 5f: '\\' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,

    /* 80 - bf: continuation bytes */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,

    /* c0 - df, e0 - ef, f0 - f7 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    4, 4, 4, 4, 4, 4, 4, 4, 7, 7, 7, 7, 7, 7, 7, 7
};


/* JSON output */

ngx_int_t
ngx_http_ai_gateway_gen_init(ngx_http_ai_gateway_gen_t *gen, ngx_pool_t *pool)
{
    gen->pool = pool;
    gen->buf = NULL;
    gen->len = 0;
    gen->size = 0;
    gen->depth = 0;
    gen->state[0] = NGX_HTTP_AI_GATEWAY_GEN_START;
    gen->nomem = 0;
    gen->invalid = 0;

    return NGX_OK;
}


/* a new top-level value may follow (the buffer is kept) */

void
ngx_http_ai_gateway_gen_reset(ngx_http_ai_gateway_gen_t *gen)
{
    gen->depth = 0;
    gen->state[0] = NGX_HTTP_AI_GATEWAY_GEN_START;
}


static u_char *
ngx_http_ai_gateway_gen_room(ngx_http_ai_gateway_gen_t *gen, size_t n)
{
    if (gen->nomem) {
        return NULL;
    }

    if (gen->size - gen->len < n
        && ngx_http_ai_gateway_reserve(gen->pool, &gen->buf, &gen->size,
                                       gen->len, gen->len + n,
                                       NGX_HTTP_AI_GATEWAY_GEN_BUF, 0)
           != NGX_OK)
    {
        gen->nomem = 1;
        return NULL;
    }

    return gen->buf + gen->len;
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
    if (d == NULL) {
        return;
    }

    ngx_memcpy(d, p, len);
    gen->len += len;
}


/*
 * yajl_gen's checks before a value ("key": a string, which may be a
 * map's key): NGX_ERROR when it refuses the value, else the separator to
 * write first, ',' or ':' (0: none).
 */

static ngx_int_t
ngx_http_ai_gateway_gen_sep(ngx_http_ai_gateway_gen_t *gen, ngx_uint_t key)
{
    switch (gen->state[gen->depth]) {

    case NGX_HTTP_AI_GATEWAY_GEN_COMPLETE:
        break;

    case NGX_HTTP_AI_GATEWAY_GEN_MAP_START:

        if (key) {
            return 0;
        }

        break;

    case NGX_HTTP_AI_GATEWAY_GEN_MAP_KEY:

        if (key) {
            return ',';
        }

        break;

    case NGX_HTTP_AI_GATEWAY_GEN_IN_ARRAY:
        return ',';

    case NGX_HTTP_AI_GATEWAY_GEN_MAP_VAL:
        return ':';

    default: /* START, ARRAY_START */
        return 0;
    }

    gen->invalid = 1;

    return NGX_ERROR;
}


/* yajl_gen's state after a value */

static void
ngx_http_ai_gateway_gen_atom(ngx_http_ai_gateway_gen_t *gen)
{
    u_char  *s;

    s = &gen->state[gen->depth];

    switch (*s) {

    case NGX_HTTP_AI_GATEWAY_GEN_START:
        *s = NGX_HTTP_AI_GATEWAY_GEN_COMPLETE;
        break;

    case NGX_HTTP_AI_GATEWAY_GEN_MAP_START:
    case NGX_HTTP_AI_GATEWAY_GEN_MAP_KEY:
        *s = NGX_HTTP_AI_GATEWAY_GEN_MAP_VAL;
        break;

    case NGX_HTTP_AI_GATEWAY_GEN_ARRAY_START:
        *s = NGX_HTTP_AI_GATEWAY_GEN_IN_ARRAY;
        break;

    case NGX_HTTP_AI_GATEWAY_GEN_MAP_VAL:
        *s = NGX_HTTP_AI_GATEWAY_GEN_MAP_KEY;
        break;
    }
}


/* a number, true, false or null: its text */

static void
ngx_http_ai_gateway_gen_token(ngx_http_ai_gateway_gen_t *gen, u_char *p,
    size_t len)
{
    u_char     *d;
    ngx_int_t   sep;

    sep = ngx_http_ai_gateway_gen_sep(gen, 0);
    if (sep == NGX_ERROR) {
        return;
    }

    d = ngx_http_ai_gateway_gen_room(gen, len + 1);

    if (d != NULL) {
        if (sep) {
            *d++ = (u_char) sep;
        }

        d = ngx_cpymem(d, p, len);
        gen->len = d - gen->buf;
    }

    ngx_http_ai_gateway_gen_atom(gen);
}


/*
 * yajl_gen_string(): the string is checked as UTF-8 first (nothing is
 * written for one that is not), then quoted and escaped.
 */

static void
ngx_http_ai_gateway_gen_quoted(ngx_http_ai_gateway_gen_t *gen, u_char *p,
    size_t len)
{
    u_char      c, *d, *q, *last;
    size_t      n;
    ngx_int_t   sep;
    ngx_uint_t  k, i;

    static u_char  hex[] = "0123456789ABCDEF";

    n = len;
    last = p + len;

    for (q = p; q < last; /* void */) {

        k = ngx_http_ai_gateway_json_class[*q];

        if (k == NGX_HTTP_AI_GATEWAY_CHAR_PLAIN) {
            q++;
            continue;
        }

        if (k == NGX_HTTP_AI_GATEWAY_CHAR_ESCAPE) {
            n += 1;
            q++;
            continue;
        }

        if (k == NGX_HTTP_AI_GATEWAY_CHAR_HEX) {
            n += 5;
            q++;
            continue;
        }

        if (k == NGX_HTTP_AI_GATEWAY_CHAR_BAD || (size_t) (last - q) < k) {
            gen->invalid = 1;
            return;
        }

        for (i = 1; i < k; i++) {
            if ((q[i] & 0xc0) != 0x80) {
                gen->invalid = 1;
                return;
            }
        }

        q += k;
    }

    sep = ngx_http_ai_gateway_gen_sep(gen, 1);
    if (sep == NGX_ERROR) {
        return;
    }

    d = ngx_http_ai_gateway_gen_room(gen, n + 3);

    if (d == NULL) {
        ngx_http_ai_gateway_gen_atom(gen);
        return;
    }

    if (sep) {
        *d++ = (u_char) sep;
    }

    *d++ = '"';

    if (n == len) {
        d = ngx_cpymem(d, p, len);

    } else {
        for (q = p; q < last; q++) {
            c = *q;

            switch (ngx_http_ai_gateway_json_class[c]) {

            case NGX_HTTP_AI_GATEWAY_CHAR_ESCAPE:
                *d++ = '\\';

                switch (c) {
                case '\b':
                    *d++ = 'b';
                    break;
                case '\t':
                    *d++ = 't';
                    break;
                case '\n':
                    *d++ = 'n';
                    break;
                case '\f':
                    *d++ = 'f';
                    break;
                case '\r':
                    *d++ = 'r';
                    break;
                default: /* '"', '\\' */
                    *d++ = c;
                }

                break;

            case NGX_HTTP_AI_GATEWAY_CHAR_HEX:
                *d++ = '\\';
                *d++ = 'u';
                *d++ = '0';
                *d++ = '0';
                *d++ = hex[c >> 4];
                *d++ = hex[c & 0xf];
                break;

            default:
                *d++ = c;
            }
        }
    }

    *d++ = '"';

    gen->len = d - gen->buf;

    ngx_http_ai_gateway_gen_atom(gen);
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
        ngx_http_ai_gateway_gen_quoted(gen, p, len);
        return;
    }

    /* NUL characters of the input, C0 80 (see the head of the file) */

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

    ngx_http_ai_gateway_gen_quoted(gen, copy, d - copy);
    ngx_pfree(gen->pool, copy);
}


void
ngx_http_ai_gateway_gen_string(ngx_http_ai_gateway_gen_t *gen, ngx_str_t *s)
{
    ngx_http_ai_gateway_gen_str(gen, s->data, s->len);
}


/* as "%lld" */

void
ngx_http_ai_gateway_gen_int(ngx_http_ai_gateway_gen_t *gen, long long n)
{
    u_char              *p, buf[NGX_INT64_LEN + 1];
    unsigned long long   u;

    p = buf + sizeof(buf);
    u = (n < 0) ? 0ULL - (unsigned long long) n : (unsigned long long) n;

    do {
        *--p = (u_char) ('0' + u % 10);
        u /= 10;
    } while (u);

    if (n < 0) {
        *--p = '-';
    }

    ngx_http_ai_gateway_gen_token(gen, p, buf + sizeof(buf) - p);
}


void
ngx_http_ai_gateway_gen_null(ngx_http_ai_gateway_gen_t *gen)
{
    ngx_http_ai_gateway_gen_token(gen, (u_char *) "null", 4);
}


void
ngx_http_ai_gateway_gen_bool(ngx_http_ai_gateway_gen_t *gen, ngx_uint_t b)
{
    if (b) {
        ngx_http_ai_gateway_gen_token(gen, (u_char *) "true", 4);

    } else {
        ngx_http_ai_gateway_gen_token(gen, (u_char *) "false", 5);
    }
}


/* yajl_gen writes the separator, then refuses a level too many */

static void
ngx_http_ai_gateway_gen_open(ngx_http_ai_gateway_gen_t *gen, u_char c,
    u_char state)
{
    u_char     *d;
    ngx_int_t   sep;

    sep = ngx_http_ai_gateway_gen_sep(gen, 0);
    if (sep == NGX_ERROR) {
        return;
    }

    if (gen->depth + 1 >= NGX_HTTP_AI_GATEWAY_GEN_DEPTH) {
        gen->invalid = 1;
        return;
    }

    gen->state[++gen->depth] = state;

    d = ngx_http_ai_gateway_gen_room(gen, 2);
    if (d == NULL) {
        return;
    }

    if (sep) {
        *d++ = (u_char) sep;
    }

    *d++ = c;
    gen->len = d - gen->buf;
}


/* yajl_gen checks no more: a map may close after a key, or with "]" */

static void
ngx_http_ai_gateway_gen_close(ngx_http_ai_gateway_gen_t *gen, u_char c)
{
    u_char  *d;

    if (gen->depth == 0
        || gen->state[gen->depth] == NGX_HTTP_AI_GATEWAY_GEN_COMPLETE)
    {
        gen->invalid = 1;
        return;
    }

    gen->depth--;

    ngx_http_ai_gateway_gen_atom(gen);

    d = ngx_http_ai_gateway_gen_room(gen, 1);
    if (d == NULL) {
        return;
    }

    *d = c;
    gen->len++;
}


void
ngx_http_ai_gateway_gen_map(ngx_http_ai_gateway_gen_t *gen)
{
    ngx_http_ai_gateway_gen_open(gen, '{', NGX_HTTP_AI_GATEWAY_GEN_MAP_START);
}


void
ngx_http_ai_gateway_gen_map_end(ngx_http_ai_gateway_gen_t *gen)
{
    ngx_http_ai_gateway_gen_close(gen, '}');
}


void
ngx_http_ai_gateway_gen_array(ngx_http_ai_gateway_gen_t *gen)
{
    ngx_http_ai_gateway_gen_open(gen, '[',
                                 NGX_HTTP_AI_GATEWAY_GEN_ARRAY_START);
}


void
ngx_http_ai_gateway_gen_array_end(ngx_http_ai_gateway_gen_t *gen)
{
    ngx_http_ai_gateway_gen_close(gen, ']');
}


/*
 * The output since "mark" and the state it left, copied to the pool, to
 * be written again by gen_replay(); NGX_DECLINED when that output was
 * refused or is nested too deep to be kept.
 */

ngx_int_t
ngx_http_ai_gateway_gen_save(ngx_http_ai_gateway_gen_t *gen, size_t mark,
    ngx_http_ai_gateway_gen_saved_t *saved)
{
    size_t   len;
    u_char  *p;

    if (gen->nomem || gen->invalid || mark > gen->len
        || gen->depth >= NGX_HTTP_AI_GATEWAY_SAVED_DEPTH)
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
    saved->depth = gen->depth;
    ngx_memcpy(saved->state, gen->state, gen->depth + 1);

    return NGX_OK;
}


void
ngx_http_ai_gateway_gen_replay(ngx_http_ai_gateway_gen_t *gen,
    ngx_http_ai_gateway_gen_saved_t *saved)
{
    ngx_http_ai_gateway_gen_raw(gen, saved->text.data, saved->text.len);

    gen->depth = saved->depth;
    ngx_memcpy(gen->state, saved->state, saved->depth + 1);
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
        ngx_http_ai_gateway_gen_token(gen, (u_char *) v->u.number.r,
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

    (void) ngx_http_ai_gateway_gen_init(&gen, pool);

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
    u_char                         c, *s;
    size_t                         n;
    yajl_val                       value;
    ngx_int_t                      rc;
    ngx_uint_t                     depth;
    ngx_http_ai_gateway_jitem_t    items[NGX_HTTP_AI_GATEWAY_JSON_ITEMS];
    ngx_http_ai_gateway_jlevel_t  *lv;
    ngx_http_ai_gateway_jparser_t  jp;
    ngx_http_ai_gateway_jlevel_t   level[NGX_HTTP_AI_GATEWAY_MAX_DEPTH];

    if (memchr(p, '\0', len) != NULL) {
        return NGX_DECLINED;
    }

    jp.pool = pool;
    jp.pos = p;
    jp.last = p + len;
    jp.items = items;
    jp.nitems = 0;
    jp.size = NGX_HTTP_AI_GATEWAY_JSON_ITEMS;

    depth = 0;
    lv = NULL;

value:

    if (ngx_http_ai_gateway_json_skip(&jp) != NGX_OK
        || jp.pos == jp.last)
    {
        return NGX_DECLINED;
    }

    c = *jp.pos;

    switch (c) {

    case '{':
    case '[':

        if (depth == NGX_HTTP_AI_GATEWAY_MAX_DEPTH) {
            return NGX_DECLINED;
        }

        value = ngx_pcalloc(pool, sizeof(struct yajl_val_s));
        if (value == NULL) {
            return NGX_ERROR;
        }

        value->type = (c == '{') ? yajl_t_object : yajl_t_array;

        lv = &level[depth++];
        lv->node = value;
        lv->base = jp.nitems;
        lv->key = NULL;

        jp.pos++;

        if (ngx_http_ai_gateway_json_skip(&jp) != NGX_OK) {
            return NGX_DECLINED;
        }

        if (jp.pos < jp.last && *jp.pos == (u_char) (c + 2)) {
            /* "{}", "[]" ('{' + 2 is '}', '[' + 2 is ']') */
            jp.pos++;
            goto close;
        }

        if (c == '{') {
            goto key;
        }

        goto value;

    case '"':

        s = ngx_http_ai_gateway_json_chars(&jp, sizeof(struct yajl_val_s),
                                           &n);
        if (s == NULL) {
            return (jp.pos == NULL) ? NGX_ERROR : NGX_DECLINED;
        }

        value = (yajl_val) s;
        value->type = yajl_t_string;
        value->u.string = (char *) s + sizeof(struct yajl_val_s);
        break;

    case 't':
    case 'f':
    case 'n':

        s = (u_char *) ((c == 't') ? "true" : (c == 'f') ? "false" : "null");
        n = ngx_strlen(s);

        if ((size_t) (jp.last - jp.pos) < n || ngx_strncmp(jp.pos, s, n) != 0)
        {
            return NGX_DECLINED;
        }

        jp.pos += n;

        value = ngx_pcalloc(pool, sizeof(struct yajl_val_s));
        if (value == NULL) {
            return NGX_ERROR;
        }

        value->type = (c == 't') ? yajl_t_true
                                 : (c == 'f') ? yajl_t_false : yajl_t_null;
        break;

    default:

        if (c != '-' && (c < '0' || c > '9')) {
            return NGX_DECLINED;
        }

        value = ngx_http_ai_gateway_json_number(&jp);
        if (value == NULL) {
            return (jp.pos == NULL) ? NGX_ERROR : NGX_DECLINED;
        }
    }

got:

    /* a complete value: the root, or a member of the open level */

    if (depth == 0) {
        rc = ngx_http_ai_gateway_json_trailing(&jp);
        if (rc != NGX_OK) {
            return rc;
        }

        *v = value;
        return NGX_OK;
    }

    lv = &level[depth - 1];

    if (ngx_http_ai_gateway_json_item(&jp, lv->key, value) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_ai_gateway_json_skip(&jp) != NGX_OK
        || jp.pos == jp.last)
    {
        return NGX_DECLINED;
    }

    c = *jp.pos++;

    if (lv->node->type == yajl_t_object) {
        if (c == ',') {
            goto key;
        }

        if (c == '}') {
            goto close;
        }

        return NGX_DECLINED;
    }

    if (c == ',') {
        goto value;
    }

    if (c == ']') {
        goto close;
    }

    return NGX_DECLINED;

key:

    if (ngx_http_ai_gateway_json_skip(&jp) != NGX_OK
        || jp.pos == jp.last || *jp.pos != '"')
    {
        return NGX_DECLINED;
    }

    s = ngx_http_ai_gateway_json_chars(&jp, 0, &n);
    if (s == NULL) {
        return (jp.pos == NULL) ? NGX_ERROR : NGX_DECLINED;
    }

    level[depth - 1].key = (char *) s;

    if (ngx_http_ai_gateway_json_skip(&jp) != NGX_OK
        || jp.pos == jp.last || *jp.pos != ':')
    {
        return NGX_DECLINED;
    }

    jp.pos++;

    goto value;

close:

    lv = &level[--depth];

    if (ngx_http_ai_gateway_json_close(&jp, lv) != NGX_OK) {
        return NGX_ERROR;
    }

    value = lv->node;

    goto got;
}


/*
 * json_space() without a call in the common cases: the next byte is a
 * token's, or one space before it (as in "key": value).
 */

static ngx_inline ngx_int_t
ngx_http_ai_gateway_json_skip(ngx_http_ai_gateway_jparser_t *jp)
{
    if (jp->pos < jp->last && *jp->pos == ' ') {
        jp->pos++;
    }

    if (jp->pos < jp->last && *jp->pos > ' ' && *jp->pos != '/') {
        return NGX_OK;
    }

    return ngx_http_ai_gateway_json_space(jp);
}


/*
 * White space and comments, as yajl's lexer skips them.  NGX_AGAIN: the
 * text ends in a comment; NGX_DECLINED: a "/" that starts no comment.
 */

static ngx_int_t
ngx_http_ai_gateway_json_space(ngx_http_ai_gateway_jparser_t *jp)
{
    u_char  *p, *q, *last;

    p = jp->pos;
    last = jp->last;

    while (p < last) {

        switch (*p) {

        case ' ':
        case '\n':
        case '\r':
        case '\t':
        case '\v':
        case '\f':
            p++;
            continue;

        case '/':
            break;

        default:
            jp->pos = p;
            return NGX_OK;
        }

        if (last - p < 2) {
            return NGX_DECLINED;
        }

        if (p[1] == '/') {
            q = memchr(p + 2, '\n', last - p - 2);

            if (q == NULL) {
                jp->pos = last;
                return NGX_AGAIN;
            }

            p = q + 1;
            continue;
        }

        if (p[1] != '*') {
            return NGX_DECLINED;
        }

        for (q = p + 2; /* void */; q++) {
            q = memchr(q, '*', last - q);

            if (q == NULL || q + 1 == last) {
                jp->pos = last;
                return NGX_AGAIN;
            }

            if (q[1] == '/') {
                break;
            }
        }

        p = q + 2;
    }

    jp->pos = p;

    return NGX_OK;
}


/*
 * A string at jp->pos (its opening quote), checked as yajl's lexer does:
 * no control characters, known escapes, "\u" and four hex digits, UTF-8
 * leads followed by their continuation bytes.  NGX_OK: *end is at its
 * closing quote; NGX_AGAIN: the text ends in it, at a character's end;
 * NGX_DECLINED: anything else.
 */

static ngx_int_t
ngx_http_ai_gateway_json_lex(ngx_http_ai_gateway_jparser_t *jp, u_char **end,
    ngx_uint_t *escapes)
{
    u_char      c, *q, *last;
    ngx_uint_t  k, i;

    last = jp->last;

    *escapes = 0;

    for (q = jp->pos + 1; q < last; /* void */) {

        c = *q;
        k = ngx_http_ai_gateway_json_class[c];

        if (k == NGX_HTTP_AI_GATEWAY_CHAR_PLAIN) {
            q++;
            continue;
        }

        if (c == '"') {
            *end = q;
            return NGX_OK;
        }

        if (c == '\\') {
            *escapes = 1;

            if (q + 1 == last) {
                return NGX_DECLINED;
            }

            c = q[1];

            if (c == 'u') {
                for (i = 2; i < 6; i++) {
                    if (q + i == last
                        || ngx_http_ai_gateway_json_hex(&q[i]) > 0xf)
                    {
                        return NGX_DECLINED;
                    }
                }

                q += 6;
                continue;
            }

            switch (c) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                q += 2;
                continue;
            }

            return NGX_DECLINED;
        }

        if (c < 0x20 || k == NGX_HTTP_AI_GATEWAY_CHAR_BAD) {
            return NGX_DECLINED;
        }

        for (i = 1; i < k; i++) {
            if (q + i == last || (q[i] & 0xc0) != 0x80) {
                return NGX_DECLINED;
            }
        }

        q += k;
    }

    return NGX_AGAIN;
}


/*
 * The string at jp->pos, decoded into a NUL-terminated copy "before"
 * bytes into a pool allocation (a node goes there); jp->pos moves past
 * it.  NULL: not a string, or no memory (jp->pos is NULL then).
 */

static u_char *
ngx_http_ai_gateway_json_chars(ngx_http_ai_gateway_jparser_t *jp,
    size_t before, size_t *len)
{
    u_char      *s, *d, *end;
    ngx_uint_t   escapes;

    if (ngx_http_ai_gateway_json_lex(jp, &end, &escapes) != NGX_OK) {
        return NULL;
    }

    /* decoded strings are never longer */

    s = ngx_palloc(jp->pool, before + (end - jp->pos - 1) + 1);
    if (s == NULL) {
        jp->pos = NULL;
        return NULL;
    }

    d = s + before;

    if (escapes) {
        d = ngx_http_ai_gateway_json_decode(d, jp->pos + 1, end);

    } else {
        d = ngx_cpymem(d, jp->pos + 1, end - jp->pos - 1);
    }

    *d = '\0';
    *len = d - s - before;

    jp->pos = end + 1;

    return s;
}


/*
 * yajl_string_decode(), on checked text: a high surrogate and the
 * "\uXXXX" after it make one code point, whatever that is; one without
 * gives "?".  "\u0000" gives C0 80 (so a high surrogate before it gives
 * "?"), as the module always kept it.
 */

static u_char *
ngx_http_ai_gateway_json_decode(u_char *d, u_char *p, u_char *last)
{
    u_char      *q;
    ngx_uint_t   cp, low;

    while (p < last) {

        q = memchr(p, '\\', last - p);

        if (q == NULL) {
            return ngx_cpymem(d, p, last - p);
        }

        d = ngx_cpymem(d, p, q - p);

        switch (q[1]) {

        case 'u':
            break;

        case 'b':
            *d++ = '\b';
            p = q + 2;
            continue;

        case 'f':
            *d++ = '\f';
            p = q + 2;
            continue;

        case 'n':
            *d++ = '\n';
            p = q + 2;
            continue;

        case 'r':
            *d++ = '\r';
            p = q + 2;
            continue;

        case 't':
            *d++ = '\t';
            p = q + 2;
            continue;

        default: /* '"', '\\', '/' */
            *d++ = q[1];
            p = q + 2;
            continue;
        }

        cp = ngx_http_ai_gateway_json_hex(q + 2) << 12
             | ngx_http_ai_gateway_json_hex(q + 3) << 8
             | ngx_http_ai_gateway_json_hex(q + 4) << 4
             | ngx_http_ai_gateway_json_hex(q + 5);

        p = q + 6;

        if (cp == 0) {
            *d++ = 0xc0;
            *d++ = 0x80;
            continue;
        }

        if ((cp & 0xfc00) == 0xd800) {

            if (last - p < 6 || p[0] != '\\' || p[1] != 'u'
                || ngx_strncmp(p + 2, "0000", 4) == 0)
            {
                *d++ = '?';
                continue;
            }

            low = ngx_http_ai_gateway_json_hex(p + 2) << 12
                  | ngx_http_ai_gateway_json_hex(p + 3) << 8
                  | ngx_http_ai_gateway_json_hex(p + 4) << 4
                  | ngx_http_ai_gateway_json_hex(p + 5);

            cp = ((cp & 0x3f) << 10) | ((((cp >> 6) & 0xf) + 1) << 16)
                 | (low & 0x3ff);

            p += 6;
        }

        d = ngx_http_ai_gateway_json_utf8(d, cp);
    }

    return d;
}


/* a hex digit's value, above 15 for anything else */

static ngx_uint_t
ngx_http_ai_gateway_json_hex(u_char *p)
{
    u_char  c;

    c = *p;

    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return 16;
}


/* yajl's Utf32toUtf8() */

static u_char *
ngx_http_ai_gateway_json_utf8(u_char *d, ngx_uint_t cp)
{
    if (cp < 0x80) {
        *d++ = (u_char) cp;

    } else if (cp < 0x800) {
        *d++ = (u_char) (0xc0 | (cp >> 6));
        *d++ = (u_char) (0x80 | (cp & 0x3f));

    } else if (cp < 0x10000) {
        *d++ = (u_char) (0xe0 | (cp >> 12));
        *d++ = (u_char) (0x80 | ((cp >> 6) & 0x3f));
        *d++ = (u_char) (0x80 | (cp & 0x3f));

    } else if (cp < 0x200000) {
        *d++ = (u_char) (0xf0 | (cp >> 18));
        *d++ = (u_char) (0x80 | ((cp >> 12) & 0x3f));
        *d++ = (u_char) (0x80 | ((cp >> 6) & 0x3f));
        *d++ = (u_char) (0x80 | (cp & 0x3f));

    } else {
        *d++ = '?';
    }

    return d;
}


/*
 * A number, as yajl's lexer reads it:
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?; then read as
 * yajl_tree does: the text, the integer (yajl_parse_integer(), valid
 * unless out of range or not an integer) and strtod()'s double.  NULL:
 * not a number, or no memory (jp->pos is NULL then).
 */

static yajl_val
ngx_http_ai_gateway_json_number(ngx_http_ai_gateway_jparser_t *jp)
{
    u_char      *p, *q, *last;
    char        *end;
    size_t       len;
    yajl_val     v;
    ngx_err_t    err;
    ngx_uint_t   valid;

    p = jp->pos;
    last = jp->last;

    q = p;

    if (*q == '-') {
        q++;
    }

    if (q == last || *q < '0' || *q > '9') {
        return NULL;
    }

    if (*q++ != '0') {
        while (q < last && *q >= '0' && *q <= '9') {
            q++;
        }
    }

    if (q < last && *q == '.') {
        if (++q == last || *q < '0' || *q > '9') {
            return NULL;
        }

        while (q < last && *q >= '0' && *q <= '9') {
            q++;
        }
    }

    if (q < last && (*q == 'e' || *q == 'E')) {
        if (++q < last && (*q == '+' || *q == '-')) {
            q++;
        }

        if (q == last || *q < '0' || *q > '9') {
            return NULL;
        }

        while (q < last && *q >= '0' && *q <= '9') {
            q++;
        }
    }

    len = q - p;

    v = ngx_palloc(jp->pool, sizeof(struct yajl_val_s) + len + 1);
    if (v == NULL) {
        jp->pos = NULL;
        return NULL;
    }

    v->type = yajl_t_number;
    v->u.number.r = (char *) v + sizeof(struct yajl_val_s);

    ngx_memcpy(v->u.number.r, p, len);
    v->u.number.r[len] = '\0';

    jp->pos = q;

    v->u.number.i = ngx_http_ai_gateway_json_integer(p, q, &valid);
    v->u.number.flags = valid ? YAJL_NUMBER_INT_VALID : 0;

    /* small integers as strtod() reads them ("-0" is -0.0) */

    if (valid && len <= 15 && !(v->u.number.i == 0 && *p == '-')) {
        v->u.number.d = (double) v->u.number.i;
        v->u.number.flags |= YAJL_NUMBER_DOUBLE_VALID;
        return v;
    }

    err = ngx_errno;

    end = NULL;
    ngx_set_errno(0);

    v->u.number.d = strtod(v->u.number.r, &end);

    if (ngx_errno == 0 && end != NULL && *end == '\0') {
        v->u.number.flags |= YAJL_NUMBER_DOUBLE_VALID;
    }

    ngx_set_errno(err);

    return v;
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


/*
 * After the value, yajl accepts white space and comments, and a text
 * that ends in a comment or in a string (at a character's end: its
 * parser only looks for a token's end after the text).
 */

static ngx_int_t
ngx_http_ai_gateway_json_trailing(ngx_http_ai_gateway_jparser_t *jp)
{
    u_char      *end;
    ngx_int_t    rc;
    ngx_uint_t   escapes;

    rc = ngx_http_ai_gateway_json_space(jp);

    if (rc == NGX_AGAIN || (rc == NGX_OK && jp->pos == jp->last)) {
        return NGX_OK;
    }

    if (rc == NGX_OK && *jp->pos == '"'
        && ngx_http_ai_gateway_json_lex(jp, &end, &escapes) == NGX_AGAIN)
    {
        return NGX_OK;
    }

    return NGX_DECLINED;
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
