
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#ifndef _NGX_HTTP_AI_GATEWAY_TRANSLATE_H_INCLUDED_
#define _NGX_HTTP_AI_GATEWAY_TRANSLATE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <yajl/yajl_tree.h>


/*
 * The Unified API translators: OpenAI Chat Completions and embeddings on
 * the client side, a provider's native API on the other.  A translator
 * knows nothing of HTTP requests: bytes and JSON trees in, bytes out.  One
 * table row per native dialect (ngx_http_ai_gateway_translators[]).
 */


/*
 * One translation.  The caller sets model, id and created; request() sets
 * stream and include_usage from the client's request, embed_request()
 * sets base64 (and clears them); response(), embed_response() and the
 * stream set the usage fields (as the provider reported them, whatever
 * the client asked for: for logs and budgets) and failed.
 */

typedef struct {
    ngx_str_t                      model;      /* the provider's model name */
    ngx_str_t                      id;         /* "chatcmpl-...", or empty:
                                                  the provider's id */
    time_t                         created;

    uint64_t                       prompt_tokens;
    uint64_t                       completion_tokens;
    uint64_t                       cached_tokens;
    uint64_t                       reasoning_tokens;
    uint64_t                       cache_write_tokens; /* of prompt_tokens,
                                                  written to a prompt
                                                  cache (Anthropic) */

    unsigned                       stream:1;
    unsigned                       include_usage:1;
    unsigned                       usage:1;    /* the usage fields are set */
    unsigned                       failed:1;   /* the stream ended with an
                                                  error event */
    unsigned                       base64:1;   /* embeddings as base64 of
                                                  float32 */
} ngx_http_ai_gateway_compat_t;


typedef struct ngx_http_ai_gateway_stream_s  ngx_http_ai_gateway_stream_t;


typedef struct {
    ngx_str_t                      name;       /* "anthropic", "gemini" */

    /*
     * The client's OpenAI request (a parsed tree) to the provider's body.
     * NGX_DECLINED with *err set (a message for a 400) when the request
     * cannot be expressed faithfully; NGX_ERROR on allocation failure.
     */
    ngx_int_t                    (*request)(ngx_pool_t *pool, yajl_val req,
                                     ngx_http_ai_gateway_compat_t *c,
                                     ngx_str_t *out, ngx_str_t *err);

    /*
     * A complete successful provider response to a "chat.completion".
     * NGX_DECLINED: the body is not the provider's JSON response.
     */
    ngx_int_t                    (*response)(ngx_pool_t *pool, u_char *body,
                                     size_t len,
                                     ngx_http_ai_gateway_compat_t *c,
                                     ngx_str_t *out);

    /*
     * A provider error body (JSON or not, empty too) to
     * {"error":{"message","type","param","code"}}: NGX_OK or NGX_ERROR.
     */
    ngx_int_t                    (*error)(ngx_pool_t *pool,
                                     ngx_uint_t status, u_char *body,
                                     size_t len, ngx_str_t *out);

    /*
     * Streams: create once per response; feed() takes the provider's
     * body bytes as they arrive, split anywhere, and sets *out to the
     * translated SSE bytes ("data: {chat.completion.chunk}\n\n"...), which
     * stay valid until the next call; finish() is called when the
     * provider's body ended (complete = 0: cut short) and gives the last
     * bytes (usage chunk, error event, "data: [DONE]\n\n").  Memory is
     * bounded: no more than the longest event is held
     * (NGX_HTTP_AI_GATEWAY_MAX_EVENT, ngx_http_ai_gateway_sse.h).
     * Whatever the provider sends, feed() and finish() return NGX_OK
     * (NGX_ERROR: no memory); a provider error, an invalid or oversized
     * event or a stream ended before the provider's end marker becomes
     * the last event, "data: {"error":{...}}\n\n" without [DONE], and
     * sets c->failed; later bytes are ignored.
     */
    ngx_http_ai_gateway_stream_t *(*stream_create)(ngx_pool_t *pool,
                                     ngx_http_ai_gateway_compat_t *c);
    ngx_int_t                    (*stream_feed)(
                                     ngx_http_ai_gateway_stream_t *s,
                                     u_char *p, size_t len, ngx_str_t *out);
    ngx_int_t                    (*stream_finish)(
                                     ngx_http_ai_gateway_stream_t *s,
                                     ngx_uint_t complete, ngx_str_t *out);

    /*
     * Embeddings; both NULL when the dialect has none.  An OpenAI
     * embeddings request (parsed) to the provider's body, as request();
     * the provider's successful embeddings response to OpenAI's
     * {"object":"list",...}, as response().  Errors: error().
     */
    ngx_int_t                    (*embed_request)(ngx_pool_t *pool,
                                     yajl_val req,
                                     ngx_http_ai_gateway_compat_t *c,
                                     ngx_str_t *out, ngx_str_t *err);
    ngx_int_t                    (*embed_response)(ngx_pool_t *pool,
                                     u_char *body, size_t len,
                                     ngx_http_ai_gateway_compat_t *c,
                                     ngx_str_t *out);
} ngx_http_ai_gateway_translator_t;


ngx_http_ai_gateway_translator_t *ngx_http_ai_gateway_translator(
    ngx_str_t *name);


extern ngx_http_ai_gateway_translator_t  ngx_http_ai_gateway_translators[];


#endif /* _NGX_HTTP_AI_GATEWAY_TRANSLATE_H_INCLUDED_ */
