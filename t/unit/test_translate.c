
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/*
 * The translators against expected outputs: requests (t/unit/cases/
 * request/NAME.json to NAME.anthropic and NAME.gemini), responses, errors
 * and streams of the recorded fixtures (t/fixtures) and of the cases in
 * t/unit/cases.  Streams are also fed split at every byte, one byte at a
 * time and cut short at every byte.
 */


#include "unit.h"

#include <dirent.h>


#define UNIT_CASES  "t/unit/cases"


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


/* the output of request(): the body, or "400 <message>" */

static ngx_int_t
unit_request(ngx_http_ai_gateway_translator_t *t, yajl_val req,
    u_char **res, size_t *len)
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

    rc = t->request(pool, req, &c, &out, &err);

    if (rc == NGX_OK) {
        *res = malloc(out.len + 64);
        *len = sprintf((char *) *res, "%.*s\n", (int) out.len, out.data);

        if (c.stream) {
            *len += sprintf((char *) *res + *len, "stream%s\n",
                            c.include_usage ? " include_usage" : "");
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


void
unit_requests(void)
{
    int                                i, n;
    char                               path[512], what[512];
    u_char                            *in, *res;
    size_t                             len;
    yajl_val                           req;
    ngx_int_t                          rc;
    ngx_uint_t                         p;
    struct dirent                    **list;
    ngx_http_ai_gateway_translator_t  *t;

    static const char  *providers[] = { "anthropic", "gemini", NULL };

    n = scandir(UNIT_CASES "/request", &list, NULL, alphasort);
    unit_check(n > 0, "request cases in " UNIT_CASES "/request");

    for (i = 0; i < n; i++) {
        len = strlen(list[i]->d_name);

        if (len < 6 || strcmp(list[i]->d_name + len - 5, ".json") != 0) {
            free(list[i]);
            continue;
        }

        snprintf(path, sizeof(path), UNIT_CASES "/request/%s",
                 list[i]->d_name);

        in = unit_read(path, &len);
        req = yajl_tree_parse((char *) in, NULL, 0);
        unit_check(req != NULL, "%s is JSON", path);

        for (p = 0; providers[p]; p++) {
            t = unit_translator(providers[p]);

            rc = unit_request(t, req, &res, &len);
            unit_check(rc == NGX_OK || rc == NGX_DECLINED, "%s to %s: rc %ld",
                       path, providers[p], (long) rc);

            snprintf(what, sizeof(what), "request %s to %s", list[i]->d_name,
                     providers[p]);
            snprintf(path, sizeof(path), UNIT_CASES "/request/%.*s.%s",
                     (int) strlen(list[i]->d_name) - 5, list[i]->d_name,
                     providers[p]);

            unit_expect(what, res, len, path);
            free(res);
        }

        yajl_tree_free(req);
        free(in);
        free(list[i]);
    }

    free(list);
}


static ngx_int_t
unit_response(unit_case_t *uc, ngx_uint_t error, u_char **res, size_t *len)
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

    if (error) {
        rc = t->error(pool, uc->status, in, n, &out);

    } else {
        rc = t->response(pool, in, n, &c, &out);
    }

    if (rc == NGX_OK) {
        *res = malloc(out.len + 256);
        *len = sprintf((char *) *res, "%.*s\n", (int) out.len, out.data);

        if (!error && c.usage) {
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


void
unit_responses(void)
{
    char          path[512], what[512];
    u_char       *res;
    size_t        len;
    ngx_int_t     rc;
    unit_case_t  *uc;

    for (uc = unit_response_cases; uc->provider; uc++) {
        rc = unit_response(uc, 0, &res, &len);

        snprintf(what, sizeof(what), "response %s %s", uc->provider,
                 uc->path);
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
unit_errors(void)
{
    char          path[512], what[512];
    u_char       *res;
    size_t        len;
    ngx_int_t     rc;
    unit_case_t  *uc;

    for (uc = unit_error_cases; uc->provider; uc++) {
        rc = unit_response(uc, 1, &res, &len);

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
    ngx_uint_t                         ok;
    unit_case_t                       *uc;
    ngx_http_ai_gateway_translator_t  *t;

    static const char  *requests[] = {
        UNIT_CASES "/request/tools-parallel.json",
        UNIT_CASES "/request/everything.json",
        NULL
    };

    static const char  *providers[] = { "anthropic", "gemini", NULL };

    const char  **rq, **p;

    for (rq = requests; *rq; rq++) {
        in = unit_read(*rq, &len);
        req = in ? yajl_tree_parse((char *) in, NULL, 0) : NULL;
        unit_check(req != NULL, "nomem: %s", *rq);

        if (req == NULL) {
            free(in);
            continue;
        }

        for (p = providers; *p; p++) {
            t = unit_translator(*p);

            rc = unit_request(t, req, &good, &good_len);
            ok = 1;

            for (n = 0; ; n++) {
                ngx_shim_fail_after = n;
                rc = unit_request(t, req, &res, &len);
                ngx_shim_fail_after = -1;

                if (rc == NGX_ERROR) {
                    continue;
                }

                ok = (len == good_len && memcmp(res, good, len) == 0);
                free(res);
                break;
            }

            unit_check(ok, "nomem: request %s to %s (%ld failures)", *rq, *p,
                       (long) n);
            free(good);
        }

        yajl_tree_free(req);
        free(in);
    }

    for (uc = unit_response_cases; uc->provider; uc++) {
        rc = unit_response(uc, 0, &good, &good_len);
        ok = (rc == NGX_OK);

        for (n = 0; ok; n++) {
            ngx_shim_fail_after = n;
            rc = unit_response(uc, 0, &res, &len);
            ngx_shim_fail_after = -1;

            if (rc == NGX_ERROR) {
                continue;
            }

            ok = (rc == NGX_OK && len == good_len
                  && memcmp(res, good, len) == 0);
            free(res);
            break;
        }

        unit_check(ok, "nomem: response %s", uc->path);

        if (good_len) {
            free(good);
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
