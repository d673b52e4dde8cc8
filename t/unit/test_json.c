
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/*
 * The module's JSON parser and generator (yajl on the pools) against
 * yajl_tree and yajl_gen on malloc() (t/unit/yajl_ref.c), on the texts and calls where yajl has its ways:
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
    { 4, 2, 1, 9, 6 }
};


static void unit_json_event(u_char *p, size_t len);


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
