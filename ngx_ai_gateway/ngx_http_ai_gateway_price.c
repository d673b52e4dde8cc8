
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <math.h>
#include <yajl/yajl_tree.h>

#include "ngx_http_ai_gateway_json.h"
#include "ngx_http_ai_gateway_usage.h"


/*
 * Prices and costs.  The price table is made at configuration time from
 * JSON files (the module's own, prices.json, then the operator's; format
 * in docs/usage.md): per provider and model, US dollars per million input,
 * output, cached input and cache-write tokens, kept per token.  A later
 * file's entry replaces an earlier one of the same provider and model.
 * "aliases" names the providers whose prices also apply to a provider's
 * models (Azure OpenAI's are OpenAI's).  The entries are kept sorted, and
 * looked up by binary search: nothing changes once the configuration is
 * read.
 *
 * A model name is priced by its own entry, else by the entry of the name
 * it extends with a date or a version: "gpt-4o-2024-08-06" by "gpt-4o",
 * "claude-3-5-sonnet-20241022" by "claude-3-5-sonnet",
 * "us.anthropic.claude-3-5-sonnet-20241022-v2:0" by
 * "anthropic.claude-3-5-sonnet", "claude-sonnet-4@20250514" by
 * "claude-sonnet-4", "mistral-small-latest" by "mistral-small".  What may
 * follow is a run of parts after "-", "@" or ":" each of which is a
 * number of 3, 4, 6 or 8 digits (a date, a snapshot), of 1 or 2 digits in
 * a date with a 4-digit year or after ":", "v" and 1 or 2 digits, or
 * "latest"; never a word ("gpt-4o-mini" is not "gpt-4o"), never a bare
 * version number ("claude-opus-4-5" is not "claude-opus-4").
 */


typedef struct {
    ngx_str_t                      provider;
    ngx_str_t                      model;
    ngx_http_ai_gateway_price_t    price;
} ngx_http_ai_gateway_price_entry_t;


typedef struct {
    ngx_str_t                      provider;
    ngx_array_t                   *also;      /* ngx_str_t: providers */
} ngx_http_ai_gateway_price_alias_t;


struct ngx_http_ai_gateway_prices_s {
    ngx_pool_t                    *pool;
    ngx_array_t                    entries;   /* sorted */
    ngx_array_t                    aliases;
};


static ngx_int_t ngx_http_ai_gateway_prices_provider(
    ngx_http_ai_gateway_prices_t *pp, const char *provider, yajl_val models,
    ngx_str_t *err);
static ngx_int_t ngx_http_ai_gateway_prices_entry(
    ngx_http_ai_gateway_prices_t *pp, ngx_str_t *provider, ngx_str_t *model,
    yajl_val v, ngx_str_t *err);
static ngx_int_t ngx_http_ai_gateway_prices_aliases(
    ngx_http_ai_gateway_prices_t *pp, yajl_val v, ngx_str_t *err);
static ngx_int_t ngx_http_ai_gateway_prices_number(yajl_val v, double *d);
static ngx_int_t ngx_http_ai_gateway_prices_error(
    ngx_http_ai_gateway_prices_t *pp, ngx_str_t *err, const char *fmt,
    const char *a, const char *b);
static int ngx_libc_cdecl ngx_http_ai_gateway_prices_cmp(const void *one,
    const void *two);
static ngx_http_ai_gateway_price_t *ngx_http_ai_gateway_prices_match(
    ngx_http_ai_gateway_prices_t *pp, ngx_str_t *provider, ngx_str_t *model);
static ngx_http_ai_gateway_price_t *ngx_http_ai_gateway_prices_exact(
    ngx_http_ai_gateway_prices_t *pp, ngx_str_t *provider, u_char *model,
    size_t len);
static ngx_uint_t ngx_http_ai_gateway_prices_version(u_char *p,
    u_char *last);
static ngx_int_t ngx_http_ai_gateway_prices_cmpn(u_char *a, u_char *b,
    size_t alen, size_t blen);


ngx_http_ai_gateway_prices_t *
ngx_http_ai_gateway_prices_create(ngx_pool_t *pool)
{
    ngx_http_ai_gateway_prices_t  *pp;

    pp = ngx_pcalloc(pool, sizeof(ngx_http_ai_gateway_prices_t));
    if (pp == NULL) {
        return NULL;
    }

    pp->pool = pool;

    if (ngx_array_init(&pp->entries, pool, 64,
                       sizeof(ngx_http_ai_gateway_price_entry_t))
        != NGX_OK
        || ngx_array_init(&pp->aliases, pool, 4,
                          sizeof(ngx_http_ai_gateway_price_alias_t))
           != NGX_OK)
    {
        return NULL;
    }

    return pp;
}


ngx_int_t
ngx_http_ai_gateway_prices_add(ngx_http_ai_gateway_prices_t *pp, u_char *p,
    size_t len, ngx_str_t *err)
{
    size_t      i;
    yajl_val    v, o;
    ngx_int_t   rc;
    const char  *key;

    rc = ngx_http_ai_gateway_json_parse(pp->pool, p, len, &v);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc != NGX_OK || !YAJL_IS_OBJECT(v)) {
        return ngx_http_ai_gateway_prices_error(pp, err,
                                                "not a JSON object%s%s",
                                                "", "");
    }

    for (i = 0; i < v->u.object.len; i++) {
        key = v->u.object.keys[i];
        o = v->u.object.values[i];

        if (ngx_strcmp(key, "date") == 0 || ngx_strcmp(key, "note") == 0
            || ngx_strcmp(key, "source") == 0)
        {
            if (!YAJL_IS_STRING(o)) {
                return ngx_http_ai_gateway_prices_error(pp, err,
                                              "\"%s\" must be a string%s",
                                              key, "");
            }

            continue;
        }

        if (ngx_strcmp(key, "unit") == 0) {
            if (!ngx_http_ai_gateway_json_is(o, "USD per 1M tokens")) {
                return ngx_http_ai_gateway_prices_error(pp, err,
                                     "\"unit\" must be \"USD per 1M "
                                     "tokens\"%s%s", "", "");
            }

            continue;
        }

        if (ngx_strcmp(key, "aliases") == 0) {
            rc = ngx_http_ai_gateway_prices_aliases(pp, o, err);
            if (rc != NGX_OK) {
                return rc;
            }

            continue;
        }

        if (ngx_strcmp(key, "prices") != 0) {
            return ngx_http_ai_gateway_prices_error(pp, err,
                                              "unknown member \"%s\"%s",
                                              key, "");
        }

        if (!YAJL_IS_OBJECT(o)) {
            return ngx_http_ai_gateway_prices_error(pp, err,
                                     "\"prices\" must be an object of "
                                     "providers%s%s", "", "");
        }
    }

    o = ngx_http_ai_gateway_json_get(v, "prices");

    if (o) {
        for (i = 0; i < o->u.object.len; i++) {
            rc = ngx_http_ai_gateway_prices_provider(pp, o->u.object.keys[i],
                                                     o->u.object.values[i],
                                                     err);
            if (rc != NGX_OK) {
                return rc;
            }
        }
    }

    if (pp->entries.nelts) {
        ngx_qsort(pp->entries.elts, pp->entries.nelts,
                  sizeof(ngx_http_ai_gateway_price_entry_t),
                  ngx_http_ai_gateway_prices_cmp);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_prices_provider(ngx_http_ai_gateway_prices_t *pp,
    const char *provider, yajl_val models, ngx_str_t *err)
{
    size_t     i;
    ngx_int_t  rc;
    ngx_str_t  name, prov, model;

    if (!YAJL_IS_OBJECT(models) || *provider == '\0') {
        return ngx_http_ai_gateway_prices_error(pp, err,
                                     "provider \"%s\" must be an object of "
                                     "models%s", provider, "");
    }

    name.len = ngx_strlen(provider);
    name.data = (u_char *) provider;

    prov.len = name.len;
    prov.data = ngx_pstrdup(pp->pool, &name);
    if (prov.data == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < models->u.object.len; i++) {
        model.len = ngx_strlen(models->u.object.keys[i]);
        model.data = (u_char *) models->u.object.keys[i];

        if (model.len == 0) {
            return ngx_http_ai_gateway_prices_error(pp, err,
                                     "an empty model name in \"%s\"%s",
                                     provider, "");
        }

        rc = ngx_http_ai_gateway_prices_entry(pp, &prov, &model,
                                              models->u.object.values[i],
                                              err);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


/* {"input":n,"output":n,"cached_input":n,"cache_write":n}, per 1M */

static ngx_int_t
ngx_http_ai_gateway_prices_entry(ngx_http_ai_gateway_prices_t *pp,
    ngx_str_t *provider, ngx_str_t *model, yajl_val v, ngx_str_t *err)
{
    size_t                              i;
    double                              d;
    ngx_uint_t                          has_in, has_out, has_cached,
                                        has_write;
    const char                         *key;
    ngx_http_ai_gateway_price_t         price;
    ngx_http_ai_gateway_price_entry_t  *e;

    if (!YAJL_IS_OBJECT(v)) {
        return ngx_http_ai_gateway_prices_error(pp, err,
                                     "the price of \"%s\" must be an "
                                     "object%s", (char *) model->data, "");
    }

    ngx_memzero(&price, sizeof(ngx_http_ai_gateway_price_t));
    has_in = 0;
    has_out = 0;
    has_cached = 0;
    has_write = 0;

    for (i = 0; i < v->u.object.len; i++) {
        key = v->u.object.keys[i];

        if (ngx_strcmp(key, "note") == 0) {
            continue;
        }

        if (ngx_http_ai_gateway_prices_number(v->u.object.values[i], &d)
            != NGX_OK)
        {
            return ngx_http_ai_gateway_prices_error(pp, err,
                                     "\"%s\" of \"%s\" must be a number "
                                     "of dollars, 0 or more", key,
                                     (char *) model->data);
        }

        d /= 1000000;

        if (ngx_strcmp(key, "input") == 0) {
            price.input = d;
            has_in = 1;

        } else if (ngx_strcmp(key, "output") == 0) {
            price.output = d;
            has_out = 1;

        } else if (ngx_strcmp(key, "cached_input") == 0) {
            price.cached = d;
            has_cached = 1;

        } else if (ngx_strcmp(key, "cache_write") == 0) {
            price.cache_write = d;
            has_write = 1;

        } else {
            return ngx_http_ai_gateway_prices_error(pp, err,
                                     "unknown price \"%s\" of \"%s\"", key,
                                     (char *) model->data);
        }
    }

    if (!has_in || !has_out) {
        return ngx_http_ai_gateway_prices_error(pp, err,
                                     "\"%s\" needs \"input\" and "
                                     "\"output\"%s", (char *) model->data,
                                     "");
    }

    /* without prices of their own, cache reads and writes are input */

    if (!has_cached) {
        price.cached = price.input;
    }

    if (!has_write) {
        price.cache_write = price.input;
    }

    e = pp->entries.elts;

    for (i = 0; i < pp->entries.nelts; i++) {
        if (e[i].provider.len == provider->len
            && e[i].model.len == model->len
            && ngx_strncmp(e[i].provider.data, provider->data,
                           provider->len) == 0
            && ngx_strncmp(e[i].model.data, model->data, model->len) == 0)
        {
            e[i].price = price;
            return NGX_OK;
        }
    }

    e = ngx_array_push(&pp->entries);
    if (e == NULL) {
        return NGX_ERROR;
    }

    e->provider = *provider;
    e->model.len = model->len;
    e->model.data = ngx_pstrdup(pp->pool, model);
    e->price = price;

    if (e->model.data == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* {"azure-openai":["openai"], ...} */

static ngx_int_t
ngx_http_ai_gateway_prices_aliases(ngx_http_ai_gateway_prices_t *pp,
    yajl_val v, ngx_str_t *err)
{
    size_t                              i, j;
    yajl_val                            list;
    ngx_str_t                          *s, name;
    ngx_http_ai_gateway_price_alias_t  *a;

    if (!YAJL_IS_OBJECT(v)) {
        return ngx_http_ai_gateway_prices_error(pp, err,
                                     "\"aliases\" must be an object of "
                                     "lists of providers%s%s", "", "");
    }

    for (i = 0; i < v->u.object.len; i++) {
        list = v->u.object.values[i];

        if (!YAJL_IS_ARRAY(list)) {
            return ngx_http_ai_gateway_prices_error(pp, err,
                                     "the aliases of \"%s\" must be a "
                                     "list%s", v->u.object.keys[i], "");
        }

        name.len = ngx_strlen(v->u.object.keys[i]);
        name.data = (u_char *) v->u.object.keys[i];

        a = pp->aliases.elts;

        for (j = 0; j < pp->aliases.nelts; j++) {
            if (a[j].provider.len == name.len
                && ngx_strncmp(a[j].provider.data, name.data, name.len) == 0)
            {
                break;
            }
        }

        if (j == pp->aliases.nelts) {
            a = ngx_array_push(&pp->aliases);
            if (a == NULL) {
                return NGX_ERROR;
            }

            a->provider.len = name.len;
            a->provider.data = ngx_pstrdup(pp->pool, &name);
            if (a->provider.data == NULL) {
                return NGX_ERROR;
            }

        } else {
            a = &a[j];
        }

        /* a later file's list replaces an earlier one */

        a->also = ngx_array_create(pp->pool, list->u.array.len + 1,
                                   sizeof(ngx_str_t));
        if (a->also == NULL) {
            return NGX_ERROR;
        }

        for (j = 0; j < list->u.array.len; j++) {
            if (ngx_http_ai_gateway_json_str(list->u.array.values[j], &name)
                != NGX_OK || name.len == 0)
            {
                return ngx_http_ai_gateway_prices_error(pp, err,
                                     "the aliases of \"%s\" must be "
                                     "provider names%s",
                                     v->u.object.keys[i], "");
            }

            s = ngx_array_push(a->also);
            if (s == NULL) {
                return NGX_ERROR;
            }

            s->len = name.len;
            s->data = ngx_pstrdup(pp->pool, &name);
            if (s->data == NULL) {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


/* dollars: 0 or more, less than 10^12 */

static ngx_int_t
ngx_http_ai_gateway_prices_number(yajl_val v, double *d)
{
    if (!YAJL_IS_DOUBLE(v) || !isfinite(v->u.number.d)
        || v->u.number.d < 0 || v->u.number.d >= 1e12)
    {
        return NGX_DECLINED;
    }

    *d = v->u.number.d;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_prices_error(ngx_http_ai_gateway_prices_t *pp,
    ngx_str_t *err, const char *fmt, const char *a, const char *b)
{
    u_char  *p;
    size_t   len;

    len = ngx_strlen(fmt) + ngx_strlen(a) + ngx_strlen(b);

    p = ngx_pnalloc(pp->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    err->data = p;
    err->len = ngx_snprintf(p, len, fmt, a, b) - p;

    return NGX_DECLINED;
}


static int ngx_libc_cdecl
ngx_http_ai_gateway_prices_cmp(const void *one, const void *two)
{
    ngx_int_t                           rc;
    ngx_http_ai_gateway_price_entry_t  *a, *b;

    a = (ngx_http_ai_gateway_price_entry_t *) one;
    b = (ngx_http_ai_gateway_price_entry_t *) two;

    rc = ngx_http_ai_gateway_prices_cmpn(a->provider.data, b->provider.data,
                                         a->provider.len, b->provider.len);

    if (rc) {
        return rc;
    }

    return ngx_http_ai_gateway_prices_cmpn(a->model.data, b->model.data,
                                           a->model.len, b->model.len);
}


static ngx_int_t
ngx_http_ai_gateway_prices_cmpn(u_char *a, u_char *b, size_t alen,
    size_t blen)
{
    ngx_int_t  rc;

    rc = ngx_memcmp(a, b, ngx_min(alen, blen));

    if (rc == 0) {
        rc = (alen < blen) ? -1 : (alen > blen);
    }

    return rc;
}


ngx_uint_t
ngx_http_ai_gateway_prices_count(ngx_http_ai_gateway_prices_t *pp)
{
    return pp->entries.nelts;
}


/* the provider's own prices, then those of its aliases */

ngx_http_ai_gateway_price_t *
ngx_http_ai_gateway_prices_find(ngx_http_ai_gateway_prices_t *pp,
    ngx_str_t *provider, ngx_str_t *model)
{
    ngx_uint_t                          i, j;
    ngx_str_t                          *s;
    ngx_http_ai_gateway_price_t        *price;
    ngx_http_ai_gateway_price_alias_t  *a;

    if (pp == NULL || model->len == 0 || provider->len == 0) {
        return NULL;
    }

    price = ngx_http_ai_gateway_prices_match(pp, provider, model);
    if (price) {
        return price;
    }

    a = pp->aliases.elts;

    for (i = 0; i < pp->aliases.nelts; i++) {
        if (a[i].provider.len != provider->len
            || ngx_strncmp(a[i].provider.data, provider->data,
                           provider->len) != 0)
        {
            continue;
        }

        s = a[i].also->elts;

        for (j = 0; j < a[i].also->nelts; j++) {
            price = ngx_http_ai_gateway_prices_match(pp, &s[j], model);
            if (price) {
                return price;
            }
        }

        break;
    }

    return NULL;
}


static ngx_http_ai_gateway_price_t *
ngx_http_ai_gateway_prices_match(ngx_http_ai_gateway_prices_t *pp,
    ngx_str_t *provider, ngx_str_t *model)
{
    u_char                       *p, *start, *last, *dot;
    ngx_uint_t                    round;
    ngx_http_ai_gateway_price_t  *price;

    start = model->data;
    last = start + model->len;

    for (round = 0; round < 2; round++) {

        if (round == 1) {
            /*
             * a Bedrock cross-region profile: "us.", "eu.", "apac.",
             * "global." before the model's "vendor.name"
             */

            dot = ngx_strlchr(start, last, '.');

            if (dot == NULL || dot - start < 2 || dot - start > 7
                || ngx_strlchr(dot + 1, last, '.') == NULL)
            {
                return NULL;
            }

            for (p = start; p < dot; p++) {
                if ((*p < 'a' || *p > 'z') && *p != '-') {
                    return NULL;
                }
            }

            start = dot + 1;
        }

        price = ngx_http_ai_gateway_prices_exact(pp, provider, start,
                                                 last - start);
        if (price) {
            return price;
        }

        /* the name without a date or a version after it */

        for (p = last - 1; p > start; p--) {
            if (*p != '-' && *p != '@' && *p != ':') {
                continue;
            }

            if (!ngx_http_ai_gateway_prices_version(p, last)) {
                continue;
            }

            price = ngx_http_ai_gateway_prices_exact(pp, provider, start,
                                                     p - start);
            if (price) {
                return price;
            }
        }
    }

    return NULL;
}


static ngx_http_ai_gateway_price_t *
ngx_http_ai_gateway_prices_exact(ngx_http_ai_gateway_prices_t *pp,
    ngx_str_t *provider, u_char *model, size_t len)
{
    ngx_int_t                           rc;
    ngx_uint_t                          lo, hi, mid;
    ngx_http_ai_gateway_price_entry_t  *e;

    e = pp->entries.elts;
    lo = 0;
    hi = pp->entries.nelts;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        rc = ngx_http_ai_gateway_prices_cmpn(e[mid].provider.data,
                                             provider->data,
                                             e[mid].provider.len,
                                             provider->len);

        if (rc == 0) {
            rc = ngx_http_ai_gateway_prices_cmpn(e[mid].model.data, model,
                                                 e[mid].model.len, len);
        }

        if (rc == 0) {
            return &e[mid].price;
        }

        if (rc < 0) {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    return NULL;
}


/* p at a "-", "@" or ":": what follows is a date or a version only */

static ngx_uint_t
ngx_http_ai_gateway_prices_version(u_char *p, u_char *last)
{
    u_char      *part, *q, sep;
    size_t       n;
    ngx_uint_t   year, digits;

    /* is there a year (4 digits) among the parts */

    year = 0;

    for (q = p; q < last; q = part + n) {
        sep = *q;
        part = q + 1;

        for (n = 0; part + n < last; n++) {
            if (part[n] == '-' || part[n] == '@' || part[n] == ':') {
                break;
            }
        }

        if (sep != '-' && sep != '@' && sep != ':') {
            return 0;
        }

        for (digits = 1, q = part; q < part + n; q++) {
            if (*q < '0' || *q > '9') {
                digits = 0;
                break;
            }
        }

        if (digits && n == 4) {
            year = 1;
        }
    }

    for (q = p; q < last; q = part + n) {
        sep = *q;
        part = q + 1;

        for (n = 0; part + n < last; n++) {
            if (part[n] == '-' || part[n] == '@' || part[n] == ':') {
                break;
            }
        }

        for (digits = 1, q = part; q < part + n; q++) {
            if (*q < '0' || *q > '9') {
                digits = 0;
                break;
            }
        }

        if (n == 0) {
            return 0;
        }

        if (digits) {
            if (n == 3 || n == 4 || n == 6 || n == 8) {
                continue;
            }

            if (n <= 2 && (year || sep == ':')) {
                continue;
            }

            return 0;
        }

        if (part[0] == 'v' && (n == 2 || n == 3)
            && part[1] >= '0' && part[1] <= '9'
            && (n == 2 || (part[2] >= '0' && part[2] <= '9')))
        {
            continue;
        }

        if (n == 6 && ngx_strncmp(part, "latest", 6) == 0) {
            continue;
        }

        return 0;
    }

    return 1;
}


double
ngx_http_ai_gateway_price_cost(ngx_http_ai_gateway_price_t *price,
    ngx_http_ai_gateway_tokens_t *t)
{
    return (double) t->input * price->input
           + (double) t->cached * price->cached
           + (double) t->cache_write * price->cache_write
           + (double) t->output * price->output;
}


ngx_int_t
ngx_http_ai_gateway_price_custom(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_http_ai_gateway_price_t *price, double *total)
{
    yajl_val   v, in, out, all;
    ngx_int_t  rc;
    double     din, dout;

    rc = ngx_http_ai_gateway_json_parse(pool, p, len, &v);
    if (rc != NGX_OK) {
        return rc;
    }

    if (!YAJL_IS_OBJECT(v)) {
        return NGX_DECLINED;
    }

    all = ngx_http_ai_gateway_json_get(v, "total_cost");

    if (all) {
        if (ngx_http_ai_gateway_prices_number(all, total) != NGX_OK) {
            return NGX_DECLINED;
        }

        return NGX_DONE;
    }

    in = ngx_http_ai_gateway_json_get(v, "per_token_in");
    out = ngx_http_ai_gateway_json_get(v, "per_token_out");

    din = 0;
    dout = 0;

    if ((in == NULL && out == NULL)
        || (in && ngx_http_ai_gateway_prices_number(in, &din) != NGX_OK)
        || (out && ngx_http_ai_gateway_prices_number(out, &dout) != NGX_OK))
    {
        return NGX_DECLINED;
    }

    price->input = din;
    price->cached = din;
    price->cache_write = din;
    price->output = dout;

    *total = -1;

    return NGX_OK;
}


u_char *
ngx_http_ai_gateway_price_print(u_char *buf, double cost)
{
    u_char      *p;
    uint64_t     whole, frac;
    ngx_uint_t   i;

    if (!isfinite(cost) || cost <= 0) {
        *buf = '0';
        return buf + 1;
    }

    if (cost >= 1e15) {
        /* dollars, without decimals */
        return ngx_sprintf(buf, "%uL",
                           (uint64_t) (cost < 1e19 ? cost : 1e19));
    }

    /* rounded to 10 decimals, as nginx's "%.10f" */

    whole = (uint64_t) cost;
    frac = (uint64_t) ((cost - (double) whole) * 1e10 + 0.5);

    if (frac >= 10000000000ULL) {
        whole++;
        frac -= 10000000000ULL;
    }

    p = ngx_sprintf(buf, "%uL", whole);

    if (frac == 0) {
        return p;
    }

    *p++ = '.';

    for (i = 10; i; i--) {
        p[i - 1] = (u_char) ('0' + frac % 10);
        frac /= 10;
    }

    p += 10;

    while (p[-1] == '0') {
        p--;
    }

    return p;
}
