
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_gateway_openai.h"


/*
 * OpenAI Chat Completions to the Anthropic Messages API and back; the
 * mapping is documented in docs/unified-api.md.
 */


/* max_tokens when the client sets none (Anthropic requires it) */
#define NGX_HTTP_AI_GATEWAY_ANTHROPIC_MAX_TOKENS  4096


#define NGX_HTTP_AI_GATEWAY_BLOCK_NONE      0
#define NGX_HTTP_AI_GATEWAY_BLOCK_TEXT      1
#define NGX_HTTP_AI_GATEWAY_BLOCK_TOOL      2
#define NGX_HTTP_AI_GATEWAY_BLOCK_THINKING  3
#define NGX_HTTP_AI_GATEWAY_BLOCK_OTHER     4


/* Anthropic's token counts; a later report replaces what it repeats */

typedef struct {
    uint64_t                       input;
    uint64_t                       cache_read;
    uint64_t                       cache_creation;
    uint64_t                       output;
} ngx_http_ai_gateway_anthropic_usage_t;


typedef struct {
    ngx_http_ai_gateway_anthropic_usage_t  usage;
    const char                    *finish;
    long long                      block;      /* the open block's index */
    ngx_uint_t                     kind;       /* and its kind */
    ngx_uint_t                     call;       /* its tool call */
    unsigned                       stopped:1;  /* message_stop came */
} ngx_http_ai_gateway_anthropic_stream_t;


static ngx_int_t ngx_http_ai_gateway_anthropic_refuse(
    ngx_http_ai_gateway_openai_req_t *r);
static ngx_int_t ngx_http_ai_gateway_anthropic_user(
    ngx_http_ai_gateway_openai_req_t *r, ngx_http_ai_gateway_gen_t *gen,
    yajl_val m, void *data);
static ngx_int_t ngx_http_ai_gateway_anthropic_assistant(
    ngx_http_ai_gateway_openai_req_t *r, ngx_http_ai_gateway_gen_t *gen,
    yajl_val m, void *data);
static ngx_int_t ngx_http_ai_gateway_anthropic_blocks(
    ngx_http_ai_gateway_openai_req_t *r, yajl_val m, yajl_val *blocks);
static ngx_int_t ngx_http_ai_gateway_anthropic_result(
    ngx_http_ai_gateway_openai_req_t *r, ngx_http_ai_gateway_gen_t *gen,
    yajl_val m, void *data);
static void ngx_http_ai_gateway_anthropic_source(
    ngx_http_ai_gateway_gen_t *gen, ngx_http_ai_gateway_part_t *part);
static void ngx_http_ai_gateway_anthropic_tools(
    ngx_http_ai_gateway_openai_req_t *r, ngx_http_ai_gateway_gen_t *gen);
static void ngx_http_ai_gateway_anthropic_tool(ngx_http_ai_gateway_gen_t *gen,
    ngx_http_ai_gateway_tool_t *tool);
static void ngx_http_ai_gateway_anthropic_usage(yajl_val v,
    ngx_http_ai_gateway_anthropic_usage_t *au,
    ngx_http_ai_gateway_usage_t *u);
static ngx_int_t ngx_http_ai_gateway_anthropic_event(
    ngx_http_ai_gateway_stream_t *s, ngx_http_ai_gateway_sse_event_t *ev,
    yajl_val json);
static ngx_int_t ngx_http_ai_gateway_anthropic_block(
    ngx_http_ai_gateway_stream_t *s, yajl_val json);
static ngx_int_t ngx_http_ai_gateway_anthropic_delta(
    ngx_http_ai_gateway_stream_t *s, yajl_val json);
static ngx_int_t ngx_http_ai_gateway_anthropic_end(
    ngx_http_ai_gateway_stream_t *s, ngx_uint_t complete);


static ngx_http_ai_gateway_map_t  ngx_http_ai_gateway_anthropic_finish[] = {
    { ngx_string("end_turn"), "stop" },
    { ngx_string("stop_sequence"), "stop" },
    { ngx_string("pause_turn"), "stop" },
    { ngx_string("max_tokens"), "length" },
    { ngx_string("model_context_window_exceeded"), "length" },
    { ngx_string("tool_use"), "tool_calls" },
    { ngx_string("refusal"), "content_filter" },
    { ngx_null_string, NULL }
};


static ngx_http_ai_gateway_map_t  ngx_http_ai_gateway_anthropic_errors[] = {
    { ngx_string("invalid_request_error"), "invalid_request_error" },
    { ngx_string("not_found_error"), "invalid_request_error" },
    { ngx_string("request_too_large"), "invalid_request_error" },
    { ngx_string("authentication_error"), "authentication_error" },
    { ngx_string("permission_error"), "permission_error" },
    { ngx_string("billing_error"), "insufficient_quota" },
    { ngx_string("rate_limit_error"), "rate_limit_error" },
    { ngx_string("api_error"), "server_error" },
    { ngx_string("overloaded_error"), "server_error" },
    { ngx_string("timeout_error"), "server_error" },
    { ngx_null_string, NULL }
};


/*
 * The Messages API for the shared code: a turn's content is its "content"
 * (tool results: tool_result blocks of a user turn); errors are
 * {"type":"error","error":{"type","message"}}, their code Anthropic's
 * error type.
 */

static ngx_http_ai_gateway_dialect_t  ngx_http_ai_gateway_anthropic = {
    "anthropic",
    ngx_http_ai_gateway_anthropic_refuse,
    "content",
    ngx_http_ai_gateway_anthropic_user,
    ngx_http_ai_gateway_anthropic_assistant,
    ngx_http_ai_gateway_anthropic_result,
    ngx_http_ai_gateway_anthropic_tool,
    ngx_http_ai_gateway_anthropic_errors,
    "type",
    0,
    0
};


/* the request */

ngx_int_t
ngx_http_ai_gateway_anthropic_request(ngx_pool_t *pool, yajl_val req,
    ngx_http_ai_gateway_compat_t *c, ngx_str_t *out, ngx_str_t *err)
{
    ngx_int_t                         rc;
    ngx_array_t                       system;
    ngx_http_ai_gateway_gen_t         gen;
    ngx_http_ai_gateway_openai_req_t  r;

    rc = ngx_http_ai_gateway_openai_request(pool, req,
                                            &ngx_http_ai_gateway_anthropic, c,
                                            &r, &gen, err);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_http_ai_gateway_gen_literal(&gen, "model");
    ngx_http_ai_gateway_gen_string(&gen, c->model.len ? &c->model : &r.model);

    ngx_http_ai_gateway_gen_literal(&gen, "max_tokens");

    if (r.has_max_tokens) {
        ngx_http_ai_gateway_gen_int(&gen, r.max_tokens);

    } else {
        /* room for the answer after the thinking budget */
        ngx_http_ai_gateway_gen_int(&gen,
                                    NGX_HTTP_AI_GATEWAY_ANTHROPIC_MAX_TOKENS
                                    + r.budget);
    }

    /* system and developer messages, in order, as top-level text blocks */

    rc = ngx_http_ai_gateway_openai_system(&r, &system);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_ai_gateway_openai_some(&system)) {
        ngx_http_ai_gateway_gen_literal(&gen, "system");
        ngx_http_ai_gateway_gen_array(&gen);
        (void) ngx_http_ai_gateway_gen_texts(&gen, &system, 1);
        ngx_http_ai_gateway_gen_array_end(&gen);
    }

    ngx_http_ai_gateway_gen_literal(&gen, "messages");

    rc = ngx_http_ai_gateway_openai_messages(&r, &gen, NULL);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_http_ai_gateway_anthropic_tools(&r, &gen);

    if (r.stop.nelts) {
        ngx_http_ai_gateway_gen_literal(&gen, "stop_sequences");
        ngx_http_ai_gateway_gen_stop(&gen, &r);
    }

    /* numbers are passed as sent: the provider checks their ranges */

    ngx_http_ai_gateway_gen_number(&gen, "temperature", r.temperature);
    ngx_http_ai_gateway_gen_number(&gen, "top_p", r.top_p);
    ngx_http_ai_gateway_gen_number(&gen, "top_k", r.top_k);

    if (r.user.len) {
        ngx_http_ai_gateway_gen_literal(&gen, "metadata");
        ngx_http_ai_gateway_gen_map(&gen);
        ngx_http_ai_gateway_gen_literal(&gen, "user_id");
        ngx_http_ai_gateway_gen_string(&gen, &r.user);
        ngx_http_ai_gateway_gen_map_end(&gen);
    }

    if (r.has_effort) {
        ngx_http_ai_gateway_gen_literal(&gen, "thinking");
        ngx_http_ai_gateway_gen_map(&gen);
        ngx_http_ai_gateway_gen_literal(&gen, "type");

        if (r.budget) {
            ngx_http_ai_gateway_gen_literal(&gen, "enabled");
            ngx_http_ai_gateway_gen_literal(&gen, "budget_tokens");
            ngx_http_ai_gateway_gen_int(&gen, r.budget);

        } else {
            ngx_http_ai_gateway_gen_literal(&gen, "disabled");
        }

        ngx_http_ai_gateway_gen_map_end(&gen);
    }

    if (r.format == NGX_HTTP_AI_GATEWAY_FORMAT_SCHEMA) {
        /* structured outputs */
        ngx_http_ai_gateway_gen_literal(&gen, "output_config");
        ngx_http_ai_gateway_gen_map(&gen);
        ngx_http_ai_gateway_gen_literal(&gen, "format");
        ngx_http_ai_gateway_gen_map(&gen);
        ngx_http_ai_gateway_gen_literal(&gen, "type");
        ngx_http_ai_gateway_gen_literal(&gen, "json_schema");
        ngx_http_ai_gateway_gen_literal(&gen, "schema");
        ngx_http_ai_gateway_gen_value(&gen, r.schema);
        ngx_http_ai_gateway_gen_map_end(&gen);
        ngx_http_ai_gateway_gen_map_end(&gen);
    }

    if (r.stream) {
        ngx_http_ai_gateway_gen_literal(&gen, "stream");
        ngx_http_ai_gateway_gen_bool(&gen, 1);
    }

    return ngx_http_ai_gateway_openai_done(&r, &gen, out);
}


/* what the Messages API cannot express */

static ngx_int_t
ngx_http_ai_gateway_anthropic_refuse(ngx_http_ai_gateway_openai_req_t *r)
{
    if (r->n != 1) {
        return ngx_http_ai_gateway_openai_fail(r,
                                       "n must be 1 for anthropic models");
    }

    if (r->seed != NULL) {
        return ngx_http_ai_gateway_openai_fail(r,
                              "\"seed\" is not supported for anthropic models");
    }

    if (r->presence_penalty != NULL
        && !(YAJL_IS_DOUBLE(r->presence_penalty)
             && r->presence_penalty->u.number.d == 0))
    {
        return ngx_http_ai_gateway_openai_fail(r,
                  "\"presence_penalty\" is not supported for anthropic models");
    }

    if (r->frequency_penalty != NULL
        && !(YAJL_IS_DOUBLE(r->frequency_penalty)
             && r->frequency_penalty->u.number.d == 0))
    {
        return ngx_http_ai_gateway_openai_fail(r,
                 "\"frequency_penalty\" is not supported for anthropic models");
    }

    if (r->format == NGX_HTTP_AI_GATEWAY_FORMAT_JSON) {
        return ngx_http_ai_gateway_openai_fail(r,
                  "\"response_format\" json_object is not supported for "
                  "anthropic models, use json_schema");
    }

    if (r->budget && r->has_max_tokens && r->max_tokens <= r->budget) {
        return ngx_http_ai_gateway_openai_fail(r,
                  "the maximum tokens must be more than the thinking budget "
                  "of reasoning_effort \"%V\" (%i) for anthropic models",
                  &r->effort, r->budget);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_anthropic_user(ngx_http_ai_gateway_openai_req_t *r,
    ngx_http_ai_gateway_gen_t *gen, yajl_val m, void *data)
{
    yajl_val                     content;
    ngx_int_t                    rc;
    ngx_uint_t                   i;
    ngx_array_t                  parts;
    ngx_http_ai_gateway_part_t  *part;

    rc = ngx_http_ai_gateway_openai_user(r, gen, m, &parts);
    if (rc != NGX_OK) {
        return rc;
    }

    content = ngx_http_ai_gateway_json_get(m, "content");

    if (YAJL_IS_STRING(content)) {
        ngx_http_ai_gateway_gen_value(gen, content);
        ngx_http_ai_gateway_gen_map_end(gen);
        return NGX_OK;
    }

    ngx_http_ai_gateway_gen_array(gen);

    part = parts.elts;

    for (i = 0; i < parts.nelts; i++) {

        if (part[i].type == NGX_HTTP_AI_GATEWAY_PART_TEXT) {
            (void) ngx_http_ai_gateway_gen_text(gen, &part[i].text, 1);
            continue;
        }

        /* images, and files: images and PDF documents */

        if (part[i].type == NGX_HTTP_AI_GATEWAY_PART_IMAGE
            || (part[i].mime.len > 6
                && ngx_strncasecmp(part[i].mime.data, (u_char *) "image/", 6)
                   == 0))
        {
            ngx_http_ai_gateway_gen_map(gen);
            ngx_http_ai_gateway_gen_literal(gen, "type");
            ngx_http_ai_gateway_gen_literal(gen, "image");

        } else if (part[i].mime.len == sizeof("application/pdf") - 1
                   && ngx_strncasecmp(part[i].mime.data,
                                      (u_char *) "application/pdf",
                                      part[i].mime.len)
                      == 0)
        {
            ngx_http_ai_gateway_gen_map(gen);
            ngx_http_ai_gateway_gen_literal(gen, "type");
            ngx_http_ai_gateway_gen_literal(gen, "document");

            if (part[i].filename.len) {
                ngx_http_ai_gateway_gen_literal(gen, "title");
                ngx_http_ai_gateway_gen_string(gen, &part[i].filename);
            }

        } else {
            return ngx_http_ai_gateway_openai_fail(r,
                          "files of type \"%V\" are not supported for "
                          "anthropic models", &part[i].mime);
        }

        ngx_http_ai_gateway_anthropic_source(gen, &part[i]);
        ngx_http_ai_gateway_gen_map_end(gen);
    }

    ngx_http_ai_gateway_gen_array_end(gen);
    ngx_http_ai_gateway_gen_map_end(gen);

    return NGX_OK;
}


/* an image's or a document's "source": the URL, or the base64 data */

static void
ngx_http_ai_gateway_anthropic_source(ngx_http_ai_gateway_gen_t *gen,
    ngx_http_ai_gateway_part_t *part)
{
    ngx_http_ai_gateway_gen_literal(gen, "source");
    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_literal(gen, "type");

    if (part->url.len) {
        ngx_http_ai_gateway_gen_literal(gen, "url");
        ngx_http_ai_gateway_gen_literal(gen, "url");
        ngx_http_ai_gateway_gen_string(gen, &part->url);

    } else {
        ngx_http_ai_gateway_gen_literal(gen, "base64");
        ngx_http_ai_gateway_gen_literal(gen, "media_type");
        ngx_http_ai_gateway_gen_string(gen, &part->mime);
        ngx_http_ai_gateway_gen_literal(gen, "data");
        ngx_http_ai_gateway_gen_string(gen, &part->data);
    }

    ngx_http_ai_gateway_gen_map_end(gen);
}


/*
 * The thinking blocks the client got with the previous answer (required by
 * Anthropic with tool use and thinking on), then the text, then the tool
 * calls as tool_use blocks with parsed input
 */

static ngx_int_t
ngx_http_ai_gateway_anthropic_assistant(ngx_http_ai_gateway_openai_req_t *r,
    ngx_http_ai_gateway_gen_t *gen, yajl_val m, void *data)
{
    yajl_val                     content, blocks;
    ngx_int_t                    rc;
    ngx_uint_t                   i;
    ngx_array_t                  parts, calls;
    ngx_http_ai_gateway_call_t  *call;

    rc = ngx_http_ai_gateway_anthropic_blocks(r, m, &blocks);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_ai_gateway_openai_calls(r, m, &calls);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_ai_gateway_openai_parts(r, m, 0, &parts);
    if (rc != NGX_OK) {
        return rc;
    }

    if (calls.nelts == 0 && !ngx_http_ai_gateway_openai_some(&parts)) {
        /* nothing said: Anthropic refuses empty turns */
        return NGX_OK;
    }

    ngx_http_ai_gateway_gen_turn(gen, r, "assistant");

    content = ngx_http_ai_gateway_json_get(m, "content");

    if (calls.nelts == 0 && blocks == NULL && YAJL_IS_STRING(content)) {
        ngx_http_ai_gateway_gen_value(gen, content);
        ngx_http_ai_gateway_gen_map_end(gen);
        return NGX_OK;
    }

    ngx_http_ai_gateway_gen_array(gen);

    for (i = 0; blocks && i < blocks->u.array.len; i++) {
        ngx_http_ai_gateway_gen_block(gen, blocks->u.array.values[i]);
    }

    (void) ngx_http_ai_gateway_gen_texts(gen, &parts, 1);

    call = calls.elts;

    for (i = 0; i < calls.nelts; i++) {
        ngx_http_ai_gateway_gen_map(gen);
        ngx_http_ai_gateway_gen_literal(gen, "type");
        ngx_http_ai_gateway_gen_literal(gen, "tool_use");
        ngx_http_ai_gateway_gen_literal(gen, "id");
        ngx_http_ai_gateway_gen_string(gen, &call[i].id);
        ngx_http_ai_gateway_gen_literal(gen, "name");
        ngx_http_ai_gateway_gen_string(gen, &call[i].name);
        ngx_http_ai_gateway_gen_literal(gen, "input");
        ngx_http_ai_gateway_gen_value(gen, call[i].args);
        ngx_http_ai_gateway_gen_map_end(gen);
    }

    ngx_http_ai_gateway_gen_array_end(gen);
    ngx_http_ai_gateway_gen_map_end(gen);

    return NGX_OK;
}


/*
 * "thinking_blocks": [{"type":"thinking","thinking","signature"} or
 * {"type":"redacted_thinking","data"}], as the gateway returned them;
 * *blocks is NULL when there are none
 */

static ngx_int_t
ngx_http_ai_gateway_anthropic_blocks(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val m, yajl_val *blocks)
{
    size_t     i;
    yajl_val   v, b, type;
    ngx_str_t  s;

    *blocks = NULL;

    v = ngx_http_ai_gateway_json_get(m, "thinking_blocks");

    if (v == NULL || YAJL_IS_NULL(v)) {
        return NGX_OK;
    }

    if (!YAJL_IS_ARRAY(v)) {
        goto invalid;
    }

    for (i = 0; i < v->u.array.len; i++) {
        b = v->u.array.values[i];
        type = ngx_http_ai_gateway_json_get(b, "type");

        if (ngx_http_ai_gateway_json_is(type, "thinking")) {
            if (ngx_http_ai_gateway_json_str(
                    ngx_http_ai_gateway_json_get(b, "thinking"), &s)
                != NGX_OK
                || ngx_http_ai_gateway_json_str(
                       ngx_http_ai_gateway_json_get(b, "signature"), &s)
                   != NGX_OK)
            {
                goto invalid;
            }

            continue;
        }

        if (!ngx_http_ai_gateway_json_is(type, "redacted_thinking")
            || ngx_http_ai_gateway_json_str(
                   ngx_http_ai_gateway_json_get(b, "data"), &s)
               != NGX_OK)
        {
            goto invalid;
        }
    }

    *blocks = v->u.array.len ? v : NULL;

    return NGX_OK;

invalid:

    return ngx_http_ai_gateway_openai_fail(r,
                 "messages[%ui].thinking_blocks must be an array of "
                 "{\"type\":\"thinking\",\"thinking\",\"signature\"} and "
                 "{\"type\":\"redacted_thinking\",\"data\"} blocks",
                 r->msg);
}


/* a tool message: a tool_result block */

static ngx_int_t
ngx_http_ai_gateway_anthropic_result(ngx_http_ai_gateway_openai_req_t *r,
    ngx_http_ai_gateway_gen_t *gen, yajl_val m, void *data)
{
    yajl_val     content;
    ngx_int_t    rc;
    ngx_str_t    id;
    ngx_array_t  parts;

    rc = ngx_http_ai_gateway_openai_call_id(r, m, &id);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_ai_gateway_openai_parts(r, m, 0, &parts);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_literal(gen, "type");
    ngx_http_ai_gateway_gen_literal(gen, "tool_result");
    ngx_http_ai_gateway_gen_literal(gen, "tool_use_id");
    ngx_http_ai_gateway_gen_string(gen, &id);

    content = ngx_http_ai_gateway_json_get(m, "content");

    if (YAJL_IS_STRING(content)) {
        ngx_http_ai_gateway_gen_literal(gen, "content");
        ngx_http_ai_gateway_gen_value(gen, content);

    } else if (parts.nelts) {
        ngx_http_ai_gateway_gen_literal(gen, "content");
        ngx_http_ai_gateway_gen_array(gen);
        (void) ngx_http_ai_gateway_gen_texts(gen, &parts, 1);
        ngx_http_ai_gateway_gen_array_end(gen);
    }

    ngx_http_ai_gateway_gen_map_end(gen);

    return NGX_OK;
}


static void
ngx_http_ai_gateway_anthropic_tools(ngx_http_ai_gateway_openai_req_t *r,
    ngx_http_ai_gateway_gen_t *gen)
{
    if (r->tools.nelts == 0) {
        return;
    }

    ngx_http_ai_gateway_gen_literal(gen, "tools");
    ngx_http_ai_gateway_gen_tools(gen, r);

    if (r->tool_choice == NGX_HTTP_AI_GATEWAY_CHOICE_UNSET && !r->no_parallel)
    {
        return;
    }

    ngx_http_ai_gateway_gen_literal(gen, "tool_choice");
    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_literal(gen, "type");

    switch (r->tool_choice) {

    case NGX_HTTP_AI_GATEWAY_CHOICE_NONE:
        ngx_http_ai_gateway_gen_literal(gen, "none");
        ngx_http_ai_gateway_gen_map_end(gen);
        return;

    case NGX_HTTP_AI_GATEWAY_CHOICE_REQUIRED:
        ngx_http_ai_gateway_gen_literal(gen, "any");
        break;

    case NGX_HTTP_AI_GATEWAY_CHOICE_FUNCTION:
        ngx_http_ai_gateway_gen_literal(gen, "tool");
        ngx_http_ai_gateway_gen_literal(gen, "name");
        ngx_http_ai_gateway_gen_string(gen, &r->tool_name);
        break;

    default: /* auto, or unset with parallel_tool_calls: false */
        ngx_http_ai_gateway_gen_literal(gen, "auto");
        break;
    }

    if (r->no_parallel) {
        ngx_http_ai_gateway_gen_literal(gen, "disable_parallel_tool_use");
        ngx_http_ai_gateway_gen_bool(gen, 1);
    }

    ngx_http_ai_gateway_gen_map_end(gen);
}


/* a tool's "input_schema", always there, and "strict" */

static void
ngx_http_ai_gateway_anthropic_tool(ngx_http_ai_gateway_gen_t *gen,
    ngx_http_ai_gateway_tool_t *tool)
{
    ngx_http_ai_gateway_gen_literal(gen, "input_schema");

    if (tool->parameters != NULL) {
        ngx_http_ai_gateway_gen_value(gen, tool->parameters);

    } else {
        /* a function without parameters */
        ngx_http_ai_gateway_gen_map(gen);
        ngx_http_ai_gateway_gen_literal(gen, "type");
        ngx_http_ai_gateway_gen_literal(gen, "object");
        ngx_http_ai_gateway_gen_literal(gen, "properties");
        ngx_http_ai_gateway_gen_map(gen);
        ngx_http_ai_gateway_gen_map_end(gen);
        ngx_http_ai_gateway_gen_map_end(gen);
    }

    if (tool->strict != NULL) {
        ngx_http_ai_gateway_gen_literal(gen, "strict");
        ngx_http_ai_gateway_gen_value(gen, tool->strict);
    }
}


/*
 * Usage: the fields present in v replace the ones known.  prompt_tokens
 * counts every input token (input_tokens excludes cache reads and cache
 * writes), cached_tokens the cache reads, cache_write the cache writes.
 */

static void
ngx_http_ai_gateway_anthropic_usage(yajl_val v,
    ngx_http_ai_gateway_anthropic_usage_t *au, ngx_http_ai_gateway_usage_t *u)
{
    (void) ngx_http_ai_gateway_json_count(
               ngx_http_ai_gateway_json_get(v, "input_tokens"), &au->input);
    (void) ngx_http_ai_gateway_json_count(
               ngx_http_ai_gateway_json_get(v, "cache_read_input_tokens"),
               &au->cache_read);
    (void) ngx_http_ai_gateway_json_count(
               ngx_http_ai_gateway_json_get(v, "cache_creation_input_tokens"),
               &au->cache_creation);
    (void) ngx_http_ai_gateway_json_count(
               ngx_http_ai_gateway_json_get(v, "output_tokens"), &au->output);

    u->prompt = au->input + au->cache_read + au->cache_creation;
    u->completion = au->output;
    u->cached = au->cache_read;
    u->cache_write = au->cache_creation;
    u->reasoning = 0;
}


/* the response */

ngx_int_t
ngx_http_ai_gateway_anthropic_response(ngx_pool_t *pool, u_char *body,
    size_t len, ngx_http_ai_gateway_compat_t *c, ngx_str_t *out)
{
    size_t                                  i;
    yajl_val                                v, content, b, type, o, *bp;
    ngx_int_t                               rc;
    ngx_str_t                               text;
    ngx_http_ai_gateway_choice_t           *ch;
    ngx_http_ai_gateway_tool_call_t        *call;
    ngx_http_ai_gateway_completion_t        cmp;
    ngx_http_ai_gateway_anthropic_usage_t   au;

    rc = ngx_http_ai_gateway_json_parse(pool, body, len, &v);
    if (rc != NGX_OK) {
        return rc;
    }

    content = ngx_http_ai_gateway_json_get(v, "content");

    if (!YAJL_IS_ARRAY(content)) {
        return NGX_DECLINED;
    }

    if (ngx_http_ai_gateway_completion_init(&cmp, pool) != NGX_OK) {
        return NGX_ERROR;
    }

    (void) ngx_http_ai_gateway_json_str(ngx_http_ai_gateway_json_get(v, "id"),
                                        &cmp.id);
    (void) ngx_http_ai_gateway_json_str(ngx_http_ai_gateway_json_get(v,
                                                                     "model"),
                                        &cmp.model);

    ch = ngx_http_ai_gateway_completion_choice(&cmp, 0);
    if (ch == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < content->u.array.len; i++) {
        b = content->u.array.values[i];
        type = ngx_http_ai_gateway_json_get(b, "type");

        if (ngx_http_ai_gateway_json_is(type, "text")) {
            if (ngx_http_ai_gateway_json_str(
                    ngx_http_ai_gateway_json_get(b, "text"), &text)
                == NGX_OK
                && ngx_http_ai_gateway_choice_text(ch, &text, 0) != NGX_OK)
            {
                return NGX_ERROR;
            }

            continue;
        }

        if (ngx_http_ai_gateway_json_is(type, "thinking")
            || ngx_http_ai_gateway_json_is(type, "redacted_thinking"))
        {
            if (ngx_http_ai_gateway_json_str(
                    ngx_http_ai_gateway_json_get(b, "thinking"), &text)
                == NGX_OK
                && ngx_http_ai_gateway_choice_text(ch, &text, 1) != NGX_OK)
            {
                return NGX_ERROR;
            }

            bp = ngx_array_push(&ch->blocks);
            if (bp == NULL) {
                return NGX_ERROR;
            }

            *bp = b;

            continue;
        }

        if (!ngx_http_ai_gateway_json_is(type, "tool_use")) {
            /* server tool blocks */
            continue;
        }

        call = ngx_http_ai_gateway_choice_call(ch);
        if (call == NULL) {
            return NGX_ERROR;
        }

        (void) ngx_http_ai_gateway_json_str(
                   ngx_http_ai_gateway_json_get(b, "id"), &call->id);
        (void) ngx_http_ai_gateway_json_str(
                   ngx_http_ai_gateway_json_get(b, "name"), &call->name);

        o = ngx_http_ai_gateway_json_get(b, "input");

        rc = ngx_http_ai_gateway_call_args(pool, call, o);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    ch->finish = ngx_http_ai_gateway_map(ngx_http_ai_gateway_anthropic_finish,
                                     ngx_http_ai_gateway_json_get(v,
                                                              "stop_reason"),
                                     "stop");

    o = ngx_http_ai_gateway_json_get(v, "usage");

    if (YAJL_IS_OBJECT(o)) {
        ngx_memzero(&au, sizeof(ngx_http_ai_gateway_anthropic_usage_t));
        ngx_http_ai_gateway_anthropic_usage(o, &au, &cmp.usage);
        cmp.has_usage = 1;
    }

    return ngx_http_ai_gateway_completion_done(&cmp, c, out);
}


/* an error body; the code is Anthropic's error type */

ngx_int_t
ngx_http_ai_gateway_anthropic_error(ngx_pool_t *pool, ngx_uint_t status,
    u_char *body, size_t len, ngx_str_t *out)
{
    return ngx_http_ai_gateway_error_native(pool,
                                            &ngx_http_ai_gateway_anthropic,
                                            status, body, len, out);
}


/* the stream */

ngx_http_ai_gateway_stream_t *
ngx_http_ai_gateway_anthropic_stream(ngx_pool_t *pool,
    ngx_http_ai_gateway_compat_t *c)
{
    ngx_http_ai_gateway_stream_t            *s;
    ngx_http_ai_gateway_anthropic_stream_t  *as;

    s = ngx_http_ai_gateway_stream_alloc(pool, c,
                              ngx_http_ai_gateway_anthropic_event,
                              ngx_http_ai_gateway_anthropic_end,
                              sizeof(ngx_http_ai_gateway_anthropic_stream_t));
    if (s == NULL) {
        return NULL;
    }

    as = s->data;
    as->block = -1;

    return s;
}


/*
 * message_start: the id, model and input tokens, the role chunk;
 * content blocks: text and thinking deltas, tool calls numbered 0, 1, ...
 * in the message; message_delta: the stop reason and the final counts;
 * message_stop: the finish chunk.  The usage chunk and [DONE] wait for the
 * end of the body: an error after message_stop is still an error, and
 * content after it breaks the protocol (chunk.c).
 */

static ngx_int_t
ngx_http_ai_gateway_anthropic_event(ngx_http_ai_gateway_stream_t *s,
    ngx_http_ai_gateway_sse_event_t *ev, yajl_val json)
{
    yajl_val                                 type, o;
    ngx_str_t                                id, model;
    ngx_http_ai_gateway_usage_t              u;
    ngx_http_ai_gateway_anthropic_stream_t  *as;

    as = s->data;

    type = ngx_http_ai_gateway_json_get(json, "type");

    if (ngx_http_ai_gateway_json_is(type, "error")
        || (ev->name.len == 5 && ngx_strncmp(ev->name.data, "error", 5) == 0))
    {
        ngx_http_ai_gateway_stream_error(s, &ngx_http_ai_gateway_anthropic,
                                         ngx_http_ai_gateway_json_get(json,
                                                                    "error"));
        return NGX_OK;
    }

    if (ev->raw) {
        /* JSON outside the SSE framing, and not an error */
        return NGX_DECLINED;
    }

    if (ngx_http_ai_gateway_json_is(type, "content_block_delta")) {
        return ngx_http_ai_gateway_anthropic_delta(s, json);
    }

    if (ngx_http_ai_gateway_json_is(type, "content_block_start")) {
        return ngx_http_ai_gateway_anthropic_block(s, json);
    }

    if (ngx_http_ai_gateway_json_is(type, "content_block_stop")) {
        as->block = -1;
        as->kind = NGX_HTTP_AI_GATEWAY_BLOCK_NONE;
        return NGX_OK;
    }

    if (ngx_http_ai_gateway_json_is(type, "message_start")) {
        o = ngx_http_ai_gateway_json_get(json, "message");

        ngx_str_null(&id);
        ngx_str_null(&model);

        (void) ngx_http_ai_gateway_json_str(
                   ngx_http_ai_gateway_json_get(o, "id"), &id);
        (void) ngx_http_ai_gateway_json_str(
                   ngx_http_ai_gateway_json_get(o, "model"), &model);

        ngx_http_ai_gateway_chunks_meta(&s->chunks, &id, &model);

        o = ngx_http_ai_gateway_json_get(o, "usage");

        if (YAJL_IS_OBJECT(o)) {
            ngx_http_ai_gateway_anthropic_usage(o, &as->usage, &u);
            ngx_http_ai_gateway_chunks_usage(&s->chunks, &u);
        }

        ngx_http_ai_gateway_chunk_role(&s->chunks, 0);
        return NGX_OK;
    }

    if (ngx_http_ai_gateway_json_is(type, "message_delta")) {
        o = ngx_http_ai_gateway_json_get(json, "delta");
        o = ngx_http_ai_gateway_json_get(o, "stop_reason");

        if (YAJL_IS_STRING(o)) {
            as->finish = ngx_http_ai_gateway_map(
                                     ngx_http_ai_gateway_anthropic_finish, o,
                                     "stop");
        }

        /* the final counts: they replace those of message_start */

        o = ngx_http_ai_gateway_json_get(json, "usage");

        if (YAJL_IS_OBJECT(o)) {
            ngx_http_ai_gateway_anthropic_usage(o, &as->usage, &u);
            ngx_http_ai_gateway_chunks_usage(&s->chunks, &u);
        }

        return NGX_OK;
    }

    if (ngx_http_ai_gateway_json_is(type, "message_stop")) {
        ngx_http_ai_gateway_chunk_finish(&s->chunks, 0,
                                         as->finish ? as->finish : "stop");
        as->stopped = 1;
        return NGX_OK;
    }

    /* "ping" and event types added later */

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_anthropic_block(ngx_http_ai_gateway_stream_t *s,
    yajl_val json)
{
    yajl_val                                 index, b, type, o;
    ngx_str_t                                text, id, name;
    ngx_http_ai_gateway_anthropic_stream_t  *as;

    as = s->data;

    index = ngx_http_ai_gateway_json_get(json, "index");
    b = ngx_http_ai_gateway_json_get(json, "content_block");
    type = ngx_http_ai_gateway_json_get(b, "type");

    as->block = YAJL_IS_INTEGER(index) ? index->u.number.i : -1;

    if (ngx_http_ai_gateway_json_is(type, "text")) {
        as->kind = NGX_HTTP_AI_GATEWAY_BLOCK_TEXT;

        if (ngx_http_ai_gateway_json_str(ngx_http_ai_gateway_json_get(b,
                                                                      "text"),
                                         &text)
            == NGX_OK)
        {
            ngx_http_ai_gateway_chunk_text(&s->chunks, 0, &text, 0);
        }

        return NGX_OK;
    }

    if (ngx_http_ai_gateway_json_is(type, "thinking")) {
        as->kind = NGX_HTTP_AI_GATEWAY_BLOCK_THINKING;

        if (ngx_http_ai_gateway_json_str(
                ngx_http_ai_gateway_json_get(b, "thinking"), &text)
            == NGX_OK)
        {
            ngx_http_ai_gateway_chunk_text(&s->chunks, 0, &text, 1);
        }

        return NGX_OK;
    }

    if (ngx_http_ai_gateway_json_is(type, "redacted_thinking")) {
        as->kind = NGX_HTTP_AI_GATEWAY_BLOCK_OTHER;
        ngx_http_ai_gateway_chunk_block(&s->chunks, 0, b, NULL);
        return NGX_OK;
    }

    if (!ngx_http_ai_gateway_json_is(type, "tool_use")) {
        /* server tool blocks: not shown */
        as->kind = NGX_HTTP_AI_GATEWAY_BLOCK_OTHER;
        return NGX_OK;
    }

    if (ngx_http_ai_gateway_json_str(ngx_http_ai_gateway_json_get(b, "id"),
                                     &id)
        != NGX_OK
        || ngx_http_ai_gateway_json_str(ngx_http_ai_gateway_json_get(b,
                                                                     "name"),
                                        &name)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    as->kind = NGX_HTTP_AI_GATEWAY_BLOCK_TOOL;
    as->call = ngx_http_ai_gateway_chunk_call(&s->chunks, 0, &id, &name, NULL);

    /* the input streams as input_json_delta; one given here is sent whole */

    o = ngx_http_ai_gateway_json_get(b, "input");

    if (YAJL_IS_OBJECT(o) && o->u.object.len) {
        return ngx_http_ai_gateway_stream_args(s, 0, as->call, o);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_anthropic_delta(ngx_http_ai_gateway_stream_t *s,
    yajl_val json)
{
    yajl_val                                 index, d, type;
    ngx_str_t                                text;
    ngx_http_ai_gateway_anthropic_stream_t  *as;

    as = s->data;

    index = ngx_http_ai_gateway_json_get(json, "index");
    d = ngx_http_ai_gateway_json_get(json, "delta");
    type = ngx_http_ai_gateway_json_get(d, "type");

    ngx_str_null(&text);

    if (ngx_http_ai_gateway_json_is(type, "text_delta")) {
        (void) ngx_http_ai_gateway_json_str(
                   ngx_http_ai_gateway_json_get(d, "text"), &text);
        ngx_http_ai_gateway_chunk_text(&s->chunks, 0, &text, 0);
        return NGX_OK;
    }

    if (ngx_http_ai_gateway_json_is(type, "thinking_delta")) {
        (void) ngx_http_ai_gateway_json_str(
                   ngx_http_ai_gateway_json_get(d, "thinking"), &text);
        ngx_http_ai_gateway_chunk_text(&s->chunks, 0, &text, 1);
        return NGX_OK;
    }

    if (ngx_http_ai_gateway_json_is(type, "input_json_delta")) {

        if (as->kind == NGX_HTTP_AI_GATEWAY_BLOCK_OTHER) {
            /* the input of a server tool block: not shown */
            return NGX_OK;
        }

        if (as->kind != NGX_HTTP_AI_GATEWAY_BLOCK_TOOL
            || !YAJL_IS_INTEGER(index)
            || index->u.number.i != as->block)
        {
            /* arguments of no open tool call */
            return NGX_DECLINED;
        }

        (void) ngx_http_ai_gateway_json_str(
                   ngx_http_ai_gateway_json_get(d, "partial_json"), &text);
        ngx_http_ai_gateway_chunk_args(&s->chunks, 0, as->call, &text);
        return NGX_OK;
    }

    if (ngx_http_ai_gateway_json_is(type, "signature_delta")
        && as->kind == NGX_HTTP_AI_GATEWAY_BLOCK_THINKING)
    {
        if (ngx_http_ai_gateway_json_str(
                ngx_http_ai_gateway_json_get(d, "signature"), &text)
            == NGX_OK)
        {
            ngx_http_ai_gateway_chunk_block(&s->chunks, 0, NULL, &text);
        }

        return NGX_OK;
    }

    /* citations_delta */

    return NGX_OK;
}


/*
 * The body ended: the usage chunk and [DONE] when it ended normally after
 * message_stop; else an error event (a cut stream never looks complete).
 */

static ngx_int_t
ngx_http_ai_gateway_anthropic_end(ngx_http_ai_gateway_stream_t *s,
    ngx_uint_t complete)
{
    ngx_str_t                                message;
    ngx_http_ai_gateway_anthropic_stream_t  *as;

    as = s->data;

    if (as->stopped && complete) {
        ngx_http_ai_gateway_chunk_end(&s->chunks);
        return NGX_OK;
    }

    if (complete) {
        ngx_str_set(&message,
                    "the provider's stream ended before message_stop");

    } else {
        ngx_str_set(&message, "the provider's stream was cut short");
    }

    ngx_http_ai_gateway_chunk_error(&s->chunks, &message, "server_error",
                                    NULL);

    return NGX_OK;
}
