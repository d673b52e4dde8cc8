
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_md5.h>

#include "ngx_http_ai_gateway_module.h"


/*
 * The dashboard (docs/dashboard.md): a page served by nginx from the
 * module itself,
 *
 *   location /dashboard/ {
 *       ai_gateway_dashboard api=/client/v4 account=acct gateway=gw;
 *   }
 *
 * The page's files (dashboard/ at the top of the source tree: HTML, CSS,
 * JavaScript) are compiled in: util/embed.sh turns them into the byte
 * arrays of ngx_http_ai_gateway_dashboard_files.h when nginx is
 * configured (the "config" script) and when the Makefile builds.  The
 * page reads the management API (the location of "ai_gateway_api") from
 * the browser, with the API token its user types; the module serves the
 * files and "config.json", the directive's parameters (the API's base
 * path, the account and gateway ids the page starts with), nothing else.
 *
 * Every answer has an ETag (the file's MD5: nginx's not_modified filter
 * answers If-None-Match), "Cache-Control: no-cache" (revalidated: a new
 * build is seen at once), and a Content-Security-Policy that lets the
 * page run only its own script and style and talk only to its own
 * origin: no inline script, no frame, no form, no plugin.  The page
 * renders every value from the API as text, never as HTML.
 */


typedef struct {
    ngx_str_t                      name;
    ngx_str_t                      type;
    u_char                        *data;
    size_t                         len;
    u_char                         etag[34];   /* "md5 in hex" */
} ngx_http_ai_gateway_dashboard_file_t;


#include "ngx_http_ai_gateway_dashboard_files.h"


typedef struct {
    ngx_str_t                      config;     /* config.json */
    u_char                         etag[34];
} ngx_http_ai_gateway_dashboard_loc_conf_t;


static void *ngx_http_ai_gateway_dashboard_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ai_gateway_dashboard(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_uint_t ngx_http_ai_gateway_dashboard_safe(ngx_str_t *s,
    ngx_uint_t path);
static void ngx_http_ai_gateway_dashboard_etag(u_char *etag, u_char *data,
    size_t len);
static ngx_int_t ngx_http_ai_gateway_dashboard_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_gateway_dashboard_header(ngx_http_request_t *r,
    char *name, char *value);


static ngx_command_t  ngx_http_ai_gateway_dashboard_commands[] = {

    { ngx_string("ai_gateway_dashboard"),
      NGX_HTTP_LOC_CONF|NGX_CONF_ANY,
      ngx_http_ai_gateway_dashboard,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ai_gateway_dashboard_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ai_gateway_dashboard_create_loc_conf, /* create location conf */
    NULL                                   /* merge location conf */
};


ngx_module_t  ngx_http_ai_gateway_dashboard_module = {
    NGX_MODULE_V1,
    &ngx_http_ai_gateway_dashboard_module_ctx, /* module context */
    ngx_http_ai_gateway_dashboard_commands,    /* module directives */
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


/*
 * Only the page's own origin, its own script and style; images as data:
 * URLs (none today); nothing may frame it.
 */

static char  ngx_http_ai_gateway_dashboard_csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";


static void *
ngx_http_ai_gateway_dashboard_create_loc_conf(ngx_conf_t *cf)
{
    return ngx_pcalloc(cf->pool,
                       sizeof(ngx_http_ai_gateway_dashboard_loc_conf_t));
}


/*
 * ai_gateway_dashboard [api=/client/v4] [account=id] [gateway=id];
 * config.json is made now, once.
 */

static char *
ngx_http_ai_gateway_dashboard(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_gateway_dashboard_loc_conf_t *adcf = conf;

    ngx_str_t                            *value, api, account, gateway;
    ngx_uint_t                            i;
    ngx_http_core_loc_conf_t             *clcf;
    ngx_http_ai_gateway_gen_t             gen;
    ngx_http_ai_gateway_dashboard_file_t  *f;

    if (adcf->config.len) {
        return "is duplicate";
    }

    ngx_str_set(&api, "/client/v4");
    ngx_str_null(&account);
    ngx_str_null(&gateway);

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "api=", 4) == 0) {
            api.data = value[i].data + 4;
            api.len = value[i].len - 4;

            if (api.len == 0 || api.len > 256 || api.data[0] != '/'
                || !ngx_http_ai_gateway_dashboard_safe(&api, 1))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": the API's base is a "
                                   "path on this server, e.g. "
                                   "\"api=/client/v4\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            while (api.len > 1 && api.data[api.len - 1] == '/') {
                api.len--;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "account=", 8) == 0) {
            account.data = value[i].data + 8;
            account.len = value[i].len - 8;

            if (account.len > 64
                || !ngx_http_ai_gateway_dashboard_safe(&account, 0))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": an account id of "
                                   "letters, digits, \"-_.\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "gateway=", 8) == 0) {
            gateway.data = value[i].data + 8;
            gateway.len = value[i].len - 8;

            if (gateway.len > 64
                || !ngx_http_ai_gateway_dashboard_safe(&gateway, 0))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": a gateway id of "
                                   "letters, digits, \"-_.\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_ai_gateway_gen_init(&gen, cf->pool) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_http_ai_gateway_gen_map(&gen);
    ngx_http_ai_gateway_gen_literal(&gen, "api");
    ngx_http_ai_gateway_gen_string(&gen, &api);
    ngx_http_ai_gateway_gen_literal(&gen, "account");
    ngx_http_ai_gateway_gen_string(&gen, &account);
    ngx_http_ai_gateway_gen_literal(&gen, "gateway");
    ngx_http_ai_gateway_gen_string(&gen, &gateway);
    ngx_http_ai_gateway_gen_map_end(&gen);

    if (ngx_http_ai_gateway_gen_done(&gen, &adcf->config) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_http_ai_gateway_dashboard_etag(adcf->etag, adcf->config.data,
                                       adcf->config.len);

    /* the files' ETags, the same in every cycle */

    for (f = ngx_http_ai_gateway_dashboard_files; f->name.len; f++) {
        if (f->etag[0] == '\0') {
            ngx_http_ai_gateway_dashboard_etag(f->etag, f->data, f->len);
        }
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_ai_gateway_dashboard_handler;

    return NGX_CONF_OK;
}


static ngx_uint_t
ngx_http_ai_gateway_dashboard_safe(ngx_str_t *s, ngx_uint_t path)
{
    u_char  c;
    size_t  i;

    for (i = 0; i < s->len; i++) {
        c = s->data[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')
        {
            continue;
        }

        if (path && c == '/' && !(i && s->data[i - 1] == '/')) {
            continue;
        }

        return 0;
    }

    return 1;
}


static void
ngx_http_ai_gateway_dashboard_etag(u_char *etag, u_char *data, size_t len)
{
    u_char     md[16];
    ngx_md5_t  md5;

    ngx_md5_init(&md5);
    ngx_md5_update(&md5, data, len);
    ngx_md5_final(md, &md5);

    etag[0] = '"';
    ngx_hex_dump(etag + 1, md, 16);
    etag[33] = '"';
}


static ngx_int_t
ngx_http_ai_gateway_dashboard_handler(ngx_http_request_t *r)
{
    u_char                                    *p, *etag;
    ngx_int_t                                  rc;
    ngx_str_t                                  name, type, body;
    ngx_buf_t                                 *b;
    ngx_chain_t                                out;
    ngx_table_elt_t                           *h;
    ngx_http_ai_gateway_dashboard_file_t      *f;
    ngx_http_ai_gateway_dashboard_loc_conf_t  *adcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    adcf = ngx_http_get_module_loc_conf(r,
                                        ngx_http_ai_gateway_dashboard_module);

    /* the name after the last "/": a file, config.json, or the page */

    p = r->uri.data + r->uri.len;

    while (p > r->uri.data && p[-1] != '/') {
        p--;
    }

    name.data = p;
    name.len = r->uri.data + r->uri.len - p;

    if (name.len == 0) {
        ngx_str_set(&name, "index.html");
    }

    if (name.len == 11 && ngx_strncmp(name.data, "config.json", 11) == 0) {
        body = adcf->config;
        ngx_str_set(&type, "application/json");
        etag = adcf->etag;

    } else {
        for (f = ngx_http_ai_gateway_dashboard_files; f->name.len; f++) {
            if (f->name.len == name.len
                && ngx_strncmp(f->name.data, name.data, name.len) == 0)
            {
                break;
            }
        }

        if (f->name.len == 0) {
            return NGX_HTTP_NOT_FOUND;
        }

        body.data = f->data;
        body.len = f->len;
        type = f->type;
        etag = f->etag;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = body.len;
    r->headers_out.content_type = type;
    r->headers_out.content_type_len = type.len;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "ETag");
    h->value.data = etag;
    h->value.len = 34;
    r->headers_out.etag = h;

    if (ngx_http_ai_gateway_dashboard_header(r, "Cache-Control", "no-cache")
        != NGX_OK
        || ngx_http_ai_gateway_dashboard_header(r, "Content-Security-Policy",
                                          ngx_http_ai_gateway_dashboard_csp)
           != NGX_OK
        || ngx_http_ai_gateway_dashboard_header(r, "X-Content-Type-Options",
                                                "nosniff")
           != NGX_OK
        || ngx_http_ai_gateway_dashboard_header(r, "X-Frame-Options", "DENY")
           != NGX_OK
        || ngx_http_ai_gateway_dashboard_header(r, "Referrer-Policy",
                                                "no-referrer")
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = body.data;
    b->last = body.data + body.len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static ngx_int_t
ngx_http_ai_gateway_dashboard_header(ngx_http_request_t *r, char *name,
    char *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value.data = (u_char *) value;
    h->value.len = ngx_strlen(value);

    return NGX_OK;
}
