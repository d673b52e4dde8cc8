
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "ngx_http_ai_gateway_module.h"
#include "ngx_http_ai_gateway_json.h"


/*
 * Google Vertex AI credentials.  A client may send, instead of an OAuth
 * access token, "Authorization: Bearer <base64 of a service-account JSON
 * key>" (the Unified API requires it, with a "region" key added).  The
 * gateway signs a JWT with the key (RS256), exchanges it at Google's token
 * endpoint for an access token, and sends that upstream.  The exchange is
 * a subrequest to the gateway's own location, flagged by its context, run
 * through the gateway's upstream handler like any provider request: TLS,
 * keepalive, timeouts and the resolver as configured.  The main request
 * waits on it without blocking (the auth_request pattern): nginx posts it
 * when the subrequest is over, and the driver asks again (handler.c).
 * Tokens are cached per worker by
 * the SHA-256 of the key until a minute before they expire.
 */


#define NGX_HTTP_AI_GATEWAY_VERTEX_TOKENS    64
#define NGX_HTTP_AI_GATEWAY_VERTEX_TOKEN_LEN 2048
#define NGX_HTTP_AI_GATEWAY_VERTEX_MARGIN    60      /* seconds */
#define NGX_HTTP_AI_GATEWAY_VERTEX_LIFETIME  3600    /* the JWT's */
#define NGX_HTTP_AI_GATEWAY_VERTEX_MAX_BODY  65536   /* token response */


typedef struct {
    u_char                         key[SHA256_DIGEST_LENGTH];
    time_t                         expires;
    size_t                         len;
    u_char                         token[NGX_HTTP_AI_GATEWAY_VERTEX_TOKEN_LEN];
} ngx_http_ai_gateway_vertex_token_t;


static ngx_int_t ngx_http_ai_gateway_vertex_decode(ngx_http_request_t *r,
    ngx_str_t *value, ngx_http_ai_gateway_vertex_sa_t *sa);
static ngx_int_t ngx_http_ai_gateway_vertex_jwt(ngx_http_request_t *r,
    ngx_http_ai_gateway_vertex_sa_t *sa, ngx_str_t *out);
static ngx_int_t ngx_http_ai_gateway_vertex_b64url(ngx_pool_t *pool,
    u_char *p, size_t len, ngx_str_t *out);
static ngx_int_t ngx_http_ai_gateway_vertex_done(ngx_http_request_t *r,
    void *data, ngx_int_t rc);
static ngx_int_t ngx_http_ai_gateway_vertex_bearer(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, u_char *token, size_t len);


static ngx_http_ai_gateway_vertex_token_t
    ngx_http_ai_gateway_vertex_tokens[NGX_HTTP_AI_GATEWAY_VERTEX_TOKENS];


static ngx_str_t  ngx_http_ai_gateway_vertex_token_url =
    ngx_string("https://oauth2.googleapis.com/token");

static ngx_str_t  ngx_http_ai_gateway_vertex_form_type =
    ngx_string("application/x-www-form-urlencoded");


/*
 * The client's Authorization header: NGX_OK with ctx->route.sa set when it is a
 * service-account key, NGX_OK without when it is not (a native request
 * then sends it as it is), or an error status.  The Unified API requires
 * a key with a region (need_region).
 */

ngx_int_t
ngx_http_ai_gateway_vertex_credential(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_uint_t need_region)
{
    ngx_int_t                         rc;
    ngx_str_t                         value;
    ngx_table_elt_t                  *h;
    ngx_http_ai_gateway_vertex_sa_t  *sa;

    if (ctx->access.key) {
        /* a stored service-account key (keys.c) */
        value = *ctx->access.key;
        goto decode;
    }

    h = r->headers_in.authorization;

    if (h == NULL
        || h->value.len < 8
        || ngx_strncasecmp(h->value.data, (u_char *) "Bearer ", 7) != 0)
    {
        rc = NGX_DECLINED;
        goto done;
    }

    value.data = h->value.data + 7;
    value.len = h->value.len - 7;

decode:

    sa = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_gateway_vertex_sa_t));
    if (sa == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_ai_gateway_vertex_decode(r, &value, sa);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_OK) {
        if (need_region && sa->region.len == 0) {
            return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_HEADER,
                                        "The service-account JSON needs a "
                                        "\"region\" key on the Unified API, "
                                        "for example \"us-central1\"");
        }

        ctx->route.sa = sa;
        return NGX_OK;
    }

    if (rc != NGX_DECLINED) {
        /* a service-account key with a missing or invalid field */
        return rc;
    }

done:

    if (!need_region) {
        /* an access token, sent as it is */
        return NGX_OK;
    }

    return ngx_http_ai_gateway_fail(r, ctx,
                                    NGX_HTTP_AI_GATEWAY_ERR_BAD_HEADER,
                                    "Google Vertex AI on the Unified API "
                                    "takes \"Authorization: Bearer <base64 "
                                    "of the service-account JSON with a "
                                    "region key>\"; access tokens are only "
                                    "accepted on /google-vertex-ai/ routes");
}


/*
 * NGX_DECLINED: not a service-account key at all (an access token);
 * NGX_OK: one, with its fields; an error status (already recorded with
 * fail()) for a key with a missing or bad field.
 */

static ngx_int_t
ngx_http_ai_gateway_vertex_decode(ngx_http_request_t *r, ngx_str_t *value,
    ngx_http_ai_gateway_vertex_sa_t *sa)
{
    u_char                     *p;
    ngx_int_t                   rc;
    ngx_str_t                   json, *field;
    ngx_uint_t                  i;
    yajl_val                    tree, v;
    ngx_http_ai_gateway_ctx_t  *ctx;

    static const char  *names[] = {
        "project_id", "client_email", "private_key", "private_key_id",
        "region"
    };

    /* a JSON object starts with "{", base64 "ey" or "ew" (a newline) */

    if (value->len < 8 || value->data[0] != 'e') {
        return NGX_DECLINED;
    }

    json.data = ngx_pnalloc(r->pool, ngx_base64_decoded_length(value->len));
    if (json.data == NULL) {
        return NGX_ERROR;
    }

    if (ngx_decode_base64(&json, value) != NGX_OK
        && ngx_decode_base64url(&json, value) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    rc = ngx_http_ai_gateway_json_parse(r->pool, json.data, json.len, &tree);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc != NGX_OK || !YAJL_IS_OBJECT(tree)) {
        return NGX_DECLINED;
    }

    v = ngx_http_ai_gateway_json_get(tree, "type");

    if (!ngx_http_ai_gateway_json_is(v, "service_account")) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    field = &sa->project_id;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        v = ngx_http_ai_gateway_json_get(tree, names[i]);

        if (v == NULL || YAJL_IS_NULL(v)) {
            if (i < 3) {
                return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_HEADER,
                                        "The service-account JSON has no "
                                        "\"%s\"", names[i]);
            }

            continue;
        }

        if (ngx_http_ai_gateway_json_str(v, &field[i]) != NGX_OK
            || field[i].len == 0)
        {
            return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_HEADER,
                                        "\"%s\" of the service-account JSON "
                                        "must be a non-empty string",
                                        names[i]);
        }
    }

    /* the project and the region become path segments */

    for (i = 0; i < 5; i += 4) {
        for (p = field[i].data; p < field[i].data + field[i].len; p++) {
            if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
                  || *p == '-' || (i == 0 && *p == '.')
                  || (i == 0 && *p == ':')))
            {
                return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_HEADER,
                                        "\"%s\" of the service-account JSON "
                                        "is not a valid name", names[i]);
            }
        }
    }

    /* the tree is freed with the pool: the fields are copied */

    for (i = 0; i < 5; i++) {
        if (field[i].len) {
            p = ngx_pnalloc(r->pool, field[i].len);
            if (p == NULL) {
                return NGX_ERROR;
            }

            ngx_memcpy(p, field[i].data, field[i].len);
            field[i].data = p;
        }
    }

    (void) SHA256(json.data, json.len, sa->key);

    return NGX_OK;
}


/*
 * Before the provider request: NGX_OK when it can go (no key, or a token
 * from the cache is in ctx->route.credential), NGX_AGAIN while the token is
 * fetched (nginx posts the request when the subrequest is over, and this
 * is called again), or an error status.
 */

ngx_int_t
ngx_http_ai_gateway_vertex_token(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_int_t                              rc;
    ngx_str_t                              jwt, *body;
    ngx_uint_t                             i;
    ngx_http_request_t                    *sr;
    ngx_http_ai_gateway_ctx_t             *sctx;
    ngx_http_ai_gateway_vertex_sa_t       *sa;
    ngx_http_post_subrequest_t            *ps;
    ngx_http_ai_gateway_vertex_token_t    *t;

    sa = ctx->route.sa;

    if (sa == NULL || ctx->route.credential.len) {
        return NGX_OK;
    }

    for (i = 0; i < NGX_HTTP_AI_GATEWAY_VERTEX_TOKENS; i++) {
        t = &ngx_http_ai_gateway_vertex_tokens[i];

        if (t->len
            && ngx_memcmp(t->key, sa->key, SHA256_DIGEST_LENGTH) == 0
            && t->expires > ngx_time() + NGX_HTTP_AI_GATEWAY_VERTEX_MARGIN)
        {
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "ai gateway vertex token cached");

            return ngx_http_ai_gateway_vertex_bearer(r, ctx, t->token,
                                                     t->len);
        }
    }

    if (sa->exchange_done) {
        /* the exchange failed: fail() has recorded why */
        return sa->status;
    }

    if (sa->exchange_started) {
        return NGX_AGAIN;
    }

    if (ngx_http_ai_gateway_vertex_jwt(r, sa, &jwt) != NGX_OK) {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_HEADER,
                                        "\"private_key\" of the "
                                        "service-account JSON is not a "
                                        "usable RSA private key");
    }

    sctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_gateway_ctx_t));
    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (sctx == NULL || ps == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body = &sctx->body.sent;
    body->len = sizeof("grant_type=urn%3Aietf%3Aparams%3Aoauth%3A"
                       "grant-type%3Ajwt-bearer&assertion=") - 1 + jwt.len;
    body->data = ngx_pnalloc(r->pool, body->len);
    if (body->data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_sprintf(body->data, "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3A"
                "grant-type%%3Ajwt-bearer&assertion=%V", &jwt);

    sctx->body.set = 1;
    sctx->kind = NGX_HTTP_AI_GATEWAY_EXCHANGE;
    sctx->route.sa = sa;
    sctx->route.version.key.data = (u_char *) "Content-Type";
    sctx->route.version.key.len = sizeof("Content-Type") - 1;
    sctx->route.version.value = ngx_http_ai_gateway_vertex_form_type;

    ps->handler = ngx_http_ai_gateway_vertex_done;
    ps->data = sa;

    /* in memory: nothing of the subrequest reaches the client */

    rc = ngx_http_subrequest(r, &r->uri, NULL, &sr, ps,
                             NGX_HTTP_SUBREQUEST_IN_MEMORY
                             |NGX_HTTP_SUBREQUEST_WAITED);
    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(sr, sctx, ngx_http_ai_gateway_module);

    sa->exchange_started = 1;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai gateway vertex token exchange");

    return NGX_AGAIN;
}


/* in the subrequest: the token endpoint is the target */

ngx_int_t
ngx_http_ai_gateway_vertex_exchange(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_int_t                         rc;
    ngx_http_ai_gateway_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_gateway_module);

    ngx_str_set(&ctx->route.method, "POST");

    rc = ngx_http_ai_gateway_route_origin(r, ctx, amcf->token_origin, NULL);
    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_null(&ctx->route.target.args);

    return NGX_OK;
}


/* the token endpoint's origin, parsed once */

ngx_int_t
ngx_http_ai_gateway_vertex_init(ngx_conf_t *cf)
{
    char                             *err;
    ngx_str_t                         url;
    ngx_http_ai_gateway_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_gateway_module);

    amcf->token_origin = ngx_pcalloc(cf->pool,
                                     sizeof(ngx_http_ai_gateway_origin_t));
    if (amcf->token_origin == NULL) {
        return NGX_ERROR;
    }

    /* writable: nginx's resolver lowercases the names it is given */

    url.len = ngx_http_ai_gateway_vertex_token_url.len;
    url.data = ngx_pstrdup(cf->pool, &ngx_http_ai_gateway_vertex_token_url);
    if (url.data == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_ai_gateway_parse_origin(cf->pool, &url, amcf->token_origin,
                                         &err)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "ai_gateway: bad token URL: %s", err);
        return NGX_ERROR;
    }

    ngx_str_set(&amcf->token_origin->slug, "google-oauth");

    return NGX_OK;
}


/*
 * The subrequest is over: its context holds the endpoint's status and
 * body.  {"access_token": "...", "expires_in": 3599, ...} is cached; an
 * error answer ({"error": "invalid_grant", "error_description": "..."})
 * becomes the main request's 401.
 */

static ngx_int_t
ngx_http_ai_gateway_vertex_done(ngx_http_request_t *r, void *data,
    ngx_int_t rc)
{
    ngx_http_ai_gateway_vertex_sa_t *sa = data;

    time_t                               oldest;
    uint64_t                             expires;
    ngx_str_t                            token, reason;
    ngx_uint_t                           i, status;
    yajl_val                             tree, v;
    ngx_http_ai_gateway_ctx_t           *sctx, *ctx;
    ngx_http_ai_gateway_vertex_token_t  *t, *slot;

    sa->exchange_done = 1;

    sctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);
    ctx = ngx_http_get_module_ctx(r->parent, ngx_http_ai_gateway_module);

    status = (r->upstream && r->upstream->headers_in.status_n)
             ? r->upstream->headers_in.status_n : 0;

    tree = NULL;

    if (sctx->relay.resp.len
        && ngx_http_ai_gateway_json_parse(r->pool, sctx->relay.resp.data,
                                          sctx->relay.resp.len, &tree)
           != NGX_OK)
    {
        tree = NULL;
    }

    ngx_str_null(&token);
    expires = 0;

    if (status == NGX_HTTP_OK && rc == NGX_OK && tree) {
        v = ngx_http_ai_gateway_json_get(tree, "access_token");

        /* the token goes into a request header: nothing else may */

        if (ngx_http_ai_gateway_json_str(v, &token) != NGX_OK
            || ngx_http_ai_gateway_check_value(token.data, token.len)
               != NGX_OK)
        {
            ngx_str_null(&token);
        }

        v = ngx_http_ai_gateway_json_get(tree, "expires_in");

        if (!ngx_http_ai_gateway_json_count(v, &expires)) {
            expires = 0;
        }
    }

    if (token.len == 0) {
        ngx_str_set(&reason, "no answer");

        if (tree) {
            v = ngx_http_ai_gateway_json_get(tree, "error_description");

            if (ngx_http_ai_gateway_json_str(v, &reason) != NGX_OK) {
                v = ngx_http_ai_gateway_json_get(tree, "error");

                if (ngx_http_ai_gateway_json_str(v, &reason) != NGX_OK) {
                    ngx_str_set(&reason, "unexpected answer");
                }
            }

        } else if (status) {
            ngx_str_set(&reason, "unexpected answer");
        }

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai_gateway: Google token exchange failed "
                      "(HTTP %ui): %V", status, &reason);

        if (status >= NGX_HTTP_BAD_REQUEST && status < 500) {
            sa->status = ngx_http_ai_gateway_fail(r->parent, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_CREDENTIALS,
                                        "Google refused the service-account "
                                        "credentials: %V", &reason);

        } else {
            sa->status = ngx_http_ai_gateway_fail(r->parent, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_PROVIDER_FAILED,
                                        "Google's token endpoint failed: %V",
                                        &reason);
        }

        return rc;
    }

    if (ngx_http_ai_gateway_vertex_bearer(r->parent, ctx, token.data,
                                          token.len)
        != NGX_OK)
    {
        sa->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return rc;
    }

    if (token.len > NGX_HTTP_AI_GATEWAY_VERTEX_TOKEN_LEN || expires == 0) {
        /* used once, not cached */
        return rc;
    }

    /* the same key, or a free slot, or the one that expires first */

    slot = NULL;
    oldest = NGX_MAX_TIME_T_VALUE;

    for (i = 0; i < NGX_HTTP_AI_GATEWAY_VERTEX_TOKENS; i++) {
        t = &ngx_http_ai_gateway_vertex_tokens[i];

        if (t->len == 0
            || ngx_memcmp(t->key, sa->key, SHA256_DIGEST_LENGTH) == 0)
        {
            slot = t;
            break;
        }

        if (t->expires < oldest) {
            oldest = t->expires;
            slot = t;
        }
    }

    ngx_memcpy(slot->key, sa->key, SHA256_DIGEST_LENGTH);
    ngx_memcpy(slot->token, token.data, token.len);
    slot->len = token.len;
    slot->expires = ngx_time() + (time_t) ngx_min(expires, 86400);

    return rc;
}


static ngx_int_t
ngx_http_ai_gateway_vertex_bearer(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, u_char *token, size_t len)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, sizeof("Bearer ") - 1 + len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->route.credential.data = p;
    p = ngx_cpymem(p, "Bearer ", sizeof("Bearer ") - 1);
    p = ngx_cpymem(p, token, len);
    ctx->route.credential.len = p - ctx->route.credential.data;

    return NGX_OK;
}


/*
 * header.claims.signature, each base64url without padding; RS256 is
 * RSASSA-PKCS1-v1_5 over SHA-256
 */

static ngx_int_t
ngx_http_ai_gateway_vertex_jwt(ngx_http_request_t *r,
    ngx_http_ai_gateway_vertex_sa_t *sa, ngx_str_t *out)
{
    u_char                     *p;
    size_t                      siglen;
    BIO                        *bio;
    time_t                      now;
    ngx_int_t                   rc;
    ngx_str_t                   header, claims, hs, cs, sig;
    EVP_PKEY                   *key;
    EVP_MD_CTX                 *md;
    ngx_http_ai_gateway_gen_t   gen;

    static ngx_str_t  scope =
        ngx_string("https://www.googleapis.com/auth/cloud-platform");

    now = ngx_time();

    if (ngx_http_ai_gateway_gen_init(&gen, r->pool) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_ai_gateway_gen_map(&gen);
    ngx_http_ai_gateway_gen_literal(&gen, "alg");
    ngx_http_ai_gateway_gen_literal(&gen, "RS256");
    ngx_http_ai_gateway_gen_literal(&gen, "typ");
    ngx_http_ai_gateway_gen_literal(&gen, "JWT");

    if (sa->private_key_id.len) {
        ngx_http_ai_gateway_gen_literal(&gen, "kid");
        ngx_http_ai_gateway_gen_string(&gen, &sa->private_key_id);
    }

    ngx_http_ai_gateway_gen_map_end(&gen);

    if (ngx_http_ai_gateway_gen_done(&gen, &header) != NGX_OK) {
        return NGX_ERROR;
    }

    /* the claims: a generator of their own */

    if (ngx_http_ai_gateway_gen_init(&gen, r->pool) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_ai_gateway_gen_map(&gen);
    ngx_http_ai_gateway_gen_literal(&gen, "iss");
    ngx_http_ai_gateway_gen_string(&gen, &sa->client_email);
    ngx_http_ai_gateway_gen_literal(&gen, "scope");
    ngx_http_ai_gateway_gen_string(&gen, &scope);
    ngx_http_ai_gateway_gen_literal(&gen, "aud");
    ngx_http_ai_gateway_gen_string(&gen, &ngx_http_ai_gateway_vertex_token_url);
    ngx_http_ai_gateway_gen_literal(&gen, "iat");
    ngx_http_ai_gateway_gen_int(&gen, (long long) now);
    ngx_http_ai_gateway_gen_literal(&gen, "exp");
    ngx_http_ai_gateway_gen_int(&gen,
                      (long long) now + NGX_HTTP_AI_GATEWAY_VERTEX_LIFETIME);
    ngx_http_ai_gateway_gen_map_end(&gen);

    if (ngx_http_ai_gateway_gen_done(&gen, &claims) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_ai_gateway_vertex_b64url(r->pool, header.data, header.len,
                                          &hs)
        != NGX_OK
        || ngx_http_ai_gateway_vertex_b64url(r->pool, claims.data,
                                             claims.len, &cs)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* "header.claims", signed */

    out->len = hs.len + 1 + cs.len;
    out->data = ngx_pnalloc(r->pool, out->len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(out->data, hs.data, hs.len);
    *p++ = '.';
    ngx_memcpy(p, cs.data, cs.len);

    bio = BIO_new_mem_buf(sa->private_key.data, (int) sa->private_key.len);
    if (bio == NULL) {
        return NGX_ERROR;
    }

    key = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *) "");
    BIO_free(bio);

    if (key == NULL) {
        ngx_ssl_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai_gateway: service-account private key");
        return NGX_DECLINED;
    }

    rc = NGX_DECLINED;
    sig.data = NULL;

    md = EVP_MD_CTX_new();

    if (md == NULL || EVP_PKEY_base_id(key) != EVP_PKEY_RSA) {
        goto done;
    }

    siglen = EVP_PKEY_size(key);

    sig.data = ngx_pnalloc(r->pool, siglen);
    if (sig.data == NULL) {
        rc = NGX_ERROR;
        goto done;
    }

    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1
        || EVP_DigestSignUpdate(md, out->data, out->len) != 1
        || EVP_DigestSignFinal(md, sig.data, &siglen) != 1)
    {
        ngx_ssl_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai_gateway: signing the token request failed");
        goto done;
    }

    sig.len = siglen;

    if (ngx_http_ai_gateway_vertex_b64url(r->pool, sig.data, sig.len, &hs)
        != NGX_OK)
    {
        rc = NGX_ERROR;
        goto done;
    }

    p = ngx_pnalloc(r->pool, out->len + 1 + hs.len);
    if (p == NULL) {
        rc = NGX_ERROR;
        goto done;
    }

    ngx_memcpy(p, out->data, out->len);
    p[out->len] = '.';
    ngx_memcpy(p + out->len + 1, hs.data, hs.len);

    out->data = p;
    out->len += 1 + hs.len;

    rc = NGX_OK;

done:

    if (md) {
        EVP_MD_CTX_free(md);
    }

    EVP_PKEY_free(key);

    return rc;
}


static ngx_int_t
ngx_http_ai_gateway_vertex_b64url(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_str_t *out)
{
    u_char     *q;
    ngx_str_t   src;

    src.data = p;
    src.len = len;

    out->data = ngx_pnalloc(pool, ngx_base64_encoded_length(len));
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ngx_encode_base64url(out, &src);

    /* ngx_encode_base64url() pads nothing; "+/" are "-_" already */

    for (q = out->data; q < out->data + out->len; q++) {
        if (*q == '=') {
            out->len = q - out->data;
            break;
        }
    }

    return NGX_OK;
}
