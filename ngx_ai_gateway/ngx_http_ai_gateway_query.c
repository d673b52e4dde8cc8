
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_gateway_json.h"
#include "ngx_http_ai_gateway_query.h"


/*
 * The management API's query strings, knowing nothing of HTTP: bytes in,
 * checked values out.  The arguments are split on "&" and unescaped
 * ("+" is a space, as forms write it), at most
 * NGX_HTTP_AI_GATEWAY_QUERY_MAX_ARGS of them.  "filters" comes in two
 * shapes, both accepted, in any number and mixed:
 *
 *   filters=[{"key":"provider","operator":"eq","value":["openai"]}]
 *       a JSON array (or one object), as the hosted API takes it;
 *   filters.key=provider&filters.operator=eq&filters.value=openai
 *       the official SDKs' encoding (qs, dots, repeated names): each
 *       "filters.key" opens a filter, the "filters.operator" and
 *       "filters.value"s after it are its own; an empty value is null.
 *
 * Every key is checked against the resource's table, every operator
 * against the five of the API, every value converted for its key's type;
 * anything else is refused with a message in the hosted API's words
 * ("Invalid enum value. Expected 'id' | ..., received 'x'"), which the
 * caller sends as error 7001.  Nothing here trusts its input: strings are
 * bounded, numbers parsed strictly, dates by hand.
 */


static ngx_str_t  ngx_http_ai_gateway_query_ops[] = {
    ngx_string("eq"),
    ngx_string("neq"),
    ngx_string("contains"),
    ngx_string("lt"),
    ngx_string("gt"),
    ngx_null_string
};


static ngx_int_t ngx_http_ai_gateway_query_unescape(ngx_pool_t *pool,
    u_char *p, u_char *last, ngx_str_t *out);
static ngx_int_t ngx_http_ai_gateway_query_json(ngx_pool_t *pool,
    ngx_str_t *text, ngx_http_ai_gateway_query_key_t *keys,
    ngx_array_t *filters, ngx_str_t *err);
static ngx_int_t ngx_http_ai_gateway_query_json_filter(ngx_pool_t *pool,
    yajl_val v, ngx_http_ai_gateway_query_key_t *keys, ngx_array_t *filters,
    ngx_str_t *err);
static ngx_http_ai_gateway_query_filter_t *ngx_http_ai_gateway_query_new(
    ngx_pool_t *pool, ngx_array_t *filters, ngx_str_t *err);
static ngx_int_t ngx_http_ai_gateway_query_key(ngx_pool_t *pool,
    ngx_http_ai_gateway_query_key_t *keys, ngx_str_t *name,
    ngx_str_t *err);
static ngx_int_t ngx_http_ai_gateway_query_value(ngx_pool_t *pool,
    ngx_http_ai_gateway_query_key_t *key,
    ngx_http_ai_gateway_query_filter_t *f, ngx_uint_t raw, ngx_str_t *s,
    ngx_str_t *err);
static ngx_int_t ngx_http_ai_gateway_query_check(ngx_pool_t *pool,
    ngx_http_ai_gateway_query_key_t *keys,
    ngx_http_ai_gateway_query_filter_t *f, ngx_str_t *err);
static ngx_int_t ngx_http_ai_gateway_query_error(ngx_pool_t *pool,
    ngx_str_t *err, const char *fmt, ...);
static void ngx_http_ai_gateway_query_printable(ngx_str_t *s, u_char *buf,
    size_t size, ngx_str_t *out);


/* the raw kinds of a value before it is converted for its key */

#define NGX_HTTP_AI_GATEWAY_RAW_NULL    0
#define NGX_HTTP_AI_GATEWAY_RAW_STRING  1
#define NGX_HTTP_AI_GATEWAY_RAW_NUMBER  2
#define NGX_HTTP_AI_GATEWAY_RAW_TRUE    3
#define NGX_HTTP_AI_GATEWAY_RAW_FALSE   4


/*
 * The arguments of a query, unescaped, in order, as ngx_keyval_t.
 * NGX_DECLINED: too many of them.
 */

ngx_int_t
ngx_http_ai_gateway_query_args(ngx_pool_t *pool, ngx_str_t *args,
    ngx_array_t *out)
{
    u_char        *p, *q, *eq, *last;
    ngx_keyval_t  *kv;

    if (ngx_array_init(out, pool, 8, sizeof(ngx_keyval_t)) != NGX_OK) {
        return NGX_ERROR;
    }

    p = args->data;
    last = p + args->len;

    while (p < last) {
        q = ngx_strlchr(p, last, '&');
        if (q == NULL) {
            q = last;
        }

        if (q > p) {
            if (out->nelts == NGX_HTTP_AI_GATEWAY_QUERY_MAX_ARGS) {
                return NGX_DECLINED;
            }

            kv = ngx_array_push(out);
            if (kv == NULL) {
                return NGX_ERROR;
            }

            eq = ngx_strlchr(p, q, '=');

            if (ngx_http_ai_gateway_query_unescape(pool, p, eq ? eq : q,
                                                   &kv->key)
                != NGX_OK
                || ngx_http_ai_gateway_query_unescape(pool,
                                                      eq ? eq + 1 : q, q,
                                                      &kv->value)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        p = q + 1;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_query_unescape(ngx_pool_t *pool, u_char *p,
    u_char *last, ngx_str_t *out)
{
    u_char  *d, *s, *copy;
    size_t   len;

    len = last - p;

    copy = ngx_pnalloc(pool, len + 1);
    if (copy == NULL) {
        return NGX_ERROR;
    }

    for (d = copy; p < last; p++) {
        *d++ = (*p == '+') ? ' ' : *p;
    }

    s = copy;
    d = copy;

    ngx_unescape_uri(&d, &s, len, 0);

    *d = '\0';

    out->data = copy;
    out->len = d - copy;

    return NGX_OK;
}


/* the first argument of that name, or NULL */

ngx_str_t *
ngx_http_ai_gateway_query_arg(ngx_array_t *args, const char *name)
{
    size_t         len;
    ngx_uint_t     i;
    ngx_keyval_t  *kv;

    len = ngx_strlen(name);
    kv = args->elts;

    for (i = 0; i < args->nelts; i++) {
        if (kv[i].key.len == len
            && ngx_strncmp(kv[i].key.data, name, len) == 0)
        {
            return &kv[i].value;
        }
    }

    return NULL;
}


/*
 * The filters of the arguments, appended to "filters" (of
 * ngx_http_ai_gateway_query_filter_t).  NGX_DECLINED with a message in
 * err: a bad key, operator or value.
 */

ngx_int_t
ngx_http_ai_gateway_query_filters(ngx_pool_t *pool, ngx_array_t *args,
    ngx_http_ai_gateway_query_key_t *keys, ngx_array_t *filters,
    ngx_str_t *err)
{
    ngx_int_t                            rc, k;
    ngx_uint_t                           i, op;
    ngx_keyval_t                        *kv;
    ngx_http_ai_gateway_query_filter_t  *f;

    f = NULL;
    kv = args->elts;

    for (i = 0; i < args->nelts; i++) {

        if (kv[i].key.len == 7
            && ngx_strncmp(kv[i].key.data, "filters", 7) == 0)
        {
            if (f && ngx_http_ai_gateway_query_check(pool, keys, f, err)
                     != NGX_OK)
            {
                return NGX_DECLINED;
            }

            f = NULL;

            rc = ngx_http_ai_gateway_query_json(pool, &kv[i].value, keys,
                                                filters, err);
            if (rc != NGX_OK) {
                return rc;
            }

            continue;
        }

        if (kv[i].key.len < 8
            || ngx_strncmp(kv[i].key.data, "filters.", 8) != 0)
        {
            continue;
        }

        if (kv[i].key.len == 11
            && ngx_strncmp(kv[i].key.data + 8, "key", 3) == 0)
        {
            if (f && ngx_http_ai_gateway_query_check(pool, keys, f, err)
                     != NGX_OK)
            {
                return NGX_DECLINED;
            }

            f = ngx_http_ai_gateway_query_new(pool, filters, err);
            if (f == NULL) {
                return err->len ? NGX_DECLINED : NGX_ERROR;
            }

            k = ngx_http_ai_gateway_query_key(pool, keys, &kv[i].value, err);
            if (k < 0) {
                return (k == NGX_DECLINED) ? NGX_DECLINED : NGX_ERROR;
            }

            f->key = k;
            f->op = NGX_CONF_UNSET_UINT;
            continue;
        }

        if (f == NULL) {
            return ngx_http_ai_gateway_query_error(pool, err,
                                         "Invalid filter: \"filters.key\" "
                                         "must come first");
        }

        if (kv[i].key.len == 16
            && ngx_strncmp(kv[i].key.data + 8, "operator", 8) == 0)
        {
            rc = ngx_http_ai_gateway_query_enum(pool,
                                                ngx_http_ai_gateway_query_ops,
                                                &kv[i].value, err);
            if (rc < 0) {
                return rc;
            }

            op = rc;

            if (f->op != NGX_CONF_UNSET_UINT && f->op != op) {
                return ngx_http_ai_gateway_query_error(pool, err,
                                         "Invalid filter: two operators");
            }

            f->op = op;
            continue;
        }

        if (kv[i].key.len == 13
            && ngx_strncmp(kv[i].key.data + 8, "value", 5) == 0)
        {
            rc = ngx_http_ai_gateway_query_value(pool, &keys[f->key], f,
                                   kv[i].value.len
                                   ? NGX_HTTP_AI_GATEWAY_RAW_STRING
                                   : NGX_HTTP_AI_GATEWAY_RAW_NULL,
                                   &kv[i].value, err);
            if (rc != NGX_OK) {
                return rc;
            }

            continue;
        }

        return ngx_http_ai_gateway_query_error(pool, err,
                                               "Invalid filter field");
    }

    if (f && ngx_http_ai_gateway_query_check(pool, keys, f, err) != NGX_OK) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* filters=: a JSON array of filter objects, or one object */

static ngx_int_t
ngx_http_ai_gateway_query_json(ngx_pool_t *pool, ngx_str_t *text,
    ngx_http_ai_gateway_query_key_t *keys, ngx_array_t *filters,
    ngx_str_t *err)
{
    size_t     i;
    yajl_val   v;
    ngx_int_t  rc;

    rc = ngx_http_ai_gateway_json_parse(pool, text->data, text->len, &v);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc != NGX_OK || !(YAJL_IS_ARRAY(v) || YAJL_IS_OBJECT(v))) {
        return ngx_http_ai_gateway_query_error(pool, err,
                                           "Invalid filters: expected a "
                                           "JSON array of filters");
    }

    if (YAJL_IS_OBJECT(v)) {
        return ngx_http_ai_gateway_query_json_filter(pool, v, keys, filters,
                                                     err);
    }

    for (i = 0; i < v->u.array.len; i++) {
        rc = ngx_http_ai_gateway_query_json_filter(pool, v->u.array.values[i],
                                                   keys, filters, err);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_query_json_filter(ngx_pool_t *pool, yajl_val v,
    ngx_http_ai_gateway_query_key_t *keys, ngx_array_t *filters,
    ngx_str_t *err)
{
    size_t                               i, n;
    yajl_val                             key, op, value, *vals, one;
    ngx_int_t                            rc;
    ngx_str_t                            s;
    ngx_uint_t                           raw;
    ngx_http_ai_gateway_query_filter_t  *f;

    key = ngx_http_ai_gateway_json_get(v, "key");
    op = ngx_http_ai_gateway_json_get(v, "operator");
    value = ngx_http_ai_gateway_json_get(v, "value");

    if (!YAJL_IS_OBJECT(v) || !YAJL_IS_STRING(key) || !YAJL_IS_STRING(op)) {
        return ngx_http_ai_gateway_query_error(pool, err,
                                   "Invalid filter: expected {\"key\", "
                                   "\"operator\", \"value\"}");
    }

    f = ngx_http_ai_gateway_query_new(pool, filters, err);
    if (f == NULL) {
        return err->len ? NGX_DECLINED : NGX_ERROR;
    }

    (void) ngx_http_ai_gateway_json_str(key, &s);

    rc = ngx_http_ai_gateway_query_key(pool, keys, &s, err);
    if (rc < 0) {
        return rc;
    }

    f->key = rc;

    (void) ngx_http_ai_gateway_json_str(op, &s);

    rc = ngx_http_ai_gateway_query_enum(pool, ngx_http_ai_gateway_query_ops,
                                        &s, err);
    if (rc < 0) {
        return rc;
    }

    f->op = rc;

    if (YAJL_IS_ARRAY(value)) {
        vals = value->u.array.values;
        n = value->u.array.len;

    } else {
        one = value;
        vals = &one;
        n = (value == NULL) ? 0 : 1;
    }

    for (i = 0; i < n; i++) {
        v = vals[i];

        if (v == NULL || YAJL_IS_NULL(v)) {
            raw = NGX_HTTP_AI_GATEWAY_RAW_NULL;
            ngx_str_null(&s);

        } else if (YAJL_IS_STRING(v)) {
            raw = NGX_HTTP_AI_GATEWAY_RAW_STRING;
            (void) ngx_http_ai_gateway_json_str(v, &s);

        } else if (YAJL_IS_NUMBER(v)) {
            raw = NGX_HTTP_AI_GATEWAY_RAW_NUMBER;
            s.data = (u_char *) v->u.number.r;
            s.len = ngx_strlen(v->u.number.r);

        } else if (YAJL_IS_TRUE(v)) {
            raw = NGX_HTTP_AI_GATEWAY_RAW_TRUE;
            ngx_str_set(&s, "true");

        } else if (YAJL_IS_FALSE(v)) {
            raw = NGX_HTTP_AI_GATEWAY_RAW_FALSE;
            ngx_str_set(&s, "false");

        } else {
            return ngx_http_ai_gateway_query_error(pool, err,
                                   "Invalid filter value: expected a "
                                   "string, number, boolean or null");
        }

        rc = ngx_http_ai_gateway_query_value(pool, &keys[f->key], f, raw, &s,
                                             err);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return ngx_http_ai_gateway_query_check(pool, keys, f, err);
}


static ngx_http_ai_gateway_query_filter_t *
ngx_http_ai_gateway_query_new(ngx_pool_t *pool, ngx_array_t *filters,
    ngx_str_t *err)
{
    ngx_http_ai_gateway_query_filter_t  *f;

    if (filters->nelts == NGX_HTTP_AI_GATEWAY_QUERY_MAX_FILTERS) {
        (void) ngx_http_ai_gateway_query_error(pool, err,
                                               "Too many filters (at most "
                                               "%d)",
                                         NGX_HTTP_AI_GATEWAY_QUERY_MAX_FILTERS);
        return NULL;
    }

    f = ngx_array_push(filters);
    if (f == NULL) {
        return NULL;
    }

    ngx_memzero(f, sizeof(ngx_http_ai_gateway_query_filter_t));

    f->values = ngx_palloc(pool, NGX_HTTP_AI_GATEWAY_QUERY_MAX_VALUES
                                 * sizeof(ngx_http_ai_gateway_query_value_t));
    if (f->values == NULL) {
        return NULL;
    }

    return f;
}


/* the key's index in the table, or NGX_DECLINED with the enum message */

static ngx_int_t
ngx_http_ai_gateway_query_key(ngx_pool_t *pool,
    ngx_http_ai_gateway_query_key_t *keys, ngx_str_t *name, ngx_str_t *err)
{
    u_char                           *p;
    size_t                            len;
    ngx_str_t                         v;
    ngx_uint_t                        i;
    u_char                            buf[64];

    for (i = 0; keys[i].name.len; i++) {
        if (keys[i].name.len == name->len
            && ngx_strncmp(keys[i].name.data, name->data, name->len) == 0)
        {
            return i;
        }
    }

    len = sizeof("Invalid enum value. Expected , received ''") + 64;

    for (i = 0; keys[i].name.len; i++) {
        len += keys[i].name.len + sizeof(" | ''");
    }

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    err->data = p;
    p = ngx_cpymem(p, "Invalid enum value. Expected ",
                   sizeof("Invalid enum value. Expected ") - 1);

    for (i = 0; keys[i].name.len; i++) {
        p = ngx_sprintf(p, "%s'%V'", i ? " | " : "", &keys[i].name);
    }

    ngx_http_ai_gateway_query_printable(name, buf, sizeof(buf), &v);

    p = ngx_sprintf(p, ", received '%V'", &v);

    err->len = p - err->data;

    return NGX_DECLINED;
}


/*
 * names[] ends with a null string; the index of value, or NGX_DECLINED
 * with the hosted API's enum message.
 */

ngx_int_t
ngx_http_ai_gateway_query_enum(ngx_pool_t *pool, ngx_str_t *names,
    ngx_str_t *value, ngx_str_t *err)
{
    u_char      *p, buf[64];
    size_t       len;
    ngx_str_t    v;
    ngx_uint_t   i;

    for (i = 0; names[i].len; i++) {
        if (names[i].len == value->len
            && ngx_strncmp(names[i].data, value->data, value->len) == 0)
        {
            return i;
        }
    }

    len = sizeof("Invalid enum value. Expected , received ''") + 64;

    for (i = 0; names[i].len; i++) {
        len += names[i].len + sizeof(" | ''");
    }

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    err->data = p;
    p = ngx_cpymem(p, "Invalid enum value. Expected ",
                   sizeof("Invalid enum value. Expected ") - 1);

    for (i = 0; names[i].len; i++) {
        p = ngx_sprintf(p, "%s'%V'", i ? " | " : "", &names[i]);
    }

    ngx_http_ai_gateway_query_printable(value, buf, sizeof(buf), &v);

    p = ngx_sprintf(p, ", received '%V'", &v);

    err->len = p - err->data;

    return NGX_DECLINED;
}


/* one value, converted for its key's type */

static ngx_int_t
ngx_http_ai_gateway_query_value(ngx_pool_t *pool,
    ngx_http_ai_gateway_query_key_t *key,
    ngx_http_ai_gateway_query_filter_t *f, ngx_uint_t raw, ngx_str_t *s,
    ngx_str_t *err)
{
    u_char                             buf[64];
    ngx_str_t                          v;
    ngx_http_ai_gateway_query_value_t  *val;

    if (f->nvalues == NGX_HTTP_AI_GATEWAY_QUERY_MAX_VALUES) {
        return ngx_http_ai_gateway_query_error(pool, err,
                                               "Too many values in a filter "
                                               "(at most %d)",
                                          NGX_HTTP_AI_GATEWAY_QUERY_MAX_VALUES);
    }

    val = &f->values[f->nvalues];

    ngx_memzero(val, sizeof(ngx_http_ai_gateway_query_value_t));

    if (raw == NGX_HTTP_AI_GATEWAY_RAW_NULL) {
        val->type = NGX_HTTP_AI_GATEWAY_VALUE_NULL;
        f->nvalues++;
        return NGX_OK;
    }

    if (s->len > 1024) {
        return ngx_http_ai_gateway_query_error(pool, err,
                                               "Invalid value for '%V': "
                                               "longer than 1024 bytes",
                                               &key->name);
    }

    switch (key->type) {

    case NGX_HTTP_AI_GATEWAY_KEY_STRING:

        val->type = NGX_HTTP_AI_GATEWAY_VALUE_STRING;
        val->str = *s;
        break;

    case NGX_HTTP_AI_GATEWAY_KEY_NUMBER:

        if ((raw != NGX_HTTP_AI_GATEWAY_RAW_STRING
             && raw != NGX_HTTP_AI_GATEWAY_RAW_NUMBER)
            || ngx_http_ai_gateway_query_number(s->data, s->len, &val->num)
               != NGX_OK)
        {
            goto invalid;
        }

        val->type = NGX_HTTP_AI_GATEWAY_VALUE_NUMBER;
        break;

    case NGX_HTTP_AI_GATEWAY_KEY_BOOL:

        if (raw == NGX_HTTP_AI_GATEWAY_RAW_TRUE
            || (s->len == 4 && ngx_strncasecmp(s->data, (u_char *) "true", 4)
                               == 0)
            || (s->len == 1 && s->data[0] == '1'))
        {
            val->num = 1;

        } else if (raw == NGX_HTTP_AI_GATEWAY_RAW_FALSE
                   || (s->len == 5
                       && ngx_strncasecmp(s->data, (u_char *) "false", 5)
                          == 0)
                   || (s->len == 1 && s->data[0] == '0'))
        {
            val->num = 0;

        } else {
            goto invalid;
        }

        val->type = NGX_HTTP_AI_GATEWAY_VALUE_NUMBER;
        break;

    default: /* NGX_HTTP_AI_GATEWAY_KEY_DATE */

        if (raw == NGX_HTTP_AI_GATEWAY_RAW_NUMBER) {
            if (ngx_http_ai_gateway_query_number(s->data, s->len, &val->num)
                != NGX_OK)
            {
                goto invalid;
            }

        } else if (raw != NGX_HTTP_AI_GATEWAY_RAW_STRING
                   || ngx_http_ai_gateway_query_date(s->data, s->len,
                                                     &val->num)
                      != NGX_OK)
        {
            goto invalid;
        }

        val->type = NGX_HTTP_AI_GATEWAY_VALUE_NUMBER;
        break;
    }

    f->nvalues++;

    return NGX_OK;

invalid:

    ngx_http_ai_gateway_query_printable(s, buf, sizeof(buf), &v);

    return ngx_http_ai_gateway_query_error(pool, err,
                                           "Invalid value '%V' for '%V': "
                                           "expected %s", &v, &key->name,
                              (key->type == NGX_HTTP_AI_GATEWAY_KEY_NUMBER)
                              ? "a number"
                              : (key->type == NGX_HTTP_AI_GATEWAY_KEY_BOOL)
                                ? "true or false"
                                : "a date (RFC 3339)");
}


/* a filter is complete: its operator fits its key and its values */

static ngx_int_t
ngx_http_ai_gateway_query_check(ngx_pool_t *pool,
    ngx_http_ai_gateway_query_key_t *keys,
    ngx_http_ai_gateway_query_filter_t *f, ngx_str_t *err)
{
    ngx_str_t                        *op;
    ngx_uint_t                        i;
    ngx_http_ai_gateway_query_key_t  *key;

    key = &keys[f->key];

    if (f->op == NGX_CONF_UNSET_UINT) {
        return ngx_http_ai_gateway_query_error(pool, err,
                                               "Invalid filter on '%V': no "
                                               "operator", &key->name);
    }

    if (f->nvalues == 0) {
        return ngx_http_ai_gateway_query_error(pool, err,
                                               "Invalid filter on '%V': no "
                                               "value", &key->name);
    }

    switch (f->op) {

    case NGX_HTTP_AI_GATEWAY_OP_CONTAINS:

        if (key->type != NGX_HTTP_AI_GATEWAY_KEY_STRING) {
            goto invalid;
        }

        for (i = 0; i < f->nvalues; i++) {
            if (f->values[i].type == NGX_HTTP_AI_GATEWAY_VALUE_NULL) {
                goto invalid;
            }
        }

        break;

    case NGX_HTTP_AI_GATEWAY_OP_LT:
    case NGX_HTTP_AI_GATEWAY_OP_GT:
    case NGX_HTTP_AI_GATEWAY_OP_LE:
    case NGX_HTTP_AI_GATEWAY_OP_GE:

        if ((key->type != NGX_HTTP_AI_GATEWAY_KEY_NUMBER
             && key->type != NGX_HTTP_AI_GATEWAY_KEY_DATE)
            || f->nvalues != 1
            || f->values[0].type == NGX_HTTP_AI_GATEWAY_VALUE_NULL)
        {
            goto invalid;
        }

        break;

    default: /* eq, neq: every type, null too */
        break;
    }

    return NGX_OK;

invalid:

    op = &ngx_http_ai_gateway_query_ops[(f->op < 5) ? f->op : 0];

    return ngx_http_ai_gateway_query_error(pool, err,
                                           "Invalid filter on '%V': "
                                           "operator '%V' does not apply "
                                           "to its value", &key->name, op);
}


/*
 * A filter for a deprecated parameter (min_cost=...), or any other made by
 * the resource: value is converted as a query string value.
 */

ngx_int_t
ngx_http_ai_gateway_query_add(ngx_pool_t *pool,
    ngx_http_ai_gateway_query_key_t *keys, ngx_array_t *filters,
    ngx_uint_t key, ngx_uint_t op, ngx_str_t *value, ngx_str_t *err)
{
    ngx_int_t                            rc;
    ngx_http_ai_gateway_query_filter_t  *f;

    f = ngx_http_ai_gateway_query_new(pool, filters, err);
    if (f == NULL) {
        return err->len ? NGX_DECLINED : NGX_ERROR;
    }

    f->key = key;
    f->op = op;

    rc = ngx_http_ai_gateway_query_value(pool, &keys[key], f,
                                         value->len
                                         ? NGX_HTTP_AI_GATEWAY_RAW_STRING
                                         : NGX_HTTP_AI_GATEWAY_RAW_NULL,
                                         value, err);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_ai_gateway_query_check(pool, keys, f, err);
}


/*
 * A decimal number, as JSON writes one (an optional sign, digits, a
 * fraction, an exponent), and nothing else: no "0x", no "inf".
 */

ngx_int_t
ngx_http_ai_gateway_query_number(u_char *p, size_t len, double *n)
{
    u_char      buf[64], *q, *last;
    ngx_uint_t  digits;

    if (len == 0 || len >= sizeof(buf)) {
        return NGX_DECLINED;
    }

    q = p;
    last = p + len;
    digits = 0;

    if (*q == '-' || *q == '+') {
        q++;
    }

    while (q < last && *q >= '0' && *q <= '9') {
        q++;
        digits++;
    }

    if (q < last && *q == '.') {
        q++;

        while (q < last && *q >= '0' && *q <= '9') {
            q++;
            digits++;
        }
    }

    if (digits == 0) {
        return NGX_DECLINED;
    }

    if (q < last && (*q == 'e' || *q == 'E')) {
        q++;

        if (q < last && (*q == '-' || *q == '+')) {
            q++;
        }

        if (q == last) {
            return NGX_DECLINED;
        }

        while (q < last && *q >= '0' && *q <= '9') {
            q++;
        }
    }

    if (q != last) {
        return NGX_DECLINED;
    }

    ngx_memcpy(buf, p, len);
    buf[len] = '\0';

    *n = strtod((char *) buf, NULL);

    if (*n != *n || *n > 1e300 || *n < -1e300) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * An RFC 3339 date ("2024-05-01T12:00:00.250Z", "+02:00" offsets, the
 * time or its seconds optional) as milliseconds since the epoch.
 */

ngx_int_t
ngx_http_ai_gateway_query_date(u_char *p, size_t len, double *ms)
{
    u_char      *last;
    int64_t      y, m, d, hh, mm, ss, frac, scale, days, off, sign,
                 hh_off, mm_off;
    ngx_uint_t   i;

    last = p + len;

    if (len < 10 || p[4] != '-' || p[7] != '-') {
        return NGX_DECLINED;
    }

    y = ngx_atoi(p, 4);
    m = ngx_atoi(p + 5, 2);
    d = ngx_atoi(p + 8, 2);

    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > 31) {
        return NGX_DECLINED;
    }

    p += 10;
    hh = mm = ss = frac = 0;
    scale = 1;
    off = 0;

    if (p < last && (*p == 'T' || *p == 't' || *p == ' ')) {
        p++;

        if (last - p < 5 || p[2] != ':') {
            return NGX_DECLINED;
        }

        hh = ngx_atoi(p, 2);
        mm = ngx_atoi(p + 3, 2);
        p += 5;

        if (p < last && *p == ':') {
            if (last - p < 3) {
                return NGX_DECLINED;
            }

            ss = ngx_atoi(p + 1, 2);
            p += 3;
        }

        if (hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60) {
            return NGX_DECLINED;
        }

        if (p < last && *p == '.') {
            p++;

            for (i = 0; p < last && *p >= '0' && *p <= '9'; i++, p++) {
                if (i < 3) {
                    frac = frac * 10 + (*p - '0');
                    scale *= 10;
                }
            }

            if (i == 0) {
                return NGX_DECLINED;
            }
        }

        if (p < last && (*p == 'Z' || *p == 'z')) {
            p++;

        } else if (p < last && (*p == '+' || *p == '-')) {
            sign = (*p == '-') ? -1 : 1;

            if (last - p != 6 || p[3] != ':') {
                return NGX_DECLINED;
            }

            hh_off = ngx_atoi(p + 1, 2);
            mm_off = ngx_atoi(p + 4, 2);

            if (hh_off < 0 || hh_off > 23 || mm_off < 0 || mm_off > 59) {
                return NGX_DECLINED;
            }

            off = sign * (hh_off * 60 + mm_off);
            p += 6;
        }
    }

    if (p != last) {
        return NGX_DECLINED;
    }

    /* days from the civil date (Howard Hinnant's algorithm) */

    y -= (m <= 2);
    days = (y / 400) * 146097
           + ((y % 400) * 365 + (y % 400) / 4 - (y % 400) / 100)
           + (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
           - 719468;

    *ms = (double) (((days * 24 + hh) * 60 + mm - off) * 60 + ss) * 1000
          + (double) (frac * 1000 / scale);

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_query_error(ngx_pool_t *pool, ngx_str_t *err,
    const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    p = ngx_pnalloc(pool, 512);
    if (p == NULL) {
        return NGX_ERROR;
    }

    va_start(args, fmt);
    err->len = ngx_vslprintf(p, p + 512, fmt, args) - p;
    va_end(args);

    err->data = p;

    return NGX_DECLINED;
}


/* a client's string in a message: printable ASCII, at most size - 4 */

static void
ngx_http_ai_gateway_query_printable(ngx_str_t *s, u_char *buf, size_t size,
    ngx_str_t *out)
{
    u_char  *p, *q, *last;

    p = buf;
    last = buf + size - 3;

    for (q = s->data; q < s->data + s->len; q++) {
        if (p == last) {
            p = ngx_cpymem(p, "...", 3);
            break;
        }

        *p++ = (*q >= 0x20 && *q < 0x7f && *q != '\'' && *q != '\\')
               ? *q : '?';
    }

    out->data = buf;
    out->len = p - buf;
}
