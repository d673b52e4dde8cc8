
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <yajl/yajl_tree.h>

#include "ngx_http_ai_gateway_module.h"


/*
 * The Unified API, request side: "/compat/chat/completions" takes an
 * OpenAI Chat Completions body whose "model" is "{provider}/{model}".  The
 * body is collected while nginx reads it, parsed once, routed by the
 * prefix, and rewritten for the provider: OpenAI-compatible providers get
 * the same request with their own model name; the others (a dialect) get
 * it translated.
 */


typedef struct {
    ngx_str_t                      slug;
    ngx_str_t                      path;       /* the chat endpoint */
    ngx_str_t                      dialect;    /* empty: OpenAI wire */
} ngx_http_ai_gateway_compat_row_t;


static ngx_int_t ngx_http_ai_gateway_compat_check(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_str_t *rest);
static ngx_int_t ngx_http_ai_gateway_compat_route(ngx_http_request_t *r,
    ngx_http_ai_gateway_loc_conf_t *alcf, ngx_http_ai_gateway_ctx_t *ctx);
static void ngx_http_ai_gateway_compat_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_gateway_compat_credential(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
static ngx_int_t ngx_http_ai_gateway_request_body_filter(
    ngx_http_request_t *r, ngx_chain_t *in);


/* providers on the Unified API and their chat endpoint, see docs */

static ngx_http_ai_gateway_compat_row_t  ngx_http_ai_gateway_compat_rows[] = {
    { ngx_string("openai"), ngx_string("/chat/completions"),
      ngx_null_string },
    { ngx_string("groq"), ngx_string("/chat/completions"),
      ngx_null_string },
    { ngx_string("mistral"), ngx_string("/chat/completions"),
      ngx_null_string },
    { ngx_string("deepseek"), ngx_string("/chat/completions"),
      ngx_null_string },
    { ngx_string("grok"), ngx_string("/chat/completions"),
      ngx_null_string },
    { ngx_string("cerebras"), ngx_string("/chat/completions"),
      ngx_null_string },
    { ngx_string("perplexity-ai"), ngx_string("/chat/completions"),
      ngx_null_string },
    { ngx_string("workers-ai"), ngx_string("/v1/chat/completions"),
      ngx_null_string },
    { ngx_string("baseten"), ngx_string("/chat/completions"),
      ngx_null_string },
    { ngx_string("parallel"), ngx_string("/chat/completions"),
      ngx_null_string },
    { ngx_string("cohere"), ngx_string("/compatibility/v1/chat/completions"),
      ngx_null_string },
    { ngx_string("openrouter"), ngx_string("/chat/completions"),
      ngx_null_string },
    { ngx_null_string, ngx_null_string, ngx_null_string }
};


static ngx_str_t  ngx_http_ai_gateway_compat_custom_path =
    ngx_string("/chat/completions");


static ngx_http_request_body_filter_pt  ngx_http_next_request_body_filter;


/*
 * "/compat{rest}": called from the content handler, whose result it is:
 * NGX_DONE while the body is read, the status of a body that could not be
 * read, or what sending an error response returned.
 */

ngx_int_t
ngx_http_ai_gateway_compat_start(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_str_t *rest)
{
    ngx_int_t  rc;

    ctx->compat = 1;

    rc = ngx_http_ai_gateway_compat_check(r, ctx, rest);
    if (rc != NGX_OK) {
        return ngx_http_ai_gateway_send_error(r, ctx, rc);
    }

    if (r->headers_in.content_length_n > 0) {
        ctx->raw.data = ngx_pnalloc(r->pool,
                                    r->headers_in.content_length_n + 1);
        if (ctx->raw.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->raw_size = r->headers_in.content_length_n + 1;
    }

    rc = ngx_http_read_client_request_body(r,
                                           ngx_http_ai_gateway_compat_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static ngx_int_t
ngx_http_ai_gateway_compat_check(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_str_t *rest)
{
    if (!((rest->len == 17
           && ngx_strncmp(rest->data, "/chat/completions", 17) == 0)
          || (rest->len == 20
              && ngx_strncmp(rest->data, "/v1/chat/completions", 20) == 0)))
    {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_NOT_AVAILABLE,
                                        "The Unified API serves "
                                        "/compat/chat/completions");
    }

    if (r->method != NGX_HTTP_POST) {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_REQUEST,
                                        "The Unified API takes POST "
                                        "requests");
    }

    return NGX_OK;
}


static void
ngx_http_ai_gateway_compat_body(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_http_ai_gateway_ctx_t       *ctx;
    ngx_http_ai_gateway_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    rc = ngx_http_ai_gateway_compat_route(r, alcf, ctx);

    if (ctx->tree) {
        yajl_tree_free(ctx->tree);
        ctx->tree = NULL;
    }

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r,
                                  ngx_http_ai_gateway_send_error(r, ctx, rc));
        return;
    }

    rc = ngx_http_ai_gateway_upstream_create(r, alcf, ctx);

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    ctx->start = ngx_current_msec;

    ngx_http_upstream_init(r);
}


static ngx_int_t
ngx_http_ai_gateway_compat_route(ngx_http_request_t *r,
    ngx_http_ai_gateway_loc_conf_t *alcf, ngx_http_ai_gateway_ctx_t *ctx)
{
    u_char                            *p, errbuf[128];
    ngx_int_t                          rc;
    ngx_str_t                          prefix, model, path;
    yajl_val                           v;
    ngx_http_ai_gateway_compat_row_t  *row;
    ngx_http_ai_gateway_provider_t    *provider;

    static const char  *model_path[] = { "model", NULL };

    if (ctx->raw.len == 0) {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_REQUEST,
                                        "The request body must be a JSON "
                                        "object");
    }

    ctx->raw.data[ctx->raw.len] = '\0';

    ctx->tree = yajl_tree_parse((const char *) ctx->raw.data,
                                (char *) errbuf, sizeof(errbuf));

    if (ctx->tree == NULL || !YAJL_IS_OBJECT((yajl_val) ctx->tree)) {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_REQUEST,
                                        "The request body must be a JSON "
                                        "object");
    }

    v = yajl_tree_get((yajl_val) ctx->tree, model_path, yajl_t_string);

    if (v == NULL) {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_MODEL,
                                        "\"model\" must be a string "
                                        "\"{provider}/{model}\"");
    }

    /* "{provider}/{model}", split at the first '/' only */

    /* the tree is freed once routed: the model is copied */

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

    path = ngx_http_ai_gateway_compat_custom_path;

    if (provider) {
        for (row = ngx_http_ai_gateway_compat_rows; row->slug.len; row++) {
            if (row->slug.len == prefix.len
                && ngx_strncmp(row->slug.data, prefix.data, prefix.len) == 0)
            {
                break;
            }
        }

        if (row->slug.len == 0) {
            ctx->provider = prefix;
            return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_MODEL,
                                        "Provider \"%V\" is not available "
                                        "on the Unified API", &prefix);
        }

        path = row->path;

    } else if (!(prefix.len > 7
                 && ngx_strncmp(prefix.data, "custom-", 7) == 0))
    {
        ctx->provider = prefix;
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_PROVIDER,
                                        NULL);
    }

    ctx->model = model;
    ctx->model_done = 1;

    /* custom-{slug} must be declared: route() says "Invalid provider" */

    rc = ngx_http_ai_gateway_route(r, alcf, ctx, &prefix, &path);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_ai_gateway_compat_credential(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    /* OpenAI-compatible: the same request, with the provider's model */

    if (ngx_http_ai_gateway_json_replace(r->pool, ctx->tree, "model", &model,
                                         &ctx->body)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->body_set = 1;

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

    o = ctx->target.origin;
    auth = &o->auth;

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

    ctx->credential.data = h->value.data + 7;
    ctx->credential.len = h->value.len - 7;

    return NGX_OK;
}


/*
 * Keeps a copy of a Unified API request body as nginx reads it, whether
 * nginx keeps the body in memory or in a temporary file, so that the body
 * is parsed without reading a file.
 */

static ngx_int_t
ngx_http_ai_gateway_request_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in)
{
    u_char                     *p;
    size_t                      size, need;
    ngx_chain_t                *cl;
    ngx_http_ai_gateway_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    if (ctx == NULL || !ctx->compat) {
        return ngx_http_next_request_body_filter(r, in);
    }

    for (cl = in; cl; cl = cl->next) {
        size = cl->buf->last - cl->buf->pos;

        if (size == 0) {
            continue;
        }

        need = ctx->raw.len + size + 1;

        if (need > ctx->raw_size) {
            /* a chunked body: grow by doubling */

            ctx->raw_size = ngx_max(need, 2 * ctx->raw_size);
            ctx->raw_size = ngx_max(ctx->raw_size, 4096);

            p = ngx_pnalloc(r->pool, ctx->raw_size);
            if (p == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            ngx_memcpy(p, ctx->raw.data, ctx->raw.len);
            ctx->raw.data = p;
        }

        ngx_memcpy(ctx->raw.data + ctx->raw.len, cl->buf->pos, size);
        ctx->raw.len += size;
    }

    return ngx_http_next_request_body_filter(r, in);
}


ngx_int_t
ngx_http_ai_gateway_compat_init(ngx_conf_t *cf)
{
    ngx_http_next_request_body_filter = ngx_http_top_request_body_filter;
    ngx_http_top_request_body_filter = ngx_http_ai_gateway_request_body_filter;

    return NGX_OK;
}
