
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <yajl/yajl_tree.h>

#include "ngx_http_ai_gateway_module.h"
#include "ngx_http_ai_gateway_json.h"


/*
 * The Unified API, request side: "/compat/chat/completions" takes an
 * OpenAI Chat Completions body whose "model" is "{provider}/{model}".  The
 * body is collected while nginx reads it, parsed once, routed by the
 * prefix, and rewritten for the provider: OpenAI-compatible providers get
 * the same request with their own model name; the others (a dialect) get
 * it translated.  The response side is relay.c's.
 */


typedef struct {
    ngx_str_t                      slug;
    ngx_str_t                      path;       /* the chat endpoint */
    ngx_str_t                      embed;      /* embeddings, or none */
    ngx_str_t                      dialect;    /* empty: OpenAI wire */
} ngx_http_ai_gateway_compat_row_t;


static ngx_int_t ngx_http_ai_gateway_compat_credential(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
static ngx_int_t ngx_http_ai_gateway_compat_translate(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_str_t *dialect, ngx_str_t *path);


/* providers on the Unified API and their chat endpoint, see docs */

static ngx_http_ai_gateway_compat_row_t  ngx_http_ai_gateway_compat_rows[] = {
    { ngx_string("openai"), ngx_string("/chat/completions"),
      ngx_string("/embeddings"), ngx_null_string },
    { ngx_string("groq"), ngx_string("/chat/completions"),
      ngx_null_string, ngx_null_string },
    { ngx_string("mistral"), ngx_string("/chat/completions"),
      ngx_string("/embeddings"), ngx_null_string },
    { ngx_string("deepseek"), ngx_string("/chat/completions"),
      ngx_null_string, ngx_null_string },
    { ngx_string("grok"), ngx_string("/chat/completions"),
      ngx_null_string, ngx_null_string },
    { ngx_string("cerebras"), ngx_string("/chat/completions"),
      ngx_null_string, ngx_null_string },
    { ngx_string("perplexity-ai"), ngx_string("/chat/completions"),
      ngx_null_string, ngx_null_string },
    { ngx_string("workers-ai"), ngx_string("/v1/chat/completions"),
      ngx_string("/v1/embeddings"), ngx_null_string },
    { ngx_string("baseten"), ngx_string("/chat/completions"),
      ngx_null_string, ngx_null_string },
    { ngx_string("parallel"), ngx_string("/chat/completions"),
      ngx_null_string, ngx_null_string },
    { ngx_string("cohere"), ngx_string("/compatibility/v1/chat/completions"),
      ngx_string("/compatibility/v1/embeddings"), ngx_null_string },
    { ngx_string("openrouter"), ngx_string("/chat/completions"),
      ngx_null_string, ngx_null_string },
    { ngx_string("anthropic"), ngx_string("/v1/messages"),
      ngx_null_string, ngx_string("anthropic") },
    { ngx_string("google-ai-studio"), ngx_string("/v1beta/models/"),
      ngx_string("/v1beta/models/"), ngx_string("gemini") },
    { ngx_string("google-vertex-ai"), ngx_string("/v1/projects/"),
      ngx_null_string, ngx_string("gemini") },
    { ngx_null_string, ngx_null_string, ngx_null_string, ngx_null_string }
};


typedef struct {
    ngx_str_t                      rest;
    ngx_uint_t                     endpoint;
} ngx_http_ai_gateway_endpoint_t;


/* the Unified API's endpoints, after "/compat" */

static ngx_http_ai_gateway_endpoint_t  ngx_http_ai_gateway_endpoints[] = {
    { ngx_string("/chat/completions"), NGX_HTTP_AI_GATEWAY_CHAT },
    { ngx_string("/v1/chat/completions"), NGX_HTTP_AI_GATEWAY_CHAT },
    { ngx_string("/embeddings"), NGX_HTTP_AI_GATEWAY_EMBEDDINGS },
    { ngx_string("/v1/embeddings"), NGX_HTTP_AI_GATEWAY_EMBEDDINGS },
    { ngx_string("/models"), NGX_HTTP_AI_GATEWAY_MODELS },
    { ngx_string("/v1/models"), NGX_HTTP_AI_GATEWAY_MODELS },
    { ngx_null_string, 0 }
};


static ngx_str_t  ngx_http_ai_gateway_compat_custom_path =
    ngx_string("/chat/completions");
static ngx_str_t  ngx_http_ai_gateway_compat_custom_embed =
    ngx_string("/embeddings");

static ngx_str_t  ngx_http_ai_gateway_anthropic_version =
    ngx_string("anthropic-version");




/*
 * "/compat{rest}": the endpoint and the method.  NGX_OK, or the status of
 * an error recorded by fail().
 */

ngx_int_t
ngx_http_ai_gateway_compat_check(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_str_t *rest)
{
    ngx_http_ai_gateway_endpoint_t  *e;

    ctx->route.compat = 1;

    for (e = ngx_http_ai_gateway_endpoints; e->rest.len; e++) {
        if (e->rest.len == rest->len
            && ngx_strncmp(e->rest.data, rest->data, rest->len) == 0)
        {
            break;
        }
    }

    if (e->rest.len == 0) {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_NOT_AVAILABLE,
                                        "The Unified API serves "
                                        "/compat/chat/completions, "
                                        "/compat/embeddings and "
                                        "/compat/v1/models");
    }

    ctx->route.endpoint = e->endpoint;

    if (e->endpoint == NGX_HTTP_AI_GATEWAY_MODELS) {
        if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_HEAD) {
            return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_REQUEST,
                                        "The model list takes GET requests");
        }

        return NGX_OK;
    }

    if (r->method != NGX_HTTP_POST) {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_REQUEST,
                                        "The Unified API takes POST "
                                        "requests");
    }

    return NGX_OK;
}


/* GET /compat/v1/models: the models of ai_gateway_models */

ngx_int_t
ngx_http_ai_gateway_compat_models(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_int_t                         rc;
    ngx_http_complex_value_t          cv;
    ngx_http_ai_gateway_loc_conf_t   *alcf;

    static ngx_str_t  json = ngx_string("application/json");

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_module);

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_memzero(&cv, sizeof(ngx_http_complex_value_t));

    if (ngx_http_ai_gateway_json_models(r->pool, alcf->models, &cv.value)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_send_response(r, NGX_HTTP_OK, &json, &cv);
}


/*
 * The body is read: routed by its model's prefix, and made into what the
 * provider gets.  NGX_OK, or the status of an error recorded by fail().
 */

ngx_int_t
ngx_http_ai_gateway_compat_prepare(ngx_http_request_t *r,
    ngx_http_ai_gateway_loc_conf_t *alcf, ngx_http_ai_gateway_ctx_t *ctx)
{
    u_char                            *p;
    ngx_int_t                          rc;
    ngx_str_t                          prefix, model, path;
    yajl_val                           v;
    ngx_uint_t                         embed;
    ngx_http_ai_gateway_compat_row_t  *row;
    ngx_http_ai_gateway_provider_t    *provider;

    static const char  *model_path[] = { "model", NULL };

    if (ctx->body.raw.len == 0) {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_REQUEST,
                                        "The request body must be a JSON "
                                        "object");
    }

    /* depth-limited, and freed with the request (yajl frees recursively) */

    rc = ngx_http_ai_gateway_json_parse(r->pool, ctx->body.raw.data,
                                        ctx->body.raw.len, &v);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->body.tree = (rc == NGX_OK) ? v : NULL;

    if (ctx->body.tree == NULL || !YAJL_IS_OBJECT((yajl_val) ctx->body.tree)) {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_REQUEST,
                                        "The request body must be a JSON "
                                        "object");
    }

    v = yajl_tree_get((yajl_val) ctx->body.tree, model_path, yajl_t_string);

    if (v == NULL) {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_MODEL,
                                        "\"model\" must be a string "
                                        "\"{provider}/{model}\"");
    }

    /* "{provider}/{model}", split at the first '/' only */

    /* a copy, split in place into the prefix and the model */

    prefix.len = ngx_strlen(v->u.string);
    prefix.data = ngx_pnalloc(r->pool, prefix.len + 1);
    if (prefix.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(prefix.data, v->u.string, prefix.len + 1);

    p = (u_char *) ngx_strchr(prefix.data, '/');

    if (p == NULL || p == prefix.data || p[1] == '\0') {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_MODEL,
                                        "\"model\" must be \"{provider}/"
                                        "{model}\", for example "
                                        "\"openai/gpt-4o-mini\"");
    }

    model.data = p + 1;
    model.len = prefix.data + prefix.len - model.data;

    prefix.len = p - prefix.data;

    if (prefix.len == 7 && ngx_strncmp(prefix.data, "dynamic", 7) == 0) {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_MODEL,
                                        "Dynamic routes are not available "
                                        "in this version");
    }

    /* the canonical slug: aliases (google, perplexity, xai) resolved */

    provider = ngx_http_ai_gateway_provider_find(&prefix);

    if (provider) {
        prefix = provider->slug;
    }

    embed = (ctx->route.endpoint == NGX_HTTP_AI_GATEWAY_EMBEDDINGS);

    path = embed ? ngx_http_ai_gateway_compat_custom_embed
                 : ngx_http_ai_gateway_compat_custom_path;

    if (provider) {
        for (row = ngx_http_ai_gateway_compat_rows; row->slug.len; row++) {
            if (row->slug.len == prefix.len
                && ngx_strncmp(row->slug.data, prefix.data, prefix.len) == 0)
            {
                break;
            }
        }

        if (row->slug.len == 0) {
            ctx->route.provider = prefix;
            return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_MODEL,
                                        "Provider \"%V\" is not available "
                                        "on the Unified API", &prefix);
        }

        path = embed ? row->embed : row->path;

        if (path.len == 0) {
            ctx->route.provider = prefix;
            return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_MODEL,
                                        "Provider \"%V\" offers no "
                                        "embeddings on the Unified API",
                                        &prefix);
        }

    } else if (!(prefix.len > 7
                 && ngx_strncmp(prefix.data, "custom-", 7) == 0))
    {
        ctx->route.provider = prefix;
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_PROVIDER,
                                        NULL);
    }

    ctx->route.model = model;
    ctx->route.model_done = 1;

    /* a stored provider key (keys.c) */

    rc = ngx_http_ai_gateway_keys_pick(r, alcf, ctx,
                                       provider ? &provider->slug : &prefix);
    if (rc != NGX_OK) {
        return rc;
    }

    if (provider && provider->rule == NGX_HTTP_AI_GATEWAY_RULE_VERTEX) {
        /* the project and the region come with the service-account key */

        rc = ngx_http_ai_gateway_vertex_credential(r, ctx, 1);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (provider && row->dialect.len) {
        rc = ngx_http_ai_gateway_compat_translate(r, ctx, &row->dialect,
                                                  &path);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    /* custom-{slug} must be declared: route() says "Invalid provider" */

    rc = ngx_http_ai_gateway_route(r, alcf, ctx, &prefix, &path);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_ai_gateway_keys_apply(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_ai_gateway_compat_credential(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ctx->route.translator) {
        if (ctx->route.tc.stream
            && ctx->route.translator->name.len == 6
            && ngx_strncmp(ctx->route.translator->name.data, "gemini", 6) == 0)
        {
            ngx_str_set(&ctx->route.target.args, "alt=sse");
        }

        return NGX_OK;
    }

    /* OpenAI-compatible: the same request, with the provider's model */

    if (ngx_http_ai_gateway_json_replace(r->pool, ctx->body.tree, "model",
                                         &model, &ctx->body.sent)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->body.set = 1;

    return NGX_OK;
}


/*
 * A translated dialect: the request body is the provider's native one,
 * built by the translator; the chat endpoint may name the model.
 */

static ngx_int_t
ngx_http_ai_gateway_compat_translate(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_str_t *dialect, ngx_str_t *path)
{
    char                          *method;
    u_char                        *p;
    ngx_int_t                      rc;
    ngx_str_t                      err, model;
    ngx_http_ai_gateway_compat_t  *c;

    ctx->route.translator = ngx_http_ai_gateway_translator(dialect);
    if (ctx->route.translator == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    c = &ctx->route.tc;
    c->model = ctx->route.model;
    c->created = ngx_time();

    /* the translator sets c->stream and c->include_usage */

    /* the completion's id: "chatcmpl-" and the request's log id */

    ngx_http_ai_gateway_log_id(r, ctx);

    c->id.len = sizeof("chatcmpl-") - 1 + sizeof(ctx->ids.log_id);
    c->id.data = ngx_pnalloc(r->pool, c->id.len);
    if (c->id.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(c->id.data, "chatcmpl-", sizeof("chatcmpl-") - 1);
    ngx_memcpy(p, ctx->ids.log_id, sizeof(ctx->ids.log_id));

    ngx_str_null(&err);

    if (ctx->route.endpoint == NGX_HTTP_AI_GATEWAY_EMBEDDINGS) {
        if (ctx->route.translator->embed_request == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rc = ctx->route.translator->embed_request(r->pool,
                                                  (yajl_val) ctx->body.tree,
                                                  c, &ctx->body.sent, &err);

    } else {
        rc = ctx->route.translator->request(r->pool,
                                            (yajl_val) ctx->body.tree, c,
                                            &ctx->body.sent, &err);
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_REQUEST,
                                        "%V", &err);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->body.set = 1;
    ctx->route.no_encoding = 1;

    if (dialect->len == 9 && ngx_strncmp(dialect->data, "anthropic", 9) == 0)
    {
        ctx->route.version.key = ngx_http_ai_gateway_anthropic_version;
        ngx_str_set(&ctx->route.version.value, "2023-06-01");
        return NGX_OK;
    }

    /*
     * Gemini: "/v1beta/models/{model}:generateContent" and the like;
     * Vertex AI: "/v1/projects/{project}/locations/{region}/publishers/
     * google/models/{model}:generateContent", the model "google/{model}"
     */

    model = ctx->route.model;

    if (ctx->route.sa) {
        p = ngx_strlchr(model.data, model.data + model.len, '/');

        if (p) {
            if (p - model.data != 6
                || ngx_strncmp(model.data, "google", 6) != 0)
            {
                return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_MODEL,
                                        "The Unified API translates Google's "
                                        "own models on Vertex AI: "
                                        "\"google-vertex-ai/google/"
                                        "{model}\"");
            }

            model.len -= p + 1 - model.data;
            model.data = p + 1;
        }
    }

    if (model.len == 0) {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_MODEL,
                                        "Invalid Gemini model name");
    }

    for (p = model.data; p < model.data + model.len; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'
              || *p == '_'))
        {
            return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_MODEL,
                                        "Invalid Gemini model name");
        }
    }

    if (ctx->route.endpoint == NGX_HTTP_AI_GATEWAY_EMBEDDINGS) {
        method = ":batchEmbedContents";

    } else {
        method = c->stream ? ":streamGenerateContent" : ":generateContent";
    }

    if (ctx->route.sa) {
        p = ngx_pnalloc(r->pool, path->len + ctx->route.sa->project_id.len
                                 + ctx->route.sa->region.len + model.len
                                 + ngx_strlen(method)
                                 + sizeof("/locations//publishers/google"
                                          "/models/") - 1);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        path->len = ngx_sprintf(p, "%V%V/locations/%V/publishers/google"
                                "/models/%V%s", path,
                                &ctx->route.sa->project_id,
                                &ctx->route.sa->region,
                                &model, method)
                    - p;
        path->data = p;

        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, path->len + model.len + ngx_strlen(method));
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    path->len = ngx_sprintf(p, "%V%V%s", path, &model, method) - p;
    path->data = p;

    return NGX_OK;
}


/*
 * The client sends its provider key as "Authorization: Bearer <key>";
 * a provider whose credential header is another one gets it there.
 */

static ngx_int_t
ngx_http_ai_gateway_compat_credential(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_str_t                      *auth;
    ngx_table_elt_t                *h;
    ngx_http_ai_gateway_origin_t   *o;

    o = ctx->route.target.origin;
    auth = &o->auth;

    if (ctx->access.key) {
        /* a stored key is there (keys.c) */
        return NGX_OK;
    }

    if (auth->len == 13 && ngx_strncmp(auth->data, "authorization", 13) == 0)
    {
        return NGX_OK;
    }

    h = r->headers_in.authorization;

    if (h == NULL) {
        return NGX_OK;
    }

    if (h->value.len < 8
        || ngx_strncasecmp(h->value.data, (u_char *) "Bearer ", 7) != 0)
    {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_HEADER,
                                        "Authorization must be "
                                        "\"Bearer <provider key>\"");
    }

    ctx->route.credential.data = h->value.data + 7;
    ctx->route.credential.len = h->value.len - 7;

    return NGX_OK;
}
