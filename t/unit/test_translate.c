
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/*
 * The translators against expected outputs: requests (t/unit/cases/
 * request/NAME.json to NAME.anthropic and NAME.gemini; embeddings:
 * t/unit/cases/embed-request/NAME.json to NAME.gemini), responses,
 * embeddings, errors and streams of the recorded fixtures (t/fixtures)
 * and of the cases in t/unit/cases.  Streams are also fed split at every
 * byte, one byte at a time and cut short at every byte.
 */


#include "unit.h"

#include <dirent.h>


#define UNIT_CASES  "t/unit/cases"

#define UNIT_RESPONSE  0
#define UNIT_ERROR     1
#define UNIT_EMBED     2


typedef struct {
    const char                    *provider;
    const char                    *path;
    ngx_uint_t                     status;
    const char                    *expected;
} unit_case_t;


static unit_case_t  unit_response_cases[] = {
    { "anthropic", "t/fixtures/anthropic/text.json", 200,
      "anthropic-text.json" },
    { "anthropic", "t/fixtures/anthropic/tool-use.json", 200,
      "anthropic-tool-use.json" },
    { "anthropic", "t/fixtures/anthropic/text-and-tool-use-no-args.json", 200,
      "anthropic-text-and-tool-use-no-args.json" },
    { "anthropic", UNIT_CASES "/response/anthropic-thinking.in.json", 200,
      "anthropic-thinking.json" },
    { "anthropic", UNIT_CASES "/response/anthropic-cache.in.json", 200,
      "anthropic-cache.json" },
    { "gemini", "t/fixtures/google-gemini/text.json", 200,
      "gemini-text.json" },
    { "gemini", "t/fixtures/google-gemini/function-call.json", 200,
      "gemini-function-call.json" },
    { "gemini", "t/fixtures/google-gemini/text-with-safety-ratings.json", 200,
      "gemini-text-with-safety-ratings.json" },
    { "gemini", UNIT_CASES "/response/gemini-parallel.in.json", 200,
      "gemini-parallel.json" },
    { "gemini", UNIT_CASES "/response/gemini-candidates.in.json", 200,
      "gemini-candidates.json" },
    { "gemini", UNIT_CASES "/response/gemini-blocked.in.json", 200,
      "gemini-blocked.json" },
    { "gemini", UNIT_CASES "/response/gemini-thoughts.in.json", 200,
      "gemini-thoughts.json" },
    { NULL, NULL, 0, NULL }
};


/* status: encoding_format base64 */

static unit_case_t  unit_embed_cases[] = {
    { "gemini", UNIT_CASES "/response/gemini-embed.in.json", 0,
      "gemini-embed.json" },
    { "gemini", UNIT_CASES "/response/gemini-embed.in.json", 1,
      "gemini-embed-base64.json" },
    { "gemini", UNIT_CASES "/response/gemini-embed-usage.in.json", 0,
      "gemini-embed-usage.json" },
    { "gemini", UNIT_CASES "/response/gemini-embed-usage.in.json", 1,
      "gemini-embed-usage-base64.json" },
    { NULL, NULL, 0, NULL }
};


/*
 * Embeddings responses in brief: the "data" written, or NULL: not
 * Gemini's (NGX_DECLINED)
 */

static struct {
    const char                    *body;
    ngx_uint_t                     base64;
    const char                    *data;
} unit_embed_bodies[] = {
    { "not JSON", 0, NULL },
    { "[]", 0, NULL },
    { "{}", 1, NULL },
    { "{\"embeddings\":{}}", 0, NULL },
    { "{\"embeddings\":[[1,2]]}", 0, NULL },
    { "{\"embeddings\":[{\"value\":[1]}]}", 1, NULL },
    { "{\"embeddings\":[{\"values\":[1,\"2\"]}]}", 0, NULL },
    { "{\"embeddings\":[{\"values\":[1,null]}]}", 1, NULL },
    { "{\"embeddings\":[{\"values\":1}]}", 0, NULL },
    /* beyond float32: 3.4028236e38 rounds to infinity */
    { "{\"embeddings\":[{\"values\":[3.4028236e38]}]}", 1, NULL },
    { "{\"embeddings\":[{\"values\":[-1e999]}]}", 1, NULL },
    { "{\"embeddings\":[{\"values\":[3.4028236e38,-1e999]}]}", 0,
      "[{\"object\":\"embedding\",\"index\":0,\"embedding\":"
      "[3.4028236e38,-1e999]}]" },
    { "{\"embeddings\":[{\"values\":[3.4028235e38,-1e-50]}]}", 1,
      "[{\"object\":\"embedding\",\"index\":0,\"embedding\":"
      "\"//9/fwAAAIA=\"}]" },
    { "{\"embeddings\":[{\"values\":[1]},{\"values\":[2,3]}]}", 1,
      "[{\"object\":\"embedding\",\"index\":0,\"embedding\":"
      "\"AACAPw==\"},{\"object\":\"embedding\",\"index\":1,"
      "\"embedding\":\"AAAAQAAAQEA=\"}]" },
    { "{\"embeddings\":[]}", 1, "[]" },
    { "{\"embeddings\":[{\"values\":[]}]}", 1,
      "[{\"object\":\"embedding\",\"index\":0,\"embedding\":\"\"}]" },
    { "{\"embeddings\":[{\"values\":[]}]}", 0,
      "[{\"object\":\"embedding\",\"index\":0,\"embedding\":[]}]" },
    { NULL, 0, NULL }
};


static unit_case_t  unit_error_cases[] = {
    { "anthropic", "t/fixtures/anthropic/error-400-invalid-request.json", 400,
      "anthropic-400.json" },
    { "anthropic", "t/fixtures/anthropic/error-400-invalid-request-b.json",
      400, "anthropic-400-b.json" },
    { "anthropic", UNIT_CASES "/error/anthropic-529.in.json", 529,
      "anthropic-529.json" },
    { "anthropic", UNIT_CASES "/error/html.in.txt", 502,
      "anthropic-html.json" },
    { "anthropic", UNIT_CASES "/error/empty.in.txt", 503,
      "anthropic-empty.json" },
    { "anthropic", UNIT_CASES "/error/binary.in.txt", 500,
      "anthropic-binary.json" },
    { "gemini", "t/fixtures/google-gemini/error-400-api-key-invalid.json",
      400, "gemini-400.json" },
    { "gemini", "t/fixtures/google-gemini/error-404-unknown-model.json", 404,
      "gemini-404.json" },
    { "gemini", "t/fixtures/google-gemini/error-429-quota-exceeded.json", 429,
      "gemini-429.json" },
    { "gemini", "t/fixtures/google-gemini/error-429-retry-info.json", 429,
      "gemini-429-retry.json" },
    { "gemini", UNIT_CASES "/error/gemini-array.in.json", 400,
      "gemini-array.json" },
    { "gemini", UNIT_CASES "/error/html.in.txt", 502, "gemini-html.json" },
    { "gemini", UNIT_CASES "/error/empty.in.txt", 503, "gemini-empty.json" },
    { NULL, NULL, 0, NULL }
};


/* status: include_usage */

static unit_case_t  unit_stream_cases[] = {
    { "anthropic", "t/fixtures/anthropic/stream-text.sse", 1,
      "anthropic-stream-text.sse" },
    { "anthropic", "t/fixtures/anthropic/stream-text.sse", 0,
      "anthropic-stream-text-nousage.sse" },
    { "anthropic", "t/fixtures/anthropic/stream-tool-use.sse", 1,
      "anthropic-stream-tool-use.sse" },
    { "anthropic", "t/fixtures/anthropic/text.chunks.txt", 1,
      "anthropic-text-chunks.sse" },
    { "anthropic", "t/fixtures/anthropic/tool-use.chunks.txt", 1,
      "anthropic-tool-use-chunks.sse" },
    { "anthropic", "t/fixtures/anthropic/text-then-tool-use.chunks.txt", 1,
      "anthropic-text-then-tool-use-chunks.sse" },
    { "anthropic",
      "t/fixtures/anthropic/message-delta-input-tokens.chunks.txt", 1,
      "anthropic-message-delta-input-tokens-chunks.sse" },
    { "anthropic", UNIT_CASES "/stream/anthropic-error.in.sse", 1,
      "anthropic-error.sse" },
    { "anthropic", UNIT_CASES "/stream/anthropic-parallel.in.sse", 1,
      "anthropic-parallel.sse" },
    { "anthropic", UNIT_CASES "/stream/anthropic-no-stop.in.sse", 1,
      "anthropic-no-stop.sse" },
    { "anthropic", UNIT_CASES "/stream/anthropic-bad-json.in.sse", 1,
      "anthropic-bad-json.sse" },
    { "anthropic", UNIT_CASES "/stream/anthropic-stray-args.in.sse", 1,
      "anthropic-stray-args.sse" },
    { "anthropic", UNIT_CASES "/stream/anthropic-thinking.in.sse", 1,
      "anthropic-thinking.sse" },
    { "anthropic", UNIT_CASES "/stream/anthropic-error-after-stop.in.sse", 1,
      "anthropic-error-after-stop.sse" },
    { "anthropic", UNIT_CASES "/stream/anthropic-late.in.sse", 1,
      "anthropic-late.sse" },
    { "anthropic", UNIT_CASES "/stream/anthropic-bare-error.in.sse", 1,
      "anthropic-bare-error.sse" },
    { "gemini", "t/fixtures/google-gemini/stream-text.sse", 1,
      "gemini-stream-text.sse" },
    { "gemini", "t/fixtures/google-gemini/stream-text.sse", 0,
      "gemini-stream-text-nousage.sse" },
    { "gemini", "t/fixtures/google-gemini/stream-finish-message.sse", 1,
      "gemini-stream-finish-message.sse" },
    { "gemini", "t/fixtures/google-gemini/text.chunks.txt", 1,
      "gemini-text-chunks.sse" },
    { "gemini", "t/fixtures/google-gemini/function-call.chunks.txt", 1,
      "gemini-function-call-chunks.sse" },
    { "gemini", UNIT_CASES "/stream/gemini-parallel.in.sse", 1,
      "gemini-parallel.sse" },
    { "gemini", UNIT_CASES "/stream/gemini-candidates.in.sse", 1,
      "gemini-candidates.sse" },
    { "gemini", UNIT_CASES "/stream/gemini-error.in.sse", 1,
      "gemini-error.sse" },
    { "gemini", UNIT_CASES "/stream/gemini-no-finish.in.sse", 1,
      "gemini-no-finish.sse" },
    { "gemini", UNIT_CASES "/stream/gemini-blocked.in.sse", 1,
      "gemini-blocked.sse" },
    { "gemini", UNIT_CASES "/stream/gemini-error-after-finish.in.sse", 1,
      "gemini-error-after-finish.sse" },
    { "gemini", UNIT_CASES "/stream/gemini-error-bare.in.sse", 1,
      "gemini-error-bare.sse" },
    { "gemini", UNIT_CASES "/stream/gemini-late.in.sse", 1,
      "gemini-late.sse" },
    { "gemini", UNIT_CASES "/stream/gemini-bare-other.in.sse", 1,
      "gemini-bare-other.sse" },
    { NULL, NULL, 0, NULL }
};


static ngx_http_ai_gateway_translator_t *
unit_translator(const char *name)
{
    ngx_str_t  s;

    s.data = (u_char *) name;
    s.len = strlen(name);

    return ngx_http_ai_gateway_translator(&s);
}


/* a request as the module parses it, in a pool of its own, or NULL */

static yajl_val
unit_parse(u_char *in, size_t len, ngx_pool_t **pool)
{
    yajl_val  v;

    *pool = ngx_create_pool(4096, NULL);

    if (in == NULL
        || ngx_http_ai_gateway_json_parse(*pool, in, len, &v) != NGX_OK)
    {
        return NULL;
    }

    return v;
}


/*
 * The output of request() (embed_request() when "embed"): the body, or
 * "400 <message>"; then the flags set.
 */

static ngx_int_t
unit_request(ngx_http_ai_gateway_translator_t *t, yajl_val req,
    ngx_uint_t embed, u_char **res, size_t *len)
{
    ngx_int_t                      rc;
    ngx_str_t                      out, err;
    ngx_pool_t                    *pool;
    ngx_http_ai_gateway_compat_t   c;

    pool = ngx_create_pool(4096, NULL);
    unit_compat(&c, 0);
    c.stream = 0;

    ngx_str_null(&out);
    ngx_str_null(&err);

    if (embed) {
        c.stream = 1;
        c.include_usage = 1;

        rc = t->embed_request(pool, req, &c, &out, &err);

    } else {
        rc = t->request(pool, req, &c, &out, &err);
    }

    if (rc == NGX_OK) {
        *res = malloc(out.len + 64);
        *len = sprintf((char *) *res, "%.*s\n", (int) out.len, out.data);

        if (c.stream) {
            *len += sprintf((char *) *res + *len, "stream%s\n",
                            c.include_usage ? " include_usage" : "");
        }

        if (c.base64) {
            *len += sprintf((char *) *res + *len, "base64\n");
        }

    } else if (rc == NGX_DECLINED) {
        *res = malloc(err.len + 8);
        *len = sprintf((char *) *res, "400 %.*s\n", (int) err.len, err.data);

    } else {
        *res = NULL;
        *len = 0;
    }

    ngx_destroy_pool(pool);

    return rc;
}


/*
 * Every NAME.json of dir to NAME.<provider>, for the providers with
 * embeddings when "embed"
 */

static void
unit_request_dir(const char *dir, ngx_uint_t embed)
{
    int                                i, n;
    char                               path[512], what[512];
    u_char                            *in, *res;
    size_t                             len;
    yajl_val                           req;
    ngx_int_t                          rc;
    ngx_uint_t                         p;
    ngx_pool_t                        *jpool;
    struct dirent                    **list;
    ngx_http_ai_gateway_translator_t  *t;

    static const char  *providers[] = { "anthropic", "gemini", NULL };

    n = scandir(dir, &list, NULL, alphasort);
    unit_check(n > 0, "request cases in %s", dir);

    for (i = 0; i < n; i++) {
        len = strlen(list[i]->d_name);

        if (len < 6 || strcmp(list[i]->d_name + len - 5, ".json") != 0) {
            free(list[i]);
            continue;
        }

        snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);

        in = unit_read(path, &len);
        req = unit_parse(in, len, &jpool);
        unit_check(req != NULL, "%s is JSON", path);

        for (p = 0; providers[p]; p++) {
            t = unit_translator(providers[p]);

            if (embed && t->embed_request == NULL) {
                continue;
            }

            rc = unit_request(t, req, embed, &res, &len);
            unit_check(rc == NGX_OK || rc == NGX_DECLINED, "%s to %s: rc %ld",
                       path, providers[p], (long) rc);

            snprintf(what, sizeof(what), "%s %s to %s",
                     embed ? "embeddings request" : "request",
                     list[i]->d_name, providers[p]);
            snprintf(path, sizeof(path), "%s/%.*s.%s", dir,
                     (int) strlen(list[i]->d_name) - 5, list[i]->d_name,
                     providers[p]);

            unit_expect(what, res, len, path);
            free(res);
        }

        ngx_destroy_pool(jpool);
        free(in);
        free(list[i]);
    }

    free(list);
}


void
unit_requests(void)
{
    unit_request_dir(UNIT_CASES "/request", 0);
    unit_request_dir(UNIT_CASES "/embed-request", 1);
}


/* what: UNIT_RESPONSE, UNIT_ERROR, UNIT_EMBED (status: base64) */

static ngx_int_t
unit_response(unit_case_t *uc, ngx_uint_t what, u_char **res, size_t *len)
{
    u_char                            *in;
    size_t                             n;
    ngx_int_t                          rc;
    ngx_str_t                          out;
    ngx_pool_t                        *pool;
    ngx_http_ai_gateway_compat_t       c;
    ngx_http_ai_gateway_translator_t  *t;

    *res = NULL;
    *len = 0;

    in = unit_read(uc->path, &n);
    if (in == NULL) {
        return NGX_ABORT;
    }

    t = unit_translator(uc->provider);
    pool = ngx_create_pool(4096, NULL);
    unit_compat(&c, 0);
    c.stream = 0;

    if (what == UNIT_ERROR) {
        rc = t->error(pool, uc->status, in, n, &out);

    } else if (what == UNIT_EMBED) {
        c.base64 = uc->status;
        rc = t->embed_response(pool, in, n, &c, &out);

    } else {
        rc = t->response(pool, in, n, &c, &out);
    }

    if (rc == NGX_OK) {
        *res = malloc(out.len + 256);
        *len = sprintf((char *) *res, "%.*s\n", (int) out.len, out.data);

        if (what != UNIT_ERROR && c.usage) {
            *len += sprintf((char *) *res + *len,
                            "usage %lu %lu %lu %lu\n",
                            (unsigned long) c.prompt_tokens,
                            (unsigned long) c.completion_tokens,
                            (unsigned long) c.cached_tokens,
                            (unsigned long) c.reasoning_tokens);
        }
    }

    ngx_destroy_pool(pool);
    free(in);

    return rc;
}


static void
unit_response_cases_run(unit_case_t *cases, ngx_uint_t mode)
{
    char          path[512], what[512];
    u_char       *res;
    size_t        len;
    ngx_int_t     rc;
    unit_case_t  *uc;

    for (uc = cases; uc->provider; uc++) {
        rc = unit_response(uc, mode, &res, &len);

        snprintf(what, sizeof(what), "%s %s %s%s",
                 mode == UNIT_EMBED ? "embeddings" : "response", uc->provider,
                 uc->path, mode == UNIT_EMBED && uc->status ? " base64" : "");
        unit_check(rc == NGX_OK, "%s: rc %ld", what, (long) rc);

        if (rc != NGX_OK) {
            continue;
        }

        snprintf(path, sizeof(path), UNIT_CASES "/response/%s", uc->expected);
        unit_expect(what, res, len, path);
        free(res);
    }
}


void
unit_responses(void)
{
    unit_response_cases_run(unit_response_cases, UNIT_RESPONSE);
}


/*
 * A known vector as OpenAI's base64: the little-endian bytes of its
 * float32 values, decoded from the translated response.
 */

static void
unit_embed_base64(void)
{
    u_char       *res, bytes[64];
    size_t        len;
    yajl_val      v, e;
    ngx_int_t     rc;
    ngx_str_t     src, dst;
    unit_case_t   uc;

    static const char  *data_path[] = { "data", NULL };

    static const u_char  expected[] = {
        0x00, 0x00, 0x00, 0x3f,     /*  0.5 */
        0x00, 0x00, 0x80, 0xbf,     /* -1 */
        0x00, 0x00, 0x80, 0x3e,     /*  0.25 */
        0xcd, 0xcc, 0xcc, 0x3d,     /*  0.1, rounded to float */
        0xff, 0xff, 0x7f, 0x7f,     /*  3.4028235e38: FLT_MAX */
        0x00, 0x00, 0x00, 0x80      /* -1e-50: -0 */
    };

    uc.provider = "gemini";
    uc.path = UNIT_CASES "/response/gemini-embed-known.in.json";
    uc.status = 1;
    uc.expected = NULL;

    rc = unit_response(&uc, UNIT_EMBED, &res, &len);
    unit_check(rc == NGX_OK, "embeddings base64 known vector: rc %ld",
               (long) rc);

    if (rc != NGX_OK) {
        return;
    }

    v = yajl_tree_parse((char *) res, NULL, 0);
    e = yajl_tree_get(v, data_path, yajl_t_array);
    e = (e && e->u.array.len == 1)
        ? ngx_http_ai_gateway_json_get(e->u.array.values[0], "embedding")
        : NULL;

    dst.data = bytes;
    dst.len = 0;

    if (YAJL_IS_STRING(e) && strlen(e->u.string) <= 4 * sizeof(bytes) / 3) {
        src.data = (u_char *) e->u.string;
        src.len = strlen(e->u.string);

        rc = ngx_decode_base64(&dst, &src);
    }

    unit_check(rc == NGX_OK && dst.len == sizeof(expected)
               && memcmp(bytes, expected, sizeof(expected)) == 0,
               "embeddings base64 known vector: float32 little-endian bytes");

    yajl_tree_free(v);
    free(res);
}


void
unit_embeddings(void)
{
    char                               expected[512];
    const char                        *body, *data;
    ngx_int_t                          rc;
    ngx_str_t                          out;
    ngx_uint_t                         i;
    ngx_pool_t                        *pool;
    ngx_http_ai_gateway_compat_t       c;
    ngx_http_ai_gateway_translator_t  *t;

    unit_response_cases_run(unit_embed_cases, UNIT_EMBED);
    unit_embed_base64();

    t = unit_translator("gemini");

    for (i = 0; unit_embed_bodies[i].body; i++) {
        body = unit_embed_bodies[i].body;
        data = unit_embed_bodies[i].data;

        pool = ngx_create_pool(4096, NULL);
        unit_compat(&c, 0);
        c.base64 = unit_embed_bodies[i].base64;

        rc = t->embed_response(pool, (u_char *) body, strlen(body), &c, &out);

        if (data == NULL) {
            unit_check(rc == NGX_DECLINED, "embeddings %s%s: rc %ld", body,
                       c.base64 ? " base64" : "", (long) rc);

        } else {
            snprintf(expected, sizeof(expected),
                     "{\"object\":\"list\",\"data\":%s,\"model\":"
                     "\"test-model\",\"usage\":{\"prompt_tokens\":0,"
                     "\"total_tokens\":0}}", data);

            unit_check(rc == NGX_OK && out.len == strlen(expected)
                       && memcmp(out.data, expected, out.len) == 0
                       && !c.usage,
                       "embeddings %s%s: rc %ld, \"%.*s\"", body,
                       c.base64 ? " base64" : "", (long) rc,
                       rc == NGX_OK ? (int) out.len : 0,
                       rc == NGX_OK ? (char *) out.data : "");
        }

        ngx_destroy_pool(pool);
    }

    t = unit_translator("anthropic");

    unit_check(t->embed_request == NULL && t->embed_response == NULL,
               "anthropic has no embeddings");
}


void
unit_errors(void)
{
    char          path[512], what[512];
    u_char       *res;
    size_t        len;
    ngx_int_t     rc;
    unit_case_t  *uc;

    for (uc = unit_error_cases; uc->provider; uc++) {
        rc = unit_response(uc, UNIT_ERROR, &res, &len);

        snprintf(what, sizeof(what), "error %s %s %lu", uc->provider,
                 uc->path, (unsigned long) uc->status);
        unit_check(rc == NGX_OK, "%s: rc %ld", what, (long) rc);

        if (rc != NGX_OK) {
            continue;
        }

        snprintf(path, sizeof(path), UNIT_CASES "/error/%s", uc->expected);
        unit_expect(what, res, len, path);
        free(res);
    }
}


/* a stream cut short: what was sent, then an error event, no [DONE] */

static ngx_uint_t
unit_stream_cut_ok(u_char *out, size_t len, u_char *full, size_t full_len)
{
    u_char  *last;

    if (len == full_len && memcmp(out, full, len) == 0) {
        return 1;
    }

    if (len < 2 || out[len - 1] != '\n' || out[len - 2] != '\n') {
        return 0;
    }

    for (last = out + len - 2; last > out; last--) {
        if (last[-1] == '\n' && last[-2] == '\n') {
            break;
        }
    }

    if (len - (last - out) < 15
        || ngx_strncmp(last, "data: {\"error\":", 15) != 0)
    {
        return 0;
    }

    if (memmem(out, len, "data: [DONE]", 12) != NULL) {
        return 0;
    }

    return (size_t) (last - out) <= full_len
           && memcmp(out, full, last - out) == 0;
}


void
unit_streams(void)
{
    char                               path[512], what[512];
    u_char                            *body, *full, *out;
    size_t                             len, full_len, out_len, k;
    ngx_int_t                          rc;
    ngx_uint_t                         same, cut;
    unit_case_t                       *uc;
    ngx_http_ai_gateway_translator_t  *t;

    for (uc = unit_stream_cases; uc->provider; uc++) {
        t = unit_translator(uc->provider);

        body = unit_stream_body(uc->provider, uc->path, &len);

        snprintf(what, sizeof(what), "stream %s %s%s", uc->provider,
                 uc->path, uc->status ? "" : " (no usage)");
        unit_check(body != NULL, "%s: read", what);

        if (body == NULL) {
            continue;
        }

        rc = unit_stream_run(t, uc->status, body, len, len, 0, 1, &full,
                             &full_len);
        unit_check(rc == NGX_OK, "%s: rc %ld", what, (long) rc);

        snprintf(path, sizeof(path), UNIT_CASES "/stream/%s", uc->expected);
        unit_expect(what, full, full_len, path);

        /* split in two at every byte */

        same = 1;

        for (k = 1; k < len; k++) {
            rc = unit_stream_run(t, uc->status, body, len, 0, k, 1, &out,
                                 &out_len);

            if (rc != NGX_OK || out_len != full_len
                || memcmp(out, full, full_len) != 0)
            {
                same = 0;
                fprintf(stderr, "%s: split at %lu differs\n", what,
                        (unsigned long) k);
                free(out);
                break;
            }

            free(out);
        }

        unit_check(same, "%s: split at every byte", what);

        /* one byte at a time */

        rc = unit_stream_run(t, uc->status, body, len, 1, 0, 1, &out,
                             &out_len);
        unit_check(rc == NGX_OK && out_len == full_len
                   && memcmp(out, full, full_len) == 0,
                   "%s: one byte at a time", what);
        free(out);

        /* cut short at every byte */

        cut = 1;

        for (k = 0; k <= len; k++) {
            rc = unit_stream_run(t, uc->status, body, k, k ? k : 1, 0, 0,
                                 &out, &out_len);

            if (rc != NGX_OK || !unit_stream_cut_ok(out, out_len, full,
                                                    full_len))
            {
                cut = 0;
                fprintf(stderr, "%s: cut at %lu: \"%.*s\"\n", what,
                        (unsigned long) k, (int) out_len, out);
                free(out);
                break;
            }

            free(out);
        }

        unit_check(cut, "%s: cut short at every byte", what);

        free(full);
        free(body);
    }
}


/*
 * A stream's memory does not grow with its length: as many pool
 * allocations for 20 events as for 20000.
 */

static ngx_uint_t
unit_stream_allocs(const char *provider, ngx_uint_t n)
{
    u_char                            *body, *p, *out;
    size_t                             size, out_len;
    ngx_int_t                          rc;
    ngx_uint_t                         i, allocs;
    ngx_http_ai_gateway_translator_t  *t;

    size = 512 * (n + 10);
    body = malloc(size);
    p = body;

    if (strcmp(provider, "anthropic") == 0) {
        p += sprintf((char *) p, "event: message_start\ndata: "
                     "{\"type\":\"message_start\",\"message\":{\"id\":\"m\","
                     "\"model\":\"c\",\"usage\":{\"input_tokens\":1}}}\n\n"
                     "event: content_block_start\ndata: {\"type\":"
                     "\"content_block_start\",\"index\":0,\"content_block\":"
                     "{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\","
                     "\"input\":{}}}\n\n");

        for (i = 0; i < n; i++) {
            p += sprintf((char *) p, "event: content_block_delta\ndata: "
                         "{\"type\":\"content_block_delta\",\"index\":0,"
                         "\"delta\":{\"type\":\"input_json_delta\","
                         "\"partial_json\":\"%lu,\"}}\n\n"
                         "event: ping\ndata: {\"type\":\"ping\"}\n\n",
                         (unsigned long) i);
        }

        p += sprintf((char *) p, "event: message_delta\ndata: {\"type\":"
                     "\"message_delta\",\"delta\":{\"stop_reason\":"
                     "\"tool_use\"},\"usage\":{\"output_tokens\":%lu}}\n\n"
                     "event: message_stop\ndata: {\"type\":"
                     "\"message_stop\"}\n\n", (unsigned long) n);

    } else {
        for (i = 0; i < n; i++) {
            p += sprintf((char *) p, "data: {\"candidates\":[{\"content\":"
                         "{\"parts\":[{\"text\":\"%lu \"},{\"functionCall\":"
                         "{\"name\":\"f\",\"args\":{\"i\":%lu}}}]}}],"
                         "\"usageMetadata\":{\"promptTokenCount\":1,"
                         "\"candidatesTokenCount\":%lu},\"modelVersion\":"
                         "\"g\"}\r\n\r\n", (unsigned long) i,
                         (unsigned long) i, (unsigned long) i);
        }

        p += sprintf((char *) p, "data: {\"candidates\":[{\"content\":"
                     "{\"parts\":[{\"text\":\"\"}]},\"finishReason\":"
                     "\"STOP\"}]}\r\n\r\n");
    }

    t = unit_translator(provider);

    allocs = ngx_shim_allocs;

    rc = unit_stream_run(t, 1, body, p - body, 100, 0, 1, &out, &out_len);

    allocs = ngx_shim_allocs - allocs;

    unit_check(rc == NGX_OK && out_len > 14
               && memcmp(out + out_len - 14, "data: [DONE]\n\n", 14) == 0,
               "long %s stream of %lu events", provider, (unsigned long) n);

    free(out);
    free(body);

    return allocs;
}


void
unit_memory(void)
{
    ngx_uint_t   small, large;
    const char  *providers[] = { "anthropic", "gemini", NULL }, **p;

    for (p = providers; *p; p++) {
        small = unit_stream_allocs(*p, 20);
        large = unit_stream_allocs(*p, 20000);

        unit_check(small == large,
                   "%s stream memory: %lu allocations for 20 events, %lu "
                   "for 20000", *p, (unsigned long) small,
                   (unsigned long) large);
    }
}


void
unit_lookup(void)
{
    ngx_str_t  name;

    unit_check(unit_translator("anthropic") != NULL
               && unit_translator("gemini") != NULL
               && unit_translator("openai") == NULL
               && unit_translator("anthropicx") == NULL
               && unit_translator("") == NULL,
               "translator lookup");

    ngx_str_set(&name, "gemini");
    unit_check(ngx_http_ai_gateway_translator(&name)
               == &ngx_http_ai_gateway_translators[1], "translator table");
}


/* every allocation failing in turn: NGX_ERROR, no crash, no leak */

void
unit_nomem(void)
{
    u_char                            *in, *res, *body, *out, *good;
    size_t                             len, good_len, out_len;
    yajl_val                           req;
    ngx_int_t                          rc, n;
    ngx_uint_t                         ok, k;
    ngx_pool_t                        *jpool;
    unit_case_t                       *uc;
    ngx_http_ai_gateway_translator_t  *t;

    static struct {
        const char                    *path;
        ngx_uint_t                     embed;
    } requests[] = {
        { UNIT_CASES "/request/tools-parallel.json", 0 },
        { UNIT_CASES "/request/everything.json", 0 },
        { UNIT_CASES "/embed-request/dimensions.json", 1 },
        { UNIT_CASES "/embed-request/base64.json", 1 },
        { NULL, 0 }
    };

    static struct {
        unit_case_t                   *cases;
        ngx_uint_t                     what;
    } responses[] = {
        { unit_response_cases, UNIT_RESPONSE },
        { unit_embed_cases, UNIT_EMBED },
        { NULL, 0 }
    };

    static const char  *providers[] = { "anthropic", "gemini", NULL };

    const char  **p;

    for (k = 0; requests[k].path; k++) {
        in = unit_read(requests[k].path, &len);
        req = unit_parse(in, len, &jpool);
        unit_check(req != NULL, "nomem: %s", requests[k].path);

        if (req == NULL) {
            ngx_destroy_pool(jpool);
            free(in);
            continue;
        }

        for (p = providers; *p; p++) {
            t = unit_translator(*p);

            if (requests[k].embed && t->embed_request == NULL) {
                continue;
            }

            rc = unit_request(t, req, requests[k].embed, &good, &good_len);
            ok = 1;

            for (n = 0; ; n++) {
                ngx_shim_fail_after = n;
                rc = unit_request(t, req, requests[k].embed, &res, &len);
                ngx_shim_fail_after = -1;

                if (rc == NGX_ERROR) {
                    continue;
                }

                ok = (len == good_len && memcmp(res, good, len) == 0);
                free(res);
                break;
            }

            unit_check(ok, "nomem: request %s to %s (%ld failures)",
                       requests[k].path, *p, (long) n);
            free(good);
        }

        ngx_destroy_pool(jpool);
        free(in);
    }

    for (k = 0; responses[k].cases; k++) {
        for (uc = responses[k].cases; uc->provider; uc++) {
            rc = unit_response(uc, responses[k].what, &good, &good_len);
            ok = (rc == NGX_OK);

            for (n = 0; ok; n++) {
                ngx_shim_fail_after = n;
                rc = unit_response(uc, responses[k].what, &res, &len);
                ngx_shim_fail_after = -1;

                if (rc == NGX_ERROR) {
                    continue;
                }

                ok = (rc == NGX_OK && len == good_len
                      && memcmp(res, good, len) == 0);
                free(res);
                break;
            }

            unit_check(ok, "nomem: %s %s (%lu)",
                       responses[k].what == UNIT_EMBED
                       ? "embeddings" : "response",
                       uc->path, (unsigned long) uc->status);

            if (good_len) {
                free(good);
            }
        }
    }

    for (uc = unit_stream_cases; uc->provider; uc++) {
        t = unit_translator(uc->provider);
        body = unit_stream_body(uc->provider, uc->path, &len);

        if (body == NULL) {
            continue;
        }

        rc = unit_stream_run(t, uc->status, body, len, 7, 0, 1, &good,
                             &good_len);
        ok = (rc == NGX_OK);

        for (n = 0; ok; n++) {
            ngx_shim_fail_after = n;
            rc = unit_stream_run(t, uc->status, body, len, 7, 0, 1, &out,
                                 &out_len);
            ngx_shim_fail_after = -1;

            if (rc == NGX_ERROR) {
                free(out);
                continue;
            }

            ok = (out_len == good_len && memcmp(out, good, out_len) == 0);
            free(out);
            break;
        }

        unit_check(ok, "nomem: stream %s", uc->path);

        free(good);
        free(body);
    }
}
