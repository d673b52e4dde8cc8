
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_module.h"


/*
 * Usage and cost of a request (docs/usage.md), around the meter of
 * ngx_http_ai_gateway_usage.c:
 *
 *   ngx_http_ai_gateway_cost_route()    parse: a streamed OpenAI request
 *                                        may need include_usage, so its
 *                                        body is kept
 *   ngx_http_ai_gateway_cost_request()  before the upstream: include_usage
 *                                        added when the client did not ask
 *                                        (its usage chunk is then left out
 *                                        by the relay)
 *   ngx_http_ai_gateway_cost_start()    relay: the provider's header is in;
 *                                        a meter for a successful body
 *   ngx_http_ai_gateway_cost_feed()     relay: each piece of the body
 *   ngx_http_ai_gateway_cost_end()      relay: the body ended (or was cut,
 *                                        or the client left): the counts
 *                                        into ctx->usage, the cost into
 *                                        ctx->cost
 *   ngx_http_ai_gateway_cost_cached()   a cache hit: no tokens, no cost
 *
 * The Unified API's translated answers are counted by their translator
 * (ctx->route.tc), every other answer by the meter; Bedrock's count headers
 * count an InvokeModel answer the meter cannot read.  An attempt's counts
 * are its request's too (the last attempt is the answer).  The price
 * table is read at configuration time (ai_gateway_prices); a request's
 * cf-aig-custom-cost replaces it.
 */


static ngx_int_t ngx_http_ai_gateway_cost_injectable(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
static ngx_int_t ngx_http_ai_gateway_cost_body(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_str_t *body);
static uint64_t ngx_http_ai_gateway_cost_header(ngx_list_t *headers,
    const char *name, ngx_uint_t *found);
static void ngx_http_ai_gateway_cost_compute(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
static void ngx_http_ai_gateway_cost_model(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_str_t *model);
static void ngx_http_ai_gateway_cost_report(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
static ngx_int_t ngx_http_ai_gateway_prices_load(ngx_conf_t *cf,
    ngx_http_ai_gateway_main_conf_t *amcf, ngx_str_t *name,
    ngx_uint_t required);


/*
 * the providers that answer stream_options.include_usage, as OpenAI does
 * (the others report usage without being asked, or reject the member)
 */

static ngx_str_t  ngx_http_ai_gateway_include_usage_providers[] = {
    ngx_string("openai"),
    ngx_string("groq"),
    ngx_string("deepseek"),
    ngx_string("grok"),
    ngx_null_string
};


/* where a request's path names its model */

typedef struct {
    ngx_str_t                      mark;
    ngx_uint_t                     slashes;    /* the name holds "/" */
} ngx_http_ai_gateway_model_mark_t;


static ngx_http_ai_gateway_model_mark_t  ngx_http_ai_gateway_model_marks[] = {
    { ngx_string("/model/"), 0 },              /* Bedrock */
    { ngx_string("/models/"), 0 },             /* Gemini, Vertex AI */
    { ngx_string("/ai/run/"), 1 },             /* Workers AI */
    { ngx_null_string, 0 }
};


/* the built-in table, set by "config" (its path at build time) */

#ifndef NGX_HTTP_AI_GATEWAY_PRICES
#define NGX_HTTP_AI_GATEWAY_PRICES  "prices.json"
#endif

static ngx_str_t  ngx_http_ai_gateway_prices_path =
    ngx_string(NGX_HTTP_AI_GATEWAY_PRICES);


/* the longest price file read */
#define NGX_HTTP_AI_GATEWAY_PRICES_MAX  (16 * 1024 * 1024)


/*
 * ai_gateway_prices file | off;  the built-in table first (unless "off"),
 * then each file in order, later entries replacing earlier ones
 */

char *
ngx_http_ai_gateway_prices_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_str_t                        *value;
    ngx_http_ai_gateway_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_gateway_module);

    value = cf->args->elts;

    if (value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0) {
        if (amcf->prices) {
            return "\"off\" must come before any price file";
        }

        amcf->prices_default = 0;
        return NGX_CONF_OK;
    }

    if (amcf->prices == NULL) {
        amcf->prices = ngx_http_ai_gateway_prices_create(cf->pool);
        if (amcf->prices == NULL) {
            return NGX_CONF_ERROR;
        }

        if (amcf->prices_default != 0
            && ngx_http_ai_gateway_prices_load(cf, amcf,
                                         &ngx_http_ai_gateway_prices_path, 0)
               != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_conf_full_name(cf->cycle, &value[1], 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_ai_gateway_prices_load(cf, amcf, &value[1], 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* postconfiguration: the built-in table when no directive read it */

ngx_int_t
ngx_http_ai_gateway_cost_init(ngx_conf_t *cf)
{
    ngx_http_ai_gateway_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_gateway_module);

    if (amcf->prices) {
        return NGX_OK;
    }

    amcf->prices = ngx_http_ai_gateway_prices_create(cf->pool);
    if (amcf->prices == NULL) {
        return NGX_ERROR;
    }

    if (amcf->prices_default == 0) {
        return NGX_OK;
    }

    return ngx_http_ai_gateway_prices_load(cf, amcf,
                                           &ngx_http_ai_gateway_prices_path, 0);
}


/*
 * A price file, read whole at configuration time.  The built-in one may
 * be missing (costs are then unknown, said once); an operator's may not.
 */

static ngx_int_t
ngx_http_ai_gateway_prices_load(ngx_conf_t *cf,
    ngx_http_ai_gateway_main_conf_t *amcf, ngx_str_t *name,
    ngx_uint_t required)
{
    u_char           *buf;
    size_t            size;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_str_t         err;
    ngx_int_t         rc;
    ngx_file_info_t   fi;

    fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(required ? NGX_LOG_EMERG : NGX_LOG_WARN, cf,
                           ngx_errno, ngx_open_file_n " \"%s\" failed%s",
                           name->data,
                           required ? "" : ": costs are not known");
        return required ? NGX_ERROR : NGX_OK;
    }

    rc = NGX_ERROR;
    buf = NULL;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%s\" failed", name->data);
        goto done;
    }

    size = (size_t) ngx_file_size(&fi);

    if (size > NGX_HTTP_AI_GATEWAY_PRICES_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "price file \"%s\" is too large", name->data);
        goto done;
    }

    buf = ngx_alloc(size + 1, cf->log);
    if (buf == NULL) {
        goto done;
    }

    n = ngx_read_fd(fd, buf, size);

    if (n == -1 || (size_t) n != size) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_read_fd_n " \"%s\" failed", name->data);
        goto done;
    }

    ngx_str_null(&err);

    rc = ngx_http_ai_gateway_prices_add(amcf->prices, buf, size, &err);

    if (rc == NGX_DECLINED) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid price file \"%s\": %V", name->data, &err);
        rc = NGX_ERROR;
    }

done:

    if (buf) {
        ngx_free(buf);
    }

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_ALERT, cf, ngx_errno,
                           ngx_close_file_n " \"%s\" failed", name->data);
    }

    return rc;
}


/*
 * A native request routed: a streamed OpenAI-style request may get
 * include_usage, for which its body is kept in memory as it is read
 */

void
ngx_http_ai_gateway_cost_route(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    if (ngx_http_ai_gateway_cost_injectable(r, ctx) == NGX_OK) {
        ctx->body.keep = 1;
    }
}


static ngx_int_t
ngx_http_ai_gateway_cost_injectable(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    u_char                          *p, *last;
    ngx_str_t                       *s, *path;
    ngx_http_ai_gateway_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_module);

    if (!alcf->usage || !alcf->include_usage || r->method != NGX_HTTP_POST
        || ctx->route.translator || ctx->kind == NGX_HTTP_AI_GATEWAY_EXCHANGE)
    {
        return NGX_DECLINED;
    }

    for (s = ngx_http_ai_gateway_include_usage_providers; s->len; s++) {
        if (s->len == ctx->route.provider.len
            && ngx_strncmp(s->data, ctx->route.provider.data, s->len) == 0)
        {
            break;
        }
    }

    if (s->len == 0) {
        return NGX_DECLINED;
    }

    /* chat completions and completions */

    path = &ctx->route.target.path;
    p = path->data;
    last = p + path->len;

    if (path->len >= 12
        && ngx_strncmp(last - 12, "/completions", 12) == 0)
    {
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/*
 * Before the upstream: a streamed request that does not ask for usage
 * gets stream_options.include_usage; the relay leaves the usage chunk
 * out of what the client gets.  NGX_OK, or the status of an error.
 */

ngx_int_t
ngx_http_ai_gateway_cost_request(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_int_t  rc;
    ngx_str_t  body, out;

    ctx->meter.strip = 0;

    if (ngx_http_ai_gateway_cost_injectable(r, ctx) != NGX_OK) {
        return NGX_OK;
    }

    rc = ngx_http_ai_gateway_cost_body(r, ctx, &body);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        return NGX_OK;
    }

    rc = ngx_http_ai_gateway_meter_request(r->pool, body.data, body.len,
                                           &out);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_OK) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "ai gateway: include_usage added");

        ctx->body.sent = out;
        ctx->body.set = 1;
        ctx->meter.strip = 1;
    }

    return NGX_OK;
}


/*
 * The body the provider gets, in one piece: the gateway's own, the copy
 * kept, or a body in memory (an attempt's).  NGX_DECLINED: none there.
 */

static ngx_int_t
ngx_http_ai_gateway_cost_body(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_str_t *body)
{
    u_char       *p;
    size_t        len;
    ngx_chain_t  *cl;

    if (ctx->body.set) {
        *body = ctx->body.sent;
        return NGX_OK;
    }

    if (ctx->body.raw.len && ctx->body.raw.len == (size_t) ctx->body.received)
    {
        *body = ctx->body.raw;
        return NGX_OK;
    }

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_DECLINED;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        if (!ngx_buf_in_memory(cl->buf)) {
            return NGX_DECLINED;
        }

        len += cl->buf->last - cl->buf->pos;
    }

    if (r->request_body->bufs->next == NULL) {
        body->data = r->request_body->bufs->buf->pos;
        body->len = len;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;
    body->len = len;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    return NGX_OK;
}


/* the provider's header is in: what its body is counted with */

void
ngx_http_ai_gateway_cost_start(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_str_t                        *type;
    ngx_uint_t                        found;
    ngx_http_upstream_t              *u;
    ngx_http_ai_gateway_loc_conf_t   *alcf;
    ngx_http_ai_gateway_meter_framing_e  framing;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_module);
    u = r->upstream;

    /* a response after nginx tried another server: counted anew */

    ctx->meter.parser = NULL;
    ctx->meter.hold_len = 0;
    ctx->meter.header = 0;
    ctx->meter.done = 0;
    ngx_memzero(&ctx->usage, sizeof(ngx_http_ai_gateway_usage_t));
    ngx_memzero(&ctx->cost, sizeof(ngx_http_ai_gateway_cost_t));

    if (!alcf->usage || ctx->kind == NGX_HTTP_AI_GATEWAY_EXCHANGE
        || ctx->route.translator
        || u->headers_in.status_n < NGX_HTTP_OK
        || u->headers_in.status_n >= NGX_HTTP_SPECIAL_RESPONSE
        || u->headers_in.status_n == NGX_HTTP_NO_CONTENT
        || ctx->relay.head)
    {
        /* nothing to count, or the translator counts */
        ctx->meter.strip = 0;
        return;
    }

    /* Bedrock's InvokeModel reports its counts in headers too */

    if (ctx->route.provider.len == 11
        && ngx_strncmp(ctx->route.provider.data, "aws-bedrock", 11) == 0)
    {
        ctx->meter.header_in = ngx_http_ai_gateway_cost_header(
                                   &u->headers_in.headers,
                                   "x-amzn-bedrock-input-token-count",
                                   &found);
        ctx->meter.header = found;
        ctx->meter.header_out = ngx_http_ai_gateway_cost_header(
                                    &u->headers_in.headers,
                                    "x-amzn-bedrock-output-token-count",
                                    &found);
        ctx->meter.header &= found;
    }

    framing = NGX_HTTP_AI_GATEWAY_METER_JSON;

    type = u->headers_in.content_type ? &u->headers_in.content_type->value
                                      : NULL;

    if (type && type->len >= 17
        && ngx_strncasecmp(type->data, (u_char *) "text/event-stream", 17)
           == 0)
    {
        framing = NGX_HTTP_AI_GATEWAY_METER_SSE;

    } else if (type && type->len >= 34
               && ngx_strncasecmp(type->data,
                                  (u_char *) "application/vnd.amazon."
                                             "eventstream", 34)
                  == 0)
    {
        framing = NGX_HTTP_AI_GATEWAY_METER_EVENTSTREAM;
    }

    if (framing != NGX_HTTP_AI_GATEWAY_METER_SSE) {
        ctx->meter.strip = 0;
    }

    ctx->meter.parser = ngx_http_ai_gateway_meter_create(r->pool, framing,
                                                         ctx->meter.strip);

    if (ctx->meter.parser == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai_gateway: no memory for the usage meter");
        ctx->meter.strip = 0;
    }
}


static uint64_t
ngx_http_ai_gateway_cost_header(ngx_list_t *headers, const char *name,
    ngx_uint_t *found)
{
    size_t            len;
    uint64_t          n;
    ngx_uint_t        i, j;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    *found = 0;
    len = ngx_strlen(name);

    part = &headers->part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return 0;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len != len
            || ngx_strncmp(h[i].lowcase_key, name, len) != 0)
        {
            continue;
        }

        if (h[i].value.len == 0 || h[i].value.len > 15) {
            return 0;
        }

        n = 0;

        for (j = 0; j < h[i].value.len; j++) {
            if (h[i].value.data[j] < '0' || h[i].value.data[j] > '9') {
                return 0;
            }

            n = n * 10 + (h[i].value.data[j] - '0');
        }

        *found = 1;

        return n;
    }
}


/* a piece of the body, relayed as it is (the relay strips on its own) */

void
ngx_http_ai_gateway_cost_feed(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, u_char *p, size_t len)
{
    u_char      *pos, *last;
    ngx_int_t    rc;
    ngx_uint_t   drop;

    pos = p;
    last = p + len;

    do {
        rc = ngx_http_ai_gateway_meter_feed(ctx->meter.parser, &pos, last,
                                            &drop);
    } while (rc == NGX_OK);

    if (rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai_gateway: no memory for the usage meter");
        ctx->meter.parser = NULL;
    }
}


/*
 * The body ended, as its framing said (complete), or it did not: the
 * provider's connection was lost, the client left.  Called once.
 */

void
ngx_http_ai_gateway_cost_end(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_uint_t complete)
{
    ngx_http_ai_gateway_usage_t    *u;
    ngx_http_ai_gateway_tokens_t    t;
    ngx_http_ai_gateway_compat_t   *tc;

    if (ctx->meter.done) {
        return;
    }

    ctx->meter.done = 1;

    u = &ctx->usage;
    tc = &ctx->route.tc;

    ngx_memzero(&t, sizeof(ngx_http_ai_gateway_tokens_t));

    if (ctx->route.translator) {
        /* the translator's counts: prompt holds cached and cache writes */

        if (tc->usage) {
            t.cached = ngx_min(tc->cached_tokens, tc->prompt_tokens);
            t.cache_write = ngx_min(tc->cache_write_tokens,
                                    tc->prompt_tokens - t.cached);
            t.input = tc->prompt_tokens - t.cached - t.cache_write;
            t.output = tc->completion_tokens;
            t.reasoning = ngx_min(tc->reasoning_tokens, t.output);
            t.known = 1;
            t.partial = !complete;
        }

    } else if (ctx->meter.parser) {
        ngx_http_ai_gateway_meter_finish(ctx->meter.parser, complete, &t);

        if (!t.known && ctx->meter.header) {
            t.input = ctx->meter.header_in;
            t.output = ctx->meter.header_out;
            t.known = 1;
        }
    }

    u->input = t.input;
    u->cached = t.cached;
    u->cache_write = t.cache_write;
    u->output = t.output;
    u->reasoning = t.reasoning;
    u->known = t.known;
    u->partial = t.partial;

    ngx_http_ai_gateway_cost_compute(r, ctx);

    ngx_log_debug8(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai gateway usage: %uL %uL %uL %uL %uL known:%d "
                   "partial:%d cost:%d", u->input, u->cached, u->cache_write,
                   u->output, u->reasoning, u->known, u->partial,
                   ctx->cost.known);

    ngx_http_ai_gateway_cost_report(r, ctx);
}


/* a cache hit: nothing was used, nothing is owed */

void
ngx_http_ai_gateway_cost_cached(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_memzero(&ctx->usage, sizeof(ngx_http_ai_gateway_usage_t));
    ngx_memzero(&ctx->cost, sizeof(ngx_http_ai_gateway_cost_t));

    ctx->usage.known = 1;
    ctx->cost.known = 1;
    ctx->meter.done = 1;

    ngx_http_ai_gateway_cost_report(r, ctx);
}


/* an attempt's counts and cost are its request's */

static void
ngx_http_ai_gateway_cost_report(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_http_ai_gateway_ctx_t  *mctx;

    if (ctx->kind != NGX_HTTP_AI_GATEWAY_ATTEMPT || r == r->main) {
        return;
    }

    mctx = ngx_http_get_module_ctx(r->main, ngx_http_ai_gateway_module);

    if (mctx == NULL || mctx == ctx) {
        return;
    }

    mctx->usage = ctx->usage;
    mctx->cost = ctx->cost;
    mctx->meter.model = ctx->meter.model;
}


/*
 * The cost: the request's cf-aig-custom-cost, else the price table's.  No
 * counts: no cost.
 */

static void
ngx_http_ai_gateway_cost_compute(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    double                            total;
    ngx_int_t                         rc;
    ngx_table_elt_t                  *h;
    ngx_http_ai_gateway_price_t       custom, *price;
    ngx_http_ai_gateway_tokens_t      t;
    ngx_http_ai_gateway_headers_t    *hs;
    ngx_http_ai_gateway_main_conf_t  *amcf;

    ngx_memzero(&ctx->cost, sizeof(ngx_http_ai_gateway_cost_t));

    if (!ctx->usage.known) {
        return;
    }

    ngx_memzero(&t, sizeof(ngx_http_ai_gateway_tokens_t));
    t.input = ctx->usage.input;
    t.cached = ctx->usage.cached;
    t.cache_write = ctx->usage.cache_write;
    t.output = ctx->usage.output;

    hs = ngx_http_ai_gateway_headers(r, ctx);
    h = hs ? hs->custom_cost : NULL;

    if (h) {
        rc = ngx_http_ai_gateway_price_custom(r->pool, h->value.data,
                                              h->value.len, &custom, &total);

        if (rc == NGX_DONE) {
            ctx->cost.value = total;
            ctx->cost.known = 1;
            ctx->cost.custom = 1;
            return;
        }

        if (rc == NGX_OK) {
            ctx->cost.value = ngx_http_ai_gateway_price_cost(&custom, &t);
            ctx->cost.known = 1;
            ctx->cost.custom = 1;
            return;
        }

        if (rc == NGX_DECLINED) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "ai_gateway: invalid \"cf-aig-custom-cost\" "
                          "header ignored");
        }
    }

    ngx_http_ai_gateway_cost_model(r, ctx, &ctx->meter.model);

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_gateway_module);

    price = ngx_http_ai_gateway_prices_find(amcf->prices,
                                            &ctx->route.provider,
                                            &ctx->meter.model);
    if (price == NULL) {
        return;
    }

    ctx->cost.value = ngx_http_ai_gateway_price_cost(price, &t);
    ctx->cost.known = 1;
}


/*
 * The model priced: the one the request's path names (Bedrock, Gemini,
 * Vertex AI, Workers AI: the model invoked), else the one the answer names
 * (a dated version), else the one the request names (the Unified API's,
 * the body's "model")
 */

static void
ngx_http_ai_gateway_cost_model(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_str_t *model)
{
    u_char                            *p, *last, *s, *d;
    ngx_str_t                         *path;
    ngx_http_ai_gateway_model_mark_t  *m;

    ngx_str_null(model);

    if (ctx->route.translator) {
        *model = ctx->route.model;
        return;
    }

    /* "/model/{id}/converse", "/models/{name}:generateContent" */

    path = &ctx->route.target.path;
    last = path->data + path->len;

    for (m = ngx_http_ai_gateway_model_marks; path->len && m->mark.len; m++) {
        s = ngx_strlcasestrn(path->data, last, m->mark.data,
                             m->mark.len - 1);

        if (s == NULL) {
            continue;
        }

        s += m->mark.len;

        for (d = s; d < last && *d != ':' && (*d != '/' || m->slashes); d++)
        {
            /* void */
        }

        if (d == s) {
            break;
        }

        model->data = ngx_pnalloc(r->pool, d - s);
        if (model->data == NULL) {
            return;
        }

        p = model->data;
        ngx_unescape_uri(&p, &s, d - s, 0);
        model->len = p - model->data;

        return;
    }

    if (ctx->meter.parser) {
        ngx_http_ai_gateway_meter_model(ctx->meter.parser, model);

        if (model->len) {
            return;
        }
    }

    if (ctx->route.compat) {
        *model = ctx->route.model;
        return;
    }

    if (!ctx->route.model_done) {
        ctx->route.model_done = 1;

        if (r->request_body && r->request_body->bufs) {
            (void) ngx_http_ai_gateway_json_top_string(r->pool,
                                                       r->request_body->bufs,
                                                       "model",
                                                       &ctx->route.model);
        }
    }

    *model = ctx->route.model;
}


/*
 * cf-aig-metadata as kept, or NULL: read once, when first asked for; a
 * request never fails for its metadata
 */

ngx_str_t *
ngx_http_ai_gateway_cost_metadata(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx)
{
    ngx_int_t                       rc;
    ngx_http_ai_gateway_headers_t  *hs;

    if (!ctx->meter.metadata_done) {
        ctx->meter.metadata_done = 1;

        hs = ngx_http_ai_gateway_headers(r, ctx);

        if (hs && hs->metadata) {
            rc = ngx_http_ai_gateway_metadata_parse(r->pool,
                                                    hs->metadata->value.data,
                                                    hs->metadata->value.len,
                                                    &ctx->meter.metadata);
            if (rc != NGX_OK) {
                ngx_str_null(&ctx->meter.metadata);
            }
        }
    }

    return ctx->meter.metadata.len ? &ctx->meter.metadata : NULL;
}
