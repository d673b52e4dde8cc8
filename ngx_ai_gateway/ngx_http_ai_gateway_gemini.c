
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_gateway_openai.h"


/*
 * OpenAI Chat Completions to the Gemini API (generateContent,
 * streamGenerateContent?alt=sse) and back, OpenAI embeddings to
 * batchEmbedContents and back; the mapping is documented in
 * docs/unified-api.md.
 */


#define NGX_HTTP_AI_GATEWAY_CALL_ID_LEN  (sizeof("call_") - 1 + NGX_INT_T_LEN)

/*
 * batchEmbedContents refuses more requests ("BatchEmbedContentsRequest.
 * requests: at most 100 requests can be in one batch")
 */
#define NGX_HTTP_AI_GATEWAY_GEMINI_INPUTS  100


typedef struct {
    ngx_str_t                      ext;
    ngx_str_t                      mime;
} ngx_http_ai_gateway_gemini_mime_t;


static ngx_int_t ngx_http_ai_gateway_gemini_refuse(
    ngx_http_ai_gateway_openai_req_t *r);
static ngx_int_t ngx_http_ai_gateway_gemini_user(
    ngx_http_ai_gateway_openai_req_t *r, ngx_http_ai_gateway_gen_t *gen,
    yajl_val m, void *data);
static ngx_int_t ngx_http_ai_gateway_gemini_model(
    ngx_http_ai_gateway_openai_req_t *r, ngx_http_ai_gateway_gen_t *gen,
    yajl_val m, void *data);
static ngx_int_t ngx_http_ai_gateway_gemini_result(
    ngx_http_ai_gateway_openai_req_t *r, ngx_http_ai_gateway_gen_t *gen,
    yajl_val m, void *data);
static void ngx_http_ai_gateway_gemini_mime(ngx_http_ai_gateway_gen_t *gen,
    ngx_str_t *url);
static void ngx_http_ai_gateway_gemini_tools(
    ngx_http_ai_gateway_openai_req_t *r, ngx_http_ai_gateway_gen_t *gen);
static void ngx_http_ai_gateway_gemini_tool(ngx_http_ai_gateway_gen_t *gen,
    ngx_http_ai_gateway_tool_t *tool);
static void ngx_http_ai_gateway_gemini_config(
    ngx_http_ai_gateway_openai_req_t *r, ngx_http_ai_gateway_gen_t *gen);
static ngx_int_t ngx_http_ai_gateway_gemini_index(yajl_val cand,
    ngx_uint_t k, ngx_uint_t *index);
static const char *ngx_http_ai_gateway_gemini_finish(yajl_val cand,
    ngx_uint_t calls);
static void ngx_http_ai_gateway_gemini_usage(yajl_val v,
    ngx_http_ai_gateway_usage_t *u);
static ngx_int_t ngx_http_ai_gateway_gemini_event(
    ngx_http_ai_gateway_stream_t *s, ngx_http_ai_gateway_sse_event_t *ev,
    yajl_val json);
static ngx_int_t ngx_http_ai_gateway_gemini_candidate(
    ngx_http_ai_gateway_stream_t *s, yajl_val cand, ngx_uint_t i);
static ngx_int_t ngx_http_ai_gateway_gemini_end(
    ngx_http_ai_gateway_stream_t *s, ngx_uint_t complete);


static ngx_http_ai_gateway_map_t  ngx_http_ai_gateway_gemini_finishes[] = {
    { ngx_string("STOP"), "stop" },
    { ngx_string("MAX_TOKENS"), "length" },
    { ngx_string("SAFETY"), "content_filter" },
    { ngx_string("RECITATION"), "content_filter" },
    { ngx_string("BLOCKLIST"), "content_filter" },
    { ngx_string("PROHIBITED_CONTENT"), "content_filter" },
    { ngx_string("SPII"), "content_filter" },
    { ngx_string("IMAGE_SAFETY"), "content_filter" },
    { ngx_string("IMAGE_PROHIBITED_CONTENT"), "content_filter" },
    { ngx_string("IMAGE_RECITATION"), "content_filter" },
    { ngx_null_string, NULL }
};


/* fileData needs a MIME type for most URLs: guessed from the extension */

static ngx_http_ai_gateway_gemini_mime_t  ngx_http_ai_gateway_gemini_mimes[] = {
    { ngx_string(".png"), ngx_string("image/png") },
    { ngx_string(".jpg"), ngx_string("image/jpeg") },
    { ngx_string(".jpeg"), ngx_string("image/jpeg") },
    { ngx_string(".gif"), ngx_string("image/gif") },
    { ngx_string(".webp"), ngx_string("image/webp") },
    { ngx_string(".heic"), ngx_string("image/heic") },
    { ngx_string(".heif"), ngx_string("image/heif") },
    { ngx_string(".pdf"), ngx_string("application/pdf") },
    { ngx_null_string, ngx_null_string }
};


/*
 * The Gemini API for the shared code: a turn's content is its "parts"
 * (tool results: functionResponse parts of a user turn); errors are
 * {"error":{"code","message","status"}} (streamGenerateContent without
 * alt=sse wraps them in an array), their code Google's status.
 */

static ngx_http_ai_gateway_dialect_t  ngx_http_ai_gateway_gemini = {
    "gemini",
    ngx_http_ai_gateway_gemini_refuse,
    "parts",
    ngx_http_ai_gateway_gemini_user,
    ngx_http_ai_gateway_gemini_model,
    ngx_http_ai_gateway_gemini_result,
    ngx_http_ai_gateway_gemini_tool,
    NULL,
    "status",
    NGX_HTTP_AI_GATEWAY_GEMINI_INPUTS,
    1
};


/* the request */

ngx_int_t
ngx_http_ai_gateway_gemini_request(ngx_pool_t *pool, yajl_val req,
    ngx_http_ai_gateway_compat_t *c, ngx_str_t *out, ngx_str_t *err)
{
    ngx_int_t                         rc;
    ngx_array_t                       system, calls;
    ngx_http_ai_gateway_gen_t         gen;
    ngx_http_ai_gateway_openai_req_t  r;

    rc = ngx_http_ai_gateway_openai_request(pool, req,
                                            &ngx_http_ai_gateway_gemini, c,
                                            &r, &gen, err);
    if (rc != NGX_OK) {
        return rc;
    }

    /* system and developer messages, in order: systemInstruction's parts */

    rc = ngx_http_ai_gateway_openai_system(&r, &system);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_ai_gateway_openai_some(&system)) {
        ngx_http_ai_gateway_gen_literal(&gen, "systemInstruction");
        ngx_http_ai_gateway_gen_map(&gen);
        ngx_http_ai_gateway_gen_literal(&gen, "parts");
        ngx_http_ai_gateway_gen_array(&gen);
        (void) ngx_http_ai_gateway_gen_texts(&gen, &system, 0);
        ngx_http_ai_gateway_gen_array_end(&gen);
        ngx_http_ai_gateway_gen_map_end(&gen);
    }

    ngx_http_ai_gateway_gen_literal(&gen, "contents");

    /* the tool calls of the last assistant message: results name them */

    calls.nelts = 0;

    rc = ngx_http_ai_gateway_openai_messages(&r, &gen, &calls);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_http_ai_gateway_gemini_tools(&r, &gen);
    ngx_http_ai_gateway_gemini_config(&r, &gen);

    return ngx_http_ai_gateway_openai_done(&r, &gen, out);
}


static ngx_int_t
ngx_http_ai_gateway_gemini_refuse(ngx_http_ai_gateway_openai_req_t *r)
{
    if (r->n > NGX_HTTP_AI_GATEWAY_MAX_CHOICES) {
        return ngx_http_ai_gateway_openai_fail(r,
                               "n must be at most %d for gemini models",
                               NGX_HTTP_AI_GATEWAY_MAX_CHOICES);
    }

    if (r->no_parallel && r->tools.nelts) {
        return ngx_http_ai_gateway_openai_fail(r,
                   "\"parallel_tool_calls\": false is not supported for "
                   "gemini models");
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_gemini_user(ngx_http_ai_gateway_openai_req_t *r,
    ngx_http_ai_gateway_gen_t *gen, yajl_val m, void *data)
{
    ngx_int_t                    rc;
    ngx_uint_t                   i, n;
    ngx_array_t                  parts;
    ngx_http_ai_gateway_part_t  *part;

    rc = ngx_http_ai_gateway_openai_user(r, gen, m, &parts);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_http_ai_gateway_gen_array(gen);

    n = 0;
    part = parts.elts;

    for (i = 0; i < parts.nelts; i++) {

        if (part[i].type == NGX_HTTP_AI_GATEWAY_PART_TEXT) {
            n += ngx_http_ai_gateway_gen_text(gen, &part[i].text, 0);
            continue;
        }

        /* images and files */

        ngx_http_ai_gateway_gen_map(gen);

        if (part[i].url.len) {
            ngx_http_ai_gateway_gen_literal(gen, "fileData");
            ngx_http_ai_gateway_gen_map(gen);
            ngx_http_ai_gateway_gemini_mime(gen, &part[i].url);
            ngx_http_ai_gateway_gen_literal(gen, "fileUri");
            ngx_http_ai_gateway_gen_string(gen, &part[i].url);
            ngx_http_ai_gateway_gen_map_end(gen);

        } else {
            ngx_http_ai_gateway_gen_literal(gen, "inlineData");
            ngx_http_ai_gateway_gen_map(gen);
            ngx_http_ai_gateway_gen_literal(gen, "mimeType");
            ngx_http_ai_gateway_gen_string(gen, &part[i].mime);
            ngx_http_ai_gateway_gen_literal(gen, "data");
            ngx_http_ai_gateway_gen_string(gen, &part[i].data);
            ngx_http_ai_gateway_gen_map_end(gen);
        }

        ngx_http_ai_gateway_gen_map_end(gen);

        n++;
    }

    if (n == 0) {
        /* Gemini refuses a turn without parts */
        ngx_http_ai_gateway_gen_map(gen);
        ngx_http_ai_gateway_gen_literal(gen, "text");
        ngx_http_ai_gateway_gen_literal(gen, "");
        ngx_http_ai_gateway_gen_map_end(gen);
    }

    ngx_http_ai_gateway_gen_array_end(gen);
    ngx_http_ai_gateway_gen_map_end(gen);

    return NGX_OK;
}


/* an assistant message: a "model" turn of text and functionCall parts */

static ngx_int_t
ngx_http_ai_gateway_gemini_model(ngx_http_ai_gateway_openai_req_t *r,
    ngx_http_ai_gateway_gen_t *gen, yajl_val m, void *data)
{
    ngx_int_t                    rc;
    ngx_uint_t                   i;
    ngx_array_t                  parts, *calls;
    ngx_http_ai_gateway_call_t  *call;

    calls = data;

    rc = ngx_http_ai_gateway_openai_calls(r, m, calls);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_ai_gateway_openai_parts(r, m, 0, &parts);
    if (rc != NGX_OK) {
        return rc;
    }

    if (calls->nelts == 0 && !ngx_http_ai_gateway_openai_some(&parts)) {
        /* nothing said: Gemini refuses turns without parts */
        return NGX_OK;
    }

    ngx_http_ai_gateway_gen_turn(gen, r, "model");
    ngx_http_ai_gateway_gen_array(gen);

    (void) ngx_http_ai_gateway_gen_texts(gen, &parts, 0);

    call = calls->elts;

    for (i = 0; i < calls->nelts; i++) {
        ngx_http_ai_gateway_gen_map(gen);
        ngx_http_ai_gateway_gen_literal(gen, "functionCall");
        ngx_http_ai_gateway_gen_map(gen);
        ngx_http_ai_gateway_gen_literal(gen, "name");
        ngx_http_ai_gateway_gen_string(gen, &call[i].name);
        ngx_http_ai_gateway_gen_literal(gen, "args");
        ngx_http_ai_gateway_gen_value(gen, call[i].args);
        ngx_http_ai_gateway_gen_map_end(gen);

        if (call[i].signature.len) {
            ngx_http_ai_gateway_gen_literal(gen, "thoughtSignature");
            ngx_http_ai_gateway_gen_string(gen, &call[i].signature);
        }

        ngx_http_ai_gateway_gen_map_end(gen);
    }

    ngx_http_ai_gateway_gen_array_end(gen);
    ngx_http_ai_gateway_gen_map_end(gen);

    return NGX_OK;
}


/*
 * A tool message: functionResponse, named after the call of that id in
 * the last assistant message; a result that is a JSON object is the
 * response, anything else is wrapped as {"content": "<result>"}.
 */

static ngx_int_t
ngx_http_ai_gateway_gemini_result(ngx_http_ai_gateway_openai_req_t *r,
    ngx_http_ai_gateway_gen_t *gen, yajl_val m, void *data)
{
    yajl_val                     v;
    ngx_int_t                    rc;
    ngx_str_t                    id, text, *name;
    ngx_uint_t                   j;
    ngx_array_t                 *calls;
    ngx_http_ai_gateway_call_t  *call;

    rc = ngx_http_ai_gateway_openai_call_id(r, m, &id);
    if (rc != NGX_OK) {
        return rc;
    }

    calls = data;
    name = NULL;
    call = calls->elts;

    for (j = 0; j < calls->nelts; j++) {
        if (call[j].id.len == id.len
            && ngx_strncmp(call[j].id.data, id.data, id.len) == 0)
        {
            name = &call[j].name;
            break;
        }
    }

    if (name == NULL) {
        return ngx_http_ai_gateway_openai_fail(r,
                         "messages[%ui]: \"tool_call_id\" matches no tool "
                         "call of the assistant message before it", r->msg);
    }

    rc = ngx_http_ai_gateway_openai_text(r, m, &text);
    if (rc != NGX_OK) {
        return rc;
    }

    v = NULL;

    for (j = 0; j < text.len; j++) {
        if (text.data[j] != ' ' && text.data[j] != '\t'
            && text.data[j] != '\r' && text.data[j] != '\n')
        {
            break;
        }
    }

    if (j < text.len && text.data[j] == '{') {
        rc = ngx_http_ai_gateway_json_parse(r->pool, text.data, text.len, &v);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc != NGX_OK || !YAJL_IS_OBJECT(v)) {
            v = NULL;
        }
    }

    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_literal(gen, "functionResponse");
    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_literal(gen, "name");
    ngx_http_ai_gateway_gen_string(gen, name);
    ngx_http_ai_gateway_gen_literal(gen, "response");

    if (v != NULL) {
        ngx_http_ai_gateway_gen_value(gen, v);

    } else {
        ngx_http_ai_gateway_gen_map(gen);
        ngx_http_ai_gateway_gen_literal(gen, "content");
        ngx_http_ai_gateway_gen_string(gen, &text);
        ngx_http_ai_gateway_gen_map_end(gen);
    }

    ngx_http_ai_gateway_gen_map_end(gen);
    ngx_http_ai_gateway_gen_map_end(gen);

    return NGX_OK;
}


/* "mimeType" from the URL path's extension, when known */

static void
ngx_http_ai_gateway_gemini_mime(ngx_http_ai_gateway_gen_t *gen,
    ngx_str_t *url)
{
    u_char                             *end;
    ngx_http_ai_gateway_gemini_mime_t  *m;

    for (end = url->data; end < url->data + url->len; end++) {
        if (*end == '?' || *end == '#') {
            break;
        }
    }

    for (m = ngx_http_ai_gateway_gemini_mimes; m->ext.len; m++) {
        if ((size_t) (end - url->data) > m->ext.len
            && ngx_strncasecmp(end - m->ext.len, m->ext.data, m->ext.len)
               == 0)
        {
            ngx_http_ai_gateway_gen_literal(gen, "mimeType");
            ngx_http_ai_gateway_gen_string(gen, &m->mime);
            return;
        }
    }
}


/*
 * Function declarations: the client's JSON schema is passed as
 * parametersJsonSchema, unchanged (Gemini's "parameters" is an OpenAPI
 * subset that would need keywords stripped).
 */

static void
ngx_http_ai_gateway_gemini_tools(ngx_http_ai_gateway_openai_req_t *r,
    ngx_http_ai_gateway_gen_t *gen)
{
    if (r->tools.nelts == 0) {
        return;
    }

    ngx_http_ai_gateway_gen_literal(gen, "tools");
    ngx_http_ai_gateway_gen_array(gen);
    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_literal(gen, "functionDeclarations");
    ngx_http_ai_gateway_gen_tools(gen, r);
    ngx_http_ai_gateway_gen_map_end(gen);
    ngx_http_ai_gateway_gen_array_end(gen);

    if (r->tool_choice == NGX_HTTP_AI_GATEWAY_CHOICE_UNSET) {
        return;
    }

    ngx_http_ai_gateway_gen_literal(gen, "toolConfig");
    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_literal(gen, "functionCallingConfig");
    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_literal(gen, "mode");

    switch (r->tool_choice) {

    case NGX_HTTP_AI_GATEWAY_CHOICE_NONE:
        ngx_http_ai_gateway_gen_literal(gen, "NONE");
        break;

    case NGX_HTTP_AI_GATEWAY_CHOICE_REQUIRED:
        ngx_http_ai_gateway_gen_literal(gen, "ANY");
        break;

    case NGX_HTTP_AI_GATEWAY_CHOICE_FUNCTION:
        ngx_http_ai_gateway_gen_literal(gen, "ANY");
        ngx_http_ai_gateway_gen_literal(gen, "allowedFunctionNames");
        ngx_http_ai_gateway_gen_array(gen);
        ngx_http_ai_gateway_gen_string(gen, &r->tool_name);
        ngx_http_ai_gateway_gen_array_end(gen);
        break;

    default: /* auto */
        ngx_http_ai_gateway_gen_literal(gen, "AUTO");
        break;
    }

    ngx_http_ai_gateway_gen_map_end(gen);
    ngx_http_ai_gateway_gen_map_end(gen);
}


/*
 * A function's "parametersJsonSchema", when it has parameters; "strict"
 * is dropped: Gemini has no such switch (clients such as the OpenAI Agents
 * SDK set it on every tool)
 */

static void
ngx_http_ai_gateway_gemini_tool(ngx_http_ai_gateway_gen_t *gen,
    ngx_http_ai_gateway_tool_t *tool)
{
    if (tool->parameters != NULL) {
        ngx_http_ai_gateway_gen_literal(gen, "parametersJsonSchema");
        ngx_http_ai_gateway_gen_value(gen, tool->parameters);
    }
}


static void
ngx_http_ai_gateway_gemini_config(ngx_http_ai_gateway_openai_req_t *r,
    ngx_http_ai_gateway_gen_t *gen)
{
    if (r->stop.nelts == 0 && r->n == 1 && !r->has_max_tokens
        && r->temperature == NULL && r->top_p == NULL && r->top_k == NULL
        && r->seed == NULL && r->presence_penalty == NULL
        && r->frequency_penalty == NULL
        && r->format == NGX_HTTP_AI_GATEWAY_FORMAT_TEXT && !r->has_effort)
    {
        return;
    }

    ngx_http_ai_gateway_gen_literal(gen, "generationConfig");
    ngx_http_ai_gateway_gen_map(gen);

    if (r->stop.nelts) {
        ngx_http_ai_gateway_gen_literal(gen, "stopSequences");
        ngx_http_ai_gateway_gen_stop(gen, r);
    }

    if (r->n > 1) {
        ngx_http_ai_gateway_gen_literal(gen, "candidateCount");
        ngx_http_ai_gateway_gen_int(gen, r->n);
    }

    if (r->has_max_tokens) {
        ngx_http_ai_gateway_gen_literal(gen, "maxOutputTokens");
        ngx_http_ai_gateway_gen_int(gen, r->max_tokens);
    }

    /* numbers are passed as sent: the provider checks their ranges */

    ngx_http_ai_gateway_gen_number(gen, "temperature", r->temperature);
    ngx_http_ai_gateway_gen_number(gen, "topP", r->top_p);
    ngx_http_ai_gateway_gen_number(gen, "topK", r->top_k);
    ngx_http_ai_gateway_gen_number(gen, "seed", r->seed);
    ngx_http_ai_gateway_gen_number(gen, "presencePenalty", r->presence_penalty);
    ngx_http_ai_gateway_gen_number(gen, "frequencyPenalty",
                                   r->frequency_penalty);

    if (r->format != NGX_HTTP_AI_GATEWAY_FORMAT_TEXT) {
        ngx_http_ai_gateway_gen_literal(gen, "responseMimeType");
        ngx_http_ai_gateway_gen_literal(gen, "application/json");

        if (r->format == NGX_HTTP_AI_GATEWAY_FORMAT_SCHEMA) {
            ngx_http_ai_gateway_gen_literal(gen, "responseJsonSchema");
            ngx_http_ai_gateway_gen_value(gen, r->schema);
        }
    }

    if (r->has_effort) {
        ngx_http_ai_gateway_gen_literal(gen, "thinkingConfig");
        ngx_http_ai_gateway_gen_map(gen);
        ngx_http_ai_gateway_gen_literal(gen, "thinkingBudget");
        ngx_http_ai_gateway_gen_int(gen, r->budget);

        if (r->budget) {
            ngx_http_ai_gateway_gen_literal(gen, "includeThoughts");
            ngx_http_ai_gateway_gen_bool(gen, 1);
        }

        ngx_http_ai_gateway_gen_map_end(gen);
    }

    ngx_http_ai_gateway_gen_map_end(gen);
}


/* a candidate's choice index: its "index", or its place in the array */

static ngx_int_t
ngx_http_ai_gateway_gemini_index(yajl_val cand, ngx_uint_t k,
    ngx_uint_t *index)
{
    yajl_val  v;

    v = ngx_http_ai_gateway_json_get(cand, "index");

    if (YAJL_IS_INTEGER(v) && v->u.number.i >= 0) {
        if (v->u.number.i >= NGX_HTTP_AI_GATEWAY_MAX_CHOICES) {
            return NGX_DECLINED;
        }

        *index = v->u.number.i;
        return NGX_OK;
    }

    if (k >= NGX_HTTP_AI_GATEWAY_MAX_CHOICES) {
        return NGX_DECLINED;
    }

    *index = k;

    return NGX_OK;
}


/* STOP after function calls is "tool_calls"; unknown reasons are "stop" */

static const char *
ngx_http_ai_gateway_gemini_finish(yajl_val reason, ngx_uint_t calls)
{
    const char  *finish;

    finish = ngx_http_ai_gateway_map(ngx_http_ai_gateway_gemini_finishes,
                                     reason, "stop");

    if (calls && ngx_http_ai_gateway_json_is(reason, "STOP")) {
        finish = "tool_calls";
    }

    return finish;
}


/*
 * usageMetadata: thoughts are completion tokens (and reasoning_tokens);
 * tool-use prompts are prompt tokens; cachedContentTokenCount is a part
 * of promptTokenCount.
 */

static void
ngx_http_ai_gateway_gemini_usage(yajl_val v, ngx_http_ai_gateway_usage_t *u)
{
    uint64_t  n;

    ngx_memzero(u, sizeof(ngx_http_ai_gateway_usage_t));

    (void) ngx_http_ai_gateway_json_count(
               ngx_http_ai_gateway_json_get(v, "promptTokenCount"),
               &u->prompt);

    if (ngx_http_ai_gateway_json_count(
            ngx_http_ai_gateway_json_get(v, "toolUsePromptTokenCount"), &n))
    {
        u->prompt += n;
    }

    (void) ngx_http_ai_gateway_json_count(
               ngx_http_ai_gateway_json_get(v, "candidatesTokenCount"),
               &u->completion);
    (void) ngx_http_ai_gateway_json_count(
               ngx_http_ai_gateway_json_get(v, "thoughtsTokenCount"),
               &u->reasoning);
    (void) ngx_http_ai_gateway_json_count(
               ngx_http_ai_gateway_json_get(v, "cachedContentTokenCount"),
               &u->cached);

    u->completion += u->reasoning;
}


/* the response */

ngx_int_t
ngx_http_ai_gateway_gemini_response(ngx_pool_t *pool, u_char *body,
    size_t len, ngx_http_ai_gateway_compat_t *c, ngx_str_t *out)
{
    size_t                             k, j;
    u_char                            *buf;
    yajl_val                           v, cands, cand, parts, part, o;
    ngx_int_t                          rc;
    ngx_str_t                          text;
    ngx_uint_t                         index;
    ngx_http_ai_gateway_choice_t      *ch;
    ngx_http_ai_gateway_tool_call_t   *call;
    ngx_http_ai_gateway_completion_t   cmp;

    rc = ngx_http_ai_gateway_json_parse(pool, body, len, &v);
    if (rc != NGX_OK) {
        return rc;
    }

    if (!YAJL_IS_OBJECT(v)) {
        return NGX_DECLINED;
    }

    if (ngx_http_ai_gateway_completion_init(&cmp, pool) != NGX_OK) {
        return NGX_ERROR;
    }

    (void) ngx_http_ai_gateway_json_str(
               ngx_http_ai_gateway_json_get(v, "responseId"), &cmp.id);
    (void) ngx_http_ai_gateway_json_str(
               ngx_http_ai_gateway_json_get(v, "modelVersion"), &cmp.model);

    cands = ngx_http_ai_gateway_json_get(v, "candidates");

    if (!YAJL_IS_ARRAY(cands) || cands->u.array.len == 0) {

        /* the prompt was blocked */

        o = ngx_http_ai_gateway_json_get(v, "promptFeedback");

        if (ngx_http_ai_gateway_json_get(o, "blockReason") == NULL) {
            return NGX_DECLINED;
        }

        ch = ngx_http_ai_gateway_completion_choice(&cmp, 0);
        if (ch == NULL) {
            return NGX_ERROR;
        }

        ch->finish = "content_filter";

        cands = NULL;
    }

    for (k = 0; cands != NULL && k < cands->u.array.len; k++) {
        cand = cands->u.array.values[k];

        if (ngx_http_ai_gateway_gemini_index(cand, k, &index) != NGX_OK) {
            return NGX_DECLINED;
        }

        ch = ngx_http_ai_gateway_completion_choice(&cmp, index);
        if (ch == NULL) {
            return NGX_ERROR;
        }

        parts = ngx_http_ai_gateway_json_get(cand, "content");
        parts = ngx_http_ai_gateway_json_get(parts, "parts");

        for (j = 0; YAJL_IS_ARRAY(parts) && j < parts->u.array.len; j++) {
            part = parts->u.array.values[j];

            if (ngx_http_ai_gateway_json_str(
                    ngx_http_ai_gateway_json_get(part, "text"), &text)
                == NGX_OK)
            {
                if (ngx_http_ai_gateway_choice_text(ch, &text,
                        YAJL_IS_TRUE(ngx_http_ai_gateway_json_get(part,
                                                                  "thought")))
                    != NGX_OK)
                {
                    return NGX_ERROR;
                }

                continue;
            }

            o = ngx_http_ai_gateway_json_get(part, "functionCall");

            if (!YAJL_IS_OBJECT(o)) {
                /* inline data, executable code: not shown */
                continue;
            }

            buf = ngx_pnalloc(pool, NGX_HTTP_AI_GATEWAY_CALL_ID_LEN);
            if (buf == NULL) {
                return NGX_ERROR;
            }

            call = ngx_http_ai_gateway_choice_call(ch);
            if (call == NULL) {
                return NGX_ERROR;
            }

            ngx_http_ai_gateway_call_id(ch->calls.nelts - 1, &call->id, buf);

            (void) ngx_http_ai_gateway_json_str(
                       ngx_http_ai_gateway_json_get(o, "name"), &call->name);
            (void) ngx_http_ai_gateway_json_str(
                       ngx_http_ai_gateway_json_get(part, "thoughtSignature"),
                       &call->signature);

            o = ngx_http_ai_gateway_json_get(o, "args");

            rc = ngx_http_ai_gateway_call_args(pool, call, o);
            if (rc != NGX_OK) {
                return rc;
            }
        }

        ch->finish = ngx_http_ai_gateway_gemini_finish(
                         ngx_http_ai_gateway_json_get(cand, "finishReason"),
                         ch->calls.nelts);
    }

    o = ngx_http_ai_gateway_json_get(v, "usageMetadata");

    if (YAJL_IS_OBJECT(o)) {
        ngx_http_ai_gateway_gemini_usage(o, &cmp.usage);
        cmp.has_usage = 1;
    }

    return ngx_http_ai_gateway_completion_done(&cmp, c, out);
}


/* an error body; the code is Google's status */

ngx_int_t
ngx_http_ai_gateway_gemini_error(ngx_pool_t *pool, ngx_uint_t status,
    u_char *body, size_t len, ngx_str_t *out)
{
    return ngx_http_ai_gateway_error_native(pool, &ngx_http_ai_gateway_gemini,
                                            status, body, len, out);
}


/*
 * Embeddings: {"requests":[{"model":"models/<model>","content":{"parts":
 * [{"text"}]},"outputDimensionality"?}...]}, one request per input, in
 * order; the gateway calls models/<model>:batchEmbedContents.
 */

ngx_int_t
ngx_http_ai_gateway_gemini_embed_request(ngx_pool_t *pool, yajl_val req,
    ngx_http_ai_gateway_compat_t *c, ngx_str_t *out, ngx_str_t *err)
{
    ngx_int_t                         rc;
    ngx_str_t                        *input, model;
    ngx_uint_t                        i;
    ngx_http_ai_gateway_gen_t         gen;
    ngx_http_ai_gateway_openai_req_t  r;

    rc = ngx_http_ai_gateway_openai_embeddings(pool, req,
                                               &ngx_http_ai_gateway_gemini,
                                               c, &r, &gen, err);
    if (rc != NGX_OK) {
        return rc;
    }

    model.data = ngx_pnalloc(pool, sizeof("models/") - 1 + c->model.len);
    if (model.data == NULL) {
        return NGX_ERROR;
    }

    model.len = ngx_sprintf(model.data, "models/%V", &c->model) - model.data;

    ngx_http_ai_gateway_gen_literal(&gen, "requests");
    ngx_http_ai_gateway_gen_array(&gen);

    input = r.input.elts;

    for (i = 0; i < r.input.nelts; i++) {
        ngx_http_ai_gateway_gen_map(&gen);

        ngx_http_ai_gateway_gen_literal(&gen, "model");
        ngx_http_ai_gateway_gen_string(&gen, &model);

        ngx_http_ai_gateway_gen_literal(&gen, "content");
        ngx_http_ai_gateway_gen_map(&gen);
        ngx_http_ai_gateway_gen_literal(&gen, "parts");
        ngx_http_ai_gateway_gen_array(&gen);
        (void) ngx_http_ai_gateway_gen_text(&gen, &input[i], 0);
        ngx_http_ai_gateway_gen_array_end(&gen);
        ngx_http_ai_gateway_gen_map_end(&gen);

        ngx_http_ai_gateway_gen_number(&gen, "outputDimensionality",
                                       r.dimensions);

        ngx_http_ai_gateway_gen_map_end(&gen);
    }

    ngx_http_ai_gateway_gen_array_end(&gen);

    return ngx_http_ai_gateway_openai_done(&r, &gen, out);
}


/*
 * {"embeddings":[{"values":[...]}...]} to the OpenAI list; the batch API
 * counts no tokens, a usageMetadata would be used as generateContent's.
 */

ngx_int_t
ngx_http_ai_gateway_gemini_embed_response(ngx_pool_t *pool, u_char *body,
    size_t len, ngx_http_ai_gateway_compat_t *c, ngx_str_t *out)
{
    yajl_val                     v, o;
    ngx_int_t                    rc;
    ngx_http_ai_gateway_usage_t  u, *up;

    rc = ngx_http_ai_gateway_json_parse(pool, body, len, &v);
    if (rc != NGX_OK) {
        return rc;
    }

    up = NULL;
    o = ngx_http_ai_gateway_json_get(v, "usageMetadata");

    if (YAJL_IS_OBJECT(o)) {
        ngx_http_ai_gateway_gemini_usage(o, &u);
        up = &u;
    }

    return ngx_http_ai_gateway_embeddings_done(pool,
                             ngx_http_ai_gateway_json_get(v, "embeddings"),
                             "values", up, c, out);
}


/* the stream */

ngx_http_ai_gateway_stream_t *
ngx_http_ai_gateway_gemini_stream(ngx_pool_t *pool,
    ngx_http_ai_gateway_compat_t *c)
{
    return ngx_http_ai_gateway_stream_alloc(pool, c,
                                            ngx_http_ai_gateway_gemini_event,
                                            ngx_http_ai_gateway_gemini_end,
                                            0);
}


/*
 * Every event is a whole GenerateContentResponse: its parts are the new
 * deltas, its usageMetadata the counts so far, a finishReason ends its
 * candidate's choice.
 */

static ngx_int_t
ngx_http_ai_gateway_gemini_event(ngx_http_ai_gateway_stream_t *s,
    ngx_http_ai_gateway_sse_event_t *ev, yajl_val json)
{
    size_t                       k;
    yajl_val                     cands, o;
    ngx_int_t                    rc;
    ngx_str_t                    id, model;
    ngx_uint_t                   index;
    ngx_http_ai_gateway_usage_t  u;

    if (YAJL_IS_ARRAY(json) && json->u.array.len) {
        json = json->u.array.values[0];
    }

    if (!YAJL_IS_OBJECT(json)) {
        return NGX_DECLINED;
    }

    o = ngx_http_ai_gateway_json_get(json, "error");

    if (o != NULL) {
        ngx_http_ai_gateway_stream_error(s, &ngx_http_ai_gateway_gemini, o);
        return NGX_OK;
    }

    if (ev->raw) {
        /* JSON outside the SSE framing is an error or nothing valid */
        return NGX_DECLINED;
    }

    ngx_str_null(&id);
    ngx_str_null(&model);

    (void) ngx_http_ai_gateway_json_str(
               ngx_http_ai_gateway_json_get(json, "responseId"), &id);
    (void) ngx_http_ai_gateway_json_str(
               ngx_http_ai_gateway_json_get(json, "modelVersion"), &model);

    ngx_http_ai_gateway_chunks_meta(&s->chunks, &id, &model);

    /* cumulative: the last one is the final count */

    o = ngx_http_ai_gateway_json_get(json, "usageMetadata");

    if (YAJL_IS_OBJECT(o)) {
        ngx_http_ai_gateway_gemini_usage(o, &u);
        ngx_http_ai_gateway_chunks_usage(&s->chunks, &u);
    }

    cands = ngx_http_ai_gateway_json_get(json, "candidates");

    if (!YAJL_IS_ARRAY(cands) || cands->u.array.len == 0) {

        o = ngx_http_ai_gateway_json_get(json, "promptFeedback");

        if (ngx_http_ai_gateway_json_get(o, "blockReason") != NULL) {
            ngx_http_ai_gateway_chunk_finish(&s->chunks, 0, "content_filter");
        }

        return NGX_OK;
    }

    for (k = 0; k < cands->u.array.len; k++) {

        if (ngx_http_ai_gateway_gemini_index(cands->u.array.values[k], k,
                                             &index)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        rc = ngx_http_ai_gateway_gemini_candidate(s, cands->u.array.values[k],
                                                  index);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_gemini_candidate(ngx_http_ai_gateway_stream_t *s,
    yajl_val cand, ngx_uint_t i)
{
    size_t                         j;
    u_char                         buf[NGX_HTTP_AI_GATEWAY_CALL_ID_LEN];
    yajl_val                       parts, part, o, reason;
    ngx_int_t                      rc;
    ngx_str_t                      text, id, name, signature;
    ngx_uint_t                     n;
    ngx_http_ai_gateway_chunks_t  *ch;

    ch = &s->chunks;

    ngx_http_ai_gateway_chunk_role(ch, i);

    parts = ngx_http_ai_gateway_json_get(cand, "content");
    parts = ngx_http_ai_gateway_json_get(parts, "parts");

    for (j = 0; YAJL_IS_ARRAY(parts) && j < parts->u.array.len; j++) {
        part = parts->u.array.values[j];

        if (ngx_http_ai_gateway_json_str(ngx_http_ai_gateway_json_get(part,
                                                                      "text"),
                                         &text)
            == NGX_OK)
        {
            ngx_http_ai_gateway_chunk_text(ch, i, &text,
                YAJL_IS_TRUE(ngx_http_ai_gateway_json_get(part, "thought")));
            continue;
        }

        o = ngx_http_ai_gateway_json_get(part, "functionCall");

        if (!YAJL_IS_OBJECT(o)) {
            continue;
        }

        if (ngx_http_ai_gateway_json_str(ngx_http_ai_gateway_json_get(o,
                                                                      "name"),
                                         &name)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        ngx_str_null(&signature);
        (void) ngx_http_ai_gateway_json_str(
                   ngx_http_ai_gateway_json_get(part, "thoughtSignature"),
                   &signature);

        ngx_http_ai_gateway_call_id(ch->choice[i].calls, &id, buf);

        n = ngx_http_ai_gateway_chunk_call(ch, i, &id, &name, &signature);

        /* Gemini sends the arguments whole: one fragment */

        o = ngx_http_ai_gateway_json_get(o, "args");

        if (YAJL_IS_OBJECT(o)) {
            rc = ngx_http_ai_gateway_stream_args(s, i, n, o);
            if (rc != NGX_OK) {
                return rc;
            }

        } else {
            ngx_str_set(&text, "{}");
            ngx_http_ai_gateway_chunk_args(ch, i, n, &text);
        }
    }

    reason = ngx_http_ai_gateway_json_get(cand, "finishReason");

    if (YAJL_IS_STRING(reason)) {
        ngx_http_ai_gateway_chunk_finish(ch, i,
                     ngx_http_ai_gateway_gemini_finish(reason,
                                                       ch->choice[i].calls));
    }

    return NGX_OK;
}


/*
 * The body ended: the usage chunk and [DONE] when it ended normally and
 * every started choice had its finishReason; else an error event (a cut
 * stream never looks complete).
 */

static ngx_int_t
ngx_http_ai_gateway_gemini_end(ngx_http_ai_gateway_stream_t *s,
    ngx_uint_t complete)
{
    ngx_str_t                      message;
    ngx_uint_t                     i, started, finished;
    ngx_http_ai_gateway_chunks_t  *ch;

    ch = &s->chunks;

    started = 0;
    finished = 0;

    for (i = 0; i < NGX_HTTP_AI_GATEWAY_MAX_CHOICES; i++) {
        started += ch->choice[i].started;
        finished += ch->choice[i].finished;
    }

    if (complete && started && finished == started) {
        ngx_http_ai_gateway_chunk_end(ch);
        return NGX_OK;
    }

    if (complete) {
        ngx_str_set(&message,
                    "the provider's stream ended without a finishReason");

    } else {
        ngx_str_set(&message, "the provider's stream was cut short");
    }

    ngx_http_ai_gateway_chunk_error(ch, &message, "server_error", NULL);

    return NGX_OK;
}
