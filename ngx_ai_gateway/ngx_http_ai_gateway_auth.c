
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ngx_http_ai_gateway_module.h"


/*
 * The authenticated gateway (docs/access.md).  A location with
 * "ai_gateway_auth_token_file" takes only requests that carry one of the
 * file's tokens as "cf-aig-authorization: Bearer <token>", or, when the
 * location stores provider keys (keys.c), in the provider's own
 * credential header (Authorization: Bearer, x-api-key, x-goog-api-key,
 * api-key), so that an SDK whose API key is the gateway token works
 * unchanged.  Anything else is refused with 401 and code 2009.
 *
 * Token files hold one token a line: the token itself or its SHA-256 as
 * "sha256:<64 hex digits>", optionally followed by blanks and the token's
 * name, the client identity that variables, logs and limits use; blank
 * lines and lines starting with "#" are skipped.  The file is read when
 * the configuration is (by the master, before workers drop privileges),
 * so tokens rotate with "nginx -s reload"; only the digests are kept, and
 * a token is compared with each of them in constant time, all of them
 * always.  The management API (api.c) reads its token file here too.
 *
 * Authentication is the first thing the driver does with a client's
 * request, before its body is read or the cache is looked up.  The
 * attempts and Universal Endpoint steps of a request are subrequests of
 * it that only ever run in its location (handler.c, attempt_access()):
 * they are not authenticated again, and the client identity is the
 * request's.
 */


#define NGX_HTTP_AI_GATEWAY_TOKENS_MAX      65536
#define NGX_HTTP_AI_GATEWAY_TOKEN_NAME_MAX  64


static ngx_int_t ngx_http_ai_gateway_auth_header(ngx_http_request_t *r,
    ngx_http_ai_gateway_loc_conf_t *alcf, ngx_http_ai_gateway_ctx_t *ctx,
    ngx_table_elt_t *h, ngx_uint_t bearer);
static ngx_int_t ngx_http_ai_gateway_tokens_line(ngx_conf_t *cf,
    ngx_array_t *tokens, u_char *p, u_char *last, ngx_uint_t line,
    ngx_str_t *file, const char *what);
static ngx_int_t ngx_http_ai_gateway_digest(u_char *p, size_t len,
    u_char *md);


/* the provider credential headers that may carry the gateway token */

static ngx_str_t  ngx_http_ai_gateway_auth_headers[] = {
    ngx_string("x-api-key"),
    ngx_string("x-goog-api-key"),
    ngx_string("api-key"),
    ngx_null_string
};


static ngx_str_t  ngx_http_ai_gateway_no_client = ngx_null_string;


/*
 * The client's request (not an attempt, nor a token exchange): NGX_OK
 * when the location asks for no token or the request carries one, else
 * the status of the 401 recorded by fail().
 */

ngx_int_t
ngx_http_ai_gateway_auth(ngx_http_request_t *r,
    ngx_http_ai_gateway_loc_conf_t *alcf, ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_int_t                       rc;
    ngx_str_t                      *s;
    ngx_uint_t                      i;
    ngx_list_part_t                *part;
    ngx_table_elt_t                *h;
    ngx_http_ai_gateway_headers_t  *hs;

    if (alcf->auth_tokens == NULL || ctx->access.done) {
        /* "Off": a token that is sent is not even looked at */
        return NGX_OK;
    }

    hs = ngx_http_ai_gateway_headers(r, ctx);
    if (hs == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (hs->authorization) {
        return ngx_http_ai_gateway_auth_header(r, alcf, ctx,
                                               hs->authorization, 1);
    }

    if (alcf->keys == NULL) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ai_gateway: no gateway token in the request");
        goto refused;
    }

    /* with stored keys: the provider's header may be the gateway token */

    if (r->headers_in.authorization) {
        rc = ngx_http_ai_gateway_auth_header(r, alcf, ctx,
                                             r->headers_in.authorization, 1);
        if (rc == NGX_OK) {
            return NGX_OK;
        }
    }

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

        for (s = ngx_http_ai_gateway_auth_headers; s->len; s++) {
            if (s->len == h[i].key.len
                && ngx_strncmp(s->data, h[i].lowcase_key, s->len) == 0)
            {
                rc = ngx_http_ai_gateway_auth_header(r, alcf, ctx, &h[i], 0);
                if (rc == NGX_OK) {
                    return NGX_OK;
                }
            }
        }
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "ai_gateway: no valid gateway token in the request");

refused:

    ctx->access.refused = 1;

    return ngx_http_ai_gateway_fail(r, ctx,
                                    NGX_HTTP_AI_GATEWAY_ERR_UNAUTHORIZED,
                                    NULL);
}


/*
 * One header that may carry the token: cf-aig-authorization (refused at
 * once when it does not), or a provider's header (then NGX_DECLINED, and
 * the next one is looked at).
 */

static ngx_int_t
ngx_http_ai_gateway_auth_header(ngx_http_request_t *r,
    ngx_http_ai_gateway_loc_conf_t *alcf, ngx_http_ai_gateway_ctx_t *ctx,
    ngx_table_elt_t *h, ngx_uint_t bearer)
{
    ngx_str_t                     token;
    ngx_http_ai_gateway_token_t  *t;

    token = h->value;

    if (bearer && ngx_http_ai_gateway_bearer(&token) != NGX_OK) {
        t = NULL;

    } else {
        t = ngx_http_ai_gateway_tokens_find(alcf->auth_tokens, token.data,
                                            token.len);
    }

    if (t == NULL) {
        if (h->key.len == sizeof("cf-aig-authorization") - 1
            && ngx_strncmp(h->lowcase_key, "cf-aig-authorization",
                           h->key.len) == 0)
        {
            /* the token is never logged, only that it was wrong */

            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "ai_gateway: the gateway token in "
                          "\"cf-aig-authorization\" is not one of the "
                          "location's");

            ctx->access.refused = 1;

            return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_UNAUTHORIZED,
                                        NULL);
        }

        return NGX_DECLINED;
    }

    ctx->access.done = 1;
    ctx->access.client = t->name;

    if (h->key.len != sizeof("cf-aig-authorization") - 1) {
        /* the provider's header is the gateway's: keys.c replaces it */
        ctx->access.token = token;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai gateway client \"%V\"", &t->name);

    return NGX_OK;
}


/*
 * The token of the list whose digest is that of p, or NULL: every digest
 * is compared, in constant time, whatever matched.
 */

ngx_http_ai_gateway_token_t *
ngx_http_ai_gateway_tokens_find(ngx_array_t *tokens, u_char *p, size_t len)
{
    u_char                        md[SHA256_DIGEST_LENGTH];
    ngx_uint_t                    i;
    ngx_http_ai_gateway_token_t  *t, *found;

    if (len == 0 || ngx_http_ai_gateway_digest(p, len, md) != NGX_OK) {
        return NULL;
    }

    found = NULL;
    t = tokens->elts;

    for (i = 0; i < tokens->nelts; i++) {
        if (CRYPTO_memcmp(md, t[i].md, SHA256_DIGEST_LENGTH) == 0) {
            found = &t[i];
        }
    }

    ngx_explicit_memzero(md, SHA256_DIGEST_LENGTH);

    return found;
}


/*
 * Reads a token file at configuration time: an array of
 * ngx_http_ai_gateway_token_t, or NULL after the error is logged.  "what"
 * names the file in the messages ("API token file"); no message quotes a
 * line, only its number.
 */

ngx_array_t *
ngx_http_ai_gateway_tokens_read(ngx_conf_t *cf, ngx_str_t *path,
    const char *what)
{
    u_char       *p, *q, *last;
    ngx_str_t     text;
    ngx_uint_t    line;
    ngx_array_t  *tokens;

    tokens = ngx_array_create(cf->pool, 2,
                              sizeof(ngx_http_ai_gateway_token_t));
    if (tokens == NULL) {
        return NULL;
    }

    if (ngx_http_ai_gateway_secret_file(cf, cf->temp_pool, path,
                                        NGX_HTTP_AI_GATEWAY_TOKENS_MAX, what,
                                        &text)
        != NGX_OK)
    {
        return NULL;
    }

    last = text.data + text.len;
    line = 0;

    for (p = text.data; p < last; p = q + 1) {
        line++;

        q = ngx_strlchr(p, last, LF);
        if (q == NULL) {
            q = last;
        }

        if (ngx_http_ai_gateway_tokens_line(cf, tokens, p, q, line, path,
                                            what)
            != NGX_OK)
        {
            ngx_explicit_memzero(text.data, text.len);
            return NULL;
        }
    }

    ngx_explicit_memzero(text.data, text.len);

    if (tokens->nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the %s \"%V\" has no token", what, path);
        return NULL;
    }

    return tokens;
}


/* "<token>|sha256:<hex> [name]", a blank line, or a "#" comment */

static ngx_int_t
ngx_http_ai_gateway_tokens_line(ngx_conf_t *cf, ngx_array_t *tokens,
    u_char *p, u_char *last, ngx_uint_t line, ngx_str_t *file,
    const char *what)
{
    u_char                       *q, *n, c, hi, lo;
    ngx_uint_t                    i;
    ngx_http_ai_gateway_token_t  *t;

    if (last > p && last[-1] == CR) {
        last--;
    }

    while (p < last && (*p == ' ' || *p == '\t')) {
        p++;
    }

    while (last > p && (last[-1] == ' ' || last[-1] == '\t')) {
        last--;
    }

    if (p == last || *p == '#') {
        return NGX_OK;
    }

    for (q = p; q < last && *q != ' ' && *q != '\t'; q++) {
        if (*q <= ' ' || *q == 0x7f) {
            goto invalid;
        }
    }

    t = ngx_array_push(tokens);
    if (t == NULL) {
        return NGX_ERROR;
    }

    ngx_str_null(&t->name);

    if (q - p == 7 + 2 * SHA256_DIGEST_LENGTH
        && ngx_strncasecmp(p, (u_char *) "sha256:", 7) == 0)
    {
        /* the digest itself, as sha256sum prints it */

        for (i = 0; i < SHA256_DIGEST_LENGTH; i++) {
            c = ngx_tolower(p[7 + 2 * i]);
            hi = (c >= '0' && c <= '9') ? c - '0'
                 : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : 0xff;
            c = ngx_tolower(p[8 + 2 * i]);
            lo = (c >= '0' && c <= '9') ? c - '0'
                 : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : 0xff;

            if (hi == 0xff || lo == 0xff) {
                goto invalid;
            }

            t->md[i] = (u_char) (hi << 4 | lo);
        }

    } else if (ngx_http_ai_gateway_digest(p, q - p, t->md) != NGX_OK) {
        return NGX_ERROR;
    }

    while (q < last && (*q == ' ' || *q == '\t')) {
        q++;
    }

    if (q == last) {
        return NGX_OK;
    }

    /* the name: what logs, variables and limits show of the client */

    if (last - q > NGX_HTTP_AI_GATEWAY_TOKEN_NAME_MAX) {
        goto invalid;
    }

    for (n = q; n < last; n++) {
        c = *n;

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9')
              || c == '-' || c == '_' || c == '.' || c == '@'))
        {
            goto invalid;
        }
    }

    t->name.len = last - q;
    t->name.data = ngx_pnalloc(cf->pool, t->name.len);
    if (t->name.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(t->name.data, q, t->name.len);

    return NGX_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid line %ui in the %s \"%V\": a token (or "
                       "\"sha256:\" and 64 hexadecimal digits), then "
                       "optionally a name of at most %d letters, digits "
                       "and \"-_.@\"", line, what, file,
                       NGX_HTTP_AI_GATEWAY_TOKEN_NAME_MAX);

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_ai_gateway_digest(u_char *p, size_t len, u_char *md)
{
    unsigned int  n;

    if (EVP_Digest(p, len, md, &n, EVP_sha256(), NULL) != 1) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* ai_gateway_auth_token_file path | off; */

char *
ngx_http_ai_gateway_auth_token_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_gateway_loc_conf_t *alcf = conf;

    ngx_str_t  *value;

    if (alcf->auth_tokens != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0) {
        alcf->auth_tokens = NULL;
        return NGX_CONF_OK;
    }

    alcf->auth_tokens = ngx_http_ai_gateway_tokens_read(cf, &value[1],
                                                        "gateway token file");
    if (alcf->auth_tokens == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * The client identity of a request, its attempts and steps included: the
 * name of the gateway token it was authenticated with; empty when the
 * token has no name, or the location asks for none.
 */

ngx_str_t *
ngx_http_ai_gateway_client(ngx_http_request_t *r)
{
    ngx_http_ai_gateway_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_ai_gateway_module);

    if (ctx == NULL) {
        return &ngx_http_ai_gateway_no_client;
    }

    return &ctx->access.client;
}


/* $ai_gateway_client */

ngx_int_t
ngx_http_ai_gateway_client_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t  *client;

    client = ngx_http_ai_gateway_client(r);

    if (client->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->len = client->len;
    v->data = client->data;

    return NGX_OK;
}
