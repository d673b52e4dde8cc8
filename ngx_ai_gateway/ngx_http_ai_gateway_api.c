
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_api.h"


/*
 * The management API: the hosted gateway's REST API
 * (/client/v4/accounts/{account_id}/ai-gateway/...), served by nginx from
 * a location the operator declares:
 *
 *   location /client/v4/ {
 *       ai_gateway_api;
 *       ai_gateway_api_token_file /etc/nginx/api-tokens;
 *   }
 *
 * so that the official clients (the "cloudflare" npm SDK) work by
 * changing only their base URL.  This file is the API's one handler: the
 * path is matched against a table of resources (path, method, handler,
 * the resource's filter keys and orders), the API token checked, the
 * query parsed once (page, per_page, order_by, order_by_direction,
 * search, filters: query.c), a PATCH body read; then the resource's
 * handler fills in the answer, at once or later (a store that waits:
 * api->done()), and this file writes it: the v4 envelope
 * {"success", "errors", "messages", "result", "result_info"}, the one
 * error shape {"success": false, "errors": [{"code", "message"}]}, or a
 * payload as it is.
 *
 * A request that waits reads its connection (ngx_http_test_reading): a
 * client that leaves ends it.  Whenever the request ends, the resource's
 * cancel() runs from the request pool's cleanup: a store's wait is
 * cancelled, what the resource allocated outside the request's pool
 * freed.
 *
 * The token check: "ai_gateway_api_token_file" names a file of tokens,
 * one per line (read by auth.c, in the format of the gateway's token
 * files, docs/access.md) when the configuration is; a request must carry one
 * as "Authorization: Bearer ..." (what the SDK sends with apiToken).
 * Only their SHA-256 digests are kept, compared in constant time.  A
 * location without a token file is open to whoever nginx lets in
 * (allow/deny, auth_request...).
 */


#define NGX_HTTP_AI_GATEWAY_API_MAX_SEGMENTS  8
#define NGX_HTTP_AI_GATEWAY_API_MAX_BODY      65536


typedef struct {
    ngx_flag_t                     enable;
    ngx_array_t                   *tokens;     /* auth.c's tokens */
} ngx_http_ai_gateway_api_loc_conf_t;


static void *ngx_http_ai_gateway_api_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ai_gateway_api_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_ai_gateway_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_gateway_api_token_file(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_ai_gateway_api_handler(ngx_http_request_t *r);
static ngx_uint_t ngx_http_ai_gateway_api_auth(ngx_http_request_t *r,
    ngx_http_ai_gateway_api_loc_conf_t *aacf);
static void ngx_http_ai_gateway_api_route(ngx_http_ai_gateway_api_t *api);
static void ngx_http_ai_gateway_api_query(ngx_http_ai_gateway_api_t *api);
static ngx_int_t ngx_http_ai_gateway_api_number(ngx_str_t *s,
    ngx_uint_t min, ngx_uint_t max, ngx_uint_t *n);
static void ngx_http_ai_gateway_api_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_gateway_api_run(ngx_http_ai_gateway_api_t *api);
static void ngx_http_ai_gateway_api_done(ngx_http_ai_gateway_api_t *api);
static void ngx_http_ai_gateway_api_cleanup(void *data);
static ngx_int_t ngx_http_ai_gateway_api_send(ngx_http_ai_gateway_api_t *api);
static ngx_int_t ngx_http_ai_gateway_api_envelope(
    ngx_http_ai_gateway_api_t *api, ngx_str_t *out);


static ngx_str_t  ngx_http_ai_gateway_api_directions[] = {
    ngx_string("asc"),
    ngx_string("desc"),
    ngx_null_string
};


/* the resources, under /accounts/{account_id}/ai-gateway/ */

static ngx_http_ai_gateway_api_resource_t  ngx_http_ai_gateway_api_resources[]
    = {

    { ngx_string("gateways/*/logs"), NGX_HTTP_GET,
      ngx_http_ai_gateway_api_logs_list,
      ngx_http_ai_gateway_log_keys, ngx_http_ai_gateway_log_orders, 0 },

    { ngx_string("gateways/*/logs"), NGX_HTTP_DELETE,
      ngx_http_ai_gateway_api_logs_delete,
      ngx_http_ai_gateway_log_keys, ngx_http_ai_gateway_log_orders, 0 },

    { ngx_string("gateways/*/logs/*"), NGX_HTTP_GET,
      ngx_http_ai_gateway_api_logs_get, NULL, NULL, 0 },

    { ngx_string("gateways/*/logs/*"), NGX_HTTP_PATCH,
      ngx_http_ai_gateway_api_logs_edit, NULL, NULL, 0 },

    { ngx_string("gateways/*/logs/*/request"), NGX_HTTP_GET,
      ngx_http_ai_gateway_api_logs_payload, NULL, NULL,
      NGX_HTTP_AI_GATEWAY_LOG_REQUEST },

    { ngx_string("gateways/*/logs/*/response"), NGX_HTTP_GET,
      ngx_http_ai_gateway_api_logs_payload, NULL, NULL,
      NGX_HTTP_AI_GATEWAY_LOG_RESPONSE },

    /* analytics.c */
    { ngx_string("gateways/*/analytics"), NGX_HTTP_GET,
      ngx_http_ai_gateway_api_analytics, NULL, NULL, 0 },

    { ngx_null_string, 0, NULL, NULL, NULL, 0 }
};


static ngx_command_t  ngx_http_ai_gateway_api_commands[] = {

    { ngx_string("ai_gateway_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_ai_gateway_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_gateway_api_token_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_api_token_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ai_gateway_api_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ai_gateway_api_create_loc_conf, /* create location conf */
    ngx_http_ai_gateway_api_merge_loc_conf   /* merge location conf */
};


ngx_module_t  ngx_http_ai_gateway_api_module = {
    NGX_MODULE_V1,
    &ngx_http_ai_gateway_api_module_ctx,   /* module context */
    ngx_http_ai_gateway_api_commands,      /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_ai_gateway_api_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ai_gateway_api_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_gateway_api_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->enable = NGX_CONF_UNSET;
    conf->tokens = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_ai_gateway_api_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_ai_gateway_api_loc_conf_t *prev = parent;
    ngx_http_ai_gateway_api_loc_conf_t *conf = child;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_ptr_value(conf->tokens, prev->tokens, NULL);

    return NGX_CONF_OK;
}


static char *
ngx_http_ai_gateway_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_gateway_api_loc_conf_t *aacf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (aacf->enable != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    aacf->enable = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_ai_gateway_api_handler;

    return NGX_CONF_OK;
}


/*
 * ai_gateway_api_token_file path;  one token a line, read now (by the
 * master, before workers drop privileges) by auth.c, which keeps only
 * digests.
 */

static char *
ngx_http_ai_gateway_api_token_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_gateway_api_loc_conf_t *aacf = conf;

    ngx_str_t  *value;

    if (aacf->tokens != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    aacf->tokens = ngx_http_ai_gateway_tokens_read(cf, &value[1],
                                                   "API token file");
    if (aacf->tokens == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ai_gateway_api_handler(ngx_http_request_t *r)
{
    ngx_int_t                            rc;
    ngx_pool_cleanup_t                  *cln;
    ngx_http_ai_gateway_api_t           *api;
    ngx_http_ai_gateway_api_loc_conf_t  *aacf;

    aacf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_api_module);

    api = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_gateway_api_t));
    if (api == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    api->request = r;
    api->done = ngx_http_ai_gateway_api_done;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_ai_gateway_api_cleanup;
    cln->data = api;

    ngx_http_set_ctx(r, api, ngx_http_ai_gateway_api_module);

    if (!ngx_http_ai_gateway_api_auth(r, aacf)) {
        ngx_http_ai_gateway_api_fail(api, NGX_HTTP_UNAUTHORIZED,
                                     NGX_HTTP_AI_GATEWAY_API_AUTH,
                                     "Authentication error");
        goto answer;
    }

    ngx_http_ai_gateway_api_route(api);

    if (api->code) {
        goto answer;
    }

    ngx_http_ai_gateway_api_query(api);

    if (api->code) {
        goto answer;
    }

    if (api->resource->method == NGX_HTTP_PATCH) {

        if (r->headers_in.content_length_n > NGX_HTTP_AI_GATEWAY_API_MAX_BODY)
        {
            ngx_http_ai_gateway_api_fail(api, NGX_HTTP_BAD_REQUEST,
                                         NGX_HTTP_AI_GATEWAY_API_INVALID,
                                         "The body is too large");
            goto answer;
        }

        r->request_body_in_single_buf = 1;

        rc = ngx_http_read_client_request_body(r,
                                               ngx_http_ai_gateway_api_body);

        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        return NGX_DONE;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_ai_gateway_api_run(api);

answer:

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_ai_gateway_api_send(api);
}


/* "Authorization: Bearer <token>", one of the file's */

static ngx_uint_t
ngx_http_ai_gateway_api_auth(ngx_http_request_t *r,
    ngx_http_ai_gateway_api_loc_conf_t *aacf)
{
    ngx_str_t  token;

    if (aacf->tokens == NULL) {
        return 1;
    }

    if (r->headers_in.authorization == NULL) {
        return 0;
    }

    token = r->headers_in.authorization->value;

    if (ngx_http_ai_gateway_bearer(&token) != NGX_OK) {
        return 0;
    }

    return ngx_http_ai_gateway_tokens_find(aacf->tokens, token.data,
                                           token.len)
           != NULL;
}


/*
 * ".../accounts/{account_id}/ai-gateway/{resource...}": the resource of
 * the table, its gateway's log store, the object's id.
 */

static void
ngx_http_ai_gateway_api_route(ngx_http_ai_gateway_api_t *api)
{
    u_char                              *p, *q, *last, *pp, *pq, *plast;
    ngx_str_t                            name, wild[2], *seg;
    ngx_uint_t                           n, k, w, path_found;
    ngx_http_request_t                  *r;
    ngx_http_ai_gateway_main_conf_t     *amcf;
    ngx_http_ai_gateway_api_resource_t  *res;

    r = api->request;

    seg = ngx_palloc(r->pool,
                     NGX_HTTP_AI_GATEWAY_API_MAX_SEGMENTS * sizeof(ngx_str_t));
    if (seg == NULL) {
        ngx_http_ai_gateway_api_fail(api, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                     NGX_HTTP_AI_GATEWAY_API_INTERNAL,
                                     "Internal error");
        return;
    }

    p = ngx_strnstr(r->uri.data, "/accounts/", r->uri.len);

    if (p == NULL) {
        goto no_route;
    }

    p += sizeof("/accounts/") - 1;
    last = r->uri.data + r->uri.len;

    /* the segments, a trailing "/" let be */

    for (n = 0; p < last; p = q + 1) {
        q = ngx_strlchr(p, last, '/');
        if (q == NULL) {
            q = last;
        }

        if (q == p) {
            if (q + 1 >= last) {
                break;
            }

            goto no_route;
        }

        if (n == NGX_HTTP_AI_GATEWAY_API_MAX_SEGMENTS || q - p > 128) {
            goto no_route;
        }

        for (pp = p; pp < q; pp++) {
            if (!((*pp >= 'a' && *pp <= 'z') || (*pp >= 'A' && *pp <= 'Z')
                  || (*pp >= '0' && *pp <= '9') || *pp == '-' || *pp == '_'
                  || *pp == '.' || *pp == ':' || *pp == '~'))
            {
                goto no_route;
            }
        }

        seg[n].data = p;
        seg[n].len = q - p;
        n++;
    }

    if (n < 3 || seg[1].len != 10
        || ngx_strncmp(seg[1].data, "ai-gateway", 10) != 0)
    {
        goto no_route;
    }

    api->account = seg[0];

    path_found = 0;

    for (res = ngx_http_ai_gateway_api_resources; res->path.len; res++) {

        pp = res->path.data;
        plast = pp + res->path.len;
        w = 0;

        for (k = 2; k < n && pp < plast; k++, pp = pq + 1) {
            pq = ngx_strlchr(pp, plast, '/');
            if (pq == NULL) {
                pq = plast;
            }

            name.data = pp;
            name.len = pq - pp;

            if (name.len == 1 && name.data[0] == '*') {
                if (w < 2) {
                    wild[w++] = seg[k];
                }

                continue;
            }

            if (name.len != seg[k].len
                || ngx_strncmp(name.data, seg[k].data, name.len) != 0)
            {
                break;
            }
        }

        if (k != n || pp < plast) {
            continue;
        }

        path_found = 1;

        if (res->method != r->method) {
            continue;
        }

        api->resource = res;
        api->gateway = (w > 0) ? wild[0] : api->gateway;
        api->id = (w > 1) ? wild[1] : api->id;
        break;
    }

    if (api->resource == NULL) {

        if (path_found) {
            ngx_http_ai_gateway_api_fail(api, NGX_HTTP_NOT_ALLOWED,
                                         NGX_HTTP_AI_GATEWAY_API_METHOD,
                                         "Method not allowed for this "
                                         "endpoint");
            return;
        }

        goto no_route;
    }

    /* the gateway: one of nginx.conf's, with a log store */

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_gateway_module);

    api->target = ngx_http_ai_gateway_log_target(&amcf->log_targets,
                                                 &api->gateway);

    if (api->target == NULL
        || (api->target->account.len
            && (api->target->account.len != api->account.len
                || ngx_strncmp(api->target->account.data, api->account.data,
                               api->account.len) != 0)))
    {
        api->target = NULL;
        ngx_http_ai_gateway_api_fail(api, NGX_HTTP_NOT_FOUND,
                                     NGX_HTTP_AI_GATEWAY_API_NOT_FOUND,
                                     "Gateway not found, or it keeps no "
                                     "logs");
        return;
    }

    return;

no_route:

    ngx_http_ai_gateway_api_fail(api, NGX_HTTP_NOT_FOUND,
                                 NGX_HTTP_AI_GATEWAY_API_NO_ROUTE,
                                 "No route for that URI");
}


/* the query, once: pagination, order, search, filters */

static void
ngx_http_ai_gateway_api_query(ngx_http_ai_gateway_api_t *api)
{
    ngx_int_t            rc;
    ngx_str_t           *v, err;
    ngx_http_request_t  *r;

    r = api->request;

    ngx_str_null(&err);

    rc = ngx_http_ai_gateway_query_args(r->pool, &r->args, &api->args);

    if (rc == NGX_ERROR) {
        goto internal;
    }

    if (rc != NGX_OK) {
        ngx_http_ai_gateway_api_fail(api, NGX_HTTP_BAD_REQUEST,
                                     NGX_HTTP_AI_GATEWAY_API_INVALID,
                                     "Too many query arguments");
        return;
    }

    if (ngx_array_init(&api->filters, r->pool, 4,
                       sizeof(ngx_http_ai_gateway_query_filter_t))
        != NGX_OK)
    {
        goto internal;
    }

    api->page = 1;
    api->per_page = NGX_HTTP_AI_GATEWAY_API_PER_PAGE;
    api->desc = 1;

    v = ngx_http_ai_gateway_query_arg(&api->args, "page");

    if (v && ngx_http_ai_gateway_api_number(v, 1, 1000000, &api->page)
             != NGX_OK)
    {
        ngx_http_ai_gateway_api_fail(api, NGX_HTTP_BAD_REQUEST,
                                     NGX_HTTP_AI_GATEWAY_API_INVALID,
                                     "Invalid page: expected an integer "
                                     "from 1");
        return;
    }

    v = ngx_http_ai_gateway_query_arg(&api->args, "per_page");

    if (v && ngx_http_ai_gateway_api_number(v, 1,
                                         NGX_HTTP_AI_GATEWAY_API_MAX_PER_PAGE,
                                         &api->per_page)
             != NGX_OK)
    {
        ngx_http_ai_gateway_api_fail(api, NGX_HTTP_BAD_REQUEST,
                                     NGX_HTTP_AI_GATEWAY_API_INVALID,
                                     "Invalid per_page: expected an "
                                     "integer from 1 to 50");
        return;
    }

    if (api->resource->orders) {
        v = ngx_http_ai_gateway_query_arg(&api->args, "order_by");

        if (v) {
            rc = ngx_http_ai_gateway_query_enum(r->pool,
                                                api->resource->orders, v,
                                                &err);
            if (rc == NGX_ERROR) {
                goto internal;
            }

            if (rc < 0) {
                goto invalid;
            }

            api->order = rc;
            api->ordered = 1;
        }

        v = ngx_http_ai_gateway_query_arg(&api->args, "order_by_direction");

        if (v == NULL) {
            /* deprecated */
            v = ngx_http_ai_gateway_query_arg(&api->args, "direction");
        }

        if (v) {
            rc = ngx_http_ai_gateway_query_enum(r->pool,
                                          ngx_http_ai_gateway_api_directions,
                                          v, &err);
            if (rc == NGX_ERROR) {
                goto internal;
            }

            if (rc < 0) {
                goto invalid;
            }

            api->desc = (rc == 1);
        }

        api->search = ngx_http_ai_gateway_query_arg(&api->args, "search");
    }

    if (api->resource->keys) {
        rc = ngx_http_ai_gateway_query_filters(r->pool, &api->args,
                                               api->resource->keys,
                                               &api->filters, &err);
        if (rc == NGX_ERROR) {
            goto internal;
        }

        if (rc != NGX_OK) {
            goto invalid;
        }
    }

    return;

invalid:

    api->status = NGX_HTTP_BAD_REQUEST;
    api->code = NGX_HTTP_AI_GATEWAY_API_INVALID;
    api->message = err;
    return;

internal:

    ngx_http_ai_gateway_api_fail(api, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                 NGX_HTTP_AI_GATEWAY_API_INTERNAL,
                                 "Internal error");
}


static ngx_int_t
ngx_http_ai_gateway_api_number(ngx_str_t *s, ngx_uint_t min, ngx_uint_t max,
    ngx_uint_t *n)
{
    ngx_int_t  v;

    v = (s->len && s->len <= 9) ? ngx_atoi(s->data, s->len) : NGX_ERROR;

    if (v == NGX_ERROR || (ngx_uint_t) v < min || (ngx_uint_t) v > max) {
        return NGX_DECLINED;
    }

    *n = v;

    return NGX_OK;
}


/* a PATCH body is in: in memory, at most NGX_HTTP_AI_GATEWAY_API_MAX_BODY */

static void
ngx_http_ai_gateway_api_body(ngx_http_request_t *r)
{
    u_char                     *p;
    size_t                      len;
    ngx_chain_t                *cl;
    ngx_http_ai_gateway_api_t  *api;

    api = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_api_module);

    len = 0;

    if (r->request_body && r->request_body->temp_file) {
        len = NGX_HTTP_AI_GATEWAY_API_MAX_BODY + 1;

    } else if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            len += cl->buf->last - cl->buf->pos;
        }
    }

    if (len > NGX_HTTP_AI_GATEWAY_API_MAX_BODY) {
        ngx_http_ai_gateway_api_fail(api, NGX_HTTP_BAD_REQUEST,
                                     NGX_HTTP_AI_GATEWAY_API_INVALID,
                                     "The body is too large");
        ngx_http_finalize_request(r, ngx_http_ai_gateway_api_send(api));
        return;
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    api->body.data = p;
    api->body.len = len;

    for (cl = r->request_body ? r->request_body->bufs : NULL;
         cl;
         cl = cl->next)
    {
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    *p = '\0';

    ngx_http_finalize_request(r, ngx_http_ai_gateway_api_run(api));
}


/* the resource's turn: its answer now, or later */

static ngx_int_t
ngx_http_ai_gateway_api_run(ngx_http_ai_gateway_api_t *api)
{
    ngx_int_t            rc;
    ngx_http_request_t  *r;

    r = api->request;

    rc = api->resource->handler(api);

    if (rc == NGX_AGAIN) {
        /* a client that leaves ends the wait (the cleanup cancels it) */

        r->main->count++;
        r->read_event_handler = ngx_http_test_reading;
        r->write_event_handler = ngx_http_request_empty_handler;

        return NGX_DONE;
    }

    if (rc != NGX_OK) {
        ngx_http_ai_gateway_api_fail(api, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                     NGX_HTTP_AI_GATEWAY_API_INTERNAL,
                                     "Internal error");
    }

    return ngx_http_ai_gateway_api_send(api);
}


/* a resource that waited has its answer (called from an event) */

static void
ngx_http_ai_gateway_api_done(ngx_http_ai_gateway_api_t *api)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = api->request;
    c = r->connection;

    api->finished = 1;

    r->read_event_handler = ngx_http_block_reading;

    ngx_http_finalize_request(r, ngx_http_ai_gateway_api_send(api));

    ngx_http_run_posted_requests(c);
}


/* the request ends: its resource lets go of what it holds */

static void
ngx_http_ai_gateway_api_cleanup(void *data)
{
    ngx_http_ai_gateway_api_t *api = data;

    if (api->cancel) {
        api->cancel(api);
    }
}


static ngx_int_t
ngx_http_ai_gateway_api_send(ngx_http_ai_gateway_api_t *api)
{
    ngx_int_t            rc;
    ngx_str_t            body;
    ngx_buf_t           *b;
    ngx_chain_t          out;
    ngx_http_request_t  *r;

    r = api->request;

    api->finished = 1;

    if (api->is_raw && api->code == 0) {
        body = api->raw;
        r->headers_out.content_type = api->content_type;

    } else {
        if (ngx_http_ai_gateway_api_envelope(api, &body) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_str_set(&r->headers_out.content_type, "application/json");
    }

    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.status = api->status ? api->status : NGX_HTTP_OK;
    r->headers_out.content_length_n = body.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body.data;
    b->last = body.data + body.len;
    b->memory = body.len ? 1 : 0;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * The v4 envelope: the result (the resource's JSON, or an empty object)
 * and, for lists, result_info; an error in the one shape of every error.
 */

static ngx_int_t
ngx_http_ai_gateway_api_envelope(ngx_http_ai_gateway_api_t *api,
    ngx_str_t *out)
{
    u_char                     *p;
    size_t                      len;
    ngx_http_request_t         *r;
    ngx_http_ai_gateway_gen_t   gen;

    static u_char  head[] = "{\"success\":true,\"errors\":[],"
                            "\"messages\":[],\"result\":";

    r = api->request;

    if (api->code) {
        if (ngx_http_ai_gateway_gen_init(&gen, r->pool) != NGX_OK) {
            return NGX_ERROR;
        }

        ngx_http_ai_gateway_gen_map(&gen);
        ngx_http_ai_gateway_gen_literal(&gen, "success");
        ngx_http_ai_gateway_gen_bool(&gen, 0);
        ngx_http_ai_gateway_gen_literal(&gen, "errors");
        ngx_http_ai_gateway_gen_array(&gen);
        ngx_http_ai_gateway_gen_map(&gen);
        ngx_http_ai_gateway_gen_literal(&gen, "code");
        ngx_http_ai_gateway_gen_int(&gen, api->code);
        ngx_http_ai_gateway_gen_literal(&gen, "message");
        ngx_http_ai_gateway_gen_string(&gen, &api->message);
        ngx_http_ai_gateway_gen_map_end(&gen);
        ngx_http_ai_gateway_gen_array_end(&gen);
        ngx_http_ai_gateway_gen_literal(&gen, "messages");
        ngx_http_ai_gateway_gen_array(&gen);
        ngx_http_ai_gateway_gen_array_end(&gen);
        ngx_http_ai_gateway_gen_literal(&gen, "result");
        ngx_http_ai_gateway_gen_null(&gen);
        ngx_http_ai_gateway_gen_map_end(&gen);

        return (ngx_http_ai_gateway_gen_done(&gen, out) == NGX_OK)
               ? NGX_OK : NGX_ERROR;
    }

    len = sizeof(head) - 1
          + (api->result.len ? api->result.len : sizeof("{}") - 1)
          + sizeof(",\"result_info\":{\"page\":,\"per_page\":"
                   ",\"count\":,\"total_count\":,\"total_pages\":}")
          + 5 * NGX_INT_T_LEN + 1;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;

    p = ngx_cpymem(p, head, sizeof(head) - 1);

    if (api->result.len) {
        p = ngx_cpymem(p, api->result.data, api->result.len);

    } else {
        p = ngx_cpymem(p, "{}", 2);
    }

    if (api->info) {
        p = ngx_sprintf(p, ",\"result_info\":{\"page\":%ui,\"per_page\":"
                        "%ui,\"count\":%ui,\"total_count\":%ui,"
                        "\"total_pages\":%ui}",
                        api->page, api->per_page, api->count, api->total,
                        (api->total + api->per_page - 1) / api->per_page);
    }

    *p++ = '}';

    out->len = p - out->data;

    return NGX_OK;
}
