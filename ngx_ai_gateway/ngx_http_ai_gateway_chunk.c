
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <yajl/yajl_tree.h>

#include "ngx_http_ai_gateway_openai.h"


/*
 * The stream loop shared by the dialects: the provider's bytes go through
 * the SSE splitter, each event (or bare JSON text) is parsed into a tree
 * in the stream's own pool, which is reset after the event, and goes to
 * the dialect's event handler, which calls the chunk builders below; they
 * write "data: {chat.completion.chunk}" events into one reused generator.
 * Once the pool and the buffers have grown to the stream's largest event,
 * an event allocates nothing.  The stream's last event is [DONE] or an
 * error event (chunk_error()), after which nothing is written; a choice's
 * finish chunk is its last, content for it afterwards is an error.
 */


/* the stream's pool for the trees of its events */
#define NGX_HTTP_AI_GATEWAY_EVENT_POOL  4096


static void ngx_http_ai_gateway_chunk_begin(ngx_http_ai_gateway_chunks_t *ch,
    ngx_uint_t i);
static void ngx_http_ai_gateway_chunk_tool(ngx_http_ai_gateway_chunks_t *ch,
    ngx_uint_t i, ngx_uint_t n);
static void ngx_http_ai_gateway_chunk_close(ngx_http_ai_gateway_chunks_t *ch,
    const char *finish);
static void ngx_http_ai_gateway_chunk_head(ngx_http_ai_gateway_chunks_t *ch);
static void ngx_http_ai_gateway_chunk_check(ngx_http_ai_gateway_chunks_t *ch);
static void ngx_http_ai_gateway_chunk_delta(ngx_http_ai_gateway_chunks_t *ch,
    ngx_uint_t i, ngx_str_t *text, ngx_uint_t reasoning);
static ngx_uint_t ngx_http_ai_gateway_chunk_late(
    ngx_http_ai_gateway_chunks_t *ch, ngx_uint_t i);
static ngx_int_t ngx_http_ai_gateway_stream_event(
    ngx_http_ai_gateway_stream_t *s, ngx_http_ai_gateway_sse_event_t *ev);
static ngx_int_t ngx_http_ai_gateway_stream_out(
    ngx_http_ai_gateway_stream_t *s, ngx_str_t *out);
static void ngx_http_ai_gateway_stream_cleanup(void *data);


/* streams */

ngx_http_ai_gateway_stream_t *
ngx_http_ai_gateway_stream_alloc(ngx_pool_t *pool,
    ngx_http_ai_gateway_compat_t *c, ngx_http_ai_gateway_event_pt event,
    ngx_http_ai_gateway_end_pt end, size_t size)
{
    ngx_pool_cleanup_t            *cln;
    ngx_http_ai_gateway_stream_t  *s;

    s = ngx_pcalloc(pool, sizeof(ngx_http_ai_gateway_stream_t));
    if (s == NULL) {
        return NULL;
    }

    if (size) {
        s->data = ngx_pcalloc(pool, size);
        if (s->data == NULL) {
            return NULL;
        }
    }

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    s->temp = ngx_create_pool(NGX_HTTP_AI_GATEWAY_EVENT_POOL, pool->log);
    if (s->temp == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_ai_gateway_stream_cleanup;
    cln->data = s->temp;

    ngx_http_ai_gateway_sse_init(&s->sse, pool);

    if (ngx_http_ai_gateway_gen_init(&s->chunks.gen, pool) != NGX_OK) {
        return NULL;
    }

    s->chunks.compat = c;
    s->event = event;
    s->end = end;

    return s;
}


ngx_int_t
ngx_http_ai_gateway_stream_feed(ngx_http_ai_gateway_stream_t *s, u_char *p,
    size_t len, ngx_str_t *out)
{
    u_char                           *pos, *last;
    ngx_int_t                         rc;
    ngx_http_ai_gateway_sse_event_t   ev;

    static ngx_str_t  too_long =
        ngx_string("the provider sent a stream event over the size limit");

    s->chunks.gen.len = 0;

    pos = p;
    last = p + len;

    while (!s->chunks.done) {

        rc = ngx_http_ai_gateway_sse_parse(&s->sse, &pos, last, &ev);

        if (rc == NGX_AGAIN) {
            break;
        }

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_DECLINED) {
            ngx_http_ai_gateway_chunk_error(&s->chunks, &too_long,
                                            "server_error", NULL);
            break;
        }

        if (ngx_http_ai_gateway_stream_event(s, &ev) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return ngx_http_ai_gateway_stream_out(s, out);
}


ngx_int_t
ngx_http_ai_gateway_stream_finish(ngx_http_ai_gateway_stream_t *s,
    ngx_uint_t complete, ngx_str_t *out)
{
    ngx_http_ai_gateway_sse_event_t  ev;

    s->chunks.gen.len = 0;

    while (!s->chunks.done) {

        if (ngx_http_ai_gateway_sse_eof(&s->sse, complete, &ev) != NGX_OK) {
            break;
        }

        if (ngx_http_ai_gateway_stream_event(s, &ev) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (!s->chunks.done) {
        if (s->end(s, complete) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return ngx_http_ai_gateway_stream_out(s, out);
}


static void
ngx_http_ai_gateway_stream_cleanup(void *data)
{
    ngx_pool_t  *temp = data;

    ngx_destroy_pool(temp);
}


/* an event: its tree lives in s->temp until the event is translated */

static ngx_int_t
ngx_http_ai_gateway_stream_event(ngx_http_ai_gateway_stream_t *s,
    ngx_http_ai_gateway_sse_event_t *ev)
{
    yajl_val   json;
    ngx_int_t  rc;

    static ngx_str_t  invalid =
        ngx_string("the provider sent an invalid stream event");

    if (ev->data.len == 0) {
        return NGX_OK;
    }

    rc = ngx_http_ai_gateway_json_parse(s->temp, ev->data.data, ev->data.len,
                                        &json);

    if (rc == NGX_OK) {
        rc = s->event(s, ev, json);
    }

    ngx_reset_pool(s->temp);

    if (rc == NGX_DECLINED) {
        ngx_http_ai_gateway_chunk_error(&s->chunks, &invalid, "server_error",
                                        NULL);
        return NGX_OK;
    }

    return rc;
}


static ngx_int_t
ngx_http_ai_gateway_stream_out(ngx_http_ai_gateway_stream_t *s,
    ngx_str_t *out)
{
    if (s->chunks.gen.nomem) {
        return NGX_ERROR;
    }

    out->data = s->chunks.gen.buf;
    out->len = s->chunks.gen.len;

    return NGX_OK;
}


/* the provider's id and model, when the caller set none: the first wins */

void
ngx_http_ai_gateway_chunks_meta(ngx_http_ai_gateway_chunks_t *ch,
    ngx_str_t *id, ngx_str_t *model)
{
    ngx_pool_t  *pool;

    pool = ch->gen.pool;

    if (!ch->has_id && id != NULL && id->len) {
        ch->has_id = 1;

        if (ch->compat->id.len) {
            ch->id = ch->compat->id;

        } else {
            ch->id.data = ngx_pstrdup(pool, id);
            ch->id.len = ch->id.data ? id->len : 0;
        }
    }

    if (!ch->has_model && model != NULL && model->len) {
        ch->has_model = 1;
        ch->model.data = ngx_pstrdup(pool, model);
        ch->model.len = ch->model.data ? model->len : 0;
    }
}


void
ngx_http_ai_gateway_chunks_usage(ngx_http_ai_gateway_chunks_t *ch,
    ngx_http_ai_gateway_usage_t *u)
{
    ch->usage = *u;
    ch->has_usage = 1;

    ngx_http_ai_gateway_usage_report(ch->compat, u);
}


/* "data: {"id","object","created","model", ... */

static void
ngx_http_ai_gateway_chunk_head(ngx_http_ai_gateway_chunks_t *ch)
{
    ngx_http_ai_gateway_gen_t  *gen;

    gen = &ch->gen;

    if (!ch->has_id) {
        ch->has_id = 1;
        ch->id = ch->compat->id;
    }

    if (!ch->has_model) {
        ch->has_model = 1;
        ch->model = ch->compat->model;
    }

    ch->mark = gen->len;

    if (ch->head.text.len) {
        ngx_http_ai_gateway_gen_replay(gen, &ch->head);
        return;
    }

    ngx_http_ai_gateway_gen_raw(gen, (u_char *) "data: ", 6);
    ngx_http_ai_gateway_gen_reset(gen);

    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_literal(gen, "id");
    ngx_http_ai_gateway_gen_string(gen, &ch->id);
    ngx_http_ai_gateway_gen_literal(gen, "object");
    ngx_http_ai_gateway_gen_literal(gen, "chat.completion.chunk");
    ngx_http_ai_gateway_gen_literal(gen, "created");
    ngx_http_ai_gateway_gen_int(gen, ch->compat->created);
    ngx_http_ai_gateway_gen_literal(gen, "model");
    ngx_http_ai_gateway_gen_string(gen, &ch->model);

    /* the same for every chunk: written once (when it could be) */

    (void) ngx_http_ai_gateway_gen_save(gen, ch->mark, &ch->head);
}


/* ..."choices":[{"index":i,"delta":{ */

static void
ngx_http_ai_gateway_chunk_begin(ngx_http_ai_gateway_chunks_t *ch,
    ngx_uint_t i)
{
    ngx_http_ai_gateway_gen_t  *gen;

    gen = &ch->gen;

    ngx_http_ai_gateway_chunk_head(ch);

    ngx_http_ai_gateway_gen_literal(gen, "choices");
    ngx_http_ai_gateway_gen_array(gen);
    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_literal(gen, "index");
    ngx_http_ai_gateway_gen_int(gen, i);
    ngx_http_ai_gateway_gen_literal(gen, "delta");
    ngx_http_ai_gateway_gen_map(gen);
}


/* ..."tool_calls":[{"index":n, */

static void
ngx_http_ai_gateway_chunk_tool(ngx_http_ai_gateway_chunks_t *ch, ngx_uint_t i,
    ngx_uint_t n)
{
    ngx_http_ai_gateway_gen_t  *gen;

    gen = &ch->gen;

    ngx_http_ai_gateway_chunk_begin(ch, i);

    ngx_http_ai_gateway_gen_literal(gen, "tool_calls");
    ngx_http_ai_gateway_gen_array(gen);
    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_literal(gen, "index");
    ngx_http_ai_gateway_gen_int(gen, n);
}


/* ...},"finish_reason":...,"logprobs":null}]}\n\n */

static void
ngx_http_ai_gateway_chunk_close(ngx_http_ai_gateway_chunks_t *ch,
    const char *finish)
{
    ngx_http_ai_gateway_gen_t  *gen;

    gen = &ch->gen;

    ngx_http_ai_gateway_gen_map_end(gen);
    ngx_http_ai_gateway_gen_literal(gen, "finish_reason");

    if (finish != NULL) {
        ngx_http_ai_gateway_gen_str(gen, (u_char *) finish,
                                    ngx_strlen(finish));

    } else {
        ngx_http_ai_gateway_gen_null(gen);
    }

    ngx_http_ai_gateway_gen_literal(gen, "logprobs");
    ngx_http_ai_gateway_gen_null(gen);
    ngx_http_ai_gateway_gen_map_end(gen);
    ngx_http_ai_gateway_gen_array_end(gen);
    ngx_http_ai_gateway_gen_map_end(gen);

    ngx_http_ai_gateway_gen_raw(gen, (u_char *) "\n\n", 2);

    ngx_http_ai_gateway_chunk_check(ch);
}


/* a chunk that could not be encoded is taken back: an error event instead */

static void
ngx_http_ai_gateway_chunk_check(ngx_http_ai_gateway_chunks_t *ch)
{
    static ngx_str_t  failed =
        ngx_string("the gateway could not encode a stream chunk");

    if (!ch->gen.invalid) {
        return;
    }

    ch->gen.len = ch->mark;
    ch->gen.invalid = 0;

    ngx_http_ai_gateway_chunk_error(ch, &failed, "server_error", NULL);
}


void
ngx_http_ai_gateway_chunk_role(ngx_http_ai_gateway_chunks_t *ch,
    ngx_uint_t i)
{
    ngx_http_ai_gateway_gen_t  *gen;

    if (ch->done || ch->choice[i].started) {
        return;
    }

    ch->choice[i].started = 1;

    gen = &ch->gen;

    ngx_http_ai_gateway_chunk_begin(ch, i);
    ngx_http_ai_gateway_gen_literal(gen, "role");
    ngx_http_ai_gateway_gen_literal(gen, "assistant");
    ngx_http_ai_gateway_gen_literal(gen, "content");
    ngx_http_ai_gateway_gen_literal(gen, "");
    ngx_http_ai_gateway_chunk_close(ch, NULL);
}


void
ngx_http_ai_gateway_chunk_text(ngx_http_ai_gateway_chunks_t *ch,
    ngx_uint_t i, ngx_str_t *text, ngx_uint_t reasoning)
{
    ngx_http_ai_gateway_gen_t  *gen;

    ngx_http_ai_gateway_chunk_role(ch, i);

    if (ch->done || text->len == 0 || ngx_http_ai_gateway_chunk_late(ch, i))
    {
        return;
    }

    gen = &ch->gen;

    if (ch->head.text.len) {
        ngx_http_ai_gateway_chunk_delta(ch, i, text, reasoning);
        return;
    }

    ngx_http_ai_gateway_chunk_begin(ch, i);

    if (reasoning) {
        ngx_http_ai_gateway_gen_literal(gen, "reasoning_content");

    } else {
        ngx_http_ai_gateway_gen_literal(gen, "content");
    }

    ngx_http_ai_gateway_gen_string(gen, text);
    ngx_http_ai_gateway_chunk_close(ch, NULL);
}


/*
 * The chunk of most events, a text delta, once the head is saved: what
 * chunk_begin(), a "content" member and chunk_close() write, the same
 * bytes, with only the text through yajl_gen.
 */

static void
ngx_http_ai_gateway_chunk_delta(ngx_http_ai_gateway_chunks_t *ch,
    ngx_uint_t i, ngx_str_t *text, ngx_uint_t reasoning)
{
    u_char                     *p;
    u_char                      buf[NGX_INT_T_LEN + 64];
    ngx_http_ai_gateway_gen_t  *gen;

    static u_char  tail[] =
        "},\"finish_reason\":null,\"logprobs\":null}]}\n\n";

    gen = &ch->gen;

    /* chunk_head(), without putting yajl_gen in the state it leaves */

    ch->mark = gen->len;
    ngx_http_ai_gateway_gen_raw(gen, ch->head.text.data, ch->head.text.len);

    p = ngx_cpymem(buf, ",\"choices\":[{\"index\":",
                   sizeof(",\"choices\":[{\"index\":") - 1);

    /* choices are few: one digit, not a trip through ngx_sprintf() */

    if (i < 10) {
        *p++ = (u_char) ('0' + i);

    } else {
        p = ngx_sprintf(p, "%ui", i);
    }

    if (reasoning) {
        p = ngx_cpymem(p, ",\"delta\":{\"reasoning_content\"",
                       sizeof(",\"delta\":{\"reasoning_content\"") - 1);

    } else {
        p = ngx_cpymem(p, ",\"delta\":{\"content\"",
                       sizeof(",\"delta\":{\"content\"") - 1);
    }

    ngx_http_ai_gateway_gen_raw(gen, buf, p - buf);
    ngx_http_ai_gateway_gen_member_str(gen, text->data, text->len);
    ngx_http_ai_gateway_gen_raw(gen, tail, sizeof(tail) - 1);

    ngx_http_ai_gateway_chunk_check(ch);
}


/*
 * A thinking block's delta, for the client to send back: a redacted block
 * whole, a thinking block's signature (its text was reasoning_content):
 * "thinking_blocks":[{"type":"thinking","signature":"..."}]
 */

void
ngx_http_ai_gateway_chunk_block(ngx_http_ai_gateway_chunks_t *ch,
    ngx_uint_t i, yajl_val block, ngx_str_t *signature)
{
    ngx_http_ai_gateway_gen_t  *gen;

    ngx_http_ai_gateway_chunk_role(ch, i);

    if (ch->done || ngx_http_ai_gateway_chunk_late(ch, i)) {
        return;
    }

    gen = &ch->gen;

    ngx_http_ai_gateway_chunk_begin(ch, i);
    ngx_http_ai_gateway_gen_literal(gen, "thinking_blocks");
    ngx_http_ai_gateway_gen_array(gen);

    if (block) {
        ngx_http_ai_gateway_gen_block(gen, block);

    } else {
        ngx_http_ai_gateway_gen_map(gen);
        ngx_http_ai_gateway_gen_literal(gen, "type");
        ngx_http_ai_gateway_gen_literal(gen, "thinking");
        ngx_http_ai_gateway_gen_literal(gen, "signature");
        ngx_http_ai_gateway_gen_string(gen, signature);
        ngx_http_ai_gateway_gen_map_end(gen);
    }

    ngx_http_ai_gateway_gen_array_end(gen);
    ngx_http_ai_gateway_chunk_close(ch, NULL);
}


/*
 * A tool call's first delta: index (0, 1, ... over the choice's calls),
 * id, type and name, empty arguments.  Returns the index.
 */

ngx_uint_t
ngx_http_ai_gateway_chunk_call(ngx_http_ai_gateway_chunks_t *ch,
    ngx_uint_t i, ngx_str_t *id, ngx_str_t *name, ngx_str_t *signature)
{
    ngx_str_t                   empty;
    ngx_uint_t                  n;
    ngx_http_ai_gateway_gen_t  *gen;

    ngx_http_ai_gateway_chunk_role(ch, i);

    n = ch->choice[i].calls++;

    if (ch->done || ngx_http_ai_gateway_chunk_late(ch, i)) {
        return n;
    }

    gen = &ch->gen;

    ngx_str_null(&empty);

    ngx_http_ai_gateway_chunk_tool(ch, i, n);
    ngx_http_ai_gateway_gen_call(gen, id, name, &empty, signature);

    ngx_http_ai_gateway_gen_map_end(gen);
    ngx_http_ai_gateway_gen_array_end(gen);

    ngx_http_ai_gateway_chunk_close(ch, NULL);

    return n;
}


/* a fragment of a tool call's arguments */

void
ngx_http_ai_gateway_chunk_args(ngx_http_ai_gateway_chunks_t *ch,
    ngx_uint_t i, ngx_uint_t call, ngx_str_t *args)
{
    ngx_http_ai_gateway_gen_t  *gen;

    if (ch->done || args->len == 0 || ngx_http_ai_gateway_chunk_late(ch, i))
    {
        return;
    }

    gen = &ch->gen;

    ngx_http_ai_gateway_chunk_tool(ch, i, call);

    ngx_http_ai_gateway_gen_literal(gen, "function");
    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_literal(gen, "arguments");
    ngx_http_ai_gateway_gen_string(gen, args);
    ngx_http_ai_gateway_gen_map_end(gen);
    ngx_http_ai_gateway_gen_map_end(gen);
    ngx_http_ai_gateway_gen_array_end(gen);

    ngx_http_ai_gateway_chunk_close(ch, NULL);
}


/*
 * Whole arguments (a parsed object) as one fragment, serialized in the
 * stream's scratch generator: its buffer is reused, memory stays bounded.
 */

ngx_int_t
ngx_http_ai_gateway_stream_args(ngx_http_ai_gateway_stream_t *s,
    ngx_uint_t i, ngx_uint_t call, yajl_val args)
{
    ngx_str_t                   text;
    ngx_http_ai_gateway_gen_t  *gen;

    gen = &s->scratch;

    if (gen->pool == NULL) {
        if (ngx_http_ai_gateway_gen_init(gen, s->chunks.gen.pool) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    gen->len = 0;
    gen->invalid = 0;

    ngx_http_ai_gateway_gen_reset(gen);
    ngx_http_ai_gateway_gen_value(gen, args);

    switch (ngx_http_ai_gateway_gen_done(gen, &text)) {

    case NGX_OK:
        break;

    case NGX_DECLINED:
        return NGX_DECLINED;

    default:
        return NGX_ERROR;
    }

    ngx_http_ai_gateway_chunk_args(&s->chunks, i, call, &text);

    return NGX_OK;
}


/*
 * A chunk with a finish_reason is the choice's last: content after it
 * breaks the protocol, and ends the stream with an error event.
 */

static ngx_uint_t
ngx_http_ai_gateway_chunk_late(ngx_http_ai_gateway_chunks_t *ch,
    ngx_uint_t i)
{
    static ngx_str_t  late =
        ngx_string("the provider sent content after the end of a choice");

    if (!ch->choice[i].finished) {
        return 0;
    }

    ngx_http_ai_gateway_chunk_error(ch, &late, "server_error", NULL);

    return 1;
}


/* the choice's last chunk: an empty delta and the finish_reason */

void
ngx_http_ai_gateway_chunk_finish(ngx_http_ai_gateway_chunks_t *ch,
    ngx_uint_t i, const char *finish)
{
    ngx_http_ai_gateway_chunk_role(ch, i);

    if (ch->done || ch->choice[i].finished) {
        return;
    }

    ch->choice[i].finished = 1;

    ngx_http_ai_gateway_chunk_begin(ch, i);
    ngx_http_ai_gateway_chunk_close(ch, finish);
}


/* the usage chunk when asked for and known, then [DONE] */

void
ngx_http_ai_gateway_chunk_end(ngx_http_ai_gateway_chunks_t *ch)
{
    ngx_http_ai_gateway_gen_t  *gen;

    if (ch->done) {
        return;
    }

    gen = &ch->gen;

    if (ch->compat->include_usage && ch->has_usage) {
        ngx_http_ai_gateway_chunk_head(ch);

        ngx_http_ai_gateway_gen_literal(gen, "choices");
        ngx_http_ai_gateway_gen_array(gen);
        ngx_http_ai_gateway_gen_array_end(gen);
        ngx_http_ai_gateway_gen_literal(gen, "usage");
        ngx_http_ai_gateway_gen_usage(gen, &ch->usage);
        ngx_http_ai_gateway_gen_map_end(gen);

        ngx_http_ai_gateway_gen_raw(gen, (u_char *) "\n\n", 2);

        ngx_http_ai_gateway_chunk_check(ch);

        if (ch->done) {
            return;
        }
    }

    ngx_http_ai_gateway_gen_raw(gen, (u_char *) "data: [DONE]\n\n", 14);

    ch->done = 1;
}


/*
 * The stream's last event: "data: {"error":{...}}", no [DONE] (which
 * would tell the client the answer is complete).
 */

void
ngx_http_ai_gateway_chunk_error(ngx_http_ai_gateway_chunks_t *ch,
    ngx_str_t *message, const char *type, ngx_str_t *code)
{
    ngx_http_ai_gateway_gen_t  *gen;

    if (ch->done) {
        return;
    }

    static u_char  failed[] =
        "data: {\"error\":{\"message\":\"the gateway could not encode an "
        "error\",\"type\":\"server_error\",\"param\":null,\"code\":null}}"
        "\n\n";

    gen = &ch->gen;

    ch->mark = gen->len;

    ngx_http_ai_gateway_gen_raw(gen, (u_char *) "data: ", 6);
    ngx_http_ai_gateway_gen_reset(gen);
    ngx_http_ai_gateway_gen_error(gen, message, type, code);
    ngx_http_ai_gateway_gen_raw(gen, (u_char *) "\n\n", 2);

    if (gen->invalid) {
        gen->len = ch->mark;
        gen->invalid = 0;
        ngx_http_ai_gateway_gen_raw(gen, failed, sizeof(failed) - 1);
    }

    ch->done = 1;
    ch->compat->failed = 1;
}


/*
 * An error in the stream, e its "error" object: the type mapped from the
 * code (d->errors), else from the HTTP status in "code".
 */

void
ngx_http_ai_gateway_stream_error(ngx_http_ai_gateway_stream_t *s,
    ngx_http_ai_gateway_dialect_t *d, yajl_val e)
{
    yajl_val     v;
    ngx_str_t    message, code;
    const char  *type;

    if (ngx_http_ai_gateway_json_str(ngx_http_ai_gateway_json_get(e,
                                                                  "message"),
                                     &message)
        != NGX_OK)
    {
        ngx_str_set(&message, "the provider reported an error");
    }

    v = ngx_http_ai_gateway_json_get(e, d->code);

    ngx_str_null(&code);
    (void) ngx_http_ai_gateway_json_str(v, &code);

    if (d->errors != NULL) {
        type = ngx_http_ai_gateway_map(d->errors, v, "server_error");

    } else {
        v = ngx_http_ai_gateway_json_get(e, "code");

        type = ngx_http_ai_gateway_error_type(
                   (YAJL_IS_INTEGER(v) && v->u.number.i > 0
                    && v->u.number.i < 1000)
                   ? (ngx_uint_t) v->u.number.i : 500);
    }

    ngx_http_ai_gateway_chunk_error(&s->chunks, &message, type, &code);
}
