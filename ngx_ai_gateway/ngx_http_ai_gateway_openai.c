
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <yajl/yajl_tree.h>

#include "ngx_http_ai_gateway_openai.h"


/*
 * The OpenAI side of a translated request: a Chat Completions request
 * read field by field and checked (what no provider can do is refused
 * with a message naming the field), then written as the dialect's native
 * request through its callbacks (ngx_http_ai_gateway_dialect_t): the
 * system text, the turns, the tools, the common settings.  A request is
 * refused rather than changed in meaning.
 */


#define NGX_HTTP_AI_GATEWAY_ERR_LEN   256


static ngx_int_t ngx_http_ai_gateway_openai_number(
    ngx_http_ai_gateway_openai_req_t *r, const char *key, yajl_val v,
    yajl_val *number);
static ngx_int_t ngx_http_ai_gateway_openai_tools(
    ngx_http_ai_gateway_openai_req_t *r, yajl_val v);
static ngx_int_t ngx_http_ai_gateway_openai_choice(
    ngx_http_ai_gateway_openai_req_t *r, yajl_val v);
static ngx_int_t ngx_http_ai_gateway_openai_format(
    ngx_http_ai_gateway_openai_req_t *r, yajl_val v);
static ngx_int_t ngx_http_ai_gateway_openai_stop(
    ngx_http_ai_gateway_openai_req_t *r, yajl_val v);
static ngx_int_t ngx_http_ai_gateway_openai_effort(
    ngx_http_ai_gateway_openai_req_t *r, yajl_val v);
static ngx_int_t ngx_http_ai_gateway_openai_array(
    ngx_http_ai_gateway_openai_req_t *r, yajl_val v, ngx_array_t *a,
    size_t size);
static ngx_int_t ngx_http_ai_gateway_openai_content(
    ngx_http_ai_gateway_openai_req_t *r, yajl_val content, ngx_uint_t media,
    ngx_array_t *parts);
static ngx_int_t ngx_http_ai_gateway_openai_part(
    ngx_http_ai_gateway_openai_req_t *r, yajl_val v, ngx_uint_t media,
    ngx_http_ai_gateway_part_t *part);
static ngx_int_t ngx_http_ai_gateway_data_url(ngx_str_t *url,
    ngx_str_t *mime, ngx_str_t *data);


/* "arguments": "" stands for no arguments */
static struct yajl_val_s  ngx_http_ai_gateway_empty_object = {
    yajl_t_object, { NULL }
};


/*
 * reasoning_effort to a thinking budget in tokens, the same for both
 * providers ("none": no thinking; 1024 is Anthropic's smallest budget,
 * 24576 Gemini 2.5 Flash's largest)
 */

static struct {
    ngx_str_t                      name;
    ngx_int_t                      budget;
} ngx_http_ai_gateway_efforts[] = {
    { ngx_string("none"), 0 },
    { ngx_string("minimal"), 1024 },
    { ngx_string("low"), 1024 },
    { ngx_string("medium"), 8192 },
    { ngx_string("high"), 24576 },
    { ngx_null_string, 0 }
};


/*
 * Request fields read elsewhere or dropped.  Dropped fields do not change
 * what the model says: "store", "metadata" (OpenAI's stored completions),
 * "service_tier", "prompt_cache_key", "safety_identifier" (routing and
 * billing hints) and "prediction" (a latency hint).
 */

static char  *ngx_http_ai_gateway_dropped[] = {
    "store",
    "metadata",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
    "prediction",
    NULL
};


/* requests */

/*
 * Reads and checks the client's OpenAI request.  What no provider can do
 * is refused here, then what the dialect cannot express (d->refuse).  Sets
 * the stream flags of c and opens the native request's object in gen.
 */

ngx_int_t
ngx_http_ai_gateway_openai_request(ngx_pool_t *pool, yajl_val req,
    ngx_http_ai_gateway_dialect_t *d, ngx_http_ai_gateway_compat_t *c,
    ngx_http_ai_gateway_openai_req_t *r, ngx_http_ai_gateway_gen_t *gen,
    ngx_str_t *err)
{
    ngx_int_t  rc;

    rc = ngx_http_ai_gateway_openai_read(pool, req, d, r, err,
                                         ngx_http_ai_gateway_openai_field);
    if (rc != NGX_OK) {
        return rc;
    }

    if (r->messages == NULL) {
        return ngx_http_ai_gateway_openai_fail(r,
                                      "\"messages\" must be a non-empty array");
    }

    if (r->tool_choice != NGX_HTTP_AI_GATEWAY_CHOICE_UNSET
        && r->tools.nelts == 0)
    {
        if (r->tool_choice == NGX_HTTP_AI_GATEWAY_CHOICE_REQUIRED
            || r->tool_choice == NGX_HTTP_AI_GATEWAY_CHOICE_FUNCTION)
        {
            return ngx_http_ai_gateway_openai_fail(r,
                                 "\"tool_choice\" requires \"tools\"");
        }

        /* "auto" and "none" without tools: nothing to say */

        r->tool_choice = NGX_HTTP_AI_GATEWAY_CHOICE_UNSET;
    }

    if (!r->stream) {
        r->include_usage = 0;
    }

    rc = d->refuse(r);
    if (rc != NGX_OK) {
        return rc;
    }

    c->stream = r->stream;
    c->include_usage = r->include_usage;

    return ngx_http_ai_gateway_openai_open(r, gen);
}


/* the request's fields, each read by "field" */

ngx_int_t
ngx_http_ai_gateway_openai_read(ngx_pool_t *pool, yajl_val req,
    ngx_http_ai_gateway_dialect_t *d, ngx_http_ai_gateway_openai_req_t *r,
    ngx_str_t *err, ngx_http_ai_gateway_field_pt field)
{
    size_t     i;
    ngx_int_t  rc;

    ngx_memzero(r, sizeof(ngx_http_ai_gateway_openai_req_t));

    r->pool = pool;
    r->dialect = d;
    r->provider = d->provider;
    r->err = err;
    r->n = 1;

    if (ngx_array_init(&r->tools, pool, 4, sizeof(ngx_http_ai_gateway_tool_t))
        != NGX_OK
        || ngx_array_init(&r->stop, pool, 4, sizeof(ngx_str_t)) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (!YAJL_IS_OBJECT(req)) {
        return ngx_http_ai_gateway_openai_fail(r,
                                      "the request must be a JSON object");
    }

    for (i = 0; i < req->u.object.len; i++) {
        rc = field(r, req->u.object.keys[i], req->u.object.values[i]);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


/* the native request's object opened */

ngx_int_t
ngx_http_ai_gateway_openai_open(ngx_http_ai_gateway_openai_req_t *r,
    ngx_http_ai_gateway_gen_t *gen)
{
    if (ngx_http_ai_gateway_gen_init(gen, r->pool) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_ai_gateway_gen_map(gen);

    return NGX_OK;
}


/*
 * The text parts of the system and developer messages, in order; every
 * message is checked for a "role" on the way.
 */

ngx_int_t
ngx_http_ai_gateway_openai_system(ngx_http_ai_gateway_openai_req_t *r,
    ngx_array_t *parts)
{
    size_t     i;
    yajl_val   m, role;
    ngx_int_t  rc;

    if (ngx_array_init(parts, r->pool, 1, sizeof(ngx_http_ai_gateway_part_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < r->messages->u.array.len; i++) {
        m = r->messages->u.array.values[i];
        role = ngx_http_ai_gateway_json_get(m, "role");
        r->msg = i;

        if (!YAJL_IS_STRING(role)) {
            return ngx_http_ai_gateway_openai_fail(r,
                                 "messages[%ui] needs a \"role\"", i);
        }

        if (!ngx_http_ai_gateway_json_is(role, "system")
            && !ngx_http_ai_gateway_json_is(role, "developer"))
        {
            continue;
        }

        rc = ngx_http_ai_gateway_openai_content(r,
                                   ngx_http_ai_gateway_json_get(m, "content"),
                                   0, parts);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


/* a turn opened: {"role":role,<the dialect's content key>: */

void
ngx_http_ai_gateway_gen_turn(ngx_http_ai_gateway_gen_t *gen,
    ngx_http_ai_gateway_openai_req_t *r, const char *role)
{
    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_literal(gen, "role");
    ngx_http_ai_gateway_gen_str(gen, (u_char *) role, ngx_strlen(role));
    ngx_http_ai_gateway_gen_str(gen, (u_char *) r->dialect->content,
                                ngx_strlen(r->dialect->content));
}


/*
 * The other messages, in order, as the dialect's turns (an array), after
 * ngx_http_ai_gateway_openai_system() checked every "role"; consecutive
 * tool results are one user turn.  "data" is the dialect's, passed to its
 * turn writers.
 */

ngx_int_t
ngx_http_ai_gateway_openai_messages(ngx_http_ai_gateway_openai_req_t *r,
    ngx_http_ai_gateway_gen_t *gen, void *data)
{
    size_t                          i;
    yajl_val                        m, role;
    ngx_int_t                       rc;
    ngx_uint_t                      results;
    ngx_http_ai_gateway_dialect_t  *d;

    d = r->dialect;
    results = 0;

    ngx_http_ai_gateway_gen_array(gen);

    for (i = 0; i < r->messages->u.array.len; i++) {
        m = r->messages->u.array.values[i];
        role = ngx_http_ai_gateway_json_get(m, "role");
        r->msg = i;

        if (ngx_http_ai_gateway_json_is(role, "system")
            || ngx_http_ai_gateway_json_is(role, "developer"))
        {
            continue;
        }

        if (ngx_http_ai_gateway_json_is(role, "tool")) {

            if (!results) {
                results = 1;

                ngx_http_ai_gateway_gen_turn(gen, r, "user");
                ngx_http_ai_gateway_gen_array(gen);
            }

            rc = d->result(r, gen, m, data);
            if (rc != NGX_OK) {
                return rc;
            }

            continue;
        }

        if (results) {
            results = 0;

            ngx_http_ai_gateway_gen_array_end(gen);
            ngx_http_ai_gateway_gen_map_end(gen);
        }

        if (ngx_http_ai_gateway_json_is(role, "user")) {
            rc = d->user(r, gen, m, data);

        } else if (ngx_http_ai_gateway_json_is(role, "assistant")) {
            rc = d->assistant(r, gen, m, data);

        } else {
            rc = ngx_http_ai_gateway_openai_fail(r,
                            "messages[%ui]: role \"%s\" is not supported for "
                            "%s models", i, role->u.string, r->provider);
        }

        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (results) {
        ngx_http_ai_gateway_gen_array_end(gen);
        ngx_http_ai_gateway_gen_map_end(gen);
    }

    ngx_http_ai_gateway_gen_array_end(gen);

    return NGX_OK;
}


/* a user message's parts, images and files allowed; its turn opened */

ngx_int_t
ngx_http_ai_gateway_openai_user(ngx_http_ai_gateway_openai_req_t *r,
    ngx_http_ai_gateway_gen_t *gen, yajl_val msg, ngx_array_t *parts)
{
    ngx_int_t  rc;

    rc = ngx_http_ai_gateway_openai_parts(r, msg, 1, parts);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_http_ai_gateway_gen_turn(gen, r, "user");

    return NGX_OK;
}


/* the native request's object closed and its text */

ngx_int_t
ngx_http_ai_gateway_openai_done(ngx_http_ai_gateway_openai_req_t *r,
    ngx_http_ai_gateway_gen_t *gen, ngx_str_t *out)
{
    ngx_int_t  rc;

    ngx_http_ai_gateway_gen_map_end(gen);

    rc = ngx_http_ai_gateway_gen_done(gen, out);

    if (rc == NGX_DECLINED) {
        return ngx_http_ai_gateway_openai_fail(r,
                      "the request has invalid UTF-8 or is nested too deeply");
    }

    return rc;
}


ngx_int_t
ngx_http_ai_gateway_openai_field(ngx_http_ai_gateway_openai_req_t *r,
    const char *key, yajl_val v)
{
    yajl_val     o;
    ngx_uint_t   i;

    if (ngx_strcmp(key, "model") == 0) {
        if (ngx_http_ai_gateway_json_str(v, &r->model) != NGX_OK) {
            return ngx_http_ai_gateway_openai_fail(r,
                                         "\"model\" must be a string");
        }

        return NGX_OK;
    }

    if (ngx_strcmp(key, "messages") == 0) {
        if (!YAJL_IS_ARRAY(v) || v->u.array.len == 0) {
            return ngx_http_ai_gateway_openai_fail(r,
                                      "\"messages\" must be a non-empty array");
        }

        for (i = 0; i < v->u.array.len; i++) {
            if (!YAJL_IS_OBJECT(v->u.array.values[i])) {
                return ngx_http_ai_gateway_openai_fail(r,
                                  "messages[%ui] must be an object", i);
            }
        }

        r->messages = v;
        return NGX_OK;
    }

    if (ngx_strcmp(key, "tools") == 0) {
        return ngx_http_ai_gateway_openai_tools(r, v);
    }

    if (ngx_strcmp(key, "tool_choice") == 0) {
        return ngx_http_ai_gateway_openai_choice(r, v);
    }

    if (ngx_strcmp(key, "parallel_tool_calls") == 0) {
        if (YAJL_IS_FALSE(v)) {
            r->no_parallel = 1;

        } else if (!YAJL_IS_TRUE(v) && !YAJL_IS_NULL(v)) {
            return ngx_http_ai_gateway_openai_fail(r,
                             "\"parallel_tool_calls\" must be a boolean");
        }

        return NGX_OK;
    }

    if (ngx_strcmp(key, "response_format") == 0) {
        return ngx_http_ai_gateway_openai_format(r, v);
    }

    if (ngx_strcmp(key, "stop") == 0) {
        return ngx_http_ai_gateway_openai_stop(r, v);
    }

    if (ngx_strcmp(key, "temperature") == 0) {
        return ngx_http_ai_gateway_openai_number(r, key, v, &r->temperature);
    }

    if (ngx_strcmp(key, "top_p") == 0) {
        return ngx_http_ai_gateway_openai_number(r, key, v, &r->top_p);
    }

    if (ngx_strcmp(key, "top_k") == 0) {
        return ngx_http_ai_gateway_openai_number(r, key, v, &r->top_k);
    }

    if (ngx_strcmp(key, "seed") == 0) {
        return ngx_http_ai_gateway_openai_number(r, key, v, &r->seed);
    }

    if (ngx_strcmp(key, "presence_penalty") == 0) {
        return ngx_http_ai_gateway_openai_number(r, key, v,
                                                 &r->presence_penalty);
    }

    if (ngx_strcmp(key, "frequency_penalty") == 0) {
        return ngx_http_ai_gateway_openai_number(r, key, v,
                                                 &r->frequency_penalty);
    }

    if (ngx_strcmp(key, "max_tokens") == 0
        || ngx_strcmp(key, "max_completion_tokens") == 0)
    {
        if (YAJL_IS_NULL(v)) {
            return NGX_OK;
        }

        if (!YAJL_IS_INTEGER(v) || v->u.number.i < 1) {
            return ngx_http_ai_gateway_openai_fail(r,
                              "\"%s\" must be a positive integer", key);
        }

        /* max_completion_tokens wins over the deprecated max_tokens */

        if (!r->has_max_tokens || key[4] == 'c') {
            r->max_tokens = v->u.number.i;
            r->has_max_tokens = 1;
        }

        return NGX_OK;
    }

    if (ngx_strcmp(key, "n") == 0) {
        if (YAJL_IS_NULL(v)) {
            return NGX_OK;
        }

        if (!YAJL_IS_INTEGER(v) || v->u.number.i < 1) {
            return ngx_http_ai_gateway_openai_fail(r,
                                      "\"n\" must be a positive integer");
        }

        r->n = (v->u.number.i > NGX_HTTP_AI_GATEWAY_MAX_CHOICES)
               ? NGX_HTTP_AI_GATEWAY_MAX_CHOICES + 1 : v->u.number.i;

        return NGX_OK;
    }

    if (ngx_strcmp(key, "user") == 0) {
        if (YAJL_IS_NULL(v)) {
            return NGX_OK;
        }

        if (ngx_http_ai_gateway_json_str(v, &r->user) != NGX_OK) {
            return ngx_http_ai_gateway_openai_fail(r,
                                          "\"user\" must be a string");
        }

        return NGX_OK;
    }

    if (ngx_strcmp(key, "reasoning_effort") == 0) {
        return ngx_http_ai_gateway_openai_effort(r, v);
    }

    if (ngx_strcmp(key, "stream") == 0) {
        if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v) && !YAJL_IS_NULL(v)) {
            return ngx_http_ai_gateway_openai_fail(r,
                                        "\"stream\" must be a boolean");
        }

        r->stream = YAJL_IS_TRUE(v);
        return NGX_OK;
    }

    if (ngx_strcmp(key, "stream_options") == 0) {
        if (YAJL_IS_NULL(v)) {
            return NGX_OK;
        }

        if (!YAJL_IS_OBJECT(v)) {
            return ngx_http_ai_gateway_openai_fail(r,
                                   "\"stream_options\" must be an object");
        }

        o = ngx_http_ai_gateway_json_get(v, "include_usage");
        r->include_usage = YAJL_IS_TRUE(o);

        /* include_obfuscation and others only shape the stream */

        return NGX_OK;
    }

    if (ngx_strcmp(key, "logprobs") == 0) {
        if (YAJL_IS_TRUE(v)) {
            return ngx_http_ai_gateway_openai_fail(r,
                         "\"logprobs\" is not supported for %s models",
                         r->provider);
        }

        return NGX_OK;
    }

    if (ngx_strcmp(key, "logit_bias") == 0) {
        if (YAJL_IS_NULL(v) || (YAJL_IS_OBJECT(v) && v->u.object.len == 0)) {
            return NGX_OK;
        }

        return ngx_http_ai_gateway_openai_fail(r,
                       "\"logit_bias\" is not supported for %s models",
                       r->provider);
    }

    if (ngx_strcmp(key, "modalities") == 0) {
        if (YAJL_IS_NULL(v)
            || (YAJL_IS_ARRAY(v) && v->u.array.len == 1
                && ngx_http_ai_gateway_json_is(v->u.array.values[0], "text")))
        {
            return NGX_OK;
        }

        return ngx_http_ai_gateway_openai_fail(r,
                       "only the \"text\" modality is supported for %s models",
                       r->provider);
    }

    if (ngx_strcmp(key, "top_logprobs") == 0
        || ngx_strcmp(key, "audio") == 0
        || ngx_strcmp(key, "web_search_options") == 0
        || ngx_strcmp(key, "verbosity") == 0)
    {
        if (YAJL_IS_NULL(v)) {
            return NGX_OK;
        }

        return ngx_http_ai_gateway_openai_fail(r,
                               "\"%s\" is not supported for %s models",
                               key, r->provider);
    }

    if (ngx_strcmp(key, "functions") == 0
        || ngx_strcmp(key, "function_call") == 0)
    {
        if (YAJL_IS_NULL(v)) {
            return NGX_OK;
        }

        return ngx_http_ai_gateway_openai_fail(r,
                       "\"%s\" is not supported, use \"tools\" and "
                       "\"tool_choice\"", key);
    }

    for (i = 0; ngx_http_ai_gateway_dropped[i] != NULL; i++) {
        if (ngx_strcmp(key, ngx_http_ai_gateway_dropped[i]) == 0) {
            return NGX_OK;
        }
    }

    return ngx_http_ai_gateway_openai_fail(r,
                       "unsupported parameter \"%s\" for %s models",
                       key, r->provider);
}


static ngx_int_t
ngx_http_ai_gateway_openai_number(ngx_http_ai_gateway_openai_req_t *r,
    const char *key, yajl_val v, yajl_val *number)
{
    if (YAJL_IS_NULL(v)) {
        *number = NULL;
        return NGX_OK;
    }

    if (!YAJL_IS_NUMBER(v)) {
        return ngx_http_ai_gateway_openai_fail(r, "\"%s\" must be a number",
                                               key);
    }

    *number = v;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_openai_tools(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val v)
{
    size_t                       i;
    yajl_val                     t, f, type;
    ngx_http_ai_gateway_tool_t  *tool;

    if (YAJL_IS_NULL(v)) {
        return NGX_OK;
    }

    if (!YAJL_IS_ARRAY(v)) {
        return ngx_http_ai_gateway_openai_fail(r,
                                               "\"tools\" must be an array");
    }

    for (i = 0; i < v->u.array.len; i++) {
        t = v->u.array.values[i];

        type = ngx_http_ai_gateway_json_get(t, "type");

        if (!ngx_http_ai_gateway_json_is(type, "function")) {
            return ngx_http_ai_gateway_openai_fail(r,
                          "tools[%ui]: only \"function\" tools are supported "
                          "for %s models", i, r->provider);
        }

        tool = ngx_array_push(&r->tools);
        if (tool == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(tool, sizeof(ngx_http_ai_gateway_tool_t));

        f = ngx_http_ai_gateway_json_get(t, "function");

        if (ngx_http_ai_gateway_json_str(ngx_http_ai_gateway_json_get(f,
                                                                      "name"),
                                         &tool->name)
            != NGX_OK
            || tool->name.len == 0)
        {
            return ngx_http_ai_gateway_openai_fail(r,
                                  "tools[%ui].function.name must be a string",
                                  i);
        }

        (void) ngx_http_ai_gateway_json_str(
                   ngx_http_ai_gateway_json_get(f, "description"),
                   &tool->description);

        tool->parameters = ngx_http_ai_gateway_json_get(f, "parameters");

        if (tool->parameters != NULL && YAJL_IS_NULL(tool->parameters)) {
            tool->parameters = NULL;
        }

        if (tool->parameters != NULL && !YAJL_IS_OBJECT(tool->parameters)) {
            return ngx_http_ai_gateway_openai_fail(r,
                          "tools[%ui].function.parameters must be an object",
                          i);
        }

        tool->strict = ngx_http_ai_gateway_json_get(f, "strict");

        if (!YAJL_IS_TRUE(tool->strict) && !YAJL_IS_FALSE(tool->strict)) {
            tool->strict = NULL;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_openai_choice(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val v)
{
    yajl_val  f;

    if (YAJL_IS_NULL(v)) {
        return NGX_OK;
    }

    if (ngx_http_ai_gateway_json_is(v, "auto")) {
        r->tool_choice = NGX_HTTP_AI_GATEWAY_CHOICE_AUTO;
        return NGX_OK;
    }

    if (ngx_http_ai_gateway_json_is(v, "none")) {
        r->tool_choice = NGX_HTTP_AI_GATEWAY_CHOICE_NONE;
        return NGX_OK;
    }

    if (ngx_http_ai_gateway_json_is(v, "required")) {
        r->tool_choice = NGX_HTTP_AI_GATEWAY_CHOICE_REQUIRED;
        return NGX_OK;
    }

    if (ngx_http_ai_gateway_json_is(ngx_http_ai_gateway_json_get(v, "type"),
                                    "function"))
    {
        f = ngx_http_ai_gateway_json_get(v, "function");

        if (ngx_http_ai_gateway_json_str(ngx_http_ai_gateway_json_get(f,
                                                                      "name"),
                                         &r->tool_name)
            == NGX_OK
            && r->tool_name.len)
        {
            r->tool_choice = NGX_HTTP_AI_GATEWAY_CHOICE_FUNCTION;
            return NGX_OK;
        }
    }

    return ngx_http_ai_gateway_openai_fail(r,
                     "\"tool_choice\" must be \"auto\", \"none\", "
                     "\"required\" or {\"type\":\"function\",\"function\":"
                     "{\"name\":...}} for %s models", r->provider);
}


static ngx_int_t
ngx_http_ai_gateway_openai_format(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val v)
{
    yajl_val  type, js;

    if (YAJL_IS_NULL(v)) {
        return NGX_OK;
    }

    type = ngx_http_ai_gateway_json_get(v, "type");

    if (ngx_http_ai_gateway_json_is(type, "text")) {
        r->format = NGX_HTTP_AI_GATEWAY_FORMAT_TEXT;
        return NGX_OK;
    }

    if (ngx_http_ai_gateway_json_is(type, "json_object")) {
        r->format = NGX_HTTP_AI_GATEWAY_FORMAT_JSON;
        return NGX_OK;
    }

    if (ngx_http_ai_gateway_json_is(type, "json_schema")) {
        js = ngx_http_ai_gateway_json_get(v, "json_schema");

        if (!YAJL_IS_OBJECT(js)) {
            return ngx_http_ai_gateway_openai_fail(r,
                          "\"response_format.json_schema\" must be an object");
        }

        r->schema = ngx_http_ai_gateway_json_get(js, "schema");

        if (!YAJL_IS_OBJECT(r->schema)) {
            return ngx_http_ai_gateway_openai_fail(r,
                   "\"response_format.json_schema.schema\" must be an object");
        }

        /* "name", "description" and "strict" only label the schema */

        r->format = NGX_HTTP_AI_GATEWAY_FORMAT_SCHEMA;
        return NGX_OK;
    }

    return ngx_http_ai_gateway_openai_fail(r,
                     "\"response_format.type\" must be \"text\", "
                     "\"json_object\" or \"json_schema\"");
}


static ngx_int_t
ngx_http_ai_gateway_openai_stop(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val v)
{
    size_t      i;
    ngx_str_t  *s;

    if (YAJL_IS_NULL(v)) {
        return NGX_OK;
    }

    if (YAJL_IS_STRING(v)) {
        s = ngx_array_push(&r->stop);
        if (s == NULL) {
            return NGX_ERROR;
        }

        (void) ngx_http_ai_gateway_json_str(v, s);
        return NGX_OK;
    }

    if (!YAJL_IS_ARRAY(v)) {
        return ngx_http_ai_gateway_openai_fail(r,
                          "\"stop\" must be a string or an array of strings");
    }

    for (i = 0; i < v->u.array.len; i++) {
        s = ngx_array_push(&r->stop);
        if (s == NULL) {
            return NGX_ERROR;
        }

        if (ngx_http_ai_gateway_json_str(v->u.array.values[i], s) != NGX_OK) {
            return ngx_http_ai_gateway_openai_fail(r,
                          "\"stop\" must be a string or an array of strings");
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_openai_effort(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val v)
{
    ngx_uint_t  i;

    if (YAJL_IS_NULL(v)) {
        return NGX_OK;
    }

    if (ngx_http_ai_gateway_json_str(v, &r->effort) == NGX_OK) {

        for (i = 0; ngx_http_ai_gateway_efforts[i].name.len; i++) {
            if (r->effort.len == ngx_http_ai_gateway_efforts[i].name.len
                && ngx_strncmp(r->effort.data,
                               ngx_http_ai_gateway_efforts[i].name.data,
                               r->effort.len)
                   == 0)
            {
                r->budget = ngx_http_ai_gateway_efforts[i].budget;
                r->has_effort = 1;
                return NGX_OK;
            }
        }
    }

    return ngx_http_ai_gateway_openai_fail(r,
                     "\"reasoning_effort\" must be \"none\", \"minimal\", "
                     "\"low\", \"medium\" or \"high\" for %s models",
                     r->provider);
}


/*
 * A message's "content" as checked parts: a string is one text part,
 * null none.  "media": images and files are allowed (user messages).
 */

ngx_int_t
ngx_http_ai_gateway_openai_parts(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val msg, ngx_uint_t media, ngx_array_t *parts)
{
    yajl_val  content;

    content = ngx_http_ai_gateway_json_get(msg, "content");

    if (ngx_http_ai_gateway_openai_array(r, content, parts,
                                         sizeof(ngx_http_ai_gateway_part_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_ai_gateway_openai_content(r, content, media, parts);
}


/* an array for the elements of v: as many as v has, or one */

static ngx_int_t
ngx_http_ai_gateway_openai_array(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val v, ngx_array_t *a, size_t size)
{
    return ngx_array_init(a, r->pool,
                          YAJL_IS_ARRAY(v) && v->u.array.len
                          ? v->u.array.len : 1,
                          size);
}


/* the checked parts of a message's "content" added to parts */

static ngx_int_t
ngx_http_ai_gateway_openai_content(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val content, ngx_uint_t media, ngx_array_t *parts)
{
    size_t                       i;
    ngx_int_t                    rc;
    ngx_http_ai_gateway_part_t  *part;

    if (content == NULL || YAJL_IS_NULL(content)) {
        return NGX_OK;
    }

    if (YAJL_IS_STRING(content)) {
        part = ngx_array_push(parts);
        if (part == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(part, sizeof(ngx_http_ai_gateway_part_t));

        part->type = NGX_HTTP_AI_GATEWAY_PART_TEXT;
        (void) ngx_http_ai_gateway_json_str(content, &part->text);

        return NGX_OK;
    }

    if (!YAJL_IS_ARRAY(content)) {
        return ngx_http_ai_gateway_openai_fail(r,
                   "messages[%ui]: \"content\" must be a string or an array "
                   "of parts", r->msg);
    }

    for (i = 0; i < content->u.array.len; i++) {
        part = ngx_array_push(parts);
        if (part == NULL) {
            return NGX_ERROR;
        }

        rc = ngx_http_ai_gateway_openai_part(r, content->u.array.values[i],
                                             media, part);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_openai_part(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val v, ngx_uint_t media, ngx_http_ai_gateway_part_t *part)
{
    yajl_val   type, o;
    ngx_str_t  url;

    ngx_memzero(part, sizeof(ngx_http_ai_gateway_part_t));

    type = ngx_http_ai_gateway_json_get(v, "type");

    if (ngx_http_ai_gateway_json_is(type, "text")
        || ngx_http_ai_gateway_json_is(type, "refusal"))
    {
        o = ngx_http_ai_gateway_json_get(v, type->u.string);

        if (ngx_http_ai_gateway_json_str(o, &part->text) != NGX_OK) {
            return ngx_http_ai_gateway_openai_fail(r,
                                 "messages[%ui]: a \"%s\" part needs a \"%s\" "
                                 "string", r->msg, type->u.string,
                                 type->u.string);
        }

        part->type = NGX_HTTP_AI_GATEWAY_PART_TEXT;
        return NGX_OK;
    }

    if (ngx_http_ai_gateway_json_is(type, "input_audio")) {
        return ngx_http_ai_gateway_openai_fail(r,
                             "messages[%ui]: audio input is not supported "
                             "for %s models", r->msg, r->provider);
    }

    if (!ngx_http_ai_gateway_json_is(type, "image_url")
        && !ngx_http_ai_gateway_json_is(type, "file"))
    {
        return ngx_http_ai_gateway_openai_fail(r,
                             "messages[%ui]: content parts of type \"%s\" "
                             "are not supported for %s models", r->msg,
                             YAJL_IS_STRING(type) ? type->u.string : "?",
                             r->provider);
    }

    if (!media) {
        return ngx_http_ai_gateway_openai_fail(r,
                             "messages[%ui]: \"%s\" parts are only supported "
                             "in user messages", r->msg, type->u.string);
    }

    if (type->u.string[0] == 'i') {
        o = ngx_http_ai_gateway_json_get(v, "image_url");

        if (YAJL_IS_OBJECT(o)) {
            /* "detail" is a resolution hint with no equivalent: dropped */
            o = ngx_http_ai_gateway_json_get(o, "url");
        }

        if (ngx_http_ai_gateway_json_str(o, &url) != NGX_OK) {
            return ngx_http_ai_gateway_openai_fail(r,
                                 "messages[%ui]: an \"image_url\" part needs a "
                                 "\"url\"", r->msg);
        }

        part->type = NGX_HTTP_AI_GATEWAY_PART_IMAGE;

        if ((url.len > 7 && ngx_strncasecmp(url.data, (u_char *) "http://", 7)
                            == 0)
            || (url.len > 8
                && ngx_strncasecmp(url.data, (u_char *) "https://", 8) == 0))
        {
            part->url = url;
            return NGX_OK;
        }

        if (ngx_http_ai_gateway_data_url(&url, &part->mime, &part->data)
            == NGX_OK)
        {
            return NGX_OK;
        }

        return ngx_http_ai_gateway_openai_fail(r,
                     "messages[%ui]: \"image_url.url\" must be an http(s) URL "
                     "or a base64 data URL", r->msg);
    }

    o = ngx_http_ai_gateway_json_get(v, "file");

    if (ngx_http_ai_gateway_json_get(o, "file_id") != NULL) {
        return ngx_http_ai_gateway_openai_fail(r,
                     "messages[%ui]: \"file.file_id\" is not supported for %s "
                     "models, send \"file.file_data\"", r->msg, r->provider);
    }

    if (ngx_http_ai_gateway_json_str(ngx_http_ai_gateway_json_get(o,
                                                                  "file_data"),
                                     &url)
        != NGX_OK
        || ngx_http_ai_gateway_data_url(&url, &part->mime, &part->data)
           != NGX_OK)
    {
        return ngx_http_ai_gateway_openai_fail(r,
                     "messages[%ui]: \"file.file_data\" must be a base64 data "
                     "URL", r->msg);
    }

    (void) ngx_http_ai_gateway_json_str(ngx_http_ai_gateway_json_get(o,
                                                                  "filename"),
                                        &part->filename);

    part->type = NGX_HTTP_AI_GATEWAY_PART_FILE;

    return NGX_OK;
}


/* "data:<mime>[;param]...;base64,<data>" */

static ngx_int_t
ngx_http_ai_gateway_data_url(ngx_str_t *url, ngx_str_t *mime,
    ngx_str_t *data)
{
    u_char  *p, *last, *comma, *semi;

    if (url->len < 5 || ngx_strncasecmp(url->data, (u_char *) "data:", 5) != 0)
    {
        return NGX_DECLINED;
    }

    p = url->data + 5;
    last = url->data + url->len;

    comma = ngx_strlchr(p, last, ',');

    if (comma == NULL
        || comma - p < 7
        || ngx_strncasecmp(comma - 7, (u_char *) ";base64", 7) != 0)
    {
        return NGX_DECLINED;
    }

    semi = ngx_strlchr(p, comma, ';');

    if (semi == p) {
        return NGX_DECLINED;
    }

    mime->data = p;
    mime->len = semi - p;

    data->data = comma + 1;
    data->len = last - comma - 1;

    return NGX_OK;
}


/* whether parts say anything: a part that is not empty text */

ngx_uint_t
ngx_http_ai_gateway_openai_some(ngx_array_t *parts)
{
    ngx_uint_t                   i;
    ngx_http_ai_gateway_part_t  *part;

    part = parts->elts;

    for (i = 0; i < parts->nelts; i++) {
        if (part[i].type != NGX_HTTP_AI_GATEWAY_PART_TEXT
            || part[i].text.len)
        {
            return 1;
        }
    }

    return 0;
}


/* the text of a message's content (string or text parts, concatenated) */

ngx_int_t
ngx_http_ai_gateway_openai_text(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val msg, ngx_str_t *text)
{
    u_char                      *p;
    size_t                       len;
    ngx_int_t                    rc;
    ngx_uint_t                   i;
    ngx_array_t                  parts;
    ngx_http_ai_gateway_part_t  *part;

    rc = ngx_http_ai_gateway_openai_parts(r, msg, 0, &parts);
    if (rc != NGX_OK) {
        return rc;
    }

    part = parts.elts;

    if (parts.nelts == 1) {
        *text = part[0].text;
        return NGX_OK;
    }

    len = 0;

    for (i = 0; i < parts.nelts; i++) {
        len += part[i].text.len;
    }

    text->len = len;
    text->data = ngx_pnalloc(r->pool, len + 1);
    if (text->data == NULL) {
        return NGX_ERROR;
    }

    p = text->data;

    for (i = 0; i < parts.nelts; i++) {
        p = ngx_cpymem(p, part[i].text.data, part[i].text.len);
    }

    return NGX_OK;
}


/* a tool message's "tool_call_id" */

ngx_int_t
ngx_http_ai_gateway_openai_call_id(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val msg, ngx_str_t *id)
{
    if (ngx_http_ai_gateway_json_str(ngx_http_ai_gateway_json_get(msg,
                                                              "tool_call_id"),
                                     id)
        != NGX_OK)
    {
        return ngx_http_ai_gateway_openai_fail(r,
                         "messages[%ui]: a tool message needs a "
                         "\"tool_call_id\"", r->msg);
    }

    return NGX_OK;
}


/* an assistant message's "tool_calls", arguments parsed */

ngx_int_t
ngx_http_ai_gateway_openai_calls(ngx_http_ai_gateway_openai_req_t *r,
    yajl_val msg, ngx_array_t *calls)
{
    size_t                       i;
    yajl_val                     tc, t, f, o;
    ngx_int_t                    rc;
    ngx_str_t                    args;
    ngx_http_ai_gateway_call_t  *call;

    tc = ngx_http_ai_gateway_json_get(msg, "tool_calls");

    if (ngx_http_ai_gateway_openai_array(r, tc, calls,
                                         sizeof(ngx_http_ai_gateway_call_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (tc == NULL || YAJL_IS_NULL(tc)) {
        return NGX_OK;
    }

    if (!YAJL_IS_ARRAY(tc)) {
        return ngx_http_ai_gateway_openai_fail(r,
                          "messages[%ui]: \"tool_calls\" must be an array",
                          r->msg);
    }

    for (i = 0; i < tc->u.array.len; i++) {
        t = tc->u.array.values[i];

        o = ngx_http_ai_gateway_json_get(t, "type");

        if (o != NULL && !ngx_http_ai_gateway_json_is(o, "function")) {
            return ngx_http_ai_gateway_openai_fail(r,
                        "messages[%ui]: only \"function\" tool calls are "
                        "supported for %s models", r->msg, r->provider);
        }

        call = ngx_array_push(calls);
        if (call == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(call, sizeof(ngx_http_ai_gateway_call_t));

        f = ngx_http_ai_gateway_json_get(t, "function");

        if (ngx_http_ai_gateway_json_str(ngx_http_ai_gateway_json_get(t, "id"),
                                         &call->id)
            != NGX_OK
            || ngx_http_ai_gateway_json_str(
                   ngx_http_ai_gateway_json_get(f, "name"), &call->name)
               != NGX_OK)
        {
            return ngx_http_ai_gateway_openai_fail(r,
                        "messages[%ui]: tool_calls[%ui] needs an \"id\" and a "
                        "\"function.name\"", r->msg, i);
        }

        o = ngx_http_ai_gateway_json_get(f, "arguments");

        if (o == NULL || YAJL_IS_NULL(o)) {
            call->args = &ngx_http_ai_gateway_empty_object;

        } else if (ngx_http_ai_gateway_json_str(o, &args) != NGX_OK) {
            return ngx_http_ai_gateway_openai_fail(r,
                        "messages[%ui]: tool_calls[%ui].function.arguments "
                        "must be a string", r->msg, i);

        } else if (args.len == 0) {
            call->args = &ngx_http_ai_gateway_empty_object;

        } else {
            rc = ngx_http_ai_gateway_json_parse(r->pool, args.data, args.len,
                                                &call->args);
            if (rc == NGX_ERROR) {
                return NGX_ERROR;
            }

            if (rc != NGX_OK || !YAJL_IS_OBJECT(call->args)) {
                return ngx_http_ai_gateway_openai_fail(r,
                        "messages[%ui]: tool_calls[%ui].function.arguments "
                        "must be a JSON object", r->msg, i);
            }
        }

        /* Google's OpenAI-compatible carrier of Gemini thought signatures */

        o = ngx_http_ai_gateway_json_get(t, "extra_content");
        o = ngx_http_ai_gateway_json_get(o, "google");

        (void) ngx_http_ai_gateway_json_str(
                   ngx_http_ai_gateway_json_get(o, "thought_signature"),
                   &call->signature);
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_gateway_openai_fail(ngx_http_ai_gateway_openai_req_t *r,
    const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    p = ngx_pnalloc(r->pool, NGX_HTTP_AI_GATEWAY_ERR_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    r->err->data = p;

    va_start(args, fmt);
    p = ngx_vslprintf(p, p + NGX_HTTP_AI_GATEWAY_ERR_LEN, fmt, args);
    va_end(args);

    r->err->len = p - r->err->data;

    return NGX_DECLINED;
}


/*
 * A text part as the dialect's text part, unless empty (both providers
 * refuse those): {"type":"text","text"} when "typed" (Anthropic's blocks),
 * else {"text"}.  Returns how many were written: 1 or 0.
 */

ngx_uint_t
ngx_http_ai_gateway_gen_text(ngx_http_ai_gateway_gen_t *gen, ngx_str_t *text,
    ngx_uint_t typed)
{
    if (text->len == 0) {
        return 0;
    }

    ngx_http_ai_gateway_gen_map(gen);

    if (typed) {
        ngx_http_ai_gateway_gen_literal(gen, "type");
        ngx_http_ai_gateway_gen_literal(gen, "text");
    }

    ngx_http_ai_gateway_gen_literal(gen, "text");
    ngx_http_ai_gateway_gen_string(gen, text);
    ngx_http_ai_gateway_gen_map_end(gen);

    return 1;
}


/* the text parts, in order, as above; returns how many were written */

ngx_uint_t
ngx_http_ai_gateway_gen_texts(ngx_http_ai_gateway_gen_t *gen,
    ngx_array_t *parts, ngx_uint_t typed)
{
    ngx_uint_t                   i, n;
    ngx_http_ai_gateway_part_t  *part;

    n = 0;
    part = parts->elts;

    for (i = 0; i < parts->nelts; i++) {
        n += ngx_http_ai_gateway_gen_text(gen, &part[i].text, typed);
    }

    return n;
}


/* a number of the request under the dialect's key, as sent, when set */

void
ngx_http_ai_gateway_gen_number(ngx_http_ai_gateway_gen_t *gen,
    const char *key, yajl_val v)
{
    if (v == NULL) {
        return;
    }

    ngx_http_ai_gateway_gen_str(gen, (u_char *) key, ngx_strlen(key));
    ngx_http_ai_gateway_gen_value(gen, v);
}


/*
 * The function tools, an array of {"name","description"?,...}: the rest
 * is the dialect's (d->tool).
 */

void
ngx_http_ai_gateway_gen_tools(ngx_http_ai_gateway_gen_t *gen,
    ngx_http_ai_gateway_openai_req_t *r)
{
    ngx_uint_t                   i;
    ngx_http_ai_gateway_tool_t  *tool;

    ngx_http_ai_gateway_gen_array(gen);

    tool = r->tools.elts;

    for (i = 0; i < r->tools.nelts; i++) {
        ngx_http_ai_gateway_gen_map(gen);

        ngx_http_ai_gateway_gen_literal(gen, "name");
        ngx_http_ai_gateway_gen_string(gen, &tool[i].name);

        if (tool[i].description.len) {
            ngx_http_ai_gateway_gen_literal(gen, "description");
            ngx_http_ai_gateway_gen_string(gen, &tool[i].description);
        }

        r->dialect->tool(gen, &tool[i]);

        ngx_http_ai_gateway_gen_map_end(gen);
    }

    ngx_http_ai_gateway_gen_array_end(gen);
}


void
ngx_http_ai_gateway_gen_stop(ngx_http_ai_gateway_gen_t *gen,
    ngx_http_ai_gateway_openai_req_t *r)
{
    ngx_str_t   *s;
    ngx_uint_t   i;

    s = r->stop.elts;

    ngx_http_ai_gateway_gen_array(gen);

    for (i = 0; i < r->stop.nelts; i++) {
        ngx_http_ai_gateway_gen_string(gen, &s[i]);
    }

    ngx_http_ai_gateway_gen_array_end(gen);
}
