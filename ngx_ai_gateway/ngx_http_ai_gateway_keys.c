
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_module.h"


/*
 * Stored provider keys, "bring your own key" (docs/access.md):
 *
 *   ai_gateway_provider_key openai file=/etc/nginx/keys/openai;
 *   ai_gateway_provider_key openai file=/etc/nginx/keys/batch alias=batch;
 *   ai_gateway_provider_key anthropic env=ANTHROPIC_API_KEY;
 *
 * Keys are read from files or from the master's environment when the
 * configuration is read (nginx clears the workers' environment), never
 * written in nginx.conf; a reload replaces them, the requests in flight
 * keeping the keys of the configuration they started with.  Several keys
 * of a provider are told apart by their alias, "default" when none is
 * given; "cf-aig-byok-alias" picks one, and an alias the provider does
 * not have is refused with 400 and code 2040 (no fallback to "default").
 *
 * A key is chosen for each routed request, attempt or Universal Endpoint
 * step (keys_pick(), with the provider's slug), and written into the
 * provider's credential header once the target is known (keys_apply()):
 * "Authorization: Bearer", "x-api-key", "x-goog-api-key", "api-key", a
 * custom provider's "auth_header=" header; a Google Vertex AI key is a
 * service-account JSON (kept as its base64), exchanged for a token by
 * vertex.c.  Every provider credential header of the client is then left
 * out of the provider request (keys_skip()).  A client's own key wins over the
 * stored one only with "ai_gateway_client_keys on"; the gateway token,
 * when it came in a provider's header (auth.c), is never a client's key
 * and never leaves the gateway.
 *
 * The cache key is made with the alias of the key, not the key itself
 * (cache_key.c), and no key is ever logged or put in an error message.
 * This file also reads the files of secrets (tokens too) and "Bearer
 * <token>" for the others (auth.c, api.c).
 */


#define NGX_HTTP_AI_GATEWAY_KEY_MAX    16384
#define NGX_HTTP_AI_GATEWAY_ALIAS_MAX  64


typedef struct {
    ngx_str_t                      provider;   /* the table's slug */
    ngx_str_t                      alias;
    ngx_str_t                      value;
} ngx_http_ai_gateway_key_t;


static ngx_uint_t ngx_http_ai_gateway_alias_valid(ngx_str_t *alias);
static ngx_uint_t ngx_http_ai_gateway_keys_header(ngx_table_elt_t *h,
    ngx_str_t *auth);
static ngx_uint_t ngx_http_ai_gateway_keys_token(ngx_table_elt_t *h,
    ngx_str_t *token);
static ngx_uint_t ngx_http_ai_gateway_keys_own(ngx_http_request_t *r,
    ngx_str_t *token);


/* the provider credential headers a client may send its key in */

static ngx_str_t  ngx_http_ai_gateway_key_headers[] = {
    ngx_string("authorization"),
    ngx_string("x-api-key"),
    ngx_string("x-goog-api-key"),
    ngx_string("api-key"),
    ngx_null_string
};


static ngx_str_t  ngx_http_ai_gateway_default_alias = ngx_string("default");


/*
 * ai_gateway_provider_key provider file=path|env=NAME [alias=name];
 */

char *
ngx_http_ai_gateway_key_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_gateway_loc_conf_t *alcf = conf;

    u_char                          *p;
    ngx_str_t                       *value, file, env, alias, slug, b64;
    ngx_uint_t                       i, vertex;
    ngx_http_ai_gateway_key_t       *k, *key;
    ngx_http_ai_gateway_provider_t  *provider;

    value = cf->args->elts;

    ngx_str_null(&file);
    ngx_str_null(&env);
    alias = ngx_http_ai_gateway_default_alias;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "file=", 5) == 0 && file.len == 0) {
            file.data = value[i].data + 5;
            file.len = value[i].len - 5;
            continue;
        }

        if (ngx_strncmp(value[i].data, "env=", 4) == 0 && env.len == 0) {
            env.data = value[i].data + 4;
            env.len = value[i].len - 4;
            continue;
        }

        if (ngx_strncmp(value[i].data, "alias=", 6) == 0) {
            alias.data = value[i].data + 6;
            alias.len = value[i].len - 6;

            if (!ngx_http_ai_gateway_alias_valid(&alias)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid alias \"%V\": at most %d "
                                   "letters, digits and \"-_.@\"", &alias,
                                   NGX_HTTP_AI_GATEWAY_ALIAS_MAX);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\": the key is read "
                           "from \"file=\" or \"env=\", never written in "
                           "the configuration", &value[i]);
        return NGX_CONF_ERROR;
    }

    if ((file.len == 0) == (env.len == 0)) {
        return "takes one of \"file=\" or \"env=\"";
    }

    provider = ngx_http_ai_gateway_provider_find(&value[1]);

    if (provider == NULL
        && !(value[1].len > 7
             && ngx_strncmp(value[1].data, "custom-", 7) == 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown provider \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (provider && provider->rule == NGX_HTTP_AI_GATEWAY_RULE_BEDROCK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" requests are signed by the client, "
                           "a stored key cannot be used", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (alcf->keys == NGX_CONF_UNSET_PTR) {
        alcf->keys = ngx_array_create(cf->pool, 2,
                                      sizeof(ngx_http_ai_gateway_key_t));
        if (alcf->keys == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    slug = provider ? provider->slug : value[1];
    key = alcf->keys->elts;

    for (i = 0; i < alcf->keys->nelts; i++) {
        if (key[i].provider.len == slug.len
            && ngx_strncmp(key[i].provider.data, slug.data, slug.len) == 0
            && key[i].alias.len == alias.len
            && ngx_strncmp(key[i].alias.data, alias.data, alias.len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate key \"%V\" of provider \"%V\"",
                               &alias, &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    k = ngx_array_push(alcf->keys);
    if (k == NULL) {
        return NGX_CONF_ERROR;
    }

    k->provider = slug;
    k->alias = alias;

    if (file.len) {
        if (ngx_http_ai_gateway_secret_file(cf, cf->pool, &file,
                                            NGX_HTTP_AI_GATEWAY_KEY_MAX,
                                            "key file", &k->value)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        /* without the line ends that close it */

        while (k->value.len
               && (k->value.data[k->value.len - 1] == LF
                   || k->value.data[k->value.len - 1] == CR))
        {
            k->value.len--;
        }

    } else {
        /* the master's environment: the workers' has been cleared */

        p = ngx_pnalloc(cf->temp_pool, env.len + 1);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        (void) ngx_cpystrn(p, env.data, env.len + 1);

        p = (u_char *) getenv((char *) p);

        if (p == NULL || *p == '\0') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "the environment variable \"%V\" is not set",
                               &env);
            return NGX_CONF_ERROR;
        }

        k->value.len = ngx_strlen(p);
        k->value.data = ngx_pnalloc(cf->pool, k->value.len);
        if (k->value.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(k->value.data, p, k->value.len);
    }

    /*
     * a Vertex AI service-account JSON, which spans lines, is kept as its
     * base64, the form vertex.c reads in "Authorization: Bearer"
     */

    vertex = (provider && provider->rule == NGX_HTTP_AI_GATEWAY_RULE_VERTEX);

    if (vertex && k->value.len && k->value.data[0] == '{'
        && ngx_strlchr(k->value.data, k->value.data + k->value.len, '\0')
           == NULL)
    {
        b64.len = ngx_base64_encoded_length(k->value.len);
        b64.data = ngx_pnalloc(cf->pool, b64.len);
        if (b64.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_encode_base64(&b64, &k->value);
        ngx_explicit_memzero(k->value.data, k->value.len);
        k->value = b64;
    }

    /* a key goes into a header: no control character, CR, LF or NUL */

    if (k->value.len == 0
        || ngx_http_ai_gateway_check_value(k->value.data, k->value.len)
           != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the key \"%V\" of provider \"%V\" is empty or "
                           "holds a control character (CR, LF, NUL...)",
                           &alias, &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * A file of secrets (tokens, keys), read whole at configuration time, by
 * the master before workers drop privileges, into a buffer of "pool" one
 * byte longer than the file; "what" names it in the messages, which never
 * quote its content.  NGX_ERROR after the error is logged.
 */

ngx_int_t
ngx_http_ai_gateway_secret_file(ngx_conf_t *cf, ngx_pool_t *pool,
    ngx_str_t *path, size_t max, const char *what, ngx_str_t *out)
{
    u_char           *buf;
    ssize_t           n;
    ngx_str_t         name;
    ngx_file_t        file;
    ngx_file_info_t   fi;

    name = *path;

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));

    file.name = name;
    file.log = cf->log;

    file.fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot open the %s \"%s\"", what, name.data);
        return NGX_ERROR;
    }

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR
        || !ngx_is_file(&fi)
        || ngx_file_size(&fi) > (off_t) max)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the %s \"%s\" is not a regular file of at most "
                           "%uz bytes", what, name.data, max);
        goto failed;
    }

    if (fi.st_mode & S_IROTH) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "the %s \"%s\" can be read by every user",
                           what, name.data);
    }

    buf = ngx_pnalloc(pool, max + 1);
    if (buf == NULL) {
        goto failed;
    }

    n = ngx_read_file(&file, buf, max + 1, 0);

    if (n == NGX_ERROR || (size_t) n > max) {
        ngx_explicit_memzero(buf, max + 1);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot read the %s \"%s\"", what, name.data);
        goto failed;
    }

    (void) ngx_close_file(file.fd);

    out->data = buf;
    out->len = n;

    return NGX_OK;

failed:

    (void) ngx_close_file(file.fd);

    return NGX_ERROR;
}


static ngx_uint_t
ngx_http_ai_gateway_alias_valid(ngx_str_t *alias)
{
    u_char  c, *p, *last;

    if (alias->len == 0 || alias->len > NGX_HTTP_AI_GATEWAY_ALIAS_MAX) {
        return 0;
    }

    last = alias->data + alias->len;

    for (p = alias->data; p < last; p++) {
        c = *p;

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9')
              || c == '-' || c == '_' || c == '.' || c == '@'))
        {
            return 0;
        }
    }

    return 1;
}


/*
 * The stored key of a routed request, attempt or step, for the provider
 * "slug": ctx->access.key set, or nothing to do (no key stored for the
 * provider, or the client's own key wins), or 400 with code 2040 for an
 * alias the provider does not have.
 */

ngx_int_t
ngx_http_ai_gateway_keys_pick(ngx_http_request_t *r,
    ngx_http_ai_gateway_loc_conf_t *alcf, ngx_http_ai_gateway_ctx_t *ctx,
    ngx_str_t *slug)
{
    u_char                         *p, *last;
    ngx_str_t                       alias;
    ngx_uint_t                      i, n;
    ngx_http_ai_gateway_ctx_t      *mctx;
    ngx_http_ai_gateway_key_t      *key, *found;
    ngx_http_ai_gateway_headers_t  *hs;

    if (alcf->keys == NULL) {
        return NGX_OK;
    }

    mctx = ngx_http_get_module_ctx(r->main, ngx_http_ai_gateway_module);

    if (mctx && mctx != ctx) {
        /* the gateway token, if it came in a provider's header */
        ctx->access.token = mctx->access.token;
    }

    hs = ngx_http_ai_gateway_headers(r, ctx);
    if (hs == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    alias = hs->byok_alias ? hs->byok_alias->value
                           : ngx_http_ai_gateway_default_alias;

    if (!ngx_http_ai_gateway_alias_valid(&alias)) {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_HEADER,
                                        "Invalid cf-aig-byok-alias: at most "
                                        "%d letters, digits and \"-_.@\"",
                                        NGX_HTTP_AI_GATEWAY_ALIAS_MAX);
    }

    if (alcf->client_keys
        && ngx_http_ai_gateway_keys_own(r, &ctx->access.token))
    {
        /* the client's own key wins */
        return NGX_OK;
    }

    n = 0;
    found = NULL;
    key = alcf->keys->elts;

    for (i = 0; i < alcf->keys->nelts; i++) {
        if (key[i].provider.len != slug->len
            || ngx_strncmp(key[i].provider.data, slug->data, slug->len) != 0)
        {
            continue;
        }

        n++;

        if (key[i].alias.len == alias.len
            && ngx_strncmp(key[i].alias.data, alias.data, alias.len) == 0)
        {
            found = &key[i];
        }
    }

    if (found) {
        ctx->access.key = &found->value;
        ctx->access.alias = found->alias;

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "ai gateway stored key \"%V\" of \"%V\"",
                       &found->alias, slug);
        return NGX_OK;
    }

    if (n == 0 && hs->byok_alias == NULL && ctx->access.token.len == 0) {
        /* no key stored for this provider: the client's, as it is */
        return NGX_OK;
    }

    /* the hosted gateway's message, with the aliases there are */

    p = ngx_pnalloc(r->pool, 256);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    last = p;

    for (i = 0; i < alcf->keys->nelts; i++) {
        if (key[i].provider.len == slug->len
            && ngx_strncmp(key[i].provider.data, slug->data, slug->len) == 0)
        {
            last = ngx_slprintf(last, p + 256, "%s'%V'",
                                (last == p) ? "" : ", ", &key[i].alias);
        }
    }

    if (last == p) {
        last = ngx_cpymem(p, "none", 4);
    }

    return ngx_http_ai_gateway_fail(r, ctx,
                                    NGX_HTTP_AI_GATEWAY_ERR_BYOK_ALIAS,
                                    "Provider '%V' has no BYOK credential "
                                    "named '%V'. Configured aliases: %*s",
                                    slug, &alias, last - p, p);
}


/*
 * Once the target is known: the stored key in the provider's credential
 * header, "Authorization: Bearer <key>" or "<header>: <key>"; a Vertex AI
 * service-account key is exchanged by vertex.c instead.
 */

ngx_int_t
ngx_http_ai_gateway_keys_apply(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    u_char                        *p;
    ngx_str_t                     *key, *auth;
    ngx_http_ai_gateway_origin_t  *o;

    key = ctx->access.key;
    o = ctx->route.target.origin;

    if (key == NULL || o == NULL
        || (o->provider
            && o->provider->rule == NGX_HTTP_AI_GATEWAY_RULE_VERTEX))
    {
        return NGX_OK;
    }

    auth = &o->auth;

    if (auth->len == 13 && ngx_strncmp(auth->data, "authorization", 13) == 0)
    {
        p = ngx_pnalloc(r->pool, sizeof("Bearer ") - 1 + key->len);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->route.credential.data = p;
        p = ngx_cpymem(p, "Bearer ", sizeof("Bearer ") - 1);
        p = ngx_cpymem(p, key->data, key->len);
        ctx->route.credential.len = p - ctx->route.credential.data;

    } else {
        ctx->route.credential = *key;
    }

    return NGX_OK;
}


/*
 * A client header left out of the provider request: with a stored key,
 * every provider credential header; always, the gateway token that came
 * in a provider's header.
 */

ngx_uint_t
ngx_http_ai_gateway_keys_skip(ngx_http_ai_gateway_ctx_t *ctx,
    ngx_table_elt_t *h)
{
    ngx_str_t  *auth;

    if (ctx->access.key == NULL && ctx->access.token.len == 0) {
        return 0;
    }

    auth = ctx->route.target.origin ? &ctx->route.target.origin->auth : NULL;

    if (!ngx_http_ai_gateway_keys_header(h, auth)) {
        return 0;
    }

    if (ctx->access.key) {
        return 1;
    }

    return ngx_http_ai_gateway_keys_token(h, &ctx->access.token);
}


static ngx_uint_t
ngx_http_ai_gateway_keys_header(ngx_table_elt_t *h, ngx_str_t *auth)
{
    ngx_str_t  *s;

    for (s = ngx_http_ai_gateway_key_headers; s->len; s++) {
        if (s->len == h->key.len
            && ngx_strncmp(s->data, h->lowcase_key, s->len) == 0)
        {
            return 1;
        }
    }

    return auth && auth->len == h->key.len
           && ngx_strncmp(auth->data, h->lowcase_key, auth->len) == 0;
}


/* the header holds the gateway token (Bearer or as it is) */

static ngx_uint_t
ngx_http_ai_gateway_keys_token(ngx_table_elt_t *h, ngx_str_t *token)
{
    ngx_str_t  value;

    if (token->len == 0) {
        return 0;
    }

    value = h->value;

    if (h->key.len == 13
        && ngx_strncmp(h->lowcase_key, "authorization", 13) == 0
        && ngx_http_ai_gateway_bearer(&value) != NGX_OK)
    {
        return 0;
    }

    return value.len == token->len
           && ngx_memcmp(value.data, token->data, token->len) == 0;
}


/* the client sent a provider key of its own (not the gateway token) */

static ngx_uint_t
ngx_http_ai_gateway_keys_own(ngx_http_request_t *r, ngx_str_t *token)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (ngx_http_ai_gateway_keys_header(&h[i], NULL)
            && !ngx_http_ai_gateway_keys_token(&h[i], token))
        {
            return 1;
        }
    }

    h = r->headers_in.authorization;

    return h && !ngx_http_ai_gateway_keys_token(h, token);
}


/*
 * The token of "Bearer <token>", the scheme in any case, blanks around
 * the token taken away; NGX_DECLINED when it is not one.
 */

ngx_int_t
ngx_http_ai_gateway_bearer(ngx_str_t *value)
{
    u_char  *p, *last;

    p = value->data;
    last = p + value->len;

    if (last - p < 7 || ngx_strncasecmp(p, (u_char *) "Bearer ", 7) != 0) {
        return NGX_DECLINED;
    }

    p += 7;

    while (p < last && (*p == ' ' || *p == '\t')) {
        p++;
    }

    while (last > p && (last[-1] == ' ' || last[-1] == '\t')) {
        last--;
    }

    if (p == last) {
        return NGX_DECLINED;
    }

    value->data = p;
    value->len = last - p;

    return NGX_OK;
}
