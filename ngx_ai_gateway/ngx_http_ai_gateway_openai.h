
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#ifndef _NGX_HTTP_AI_GATEWAY_OPENAI_H_INCLUDED_
#define _NGX_HTTP_AI_GATEWAY_OPENAI_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <yajl/yajl_tree.h>

#include "ngx_http_ai_gateway_json.h"
#include "ngx_http_ai_gateway_translate.h"
#include "ngx_http_ai_gateway_sse.h"


/*
 * What the Unified API translators share, and only they: the OpenAI side
 * of every translation (the request's reading, the "chat.completion"
 * object, the "chat.completion.chunk" stream, the error object, the
 * embeddings request and list) and the stream loop.  The dialects
 * (anthropic.c, gemini.c) only read and write their native API.  The
 * interface the HTTP layer sees is ngx_http_ai_gateway_translate.h, the
 * JSON everything here reads and writes ngx_http_ai_gateway_json.h.
 *
 * Calls point one way: translate.c (the table) to the dialects and the
 * stream loop; the dialects to openai.c and embed.c (requests), chunk.c
 * (the stream loop) and completion.c (the builders of "chat.completion",
 * usage, tool calls and errors); embed.c to openai.c and completion.c,
 * chunk.c to completion.c and the SSE splitter; all of them to the JSON
 * of json.h, none to anything of HTTP.
 */


/* choices ("n", Gemini "candidateCount") a translation handles */
#define NGX_HTTP_AI_GATEWAY_MAX_CHOICES   8

/* the longest provider error text quoted in an error message */
#define NGX_HTTP_AI_GATEWAY_MAX_QUOTE     512


/* a content part of an OpenAI message, checked */

#define NGX_HTTP_AI_GATEWAY_PART_TEXT     1
#define NGX_HTTP_AI_GATEWAY_PART_IMAGE    2   /* url, or mime + data */
#define NGX_HTTP_AI_GATEWAY_PART_FILE     3   /* mime + data, filename */

typedef struct {
    ngx_uint_t                     type;
    ngx_str_t                      text;
    ngx_str_t                      url;        /* an http(s) image URL */
    ngx_str_t                      mime;
    ngx_str_t                      data;       /* base64 */
    ngx_str_t                      filename;
} ngx_http_ai_gateway_part_t;


/* a tool call of an OpenAI assistant message, arguments parsed */

typedef struct {
    ngx_str_t                      id;
    ngx_str_t                      name;
    yajl_val                       args;       /* an object */
    ngx_str_t                      signature;  /* Gemini thought signature */
} ngx_http_ai_gateway_call_t;


/* a function tool of an OpenAI request */

typedef struct {
    ngx_str_t                      name;
    ngx_str_t                      description;
    yajl_val                       parameters; /* NULL when absent */
    yajl_val                       strict;     /* NULL when absent */
} ngx_http_ai_gateway_tool_t;


#define NGX_HTTP_AI_GATEWAY_CHOICE_UNSET     0
#define NGX_HTTP_AI_GATEWAY_CHOICE_AUTO      1
#define NGX_HTTP_AI_GATEWAY_CHOICE_NONE      2
#define NGX_HTTP_AI_GATEWAY_CHOICE_REQUIRED  3
#define NGX_HTTP_AI_GATEWAY_CHOICE_FUNCTION  4

#define NGX_HTTP_AI_GATEWAY_FORMAT_TEXT      0
#define NGX_HTTP_AI_GATEWAY_FORMAT_JSON      1
#define NGX_HTTP_AI_GATEWAY_FORMAT_SCHEMA    2


typedef struct ngx_http_ai_gateway_dialect_s  ngx_http_ai_gateway_dialect_t;


/*
 * An OpenAI Chat Completions request, read and checked; or an embeddings
 * request: model, user, input, dimensions and base64 only.
 */

typedef struct {
    ngx_pool_t                    *pool;
    ngx_http_ai_gateway_dialect_t *dialect;
    const char                    *provider;   /* for messages */
    ngx_str_t                     *err;
    ngx_uint_t                     msg;        /* the message read */

    ngx_str_t                      model;
    yajl_val                       messages;   /* a non-empty array */
    ngx_array_t                    tools;      /* of ngx_..._tool_t */
    ngx_array_t                    stop;       /* of ngx_str_t */
    ngx_uint_t                     tool_choice;
    ngx_str_t                      tool_name;
    ngx_uint_t                     format;
    yajl_val                       schema;     /* json_schema's schema */

    yajl_val                       temperature;  /* numbers, or NULL */
    yajl_val                       top_p;
    yajl_val                       top_k;
    yajl_val                       seed;
    yajl_val                       presence_penalty;
    yajl_val                       frequency_penalty;

    ngx_str_t                      user;
    ngx_str_t                      effort;     /* reasoning_effort */
    ngx_int_t                      budget;     /* its thinking budget */

    long long                      max_tokens;
    ngx_uint_t                     n;

    ngx_array_t                    input;      /* embeddings: of ngx_str_t,
                                                  not empty */
    yajl_val                       dimensions; /* a positive integer, or
                                                  NULL */

    unsigned                       has_max_tokens:1;
    unsigned                       has_effort:1;
    unsigned                       no_parallel:1;
    unsigned                       stream:1;
    unsigned                       include_usage:1;
    unsigned                       base64:1;   /* encoding_format */
} ngx_http_ai_gateway_openai_req_t;


/* token counts as OpenAI reports them */

typedef struct {
    uint64_t                       prompt;
    uint64_t                       completion;
    uint64_t                       cached;
    uint64_t                       reasoning;
    uint64_t                       cache_write;  /* in prompt, not in the
                                                    OpenAI usage object */
} ngx_http_ai_gateway_usage_t;


/* a non-streamed "chat.completion" under construction */

typedef struct {
    ngx_str_t                      id;
    ngx_str_t                      name;
    ngx_str_t                      arguments;  /* a JSON text */
    ngx_str_t                      signature;
} ngx_http_ai_gateway_tool_call_t;


typedef struct {
    ngx_uint_t                     index;
    ngx_array_t                    content;    /* of ngx_str_t */
    ngx_array_t                    reasoning;  /* of ngx_str_t */
    ngx_array_t                    calls;      /* of ..._tool_call_t */
    ngx_array_t                    blocks;     /* of yajl_val: Anthropic
                                                  thinking blocks */
    const char                    *finish;
} ngx_http_ai_gateway_choice_t;


typedef struct {
    ngx_pool_t                    *pool;
    ngx_str_t                      id;         /* the provider's */
    ngx_str_t                      model;      /* the provider's */
    ngx_array_t                    choices;
    ngx_http_ai_gateway_usage_t    usage;
    unsigned                       has_usage:1;
} ngx_http_ai_gateway_completion_t;


/* a provider's name for something and OpenAI's (finish reasons, errors) */

typedef struct {
    ngx_str_t                      name;
    const char                    *value;
} ngx_http_ai_gateway_map_t;


/*
 * What the shared code needs of a translator's native dialect: its name,
 * its refusals, the writers of its turns and tools, its error bodies.
 */

typedef ngx_int_t (*ngx_http_ai_gateway_refuse_pt)(
    ngx_http_ai_gateway_openai_req_t *r);
typedef ngx_int_t (*ngx_http_ai_gateway_turn_pt)(
    ngx_http_ai_gateway_openai_req_t *r, ngx_http_ai_gateway_gen_t *gen,
    yajl_val m, void *data);
typedef void (*ngx_http_ai_gateway_tool_pt)(ngx_http_ai_gateway_gen_t *gen,
    ngx_http_ai_gateway_tool_t *tool);

struct ngx_http_ai_gateway_dialect_s {
    const char                    *provider;   /* "anthropic", "gemini" */
    ngx_http_ai_gateway_refuse_pt  refuse;     /* what it cannot express */

    const char                    *content;    /* the key of a turn's
                                                  content */
    ngx_http_ai_gateway_turn_pt    user;
    ngx_http_ai_gateway_turn_pt    assistant;
    ngx_http_ai_gateway_turn_pt    result;     /* one tool message */
    ngx_http_ai_gateway_tool_pt    tool;       /* a function's keys after
                                                  "name", "description" */

    ngx_http_ai_gateway_map_t     *errors;     /* the code to a type, or
                                                  NULL: by the status */
    const char                    *code;       /* the code's key in "error" */
    ngx_uint_t                     inputs;     /* the most inputs of an
                                                  embeddings request */
    unsigned                       array:1;    /* an error body may be an
                                                  array: its first one */
};


/* the reader of one top-level field of a request */

typedef ngx_int_t (*ngx_http_ai_gateway_field_pt)(
    ngx_http_ai_gateway_openai_req_t *r, const char *key, yajl_val v);


/* the "chat.completion.chunk" stream */

typedef struct {
    ngx_uint_t                     calls;      /* tool calls started */
    unsigned                       started:1;  /* the role chunk is out */
    unsigned                       finished:1;
} ngx_http_ai_gateway_chunk_choice_t;


typedef struct {
    ngx_http_ai_gateway_gen_t      gen;        /* the output, reused */
    ngx_http_ai_gateway_compat_t  *compat;
    ngx_str_t                      id;
    ngx_str_t                      model;
    size_t                         mark;       /* where the chunk starts */
    ngx_http_ai_gateway_gen_saved_t
                                   head;       /* "data: {"id":... */
    ngx_http_ai_gateway_usage_t    usage;
    ngx_http_ai_gateway_chunk_choice_t
                                   choice[NGX_HTTP_AI_GATEWAY_MAX_CHOICES];
    unsigned                       has_id:1;
    unsigned                       has_model:1;
    unsigned                       has_usage:1;
    unsigned                       done:1;     /* [DONE] or an error is out */
} ngx_http_ai_gateway_chunks_t;


/* the stream loop: SSE events in, a translator's handler, chunks out */

typedef ngx_int_t (*ngx_http_ai_gateway_event_pt)(
    ngx_http_ai_gateway_stream_t *s, ngx_http_ai_gateway_sse_event_t *ev,
    yajl_val json);
typedef ngx_int_t (*ngx_http_ai_gateway_end_pt)(
    ngx_http_ai_gateway_stream_t *s, ngx_uint_t complete);

struct ngx_http_ai_gateway_stream_s {
    ngx_http_ai_gateway_sse_t      sse;
    ngx_http_ai_gateway_chunks_t   chunks;
    ngx_http_ai_gateway_gen_t      scratch;    /* whole arguments, reused */
    ngx_pool_t                    *temp;       /* an event's tree, reset
                                                  after each event */
    ngx_http_ai_gateway_event_pt   event;
    ngx_http_ai_gateway_end_pt     end;
    void                          *data;       /* the translator's state */
};


/* ngx_http_ai_gateway_openai.c: requests */

ngx_int_t ngx_http_ai_gateway_openai_request(ngx_pool_t *pool, yajl_val req,
    ngx_http_ai_gateway_dialect_t *d, ngx_http_ai_gateway_compat_t *c,
    ngx_http_ai_gateway_openai_req_t *r, ngx_http_ai_gateway_gen_t *gen,
    ngx_str_t *err);
ngx_int_t ngx_http_ai_gateway_openai_read(ngx_pool_t *pool,
    yajl_val req, ngx_http_ai_gateway_dialect_t *d,
    ngx_http_ai_gateway_openai_req_t *r, ngx_str_t *err,
    ngx_http_ai_gateway_field_pt field);
ngx_int_t ngx_http_ai_gateway_openai_open(
    ngx_http_ai_gateway_openai_req_t *r, ngx_http_ai_gateway_gen_t *gen);
ngx_int_t ngx_http_ai_gateway_openai_field(
    ngx_http_ai_gateway_openai_req_t *r, const char *key, yajl_val v);
ngx_int_t ngx_http_ai_gateway_openai_system(
    ngx_http_ai_gateway_openai_req_t *r, ngx_array_t *parts);
void ngx_http_ai_gateway_gen_turn(ngx_http_ai_gateway_gen_t *gen,
    ngx_http_ai_gateway_openai_req_t *r, const char *role);
ngx_int_t ngx_http_ai_gateway_openai_messages(
    ngx_http_ai_gateway_openai_req_t *r, ngx_http_ai_gateway_gen_t *gen,
    void *data);
ngx_int_t ngx_http_ai_gateway_openai_user(ngx_http_ai_gateway_openai_req_t *r,
    ngx_http_ai_gateway_gen_t *gen, yajl_val msg, ngx_array_t *parts);
ngx_int_t ngx_http_ai_gateway_openai_done(ngx_http_ai_gateway_openai_req_t *r,
    ngx_http_ai_gateway_gen_t *gen, ngx_str_t *out);
ngx_int_t ngx_http_ai_gateway_openai_parts(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val msg, ngx_uint_t media, ngx_array_t *parts);
ngx_uint_t ngx_http_ai_gateway_openai_some(ngx_array_t *parts);
ngx_int_t ngx_http_ai_gateway_openai_calls(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val msg, ngx_array_t *calls);
ngx_int_t ngx_http_ai_gateway_openai_text(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val msg, ngx_str_t *text);
ngx_int_t ngx_http_ai_gateway_openai_call_id(
    ngx_http_ai_gateway_openai_req_t *r, yajl_val msg, ngx_str_t *id);
ngx_int_t ngx_http_ai_gateway_openai_fail(ngx_http_ai_gateway_openai_req_t *r,
    const char *fmt, ...);
ngx_uint_t ngx_http_ai_gateway_gen_text(ngx_http_ai_gateway_gen_t *gen,
    ngx_str_t *text, ngx_uint_t typed);
ngx_uint_t ngx_http_ai_gateway_gen_texts(ngx_http_ai_gateway_gen_t *gen,
    ngx_array_t *parts, ngx_uint_t typed);
void ngx_http_ai_gateway_gen_number(ngx_http_ai_gateway_gen_t *gen,
    const char *key, yajl_val v);
void ngx_http_ai_gateway_gen_tools(ngx_http_ai_gateway_gen_t *gen,
    ngx_http_ai_gateway_openai_req_t *r);
void ngx_http_ai_gateway_gen_stop(ngx_http_ai_gateway_gen_t *gen,
    ngx_http_ai_gateway_openai_req_t *r);

/* ngx_http_ai_gateway_embed.c: embeddings */

ngx_int_t ngx_http_ai_gateway_openai_embeddings(ngx_pool_t *pool,
    yajl_val req, ngx_http_ai_gateway_dialect_t *d,
    ngx_http_ai_gateway_compat_t *c, ngx_http_ai_gateway_openai_req_t *r,
    ngx_http_ai_gateway_gen_t *gen, ngx_str_t *err);
ngx_int_t ngx_http_ai_gateway_embeddings_done(ngx_pool_t *pool,
    yajl_val list, const char *key, ngx_http_ai_gateway_usage_t *u,
    ngx_http_ai_gateway_compat_t *c, ngx_str_t *out);

/* ngx_http_ai_gateway_completion.c: "chat.completion" */

ngx_int_t ngx_http_ai_gateway_completion_init(
    ngx_http_ai_gateway_completion_t *cmp, ngx_pool_t *pool);
ngx_http_ai_gateway_choice_t *ngx_http_ai_gateway_completion_choice(
    ngx_http_ai_gateway_completion_t *cmp, ngx_uint_t index);
ngx_int_t ngx_http_ai_gateway_choice_text(ngx_http_ai_gateway_choice_t *ch,
    ngx_str_t *text, ngx_uint_t reasoning);
ngx_http_ai_gateway_tool_call_t *ngx_http_ai_gateway_choice_call(
    ngx_http_ai_gateway_choice_t *ch);
ngx_int_t ngx_http_ai_gateway_call_args(ngx_pool_t *pool,
    ngx_http_ai_gateway_tool_call_t *call, yajl_val args);
ngx_int_t ngx_http_ai_gateway_completion_done(
    ngx_http_ai_gateway_completion_t *cmp, ngx_http_ai_gateway_compat_t *c,
    ngx_str_t *out);
const char *ngx_http_ai_gateway_map(ngx_http_ai_gateway_map_t *map,
    yajl_val name, const char *dflt);
void ngx_http_ai_gateway_usage_report(ngx_http_ai_gateway_compat_t *c,
    ngx_http_ai_gateway_usage_t *u);
void ngx_http_ai_gateway_call_id(ngx_uint_t n, ngx_str_t *id, u_char *buf);

/* ngx_http_ai_gateway_completion.c: builders the stream shares */

void ngx_http_ai_gateway_gen_call(ngx_http_ai_gateway_gen_t *gen,
    ngx_str_t *id, ngx_str_t *name, ngx_str_t *arguments,
    ngx_str_t *signature);
void ngx_http_ai_gateway_gen_block(ngx_http_ai_gateway_gen_t *gen,
    yajl_val block);
void ngx_http_ai_gateway_gen_usage(ngx_http_ai_gateway_gen_t *gen,
    ngx_http_ai_gateway_usage_t *u);

/* ngx_http_ai_gateway_completion.c: errors */

const char *ngx_http_ai_gateway_error_type(ngx_uint_t status);
void ngx_http_ai_gateway_gen_error(ngx_http_ai_gateway_gen_t *gen,
    ngx_str_t *message, const char *type, ngx_str_t *code);
ngx_int_t ngx_http_ai_gateway_error_body(ngx_pool_t *pool, ngx_str_t *message,
    const char *type, ngx_str_t *code, ngx_str_t *out);
ngx_int_t ngx_http_ai_gateway_error_text(ngx_pool_t *pool, ngx_uint_t status,
    u_char *body, size_t len, ngx_str_t *message);
ngx_int_t ngx_http_ai_gateway_error_native(ngx_pool_t *pool,
    ngx_http_ai_gateway_dialect_t *d, ngx_uint_t status, u_char *body,
    size_t len, ngx_str_t *out);

/* ngx_http_ai_gateway_chunk.c: the stream loop, "chat.completion.chunk" */

ngx_http_ai_gateway_stream_t *ngx_http_ai_gateway_stream_alloc(
    ngx_pool_t *pool, ngx_http_ai_gateway_compat_t *c,
    ngx_http_ai_gateway_event_pt event, ngx_http_ai_gateway_end_pt end,
    size_t size);
ngx_int_t ngx_http_ai_gateway_stream_feed(ngx_http_ai_gateway_stream_t *s,
    u_char *p, size_t len, ngx_str_t *out);
ngx_int_t ngx_http_ai_gateway_stream_finish(ngx_http_ai_gateway_stream_t *s,
    ngx_uint_t complete, ngx_str_t *out);

void ngx_http_ai_gateway_chunks_meta(ngx_http_ai_gateway_chunks_t *ch,
    ngx_str_t *id, ngx_str_t *model);
void ngx_http_ai_gateway_chunks_usage(ngx_http_ai_gateway_chunks_t *ch,
    ngx_http_ai_gateway_usage_t *u);
void ngx_http_ai_gateway_chunk_role(ngx_http_ai_gateway_chunks_t *ch,
    ngx_uint_t i);
void ngx_http_ai_gateway_chunk_text(ngx_http_ai_gateway_chunks_t *ch,
    ngx_uint_t i, ngx_str_t *text, ngx_uint_t reasoning);
void ngx_http_ai_gateway_chunk_block(ngx_http_ai_gateway_chunks_t *ch,
    ngx_uint_t i, yajl_val block, ngx_str_t *signature);
ngx_uint_t ngx_http_ai_gateway_chunk_call(ngx_http_ai_gateway_chunks_t *ch,
    ngx_uint_t i, ngx_str_t *id, ngx_str_t *name, ngx_str_t *signature);
void ngx_http_ai_gateway_chunk_args(ngx_http_ai_gateway_chunks_t *ch,
    ngx_uint_t i, ngx_uint_t call, ngx_str_t *args);
ngx_int_t ngx_http_ai_gateway_stream_args(ngx_http_ai_gateway_stream_t *s,
    ngx_uint_t i, ngx_uint_t call, yajl_val args);
void ngx_http_ai_gateway_chunk_finish(ngx_http_ai_gateway_chunks_t *ch,
    ngx_uint_t i, const char *finish);
void ngx_http_ai_gateway_chunk_end(ngx_http_ai_gateway_chunks_t *ch);
void ngx_http_ai_gateway_chunk_error(ngx_http_ai_gateway_chunks_t *ch,
    ngx_str_t *message, const char *type, ngx_str_t *code);
void ngx_http_ai_gateway_stream_error(ngx_http_ai_gateway_stream_t *s,
    ngx_http_ai_gateway_dialect_t *d, yajl_val e);


/* the dialects (ngx_http_ai_gateway_translate.c holds their table) */

ngx_int_t ngx_http_ai_gateway_anthropic_request(ngx_pool_t *pool,
    yajl_val req, ngx_http_ai_gateway_compat_t *c, ngx_str_t *out,
    ngx_str_t *err);
ngx_int_t ngx_http_ai_gateway_anthropic_response(ngx_pool_t *pool,
    u_char *body, size_t len, ngx_http_ai_gateway_compat_t *c,
    ngx_str_t *out);
ngx_int_t ngx_http_ai_gateway_anthropic_error(ngx_pool_t *pool,
    ngx_uint_t status, u_char *body, size_t len, ngx_str_t *out);
ngx_http_ai_gateway_stream_t *ngx_http_ai_gateway_anthropic_stream(
    ngx_pool_t *pool, ngx_http_ai_gateway_compat_t *c);

ngx_int_t ngx_http_ai_gateway_gemini_request(ngx_pool_t *pool,
    yajl_val req, ngx_http_ai_gateway_compat_t *c, ngx_str_t *out,
    ngx_str_t *err);
ngx_int_t ngx_http_ai_gateway_gemini_response(ngx_pool_t *pool,
    u_char *body, size_t len, ngx_http_ai_gateway_compat_t *c,
    ngx_str_t *out);
ngx_int_t ngx_http_ai_gateway_gemini_error(ngx_pool_t *pool,
    ngx_uint_t status, u_char *body, size_t len, ngx_str_t *out);
ngx_http_ai_gateway_stream_t *ngx_http_ai_gateway_gemini_stream(
    ngx_pool_t *pool, ngx_http_ai_gateway_compat_t *c);
ngx_int_t ngx_http_ai_gateway_gemini_embed_request(ngx_pool_t *pool,
    yajl_val req, ngx_http_ai_gateway_compat_t *c, ngx_str_t *out,
    ngx_str_t *err);
ngx_int_t ngx_http_ai_gateway_gemini_embed_response(ngx_pool_t *pool,
    u_char *body, size_t len, ngx_http_ai_gateway_compat_t *c,
    ngx_str_t *out);


#endif /* _NGX_HTTP_AI_GATEWAY_OPENAI_H_INCLUDED_ */
