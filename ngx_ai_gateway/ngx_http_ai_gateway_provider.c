
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_module.h"


#define NGX_HTTP_AI_GATEWAY_MAX_VARS  4


typedef struct {
    ngx_str_t                      name;
    ngx_str_t                      value;
} ngx_http_ai_gateway_var_t;


typedef struct {
    ngx_http_ai_gateway_var_t      vars[NGX_HTTP_AI_GATEWAY_MAX_VARS];
    ngx_uint_t                     nvars;
    ngx_str_t                      rest;
} ngx_http_ai_gateway_path_t;


static ngx_http_ai_gateway_origin_t *ngx_http_ai_gateway_find_origin(
    ngx_array_t *origins, ngx_str_t *slug);
static ngx_int_t ngx_http_ai_gateway_seg(ngx_str_t *rest, ngx_str_t *seg);
static ngx_int_t ngx_http_ai_gateway_token(ngx_str_t *value, ngx_uint_t dot);
static ngx_int_t ngx_http_ai_gateway_var(ngx_http_ai_gateway_path_t *path,
    char *name, ngx_str_t *value, ngx_uint_t dot);
static ngx_int_t ngx_http_ai_gateway_rule_azure(
    ngx_http_ai_gateway_path_t *path);
static ngx_int_t ngx_http_ai_gateway_rule_bedrock(
    ngx_http_ai_gateway_path_t *path);
static ngx_int_t ngx_http_ai_gateway_rule_vertex(
    ngx_http_ai_gateway_path_t *path);
static ngx_int_t ngx_http_ai_gateway_rule_fal(ngx_http_request_t *r,
    ngx_http_ai_gateway_target_t *t);
static ngx_int_t ngx_http_ai_gateway_expand(ngx_pool_t *pool, ngx_str_t *tpl,
    ngx_http_ai_gateway_path_t *path, ngx_str_t *out);
static ngx_int_t ngx_http_ai_gateway_compose(ngx_pool_t *pool,
    ngx_http_ai_gateway_origin_t *o, ngx_str_t *prefix, ngx_str_t *rest,
    ngx_str_t *out);
static ngx_uint_t ngx_http_ai_gateway_keep(ngx_str_t *keep, ngx_str_t *seg);


#define ngx_http_ai_gateway_row(slug, alias, url, insert, keep, strip,       \
                                auth, rule)                                   \
    { ngx_string(slug), ngx_string(alias), ngx_string(url),                  \
      ngx_string(insert), ngx_string(keep), ngx_string(strip),               \
      ngx_string(auth), NGX_HTTP_AI_GATEWAY_RULE_ ## rule }


/*
 * The provider table, see docs/providers.md.  "insert" is a path segment
 * added after the URL's path prefix unless the request path already starts
 * with one of the "keep" segments ("v*" is any version segment: v1, v2,
 * v1beta...), "strip" is a first segment removed.
 */

static ngx_http_ai_gateway_provider_t  ngx_http_ai_gateway_providers[] = {

    ngx_http_ai_gateway_row("anthropic", "",
        "https://api.anthropic.com", "", "", "", "x-api-key", PLAIN),

    ngx_http_ai_gateway_row("aws-bedrock", "",
        "https://{service}.{region}.amazonaws.com", "", "", "",
        "authorization", BEDROCK),

    ngx_http_ai_gateway_row("azure-openai", "",
        "https://{resource}.openai.azure.com/openai/deployments/{deployment}",
        "", "", "", "api-key", AZURE),

    ngx_http_ai_gateway_row("baseten", "",
        "https://inference.baseten.co", "v1", "v* model", "",
        "authorization", PLAIN),

    ngx_http_ai_gateway_row("cartesia", "",
        "https://api.cartesia.ai", "", "", "v1", "x-api-key", PLAIN),

    ngx_http_ai_gateway_row("cerebras", "",
        "https://api.cerebras.ai", "v1", "v*", "", "authorization", PLAIN),

    ngx_http_ai_gateway_row("cohere", "",
        "https://api.cohere.ai", "v1", "v* compatibility", "",
        "authorization", PLAIN),

    ngx_http_ai_gateway_row("deepgram", "",
        "https://api.deepgram.com", "", "", "", "authorization", PLAIN),

    ngx_http_ai_gateway_row("deepseek", "",
        "https://api.deepseek.com", "", "", "", "authorization", PLAIN),

    ngx_http_ai_gateway_row("elevenlabs", "",
        "https://api.elevenlabs.io", "", "", "", "xi-api-key", PLAIN),

    ngx_http_ai_gateway_row("fal", "",
        "https://fal.run", "", "", "", "authorization", FAL),

    ngx_http_ai_gateway_row("google-ai-studio", "google",
        "https://generativelanguage.googleapis.com", "", "", "",
        "x-goog-api-key", PLAIN),

    ngx_http_ai_gateway_row("google-vertex-ai", "",
        "https://{region-}aiplatform.googleapis.com", "", "", "",
        "authorization", VERTEX),

    ngx_http_ai_gateway_row("grok", "xai",
        "https://api.x.ai", "v1", "v*", "", "authorization", PLAIN),

    ngx_http_ai_gateway_row("groq", "",
        "https://api.groq.com/openai", "v1", "v*", "", "authorization",
        PLAIN),

    ngx_http_ai_gateway_row("huggingface", "",
        "https://api-inference.huggingface.co/models", "", "", "",
        "authorization", PLAIN),

    ngx_http_ai_gateway_row("ideogram", "",
        "https://api.ideogram.ai", "", "", "", "api-key", PLAIN),

    ngx_http_ai_gateway_row("mistral", "",
        "https://api.mistral.ai", "v1", "v*", "", "authorization", PLAIN),

    ngx_http_ai_gateway_row("openai", "",
        "https://api.openai.com", "v1", "v*", "", "authorization", PLAIN),

    ngx_http_ai_gateway_row("openrouter", "",
        "https://openrouter.ai/api", "v1", "v*", "", "authorization",
        PLAIN),

    ngx_http_ai_gateway_row("parallel", "",
        "https://api.parallel.ai", "", "", "", "x-api-key", PLAIN),

    ngx_http_ai_gateway_row("perplexity-ai", "perplexity",
        "https://api.perplexity.ai", "", "", "", "authorization", PLAIN),

    ngx_http_ai_gateway_row("replicate", "",
        "https://api.replicate.com", "v1", "v*", "", "authorization",
        PLAIN),

    ngx_http_ai_gateway_row("workers-ai", "",
        "https://api.cloudflare.com/client/v4/accounts/{account_id}/ai",
        "run", "v1 run", "", "authorization", PLAIN),

    { ngx_null_string, ngx_null_string, ngx_null_string, ngx_null_string,
      ngx_null_string, ngx_null_string, ngx_null_string, 0 }
};


static ngx_str_t  ngx_http_ai_gateway_placeholders[] = {
    ngx_string("account_id"),
    ngx_string("deployment"),
    ngx_string("region"),
    ngx_string("region-"),
    ngx_string("resource"),
    ngx_string("service"),
    ngx_null_string
};


static ngx_str_t  ngx_http_ai_gateway_fal_target =
    ngx_string("x-fal-target-url");


ngx_http_ai_gateway_provider_t *
ngx_http_ai_gateway_provider_find(ngx_str_t *slug)
{
    ngx_http_ai_gateway_provider_t  *p;

    for (p = ngx_http_ai_gateway_providers; p->slug.len; p++) {

        if ((slug->len == p->slug.len
             && ngx_strncmp(slug->data, p->slug.data, slug->len) == 0)
            || (p->alias.len && slug->len == p->alias.len
                && ngx_strncmp(slug->data, p->alias.data, slug->len) == 0))
        {
            return p;
        }
    }

    return NULL;
}


/* the built-in slugs, for error messages: "anthropic, aws-bedrock, ..." */

u_char *
ngx_http_ai_gateway_provider_names(u_char *buf, u_char *last)
{
    u_char                          *p;
    ngx_http_ai_gateway_provider_t  *pr;

    p = buf;

    for (pr = ngx_http_ai_gateway_providers; pr->slug.len; pr++) {
        p = ngx_slprintf(p, last, "%s%V", p == buf ? "" : ", ", &pr->slug);
    }

    return p;
}


ngx_int_t
ngx_http_ai_gateway_provider_init(ngx_conf_t *cf)
{
    char                             *err;
    ngx_str_t                         url;
    ngx_uint_t                        i, n;
    ngx_http_ai_gateway_origin_t     *o;
    ngx_http_ai_gateway_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_gateway_module);

    n = sizeof(ngx_http_ai_gateway_providers)
        / sizeof(ngx_http_ai_gateway_provider_t);

    amcf->defaults = ngx_pcalloc(cf->pool, n * sizeof(*o));
    if (amcf->defaults == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; ngx_http_ai_gateway_providers[i].slug.len; i++) {
        o = &amcf->defaults[i];

        /* writable: nginx's resolver lowercases the names it is given */

        url.len = ngx_http_ai_gateway_providers[i].url.len;
        url.data = ngx_pstrdup(cf->pool, &ngx_http_ai_gateway_providers[i].url);
        if (url.data == NULL) {
            return NGX_ERROR;
        }

        if (ngx_http_ai_gateway_parse_origin(cf->pool, &url, o, &err)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "ai_gateway: bad built-in URL of \"%V\": %s",
                          &ngx_http_ai_gateway_providers[i].slug, err);
            return NGX_ERROR;
        }

        o->provider = &ngx_http_ai_gateway_providers[i];
        o->slug = o->provider->slug;
        o->auth = o->provider->auth;
    }

    return NGX_OK;
}


/*
 * ai_gateway_provider <slug> <url> [host=<name>] [auth_header=<name>];
 */

char *
ngx_http_ai_gateway_provider_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_gateway_loc_conf_t *alcf = conf;

    char                            *err;
    u_char                          *p, names[NGX_MAX_CONF_ERRSTR / 2];
    ngx_str_t                       *value;
    ngx_url_t                        u;
    ngx_uint_t                       i;
    ngx_http_ai_gateway_origin_t    *o;
    ngx_http_ai_gateway_provider_t  *provider;

    value = cf->args->elts;

    provider = NULL;

    if (value[1].len > 7 && ngx_strncmp(value[1].data, "custom-", 7) == 0) {

        for (p = value[1].data + 7; p < value[1].data + value[1].len; p++) {
            if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
                  || *p == '-'))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid custom provider slug \"%V\" in "
                                   "\"%V\" directive, after \"custom-\" "
                                   "it must have lowercase letters, digits "
                                   "and hyphens only", &value[1], &value[0]);
                return NGX_CONF_ERROR;
            }
        }

    } else {
        provider = ngx_http_ai_gateway_provider_find(&value[1]);

        if (provider == NULL) {
            *ngx_http_ai_gateway_provider_names(names,
                                                names + sizeof(names) - 1)
                = '\0';

            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown provider \"%V\" in \"%V\" "
                               "directive, it must be one of %s, or a "
                               "custom provider named \"custom-{slug}\"",
                               &value[1], &value[0], names);
            return NGX_CONF_ERROR;
        }
    }

    if (alcf->origins == NGX_CONF_UNSET_PTR) {
        alcf->origins = ngx_array_create(cf->pool, 4,
                                         sizeof(ngx_http_ai_gateway_origin_t));
        if (alcf->origins == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_http_ai_gateway_find_origin(alcf->origins,
                                        provider ? &provider->slug : &value[1])
        != NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate provider \"%V\" in \"%V\" directive, "
                           "a provider is declared once in a location",
                           &value[1], &value[0]);
        return NGX_CONF_ERROR;
    }

    o = ngx_array_push(alcf->origins);
    if (o == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(o, sizeof(ngx_http_ai_gateway_origin_t));

    if (ngx_http_ai_gateway_parse_origin(cf->pool, &value[2], o, &err)
        != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid URL \"%V\": %s, in \"%V\" directive; "
                           "it must be \"http://\" or \"https://\", a host "
                           "and an optional port and path", &value[2], err,
                           &value[0]);
        return NGX_CONF_ERROR;
    }

    o->provider = provider;
    o->custom = (provider == NULL);
    o->slug = provider ? provider->slug : value[1];

    if (provider) {
        o->auth = provider->auth;

    } else {
        ngx_str_set(&o->auth, "authorization");
    }

    for (i = 3; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "host=", 5) == 0
            && value[i].len > 5)
        {
            o->tls_name.data = value[i].data + 5;
            o->tls_name.len = value[i].len - 5;
            continue;
        }

        if (ngx_strncmp(value[i].data, "auth_header=", 12) == 0
            && value[i].len > 12)
        {
            o->auth.data = value[i].data + 12;
            o->auth.len = value[i].len - 12;
            ngx_strlow(o->auth.data, o->auth.data, o->auth.len);
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"%V\" directive, "
                           "it must be \"host=name\" or "
                           "\"auth_header=name\"", &value[i], &value[0]);
        return NGX_CONF_ERROR;
    }

    /* what goes into every request to this provider is checked once here */

    if (ngx_http_ai_gateway_check_name(o->auth.data, o->auth.len) != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"auth_header=\" name \"%V\" in \"%V\" "
                           "directive: a header name is letters, digits "
                           "and !#$%%&'*+-.^_`|~", &o->auth, &value[0]);
        return NGX_CONF_ERROR;
    }

    if (o->tls_name.len
        && ngx_http_ai_gateway_check_host(o->tls_name.data, o->tls_name.len)
           != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"host=\" name \"%V\" in \"%V\" "
                           "directive, it must be a host name",
                           &o->tls_name, &value[0]);
        return NGX_CONF_ERROR;
    }

    if ((!o->templated
         && ngx_http_ai_gateway_check_host(o->host.data, o->host.len)
            != NGX_OK)
        || (o->prefix.len
            && (ngx_http_ai_gateway_check_path(o->prefix.data, o->prefix.len)
                != NGX_OK
                || ngx_http_ai_gateway_check_segments(o->prefix.data,
                                                      o->prefix.len)
                   != NGX_OK)))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid URL \"%V\" in \"%V\" directive: the "
                           "host or the path has a character that cannot be "
                           "sent, or a \".\" or \"..\" segment",
                           &value[2], &value[0]);
        return NGX_CONF_ERROR;
    }

    if (o->templated) {
        /* resolved per request, like proxy_pass with variables */
        return NGX_CONF_OK;
    }

    /*
     * a fixed host is registered as an implicit upstream, exactly as
     * proxy_pass does: it is resolved once at startup, or it names an
     * upstream{} block (keepalive, several servers, etc.)
     */

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url.len = o->host.len + 6;
    u.url.data = ngx_pnalloc(cf->pool, u.url.len);
    if (u.url.data == NULL) {
        return NGX_CONF_ERROR;
    }

    u.url.len = ngx_sprintf(u.url.data, "%V:%d", &o->host, (int) o->port)
                - u.url.data;

    if (o->no_port) {
        u.url = o->host;
        u.default_port = o->port;
    }

    u.no_resolve = 1;

    if (ngx_http_upstream_add(cf, &u, 0) == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_ai_gateway_provider_merge(ngx_conf_t *cf,
    ngx_http_ai_gateway_loc_conf_t *prev, ngx_http_ai_gateway_loc_conf_t *conf)
{
    ngx_uint_t                     i;
    ngx_http_ai_gateway_origin_t  *o, *n;

    if (conf->origins == NGX_CONF_UNSET_PTR) {
        conf->origins = (prev->origins == NGX_CONF_UNSET_PTR) ? NULL
                                                              : prev->origins;
        return NGX_CONF_OK;
    }

    if (prev->origins == NGX_CONF_UNSET_PTR || prev->origins == NULL) {
        return NGX_CONF_OK;
    }

    /* inherit the outer level's providers not declared here */

    o = prev->origins->elts;

    for (i = 0; i < prev->origins->nelts; i++) {

        if (ngx_http_ai_gateway_find_origin(conf->origins, &o[i].slug)) {
            continue;
        }

        n = ngx_array_push(conf->origins);
        if (n == NULL) {
            return NGX_CONF_ERROR;
        }

        *n = o[i];
    }

    return NGX_CONF_OK;
}


static ngx_http_ai_gateway_origin_t *
ngx_http_ai_gateway_find_origin(ngx_array_t *origins, ngx_str_t *slug)
{
    ngx_uint_t                     i;
    ngx_http_ai_gateway_origin_t  *o;

    if (origins == NULL || origins == NGX_CONF_UNSET_PTR) {
        return NULL;
    }

    o = origins->elts;

    for (i = 0; i < origins->nelts; i++) {
        if (o[i].slug.len == slug->len
            && ngx_strncmp(o[i].slug.data, slug->data, slug->len) == 0)
        {
            return &o[i];
        }
    }

    return NULL;
}


ngx_int_t
ngx_http_ai_gateway_parse_origin(ngx_pool_t *pool, ngx_str_t *url,
    ngx_http_ai_gateway_origin_t *o, char **err)
{
    u_char     *p, *last, *host, *end, *colon, *q, *r;
    ngx_int_t   port;
    ngx_str_t   name, *ph;

    p = url->data;
    last = p + url->len;

    if (url->len > 8 && ngx_strncasecmp(p, (u_char *) "https://", 8) == 0) {
        o->ssl = 1;
        p += 8;

    } else if (url->len > 7
               && ngx_strncasecmp(p, (u_char *) "http://", 7) == 0)
    {
        p += 7;

    } else {
        *err = "the URL must start with \"http://\" or \"https://\"";
        return NGX_ERROR;
    }

    host = p;

    end = ngx_strlchr(p, last, '/');
    if (end == NULL) {
        end = last;
    }

    if (ngx_strlchr(host, last, '?') || ngx_strlchr(host, last, '#')
        || ngx_strlchr(host, end, '@'))
    {
        *err = "a query, fragment or user name is not allowed";
        return NGX_ERROR;
    }

    if (*host == '[') {
        colon = ngx_strlchr(host, end, ']');
        if (colon == NULL) {
            *err = "invalid IPv6 address";
            return NGX_ERROR;
        }

        colon = ngx_strlchr(colon, end, ':');

    } else {
        colon = ngx_strlchr(host, end, ':');
    }

    if (colon) {
        port = ngx_atoi(colon + 1, end - colon - 1);
        if (port < 1 || port > 65535) {
            *err = "invalid port";
            return NGX_ERROR;
        }

        o->port = (in_port_t) port;
        o->host.data = host;
        o->host.len = colon - host;

    } else {
        o->port = o->ssl ? 443 : 80;
        o->no_port = 1;
        o->host.data = host;
        o->host.len = end - host;
    }

    if (o->host.len == 0) {
        *err = "no host";
        return NGX_ERROR;
    }

    o->prefix.data = end;
    o->prefix.len = last - end;

    while (o->prefix.len && o->prefix.data[o->prefix.len - 1] == '/') {
        o->prefix.len--;
    }

    /* every {placeholder} must be a known one */

    for (q = host; q < last; q++) {
        if (*q == '}') {
            *err = "unbalanced \"}\"";
            return NGX_ERROR;
        }

        if (*q != '{') {
            continue;
        }

        r = ngx_strlchr(q, last, '}');
        if (r == NULL) {
            *err = "unbalanced \"{\"";
            return NGX_ERROR;
        }

        name.data = q + 1;
        name.len = r - q - 1;

        for (ph = ngx_http_ai_gateway_placeholders; ph->len; ph++) {
            if (ph->len == name.len
                && ngx_strncmp(ph->data, name.data, name.len) == 0)
            {
                break;
            }
        }

        if (ph->len == 0) {
            *err = "unknown placeholder";
            return NGX_ERROR;
        }

        if (q < end) {
            o->templated = 1;
        }

        q = r;
    }

    (void) pool;

    return NGX_OK;
}


/*
 * Maps "/{provider}{rest}" to the upstream target of this request.
 */

ngx_int_t
ngx_http_ai_gateway_route(ngx_http_request_t *r,
    ngx_http_ai_gateway_loc_conf_t *alcf, ngx_http_ai_gateway_ctx_t *ctx,
    ngx_str_t *slug, ngx_str_t *rest)
{
    ngx_http_ai_gateway_origin_t     *o;
    ngx_http_ai_gateway_provider_t   *provider;
    ngx_http_ai_gateway_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_gateway_module);

    provider = ngx_http_ai_gateway_provider_find(slug);

    o = ngx_http_ai_gateway_find_origin(alcf->origins,
                                        provider ? &provider->slug : slug);

    if (o == NULL) {
        if (provider == NULL) {
            ctx->route.provider = *slug;
            return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_PROVIDER,
                                        NULL);
        }

        o = &amcf->defaults[provider - ngx_http_ai_gateway_providers];
    }

    ctx->route.provider = o->slug;

    return ngx_http_ai_gateway_route_origin(r, ctx, o, rest);
}


/*
 * The target of a request to origin o: the path after the gateway's
 * prefix (rest, NULL for none) goes through the provider's rules.
 */

ngx_int_t
ngx_http_ai_gateway_route_origin(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_origin_t *o,
    ngx_str_t *rest)
{
    u_char                        *p;
    ngx_int_t                      rc;
    ngx_str_t                      prefix;
    ngx_http_ai_gateway_path_t     path;
    ngx_http_ai_gateway_target_t  *t;

    t = &ctx->route.target;
    t->ssl = o->ssl;
    t->port = o->port;
    t->no_port = o->no_port;
    t->args = r->args;

    ngx_memzero(&path, sizeof(ngx_http_ai_gateway_path_t));

    if (rest) {
        path.rest = *rest;
    }

    /* an account id that cannot be a path segment is simply not offered */
    (void) ngx_http_ai_gateway_var(&path, "account_id",
                                   &ctx->route.account_id, 1);

    rc = NGX_OK;

    switch (o->provider ? o->provider->rule : NGX_HTTP_AI_GATEWAY_RULE_PLAIN) {

    case NGX_HTTP_AI_GATEWAY_RULE_AZURE:
        rc = ngx_http_ai_gateway_rule_azure(&path);
        break;

    case NGX_HTTP_AI_GATEWAY_RULE_BEDROCK:
        rc = ngx_http_ai_gateway_rule_bedrock(&path);
        break;

    case NGX_HTTP_AI_GATEWAY_RULE_VERTEX:
        rc = ngx_http_ai_gateway_rule_vertex(&path);
        break;

    case NGX_HTTP_AI_GATEWAY_RULE_FAL:
        rc = ngx_http_ai_gateway_rule_fal(r, t);
        break;

    default: /* NGX_HTTP_AI_GATEWAY_RULE_PLAIN */
        break;
    }

    if (rc == NGX_OK && !t->fal_target) {

        rc = ngx_http_ai_gateway_expand(r->pool, &o->host, &path, &t->host);

        if (rc == NGX_OK) {
            rc = ngx_http_ai_gateway_expand(r->pool, &o->prefix, &path,
                                            &prefix);
        }

        if (rc == NGX_OK) {
            rc = ngx_http_ai_gateway_compose(r->pool, o, &prefix, &path.rest,
                                             &t->path);
        }

        if (rc == NGX_OK) {
            t->tls_name = o->tls_name.len ? o->tls_name : t->host;
        }
    }

    /* NGX_DECLINED: a segment that a rule or a template needs is missing */

    if (rc == NGX_DECLINED) {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_PATH,
                                        "Malformed gateway path for provider "
                                        "\"%V\", see docs/providers.md",
                                        &o->slug);
    }

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_HEADER,
                                        "x-fal-target-url must be an https "
                                        "URL on fal.run or fal.ai");
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (t->no_port) {
        t->host_header = t->tls_name;

    } else {
        p = ngx_pnalloc(r->pool, t->tls_name.len + sizeof(":65535") - 1);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        t->host_header.data = p;
        t->host_header.len = ngx_sprintf(p, "%V:%d", &t->tls_name,
                                         (int) t->port)
                             - p;
    }

    t->origin = o;

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai gateway route \"%V\" to %s://%V%V \"%V\"",
                   &o->slug, t->ssl ? "https" : "http", &t->host_header,
                   &t->path, &t->args);

    return NGX_OK;
}


/* takes one "/segment" off the front of rest */

static ngx_int_t
ngx_http_ai_gateway_seg(ngx_str_t *rest, ngx_str_t *seg)
{
    u_char  *p, *q, *last;

    p = rest->data;
    last = p + rest->len;

    if (p == last || *p != '/') {
        return NGX_DECLINED;
    }

    p++;

    q = ngx_strlchr(p, last, '/');
    if (q == NULL) {
        q = last;
    }

    seg->data = p;
    seg->len = q - p;

    rest->len = last - q;
    rest->data = q;

    return seg->len ? NGX_OK : NGX_DECLINED;
}


/* host labels and path names: letters, digits, '-' (and '.', '_') */

static ngx_int_t
ngx_http_ai_gateway_token(ngx_str_t *value, ngx_uint_t dot)
{
    u_char  *p, c;

    if (value->len == 0 || value->len > 128) {
        return NGX_DECLINED;
    }

    for (p = value->data; p < value->data + value->len; p++) {
        c = *p;

        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
            continue;
        }

        if (dot && ((c >= 'A' && c <= 'Z') || c == '.' || c == '_')) {
            continue;
        }

        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_var(ngx_http_ai_gateway_path_t *path, char *name,
    ngx_str_t *value, ngx_uint_t dot)
{
    ngx_http_ai_gateway_var_t  *v;

    if (ngx_http_ai_gateway_token(value, dot) != NGX_OK
        || path->nvars == NGX_HTTP_AI_GATEWAY_MAX_VARS)
    {
        return NGX_DECLINED;
    }

    v = &path->vars[path->nvars++];
    v->name.data = (u_char *) name;
    v->name.len = ngx_strlen(name);
    v->value = *value;

    return NGX_OK;
}


/* "/{resource}[/openai][/deployments]/{deployment}/..." */

/*
 * The rules take the segments they read off path->rest (on NGX_DECLINED
 * the path is not used).
 */

static ngx_int_t
ngx_http_ai_gateway_rule_azure(ngx_http_ai_gateway_path_t *path)
{
    ngx_str_t  resource, deployment;

    if (ngx_http_ai_gateway_seg(&path->rest, &resource) != NGX_OK
        || ngx_http_ai_gateway_seg(&path->rest, &deployment) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (deployment.len == 6 && ngx_strncmp(deployment.data, "openai", 6) == 0
        && ngx_http_ai_gateway_seg(&path->rest, &deployment) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (deployment.len == 11
        && ngx_strncmp(deployment.data, "deployments", 11) == 0
        && ngx_http_ai_gateway_seg(&path->rest, &deployment) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_ai_gateway_var(path, "resource", &resource, 0) != NGX_OK
        || ngx_http_ai_gateway_var(path, "deployment", &deployment, 1)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* "/{service}/{region}/..." */

static ngx_int_t
ngx_http_ai_gateway_rule_bedrock(ngx_http_ai_gateway_path_t *path)
{
    ngx_str_t  service, region;

    if (ngx_http_ai_gateway_seg(&path->rest, &service) != NGX_OK
        || ngx_http_ai_gateway_seg(&path->rest, &region) != NGX_OK
        || ngx_http_ai_gateway_var(path, "service", &service, 0) != NGX_OK
        || ngx_http_ai_gateway_var(path, "region", &region, 0) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * ".../locations/{region}/...": the regional host, "global" has none; the
 * path is read, not taken
 */

static ngx_int_t
ngx_http_ai_gateway_rule_vertex(ngx_http_ai_gateway_path_t *path)
{
    ngx_str_t  rest, seg, region;

    rest = path->rest;

    ngx_str_set(&region, "global");

    while (ngx_http_ai_gateway_seg(&rest, &seg) == NGX_OK) {

        if (seg.len == 9 && ngx_strncmp(seg.data, "locations", 9) == 0) {
            if (ngx_http_ai_gateway_seg(&rest, &region) != NGX_OK) {
                return NGX_DECLINED;
            }

            break;
        }
    }

    if (ngx_http_ai_gateway_token(&region, 0) != NGX_OK) {
        return NGX_DECLINED;
    }

    if (region.len == 6 && ngx_strncmp(region.data, "global", 6) == 0) {
        region.len = 0;
    }

    /* "{region-}" expands to "us-central1-", or to nothing for "global" */

    if (path->nvars == NGX_HTTP_AI_GATEWAY_MAX_VARS) {
        return NGX_DECLINED;
    }

    path->vars[path->nvars].name.data = (u_char *) "region-";
    path->vars[path->nvars].name.len = 7;
    path->vars[path->nvars].value = region;
    path->nvars++;

    return NGX_OK;
}


/*
 * x-fal-target-url: the whole Fal URL to call, restricted to Fal's own
 * hosts so that the gateway is never an open proxy
 */

static ngx_int_t
ngx_http_ai_gateway_rule_fal(ngx_http_request_t *r,
    ngx_http_ai_gateway_target_t *t)
{
    u_char           *p, *last, *host, *q;
    ngx_str_t         name;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NGX_OK;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == ngx_http_ai_gateway_fal_target.len
            && ngx_strncasecmp(h[i].key.data,
                               ngx_http_ai_gateway_fal_target.data,
                               h[i].key.len) == 0)
        {
            break;
        }
    }

    p = h[i].value.data;
    last = p + h[i].value.len;

    if (last - p < 9 || ngx_strncasecmp(p, (u_char *) "https://", 8) != 0) {
        return NGX_HTTP_BAD_REQUEST;
    }

    host = p + 8;

    for (q = host; q < last && *q != '/' && *q != '?' && *q != '#'; q++) {
        if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')
              || (*q >= '0' && *q <= '9') || *q == '-' || *q == '.'))
        {
            /* no port, no user name, no IP literal */
            return NGX_HTTP_BAD_REQUEST;
        }
    }

    name.data = host;
    name.len = q - host;

    if (!((name.len == 7 && ngx_strncasecmp(name.data, (u_char *) "fal.run", 7)
           == 0)
          || (name.len > 8
              && ngx_strncasecmp(q - 8, (u_char *) ".fal.run", 8) == 0)
          || (name.len == 6
              && ngx_strncasecmp(name.data, (u_char *) "fal.ai", 6) == 0)
          || (name.len > 7
              && ngx_strncasecmp(q - 7, (u_char *) ".fal.ai", 7) == 0)))
    {
        return NGX_HTTP_BAD_REQUEST;
    }

    t->host.data = ngx_pnalloc(r->pool, name.len);
    if (t->host.data == NULL) {
        return NGX_ERROR;
    }

    t->host.len = name.len;
    ngx_strlow(t->host.data, name.data, name.len);

    t->tls_name = t->host;
    t->ssl = 1;
    t->port = 443;
    t->no_port = 1;
    t->fal_target = 1;

    p = q;

    q = ngx_strlchr(p, last, '#');
    if (q) {
        last = q;
    }

    q = ngx_strlchr(p, last, '?');

    t->path.data = p;
    t->path.len = (q ? q : last) - p;

    if (t->path.len == 0) {
        ngx_str_set(&t->path, "/");
    }

    if (q) {
        t->args.data = q + 1;
        t->args.len = last - q - 1;

    } else {
        ngx_str_null(&t->args);
    }

    /* the path and query go into the request line as they are */

    if (ngx_http_ai_gateway_check_path(t->path.data, t->path.len) != NGX_OK
        || ngx_http_ai_gateway_check_segments(t->path.data, t->path.len)
           != NGX_OK
        || ngx_http_ai_gateway_check_query(t->args.data, t->args.len)
           != NGX_OK)
    {
        return NGX_HTTP_BAD_REQUEST;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_expand(ngx_pool_t *pool, ngx_str_t *tpl,
    ngx_http_ai_gateway_path_t *path, ngx_str_t *out)
{
    u_char                     *p, *q, *last, *d;
    size_t                      len;
    ngx_uint_t                  i, pass;
    ngx_http_ai_gateway_var_t  *v;

    if (ngx_strlchr(tpl->data, tpl->data + tpl->len, '{') == NULL) {
        *out = *tpl;
        return NGX_OK;
    }

    /* two passes: the length, then the copy */

    len = 0;
    d = NULL;

    for (pass = 0; pass < 2; pass++) {

        p = tpl->data;
        last = p + tpl->len;

        while (p < last) {

            if (*p != '{') {
                if (pass) {
                    *d++ = *p;

                } else {
                    len++;
                }

                p++;
                continue;
            }

            q = ngx_strlchr(p, last, '}');
            if (q == NULL) {
                return NGX_ERROR;
            }

            v = NULL;

            for (i = 0; i < path->nvars; i++) {
                if (path->vars[i].name.len == (size_t) (q - p - 1)
                    && ngx_strncmp(path->vars[i].name.data, p + 1, q - p - 1)
                       == 0)
                {
                    v = &path->vars[i];
                    break;
                }
            }

            if (v == NULL) {
                return NGX_DECLINED;
            }

            if (pass) {
                d = ngx_cpymem(d, v->value.data, v->value.len);

                if (v->value.len && v->name.data[v->name.len - 1] == '-') {
                    *d++ = '-';
                }

            } else {
                len += v->value.len + 1;
            }

            p = q + 1;
        }

        if (pass == 0) {
            d = ngx_pnalloc(pool, len);
            if (d == NULL) {
                return NGX_ERROR;
            }

            out->data = d;
        }
    }

    out->len = d - out->data;

    return NGX_OK;
}


/* prefix + [insert] + rest, following the provider's path rules */

static ngx_int_t
ngx_http_ai_gateway_compose(ngx_pool_t *pool, ngx_http_ai_gateway_origin_t *o,
    ngx_str_t *prefix, ngx_str_t *rest, ngx_str_t *out)
{
    u_char                          *d;
    ngx_str_t                        seg, path, after, insert;
    ngx_http_ai_gateway_provider_t  *pr;

    path = *rest;
    ngx_str_null(&insert);

    pr = o->provider;

    if (pr == NULL) {
        /* custom providers: appended to the base URL as it is */
        goto done;
    }

    if (prefix->len && path.len >= prefix->len
        && ngx_strncmp(path.data, prefix->data, prefix->len) == 0
        && (path.len == prefix->len || path.data[prefix->len] == '/'))
    {
        /* the client sent the whole upstream path */
        *out = path;
        return NGX_OK;
    }

    after = path;

    if (ngx_http_ai_gateway_seg(&after, &seg) != NGX_OK) {
        ngx_str_null(&seg);
    }

    if (pr->strip.len && seg.len == pr->strip.len
        && ngx_strncmp(seg.data, pr->strip.data, seg.len) == 0)
    {
        path = after;
    }

    if (pr->insert.len && !ngx_http_ai_gateway_keep(&pr->keep, &seg)) {
        insert = pr->insert;
    }

done:

    out->len = prefix->len + (insert.len ? insert.len + 1 : 0) + path.len;

    if (out->len == 0) {
        ngx_str_set(out, "/");
        return NGX_OK;
    }

    d = ngx_pnalloc(pool, out->len);
    if (d == NULL) {
        return NGX_ERROR;
    }

    out->data = d;

    d = ngx_cpymem(d, prefix->data, prefix->len);

    if (insert.len) {
        *d++ = '/';
        d = ngx_cpymem(d, insert.data, insert.len);
    }

    ngx_memcpy(d, path.data, path.len);

    return NGX_OK;
}


/* is seg one of the space-separated "keep" words ("v*": v1, v2beta...) */

static ngx_uint_t
ngx_http_ai_gateway_keep(ngx_str_t *keep, ngx_str_t *seg)
{
    u_char  *p, *last, *q;

    if (seg->len == 0) {
        return 0;
    }

    p = keep->data;
    last = p + keep->len;

    while (p < last) {
        q = ngx_strlchr(p, last, ' ');
        if (q == NULL) {
            q = last;
        }

        if (q - p == 2 && p[0] == 'v' && p[1] == '*') {
            if (seg->len > 1 && seg->data[0] == 'v'
                && seg->data[1] >= '0' && seg->data[1] <= '9')
            {
                return 1;
            }

        } else if ((size_t) (q - p) == seg->len
                   && ngx_strncmp(p, seg->data, seg->len) == 0)
        {
            return 1;
        }

        p = q + 1;
    }

    return 0;
}
