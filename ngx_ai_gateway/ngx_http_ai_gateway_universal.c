
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_module.h"
#include "ngx_http_ai_gateway_steps.h"


/*
 * The Universal Endpoint: POST /v1/{account}/{gateway} with a JSON array
 * of steps (or one step object).  Each step becomes what the request
 *
 *     POST /v1/{account}/{gateway}/{provider}/{endpoint}
 *
 * with the step's "headers" and its "query" as the body would be; the
 * retry code (ngx_http_ai_gateway_retry.c) runs the steps in order as
 * subrequests, each with its own retries, and the first that answers
 * answers.  The outer request's cf-* headers apply to every step unless
 * the step sets them itself; its other headers are not forwarded.  The
 * body is parsed and checked by ngx_http_ai_gateway_steps.c; this file
 * makes the steps into what the retry code runs.
 */


static ngx_int_t ngx_http_ai_gateway_universal_step(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_step_spec_t *spec,
    ngx_uint_t i, ngx_http_ai_gateway_retry_conf_t *outer,
    ngx_http_ai_gateway_step_t *st);
static ngx_int_t ngx_http_ai_gateway_universal_headers(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_step_spec_t *spec,
    ngx_uint_t i, ngx_http_ai_gateway_step_t *st);
static ngx_int_t ngx_http_ai_gateway_universal_uri(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_str_t *provider, ngx_str_t *endpoint,
    ngx_http_ai_gateway_step_t *st);
static ngx_uint_t ngx_http_ai_gateway_universal_known(void *data,
    ngx_str_t *slug);
static ngx_table_elt_t *ngx_http_ai_gateway_universal_push(
    ngx_http_request_t *r, ngx_list_t *list, ngx_str_t *key,
    ngx_str_t *value);


/* POST /v1/{account}/{gateway}: its body is read next */

ngx_int_t
ngx_http_ai_gateway_universal_check(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    ctx->route.universal = 1;

    if (r->method != NGX_HTTP_POST) {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_REQUEST,
                                        "The Universal Endpoint takes POST "
                                        "with a JSON array of steps");
    }

    return NGX_OK;
}


/*
 * The body is read: the steps, made into the attempts' plan (retry.c).
 * NGX_OK, or the status of an error recorded by fail().
 */

ngx_int_t
ngx_http_ai_gateway_universal_steps(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_int_t                         rc;
    ngx_uint_t                        i;
    ngx_http_ai_gateway_step_t       *st;
    ngx_http_ai_gateway_steps_t       s;
    ngx_http_ai_gateway_headers_t    *hs;
    ngx_http_ai_gateway_loc_conf_t   *alcf;
    ngx_http_ai_gateway_retry_conf_t  outer;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_module);

    s.known = ngx_http_ai_gateway_universal_known;
    s.data = r;

    rc = ngx_http_ai_gateway_steps_parse(r->pool, ctx->body.raw.data,
                                         ctx->body.raw.len, &s);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        if (s.unknown) {
            ctx->route.provider = s.provider;   /* for $ai_gateway_provider */
        }

        return ngx_http_ai_gateway_fail(r, ctx,
                                        s.unknown
                                        ? NGX_HTTP_AI_GATEWAY_ERR_BAD_PROVIDER
                                        : NGX_HTTP_AI_GATEWAY_ERR_BAD_REQUEST,
                                        "%V", &s.error);
    }

    /* the outer request's headers over the gateway's directives */

    outer = alcf->retry;

    hs = ngx_http_ai_gateway_headers(r, ctx);
    if (hs == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_ai_gateway_retry_settings(r, hs, &outer);
    if (rc != NGX_OK) {
        return rc;
    }

    st = ngx_pcalloc(r->pool, s.nsteps * sizeof(ngx_http_ai_gateway_step_t));
    if (st == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < s.nsteps; i++) {
        rc = ngx_http_ai_gateway_universal_step(r, ctx, &s.steps[i], i,
                                                &outer, &st[i]);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return ngx_http_ai_gateway_retry_steps(r, ctx, st, s.nsteps);
}


static ngx_int_t
ngx_http_ai_gateway_universal_step(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_step_spec_t *spec,
    ngx_uint_t i, ngx_http_ai_gateway_retry_conf_t *outer,
    ngx_http_ai_gateway_step_t *st)
{
    ngx_int_t                           rc;
    ngx_uint_t                          k;
    ngx_http_ai_gateway_step_config_t  *c;

    /* the step's config, then its headers, over the outer settings */

    st->conf = *outer;

    for (k = 0; k < NGX_HTTP_AI_GATEWAY_STEP_CONFIG; k++) {
        c = &spec->config[k];

        if (c->field == NULL || c->value.data == NULL) {
            continue;
        }

        rc = ngx_http_ai_gateway_retry_value(r, &c->header, &c->value,
                                             &st->conf);
        if (rc != NGX_OK) {
            return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_REQUEST,
                                        "Universal Endpoint step %ui: "
                                        "\"%s\" is not a valid value",
                                        i, c->field);
        }
    }

    st->body = spec->body;

    rc = ngx_http_ai_gateway_universal_headers(r, ctx, spec, i, st);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_ai_gateway_universal_uri(r, ctx, &spec->provider,
                                             &spec->endpoint, st);
}


/*
 * The step's headers: its own, "authorization" when it has none of that
 * name, a JSON content type, and the outer request's cf-* headers it does
 * not set itself.
 */

static ngx_int_t
ngx_http_ai_gateway_universal_headers(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_step_spec_t *spec,
    ngx_uint_t i, ngx_http_ai_gateway_step_t *st)
{
    ngx_int_t                       rc;
    ngx_str_t                       value;
    ngx_uint_t                      j, k, m, found;
    ngx_list_t                     *list;
    ngx_keyval_t                   *kv;
    ngx_table_elt_t                *h, **oh;
    ngx_http_ai_gateway_headers_t   sh;

    static ngx_str_t  authorization = ngx_string("Authorization");
    static ngx_str_t  content_type = ngx_string("Content-Type");
    static ngx_str_t  json = ngx_string("application/json");

    list = ngx_list_create(r->pool, spec->headers.nelts + 8,
                           sizeof(ngx_table_elt_t));
    if (list == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    kv = spec->headers.elts;

    for (k = 0; k < spec->headers.nelts; k++) {
        h = ngx_http_ai_gateway_universal_push(r, list, &kv[k].key,
                                               &kv[k].value);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (kv[k].key.len == 13
            && ngx_strncmp(h->lowcase_key, "authorization", 13) == 0)
        {
            st->authorization = h;
        }
    }

    if (!spec->has_authorization_header && spec->authorization.len) {
        st->authorization = ngx_http_ai_gateway_universal_push(r, list,
                                                   &authorization,
                                                   &spec->authorization);
        if (st->authorization == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (!spec->has_content_type && st->body.len
        && ngx_http_ai_gateway_universal_push(r, list, &content_type, &json)
           == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the step's own settings are the strongest */

    if (ngx_http_ai_gateway_headers_parse(r->pool, list, &sh) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_ai_gateway_retry_settings(r, &sh, &st->conf);

    if (rc != NGX_OK) {
        value = ctx->error.message;

        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_HEADER,
                                        "Universal Endpoint step %ui: "
                                        "\"headers\": %V", i, &value);
    }

    /* the outer request's cf-* headers that the step does not set */

    m = list->part.nelts;
    oh = ctx->headers.all.elts;

    for (j = 0; j < ctx->headers.all.nelts; j++) {

        found = 0;
        h = list->part.elts;

        for (k = 0; k < m; k++) {
            if (h[k].key.len == oh[j]->key.len
                && ngx_strncmp(h[k].lowcase_key, oh[j]->lowcase_key,
                               h[k].key.len) == 0)
            {
                found = 1;
                break;
            }
        }

        if (!found) {
            h = ngx_list_push(list);
            if (h == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            *h = *oh[j];
        }
    }

    st->headers = list;

    return NGX_OK;
}


/* "/v1/{account}/{gateway}/{provider}/{endpoint}", raw and unescaped */

static ngx_int_t
ngx_http_ai_gateway_universal_uri(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_str_t *provider, ngx_str_t *endpoint,
    ngx_http_ai_gateway_step_t *st)
{
    u_char  *p, *q, *dst, *src;
    size_t   len;

    len = sizeof("/v1///") - 1 + ctx->route.account_id.len
          + ctx->route.gateway_id.len + provider->len + 1 + endpoint->len;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    st->unparsed.data = p;
    st->unparsed.len = ngx_sprintf(p, "/v1/%V/%V/%V/%V", &ctx->route.account_id,
                                   &ctx->route.gateway_id, provider, endpoint)
                       - p;

    q = ngx_strlchr(p, p + st->unparsed.len, '?');

    if (q) {
        st->args.data = q + 1;
        st->args.len = p + st->unparsed.len - q - 1;

    } else {
        q = p + st->unparsed.len;
    }

    dst = ngx_pnalloc(r->pool, q - p);
    if (dst == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    st->uri.data = dst;
    src = p;

    ngx_unescape_uri(&dst, &src, q - p, NGX_UNESCAPE_URI);

    st->uri.len = dst - st->uri.data;

    return NGX_OK;
}


/* a built-in provider (or alias), compat, or one of ai_gateway_provider */

static ngx_uint_t
ngx_http_ai_gateway_universal_known(void *data, ngx_str_t *slug)
{
    ngx_http_request_t *r = data;

    ngx_uint_t                       k;
    ngx_http_ai_gateway_origin_t    *o;
    ngx_http_ai_gateway_loc_conf_t  *alcf;

    if ((slug->len == 6 && ngx_strncmp(slug->data, "compat", 6) == 0)
        || ngx_http_ai_gateway_provider_find(slug))
    {
        return 1;
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_module);

    if (alcf->origins == NULL) {
        return 0;
    }

    o = alcf->origins->elts;

    for (k = 0; k < alcf->origins->nelts; k++) {
        if (o[k].slug.len == slug->len
            && ngx_strncmp(o[k].slug.data, slug->data, slug->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


static ngx_table_elt_t *
ngx_http_ai_gateway_universal_push(ngx_http_request_t *r, ngx_list_t *list,
    ngx_str_t *key, ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(list);
    if (h == NULL) {
        return NULL;
    }

    h->key = *key;
    h->value = *value;

    h->lowcase_key = ngx_pnalloc(r->pool, key->len);
    if (h->lowcase_key == NULL) {
        return NULL;
    }

    h->hash = ngx_hash_strlow(h->lowcase_key, key->data, key->len);

    return h;
}
