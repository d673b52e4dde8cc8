
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_gateway_json.h"
#include "ngx_http_ai_gateway_check.h"
#include "ngx_http_ai_gateway_steps.h"


/*
 * The body of a Universal Endpoint request: a JSON array of steps, or
 * one step object,
 *
 *     {"provider": "openai", "endpoint": "chat/completions",
 *      "headers": {...}, "authorization": "Bearer ...",
 *      "config": {"maxAttempts": 2, ...}, "query": {...}}
 *
 * parsed into step specifications, knowing nothing of HTTP requests (it
 * is fuzzed alone).  Everything that will be written into a provider
 * request is checked here with the validator of
 * ngx_http_ai_gateway_check.c, and refused with a message that names the
 * step and the field but never quotes a value.
 */


static ngx_int_t ngx_http_ai_gateway_steps_one(ngx_pool_t *pool, yajl_val v,
    ngx_uint_t i, ngx_http_ai_gateway_steps_t *s,
    ngx_http_ai_gateway_step_spec_t *st);
static ngx_int_t ngx_http_ai_gateway_steps_headers(ngx_pool_t *pool,
    yajl_val v, ngx_uint_t i, ngx_http_ai_gateway_steps_t *s,
    ngx_http_ai_gateway_step_spec_t *st);
static ngx_int_t ngx_http_ai_gateway_steps_config(ngx_pool_t *pool,
    yajl_val v, ngx_uint_t i, ngx_http_ai_gateway_steps_t *s,
    ngx_http_ai_gateway_step_spec_t *st);
static ngx_int_t ngx_http_ai_gateway_steps_bad(ngx_pool_t *pool,
    ngx_http_ai_gateway_steps_t *s, ngx_uint_t i, const char *field,
    const char *what);


static ngx_http_ai_gateway_step_config_t
    ngx_http_ai_gateway_steps_config_fields[] =
{
    { "requestTimeout", ngx_string("cf-aig-request-timeout"),
      ngx_null_string },
    { "maxAttempts", ngx_string("cf-aig-max-attempts"), ngx_null_string },
    { "retryDelay", ngx_string("cf-aig-retry-delay"), ngx_null_string },
    { "backoff", ngx_string("cf-aig-backoff"), ngx_null_string }
};


ngx_int_t
ngx_http_ai_gateway_steps_parse(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_http_ai_gateway_steps_t *s)
{
    size_t     count, i;
    yajl_val   v, *items;
    ngx_int_t  rc;

    s->steps = NULL;
    s->nsteps = 0;
    s->unknown = 0;
    ngx_str_null(&s->error);

    rc = ngx_http_ai_gateway_json_parse(pool, p, len, &v);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED || !(YAJL_IS_ARRAY(v) || YAJL_IS_OBJECT(v))) {
        ngx_str_set(&s->error, "The Universal Endpoint takes a JSON array "
                               "of steps, or one step object");
        return NGX_DECLINED;
    }

    if (YAJL_IS_ARRAY(v)) {
        items = v->u.array.values;
        count = v->u.array.len;

    } else {
        items = &v;
        count = 1;
    }

    if (count == 0 || count > NGX_HTTP_AI_GATEWAY_MAX_STEPS) {
        ngx_str_set(&s->error, "The Universal Endpoint takes 1 to 16 steps");
        return NGX_DECLINED;
    }

    s->steps = ngx_pcalloc(pool,
                           count * sizeof(ngx_http_ai_gateway_step_spec_t));
    if (s->steps == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < count; i++) {
        rc = ngx_http_ai_gateway_steps_one(pool, items[i], i, s,
                                           &s->steps[i]);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    s->nsteps = count;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_steps_one(ngx_pool_t *pool, yajl_val v, ngx_uint_t i,
    ngx_http_ai_gateway_steps_t *s, ngx_http_ai_gateway_step_spec_t *st)
{
    u_char     *p, *q;
    yajl_val    f;
    ngx_int_t   rc;
    ngx_str_t   provider, endpoint;

    if (!YAJL_IS_OBJECT(v)) {
        return ngx_http_ai_gateway_steps_bad(pool, s, i, NULL,
                                             "is not an object");
    }

    f = ngx_http_ai_gateway_json_get(v, "provider");

    if (f == NULL || ngx_http_ai_gateway_json_str(f, &provider) != NGX_OK
        || provider.len == 0)
    {
        return ngx_http_ai_gateway_steps_bad(pool, s, i, "provider",
                                             "is missing or not a string");
    }

    for (p = provider.data; p < provider.data + provider.len; p++) {
        if (*p == '/' || *p == '?' || *p == '%' || *p <= ' ' || *p >= 0x7f) {
            return ngx_http_ai_gateway_steps_bad(pool, s, i, "provider",
                                                 "is not a provider name");
        }
    }

    /* "OpenAI" as the docs' prose writes it is "openai" */

    st->provider.data = ngx_pnalloc(pool, provider.len);
    if (st->provider.data == NULL) {
        return NGX_ERROR;
    }

    for (p = provider.data, q = st->provider.data;
         p < provider.data + provider.len;
         p++)
    {
        *q++ = ngx_tolower(*p);
    }

    st->provider.len = provider.len;

    if (s->known && !s->known(s->data, &st->provider)) {
        s->unknown = 1;
        s->provider = st->provider;

        s->error.data = ngx_pnalloc(pool, NGX_MAX_ERROR_STR);
        if (s->error.data == NULL) {
            return NGX_ERROR;
        }

        s->error.len = ngx_snprintf(s->error.data, NGX_MAX_ERROR_STR,
                                    "Universal Endpoint step %ui: "
                                    "\"provider\" is not a provider of "
                                    "this gateway: %V", i, &st->provider)
                       - s->error.data;

        return NGX_DECLINED;
    }

    f = ngx_http_ai_gateway_json_get(v, "endpoint");

    if (f == NULL || ngx_http_ai_gateway_json_str(f, &endpoint) != NGX_OK) {
        return ngx_http_ai_gateway_steps_bad(pool, s, i, "endpoint",
                                             "is missing or not a string");
    }

    while (endpoint.len && endpoint.data[0] == '/') {
        endpoint.data++;
        endpoint.len--;
    }

    /* the endpoint is written into the provider's request line */

    if (ngx_http_ai_gateway_check_query(endpoint.data, endpoint.len)
        != NGX_OK)
    {
        return ngx_http_ai_gateway_steps_bad(pool, s, i, "endpoint",
                                  "has a space, a control character, a \"#\" "
                                  "or a character that is not ASCII");
    }

    q = ngx_strlchr(endpoint.data, endpoint.data + endpoint.len, '?');
    if (q == NULL) {
        q = endpoint.data + endpoint.len;
    }

    if (ngx_http_ai_gateway_check_segments(endpoint.data, q - endpoint.data)
        != NGX_OK)
    {
        return ngx_http_ai_gateway_steps_bad(pool, s, i, "endpoint",
                                  "has a \".\" or \"..\" segment, escaped or "
                                  "not");
    }

    st->endpoint = endpoint;

    f = ngx_http_ai_gateway_json_get(v, "authorization");

    if (f && !YAJL_IS_NULL(f)) {
        if (ngx_http_ai_gateway_json_str(f, &st->authorization) != NGX_OK) {
            return ngx_http_ai_gateway_steps_bad(pool, s, i, "authorization",
                                                 "is not a string");
        }

        if (ngx_http_ai_gateway_check_value(st->authorization.data,
                                            st->authorization.len)
            != NGX_OK
            || ngx_http_ai_gateway_json_has_nul(&st->authorization))
        {
            return ngx_http_ai_gateway_steps_bad(pool, s, i, "authorization",
                                      "has a line break or another control "
                                      "character");
        }
    }

    f = ngx_http_ai_gateway_json_get(v, "config");

    if (f && !YAJL_IS_NULL(f)) {
        rc = ngx_http_ai_gateway_steps_config(pool, f, i, s, st);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    f = ngx_http_ai_gateway_json_get(v, "query");

    if (f && ngx_http_ai_gateway_json_text(pool, f, &st->body) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_ai_gateway_steps_headers(pool,
                                 ngx_http_ai_gateway_json_get(v, "headers"),
                                 i, s, st);
}


/* numbers and booleans as they were written, objects as JSON */

static ngx_int_t
ngx_http_ai_gateway_steps_headers(ngx_pool_t *pool, yajl_val v, ngx_uint_t i,
    ngx_http_ai_gateway_steps_t *s, ngx_http_ai_gateway_step_spec_t *st)
{
    size_t         k, n;
    yajl_val       hv;
    ngx_str_t      key, value;
    ngx_keyval_t  *kv;

    if (v && !YAJL_IS_NULL(v) && !YAJL_IS_OBJECT(v)) {
        return ngx_http_ai_gateway_steps_bad(pool, s, i, "headers",
                                             "is not an object");
    }

    n = (v && YAJL_IS_OBJECT(v)) ? v->u.object.len : 0;

    if (ngx_array_init(&st->headers, pool, n ? n : 1, sizeof(ngx_keyval_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (k = 0; k < n; k++) {
        key.data = (u_char *) v->u.object.keys[k];
        key.len = ngx_strlen(key.data);
        hv = v->u.object.values[k];

        if (YAJL_IS_NULL(hv)) {
            continue;
        }

        if (key.len > 256
            || ngx_http_ai_gateway_check_name(key.data, key.len) != NGX_OK)
        {
            return ngx_http_ai_gateway_steps_bad(pool, s, i, "headers",
                                                 "has a bad name");
        }

        if (YAJL_IS_STRING(hv)) {
            (void) ngx_http_ai_gateway_json_str(hv, &value);

        } else if (YAJL_IS_NUMBER(hv)) {
            value.data = (u_char *) hv->u.number.r;
            value.len = ngx_strlen(value.data);

        } else if (YAJL_IS_TRUE(hv)) {
            ngx_str_set(&value, "true");

        } else if (YAJL_IS_FALSE(hv)) {
            ngx_str_set(&value, "false");

        } else if (ngx_http_ai_gateway_json_text(pool, hv, &value) != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ngx_http_ai_gateway_check_value(value.data, value.len) != NGX_OK
            || ngx_http_ai_gateway_json_has_nul(&value))
        {
            return ngx_http_ai_gateway_steps_bad(pool, s, i, "headers",
                                  "has a line break or another control "
                                  "character in a value");
        }

        if (key.len == 13
            && ngx_strncasecmp(key.data, (u_char *) "authorization", 13) == 0)
        {
            st->has_authorization_header = 1;

        } else if (key.len == 12
                   && ngx_strncasecmp(key.data, (u_char *) "content-type", 12)
                      == 0)
        {
            st->has_content_type = 1;
        }

        kv = ngx_array_push(&st->headers);
        if (kv == NULL) {
            return NGX_ERROR;
        }

        kv->key = key;
        kv->value = value;
    }

    return NGX_OK;
}


/* the values are checked where the headers' values are: by the caller */

static ngx_int_t
ngx_http_ai_gateway_steps_config(ngx_pool_t *pool, yajl_val v, ngx_uint_t i,
    ngx_http_ai_gateway_steps_t *s, ngx_http_ai_gateway_step_spec_t *st)
{
    yajl_val                            f;
    ngx_uint_t                          k;
    ngx_http_ai_gateway_step_config_t  *c;

    if (!YAJL_IS_OBJECT(v)) {
        return ngx_http_ai_gateway_steps_bad(pool, s, i, "config",
                                             "is not an object");
    }

    for (k = 0; k < NGX_HTTP_AI_GATEWAY_STEP_CONFIG; k++) {
        c = &st->config[k];
        *c = ngx_http_ai_gateway_steps_config_fields[k];

        f = ngx_http_ai_gateway_json_get(v, c->field);

        if (f == NULL || YAJL_IS_NULL(f)) {
            continue;
        }

        if (YAJL_IS_NUMBER(f)) {
            c->value.data = (u_char *) f->u.number.r;
            c->value.len = ngx_strlen(c->value.data);

        } else if (ngx_http_ai_gateway_json_str(f, &c->value) != NGX_OK
                   || c->value.len == 0)
        {
            return ngx_http_ai_gateway_steps_bad(pool, s, i, c->field,
                                                 "is not a valid value");
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_steps_bad(ngx_pool_t *pool, ngx_http_ai_gateway_steps_t *s,
    ngx_uint_t i, const char *field, const char *what)
{
    u_char  *p;

    p = ngx_pnalloc(pool, NGX_MAX_ERROR_STR);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (field == NULL) {
        s->error.len = ngx_snprintf(p, NGX_MAX_ERROR_STR,
                                    "Universal Endpoint step %ui %s",
                                    i, what)
                       - p;

    } else {
        s->error.len = ngx_snprintf(p, NGX_MAX_ERROR_STR,
                                    "Universal Endpoint step %ui: \"%s\" %s",
                                    i, field, what)
                       - p;
    }

    s->error.data = p;

    return NGX_DECLINED;
}
