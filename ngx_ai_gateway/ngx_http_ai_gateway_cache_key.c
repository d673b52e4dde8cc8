
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/evp.h>

#include "ngx_http_ai_gateway_module.h"


/*
 * The cache key: SHA-256 (OpenSSL) over the gateway, the target, the
 * canonical JSON body and, by default, the credential; see docs/cache.md.
 */


static void ngx_http_ai_gateway_cache_add(EVP_MD_CTX *md, u_char *p,
    size_t len);
static void ngx_http_ai_gateway_cache_print(void *data, const char *s,
    size_t len);
static void ngx_http_ai_gateway_cache_void(void *data, const char *s,
    size_t len);


/* request headers that carry a provider credential */

static ngx_str_t  ngx_http_ai_gateway_cache_credentials[] = {
    ngx_string("authorization"),
    ngx_string("x-api-key"),
    ngx_string("api-key"),
    ngx_string("x-goog-api-key"),
    ngx_null_string
};


static const EVP_MD  *ngx_http_ai_gateway_cache_sha256;
static EVP_MD_CTX    *ngx_http_ai_gateway_cache_md;


/*
 * The key, a function of the target and body in ctx (a later attempt at
 * another target computes its own): SHA-256 over length-prefixed fields,
 * see docs/cache.md.
 */

ngx_int_t
ngx_http_ai_gateway_cache_key(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_cache_t *c)
{
    u_char                          *p, tag;
    ngx_str_t                       *s, body, *auth, *model;
    ngx_int_t                        rc;
    ngx_uint_t                       i, stream;
    unsigned int                     len;
    EVP_MD_CTX                      *md;
    ngx_list_part_t                 *part;
    ngx_table_elt_t                 *h;
    ngx_http_ai_gateway_loc_conf_t  *alcf;

    static u_char  hex[] = "0123456789abcdef";

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_module);

    body = ctx->body.set ? ctx->body.sent : ctx->body.raw;

    /* per worker, made once: fetching the digest costs more than it */

    if (ngx_http_ai_gateway_cache_md == NULL) {
#if (OPENSSL_VERSION_NUMBER >= 0x30000000L)
        ngx_http_ai_gateway_cache_sha256 = EVP_MD_fetch(NULL, "SHA256",
                                                        NULL);
#else
        ngx_http_ai_gateway_cache_sha256 = EVP_sha256();
#endif
        ngx_http_ai_gateway_cache_md = EVP_MD_CTX_new();
    }

    md = ngx_http_ai_gateway_cache_md;

    if (md == NULL || ngx_http_ai_gateway_cache_sha256 == NULL
        || EVP_DigestInit_ex(md, ngx_http_ai_gateway_cache_sha256, NULL) != 1)
    {
        return NGX_ERROR;
    }

    /*
     * the format version, that of the entries too ("AIG2"): an instance
     * with another entry format never reads these entries, nor this one
     * theirs, when they share a Redis server during an upgrade
     */

    ngx_http_ai_gateway_cache_add(md, (u_char *) "aigw-cache-2", 12);
    ngx_http_ai_gateway_cache_add(md, alcf->gateway_id.data,
                                  alcf->gateway_id.len);

    /*
     * the credential: each provider key header, tagged 'c', then '-'; the
     * key being a digest, the credential is never exposed by it
     */

    tag = 'c';

    if (alcf->cache.scope == NGX_HTTP_AI_GATEWAY_CACHE_SCOPE_CREDENTIAL
        && ctx->access.key)
    {
        /* a stored key (keys.c): its alias, not the secret */

        EVP_DigestUpdate(md, &tag, 1);
        ngx_http_ai_gateway_cache_add(md, (u_char *) "byok", 4);
        ngx_http_ai_gateway_cache_add(md, ctx->access.alias.data,
                                      ctx->access.alias.len);

    } else if (alcf->cache.scope
               == NGX_HTTP_AI_GATEWAY_CACHE_SCOPE_CREDENTIAL)
    {
        auth = ctx->route.target.origin ? &ctx->route.target.origin->auth
                                        : NULL;

        if (ctx->route.credential.len) {
            EVP_DigestUpdate(md, &tag, 1);
            ngx_http_ai_gateway_cache_add(md, (u_char *) "bearer", 6);
            ngx_http_ai_gateway_cache_add(md, ctx->route.credential.data,
                                          ctx->route.credential.len);
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

            for (s = ngx_http_ai_gateway_cache_credentials; s->len; s++) {
                if (s->len == h[i].key.len
                    && ngx_strncmp(s->data, h[i].lowcase_key, s->len) == 0)
                {
                    break;
                }
            }

            if (s->len == 0
                && !(auth && auth->len == h[i].key.len
                     && ngx_strncasecmp(auth->data, h[i].lowcase_key,
                                        auth->len) == 0))
            {
                continue;
            }

            EVP_DigestUpdate(md, &tag, 1);
            ngx_http_ai_gateway_cache_add(md, h[i].lowcase_key,
                                          h[i].key.len);
            ngx_http_ai_gateway_cache_add(md, h[i].value.data,
                                          h[i].value.len);
        }
    }

    tag = '-';
    EVP_DigestUpdate(md, &tag, 1);

    /* the body, canonical when it is JSON; its "model" for the logs */

    stream = 0;

    model = NULL;

    if (!ctx->route.compat && !ctx->route.model_done) {
        ctx->route.model_done = 1;
        model = &ctx->route.model;
    }

    rc = NGX_DECLINED;

    if (body.len && c->custom.len) {
        /* only whether it streams */

        rc = ngx_http_ai_gateway_canonical_json(r->pool, body.data,
                                                body.len,
                                                ngx_http_ai_gateway_cache_void,
                                                NULL, &stream, model);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

    } else if (body.len) {
        tag = 'j';
        EVP_DigestUpdate(md, &tag, 1);

        rc = ngx_http_ai_gateway_canonical_json(r->pool, body.data,
                                                body.len,
                                                ngx_http_ai_gateway_cache_print,
                                                md, &stream, model);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_DECLINED) {
            /* bytes: the partial JSON above is voided by this tag */
            tag = 'b';
            EVP_DigestUpdate(md, &tag, 1);
            ngx_http_ai_gateway_cache_add(md, body.data, body.len);
        }

        tag = 0;
        EVP_DigestUpdate(md, &tag, 1);
    }

    /* streamed and whole answers never share an entry */

    if (ctx->route.tc.stream
        || ngx_strlcasestrn(ctx->route.target.path.data,
                            ctx->route.target.path.data
                            + ctx->route.target.path.len,
                            (u_char *) "stream", 6 - 1)
        || (r->headers_in.accept
            && ngx_strlcasestrn(r->headers_in.accept->value.data,
                                r->headers_in.accept->value.data
                                + r->headers_in.accept->value.len,
                                (u_char *) "text/event-stream", 17 - 1)))
    {
        stream = 1;
    }

    tag = stream ? 's' : 'w';
    EVP_DigestUpdate(md, &tag, 1);

    if (c->custom.len) {
        /* cf-aig-cache-key replaces what the request is */
        ngx_http_ai_gateway_cache_add(md, (u_char *) "custom", 6);
        ngx_http_ai_gateway_cache_add(md, c->custom.data, c->custom.len);

    } else {
        ngx_http_ai_gateway_cache_add(md, (u_char *) "request", 7);
        ngx_http_ai_gateway_cache_add(md, ctx->route.provider.data,
                                      ctx->route.provider.len);
        ngx_http_ai_gateway_cache_add(md, ctx->route.compat
                                          ? ctx->route.model.data : NULL,
                                      ctx->route.compat
                                          ? ctx->route.model.len : 0);
        ngx_http_ai_gateway_cache_add(md, r->method_name.data,
                                      r->method_name.len);
        ngx_http_ai_gateway_cache_add(md, ctx->route.target.path.data,
                                      ctx->route.target.path.len);
        ngx_http_ai_gateway_cache_add(md, ctx->route.target.args.data,
                                      ctx->route.target.args.len);
    }

    if (EVP_DigestFinal_ex(md, c->key, &len) != 1
        || len != NGX_HTTP_AI_GATEWAY_CACHE_KEY_LEN)
    {
        return NGX_ERROR;
    }

    p = c->hex;

    for (i = 0; i < NGX_HTTP_AI_GATEWAY_CACHE_KEY_LEN; i++) {
        *p++ = hex[c->key[i] >> 4];
        *p++ = hex[c->key[i] & 0xf];
    }

    c->keyed = 1;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai gateway cache key: %*s",
                   (size_t) (2 * NGX_HTTP_AI_GATEWAY_CACHE_KEY_LEN), c->hex);

    return NGX_OK;
}


static void
ngx_http_ai_gateway_cache_add(EVP_MD_CTX *md, u_char *p, size_t len)
{
    u_char    n[8];
    uint64_t  l;

    l = len;

    n[0] = (u_char) (l >> 56); n[1] = (u_char) (l >> 48);
    n[2] = (u_char) (l >> 40); n[3] = (u_char) (l >> 32);
    n[4] = (u_char) (l >> 24); n[5] = (u_char) (l >> 16);
    n[6] = (u_char) (l >> 8);  n[7] = (u_char) l;

    EVP_DigestUpdate(md, n, 8);

    if (len) {
        EVP_DigestUpdate(md, p, len);
    }
}


static void
ngx_http_ai_gateway_cache_print(void *data, const char *s, size_t len)
{
    EVP_MD_CTX  *md = data;

    EVP_DigestUpdate(md, s, len);
}


static void
ngx_http_ai_gateway_cache_void(void *data, const char *s, size_t len)
{
}


void
ngx_http_ai_gateway_cache_exit_process(void)
{
    if (ngx_http_ai_gateway_cache_md) {
        EVP_MD_CTX_free(ngx_http_ai_gateway_cache_md);
        ngx_http_ai_gateway_cache_md = NULL;
    }

#if (OPENSSL_VERSION_NUMBER >= 0x30000000L)
    if (ngx_http_ai_gateway_cache_sha256) {
        EVP_MD_free((EVP_MD *) ngx_http_ai_gateway_cache_sha256);
    }
#endif

    ngx_http_ai_gateway_cache_sha256 = NULL;
}
