
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_module.h"


typedef struct {
    ngx_str_t                      trusted;
    ngx_uint_t                     depth;
    ngx_uint_t                     protocols;
    ngx_flag_t                     verify;
    ngx_ssl_t                     *ssl;
} ngx_http_ai_gateway_ssl_t;


static ngx_int_t ngx_http_ai_gateway_upstream_create(ngx_http_request_t *r,
    ngx_http_ai_gateway_loc_conf_t *alcf, ngx_http_ai_gateway_ctx_t *ctx);
static ngx_int_t ngx_http_ai_gateway_build_request(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
static ngx_int_t ngx_http_ai_gateway_create_request(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_gateway_header_check(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_str_t *name, ngx_str_t *value);
static ngx_uint_t ngx_http_ai_gateway_skip_header(
    ngx_http_ai_gateway_ctx_t *ctx, ngx_table_elt_t *h,
    ngx_table_elt_t *connection);
static ngx_int_t ngx_http_ai_gateway_reinit_request(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_gateway_process_status_line(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_gateway_process_header(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_gateway_interim(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
static ngx_int_t ngx_http_ai_gateway_chunked_start(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_gateway_input_filter_init(void *data);
static ngx_int_t ngx_http_ai_gateway_copy_filter(void *data, ssize_t bytes);
static ngx_int_t ngx_http_ai_gateway_chunked_filter(void *data,
    ssize_t bytes);
static void ngx_http_ai_gateway_abort_request(ngx_http_request_t *r);
static void ngx_http_ai_gateway_finalize_request(ngx_http_request_t *r,
    ngx_int_t rc);
static ngx_int_t ngx_http_ai_gateway_set_ssl(ngx_conf_t *cf,
    ngx_http_ai_gateway_loc_conf_t *conf);
static ngx_resolver_t *ngx_http_ai_gateway_system_resolver(ngx_conf_t *cf);


/* response headers the client never sees from the provider */

static ngx_str_t  ngx_http_ai_gateway_hide_headers[] = {
    ngx_string("Date"),
    ngx_string("Server"),
    ngx_string("X-Pad"),
    ngx_string("X-Accel-Expires"),
    ngx_string("X-Accel-Redirect"),
    ngx_string("X-Accel-Limit-Rate"),
    ngx_string("X-Accel-Buffering"),
    ngx_string("X-Accel-Charset"),
    ngx_string("cf-aig-log-id"),
    ngx_string("cf-aig-event-id"),
    ngx_string("cf-aig-step"),
    ngx_string("cf-aig-cache-status"),
    ngx_null_string
};


/* request headers never forwarded (hop-by-hop and the gateway's own) */

static ngx_str_t  ngx_http_ai_gateway_skip_headers[] = {
    ngx_string("host"),
    ngx_string("connection"),
    ngx_string("keep-alive"),
    ngx_string("proxy-connection"),
    ngx_string("proxy-authorization"),
    ngx_string("proxy-authenticate"),
    ngx_string("te"),
    ngx_string("trailer"),
    ngx_string("transfer-encoding"),
    ngx_string("upgrade"),
    ngx_string("content-length"),
    ngx_string("expect"),
    ngx_string("cf-cache-ttl"),
    ngx_string("cf-skip-cache"),
    ngx_string("x-fal-target-url"),
    ngx_null_string
};


static ngx_str_t  ngx_http_ai_gateway_http = ngx_string("http://");
static ngx_str_t  ngx_http_ai_gateway_https = ngx_string("https://");


static ngx_int_t
ngx_http_ai_gateway_upstream_create(ngx_http_request_t *r,
    ngx_http_ai_gateway_loc_conf_t *alcf, ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_http_upstream_t           *u;
    ngx_http_ai_gateway_target_t  *t;

    if (ngx_http_upstream_create(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    u = r->upstream;
    t = &ctx->route.target;

    u->resolved = ngx_pcalloc(r->pool, sizeof(ngx_http_upstream_resolved_t));
    if (u->resolved == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    u->resolved->host = t->host;
    u->resolved->port = t->port;
    u->resolved->no_port = t->no_port;

#if (NGX_HTTP_SSL)
    u->ssl = t->ssl;
#else
    if (t->ssl) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai_gateway: nginx was built without SSL");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
#endif

    u->schema = t->ssl ? ngx_http_ai_gateway_https : ngx_http_ai_gateway_http;
    u->output.tag = (ngx_buf_tag_t) &ngx_http_ai_gateway_module;
    u->conf = &alcf->upstream;

    u->create_request = ngx_http_ai_gateway_create_request;
    u->reinit_request = ngx_http_ai_gateway_reinit_request;
    u->process_header = ngx_http_ai_gateway_process_status_line;
    u->abort_request = ngx_http_ai_gateway_abort_request;
    u->finalize_request = ngx_http_ai_gateway_finalize_request;

    /* responses are streamed through as they arrive, never buffered */

    u->buffering = 0;
    u->input_filter_init = ngx_http_ai_gateway_input_filter_init;
    u->input_filter = ngx_http_ai_gateway_copy_filter;
    u->input_filter_ctx = r;

    ctx->relay.head = (r->method == NGX_HTTP_HEAD);

    return NGX_OK;
}


/*
 * The provider request is built, and checked, before the upstream starts:
 * NGX_OK, or the status of an error recorded by fail().
 */

ngx_int_t
ngx_http_ai_gateway_upstream_init(ngx_http_request_t *r,
    ngx_http_ai_gateway_loc_conf_t *alcf, ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_int_t  rc;

    rc = ngx_http_ai_gateway_upstream_create(r, alcf, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_ai_gateway_build_request(r, ctx);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx->relay.start = ngx_current_msec;

    ngx_http_upstream_init(r);

    return NGX_OK;
}


/* the request built by ngx_http_ai_gateway_build_request() */

static ngx_int_t
ngx_http_ai_gateway_create_request(ngx_http_request_t *r)
{
    ngx_http_ai_gateway_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    if (ctx == NULL || ctx->relay.request == NULL) {
        return NGX_ERROR;
    }

    r->upstream->request_bufs = ctx->relay.request;

    return NGX_OK;
}


/*
 * The request line and headers, then the body.  Whatever their source
 * (the client, a Universal Endpoint step, the configuration, a token
 * exchange), the method, path, query, Host and every header pass the
 * checks of ngx_http_ai_gateway_check.c here, as they are written: a
 * value that could end a line or the head is refused, never sent.
 */

static ngx_int_t
ngx_http_ai_gateway_build_request(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    off_t                          body_len;
    size_t                         len;
    ngx_buf_t                     *b;
    ngx_uint_t                     i, has_body;
    ngx_array_t                    copy;
    ngx_chain_t                   *cl, *body, **ll;
    ngx_list_part_t               *part;
    ngx_str_t                     *method, *credential;
    ngx_keyval_t                  *version;
    ngx_table_elt_t               *h, *connection, **hp;
    ngx_http_ai_gateway_target_t  *t;

    t = &ctx->route.target;

    method = ctx->route.method.len ? &ctx->route.method : &r->method_name;

    body_len = 0;
    body = r->request_body ? r->request_body->bufs : NULL;

    if (ctx->body.set) {
        /* a body of the gateway's own (the Unified API) */

        b = ngx_calloc_buf(r->pool);
        cl = ngx_alloc_chain_link(r->pool);
        if (b == NULL || cl == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        b->pos = ctx->body.sent.data;
        b->last = b->pos + ctx->body.sent.len;
        b->start = b->pos;
        b->end = b->last;
        b->memory = 1;
        b->last_buf = 1;

        cl->buf = b;
        cl->next = NULL;
        body = cl;
    }

    for (cl = body; cl; cl = cl->next) {
        body_len += ngx_buf_size(cl->buf);
    }

    has_body = (body_len > 0 || r->headers_in.content_length_n >= 0
                || r->headers_in.chunked);

    /* nginx does not keep "Connection": the headers it names are dropped */

    connection = NULL;

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

        if (h[i].key.len == 10
            && ngx_strncmp(h[i].lowcase_key, "connection", 10) == 0)
        {
            connection = &h[i];
            break;
        }
    }

    if (ngx_http_ai_gateway_check_name(method->data, method->len) != NGX_OK)
    {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_REQUEST,
                                        "Invalid method for the provider "
                                        "request");
    }

    if (ngx_http_ai_gateway_check_path(t->path.data, t->path.len) != NGX_OK
        || ngx_http_ai_gateway_check_query(t->args.data, t->args.len)
           != NGX_OK)
    {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_PATH,
                                        "Invalid path or query for the "
                                        "provider request: only visible "
                                        "ASCII characters are allowed");
    }

    if (ngx_http_ai_gateway_check_host(t->host_header.data,
                                       t->host_header.len)
        != NGX_OK)
    {
        return ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_PATH,
                                        "Invalid host for the provider "
                                        "request");
    }

    /* the length, and the client's headers to copy, in order */

    credential = &ctx->route.credential;
    version = &ctx->route.version;

    len = (credential->len ? t->origin->auth.len + sizeof(": ") - 1
                             + credential->len + sizeof(CRLF) - 1
                           : 0)
          + (version->key.len ? version->key.len + sizeof(": ") - 1
                                + version->value.len + sizeof(CRLF) - 1
                              : 0)
          + method->len + 1 + t->path.len
          + (t->args.len ? 1 + t->args.len : 0)
          + sizeof(" HTTP/1.1" CRLF) - 1
          + sizeof("Host: ") - 1 + t->host_header.len + sizeof(CRLF) - 1
          + (has_body ? sizeof("Content-Length: ") - 1 + NGX_OFF_T_LEN
                        + sizeof(CRLF) - 1
                      : 0)
          + sizeof(CRLF) - 1;

    if (ngx_array_init(&copy, r->pool, 16, sizeof(ngx_table_elt_t *))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
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

        if (ngx_http_ai_gateway_skip_header(ctx, &h[i], connection)) {
            continue;
        }

        if (ngx_http_ai_gateway_header_check(r, ctx, &h[i].key, &h[i].value)
            != NGX_OK)
        {
            return NGX_HTTP_BAD_REQUEST;
        }

        hp = ngx_array_push(&copy);
        if (hp == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        *hp = &h[i];

        len += h[i].key.len + sizeof(": ") - 1 + h[i].value.len
               + sizeof(CRLF) - 1;
    }

    /* the gateway's own headers; a client's version header has won */

    if ((ctx->route.version.key.len
         && ngx_http_ai_gateway_header_check(r, ctx, &ctx->route.version.key,
                                             &ctx->route.version.value)
            != NGX_OK)
        || (ctx->route.credential.len
            && ngx_http_ai_gateway_header_check(r, ctx, &t->origin->auth,
                                                &ctx->route.credential)
               != NGX_OK))
    {
        return NGX_HTTP_BAD_REQUEST;
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the request line, then the headers in the client's order and case */

    b->last = ngx_copy(b->last, method->data, method->len);
    *b->last++ = ' ';
    b->last = ngx_copy(b->last, t->path.data, t->path.len);

    if (t->args.len) {
        *b->last++ = '?';
        b->last = ngx_copy(b->last, t->args.data, t->args.len);
    }

    b->last = ngx_cpymem(b->last, " HTTP/1.1" CRLF "Host: ",
                         sizeof(" HTTP/1.1" CRLF "Host: ") - 1);
    b->last = ngx_copy(b->last, t->host_header.data, t->host_header.len);
    *b->last++ = CR; *b->last++ = LF;

    hp = copy.elts;

    for (i = 0; i < copy.nelts; i++) {
        b->last = ngx_copy(b->last, hp[i]->key.data, hp[i]->key.len);
        *b->last++ = ':'; *b->last++ = ' ';
        b->last = ngx_copy(b->last, hp[i]->value.data, hp[i]->value.len);
        *b->last++ = CR; *b->last++ = LF;
    }

    if (ctx->route.version.key.len) {
        b->last = ngx_sprintf(b->last, "%V: %V" CRLF, &ctx->route.version.key,
                              &ctx->route.version.value);
    }

    if (ctx->route.credential.len) {
        /* the Unified API: the provider key in the provider's header */
        b->last = ngx_sprintf(b->last, "%V: %V" CRLF, &t->origin->auth,
                              &ctx->route.credential);
    }

    if (has_body) {
        b->last = ngx_sprintf(b->last, "Content-Length: %O" CRLF, body_len);
    }

    *b->last++ = CR; *b->last++ = LF;

    /* neither the headers nor the query: they may hold credentials */

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai gateway upstream request: \"%V %V\"",
                   method, &t->path);

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* without a body the request must leave at once, TLS included */

    b->flush = 1;

    cl->buf = b;
    ctx->relay.request = cl;
    ll = &cl->next;

    /*
     * the body is sent byte for byte as the client sent it; the buffers
     * are copied so that the originals stay readable afterwards
     */

    for ( /* void */ ; body; body = body->next) {
        b = ngx_alloc_buf(r->pool);
        if (b == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(b, body->buf, sizeof(ngx_buf_t));

        cl = ngx_alloc_chain_link(r->pool);
        if (cl == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        cl->buf = b;
        *ll = cl;
        ll = &cl->next;
    }

    *ll = NULL;

    return NGX_OK;
}


/*
 * A header of the provider request; the error names the header, never
 * its value (it may be a credential).
 */

static ngx_int_t
ngx_http_ai_gateway_header_check(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_str_t *name, ngx_str_t *value)
{
    if (ngx_http_ai_gateway_check_name(name->data, name->len) != NGX_OK) {
        (void) ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_HEADER,
                                        "Invalid header name for the "
                                        "provider request");
        return NGX_DECLINED;
    }

    if (ngx_http_ai_gateway_check_value(value->data, value->len) != NGX_OK) {
        (void) ngx_http_ai_gateway_fail(r, ctx,
                                        NGX_HTTP_AI_GATEWAY_ERR_BAD_HEADER,
                                        "Invalid value of header \"%V\" for "
                                        "the provider request: control "
                                        "characters are not allowed", name);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_uint_t
ngx_http_ai_gateway_skip_header(ngx_http_ai_gateway_ctx_t *ctx,
    ngx_table_elt_t *h, ngx_table_elt_t *connection)
{
    u_char      *p, *last, *q;
    ngx_str_t   *s;

    if (ctx->kind == NGX_HTTP_AI_GATEWAY_EXCHANGE) {
        /* a token request of the gateway's own: none of the client's */
        return 1;
    }

    /* the Unified API sets these itself */

    if (ctx->route.credential.len && h->key.len == 13
        && ngx_strncmp(h->lowcase_key, "authorization", 13) == 0)
    {
        return 1;
    }

    /* a stored key's place, or the gateway token (keys.c) */

    if (ngx_http_ai_gateway_keys_skip(ctx, h)) {
        return 1;
    }

    if (ctx->route.no_encoding && h->key.len == 15
        && ngx_strncmp(h->lowcase_key, "accept-encoding", 15) == 0)
    {
        return 1;
    }

    if (ctx->route.version.key.len == h->key.len
        && ngx_strncmp(h->lowcase_key, ctx->route.version.key.data, h->key.len)
           == 0)
    {
        /* the client's own version wins */
        ctx->route.version.key.len = 0;
    }

    if (h->key.len > 7
        && ngx_strncmp(h->lowcase_key, "cf-aig-", 7) == 0)
    {
        return 1;
    }

    for (s = ngx_http_ai_gateway_skip_headers; s->len; s++) {
        if (s->len == h->key.len
            && ngx_strncmp(s->data, h->lowcase_key, s->len) == 0)
        {
            return 1;
        }
    }

    /* headers named in "Connection" are hop-by-hop too */

    if (connection == NULL) {
        return 0;
    }

    p = connection->value.data;
    last = p + connection->value.len;

    while (p < last) {
        while (p < last && (*p == ' ' || *p == ',' || *p == '\t')) {
            p++;
        }

        q = p;

        while (q < last && *q != ',' && *q != ' ' && *q != '\t') {
            q++;
        }

        if ((size_t) (q - p) == h->key.len
            && ngx_strncasecmp(p, h->lowcase_key, h->key.len) == 0)
        {
            return 1;
        }

        p = q;
    }

    return 0;
}


static ngx_int_t
ngx_http_ai_gateway_reinit_request(ngx_http_request_t *r)
{
    ngx_http_ai_gateway_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    if (ctx == NULL) {
        return NGX_OK;
    }

    ctx->relay.status.code = 0;
    ctx->relay.status.count = 0;
    ctx->relay.status.start = NULL;
    ctx->relay.status.end = NULL;
    ctx->relay.chunked.state = 0;
    ctx->relay.first_byte = 0;

    r->upstream->process_header = ngx_http_ai_gateway_process_status_line;
    r->upstream->input_filter = ngx_http_ai_gateway_copy_filter;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_process_status_line(ngx_http_request_t *r)
{
    size_t                      len;
    ngx_int_t                   rc;
    ngx_http_upstream_t        *u;
    ngx_http_ai_gateway_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    if (ctx == NULL) {
        return NGX_ERROR;
    }

    u = r->upstream;

    if (!ctx->relay.first_byte) {
        ctx->relay.first_byte = 1;
        ctx->relay.ttfb = ngx_current_msec - ctx->relay.start;
    }

    rc = ngx_http_parse_status_line(r, &u->buffer, &ctx->relay.status);

    if (rc == NGX_AGAIN) {
        return rc;
    }

    if (rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai_gateway: provider sent no valid HTTP/1.x status "
                      "line");
        return NGX_HTTP_UPSTREAM_INVALID_HEADER;
    }

    if (u->state && u->state->status == 0) {
        u->state->status = ctx->relay.status.code;
    }

    u->headers_in.status_n = ctx->relay.status.code;

    len = ctx->relay.status.end - ctx->relay.status.start;
    u->headers_in.status_line.len = len;

    u->headers_in.status_line.data = ngx_pnalloc(r->pool, len);
    if (u->headers_in.status_line.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(u->headers_in.status_line.data, ctx->relay.status.start, len);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai gateway status %ui \"%V\"",
                   u->headers_in.status_n, &u->headers_in.status_line);

    if (ctx->relay.status.http_version < NGX_HTTP_VERSION_11) {
        u->headers_in.connection_close = 1;
    }

    u->process_header = ngx_http_ai_gateway_process_header;

    return ngx_http_ai_gateway_process_header(r);
}


static ngx_int_t
ngx_http_ai_gateway_process_header(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_table_elt_t                *h;
    ngx_http_upstream_t            *u;
    ngx_http_ai_gateway_ctx_t      *ctx;
    ngx_http_upstream_header_t     *hh;
    ngx_http_upstream_main_conf_t  *umcf;

    umcf = ngx_http_get_module_main_conf(r, ngx_http_upstream_module);
    u = r->upstream;

    for ( ;; ) {

        rc = ngx_http_parse_header_line(r, &u->buffer, 1);

        if (rc == NGX_OK) {

            h = ngx_list_push(&u->headers_in.headers);
            if (h == NULL) {
                return NGX_ERROR;
            }

            h->hash = r->header_hash;

            h->key.len = r->header_name_end - r->header_name_start;
            h->value.len = r->header_end - r->header_start;

            h->key.data = ngx_pnalloc(r->pool,
                               h->key.len + 1 + h->value.len + 1 + h->key.len);
            if (h->key.data == NULL) {
                h->hash = 0;
                return NGX_ERROR;
            }

            h->value.data = h->key.data + h->key.len + 1;
            h->lowcase_key = h->key.data + h->key.len + 1 + h->value.len + 1;

            ngx_memcpy(h->key.data, r->header_name_start, h->key.len);
            h->key.data[h->key.len] = '\0';
            ngx_memcpy(h->value.data, r->header_start, h->value.len);
            h->value.data[h->value.len] = '\0';

            if (h->key.len == r->lowcase_index) {
                ngx_memcpy(h->lowcase_key, r->lowcase_header, h->key.len);

            } else {
                ngx_strlow(h->lowcase_key, h->key.data, h->key.len);
            }

            hh = ngx_hash_find(&umcf->headers_in_hash, h->hash,
                               h->lowcase_key, h->key.len);

            if (hh && hh->handler(r, h, hh->offset) != NGX_OK) {
                return NGX_ERROR;
            }

            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "ai gateway header: \"%V: %V\"",
                           &h->key, &h->value);

            continue;
        }

        if (rc == NGX_HTTP_PARSE_HEADER_DONE) {

            ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

            if (u->headers_in.status_n >= 100
                && u->headers_in.status_n < 200
                && u->headers_in.status_n != NGX_HTTP_SWITCHING_PROTOCOLS)
            {
                /* an interim response (100 Continue, 103...): the next */
                return ngx_http_ai_gateway_interim(r, ctx);
            }

            if (u->headers_in.chunked) {
                u->headers_in.content_length_n = -1;

                if (ngx_http_ai_gateway_chunked_start(r) != NGX_OK) {
                    return NGX_HTTP_UPSTREAM_INVALID_HEADER;
                }
            }

            if (u->headers_in.status_n == NGX_HTTP_NO_CONTENT
                || u->headers_in.status_n == NGX_HTTP_NOT_MODIFIED
                || ctx->relay.head
                || (!u->headers_in.chunked
                    && u->headers_in.content_length_n == 0))
            {
                u->keepalive = !u->headers_in.connection_close;
            }

            if (u->headers_in.status_n == NGX_HTTP_SWITCHING_PROTOCOLS) {
                /* WebSockets are not relayed by this version */
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "ai_gateway: provider switched protocols");
                return NGX_HTTP_UPSTREAM_INVALID_HEADER;
            }

            ngx_http_ai_gateway_relay_header(r, ctx);

            return NGX_OK;
        }

        if (rc == NGX_AGAIN) {
            return NGX_AGAIN;
        }

        /* rc == NGX_HTTP_PARSE_INVALID_HEADER */

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai_gateway: provider sent invalid header: "
                      "\"%*s\\x%02xd...\"",
                      r->header_end - r->header_name_start,
                      r->header_name_start, *r->header_end);

        return NGX_HTTP_UPSTREAM_INVALID_HEADER;
    }
}


/*
 * An interim response is not the answer: its headers are dropped and the
 * status line that follows is parsed, from what is left in the buffer.
 */

static ngx_int_t
ngx_http_ai_gateway_interim(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_http_upstream_t  *u;

    u = r->upstream;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai gateway interim response %ui skipped",
                   u->headers_in.status_n);

    ngx_memzero(&u->headers_in, sizeof(ngx_http_upstream_headers_in_t));
    u->headers_in.content_length_n = -1;
    u->headers_in.last_modified_time = -1;

    if (ngx_list_init(&u->headers_in.headers, r->pool, 8,
                      sizeof(ngx_table_elt_t))
        != NGX_OK
        || ngx_list_init(&u->headers_in.trailers, r->pool, 2,
                         sizeof(ngx_table_elt_t))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (u->state) {
        u->state->status = 0;
    }

    ctx->relay.status.code = 0;
    ctx->relay.status.count = 0;
    ctx->relay.status.start = NULL;
    ctx->relay.status.end = NULL;

    u->process_header = ngx_http_ai_gateway_process_status_line;

    return ngx_http_ai_gateway_process_status_line(r);
}


/*
 * The chunked framing of the body's first bytes, read with the header, is
 * checked before the header goes to the client: a provider whose body
 * cannot be decoded at all is answered with 502, not with a response that
 * breaks off.  Later framing errors can only close the connection.
 */

static ngx_int_t
ngx_http_ai_gateway_chunked_start(ngx_http_request_t *r)
{
    ngx_int_t            rc;
    ngx_buf_t            b;
    ngx_http_chunked_t   chunked;

    b = r->upstream->buffer;
    ngx_memzero(&chunked, sizeof(ngx_http_chunked_t));

    for ( ;; ) {
        rc = ngx_http_parse_chunked(r, &b, &chunked);

        if (rc == NGX_OK) {
            /* chunk data, skipped */

            if (b.last - b.pos >= chunked.size) {
                b.pos += (size_t) chunked.size;
                chunked.size = 0;

            } else {
                chunked.size -= b.last - b.pos;
                b.pos = b.last;
            }

            continue;
        }

        if (rc == NGX_ERROR) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "ai_gateway: provider sent an invalid chunked "
                          "body");
            return NGX_ERROR;
        }

        /* NGX_AGAIN, NGX_DONE */

        return NGX_OK;
    }
}


static ngx_int_t
ngx_http_ai_gateway_input_filter_init(void *data)
{
    ngx_http_request_t  *r = data;

    ngx_http_upstream_t        *u;
    ngx_http_ai_gateway_ctx_t  *ctx;

    u = r->upstream;
    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai gateway filter init s:%ui h:%d c:%d l:%O",
                   u->headers_in.status_n, ctx->relay.head,
                   u->headers_in.chunked, u->headers_in.content_length_n);

    if (u->headers_in.status_n == NGX_HTTP_NO_CONTENT
        || u->headers_in.status_n == NGX_HTTP_NOT_MODIFIED
        || ctx->relay.head)
    {
        u->length = 0;
        u->keepalive = !u->headers_in.connection_close;

    } else if (u->headers_in.chunked) {
        u->input_filter = ngx_http_ai_gateway_chunked_filter;
        u->length = 1;

    } else if (u->headers_in.content_length_n == 0) {
        u->length = 0;
        u->keepalive = !u->headers_in.connection_close;

    } else {
        /* content length, or the body ends when the connection closes */
        u->length = u->headers_in.content_length_n;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_copy_filter(void *data, ssize_t bytes)
{
    ngx_http_request_t  *r = data;

    u_char                     *p;
    ngx_http_upstream_t        *u;
    ngx_http_ai_gateway_ctx_t  *ctx;

    u = r->upstream;
    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    ngx_http_ai_gateway_relay_tail(r, ctx);

    p = u->buffer.last;
    u->buffer.last += bytes;

    if (u->length == -1) {
        /* the body ends when the provider closes the connection */
        return ngx_http_ai_gateway_relay_body(r, ctx, p, bytes);
    }

    if (bytes > u->length) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "ai_gateway: provider sent more data than specified "
                      "in \"Content-Length\" header");

        bytes = u->length;
        u->keepalive = 0;

    } else {
        u->keepalive = (u->length == bytes
                        && !u->headers_in.connection_close);
    }

    u->length -= bytes;

    if (bytes && ngx_http_ai_gateway_relay_body(r, ctx, p, bytes) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return (u->length == 0) ? ngx_http_ai_gateway_relay_end(r, ctx) : NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_chunked_filter(void *data, ssize_t bytes)
{
    ngx_http_request_t  *r = data;

    u_char                     *p;
    ngx_int_t                   rc;
    ngx_buf_t                  *buf;
    ngx_http_upstream_t        *u;
    ngx_http_ai_gateway_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    u = r->upstream;
    buf = &u->buffer;

    buf->pos = buf->last;
    buf->last += bytes;

    ngx_http_ai_gateway_relay_tail(r, ctx);

    for ( ;; ) {

        rc = ngx_http_parse_chunked(r, buf, &ctx->relay.chunked);

        if (rc == NGX_OK) {

            /* a chunk (or a part of it) has been parsed */

            p = buf->pos;

            if (buf->last - buf->pos >= ctx->relay.chunked.size) {
                buf->pos += (size_t) ctx->relay.chunked.size;
                ctx->relay.chunked.size = 0;

            } else {
                ctx->relay.chunked.size -= buf->last - buf->pos;
                buf->pos = buf->last;
            }

            if (ngx_http_ai_gateway_relay_body(r, ctx, p, buf->pos - p)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            continue;
        }

        if (rc == NGX_DONE) {

            /* the whole body has been parsed */

            u->keepalive = !u->headers_in.connection_close;
            u->length = 0;

            if (buf->pos != buf->last) {
                ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                              "ai_gateway: provider sent data after the "
                              "final chunk");
                u->keepalive = 0;
            }

            return ngx_http_ai_gateway_relay_end(r, ctx);
        }

        if (rc == NGX_AGAIN) {
            break;
        }

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai_gateway: provider sent an invalid chunked body");

        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_ai_gateway_abort_request(ngx_http_request_t *r)
{
    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "abort ai gateway request");
}


static void
ngx_http_ai_gateway_finalize_request(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_http_ai_gateway_ctx_t  *ctx;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "finalize ai gateway request: %i", rc);

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    ngx_http_ai_gateway_relay_finalize(r, ctx, rc);
}


char *
ngx_http_ai_gateway_upstream_merge(ngx_conf_t *cf,
    ngx_http_ai_gateway_loc_conf_t *prev, ngx_http_ai_gateway_loc_conf_t *conf)
{
    ngx_hash_init_t                   hash;
    ngx_http_core_loc_conf_t         *clcf;
    ngx_http_compile_complex_value_t  ccv;
    ngx_http_ai_gateway_main_conf_t  *amcf;

    static ngx_str_t  tls_name = ngx_string("$ai_gateway_tls_name");

    ngx_conf_merge_msec_value(conf->upstream.connect_timeout,
                              prev->upstream.connect_timeout, 10000);

    ngx_conf_merge_msec_value(conf->upstream.send_timeout,
                              prev->upstream.send_timeout, 60000);

    ngx_conf_merge_msec_value(conf->upstream.read_timeout,
                              prev->upstream.read_timeout, 300000);

    ngx_conf_merge_size_value(conf->upstream.buffer_size,
                              prev->upstream.buffer_size, 16384);

    ngx_conf_merge_value(conf->upstream.ssl_verify,
                         prev->upstream.ssl_verify, 1);

    ngx_conf_merge_str_value(conf->ssl_trusted_certificate,
                             prev->ssl_trusted_certificate,
                             "/etc/ssl/certs/ca-certificates.crt");

    ngx_conf_merge_uint_value(conf->ssl_verify_depth,
                              prev->ssl_verify_depth, 4);

    ngx_conf_merge_bitmask_value(conf->ssl_protocols, prev->ssl_protocols,
                                 (NGX_CONF_BITMASK_SET
                                  |NGX_SSL_TLSv1_2|NGX_SSL_TLSv1_3));

    conf->upstream.buffering = 0;
    conf->upstream.request_buffering = 1;
    conf->upstream.next_upstream = NGX_CONF_BITMASK_SET
                                   |NGX_HTTP_UPSTREAM_FT_ERROR
                                   |NGX_HTTP_UPSTREAM_FT_TIMEOUT;

    /* the provider cannot steer nginx: no X-Accel-*, no caching headers */

    conf->upstream.ignore_headers = NGX_CONF_BITMASK_SET
                                    |NGX_HTTP_UPSTREAM_IGN_XA_REDIRECT
                                    |NGX_HTTP_UPSTREAM_IGN_XA_EXPIRES
                                    |NGX_HTTP_UPSTREAM_IGN_XA_LIMIT_RATE
                                    |NGX_HTTP_UPSTREAM_IGN_XA_BUFFERING
                                    |NGX_HTTP_UPSTREAM_IGN_XA_CHARSET
                                    |NGX_HTTP_UPSTREAM_IGN_EXPIRES
                                    |NGX_HTTP_UPSTREAM_IGN_CACHE_CONTROL
                                    |NGX_HTTP_UPSTREAM_IGN_SET_COOKIE
                                    |NGX_HTTP_UPSTREAM_IGN_VARY;

    ngx_str_set(&conf->upstream.module, "ai_gateway");

    hash.max_size = 512;
    hash.bucket_size = ngx_align(64, ngx_cacheline_size);
    hash.name = "ai_gateway_headers_hash";

    if (ngx_http_upstream_hide_headers_hash(cf, &conf->upstream,
                                            &prev->upstream,
                                            ngx_http_ai_gateway_hide_headers,
                                            &hash)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (conf->gateway_id.len == 0) {
        return NGX_CONF_OK;
    }

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_gateway_module);

    /* the certificate name and SNI follow the provider of each request */

    if (amcf->tls_name == NULL) {
        amcf->tls_name = ngx_palloc(cf->pool,
                                    sizeof(ngx_http_complex_value_t));
        if (amcf->tls_name == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

        ccv.cf = cf;
        ccv.value = &tls_name;
        ccv.complex_value = amcf->tls_name;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

#if (NGX_HTTP_SSL)
    conf->upstream.ssl_name = amcf->tls_name;
    conf->upstream.ssl_server_name = 1;
    conf->upstream.ssl_session_reuse = 1;

    if (ngx_http_ai_gateway_set_ssl(cf, conf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }
#endif

    /* provider hosts are resolved at run time: offer a resolver */

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->resolver == NULL || clcf->resolver->connections.nelts == 0) {

        if (amcf->resolver == NULL) {
            amcf->resolver = ngx_http_ai_gateway_system_resolver(cf);
        }

        if (amcf->resolver) {
            clcf->resolver = amcf->resolver;
        }
    }

    return NGX_CONF_OK;
}


#if (NGX_HTTP_SSL)

/* one client TLS context per distinct set of settings, shared */

static ngx_int_t
ngx_http_ai_gateway_set_ssl(ngx_conf_t *cf,
    ngx_http_ai_gateway_loc_conf_t *conf)
{
    ngx_uint_t                        i;
    ngx_pool_cleanup_t               *cln;
    ngx_http_ai_gateway_ssl_t        *s, **sp;
    ngx_http_ai_gateway_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_gateway_module);

    sp = amcf->ssl.elts;

    for (i = 0; i < amcf->ssl.nelts; i++) {
        s = sp[i];

        if (s->verify == conf->upstream.ssl_verify
            && s->depth == conf->ssl_verify_depth
            && s->protocols == conf->ssl_protocols
            && s->trusted.len == conf->ssl_trusted_certificate.len
            && ngx_strncmp(s->trusted.data, conf->ssl_trusted_certificate.data,
                           s->trusted.len) == 0)
        {
            conf->upstream.ssl = s->ssl;
            return NGX_OK;
        }
    }

    s = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_gateway_ssl_t));
    if (s == NULL) {
        return NGX_ERROR;
    }

    s->ssl = ngx_pcalloc(cf->pool, sizeof(ngx_ssl_t));
    if (s->ssl == NULL) {
        return NGX_ERROR;
    }

    s->ssl->log = cf->log;

    if (ngx_ssl_create(s->ssl, conf->ssl_protocols, NULL) != NGX_OK) {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_ssl_cleanup_ctx(s->ssl);
        return NGX_ERROR;
    }

    cln->handler = ngx_ssl_cleanup_ctx;
    cln->data = s->ssl;

    if (conf->upstream.ssl_verify) {
        if (ngx_ssl_trusted_certificate(cf, s->ssl,
                                        &conf->ssl_trusted_certificate,
                                        conf->ssl_verify_depth)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_ssl_client_session_cache(cf, s->ssl, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    s->trusted = conf->ssl_trusted_certificate;
    s->depth = conf->ssl_verify_depth;
    s->protocols = conf->ssl_protocols;
    s->verify = conf->upstream.ssl_verify;

    sp = ngx_array_push(&amcf->ssl);
    if (sp == NULL) {
        return NGX_ERROR;
    }

    *sp = s;

    conf->upstream.ssl = s->ssl;

    return NGX_OK;
}

#endif


/*
 * With no "resolver" configured, provider names are resolved with the
 * name servers of /etc/resolv.conf (read once, at configuration time).
 */

static ngx_resolver_t *
ngx_http_ai_gateway_system_resolver(ngx_conf_t *cf)
{
    u_char          *p, *last, *q, buf[4096];
    ssize_t          n;
    ngx_fd_t         fd;
    ngx_str_t       *names, *name;
    ngx_uint_t       i;
    ngx_array_t      a;
    ngx_resolver_t  *r;

    fd = ngx_open_file("/etc/resolv.conf", NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        return NULL;
    }

    n = ngx_read_fd(fd, buf, sizeof(buf));
    ngx_close_file(fd);

    if (n <= 0) {
        return NULL;
    }

    if (ngx_array_init(&a, cf->temp_pool, 3, sizeof(ngx_str_t)) != NGX_OK) {
        return NULL;
    }

    p = buf;
    last = buf + n;

    while (p < last) {
        q = ngx_strlchr(p, last, '\n');
        if (q == NULL) {
            q = last;
        }

        if (q - p > 11 && ngx_strncmp(p, "nameserver", 10) == 0
            && (p[10] == ' ' || p[10] == '\t'))
        {
            p += 11;

            while (p < q && (*p == ' ' || *p == '\t')) {
                p++;
            }

            for (i = 0; p + i < q && p[i] > ' ' && p[i] != '%'; i++) {
                /* void */
            }

            if (i) {
                name = ngx_array_push(&a);
                if (name == NULL) {
                    return NULL;
                }

                name->data = ngx_pnalloc(cf->pool, i + 2);
                if (name->data == NULL) {
                    return NULL;
                }

                if (ngx_strlchr(p, p + i, ':')) {
                    name->len = ngx_sprintf(name->data, "[%*s]", i, p)
                                - name->data;

                } else {
                    name->len = ngx_cpymem(name->data, p, i) - name->data;
                }
            }
        }

        p = q + 1;
    }

    if (a.nelts == 0) {
        return NULL;
    }

    names = a.elts;

    r = ngx_resolver_create(cf, names, a.nelts);

    if (r) {
        ngx_log_error(NGX_LOG_NOTICE, cf->log, 0,
                      "ai_gateway: no \"resolver\" configured, using %V "
                      "from /etc/resolv.conf", &names[0]);
    }

    return r;
}
