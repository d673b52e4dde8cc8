
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_module.h"
#include "ngx_http_ai_gateway_openai.h"


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
 * the step sets them itself; its other headers are not forwarded.
 */


#define NGX_HTTP_AI_GATEWAY_MAX_STEPS  16


static void ngx_http_ai_gateway_universal_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_gateway_universal_steps(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_step_t **steps,
    ngx_uint_t *n);
static ngx_int_t ngx_http_ai_gateway_universal_step(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, yajl_val v, ngx_uint_t i,
    ngx_http_ai_gateway_retry_conf_t *outer, ngx_http_ai_gateway_step_t *st);
static ngx_int_t ngx_http_ai_gateway_universal_headers(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, yajl_val v, ngx_uint_t i,
    ngx_str_t *auth, ngx_http_ai_gateway_step_t *st);
static ngx_int_t ngx_http_ai_gateway_universal_config(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, yajl_val v, ngx_uint_t i,
    ngx_http_ai_gateway_retry_conf_t *s);
static ngx_int_t ngx_http_ai_gateway_universal_uri(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_str_t *provider, ngx_str_t *endpoint,
    ngx_http_ai_gateway_step_t *st);
static ngx_uint_t ngx_http_ai_gateway_universal_known(ngx_http_request_t *r,
    ngx_str_t *slug);
static ngx_table_elt_t *ngx_http_ai_gateway_universal_push(
    ngx_http_request_t *r, ngx_list_t *list, ngx_str_t *key,
    ngx_str_t *value);
static ngx_int_t ngx_http_ai_gateway_universal_bad(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_uint_t i, const char *field,
    const char *what);


/* config field, and the header it stands for */

static struct {
    const char                    *field;
    ngx_str_t                      header;
} ngx_http_ai_gateway_universal_config_fields[] = {
    { "requestTimeout", ngx_string("cf-aig-request-timeout") },
    { "maxAttempts", ngx_string("cf-aig-max-attempts") },
    { "retryDelay", ngx_string("cf-aig-retry-delay") },
    { "backoff", ngx_string("cf-aig-backoff") },
    { NULL, ngx_null_string }
};


ngx_int_t
ngx_http_ai_gateway_universal_start(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    ctx->universal = 1;

    if (r->method != NGX_HTTP_POST) {
        return ngx_http_ai_gateway_send_error(r, ctx,
                   ngx_http_ai_gateway_fail(r, ctx,
                                     NGX_HTTP_AI_GATEWAY_ERR_BAD_REQUEST,
                                     "The Universal Endpoint takes POST "
                                     "with a JSON array of steps"));
    }

    return ngx_http_ai_gateway_read_body(r, ctx,
                                         ngx_http_ai_gateway_universal_body);
}


static void
ngx_http_ai_gateway_universal_body(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_uint_t                   n;
    ngx_http_ai_gateway_ctx_t   *ctx;
    ngx_http_ai_gateway_step_t  *steps;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    steps = NULL;
    n = 0;

    rc = ngx_http_ai_gateway_universal_steps(r, ctx, &steps, &n);

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r,
                                  ngx_http_ai_gateway_send_error(r, ctx, rc));
        return;
    }

    rc = ngx_http_ai_gateway_retry_run(r, ctx, steps, n);

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc);
    }
}


static ngx_int_t
ngx_http_ai_gateway_universal_steps(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_step_t **steps,
    ngx_uint_t *n)
{
    size_t                            count, i;
    yajl_val                          v, *items;
    ngx_int_t                         rc;
    ngx_http_ai_gateway_step_t       *st;
    ngx_http_ai_gateway_loc_conf_t   *alcf;
    ngx_http_ai_gateway_retry_conf_t  outer;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_module);

    rc = ngx_http_ai_gateway_json_parse(r->pool, ctx->raw.data, ctx->raw.len,
                                        &v);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED || !(YAJL_IS_ARRAY(v) || YAJL_IS_OBJECT(v))) {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_REQUEST,
                                        "The Universal Endpoint takes a "
                                        "JSON array of steps, or one step "
                                        "object");
    }

    if (YAJL_IS_ARRAY(v)) {
        items = v->u.array.values;
        count = v->u.array.len;

    } else {
        items = &v;
        count = 1;
    }

    if (count == 0 || count > NGX_HTTP_AI_GATEWAY_MAX_STEPS) {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_REQUEST,
                                        "The Universal Endpoint takes 1 to "
                                        "%d steps", (int)
                                        NGX_HTTP_AI_GATEWAY_MAX_STEPS);
    }

    /* the outer request's headers over the gateway's directives */

    outer = alcf->retry;

    rc = ngx_http_ai_gateway_retry_settings(r, &r->headers_in.headers, &outer);
    if (rc != NGX_OK) {
        return rc;
    }

    st = ngx_pcalloc(r->pool, count * sizeof(ngx_http_ai_gateway_step_t));
    if (st == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < count; i++) {
        rc = ngx_http_ai_gateway_universal_step(r, ctx, items[i], i, &outer,
                                                &st[i]);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    *steps = st;
    *n = count;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_universal_step(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, yajl_val v, ngx_uint_t i,
    ngx_http_ai_gateway_retry_conf_t *outer, ngx_http_ai_gateway_step_t *st)
{
    u_char     *p;
    yajl_val    f;
    ngx_int_t   rc;
    ngx_str_t   provider, endpoint, auth;

    if (!YAJL_IS_OBJECT(v)) {
        return ngx_http_ai_gateway_universal_bad(r, ctx, i, NULL,
                                                 "is not an object");
    }

    f = ngx_http_ai_gateway_json_get(v, "provider");

    if (f == NULL || ngx_http_ai_gateway_json_str(f, &provider) != NGX_OK
        || provider.len == 0)
    {
        return ngx_http_ai_gateway_universal_bad(r, ctx, i, "provider",
                                            "is missing or not a string");
    }

    for (p = provider.data; p < provider.data + provider.len; p++) {
        if (*p == '/' || *p == '?' || *p == '%' || *p <= ' ' || *p >= 0x7f) {
            return ngx_http_ai_gateway_universal_bad(r, ctx, i, "provider",
                                                 "is not a provider name");
        }
    }

    /* "OpenAI" as the docs' prose writes it is "openai" */

    p = ngx_pnalloc(r->pool, provider.len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_strlow(p, provider.data, provider.len);
    provider.data = p;

    if (!ngx_http_ai_gateway_universal_known(r, &provider)) {
        ctx->provider = provider;   /* for $ai_gateway_provider */
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_PROVIDER,
                                        "Universal Endpoint step %ui: "
                                        "\"provider\" is not a provider of "
                                        "this gateway: %V", i, &provider);
    }

    f = ngx_http_ai_gateway_json_get(v, "endpoint");

    if (f == NULL || ngx_http_ai_gateway_json_str(f, &endpoint) != NGX_OK) {
        return ngx_http_ai_gateway_universal_bad(r, ctx, i, "endpoint",
                                            "is missing or not a string");
    }

    while (endpoint.len && endpoint.data[0] == '/') {
        endpoint.data++;
        endpoint.len--;
    }

    for (p = endpoint.data; p < endpoint.data + endpoint.len; p++) {
        if (*p <= ' ' || *p == 0x7f || *p == '#') {
            return ngx_http_ai_gateway_universal_bad(r, ctx, i, "endpoint",
                                      "has a space or a control character");
        }
    }

    ngx_str_null(&auth);

    f = ngx_http_ai_gateway_json_get(v, "authorization");

    if (f && !YAJL_IS_NULL(f)
        && ngx_http_ai_gateway_json_str(f, &auth) != NGX_OK)
    {
        return ngx_http_ai_gateway_universal_bad(r, ctx, i, "authorization",
                                                 "is not a string");
    }

    /* the step's config, then its headers, over the outer settings */

    st->conf = *outer;

    f = ngx_http_ai_gateway_json_get(v, "config");

    if (f && !YAJL_IS_NULL(f)) {
        rc = ngx_http_ai_gateway_universal_config(r, ctx, f, i, &st->conf);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    f = ngx_http_ai_gateway_json_get(v, "query");

    if (f && ngx_http_ai_gateway_json_text(r->pool, f, &st->body) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_ai_gateway_universal_headers(r, ctx,
                                       ngx_http_ai_gateway_json_get(v,
                                                                "headers"),
                                       i, &auth, st);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_ai_gateway_universal_uri(r, ctx, &provider, &endpoint,
                                             st);
}


/*
 * The step's headers: its own, "authorization" when it has none of that
 * name, a JSON content type, and the outer request's cf-* headers it does
 * not set itself.
 */

static ngx_int_t
ngx_http_ai_gateway_universal_headers(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, yajl_val v, ngx_uint_t i,
    ngx_str_t *auth, ngx_http_ai_gateway_step_t *st)
{
    size_t             k, n;
    ngx_int_t          rc;
    ngx_str_t          key, value;
    ngx_uint_t         j, m, found, ctype;
    ngx_list_t        *list, own;
    yajl_val           hv;
    ngx_list_part_t   *part;
    ngx_table_elt_t   *h, *oh;

    static ngx_str_t  authorization = ngx_string("Authorization");
    static ngx_str_t  content_type = ngx_string("Content-Type");
    static ngx_str_t  json = ngx_string("application/json");

    if (v && !YAJL_IS_NULL(v) && !YAJL_IS_OBJECT(v)) {
        return ngx_http_ai_gateway_universal_bad(r, ctx, i, "headers",
                                                 "is not an object");
    }

    n = (v && YAJL_IS_OBJECT(v)) ? v->u.object.len : 0;

    list = ngx_list_create(r->pool, n + 8, sizeof(ngx_table_elt_t));
    if (list == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctype = 0;

    for (k = 0; k < n; k++) {
        key.data = (u_char *) v->u.object.keys[k];
        key.len = ngx_strlen(key.data);
        hv = v->u.object.values[k];

        if (YAJL_IS_NULL(hv)) {
            continue;
        }

        if (key.len == 0 || key.len > 256) {
            return ngx_http_ai_gateway_universal_bad(r, ctx, i, "headers",
                                                     "has a bad name");
        }

        for (j = 0; j < key.len; j++) {
            if (key.data[j] <= ' ' || key.data[j] == ':'
                || key.data[j] >= 0x7f)
            {
                return ngx_http_ai_gateway_universal_bad(r, ctx, i,
                                                         "headers",
                                                         "has a bad name");
            }
        }

        /* numbers and booleans as they were written, objects as JSON */

        if (YAJL_IS_STRING(hv)) {
            (void) ngx_http_ai_gateway_json_str(hv, &value);

        } else if (YAJL_IS_NUMBER(hv)) {
            value.data = (u_char *) hv->u.number.r;
            value.len = ngx_strlen(value.data);

        } else if (YAJL_IS_TRUE(hv) || YAJL_IS_FALSE(hv)) {
            ngx_str_set(&value, "true");

            if (YAJL_IS_FALSE(hv)) {
                ngx_str_set(&value, "false");
            }

        } else if (ngx_http_ai_gateway_json_text(r->pool, hv, &value)
                   != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        for (j = 0; j < value.len; j++) {
            if (value.data[j] == CR || value.data[j] == LF
                || value.data[j] == '\0')
            {
                return ngx_http_ai_gateway_universal_bad(r, ctx, i,
                                               "headers",
                                               "has a line break in a value");
            }
        }

        h = ngx_http_ai_gateway_universal_push(r, list, &key, &value);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (key.len == 13
            && ngx_strncmp(h->lowcase_key, "authorization", 13) == 0)
        {
            st->authorization = h;

        } else if (key.len == 12
                   && ngx_strncmp(h->lowcase_key, "content-type", 12) == 0)
        {
            ctype = 1;
        }
    }

    if (st->authorization == NULL && auth->len) {
        st->authorization = ngx_http_ai_gateway_universal_push(r, list,
                                                   &authorization, auth);
        if (st->authorization == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (!ctype && st->body.len
        && ngx_http_ai_gateway_universal_push(r, list, &content_type, &json)
           == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the step's own settings are the strongest */

    own = *list;

    if (own.last == &list->part) {
        own.last = &own.part;
    }

    rc = ngx_http_ai_gateway_retry_settings(r, &own, &st->conf);

    if (rc != NGX_OK) {
        value = ctx->err_message;

        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_HEADER,
                                        "Universal Endpoint step %ui: "
                                        "\"headers\": %V", i, &value);
    }

    m = list->part.nelts;

    part = &r->headers_in.headers.part;
    oh = part->elts;

    for (j = 0; /* void */; j++) {

        if (j >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            oh = part->elts;
            j = 0;
        }

        if (oh[j].key.len < 4
            || ngx_strncmp(oh[j].lowcase_key, "cf-", 3) != 0)
        {
            continue;
        }

        found = 0;
        h = list->part.elts;

        for (k = 0; k < m; k++) {
            if (h[k].key.len == oh[j].key.len
                && ngx_strncmp(h[k].lowcase_key, oh[j].lowcase_key,
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

            *h = oh[j];
        }
    }

    st->headers = list;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_universal_config(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, yajl_val v, ngx_uint_t i,
    ngx_http_ai_gateway_retry_conf_t *s)
{
    ngx_int_t   rc;
    ngx_str_t   value;
    yajl_val    f;
    ngx_uint_t  k;

    if (!YAJL_IS_OBJECT(v)) {
        return ngx_http_ai_gateway_universal_bad(r, ctx, i, "config",
                                                 "is not an object");
    }

    for (k = 0; ngx_http_ai_gateway_universal_config_fields[k].field; k++) {

        f = ngx_http_ai_gateway_json_get(v,
                            ngx_http_ai_gateway_universal_config_fields[k]
                            .field);

        if (f == NULL || YAJL_IS_NULL(f)) {
            continue;
        }

        if (YAJL_IS_NUMBER(f)) {
            value.data = (u_char *) f->u.number.r;
            value.len = ngx_strlen(value.data);

        } else if (ngx_http_ai_gateway_json_str(f, &value) != NGX_OK) {
            value.len = 0;
        }

        rc = ngx_http_ai_gateway_retry_value(r,
                     &ngx_http_ai_gateway_universal_config_fields[k].header,
                     &value, s);

        if (rc != NGX_OK || value.len == 0) {
            return ngx_http_ai_gateway_universal_bad(r, ctx, i,
                       ngx_http_ai_gateway_universal_config_fields[k].field,
                       "is not a valid value");
        }
    }

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

    len = sizeof("/v1///") - 1 + ctx->account_id.len + ctx->gateway_id.len
          + provider->len + 1 + endpoint->len;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    st->unparsed.data = p;
    st->unparsed.len = ngx_sprintf(p, "/v1/%V/%V/%V/%V", &ctx->account_id,
                                   &ctx->gateway_id, provider, endpoint)
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
ngx_http_ai_gateway_universal_known(ngx_http_request_t *r, ngx_str_t *slug)
{
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


static ngx_int_t
ngx_http_ai_gateway_universal_bad(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_uint_t i, const char *field,
    const char *what)
{
    if (field == NULL) {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_REQUEST,
                                        "Universal Endpoint step %ui %s",
                                        i, what);
    }

    return ngx_http_ai_gateway_fail(r, ctx,
                                    NGX_HTTP_AI_GATEWAY_ERR_BAD_REQUEST,
                                    "Universal Endpoint step %ui: \"%s\" %s",
                                    i, field, what);
}
