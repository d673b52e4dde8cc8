
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <yajl/yajl_tree.h>

#include "ngx_http_ai_gateway_openai.h"


/*
 * The OpenAI side of a translated response: a "chat.completion" built
 * from what a dialect collects (choices with their text, reasoning, tool
 * calls and thinking blocks, usage), and OpenAI's error object made from
 * a provider's error body.  The builders of a tool call, a thinking block,
 * usage and an error are shared with the stream loop (chunk.c), which
 * calls them; nothing here calls the stream loop.
 */


static ngx_int_t ngx_http_ai_gateway_join(ngx_pool_t *pool, ngx_array_t *a,
    ngx_str_t *out);


/* responses */

ngx_int_t
ngx_http_ai_gateway_completion_init(ngx_http_ai_gateway_completion_t *cmp,
    ngx_pool_t *pool)
{
    ngx_memzero(cmp, sizeof(ngx_http_ai_gateway_completion_t));

    cmp->pool = pool;

    return ngx_array_init(&cmp->choices, pool, 1,
                          sizeof(ngx_http_ai_gateway_choice_t));
}


/* the choice of that index, added when new */

ngx_http_ai_gateway_choice_t *
ngx_http_ai_gateway_completion_choice(ngx_http_ai_gateway_completion_t *cmp,
    ngx_uint_t index)
{
    ngx_uint_t                     i;
    ngx_http_ai_gateway_choice_t  *ch;

    ch = cmp->choices.elts;

    for (i = 0; i < cmp->choices.nelts; i++) {
        if (ch[i].index == index) {
            return &ch[i];
        }
    }

    if (cmp->choices.nelts >= NGX_HTTP_AI_GATEWAY_MAX_CHOICES) {
        return NULL;
    }

    ch = ngx_array_push(&cmp->choices);
    if (ch == NULL) {
        return NULL;
    }

    ngx_memzero(ch, sizeof(ngx_http_ai_gateway_choice_t));

    ch->index = index;

    if (ngx_array_init(&ch->content, cmp->pool, 1, sizeof(ngx_str_t))
        != NGX_OK
        || ngx_array_init(&ch->reasoning, cmp->pool, 1, sizeof(ngx_str_t))
           != NGX_OK
        || ngx_array_init(&ch->calls, cmp->pool, 1,
                          sizeof(ngx_http_ai_gateway_tool_call_t))
           != NGX_OK
        || ngx_array_init(&ch->blocks, cmp->pool, 1, sizeof(yajl_val))
           != NGX_OK)
    {
        return NULL;
    }

    return ch;
}


ngx_int_t
ngx_http_ai_gateway_choice_text(ngx_http_ai_gateway_choice_t *ch,
    ngx_str_t *text, ngx_uint_t reasoning)
{
    ngx_str_t  *s;

    s = ngx_array_push(reasoning ? &ch->reasoning : &ch->content);
    if (s == NULL) {
        return NGX_ERROR;
    }

    *s = *text;

    return NGX_OK;
}


ngx_http_ai_gateway_tool_call_t *
ngx_http_ai_gateway_choice_call(ngx_http_ai_gateway_choice_t *ch)
{
    ngx_http_ai_gateway_tool_call_t  *call;

    call = ngx_array_push(&ch->calls);
    if (call == NULL) {
        return NULL;
    }

    ngx_memzero(call, sizeof(ngx_http_ai_gateway_tool_call_t));

    return call;
}


/* a tool call's "arguments": the JSON text of args, "{}" when absent */

ngx_int_t
ngx_http_ai_gateway_call_args(ngx_pool_t *pool,
    ngx_http_ai_gateway_tool_call_t *call, yajl_val args)
{
    if (args == NULL) {
        ngx_str_set(&call->arguments, "{}");
        return NGX_OK;
    }

    return ngx_http_ai_gateway_json_text(pool, args, &call->arguments);
}


static ngx_int_t
ngx_http_ai_gateway_join(ngx_pool_t *pool, ngx_array_t *a, ngx_str_t *out)
{
    u_char      *p;
    size_t       len;
    ngx_str_t   *s;
    ngx_uint_t   i;

    s = a->elts;

    if (a->nelts == 1) {
        *out = s[0];
        return NGX_OK;
    }

    len = 0;

    for (i = 0; i < a->nelts; i++) {
        len += s[i].len;
    }

    out->len = len;
    out->data = ngx_pnalloc(pool, len + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = out->data;

    for (i = 0; i < a->nelts; i++) {
        p = ngx_cpymem(p, s[i].data, s[i].len);
    }

    return NGX_OK;
}


/*
 * {"id","object":"chat.completion","created","model","choices":[{"index",
 *  "message":{"role":"assistant","content","reasoning_content"?,
 *  "tool_calls"?},"finish_reason","logprobs":null}],"usage"?}
 */

ngx_int_t
ngx_http_ai_gateway_completion_done(ngx_http_ai_gateway_completion_t *cmp,
    ngx_http_ai_gateway_compat_t *c, ngx_str_t *out)
{
    ngx_str_t                         text;
    ngx_uint_t                        i, j;
    ngx_http_ai_gateway_gen_t         gen;
    ngx_http_ai_gateway_choice_t     *ch;
    ngx_http_ai_gateway_tool_call_t  *call;

    if (ngx_http_ai_gateway_gen_init(&gen, cmp->pool) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_ai_gateway_gen_map(&gen);

    ngx_http_ai_gateway_gen_literal(&gen, "id");
    ngx_http_ai_gateway_gen_string(&gen, c->id.len ? &c->id : &cmp->id);
    ngx_http_ai_gateway_gen_literal(&gen, "object");
    ngx_http_ai_gateway_gen_literal(&gen, "chat.completion");
    ngx_http_ai_gateway_gen_literal(&gen, "created");
    ngx_http_ai_gateway_gen_int(&gen, c->created);
    ngx_http_ai_gateway_gen_literal(&gen, "model");
    ngx_http_ai_gateway_gen_string(&gen,
                                   cmp->model.len ? &cmp->model : &c->model);

    ngx_http_ai_gateway_gen_literal(&gen, "choices");
    ngx_http_ai_gateway_gen_array(&gen);

    ch = cmp->choices.elts;

    for (i = 0; i < cmp->choices.nelts; i++) {
        ngx_http_ai_gateway_gen_map(&gen);

        ngx_http_ai_gateway_gen_literal(&gen, "index");
        ngx_http_ai_gateway_gen_int(&gen, ch[i].index);

        ngx_http_ai_gateway_gen_literal(&gen, "message");
        ngx_http_ai_gateway_gen_map(&gen);

        ngx_http_ai_gateway_gen_literal(&gen, "role");
        ngx_http_ai_gateway_gen_literal(&gen, "assistant");

        ngx_http_ai_gateway_gen_literal(&gen, "content");

        if (ch[i].content.nelts == 0) {
            ngx_http_ai_gateway_gen_null(&gen);

        } else {
            if (ngx_http_ai_gateway_join(cmp->pool, &ch[i].content, &text)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            if (text.len == 0 && ch[i].calls.nelts) {
                ngx_http_ai_gateway_gen_null(&gen);

            } else {
                ngx_http_ai_gateway_gen_string(&gen, &text);
            }
        }

        if (ch[i].reasoning.nelts) {
            if (ngx_http_ai_gateway_join(cmp->pool, &ch[i].reasoning, &text)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            if (text.len) {
                ngx_http_ai_gateway_gen_literal(&gen, "reasoning_content");
                ngx_http_ai_gateway_gen_string(&gen, &text);
            }
        }

        if (ch[i].blocks.nelts) {
            /* for the client to send back in its next turn */

            ngx_http_ai_gateway_gen_literal(&gen, "thinking_blocks");
            ngx_http_ai_gateway_gen_array(&gen);

            for (j = 0; j < ch[i].blocks.nelts; j++) {
                ngx_http_ai_gateway_gen_block(&gen,
                                         ((yajl_val *) ch[i].blocks.elts)[j]);
            }

            ngx_http_ai_gateway_gen_array_end(&gen);
        }

        if (ch[i].calls.nelts) {
            ngx_http_ai_gateway_gen_literal(&gen, "tool_calls");
            ngx_http_ai_gateway_gen_array(&gen);

            call = ch[i].calls.elts;

            for (j = 0; j < ch[i].calls.nelts; j++) {
                ngx_http_ai_gateway_gen_map(&gen);
                ngx_http_ai_gateway_gen_call(&gen, &call[j].id, &call[j].name,
                                             &call[j].arguments,
                                             &call[j].signature);
                ngx_http_ai_gateway_gen_map_end(&gen);
            }

            ngx_http_ai_gateway_gen_array_end(&gen);
        }

        ngx_http_ai_gateway_gen_map_end(&gen);

        ngx_http_ai_gateway_gen_literal(&gen, "finish_reason");

        if (ch[i].finish != NULL) {
            ngx_http_ai_gateway_gen_str(&gen, (u_char *) ch[i].finish,
                                        ngx_strlen(ch[i].finish));

        } else {
            ngx_http_ai_gateway_gen_null(&gen);
        }

        ngx_http_ai_gateway_gen_literal(&gen, "logprobs");
        ngx_http_ai_gateway_gen_null(&gen);

        ngx_http_ai_gateway_gen_map_end(&gen);
    }

    ngx_http_ai_gateway_gen_array_end(&gen);

    if (cmp->has_usage) {
        ngx_http_ai_gateway_gen_literal(&gen, "usage");
        ngx_http_ai_gateway_gen_usage(&gen, &cmp->usage);

        ngx_http_ai_gateway_usage_report(c, &cmp->usage);
    }

    ngx_http_ai_gateway_gen_map_end(&gen);

    return ngx_http_ai_gateway_gen_done(&gen, out);
}


/*
 * A tool call's "id","type":"function","function":{"name","arguments"},
 * and a Gemini thought signature where Google's OpenAI-compatible API has
 * it: "extra_content":{"google":{"thought_signature"}}
 */

void
ngx_http_ai_gateway_gen_call(ngx_http_ai_gateway_gen_t *gen, ngx_str_t *id,
    ngx_str_t *name, ngx_str_t *arguments, ngx_str_t *signature)
{
    ngx_http_ai_gateway_gen_literal(gen, "id");
    ngx_http_ai_gateway_gen_string(gen, id);
    ngx_http_ai_gateway_gen_literal(gen, "type");
    ngx_http_ai_gateway_gen_literal(gen, "function");
    ngx_http_ai_gateway_gen_literal(gen, "function");
    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_literal(gen, "name");
    ngx_http_ai_gateway_gen_string(gen, name);
    ngx_http_ai_gateway_gen_literal(gen, "arguments");
    ngx_http_ai_gateway_gen_string(gen, arguments);
    ngx_http_ai_gateway_gen_map_end(gen);

    if (signature != NULL && signature->len) {
        ngx_http_ai_gateway_gen_literal(gen, "extra_content");
        ngx_http_ai_gateway_gen_map(gen);
        ngx_http_ai_gateway_gen_literal(gen, "google");
        ngx_http_ai_gateway_gen_map(gen);
        ngx_http_ai_gateway_gen_literal(gen, "thought_signature");
        ngx_http_ai_gateway_gen_string(gen, signature);
        ngx_http_ai_gateway_gen_map_end(gen);
        ngx_http_ai_gateway_gen_map_end(gen);
    }
}


/*
 * A thinking block with the keys Anthropic takes back: "type" with
 * "thinking" and "signature", or "data" (redacted_thinking); the block
 * has been checked (a response's, or a request's by
 * ngx_http_ai_gateway_anthropic_blocks())
 */

void
ngx_http_ai_gateway_gen_block(ngx_http_ai_gateway_gen_t *gen, yajl_val block)
{
    ngx_uint_t   i;
    const char  *keys[3] = { "type", "thinking", "signature" };

    if (ngx_http_ai_gateway_json_is(ngx_http_ai_gateway_json_get(block,
                                                                 "type"),
                                    "redacted_thinking"))
    {
        keys[1] = "data";
        keys[2] = NULL;
    }

    ngx_http_ai_gateway_gen_map(gen);

    for (i = 0; i < 3 && keys[i]; i++) {
        ngx_http_ai_gateway_gen_str(gen, (u_char *) keys[i],
                                    ngx_strlen(keys[i]));
        ngx_http_ai_gateway_gen_value(gen,
                                 ngx_http_ai_gateway_json_get(block, keys[i]));
    }

    ngx_http_ai_gateway_gen_map_end(gen);
}


void
ngx_http_ai_gateway_gen_usage(ngx_http_ai_gateway_gen_t *gen,
    ngx_http_ai_gateway_usage_t *u)
{
    ngx_http_ai_gateway_gen_map(gen);

    ngx_http_ai_gateway_gen_literal(gen, "prompt_tokens");
    ngx_http_ai_gateway_gen_int(gen, u->prompt);
    ngx_http_ai_gateway_gen_literal(gen, "completion_tokens");
    ngx_http_ai_gateway_gen_int(gen, u->completion);
    ngx_http_ai_gateway_gen_literal(gen, "total_tokens");
    ngx_http_ai_gateway_gen_int(gen, u->prompt + u->completion);

    ngx_http_ai_gateway_gen_literal(gen, "prompt_tokens_details");
    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_literal(gen, "cached_tokens");
    ngx_http_ai_gateway_gen_int(gen, u->cached);
    ngx_http_ai_gateway_gen_map_end(gen);

    ngx_http_ai_gateway_gen_literal(gen, "completion_tokens_details");
    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_literal(gen, "reasoning_tokens");
    ngx_http_ai_gateway_gen_int(gen, u->reasoning);
    ngx_http_ai_gateway_gen_map_end(gen);

    ngx_http_ai_gateway_gen_map_end(gen);
}


void
ngx_http_ai_gateway_usage_report(ngx_http_ai_gateway_compat_t *c,
    ngx_http_ai_gateway_usage_t *u)
{
    c->prompt_tokens = u->prompt;
    c->completion_tokens = u->completion;
    c->cached_tokens = u->cached;
    c->reasoning_tokens = u->reasoning;
    c->cache_write_tokens = u->cache_write;
    c->usage = 1;
}


/* a provider's name (a string value) mapped by a table, or dflt */

const char *
ngx_http_ai_gateway_map(ngx_http_ai_gateway_map_t *map, yajl_val name,
    const char *dflt)
{
    size_t  len;

    if (!YAJL_IS_STRING(name)) {
        return dflt;
    }

    len = ngx_strlen(name->u.string);

    for ( /* void */ ; map->name.len; map++) {
        if (map->name.len == len
            && ngx_strncmp(map->name.data, name->u.string, len) == 0)
        {
            return map->value;
        }
    }

    return dflt;
}


/* "call_<n>": buf has room for NGX_INT_T_LEN + 5 bytes */

void
ngx_http_ai_gateway_call_id(ngx_uint_t n, ngx_str_t *id, u_char *buf)
{
    id->data = buf;
    id->len = ngx_sprintf(buf, "call_%ui", n) - buf;
}


/* errors */

const char *
ngx_http_ai_gateway_error_type(ngx_uint_t status)
{
    switch (status) {

    case 401:
        return "authentication_error";

    case 403:
        return "permission_error";

    case 429:
        return "rate_limit_error";

    default:
        break;
    }

    if (status >= 400 && status < 500) {
        return "invalid_request_error";
    }

    return "server_error";
}


/* {"error":{"message","type","param":null,"code"}} */

void
ngx_http_ai_gateway_gen_error(ngx_http_ai_gateway_gen_t *gen,
    ngx_str_t *message, const char *type, ngx_str_t *code)
{
    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_literal(gen, "error");
    ngx_http_ai_gateway_gen_map(gen);

    ngx_http_ai_gateway_gen_literal(gen, "message");
    ngx_http_ai_gateway_gen_string(gen, message);
    ngx_http_ai_gateway_gen_literal(gen, "type");
    ngx_http_ai_gateway_gen_str(gen, (u_char *) type, ngx_strlen(type));
    ngx_http_ai_gateway_gen_literal(gen, "param");
    ngx_http_ai_gateway_gen_null(gen);
    ngx_http_ai_gateway_gen_literal(gen, "code");

    if (code != NULL && code->len) {
        ngx_http_ai_gateway_gen_string(gen, code);

    } else {
        ngx_http_ai_gateway_gen_null(gen);
    }

    ngx_http_ai_gateway_gen_map_end(gen);
    ngx_http_ai_gateway_gen_map_end(gen);
}


ngx_int_t
ngx_http_ai_gateway_error_body(ngx_pool_t *pool, ngx_str_t *message,
    const char *type, ngx_str_t *code, ngx_str_t *out)
{
    ngx_http_ai_gateway_gen_t  gen;

    if (ngx_http_ai_gateway_gen_init(&gen, pool) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_ai_gateway_gen_error(&gen, message, type, code);

    return (ngx_http_ai_gateway_gen_done(&gen, out) == NGX_OK)
           ? NGX_OK : NGX_ERROR;
}


/*
 * The message for a provider error body that is not the provider's JSON:
 * "the provider answered HTTP <status>: <the body's start>", with
 * invalid UTF-8 and control characters replaced by spaces.
 */

ngx_int_t
ngx_http_ai_gateway_error_text(ngx_pool_t *pool, ngx_uint_t status,
    u_char *body, size_t len, ngx_str_t *message)
{
    u_char    *p, *p2, *q, *last, *start;
    uint32_t   ch;

    p = ngx_pnalloc(pool, sizeof("the provider answered HTTP : ") - 1
                          + NGX_INT_T_LEN + NGX_HTTP_AI_GATEWAY_MAX_QUOTE);
    if (p == NULL) {
        return NGX_ERROR;
    }

    message->data = p;

    p = ngx_sprintf(p, "the provider answered HTTP %ui", status);

    last = body + len;

    while (body < last && (*body == ' ' || *body == '\t' || *body == '\r'
                           || *body == '\n'))
    {
        body++;
    }

    while (last > body && (last[-1] == ' ' || last[-1] == '\t'
                           || last[-1] == '\r' || last[-1] == '\n'))
    {
        last--;
    }

    if (body < last) {
        p = ngx_cpymem(p, ": ", 2);
        start = p;

        while (body < last) {
            q = body;

            if (*q < 0x80) {
                ch = *q++;

            } else if (*q >= 0xf5) {
                q++;
                ch = 0;

            } else {
                ch = ngx_utf8_decode(&q, last - body);

                /* ngx_utf8_decode() does not check continuation bytes */

                for (p2 = body + 1; ch <= 0x10ffff && p2 < q; p2++) {
                    if ((*p2 & 0xc0) != 0x80) {
                        ch = 0xffffffff;
                    }
                }

                if (ch > 0x10ffff || (ch >= 0xd800 && ch <= 0xdfff)) {
                    /* invalid or cut sequence: one byte becomes a space */
                    q = body + 1;
                    ch = 0;
                }
            }

            if ((size_t) (p - start) + (q - body)
                > NGX_HTTP_AI_GATEWAY_MAX_QUOTE)
            {
                break;
            }

            if (ch < 0x20 || ch == 0x7f) {
                *p++ = ' ';
                body = q;
                continue;
            }

            while (body < q) {
                *p++ = *body++;
            }
        }
    }

    message->len = p - message->data;

    return NGX_OK;
}


/*
 * A provider's error body to the OpenAI error object.  The provider's
 * JSON, {"error":{"message",...}} (or an array of them if d->array): its
 * message, its code (d->code), the type mapped from the code (d->errors)
 * or from the status.  Anything else: ngx_http_ai_gateway_error_text().
 */

ngx_int_t
ngx_http_ai_gateway_error_native(ngx_pool_t *pool,
    ngx_http_ai_gateway_dialect_t *d, ngx_uint_t status, u_char *body,
    size_t len, ngx_str_t *out)
{
    yajl_val     v, e;
    ngx_int_t    rc;
    ngx_str_t    message, code;
    const char  *type;

    type = ngx_http_ai_gateway_error_type(status);
    ngx_str_null(&code);

    rc = ngx_http_ai_gateway_json_parse(pool, body, len, &v);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_OK && d->array && YAJL_IS_ARRAY(v) && v->u.array.len) {
        v = v->u.array.values[0];
    }

    e = (rc == NGX_OK) ? ngx_http_ai_gateway_json_get(v, "error") : NULL;

    if (ngx_http_ai_gateway_json_str(ngx_http_ai_gateway_json_get(e,
                                                                  "message"),
                                     &message)
        == NGX_OK)
    {
        e = ngx_http_ai_gateway_json_get(e, d->code);

        if (d->errors != NULL) {
            type = ngx_http_ai_gateway_map(d->errors, e, type);
        }

        (void) ngx_http_ai_gateway_json_str(e, &code);

    } else if (ngx_http_ai_gateway_error_text(pool, status, body, len,
                                              &message)
               != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_ai_gateway_error_body(pool, &message, type, &code, out);
}
