
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/*
 * The meter, the price table, cf-aig-metadata: the counts of every
 * recorded answer are the same whatever the split of its bytes; cut
 * answers give lower bounds; the usage chunk the gateway asked for is
 * found; the request side adds include_usage and nothing else; prices
 * match dated model names and nothing else.
 */


#include <math.h>

#include "unit.h"
#include "ngx_http_ai_gateway_usage.h"


#define J  NGX_HTTP_AI_GATEWAY_METER_JSON
#define S  NGX_HTTP_AI_GATEWAY_METER_SSE
#define E  NGX_HTTP_AI_GATEWAY_METER_EVENTSTREAM


/* s (a C string) is in [p, last) */

static ngx_uint_t
unit_has(u_char *p, u_char *last, const char *s)
{
    size_t  n;

    n = strlen(s);

    for ( /* void */ ; p + n <= last; p++) {
        if (ngx_memcmp(p, s, n) == 0) {
            return 1;
        }
    }

    return 0;
}


typedef struct {
    const char  *path;
    const char  *recipe;        /* .chunks.txt: openai, anthropic, cohere,
                                   responses, gemini, array */
    ngx_uint_t   framing;
    uint64_t     input;
    uint64_t     cached;
    uint64_t     cache_write;
    uint64_t     output;
    uint64_t     reasoning;
    ngx_uint_t   known;
    const char  *model;
} unit_meter_case_t;


static unit_meter_case_t  unit_meter_cases[] = {

    /* OpenAI and the OpenAI-compatible providers */

    { "openai-chat/text.json", NULL, J, 16, 0, 0, 363, 0, 1,
      "gpt-4.1-nano-2025-04-14" },
    { "openai-chat/text.gpt-4o.json", NULL, J, 14, 0, 0, 37, 0, 1,
      "gpt-4o-2024-08-06" },
    { "openai-chat/tool-call.json", NULL, J, 76, 0, 0, 24, 0, 1,
      "gpt-4o-2024-08-06" },
    { "openai-chat/stream-text-usage.sse", NULL, S, 14, 0, 0, 30, 0, 1,
      "gpt-4o-2024-08-06" },
    { "openai-chat/stream-tool-call-usage.sse", NULL, S, 44, 0, 0, 16, 0, 1,
      "gpt-4o-2024-08-06" },
    { "openai-chat/stream-finish-length-usage.sse", NULL, S, 79, 0, 0, 1, 0,
      1, "gpt-4o-2024-08-06" },
    { "openai-chat/stream-azure-content-filter-usage.chunks.txt", "openai",
      S, 15, 0, 0, 78, 64, 1, "gpt-5-nano-2025-08-07" },
    { "openai-embeddings/embedding.json", NULL, J, 12, 0, 0, 0, 0, 1,
      "text-embedding-3-small" },
    { "openai-compatible/deepseek-tool-call.json", NULL, J, 19, 320, 0, 92,
      48, 1, "deepseek-reasoner" },
    { "openai-compatible/groq-tool-call.json", NULL, J, 218, 0, 0, 15, 0, 1,
      "llama-3.3-70b-versatile" },
    { "openai-compatible/groq-tool-call.chunks.txt", "openai", S, 210, 0, 0,
      15, 0, 1, "llama-3.3-70b-versatile" },
    { "openai-compatible/xai-tool-call.json", NULL, J, 47, 244, 0, 215, 189,
      1, "grok-3-mini" },
    { "mistral/text.json", NULL, J, 13, 0, 0, 434, 0, 1,
      "mistral-small-latest" },
    { "mistral/text.chunks.txt", "openai", S, 13, 0, 0, 8, 0, 1,
      "mistral-small-latest" },
    { "mistral/tool-call.chunks.txt", "openai", S, 124, 0, 0, 22, 0, 1,
      "mistral-small-latest" },
    { "mistral/embedding.json", NULL, J, 16, 0, 0, 0, 0, 1,
      "mistral-embed" },
    { "workers-ai/text.json", NULL, J, 18, 0, 0, 10, 0, 1, "" },
    { "workers-ai/stream-text.sse", NULL, S, 18, 0, 0, 7, 0, 1, "" },

    /* the Responses API */

    { "openai-responses/text.json", NULL, J, 24, 12, 0, 87, 64, 1,
      "gpt-5-mini-2025-08-07" },
    { "openai-responses/stream-text.chunks.txt", "responses", S, 24, 12, 0,
      87, 64, 1, "gpt-5-mini-2025-08-07" },
    { "openai-responses/stream-error.chunks.txt", "responses", S, 0, 0, 0,
      0, 0, 0, "gpt-5-nano-2025-08-07" },

    /* Anthropic */

    { "anthropic/text.json", NULL, J, 12, 0, 0, 29, 0, 1,
      "claude-sonnet-4-5-20250929" },
    { "anthropic/tool-use.json", NULL, J, 1151, 0, 0, 87, 0, 1,
      "claude-haiku-4-5-20251001" },
    { "anthropic/thinking-tool-use.json", NULL, J, 120, 0, 0, 80, 0, 1,
      "claude-sonnet-4-5-20250929" },
    { "anthropic/cache-usage.json", NULL, J, 24, 2048, 512, 150, 0, 1,
      "claude-3-5-sonnet-20241022" },
    { "anthropic/stream-text.sse", NULL, S, 11, 0, 0, 6, 0, 1,
      "claude-opus-4-8" },
    { "anthropic/stream-tool-use.sse", NULL, S, 377, 0, 0, 65, 0, 1,
      "claude-opus-4-8" },
    { "anthropic/text.chunks.txt", "anthropic", S, 12, 0, 0, 30, 0, 1,
      "claude-sonnet-4-5-20250929" },
    { "anthropic/tool-use.chunks.txt", "anthropic", S, 843, 0, 0, 28, 0, 1,
      "claude-haiku-4-5-20251001" },
    { "anthropic/message-delta-input-tokens.chunks.txt", "anthropic", S, 61,
      0, 0, 2, 0, 1, "claude-opus-4-5-20251101" },
    { "anthropic/cache-usage.chunks.txt", "anthropic", S, 24, 2048, 512,
      150, 0, 1, "claude-3-5-sonnet-20241022" },

    /* Gemini */

    { "google-gemini/text.json", NULL, J, 9, 0, 0, 272, 244, 1,
      "gemini-3-pro-preview" },
    { "google-gemini/function-call.json", NULL, J, 29, 0, 0, 908, 893, 1,
      "gemini-3-pro-preview" },
    { "google-gemini/stream-text.sse", NULL, S, 7, 0, 0, 10, 0, 1,
      "gemini-2.0-flash" },
    { "google-gemini/text.chunks.txt", "gemini", S, 9, 0, 0, 208, 185, 1,
      "gemini-3-pro-preview" },
    { "google-gemini/text.chunks.txt", "array", J, 9, 0, 0, 208, 185, 1,
      "gemini-3-pro-preview" },
    { "google-gemini/function-call.chunks.txt", "gemini", S, 29, 0, 0, 60,
      45, 1, "gemini-3-pro-preview" },

    /* Bedrock */

    { "bedrock/converse-text.json", NULL, J, 22, 0, 0, 57, 0, 1, "" },
    { "bedrock/converse-tool-use.json", NULL, J, 407, 0, 0, 33, 0, 1, "" },
    { "bedrock/converse-max-tokens.json", NULL, J, 2, 0, 0, 10, 0, 1, "" },
    { "bedrock/converse-stream-live.eventstream.bin", NULL, E, 12, 0, 0, 5,
      0, 1, "" },
    { "bedrock/invoke-stream-anthropic.eventstream.bin", NULL, E, 25, 0, 0,
      9, 0, 1, "claude-3-5-haiku-20241022" },

    /* Cohere */

    { "cohere/text.json", NULL, J, 12, 0, 0, 7, 0, 1, "" },
    { "cohere/tool-call.json", NULL, J, 119, 0, 0, 52, 0, 1, "" },
    { "cohere/embedding.json", NULL, J, 10, 0, 0, 0, 0, 1, "" },
    { "cohere/text.chunks.txt", "cohere", S, 12, 0, 0, 7, 0, 1, "" },
    { "cohere/tool-call.chunks.txt", "cohere", S, 119, 0, 0, 44, 0, 1, "" },

    /* no usage: an error body, a stream of another kind */

    { "openai-chat/error-400-unsupported-parameter.json", NULL, J, 0, 0, 0,
      0, 0, 0, "" },
    { "anthropic/error-400-invalid-request.json", NULL, J, 0, 0, 0, 0, 0, 0,
      "" },

    { NULL, NULL, 0, 0, 0, 0, 0, 0, 0, NULL }
};


/* a fixture's body; .chunks.txt made into the framing of its recipe */

static u_char *
unit_meter_body(const char *path, const char *recipe, size_t *len)
{
    char      file[256], *type;
    u_char    *in, *out, *p, *line, *nl, *last;
    size_t     n;
    yajl_val   v, t;

    snprintf(file, sizeof(file), "t/fixtures/%s", path);

    in = unit_read(file, &n);
    if (in == NULL || recipe == NULL) {
        *len = n;
        return in;
    }

    out = malloc(n * 2 + 4096);
    p = out;
    last = in + n;

    if (strcmp(recipe, "array") == 0) {
        *p++ = '[';
    }

    for (line = in; line < last; line = nl + 1) {
        nl = (u_char *) memchr(line, '\n', last - line);
        if (nl == NULL) {
            nl = last;
        }

        if (nl == line) {
            continue;
        }

        *nl = '\0';

        if (strcmp(recipe, "openai") == 0) {
            p += sprintf((char *) p, "data: %s\n\n", (char *) line);

        } else if (strcmp(recipe, "gemini") == 0) {
            p += sprintf((char *) p, "data: %s\r\n\r\n", (char *) line);

        } else if (strcmp(recipe, "array") == 0) {
            p += sprintf((char *) p, "%s%s\r\n", p - out > 1 ? "," : "",
                         (char *) line);

        } else {
            v = yajl_tree_parse((char *) line, NULL, 0);
            t = ngx_http_ai_gateway_json_get(v, "type");
            type = YAJL_IS_STRING(t) ? t->u.string : "unknown";
            p += sprintf((char *) p, "event: %s\ndata: %s\n\n", type,
                         (char *) line);
            yajl_tree_free(v);
        }
    }

    if (strcmp(recipe, "openai") == 0) {
        p += sprintf((char *) p, "data: [DONE]\n\n");

    } else if (strcmp(recipe, "array") == 0) {
        *p++ = ']';
    }

    free(in);

    *len = p - out;

    return out;
}


/*
 * The body fed in pieces of step bytes (0: whole), complete or not; the
 * bytes of the events not dropped are appended to kept (when not NULL).
 */

static void
unit_meter_run(ngx_uint_t framing, ngx_uint_t strip, u_char *body,
    size_t len, size_t step, ngx_uint_t complete,
    ngx_http_ai_gateway_tokens_t *t, u_char *model, u_char *kept,
    size_t *kept_len)
{
    u_char                       *pos, *last, *start;
    size_t                        off, n;
    ngx_int_t                     rc;
    ngx_str_t                     m;
    ngx_uint_t                    drop;
    ngx_pool_t                   *pool;
    ngx_http_ai_gateway_meter_t  *meter;

    pool = ngx_create_pool(4096, NULL);

    meter = ngx_http_ai_gateway_meter_create(pool, framing, strip);
    unit_check(meter != NULL, "meter created");

    if (kept_len) {
        *kept_len = 0;
    }

    /* the bytes of an event that has not ended yet, as the relay holds */

    start = body;

    for (off = 0; off < len; off += n) {
        n = step ? ngx_min(step, len - off) : len - off;

        pos = body + off;
        last = pos + n;

        for ( ;; ) {
            rc = ngx_http_ai_gateway_meter_feed(meter, &pos, last, &drop);

            unit_check(rc == NGX_OK || rc == NGX_AGAIN, "meter fed");

            if (rc != NGX_OK) {
                break;
            }

            if (kept && !drop) {
                ngx_memcpy(kept + *kept_len, start, pos - start);
                *kept_len += pos - start;
            }

            start = pos;
        }
    }

    if (kept) {
        ngx_memcpy(kept + *kept_len, start, body + len - start);
        *kept_len += body + len - start;
    }

    ngx_http_ai_gateway_meter_finish(meter, complete, t);

    ngx_http_ai_gateway_meter_model(meter, &m);
    ngx_memcpy(model, m.data, m.len);
    model[m.len] = '\0';

    ngx_destroy_pool(pool);
}


static void
unit_meter_fixtures(void)
{
    u_char                        *body, model[256];
    size_t                         len, step;
    unit_meter_case_t             *c;
    ngx_http_ai_gateway_tokens_t   t;

    static size_t  steps[] = { 0, 1, 2, 3, 7, 13, 64, 509, 4096 };

    for (c = unit_meter_cases; c->path; c++) {

        body = unit_meter_body(c->path, c->recipe, &len);
        unit_check(body != NULL, "%s: read", c->path);

        if (body == NULL) {
            continue;
        }

        for (step = 0; step < sizeof(steps) / sizeof(steps[0]); step++) {
            unit_meter_run(c->framing, 0, body, len, steps[step], 1, &t,
                           model, NULL, NULL);

            unit_check(t.known == c->known && t.input == c->input
                       && t.cached == c->cached
                       && t.cache_write == c->cache_write
                       && t.output == c->output
                       && t.reasoning == c->reasoning && !t.partial,
                       "%s (%s, step %lu): counts %lu %lu %lu %lu %lu "
                       "known %u, expected %lu %lu %lu %lu %lu", c->path,
                       c->recipe ? c->recipe : "as is",
                       (unsigned long) steps[step],
                       (unsigned long) t.input, (unsigned long) t.cached,
                       (unsigned long) t.cache_write,
                       (unsigned long) t.output,
                       (unsigned long) t.reasoning, t.known,
                       (unsigned long) c->input, (unsigned long) c->cached,
                       (unsigned long) c->cache_write,
                       (unsigned long) c->output,
                       (unsigned long) c->reasoning);

            unit_check(strcmp((char *) model, c->model) == 0,
                       "%s: model \"%s\", expected \"%s\"", c->path,
                       model, c->model);
        }

        free(body);
    }
}


/* answers cut short: what was seen, and output at least the events seen */

static void
unit_meter_cut(void)
{
    u_char                        *body, *p, model[256];
    size_t                         len, at;
    ngx_http_ai_gateway_tokens_t   t;

    /* Anthropic: message_start and two text deltas */

    body = unit_meter_body("anthropic/cache-usage.chunks.txt", "anthropic",
                           &len);
    p = (u_char *) strstr((char *) body, " termination clause");
    p = (u_char *) strstr((char *) p, "\n\n");
    at = p + 2 - body;

    unit_meter_run(S, 0, body, at, 5, 0, &t, model, NULL, NULL);

    unit_check(t.known && t.partial && t.input == 24 && t.cached == 2048
               && t.cache_write == 512 && t.output == 2,
               "a cut Anthropic stream: %lu %lu %lu %lu",
               (unsigned long) t.input, (unsigned long) t.cached,
               (unsigned long) t.cache_write, (unsigned long) t.output);

    /* cut inside message_delta's event: its count is not seen */

    p = (u_char *) strstr((char *) body, "\"output_tokens\":150");
    at = p - body;

    unit_meter_run(S, 0, body, at, 0, 0, &t, model, NULL, NULL);

    unit_check(t.partial && t.input == 24 && t.output == 3,
               "a stream cut in its last event: %lu %lu",
               (unsigned long) t.input, (unsigned long) t.output);

    /* the same bytes, complete: the reported placeholder */

    unit_meter_run(S, 0, body, at, 0, 1, &t, model, NULL, NULL);
    unit_check(!t.partial && t.output == 1, "complete: the report only");

    free(body);

    /* OpenAI: no counts before the end; the content chunks seen */

    body = unit_meter_body("openai-chat/stream-text-usage.sse", NULL, &len);
    p = (u_char *) strstr((char *) body, "\" provide\"");
    p = (u_char *) strstr((char *) p, "\n\n");
    at = p + 2 - body;

    unit_meter_run(S, 0, body, at, 1, 0, &t, model, NULL, NULL);

    unit_check(t.known && t.partial && t.input == 0 && t.output == 4,
               "a cut OpenAI stream: %lu %lu", (unsigned long) t.input,
               (unsigned long) t.output);

    /* cut before anything */

    unit_meter_run(S, 0, body, 10, 1, 0, &t, model, NULL, NULL);
    unit_check(t.known && t.partial && t.input == 0 && t.output == 0,
               "a stream cut at once: zeros, partial");

    free(body);

    /* Gemini's running totals */

    body = unit_meter_body("google-gemini/stream-text.sse", NULL, &len);
    p = (u_char *) strstr((char *) body, "capital of Wyoming");
    p = (u_char *) strstr((char *) p, "\r\n\r\n");
    at = p + 4 - body;

    unit_meter_run(S, 0, body, at, 3, 0, &t, model, NULL, NULL);
    unit_check(t.partial && t.input == 7 && t.output == 2,
               "a cut Gemini stream: %lu %lu", (unsigned long) t.input,
               (unsigned long) t.output);

    free(body);

    /* a whole JSON answer cut: no counts */

    body = unit_meter_body("openai-chat/text.json", NULL, &len);
    unit_meter_run(J, 0, body, len / 2, 0, 0, &t, model, NULL, NULL);
    unit_check(t.known && t.partial && t.output == 0, "a cut JSON answer");
    free(body);

    /* Bedrock frames cut in the metadata frame */

    body = unit_meter_body("bedrock/converse-stream-live.eventstream.bin",
                           NULL, &len);
    unit_meter_run(E, 0, body, len - 10, 7, 0, &t, model, NULL, NULL);
    unit_check(t.partial && t.input == 0 && t.output == 2,
               "a cut ConverseStream: %lu %lu", (unsigned long) t.input,
               (unsigned long) t.output);
    free(body);
}


/* the usage chunk the gateway asked for, and only it, is found */

static void
unit_meter_strip(void)
{
    u_char                        *body, *kept, *p, model[256];
    size_t                         len, kept_len, step, ulen;
    ngx_http_ai_gateway_tokens_t   t;

    static size_t  steps[] = { 0, 1, 5, 100 };

    body = unit_meter_body("openai-chat/stream-text-usage.sse", NULL, &len);
    kept = malloc(len);

    p = (u_char *) strstr((char *) body, "data: {\"id\":\"chatcmpl-ABfw031mOJe"
                          "YCSHe4yI2ZjOA6kMJL\",\"object\":\"chat.completion"
                          ".chunk\",\"created\":1727346168,\"model\":\"gpt-4o"
                          "-2024-08-06\",\"system_fingerprint\":\"fp_505023"
                          "6cbd\",\"choices\":[],");
    unit_check(p != NULL, "the usage chunk is in the fixture");
    ulen = (u_char *) strstr((char *) p, "\n\n") + 2 - p;

    for (step = 0; step < sizeof(steps) / sizeof(steps[0]); step++) {
        unit_meter_run(S, 1, body, len, steps[step], 1, &t, model, kept,
                       &kept_len);

        unit_check(kept_len == len - ulen
                   && ngx_memcmp(kept, body, p - body) == 0
                   && ngx_memcmp(kept + (p - body), p + ulen,
                                 len - (p - body) - ulen) == 0,
                   "strip, step %lu: the usage chunk alone is left out",
                   (unsigned long) steps[step]);

        unit_check(t.input == 14 && t.output == 30, "strip: still counted");

        unit_meter_run(S, 0, body, len, steps[step], 1, &t, model, kept,
                       &kept_len);
        unit_check(kept_len == len && ngx_memcmp(kept, body, len) == 0,
                   "no strip: every byte kept");
    }

    free(kept);
    free(body);

    /* Azure: an empty "choices" with "usage":null is kept; Mistral's
     * usage comes with a choice, kept */

    body = unit_meter_body("openai-chat/stream-azure-content-filter-usage"
                           ".chunks.txt", "openai", &len);
    kept = malloc(len);

    unit_meter_run(S, 1, body, len, 3, 1, &t, model, kept, &kept_len);

    p = (u_char *) strstr((char *) body, "\"choices\":[],\"created\":"
                          "1762317021,\"id\":\"chatcmpl-CYPS1lijGoK8gd9lYzY3r9"
                          "Sx50nbt\",\"model\":\"gpt-5-nano-2025-08-07\"");
    unit_check(p != NULL, "azure's usage chunk");

    unit_check(kept_len < len
               && unit_has(body, body + len, "prompt_filter_results")
               && unit_has(kept, kept + kept_len, "prompt_filter_results")
               && !unit_has(kept, kept + kept_len, "\"reasoning_tokens\":64")
               && unit_has(body, body + len, "\"reasoning_tokens\":64"),
               "azure: the usage chunk is left out, the filter chunk kept");

    free(kept);
    free(body);

    body = unit_meter_body("mistral/text.chunks.txt", "openai", &len);
    kept = malloc(len);
    unit_meter_run(S, 1, body, len, 0, 1, &t, model, kept, &kept_len);
    unit_check(kept_len == len && t.output == 8,
               "mistral: usage with a choice is kept");
    free(kept);
    free(body);
}


/* SSE framing: CR, CRLF, several data lines, comments, no blank line */

static void
unit_meter_sse(void)
{
    u_char                        model[256];
    ngx_http_ai_gateway_tokens_t   t;

    static u_char  a[] = ": comment\r\nevent: x\rdata: {\"usage\":\r"
                         "data: {\"prompt_tokens\":5,\r\ndata: "
                         "\"completion_tokens\":6}}\r\r\n\n"
                         "data:{\"choices\":[{\"delta\":{\"content\":\"x\"}}]}"
                         "\n\ndata: [DONE]";
    static u_char  b[] = "data\ndata: {\"usage\":{\"input_tokens\":3,"
                         "\"output_tokens\":4}}\n\n";
    static u_char  c[] = "{\"usage\":{\"input_tokens\":3}} trailing";
    static u_char  d[] = "{\"content\":[{\"type\":\"tool_use\",\"input\":"
                         "{\"usage\":{\"input_tokens\":1000}}}],"
                         "\"usage\":{\"input_tokens\":3,"
                         "\"output_tokens\":1}}";

    unit_meter_run(S, 0, a, sizeof(a) - 1, 1, 1, &t, model, NULL, NULL);
    unit_check(t.input == 5 && t.output == 6,
               "SSE with CR, CRLF, joined data lines");

    unit_meter_run(S, 0, b, sizeof(b) - 1, 1, 1, &t, model, NULL, NULL);
    unit_check(t.input == 3 && t.output == 4, "an empty data line first");

    unit_meter_run(J, 0, b, sizeof(b) - 1, 1, 1, &t, model, NULL, NULL);
    unit_check(t.input == 3 && t.output == 4, "SSE sent as JSON");

    unit_meter_run(J, 0, c, sizeof(c) - 1, 0, 1, &t, model, NULL, NULL);
    unit_check(t.input == 3, "JSON is JSON");

    unit_meter_run(J, 0, c, sizeof(c) - 1, 1, 1, &t, model, NULL, NULL);
    unit_check(t.input == 3, "a usage object before garbage counts");

    unit_meter_run(J, 0, d, sizeof(d) - 1, 2, 1, &t, model, NULL, NULL);
    unit_check(t.input == 3 && t.output == 1,
               "a \"usage\" key in a tool's input is not a count");
}


/* long strings are skipped, deep nesting and oddities are not counted */

static void
unit_meter_limits(void)
{
    u_char                        *body, *p, model[256];
    size_t                         len, i;
    ngx_http_ai_gateway_tokens_t   t;

    /* a 140 KB string, with escapes, before the usage */

    len = 400000;
    body = malloc(len);
    p = ngx_cpymem(body, "{\"data\":[{\"b64_json\":\"",
                   sizeof("{\"data\":[{\"b64_json\":\"") - 1);

    for (i = 0; i < 100000; i++) {
        *p++ = (i % 7 == 0) ? '\\' : 'a';
        if (i % 7 == 0) {
            *p++ = (i % 14 == 0) ? 'u' : '"';
            if (i % 14 == 0) {
                p = ngx_cpymem(p, "00e9", 4);
            }
        }
    }

    p = ngx_cpymem(p, "\"}],\"model\":\"dall-e\",\"usage\":{\"input_tokens\""
                   ":50,\"output_tokens\":4160}}",
                   sizeof("\"}],\"model\":\"dall-e\",\"usage\":"
                          "{\"input_tokens\":50,\"output_tokens\":4160}}")
                   - 1);

    unit_meter_run(J, 0, body, p - body, 4093, 1, &t, model, NULL, NULL);
    unit_check(t.input == 50 && t.output == 4160
               && strcmp((char *) model, "dall-e") == 0,
               "a long string is skipped: %lu %lu %s",
               (unsigned long) t.input, (unsigned long) t.output, model);

    /* deeper than the limit: not JSON any more */

    p = body;

    for (i = 0; i < 200; i++) {
        *p++ = '[';
    }

    unit_meter_run(J, 0, body, p - body, 7, 1, &t, model, NULL, NULL);
    unit_check(!t.known, "too deep");

    /* counts that are not counts */

    p = (u_char *) "{\"usage\":{\"prompt_tokens\":-1,\"completion_tokens\":"
                   "2.5,\"total_tokens\":\"3\"}}";
    unit_meter_run(J, 0, p, ngx_strlen(p), 0, 1, &t, model, NULL, NULL);
    unit_check(!t.known, "negative, fractional, strings: no counts");

    p = (u_char *) "{\"usage\":{\"prompt_tokens\":99999999999999999999999,"
                   "\"completion_tokens\":1}}";
    unit_meter_run(J, 0, p, ngx_strlen(p), 0, 1, &t, model, NULL, NULL);
    unit_check(t.input == 0 && t.output == 1, "too long a number");

    p = (u_char *) "{\"usage\":{\"prompt_tokens\":18446744073709551615,"
                   "\"completion_tokens\":1}}";
    unit_meter_run(J, 0, p, ngx_strlen(p), 0, 1, &t, model, NULL, NULL);
    unit_check(t.input == 9007199254740992ULL, "clamped to 2^53");

    /* an event-stream that is not one */

    p = (u_char *) "data: {\"usage\":{\"prompt_tokens\":1}}\n\n";
    unit_meter_run(E, 0, p, ngx_strlen(p), 1, 1, &t, model, NULL, NULL);
    unit_check(!t.known, "not event-stream frames");

    free(body);
}


/* the request side: include_usage added, nothing else changed */

static void
unit_meter_request(void)
{
    ngx_int_t    rc;
    ngx_str_t    out;
    ngx_uint_t   i;
    ngx_pool_t  *pool;

    static struct {
        const char  *in;
        ngx_int_t    rc;
        const char  *out;
    } cases[] = {
        { "{\"model\":\"gpt-4o\",\"stream\":true}", NGX_OK,
          "{\"stream_options\":{\"include_usage\":true},\"model\":\"gpt-4o\","
          "\"stream\":true}" },
        { " \n{ \"stream\" : true , \"messages\":[{\"content\":\"{\"}]}",
          NGX_OK,
          " \n{\"stream_options\":{\"include_usage\":true}, \"stream\" : "
          "true , \"messages\":[{\"content\":\"{\"}]}" },
        { "{\"stream\":true,\"stream_options\":{}}", NGX_OK,
          "{\"stream\":true,\"stream_options\":{\"include_usage\":true}}" },
        { "{\"stream\":true,\"stream_options\":{\"x\":1}}", NGX_OK,
          "{\"stream\":true,\"stream_options\":{\"include_usage\":true,"
          "\"x\":1}}" },
        { "{\"stream\":true,\"stream_options\":{\"include_usage\" : false}}",
          NGX_OK,
          "{\"stream\":true,\"stream_options\":{\"include_usage\" : true}}" },
        { "{\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
          NGX_DECLINED, NULL },
        { "{\"stream\":false}", NGX_DECLINED, NULL },
        { "{\"model\":\"x\"}", NGX_DECLINED, NULL },
        { "{\"stream\":\"true\"}", NGX_DECLINED, NULL },
        { "{\"stream\":true,\"stream\":true}", NGX_DECLINED, NULL },
        { "{\"stream\":true,\"stream_options\":null}", NGX_DECLINED, NULL },
        { "{\"stream\":true,\"stream_options\":{\"include_usage\":1}}",
          NGX_DECLINED, NULL },
        { "{\"stream\":true,\"stream_options\":{},\"stream_options\":{}}",
          NGX_DECLINED, NULL },
        { "{\"stream\":true,\"x\":{\"stream_options\":{}}}", NGX_OK,
          "{\"stream_options\":{\"include_usage\":true},\"stream\":true,"
          "\"x\":{\"stream_options\":{}}}" },
        { "[{\"stream\":true}]", NGX_DECLINED, NULL },
        { "{\"stream\":true", NGX_DECLINED, NULL },
        { "{\"stream\":true} {}", NGX_DECLINED, NULL },
        { "", NGX_DECLINED, NULL },
        { NULL, 0, NULL }
    };

    pool = ngx_create_pool(4096, NULL);

    for (i = 0; cases[i].in; i++) {
        ngx_str_null(&out);

        rc = ngx_http_ai_gateway_meter_request(pool, (u_char *) cases[i].in,
                                               strlen(cases[i].in), &out);

        unit_check(rc == cases[i].rc
                   && (cases[i].out == NULL
                       || (out.len == strlen(cases[i].out)
                           && ngx_strncmp(out.data, cases[i].out, out.len)
                              == 0)),
                   "include_usage %s: %ld \"%.*s\"", cases[i].in, (long) rc,
                   (int) out.len, out.data);
    }

    ngx_destroy_pool(pool);
}


/* the price table */

static u_char  unit_prices_base[] =
    "{\"date\":\"2025-12-01\",\"unit\":\"USD per 1M tokens\","
    "\"aliases\":{\"azure-openai\":[\"openai\"],"
    "\"google-vertex-ai\":[\"google-ai-studio\",\"anthropic\"]},"
    "\"prices\":{"
    "\"openai\":{\"gpt-4o\":{\"input\":2.5,\"cached_input\":1.25,"
    "\"output\":10},\"gpt-4o-mini\":{\"input\":0.15,\"output\":0.6},"
    "\"gpt-4o-2024-05-13\":{\"input\":5,\"output\":15},"
    "\"o1\":{\"input\":15,\"output\":60}},"
    "\"anthropic\":{\"claude-3-5-sonnet\":{\"input\":3,\"output\":15,"
    "\"cached_input\":0.3,\"cache_write\":3.75},"
    "\"claude-opus-4\":{\"input\":15,\"output\":75}},"
    "\"aws-bedrock\":{\"anthropic.claude-3-5-sonnet\":{\"input\":3,"
    "\"output\":15}},"
    "\"google-ai-studio\":{\"gemini-2.0-flash\":{\"input\":0.1,"
    "\"output\":0.4,\"note\":\"text\"}},"
    "\"mistral\":{\"mistral-small\":{\"input\":0.1,\"output\":0.3}},"
    "\"cohere\":{\"command-r-plus\":{\"input\":2.5,\"output\":10},"
    "\"command-r\":{\"input\":0.15,\"output\":0.6}},"
    "\"workers-ai\":{\"@cf/meta/llama-3.1-8b-instruct\":{\"input\":0.282,"
    "\"output\":0.827}}}}";


static void
unit_prices(void)
{
    u_char                        *body, buf[64], *p;
    size_t                         len;
    double                         total;
    ngx_int_t                      rc;
    ngx_str_t                      provider, model, err;
    ngx_uint_t                     i;
    ngx_pool_t                    *pool;
    ngx_http_ai_gateway_price_t   *price, custom;
    ngx_http_ai_gateway_prices_t  *pp;
    ngx_http_ai_gateway_tokens_t   t;

    static struct {
        const char  *provider;
        const char  *model;
        double       input;      /* per 1M, 0: not priced */
    } finds[] = {
        { "openai", "gpt-4o", 2.5 },
        { "openai", "gpt-4o-2024-08-06", 2.5 },
        { "openai", "gpt-4o-2024-05-13", 5 },
        { "openai", "gpt-4o-mini-2024-07-18", 0.15 },
        { "openai", "gpt-4o-mini", 0.15 },
        { "openai", "gpt-4o-realtime", 0 },
        { "openai", "gpt-4o-2024", 2.5 },
        { "openai", "gpt-4o-08-06", 0 },
        { "openai", "o1-2024-12-17", 15 },
        { "openai", "o1-mini", 0 },
        { "openai", "gpt-4", 0 },
        { "azure-openai", "gpt-4o-2024-11-20", 2.5 },
        { "anthropic", "claude-3-5-sonnet-20241022", 3 },
        { "anthropic", "claude-3-5-sonnet-latest", 3 },
        { "anthropic", "claude-opus-4-20250514", 15 },
        { "anthropic", "claude-opus-4-5-20251101", 0 },
        { "anthropic", "claude-opus-4-1", 0 },
        { "anthropic", "claude-3-5", 0 },
        { "google-vertex-ai", "claude-3-5-sonnet-v2@20241022", 3 },
        { "google-vertex-ai", "gemini-2.0-flash-001", 0.1 },
        { "google-vertex-ai", "gemini-2.0-flash-lite", 0 },
        { "aws-bedrock", "anthropic.claude-3-5-sonnet-20241022-v2:0", 3 },
        { "aws-bedrock", "us.anthropic.claude-3-5-sonnet-20241022-v2:0", 3 },
        { "aws-bedrock", "global.anthropic.claude-3-5-sonnet-20240620-v1:0",
          3 },
        { "aws-bedrock", "claude-3-5-sonnet", 0 },
        { "aws-bedrock", "anthropic.claude-3-5-sonnet-x", 0 },
        { "mistral", "mistral-small-latest", 0.1 },
        { "mistral", "mistral-small-2503", 0.1 },
        { "mistral", "mistral-small-3", 0 },
        { "cohere", "command-r-plus-08-2024", 2.5 },
        { "cohere", "command-r-08-2024", 0.15 },
        { "cohere", "command-r7b-12-2024", 0 },
        { "workers-ai", "@cf/meta/llama-3.1-8b-instruct", 0.282 },
        { "groq", "gpt-4o", 0 },
        { "openai", "", 0 },
        { NULL, NULL, 0 }
    };

    static struct {
        const char  *text;
        const char  *err;
    } bad[] = {
        { "[]", "not a JSON object" },
        { "{\"unit\":\"USD per token\"}", "\"unit\" must be" },
        { "{\"prices\":{\"openai\":{\"x\":{\"input\":1}}}}",
          "\"x\" needs \"input\" and \"output\"" },
        { "{\"prices\":{\"openai\":{\"x\":{\"input\":-1,\"output\":1}}}}",
          "\"input\" of \"x\" must be a number" },
        { "{\"prices\":{\"openai\":{\"x\":{\"input\":\"1\",\"output\":1}}}}",
          "\"input\" of \"x\" must be a number" },
        { "{\"prices\":{\"openai\":{\"x\":{\"input\":1,\"ouput\":1}}}}",
          "unknown price \"ouput\" of \"x\"" },
        { "{\"prices\":{\"openai\":[]}}", "provider \"openai\" must be" },
        { "{\"prices\":[]}", "\"prices\" must be an object" },
        { "{\"price\":{}}", "unknown member \"price\"" },
        { "{\"aliases\":{\"a\":\"b\"}}", "the aliases of \"a\" must be a" },
        { "{\"aliases\":{\"a\":[1]}}",
          "the aliases of \"a\" must be provider" },
        { "{\"prices\":{\"openai\":{\"x\":{\"input\":1e999,\"output\":1}}}}",
          "must be a number" },
        { "{\"prices\":{\"openai\":{\"x\":{\"input\":1e12,\"output\":1}}}}",
          "must be a number" },
        { NULL, NULL }
    };

    pool = ngx_create_pool(4096, NULL);
    pp = ngx_http_ai_gateway_prices_create(pool);

    rc = ngx_http_ai_gateway_prices_add(pp, unit_prices_base,
                                        sizeof(unit_prices_base) - 1, &err);
    unit_check(rc == NGX_OK, "a price file: %.*s", (int) err.len, err.data);

    for (i = 0; finds[i].provider; i++) {
        provider.data = (u_char *) finds[i].provider;
        provider.len = strlen(finds[i].provider);
        model.data = (u_char *) finds[i].model;
        model.len = strlen(finds[i].model);

        price = ngx_http_ai_gateway_prices_find(pp, &provider, &model);

        unit_check(finds[i].input == 0
                   ? price == NULL
                   : (price != NULL
                      && fabs(price->input * 1e6 - finds[i].input) < 1e-9),
                   "price of %s/%s: %f", finds[i].provider, finds[i].model,
                   price ? price->input * 1e6 : -1.0);
    }

    /* a cost: cached and cache writes at their own prices, or input's */

    ngx_str_set(&provider, "anthropic");
    ngx_str_set(&model, "claude-3-5-sonnet-20241022");
    price = ngx_http_ai_gateway_prices_find(pp, &provider, &model);

    ngx_memzero(&t, sizeof(t));
    t.input = 24;
    t.cached = 2048;
    t.cache_write = 512;
    t.output = 150;

    p = ngx_http_ai_gateway_price_print(buf,
                                  ngx_http_ai_gateway_price_cost(price, &t));
    *p = '\0';

    /* 24 * 3 + 2048 * 0.3 + 512 * 3.75 + 150 * 15 = 4856.4 per 1M */
    unit_check(strcmp((char *) buf, "0.0048564") == 0, "cost %s", buf);

    ngx_str_set(&provider, "openai");
    ngx_str_set(&model, "gpt-4o-mini");
    price = ngx_http_ai_gateway_prices_find(pp, &provider, &model);

    p = ngx_http_ai_gateway_price_print(buf,
                                  ngx_http_ai_gateway_price_cost(price, &t));
    *p = '\0';

    /* (24 + 2048 + 512) * 0.15 + 150 * 0.6 = 477.6 per 1M */
    unit_check(strcmp((char *) buf, "0.0004776") == 0,
               "cost without cache prices %s", buf);

    /* a later file replaces an entry and adds one */

    p = (u_char *) "{\"prices\":{\"openai\":{\"gpt-4o\":{\"input\":1,"
                   "\"output\":2},\"my-model\":{\"input\":0,\"output\":0}}},"
                   "\"aliases\":{\"azure-openai\":[]}}";
    rc = ngx_http_ai_gateway_prices_add(pp, p, ngx_strlen(p), &err);
    unit_check(rc == NGX_OK, "an operator's file");

    ngx_str_set(&model, "gpt-4o-2024-08-06");
    price = ngx_http_ai_gateway_prices_find(pp, &provider, &model);
    unit_check(price && price->input * 1e6 == 1 && price->cached * 1e6 == 1,
               "an entry replaced, whole");

    ngx_str_set(&model, "my-model");
    unit_check(ngx_http_ai_gateway_prices_find(pp, &provider, &model)
               != NULL, "an entry added");

    ngx_str_set(&provider, "azure-openai");
    ngx_str_set(&model, "gpt-4o");
    unit_check(ngx_http_ai_gateway_prices_find(pp, &provider, &model)
               == NULL, "aliases replaced");

    unit_check(ngx_http_ai_gateway_prices_count(pp) == 13, "13 entries: %lu",
               (unsigned long) ngx_http_ai_gateway_prices_count(pp));

    for (i = 0; bad[i].text; i++) {
        ngx_str_null(&err);
        rc = ngx_http_ai_gateway_prices_add(pp, (u_char *) bad[i].text,
                                            strlen(bad[i].text), &err);
        unit_check(rc == NGX_DECLINED
                   && unit_has(err.data, err.data + err.len, bad[i].err),
                   "a bad price file %s: %.*s", bad[i].text, (int) err.len,
                   err.data);
    }

    /* the module's own table */

    body = unit_read("prices.json", &len);
    unit_check(body != NULL, "prices.json");

    if (body) {
        rc = ngx_http_ai_gateway_prices_add(
                 ngx_http_ai_gateway_prices_create(pool), body, len, &err);
        unit_check(rc == NGX_OK, "prices.json is valid: %.*s",
                   (int) err.len, err.data);
        free(body);
    }

    /* cf-aig-custom-cost */

    p = (u_char *) "{\"per_token_in\":0.000001,\"per_token_out\":0.000002}";
    rc = ngx_http_ai_gateway_price_custom(pool, p, ngx_strlen(p), &custom,
                                          &total);
    unit_check(rc == NGX_OK && custom.input == 0.000001
               && custom.cached == 0.000001 && custom.output == 0.000002,
               "a custom price");

    p = ngx_http_ai_gateway_price_print(buf,
                                 ngx_http_ai_gateway_price_cost(&custom, &t));
    *p = '\0';
    unit_check(strcmp((char *) buf, "0.002884") == 0, "custom cost %s", buf);

    p = (u_char *) "{\"total_cost\":0.25,\"per_token_in\":1}";
    rc = ngx_http_ai_gateway_price_custom(pool, p, ngx_strlen(p), &custom,
                                          &total);
    unit_check(rc == NGX_DONE && total == 0.25, "a total cost");

    p = (u_char *) "{\"per_token_out\":3}";
    rc = ngx_http_ai_gateway_price_custom(pool, p, ngx_strlen(p), &custom,
                                          &total);
    unit_check(rc == NGX_OK && custom.input == 0 && custom.output == 3,
               "per_token_out alone");

    for (i = 0; i < 6; i++) {
        static const char  *no[] = {
            "{}", "{\"per_token_in\":-1}", "{\"total_cost\":\"1\"}", "[1]",
            "not json", "{\"per_token_in\":1,\"per_token_out\":null}"
        };

        rc = ngx_http_ai_gateway_price_custom(pool, (u_char *) no[i],
                                              strlen(no[i]), &custom,
                                              &total);
        unit_check(rc == NGX_DECLINED, "not a custom cost: %s", no[i]);
    }

    /* printing */

    for (i = 0; i < 9; i++) {
        static struct {
            double       cost;
            const char  *text;
        } pr[] = {
            { 0, "0" }, { 0.000335, "0.000335" }, { 1.5, "1.5" },
            { 2, "2" }, { 0.00000000004, "0" },
            { 0.00000000005, "0.0000000001" }, { 0.99999999999, "1" },
            { 2e15, "2000000000000000" }, { 1e300, "10000000000000000000" }
        };

        p = ngx_http_ai_gateway_price_print(buf, pr[i].cost);
        *p = '\0';
        unit_check(strcmp((char *) buf, pr[i].text) == 0, "print %s: %s",
                   pr[i].text, buf);
    }

    ngx_destroy_pool(pool);
}


static void
unit_metadata(void)
{
    ngx_int_t    rc;
    ngx_str_t    out;
    ngx_uint_t   i;
    ngx_pool_t  *pool;

    static struct {
        const char  *in;
        const char  *out;     /* NULL: no metadata */
    } cases[] = {
        { "{\"team\": \"AI\", \"user\": 12345, \"test\":true}",
          "{\"team\":\"AI\",\"user\":12345,\"test\":true}" },
        { "{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7}",
          "{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5}" },
        { "{\"a\":1,\"b\":null}", NULL },
        { "{\"a\":1,\"b\":{\"c\":1}}", NULL },
        { "{\"a\":1,\"b\":[1]}", NULL },
        { "{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":null}", NULL },
        { "{\"cf.user_id\":\"x\",\"a\":1}", "{\"a\":1}" },
        { "{\"cf.user_id\":\"x\"}", NULL },
        { "{\"a\":1,\"b\":2,\"a\":3}", "{\"a\":3,\"b\":2}" },
        { "{\"a\":1.50,\"b\":-0,\"c\":1e3,\"d\":false}",
          "{\"a\":1.50,\"b\":-0,\"c\":1e3,\"d\":false}" },
        { "{\"k\\u0000\":\"v\\u0000\\\"\\n\\u00e9\"}",
          "{\"k\\u0000\":\"v\\u0000\\\"\\n\xc3\xa9\"}" },
        { "{}", NULL },
        { "[]", NULL },
        { "\"a\"", NULL },
        { "{\"a\":", NULL },
        { "not json", NULL },
        { "", NULL },
        { "{\"a\":\"\xff\"}", NULL },
        { NULL, NULL }
    };

    pool = ngx_create_pool(4096, NULL);

    for (i = 0; cases[i].in; i++) {
        ngx_str_null(&out);

        rc = ngx_http_ai_gateway_metadata_parse(pool, (u_char *) cases[i].in,
                                                strlen(cases[i].in), &out);

        unit_check(cases[i].out == NULL
                   ? rc == NGX_DECLINED
                   : (rc == NGX_OK && out.len == strlen(cases[i].out)
                      && ngx_strncmp(out.data, cases[i].out, out.len) == 0),
                   "metadata %s: %ld %.*s", cases[i].in, (long) rc,
                   (int) out.len, out.data);
    }

    ngx_destroy_pool(pool);
}


void
unit_usage(void)
{
    unit_meter_fixtures();
    unit_meter_cut();
    unit_meter_strip();
    unit_meter_sse();
    unit_meter_limits();
    unit_meter_request();
    unit_prices();
    unit_metadata();
}
