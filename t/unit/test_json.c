
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/*
 * The module's JSON parser and generator (yajl on the pools) against
 * yajl_tree and yajl_gen on malloc() (t/unit/yajl_ref.c), on the texts
 * and calls where yajl has its ways:
 * numbers at the edges of their range, escapes and surrogates, "\u0000",
 * UTF-8 as yajl checks it, comments and what may follow the value, the
 * nesting limits, the generator's states; and on every recorded fixture
 * and request case, and every event of the recorded streams.
 */


#include "unit.h"
#include "yajl_ref.h"

#include <glob.h>


#define unit_text(s)  { (u_char *) s, sizeof(s) - 1 }


typedef struct {
    u_char                        *data;
    size_t                         len;
} unit_text_t;


static unit_text_t  unit_json_texts[] = {

    /* values and numbers */
    unit_text(""), unit_text(" "), unit_text("{}"), unit_text("[]"),
    unit_text("1"), unit_text("-0"), unit_text("0"), unit_text("01"),
    unit_text("-01"), unit_text("1."), unit_text("1.5"), unit_text(".5"),
    unit_text("-"), unit_text("-a"), unit_text("+1"), unit_text("1e"),
    unit_text("1e+"), unit_text("-1.5e+3"), unit_text("1E-7"),
    unit_text("2e308"), unit_text("1e-400"), unit_text("0.1e400"),
    unit_text("123456789012345"), unit_text("1234567890123456"),
    unit_text("-123456789012345"), unit_text("9007199254740993"),
    unit_text("9223372036854775807"), unit_text("9223372036854775808"),
    unit_text("-9223372036854775808"), unit_text("-9223372036854775809"),
    unit_text("9223372036854775810"), unit_text("92233720368547758070"),
    unit_text("12345678901234567890123"), unit_text("[1.0,-0.0,1e2]"),
    unit_text("true"), unit_text("tru"), unit_text("false"),
    unit_text("null"), unit_text("nul"), unit_text("trueX"),
    unit_text("[true,false,null]"), unit_text("[truefalse]"),

    /* strings */
    unit_text("\"a\""), unit_text("\"\""), unit_text("\"\\u0000\""),
    unit_text("\"a\\u0000b\\u0000\""), unit_text("\"\\\\u0000\""),
    unit_text("\"\\\\\\u0000\""), unit_text("\"\\ud800\""),
    unit_text("\"\\ud800x\""), unit_text("\"\\ud800\\u0000\""),
    unit_text("\"\\ud800\\udc00\""), unit_text("\"\\udbff\\udfff\""),
    unit_text("\"\\ud800\\u0041\""), unit_text("\"\\ud800\\ud800\""),
    unit_text("\"\\udc00\""), unit_text("\"\\ud800\\\\\""),
    unit_text("\"\\ud800\\n\""), unit_text("\"\\ud800\\\\u0041\""),
    unit_text("\"\\ud800\xc3\xa9\""), unit_text("\"\\u00e9\\u20AC\""),
    unit_text("\"\\u00E9\""), unit_text("\"\\u12\""),
    unit_text("\"\\u12g4\""), unit_text("\"\\x\""), unit_text("\"\\/\""),
    unit_text("\"\\b\\f\\n\\r\\t\\\"\\\\\""), unit_text("\"\xc3\""),
    unit_text("\"\xc3\xa9\""), unit_text("\"\xe2\x82\xac\""),
    unit_text("\"\xe2\x82\""), unit_text("\"\xf0\x9f\x98\x80\""),
    unit_text("\"\xf7\xbf\xbf\xbf\""), unit_text("\"\xf8\x80\x80\x80\""),
    unit_text("\"\x80\""), unit_text("\"\xc0\x80\""), unit_text("\"\xc0\""),
    unit_text("\"\xed\xa0\x80\""), unit_text("\"\x7f\""),
    unit_text("\"\x01\""), unit_text("\"\t\""), unit_text("\"a"),
    unit_text("\"\xff\""), unit_text("{\"\":\"\"}"),
    unit_text("{\"\\u0000\":1}"), unit_text("{\"k\\u00e9\\n\":1}"),

    /* structure */
    unit_text("[1,]"), unit_text("{\"a\":1,}"), unit_text("{,}"),
    unit_text("[,1]"), unit_text("{\"a\"}"), unit_text("{\"a\":}"),
    unit_text("{1:2}"), unit_text("[1 2]"), unit_text("{\"a\":1 \"b\":2}"),
    unit_text("{\"a\":1,\"a\":2,\"b\":[{},[]]}"), unit_text("[[[]]]"),
    unit_text("[1]]"), unit_text("{}}"), unit_text("{\"a\" 1}"),
    unit_text("{\"a\"::1}"), unit_text("[\"a\":1]"), unit_text("{]"),
    unit_text("[}"), unit_text("{"), unit_text("["), unit_text("[1"),
    unit_text("{\"a\":1"), unit_text("{\"a\""),

    /* white space, comments and what may follow the value */
    unit_text("\v1\f"), unit_text(" \t\r\n[ 1 , 2 ]\n"),
    unit_text(" /*x*/ 1 // y\n"), unit_text("1 /* open"),
    unit_text("1 // open"), unit_text("1 /* a */ /* open *"),
    unit_text("/* */"), unit_text("// only"), unit_text("1 /"),
    unit_text("1 /x"), unit_text("1/**/"), unit_text("/***/1/***/"),
    unit_text("/*/ 1"), unit_text("/*a*/{/*b*/\"k\"/*c*/:/*d*/1/*e*/}"),
    unit_text("[1//c\n,2]"), unit_text("[1//c,2]"), unit_text("{} \"abc"),
    unit_text("{} \"ab\\"), unit_text("{} \"\\u12"), unit_text("{} \"\xc3"),
    unit_text("{} \"\xc3\xa9"), unit_text("{} \"\x01"), unit_text("{} \"a\""),
    unit_text("{} \"a\" x"), unit_text("{} t"), unit_text("{} 1"),
    unit_text("{}{}"), unit_text("{} /* c */ \"s"), unit_text("{}\""),
    unit_text("\xef\xbb\xbf{}"), unit_text("{\"a\":\"b\"}\0"),
    unit_text("/*\0*/1"), unit_text("1 // \0"), unit_text("\"a\0\"")
};


static u_char  unit_json_calls[][48] = {
    { 18, 0, 4, 1, 'a', 6, 4, 1, 'b', 5, 1, 0, 0, 0, 0, 0, 0, 0, 1 },
    { 2, 0, 6 },                      /* a key that is no string */
    { 6, 0, 4, 1, 'a', 6, 6 },
    { 2, 6, 6 },                      /* two values */
    { 3, 6, 9, 6 },                   /* reset */
    { 3, 4, 1, 0x80 },                /* no UTF-8 */
    { 4, 4, 2, 0xc0, 0x80 },          /* "\u0000" */
    { 6, 4, 4, 0x01, 0x1f, '"', '\\' },
    { 7, 4, 5, 'a', 0xc0, 0xc0, 0x80, 0xc0 },
    { 6, 4, 4, 0xe2, 0x82, 0xac, 0x7f },
    { 4, 4, 2, 0xe2, 0x82 },          /* cut short */
    { 1, 1 },                         /* a close at the top */
    { 1, 3 },
    { 5, 0, 4, 1, 'a', 1 },           /* a map closed after its key */
    { 2, 0, 3 },                      /* "{]" */
    { 10, 2, 5, 0, 0, 0, 0, 0, 0, 0, 0x80 },
    { 10, 2, 5, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
    { 12, 2, 8, 0, 8, 1, 8, 2, 8, 3, 8, 4, 3 },
    { 10, 2, 7, 0, 7, 1, 6, 2, 3, 3, 3 },
    { 6, 0, 4, 1, 'k', 8, 0 },
    { 4, 2, 1, 9, 6 },
    { 33, 4, 31, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
      17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31 },
    { 4, 4, 2, 0, 0x7f },             /* a NUL byte, DEL */
    { 7, 4, 5, 0xf0, 0x9f, 0x98, 0x80, '/' },
    { 5, 4, 3, 0xf0, 0x9f, 0x98 },    /* cut short */
    { 3, 4, 1, 0xf8 },                /* no lead byte */
    { 4, 4, 2, 0xc3, 0x28 },          /* no continuation byte */
    { 14, 0, 4, 1, 'a', 2, 0, 4, 1, 'b', 6, 1, 6, 3, 1 },
    { 8, 2, 6, 4, 0, 5, 0, 8, 1 }     /* after values, in an array */
};


static void unit_json_event(u_char *p, size_t len);
static void unit_json_nomem(void);
static void unit_json_replay(void);


void
unit_json(void)
{
    u_char      *p, *body, calls[300];
    size_t       i, len;
    glob_t       g;
    ngx_uint_t   n;

    for (i = 0; i < sizeof(unit_json_texts) / sizeof(unit_text_t); i++) {
        unit_check(yajl_ref_same_parse(unit_json_texts[i].data,
                                       unit_json_texts[i].len),
                   "json: text %lu", (unsigned long) i);
    }

    for (i = 0; i < sizeof(unit_json_calls) / sizeof(unit_json_calls[0]);
         i++)
    {
        unit_check(yajl_ref_same_gen(&unit_json_calls[i][1],
                                     unit_json_calls[i][0]),
                   "json: calls %lu", (unsigned long) i);
    }

    /* nesting: 100 levels parsed, 101 not; 127 generated, 128 not */

    for (n = 99; n <= 102; n++) {
        p = malloc(2 * n);
        memset(p, '[', n);
        memset(p + n, ']', n);
        unit_check(yajl_ref_same_parse(p, 2 * n), "json: %lu levels",
                   (unsigned long) n);
        free(p);
    }

    for (n = 126; n <= 129; n++) {
        memset(calls, 2, n);
        memset(calls + n, 3, n);
        unit_check(yajl_ref_same_gen(calls, 2 * n), "json: %lu calls deep",
                   (unsigned long) n);
    }

    /*
     * strings long enough for yajl's buffers to grow (2 KB, doubled) by
     * copies into new pool memory: escaped, and a number the text ends
     * in (kept in the lexer's buffer)
     */

    for (n = 1000; n <= 9000; n += 4000) {
        p = malloc(2 * n + 16);
        len = 0;
        p[len++] = '[';
        p[len++] = '"';

        for (i = 0; i < n; i++) {
            p[len++] = '\\';
            p[len++] = (i % 3) ? 'n' : '"';
        }

        p[len++] = '"';
        p[len++] = ']';

        unit_check(yajl_ref_same_parse(p, len), "json: %lu escapes",
                   (unsigned long) n);

        memset(p, '7', n);
        unit_check(yajl_ref_same_parse(p, n), "json: %lu digits",
                   (unsigned long) n);

        free(p);
    }

    unit_json_nomem();
    unit_json_replay();

    /* the fixtures and cases, and the events of the recorded streams */

    if (glob("t/fixtures/*/*.json", 0, NULL, &g) == 0) {
        (void) glob("t/unit/cases/*/*.json", GLOB_APPEND, NULL, &g);

        for (i = 0; i < g.gl_pathc; i++) {
            body = unit_read(g.gl_pathv[i], &len);

            if (body) {
                unit_check(yajl_ref_same_parse(body, len), "json: %s",
                           g.gl_pathv[i]);
                free(body);
            }
        }

        globfree(&g);
    }

    if (glob("t/fixtures/*/*.sse", 0, NULL, &g) == 0) {
        for (i = 0; i < g.gl_pathc; i++) {
            body = unit_read(g.gl_pathv[i], &len);

            if (body == NULL) {
                continue;
            }

            unit_json_event(body, len);
            free(body);
        }

        globfree(&g);
    }
}


/* every "data:" line of a stream */

static void
unit_json_event(u_char *p, size_t len)
{
    u_char  *last, *eol;

    last = p + len;

    for ( /* void */ ; p < last; p = eol + 1) {
        eol = memchr(p, '\n', last - p);

        if (eol == NULL) {
            eol = last;
        }

        if (eol - p > 5 && ngx_strncmp(p, "data:", 5) == 0) {
            unit_check(yajl_ref_same_parse(p + 5, eol - p - 5),
                       "json: event %.*s", (int) (eol - p), p);
        }
    }
}


/*
 * Every allocation failing in turn, yajl's own too (they jump back out
 * of yajl): the parser and a generator report no memory, never crash,
 * and give what they give without failures once enough succeed.
 */

static void
unit_json_nomem(void)
{
    u_char                     *text;
    size_t                      i, len;
    yajl_val                    v, ref;
    ngx_int_t                   rc, n;
    ngx_str_t                   out;
    ngx_uint_t                  ok;
    ngx_pool_t                 *pool;
    ngx_http_ai_gateway_gen_t   gen;

    static unit_text_t  texts[] = {
        unit_text("{\"a\":[1,2.5,\"x\\n\\u0000\",{\"b\":null}],\"c\":true}"),
        unit_text("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                  "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"),
        unit_text("12345678901234567890"),
        unit_text("{\"k\":1,\"k\":2} /* c */")
    };

    for (i = 0; i < sizeof(texts) / sizeof(unit_text_t); i++) {
        ref = yajl_ref_parse(texts[i].data, texts[i].len);
        ok = 0;

        for (n = 0; n < 1000; n++) {
            pool = ngx_create_pool(4096, NULL);

            ngx_shim_fail_after = n;
            rc = ngx_http_ai_gateway_json_parse(pool, texts[i].data,
                                                texts[i].len, &v);
            ngx_shim_fail_after = -1;

            if (rc == NGX_OK) {
                ok = yajl_ref_equal(v, ref);
            }

            ngx_destroy_pool(pool);

            if (rc != NGX_ERROR) {
                break;
            }
        }

        unit_check(ok, "json: text %lu, allocations failing (%ld)",
                   (unsigned long) i, (long) n);

        yajl_tree_free(ref);
    }

    ok = 0;

    for (n = 0; n < 100; n++) {
        pool = ngx_create_pool(4096, NULL);

        ngx_shim_fail_after = n;

        rc = ngx_http_ai_gateway_gen_init(&gen, pool);

        if (rc == NGX_OK) {
            ngx_http_ai_gateway_gen_map(&gen);
            ngx_http_ai_gateway_gen_literal(&gen, "a");
            ngx_http_ai_gateway_gen_int(&gen, 1);
            ngx_http_ai_gateway_gen_map_end(&gen);
            rc = ngx_http_ai_gateway_gen_done(&gen, &out);
        }

        ngx_shim_fail_after = -1;

        if (rc == NGX_OK) {
            text = (u_char *) "{\"a\":1}";
            len = sizeof("{\"a\":1}") - 1;
            ok = (out.len == len && memcmp(out.data, text, len) == 0);
        }

        ngx_destroy_pool(pool);

        if (rc != NGX_ERROR) {
            break;
        }
    }

    unit_check(ok, "json: generator, allocations failing (%ld)", (long) n);
}


/*
 * A head saved once and replayed gives the text and the generator's
 * state that writing it again gives: the same bytes after it, the same
 * calls refused.
 */

static void
unit_json_replay(void)
{
    size_t                            mark;
    ngx_str_t                         a, b, s;
    ngx_uint_t                        k;
    ngx_pool_t                       *pool;
    ngx_http_ai_gateway_gen_t         gen, ref;
    ngx_http_ai_gateway_gen_saved_t   saved;

    pool = ngx_create_pool(4096, NULL);

    for (k = 0; k < 3; k++) {
        (void) ngx_http_ai_gateway_gen_init(&ref, pool);
        (void) ngx_http_ai_gateway_gen_init(&gen, pool);

        ngx_str_set(&s, "id-\xc3\xa9\"\x01");

        /* the reference: the head written each time */

        ngx_http_ai_gateway_gen_raw(&ref, (u_char *) "data: ", 6);
        ngx_http_ai_gateway_gen_reset(&ref);
        ngx_http_ai_gateway_gen_map(&ref);
        ngx_http_ai_gateway_gen_literal(&ref, "id");
        ngx_http_ai_gateway_gen_string(&ref, &s);
        ngx_http_ai_gateway_gen_literal(&ref, "created");
        ngx_http_ai_gateway_gen_int(&ref, 1700000000);

        /* saved the first time, replayed the second */

        mark = gen.len;
        ngx_http_ai_gateway_gen_raw(&gen, (u_char *) "data: ", 6);
        ngx_http_ai_gateway_gen_reset(&gen);
        ngx_http_ai_gateway_gen_map(&gen);
        ngx_http_ai_gateway_gen_literal(&gen, "id");
        ngx_http_ai_gateway_gen_string(&gen, &s);
        ngx_http_ai_gateway_gen_literal(&gen, "created");
        ngx_http_ai_gateway_gen_int(&gen, 1700000000);

        unit_check(ngx_http_ai_gateway_gen_save(&gen, mark, &saved)
                   == NGX_OK, "json: head saved");

        gen.len = 0;
        ngx_http_ai_gateway_gen_replay(&gen, &saved);

        switch (k) {

        case 0:
            /* more members, nested, then the end */
            ngx_http_ai_gateway_gen_literal(&ref, "choices");
            ngx_http_ai_gateway_gen_array(&ref);
            ngx_http_ai_gateway_gen_map(&ref);
            ngx_http_ai_gateway_gen_map_end(&ref);
            ngx_http_ai_gateway_gen_array_end(&ref);
            ngx_http_ai_gateway_gen_map_end(&ref);

            ngx_http_ai_gateway_gen_literal(&gen, "choices");
            ngx_http_ai_gateway_gen_array(&gen);
            ngx_http_ai_gateway_gen_map(&gen);
            ngx_http_ai_gateway_gen_map_end(&gen);
            ngx_http_ai_gateway_gen_array_end(&gen);
            ngx_http_ai_gateway_gen_map_end(&gen);
            break;

        case 1:
            /* a value where a key must come: refused by both */
            ngx_http_ai_gateway_gen_null(&ref);
            ngx_http_ai_gateway_gen_null(&gen);
            break;

        default:
            /* the end, then a second top-level value: refused */
            ngx_http_ai_gateway_gen_map_end(&ref);
            ngx_http_ai_gateway_gen_null(&ref);
            ngx_http_ai_gateway_gen_map_end(&gen);
            ngx_http_ai_gateway_gen_null(&gen);
            break;
        }

        a.data = ref.buf;
        a.len = ref.len;
        b.data = gen.buf;
        b.len = gen.len;

        unit_check(ref.invalid == gen.invalid && a.len == b.len
                   && ngx_strncmp(a.data, b.data, a.len) == 0,
                   "json: replay %lu: \"%.*s\", \"%.*s\"", (unsigned long) k,
                   (int) a.len, a.data, (int) b.len, b.data);
    }

    ngx_destroy_pool(pool);
}
