
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/rand.h>

#include "ngx_http_ai_gateway_module.h"
#include "ngx_http_ai_gateway_metrics.h"
#include "ngx_http_ai_gateway_otel.h"
#include "ngx_http_ai_gateway_version.h"


/*
 * OpenTelemetry traces (docs/otel.md): each request is a span
 * "ai_gateway.request", each of its attempts (retries, a request timeout)
 * a child span "ai_gateway.attempt" and each Universal Endpoint step a
 * child span "ai_gateway.step", exported as OTLP/JSON
 * (ExportTraceServiceRequest) to the collectors that
 * ai_gateway_otel_exporter names.
 *
 * The spans are made from the log records log.c builds in the log phase
 * (the same route, usage, cost, status and payloads, redacted as a record
 * is, and only when the request's payload logging allows it): log.c calls
 * ngx_http_ai_gateway_otel_span() with each record, and
 * ngx_http_ai_gateway_otel_end() once the request's records are made.
 * The trace is the client's (cf-aig-otel-trace-id and
 * cf-aig-otel-parent-span-id, else W3C traceparent), or a new one; ids the
 * client sends are parsed into bytes and printed again, never copied.
 * With "logs", the records log.c would store are also sent as OTLP log
 * records (ExportLogsServiceRequest): an exporter of its own, made by the
 * same directive, with the path of the logs.
 *
 * A span is a JSON text, copied into a worker's queue of its exporter
 * (bounded in spans and in bytes: past either, the span is dropped and
 * counted).  A batch leaves when the queue holds "batch" spans, or when
 * the "flush" timer fires: one POST on one connection per exporter and
 * worker, made with ngx_event_connect_peer() to the address resolved at
 * configuration time, in TLS with the certificate and its name verified
 * for https, kept alive after a response with a length.  The response's
 * status is read: a 2xx counts the batch's spans exported, anything else
 * (a status, a timeout, a refused connection) counts them dropped, with an
 * error line at most every NGX_HTTP_AI_GATEWAY_OTEL_ERROR_EVERY seconds.
 * Nothing waits for an export: a client's request only puts a span in a
 * queue.  At a graceful shutdown, the idle connection closed by nginx
 * takes the queue away first (the batch in flight keeps the worker, at
 * most its timeout); what is left when the worker exits is counted
 * dropped.  Every count goes through ngx_http_ai_gateway_otel_count().
 */


#define NGX_HTTP_AI_GATEWAY_OTEL_BATCH        64
#define NGX_HTTP_AI_GATEWAY_OTEL_QUEUE        2048
#define NGX_HTTP_AI_GATEWAY_OTEL_QUEUE_SIZE   (4 * 1024 * 1024)
#define NGX_HTTP_AI_GATEWAY_OTEL_FLUSH        5000
#define NGX_HTTP_AI_GATEWAY_OTEL_TIMEOUT      5000
#define NGX_HTTP_AI_GATEWAY_OTEL_AUTH_MAX     4096
#define NGX_HTTP_AI_GATEWAY_OTEL_RESPONSE     4096
#define NGX_HTTP_AI_GATEWAY_OTEL_ERROR_EVERY  10

#define NGX_HTTP_AI_GATEWAY_OTEL_SERVER       2     /* SPAN_KIND_SERVER */
#define NGX_HTTP_AI_GATEWAY_OTEL_CLIENT       3     /* SPAN_KIND_CLIENT */


typedef struct ngx_http_ai_gateway_otel_item_s
    ngx_http_ai_gateway_otel_item_t;

struct ngx_http_ai_gateway_otel_item_s {
    ngx_http_ai_gateway_otel_item_t   *next;
    size_t                             len;
    u_char                             data[1];
};


typedef struct {
    /* the configuration */
    ngx_str_t                          url;
    ngx_addr_t                         addr;
    ngx_str_t                          host;       /* SNI, verified name */
    ngx_str_t                          head;       /* but Content-Length */
    ngx_str_t                          trusted;
    ngx_ssl_t                         *ssl;
    ngx_uint_t                         batch;
    ngx_uint_t                         queue;
    size_t                             queue_size;
    ngx_msec_t                         flush;
    ngx_msec_t                         timeout;

    /* a worker's */
    ngx_log_t                         *log;
    ngx_http_ai_gateway_otel_item_t   *first;
    ngx_http_ai_gateway_otel_item_t  **last;
    ngx_uint_t                         queued;
    size_t                             bytes;
    ngx_event_t                        flush_ev;
    ngx_peer_connection_t              peer;
    ngx_connection_t                  *c;
    ngx_pool_t                        *pool;       /* the batch's */
    u_char                            *start;      /* the request */
    u_char                            *pos;        /* what is left */
    u_char                            *end;
    ngx_uint_t                         inflight;   /* the batch's spans */
    ngx_uint_t                         status;
    off_t                              rest;       /* of the body */
    off_t                              chunk;      /* of the chunk */
    ngx_uint_t                         chunk_state;
    size_t                             body;       /* its start in in */
    size_t                             in_len;
    time_t                             error_time;
    u_char                             in[NGX_HTTP_AI_GATEWAY_OTEL_RESPONSE];
    unsigned                           busy:1;
    unsigned                           reused:1;
    unsigned                           header_done:1;
    unsigned                           close:1;
    unsigned                           chunked:1;
    unsigned                           logs:1;     /* log records */
    unsigned                           backoff:1;  /* the last one failed:
                                                      the timer sends */
} ngx_http_ai_gateway_otel_exporter_t;


typedef struct {
    ngx_array_t                        exporters;  /* of exporter *: all */
} ngx_http_ai_gateway_otel_main_conf_t;


typedef struct {
    ngx_array_t                       *exporters;  /* of exporter * */
} ngx_http_ai_gateway_otel_loc_conf_t;


/* a request's trace */

typedef struct {
    u_char                             trace[16];
    u_char                             parent[8];
    u_char                             span[8];    /* the request's */
    ngx_array_t                        spans;      /* of ngx_str_t */
    ngx_array_t                        logs;       /* of ngx_str_t */
    ngx_http_ai_gateway_log_record_t   answer;     /* the last attempt's */
    unsigned                           has_parent:1;
    unsigned                           has_answer:1;
    unsigned                           ok:1;
} ngx_http_ai_gateway_otel_ctx_t;


static ngx_int_t ngx_http_ai_gateway_otel_init_process(ngx_cycle_t *cycle);
static void ngx_http_ai_gateway_otel_exit_process(ngx_cycle_t *cycle);
static void *ngx_http_ai_gateway_otel_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_ai_gateway_otel_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ai_gateway_otel_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_ai_gateway_otel_exporter(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_ai_gateway_otel_url(ngx_conf_t *cf,
    ngx_http_ai_gateway_otel_exporter_t *ex, ngx_str_t *url, ngx_str_t *path);
static ngx_int_t ngx_http_ai_gateway_otel_auth(ngx_conf_t *cf,
    ngx_str_t *path, ngx_str_t *value);
static ngx_int_t ngx_http_ai_gateway_otel_ssl(ngx_conf_t *cf,
    ngx_http_ai_gateway_otel_exporter_t *ex);
static ngx_http_ai_gateway_otel_ctx_t *ngx_http_ai_gateway_otel_ctx(
    ngx_http_request_t *mr);
static void ngx_http_ai_gateway_otel_context(ngx_http_request_t *mr,
    ngx_http_ai_gateway_otel_ctx_t *octx);
static ngx_table_elt_t *ngx_http_ai_gateway_otel_header(ngx_http_request_t *r,
    const char *name);
static ngx_int_t ngx_http_ai_gateway_otel_hex(u_char *dst, u_char *src,
    size_t n);
static ngx_int_t ngx_http_ai_gateway_otel_gen(ngx_pool_t *pool,
    ngx_http_ai_gateway_otel_ctx_t *octx, ngx_http_ai_gateway_ctx_t *ctx,
    ngx_http_ai_gateway_ctx_t *mctx, ngx_uint_t attempt, u_char *span,
    ngx_http_ai_gateway_log_record_t *rec, ngx_str_t *req, ngx_str_t *resp,
    ngx_str_t *out);
static ngx_int_t ngx_http_ai_gateway_otel_gen_log(ngx_pool_t *pool,
    ngx_http_ai_gateway_otel_ctx_t *octx, ngx_http_ai_gateway_ctx_t *ctx,
    ngx_http_ai_gateway_ctx_t *mctx, ngx_uint_t attempt, u_char *span,
    ngx_http_ai_gateway_log_record_t *rec, ngx_str_t *req, ngx_str_t *resp,
    ngx_str_t *out);
static void ngx_http_ai_gateway_otel_attrs(ngx_http_ai_gateway_gen_t *gen,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_ctx_t *mctx,
    ngx_uint_t attempt, ngx_http_ai_gateway_log_record_t *rec,
    ngx_str_t *req, ngx_str_t *resp, ngx_uint_t payload);
static ngx_uint_t ngx_http_ai_gateway_otel_logs(
    ngx_http_ai_gateway_otel_loc_conf_t *olcf);
static ngx_int_t ngx_http_ai_gateway_otel_head(ngx_conf_t *cf,
    ngx_http_ai_gateway_otel_exporter_t *ex, ngx_str_t *path,
    ngx_array_t *headers, ngx_str_t *auth);
static void ngx_http_ai_gateway_otel_id(ngx_http_ai_gateway_gen_t *gen,
    const char *key, u_char *id, size_t n);
static void ngx_http_ai_gateway_otel_nanos(ngx_http_ai_gateway_gen_t *gen,
    const char *key, uint64_t ms);
static void ngx_http_ai_gateway_otel_attr_str(ngx_http_ai_gateway_gen_t *gen,
    const char *key, ngx_str_t *value);
static void ngx_http_ai_gateway_otel_attr_int(ngx_http_ai_gateway_gen_t *gen,
    const char *key, int64_t n);
static void ngx_http_ai_gateway_otel_attr_double(
    ngx_http_ai_gateway_gen_t *gen, const char *key, double n);
static void ngx_http_ai_gateway_otel_attr_bool(ngx_http_ai_gateway_gen_t *gen,
    const char *key, ngx_uint_t b);
static void ngx_http_ai_gateway_otel_metadata(ngx_http_ai_gateway_gen_t *gen,
    ngx_str_t *metadata);
static void ngx_http_ai_gateway_otel_queue(
    ngx_http_ai_gateway_otel_exporter_t *ex, ngx_str_t *span);
static void ngx_http_ai_gateway_otel_flush_handler(ngx_event_t *ev);
static void ngx_http_ai_gateway_otel_send(
    ngx_http_ai_gateway_otel_exporter_t *ex);
static ngx_int_t ngx_http_ai_gateway_otel_batch(
    ngx_http_ai_gateway_otel_exporter_t *ex);
static void ngx_http_ai_gateway_otel_connect(
    ngx_http_ai_gateway_otel_exporter_t *ex);
static void ngx_http_ai_gateway_otel_connected(ngx_event_t *ev);
static void ngx_http_ai_gateway_otel_handshake(ngx_connection_t *c);
static ngx_int_t ngx_http_ai_gateway_otel_check_host(ngx_connection_t *c,
    ngx_str_t *host);
static void ngx_http_ai_gateway_otel_write(ngx_event_t *wev);
static void ngx_http_ai_gateway_otel_read(ngx_event_t *rev);
static ngx_int_t ngx_http_ai_gateway_otel_parse(
    ngx_http_ai_gateway_otel_exporter_t *ex);
static ngx_int_t ngx_http_ai_gateway_otel_chunked(
    ngx_http_ai_gateway_otel_exporter_t *ex, u_char *p, u_char *last);
static void ngx_http_ai_gateway_otel_idle(ngx_event_t *ev);
static void ngx_http_ai_gateway_otel_dummy(ngx_event_t *ev);
static void ngx_http_ai_gateway_otel_done(
    ngx_http_ai_gateway_otel_exporter_t *ex, ngx_uint_t ok, const char *why);
static void ngx_http_ai_gateway_otel_close(
    ngx_http_ai_gateway_otel_exporter_t *ex);


static ngx_command_t  ngx_http_ai_gateway_otel_commands[] = {

    { ngx_string("ai_gateway_otel_exporter"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ai_gateway_otel_exporter,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ai_gateway_otel_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_ai_gateway_otel_create_main_conf, /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ai_gateway_otel_create_loc_conf, /* create location conf */
    ngx_http_ai_gateway_otel_merge_loc_conf   /* merge location conf */
};


ngx_module_t  ngx_http_ai_gateway_otel_module = {
    NGX_MODULE_V1,
    &ngx_http_ai_gateway_otel_module_ctx,  /* module context */
    ngx_http_ai_gateway_otel_commands,     /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_ai_gateway_otel_init_process, /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_ai_gateway_otel_exit_process, /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* a worker's counts */

static ngx_uint_t  ngx_http_ai_gateway_otel_exported;
static ngx_uint_t  ngx_http_ai_gateway_otel_dropped;


static ngx_str_t  ngx_http_ai_gateway_otel_traces = ngx_string("/v1/traces");


/*
 * Every count of spans exported or dropped: the one place the metrics
 * (ngx_http_ai_gateway_metrics_otel()) are to be told.
 */

void
ngx_http_ai_gateway_otel_count(ngx_uint_t exported, ngx_uint_t dropped)
{
    ngx_http_ai_gateway_otel_exported += exported;
    ngx_http_ai_gateway_otel_dropped += dropped;

    /* ai_gateway_otel_spans_exported_total, ..._dropped_total */
    ngx_http_ai_gateway_metrics_otel(exported, dropped);
}


static void *
ngx_http_ai_gateway_otel_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ai_gateway_otel_main_conf_t  *omcf;

    omcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_gateway_otel_main_conf_t));
    if (omcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&omcf->exporters, cf->pool, 2,
                       sizeof(ngx_http_ai_gateway_otel_exporter_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return omcf;
}


static void *
ngx_http_ai_gateway_otel_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ai_gateway_otel_loc_conf_t  *olcf;

    olcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_gateway_otel_loc_conf_t));
    if (olcf == NULL) {
        return NULL;
    }

    olcf->exporters = NGX_CONF_UNSET_PTR;

    return olcf;
}


/* the exporters of a level replace those it would inherit */

static char *
ngx_http_ai_gateway_otel_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_ai_gateway_otel_loc_conf_t *prev = parent;
    ngx_http_ai_gateway_otel_loc_conf_t *conf = child;

    ngx_conf_merge_ptr_value(conf->exporters, prev->exporters, NULL);

    return NGX_CONF_OK;
}


/*
 * ai_gateway_otel_exporter url [header=Name:Value] ...
 *     [authorization_file=path] [trusted_certificate=file] [batch=N]
 *     [flush=time] [queue=N] [queue_size=size] [timeout=time];
 * ai_gateway_otel_exporter off;
 */

static char *
ngx_http_ai_gateway_otel_exporter(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_gateway_otel_loc_conf_t *olcf = conf;

    u_char                                *colon;
    ssize_t                                size;
    ngx_int_t                              n;
    ngx_str_t                             *value, s, path, auth, name, val;
    ngx_str_t                              logs;
    ngx_uint_t                             i;
    ngx_array_t                            headers;
    ngx_keyval_t                          *kv;
    ngx_http_ai_gateway_otel_exporter_t   *ex, *lx, **exp;
    ngx_http_ai_gateway_otel_main_conf_t  *omcf;

    value = cf->args->elts;

    if (value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0) {

        if (cf->args->nelts != 2 || olcf->exporters != NGX_CONF_UNSET_PTR) {
            return "is invalid";
        }

        olcf->exporters = NULL;
        return NGX_CONF_OK;
    }

    if (olcf->exporters == NULL) {
        return "is combined with \"off\"";
    }

    if (olcf->exporters == NGX_CONF_UNSET_PTR) {
        olcf->exporters = ngx_array_create(cf->pool, 2,
                                 sizeof(ngx_http_ai_gateway_otel_exporter_t *));
        if (olcf->exporters == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    ex = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_gateway_otel_exporter_t));
    if (ex == NULL) {
        return NGX_CONF_ERROR;
    }

    ex->batch = NGX_CONF_UNSET_UINT;
    ex->queue = NGX_CONF_UNSET_UINT;
    ex->queue_size = NGX_CONF_UNSET_SIZE;
    ex->flush = NGX_CONF_UNSET_MSEC;
    ex->timeout = NGX_CONF_UNSET_MSEC;

    if (ngx_array_init(&headers, cf->pool, 4, sizeof(ngx_keyval_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    ngx_str_null(&auth);
    ngx_str_null(&logs);

    if (ngx_http_ai_gateway_otel_url(cf, ex, &value[1], &path) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "header=", 7) == 0) {
            s.data = value[i].data + 7;
            s.len = value[i].len - 7;

            colon = ngx_strlchr(s.data, s.data + s.len, ':');

            if (colon == NULL) {
                goto invalid;
            }

            name.data = s.data;
            name.len = colon - s.data;
            val.data = colon + 1;
            val.len = s.data + s.len - val.data;

            while (val.len && val.data[0] == ' ') {
                val.data++;
                val.len--;
            }

            if (name.len == 0
                || ngx_http_ai_gateway_check_name(name.data, name.len)
                   != NGX_OK
                || ngx_http_ai_gateway_check_value(val.data, val.len)
                   != NGX_OK)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid header name or value in \"%V\" "
                                   "of \"%V\" directive", &value[i],
                                   &value[0]);
                return NGX_CONF_ERROR;
            }

            /* the exporter's own headers are not replaced */

            if ((name.len == 4
                 && ngx_strncasecmp(name.data, (u_char *) "host", 4) == 0)
                || (name.len == 10
                    && ngx_strncasecmp(name.data, (u_char *) "connection",
                                       10) == 0)
                || (name.len == 12
                    && ngx_strncasecmp(name.data, (u_char *) "content-type",
                                       12) == 0)
                || (name.len == 14
                    && ngx_strncasecmp(name.data, (u_char *) "content-length",
                                       14) == 0)
                || (name.len == 17
                    && ngx_strncasecmp(name.data,
                                       (u_char *) "transfer-encoding", 17)
                       == 0))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "header \"%V\" of \"%V\" directive is set "
                                   "by the exporter itself", &name,
                                   &value[0]);
                return NGX_CONF_ERROR;
            }

            kv = ngx_array_push(&headers);
            if (kv == NULL) {
                return NGX_CONF_ERROR;
            }

            kv->key = name;
            kv->value = val;
            continue;
        }

        if (ngx_strncmp(value[i].data, "authorization_file=", 19) == 0) {
            s.data = value[i].data + 19;
            s.len = value[i].len - 19;

            if (auth.data) {
                goto duplicate;
            }

            if (ngx_http_ai_gateway_otel_auth(cf, &s, &auth) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "trusted_certificate=", 20) == 0) {
            if (ex->trusted.data) {
                goto duplicate;
            }

            ex->trusted.data = value[i].data + 20;
            ex->trusted.len = value[i].len - 20;

            if (ex->trusted.len == 0) {
                goto invalid;
            }

            continue;
        }

        if ((value[i].len == 4
             && ngx_strncmp(value[i].data, "logs", 4) == 0)
            || ngx_strncmp(value[i].data, "logs=", 5) == 0)
        {
            if (logs.data) {
                goto duplicate;
            }

            if (value[i].len == 4) {
                /* the URL's path, its "/v1/traces" made "/v1/logs" */

                if (path.len >= 10
                    && ngx_strncmp(path.data + path.len - 10, "/v1/traces",
                                   10) == 0)
                {
                    logs.len = path.len - 10 + 8;
                    logs.data = ngx_pnalloc(cf->pool, logs.len);
                    if (logs.data == NULL) {
                        return NGX_CONF_ERROR;
                    }

                    ngx_memcpy(ngx_cpymem(logs.data, path.data,
                                          path.len - 10),
                               "/v1/logs", 8);

                } else {
                    ngx_str_set(&logs, "/v1/logs");
                }

                continue;
            }

            logs.data = value[i].data + 5;
            logs.len = value[i].len - 5;

            if (logs.len == 0 || logs.data[0] != '/'
                || ngx_http_ai_gateway_check_path(logs.data, logs.len)
                   != NGX_OK)
            {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "batch=", 6) == 0) {
            if (ex->batch != NGX_CONF_UNSET_UINT) {
                goto duplicate;
            }

            n = ngx_atoi(value[i].data + 6, value[i].len - 6);
            if (n <= 0 || n > 10000) {
                goto invalid;
            }

            ex->batch = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "queue=", 6) == 0) {
            if (ex->queue != NGX_CONF_UNSET_UINT) {
                goto duplicate;
            }

            n = ngx_atoi(value[i].data + 6, value[i].len - 6);
            if (n <= 0) {
                goto invalid;
            }

            ex->queue = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "queue_size=", 11) == 0) {
            if (ex->queue_size != NGX_CONF_UNSET_SIZE) {
                goto duplicate;
            }

            s.data = value[i].data + 11;
            s.len = value[i].len - 11;

            size = ngx_parse_size(&s);
            if (size <= 0) {
                goto invalid;
            }

            ex->queue_size = size;
            continue;
        }

        if (ngx_strncmp(value[i].data, "flush=", 6) == 0) {
            if (ex->flush != NGX_CONF_UNSET_MSEC) {
                goto duplicate;
            }

            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            ex->flush = ngx_parse_time(&s, 0);
            if (ex->flush == (ngx_msec_t) NGX_ERROR || ex->flush == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            if (ex->timeout != NGX_CONF_UNSET_MSEC) {
                goto duplicate;
            }

            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            ex->timeout = ngx_parse_time(&s, 0);
            if (ex->timeout == (ngx_msec_t) NGX_ERROR || ex->timeout == 0) {
                goto invalid;
            }

            continue;
        }

        goto invalid;
    }

    if (ex->batch == NGX_CONF_UNSET_UINT) {
        ex->batch = NGX_HTTP_AI_GATEWAY_OTEL_BATCH;
    }

    if (ex->queue == NGX_CONF_UNSET_UINT) {
        ex->queue = NGX_HTTP_AI_GATEWAY_OTEL_QUEUE;
    }

    if (ex->queue_size == NGX_CONF_UNSET_SIZE) {
        ex->queue_size = NGX_HTTP_AI_GATEWAY_OTEL_QUEUE_SIZE;
    }

    if (ex->flush == NGX_CONF_UNSET_MSEC) {
        ex->flush = NGX_HTTP_AI_GATEWAY_OTEL_FLUSH;
    }

    if (ex->timeout == NGX_CONF_UNSET_MSEC) {
        ex->timeout = NGX_HTTP_AI_GATEWAY_OTEL_TIMEOUT;
    }

    if (ex->trusted.data && ex->ssl == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"trusted_certificate=\" of \"%V\" directive "
                           "needs an https:// URL", &value[0]);
        return NGX_CONF_ERROR;
    }

    if (ex->ssl && ngx_http_ai_gateway_otel_ssl(cf, ex) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_ai_gateway_otel_head(cf, ex, &path, &headers, &auth)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    lx = NULL;

    if (logs.data) {
        /* log records: an exporter of its own, on its own connection */

        lx = ngx_palloc(cf->pool, sizeof(ngx_http_ai_gateway_otel_exporter_t));
        if (lx == NULL) {
            return NGX_CONF_ERROR;
        }

        *lx = *ex;
        lx->logs = 1;

        if (ngx_http_ai_gateway_otel_head(cf, lx, &logs, &headers, &auth)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    exp = ngx_array_push(olcf->exporters);
    if (exp == NULL) {
        return NGX_CONF_ERROR;
    }

    *exp = ex;

    omcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_ai_gateway_otel_module);

    exp = ngx_array_push(&omcf->exporters);
    if (exp == NULL) {
        return NGX_CONF_ERROR;
    }

    *exp = ex;

    if (lx == NULL) {
        return NGX_CONF_OK;
    }

    exp = ngx_array_push(olcf->exporters);
    if (exp == NULL) {
        return NGX_CONF_ERROR;
    }

    *exp = lx;

    exp = ngx_array_push(&omcf->exporters);
    if (exp == NULL) {
        return NGX_CONF_ERROR;
    }

    *exp = lx;

    return NGX_CONF_OK;

duplicate:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "duplicate \"%V\" in \"%V\" directive", &value[i],
                       &value[0]);
    return NGX_CONF_ERROR;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" in \"%V\" directive",
                       &value[i], &value[0]);
    return NGX_CONF_ERROR;
}


/* the request head, but its Content-Length, made once */

static ngx_int_t
ngx_http_ai_gateway_otel_head(ngx_conf_t *cf,
    ngx_http_ai_gateway_otel_exporter_t *ex, ngx_str_t *path,
    ngx_array_t *headers, ngx_str_t *auth)
{
    u_char        *p;
    size_t         len;
    ngx_uint_t     i, nheaders;
    ngx_keyval_t  *kv;

    len = sizeof("POST  HTTP/1.1" CRLF) - 1 + path->len
          + sizeof("Host: " CRLF) - 1 + ex->host.len + sizeof(":65535") - 1
          + sizeof("Content-Type: application/json" CRLF) - 1
          + sizeof("User-Agent: " NGX_HTTP_AI_GATEWAY_VER CRLF) - 1
          + sizeof("Connection: keep-alive" CRLF) - 1;

    if (auth->len) {
        len += sizeof("Authorization: " CRLF) - 1 + auth->len;
    }

    kv = headers->elts;
    nheaders = headers->nelts;

    for (i = 0; i < nheaders; i++) {
        len += kv[i].key.len + sizeof(": " CRLF) - 1 + kv[i].value.len;
    }

    p = ngx_pnalloc(cf->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ex->head.data = p;

    p = ngx_sprintf(p, "POST %V HTTP/1.1" CRLF "Host: %V", path, &ex->host);

    if (ngx_inet_get_port(ex->addr.sockaddr) != (ex->ssl ? 443 : 80)) {
        p = ngx_sprintf(p, ":%d", (int) ngx_inet_get_port(ex->addr.sockaddr));
    }

    p = ngx_cpymem(p, CRLF "Content-Type: application/json" CRLF,
                   sizeof(CRLF "Content-Type: application/json" CRLF) - 1);
    p = ngx_cpymem(p, "User-Agent: " NGX_HTTP_AI_GATEWAY_VER CRLF,
                   sizeof("User-Agent: " NGX_HTTP_AI_GATEWAY_VER CRLF) - 1);
    p = ngx_cpymem(p, "Connection: keep-alive" CRLF,
                   sizeof("Connection: keep-alive" CRLF) - 1);

    for (i = 0; i < nheaders; i++) {
        p = ngx_sprintf(p, "%V: %V" CRLF, &kv[i].key, &kv[i].value);
    }

    if (auth->len) {
        p = ngx_sprintf(p, "Authorization: %V" CRLF, auth);
    }

    ex->head.len = p - ex->head.data;

    return NGX_OK;
}


/* an http or https URL: its host resolved now, its path or /v1/traces */

static ngx_int_t
ngx_http_ai_gateway_otel_url(ngx_conf_t *cf,
    ngx_http_ai_gateway_otel_exporter_t *ex, ngx_str_t *url, ngx_str_t *path)
{
    size_t      skip;
    ngx_url_t   u;
    ngx_str_t  *value;

    value = cf->args->elts;

    ngx_memzero(&u, sizeof(ngx_url_t));

    if (url->len > 7 && ngx_strncasecmp(url->data, (u_char *) "http://", 7)
                        == 0)
    {
        skip = 7;
        u.default_port = 80;

    } else if (url->len > 8
               && ngx_strncasecmp(url->data, (u_char *) "https://", 8) == 0)
    {
        skip = 8;
        u.default_port = 443;

        /* a mark: made in ngx_http_ai_gateway_otel_ssl() */
        ex->ssl = (ngx_ssl_t *) -1;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive: the collector's URL \"%V\" "
                           "must start with \"http://\" or \"https://\"",
                           &value[0], url);
        return NGX_ERROR;
    }

    u.url.data = url->data + skip;
    u.url.len = url->len - skip;
    u.uri_part = 1;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        if (u.err) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%s in the collector's URL \"%V\" of \"%V\" "
                               "directive", u.err, url, &value[0]);
        }

        return NGX_ERROR;
    }

    if (u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive: no address for the "
                           "collector \"%V\"", &value[0], url);
        return NGX_ERROR;
    }

    if (ngx_http_ai_gateway_check_host(u.host.data, u.host.len) != NGX_OK
        || (u.uri.len
            && (ngx_http_ai_gateway_check_path(u.uri.data, u.uri.len)
                != NGX_OK
                || u.uri.data[0] != '/')))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive: invalid collector URL \"%V\"",
                           &value[0], url);
        return NGX_ERROR;
    }

    ex->url = *url;
    ex->addr = u.addrs[0];
    ex->host = u.host;

    *path = u.uri.len ? u.uri : ngx_http_ai_gateway_otel_traces;

    return NGX_OK;
}


/*
 * The Authorization value, read now from its file: its first line, which
 * must be a valid header value; the value is never logged.
 */

static ngx_int_t
ngx_http_ai_gateway_otel_auth(ngx_conf_t *cf, ngx_str_t *path,
    ngx_str_t *value)
{
    u_char           *p, *last;
    ssize_t           n;
    ngx_str_t         name, *args;
    ngx_file_t        file;
    ngx_file_info_t   fi;

    args = cf->args->elts;

    if (path->len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "empty \"authorization_file=\" in \"%V\" directive",
                           &args[0]);
        return NGX_ERROR;
    }

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
                           "\"%V\" directive: cannot open the authorization "
                           "file \"%s\"", &args[0], name.data);
        return NGX_ERROR;
    }

    p = NULL;
    n = NGX_ERROR;

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR
        || !ngx_is_file(&fi)
        || ngx_file_size(&fi) > NGX_HTTP_AI_GATEWAY_OTEL_AUTH_MAX)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive: the authorization file \"%s\" "
                           "is not a regular file of at most %d bytes",
                           &args[0], name.data,
                           NGX_HTTP_AI_GATEWAY_OTEL_AUTH_MAX);
        goto done;
    }

    p = ngx_pnalloc(cf->pool, NGX_HTTP_AI_GATEWAY_OTEL_AUTH_MAX);
    if (p == NULL) {
        goto done;
    }

    n = ngx_read_file(&file, p, NGX_HTTP_AI_GATEWAY_OTEL_AUTH_MAX, 0);

    if (n == NGX_ERROR) {
        goto done;
    }

    last = ngx_strlchr(p, p + n, LF);
    if (last == NULL) {
        last = p + n;
    }

    while (last > p && (last[-1] == CR || last[-1] == ' '
                        || last[-1] == '\t'))
    {
        last--;
    }

    if (last == p || ngx_http_ai_gateway_check_value(p, last - p) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive: the authorization file \"%s\" "
                           "does not hold a valid header value", &args[0],
                           name.data);
        n = NGX_ERROR;
        goto done;
    }

    value->data = p;
    value->len = last - p;

done:

    if (ngx_close_file(file.fd) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_ALERT, cf, ngx_errno,
                           ngx_close_file_n " \"%s\" failed", name.data);
    }

    return (n == NGX_ERROR) ? NGX_ERROR : NGX_OK;
}


/* a TLS client context: the collector's certificate verified */

static ngx_int_t
ngx_http_ai_gateway_otel_ssl(ngx_conf_t *cf,
    ngx_http_ai_gateway_otel_exporter_t *ex)
{
    ngx_pool_cleanup_t  *cln;

    ex->ssl = ngx_pcalloc(cf->pool, sizeof(ngx_ssl_t));
    if (ex->ssl == NULL) {
        return NGX_ERROR;
    }

    ex->ssl->log = cf->log;

    if (ngx_ssl_create(ex->ssl, NGX_SSL_TLSv1_2|NGX_SSL_TLSv1_3, NULL)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_ssl_cleanup_ctx(ex->ssl);
        return NGX_ERROR;
    }

    cln->handler = ngx_ssl_cleanup_ctx;
    cln->data = ex->ssl;

    if (ex->trusted.data == NULL) {
        ngx_str_set(&ex->trusted, "/etc/ssl/certs/ca-certificates.crt");
    }

    if (ngx_ssl_trusted_certificate(cf, ex->ssl, &ex->trusted, 4) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gateway_otel_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                              i;
    ngx_http_ai_gateway_otel_exporter_t   **exp, *ex;
    ngx_http_ai_gateway_otel_main_conf_t   *omcf;

    omcf = ngx_http_cycle_get_module_main_conf(cycle,
                                              ngx_http_ai_gateway_otel_module);

    if (omcf == NULL) {
        return NGX_OK;
    }

    exp = omcf->exporters.elts;

    for (i = 0; i < omcf->exporters.nelts; i++) {
        ex = exp[i];

        ex->log = cycle->log;
        ex->first = NULL;
        ex->last = &ex->first;

        ex->flush_ev.handler = ngx_http_ai_gateway_otel_flush_handler;
        ex->flush_ev.data = ex;
        ex->flush_ev.log = cycle->log;
        ex->flush_ev.cancelable = 1;
    }

    return NGX_OK;
}


/* what is left is dropped; the connections are closed */

static void
ngx_http_ai_gateway_otel_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                              i, dropped;
    ngx_http_ai_gateway_otel_item_t        *it, *next;
    ngx_http_ai_gateway_otel_exporter_t   **exp, *ex;
    ngx_http_ai_gateway_otel_main_conf_t   *omcf;

    omcf = ngx_http_cycle_get_module_main_conf(cycle,
                                              ngx_http_ai_gateway_otel_module);

    if (omcf == NULL || omcf->exporters.nelts == 0) {
        return;
    }

    exp = omcf->exporters.elts;

    for (i = 0; i < omcf->exporters.nelts; i++) {
        ex = exp[i];

        dropped = ex->queued + ex->inflight;

        for (it = ex->first; it; it = next) {
            next = it->next;
            ngx_free(it);
        }

        ex->first = NULL;
        ex->last = &ex->first;
        ex->queued = 0;
        ex->bytes = 0;
        ex->inflight = 0;

        if (ex->flush_ev.timer_set) {
            ngx_del_timer(&ex->flush_ev);
        }

        ngx_http_ai_gateway_otel_close(ex);

        if (ex->pool) {
            ngx_destroy_pool(ex->pool);
            ex->pool = NULL;
        }

        ex->busy = 0;

        ngx_http_ai_gateway_otel_count(0, dropped);
    }

    ngx_log_error(NGX_LOG_INFO, cycle->log, 0,
                  "ai_gateway otel: %ui spans exported, %ui dropped",
                  ngx_http_ai_gateway_otel_exported,
                  ngx_http_ai_gateway_otel_dropped);
}


ngx_uint_t
ngx_http_ai_gateway_otel_enabled(ngx_http_request_t *r)
{
    ngx_http_ai_gateway_otel_loc_conf_t  *olcf;

    olcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_otel_module);

    return olcf->exporters != NULL && olcf->exporters->nelts;
}


/*
 * A record of the request mr (r == mr) or of one of its attempts: its
 * span, made now; the request's is made last (log.c), with what its
 * answering attempt knew when the request itself does not.
 */

void
ngx_http_ai_gateway_otel_span(ngx_http_request_t *r, ngx_http_request_t *mr,
    ngx_http_ai_gateway_log_record_t *rec, ngx_str_t *req, ngx_str_t *resp)
{
    u_char                           span[8];
    ngx_str_t                       *s;
    ngx_uint_t                       i;
    ngx_http_ai_gateway_ctx_t       *ctx, *mctx;
    ngx_http_ai_gateway_otel_ctx_t  *octx;

    octx = ngx_http_ai_gateway_otel_ctx(mr);
    if (octx == NULL) {
        return;
    }

    ctx = ngx_http_ai_gateway_ctx(r);
    mctx = ngx_http_ai_gateway_ctx(mr);

    if (ctx == NULL || mctx == NULL) {
        return;
    }

    if (r == mr) {

        if (octx->has_answer) {
            if (rec->str[NGX_HTTP_AI_GATEWAY_LOG_PROVIDER].len == 0) {
                rec->str[NGX_HTTP_AI_GATEWAY_LOG_PROVIDER] =
                    octx->answer.str[NGX_HTTP_AI_GATEWAY_LOG_PROVIDER];
            }

            if (rec->str[NGX_HTTP_AI_GATEWAY_LOG_MODEL].len == 0) {
                rec->str[NGX_HTTP_AI_GATEWAY_LOG_MODEL] =
                    octx->answer.str[NGX_HTTP_AI_GATEWAY_LOG_MODEL];
            }

            if (!(rec->flags & NGX_HTTP_AI_GATEWAY_LOG_USAGE)
                && (octx->answer.flags & NGX_HTTP_AI_GATEWAY_LOG_USAGE))
            {
                rec->flags |= NGX_HTTP_AI_GATEWAY_LOG_USAGE;
                rec->input = octx->answer.input;
                rec->cached = octx->answer.cached;
                rec->cache_write = octx->answer.cache_write;
                rec->output = octx->answer.output;
            }

            if (!(rec->flags & NGX_HTTP_AI_GATEWAY_LOG_COST)
                && (octx->answer.flags & NGX_HTTP_AI_GATEWAY_LOG_COST))
            {
                rec->flags |= NGX_HTTP_AI_GATEWAY_LOG_COST;
                rec->cost = octx->answer.cost;
            }

            if (octx->answer.flags & NGX_HTTP_AI_GATEWAY_LOG_CACHED) {
                rec->flags |= NGX_HTTP_AI_GATEWAY_LOG_CACHED;
            }
        }

        s = ngx_array_push(&octx->spans);
        if (s == NULL) {
            return;
        }

        if (ngx_http_ai_gateway_otel_gen(mr->pool, octx, ctx, mctx, 0,
                                         octx->span, rec, req, resp, s)
            != NGX_OK)
        {
            octx->spans.nelts--;
            return;
        }

        /* a log record, as log.c stores one: not with attempts */

        if (ctx->log.collect
            && (ctx->log.attempts == NULL || ctx->log.attempts->nelts == 0)
            && ngx_http_ai_gateway_otel_logs(
                   ngx_http_get_module_loc_conf(mr,
                                             ngx_http_ai_gateway_otel_module)))
        {
            s = ngx_array_push(&octx->logs);

            if (s
                && ngx_http_ai_gateway_otel_gen_log(mr->pool, octx, ctx, mctx,
                                                    0, octx->span, rec, req,
                                                    resp, s)
                   != NGX_OK)
            {
                octx->logs.nelts--;
            }
        }

        /* the request's span first in the batch */

        if (octx->spans.nelts > 1) {
            s = octx->spans.elts;

            for (i = octx->spans.nelts - 1; i > 0; i--) {
                ngx_str_t  t = s[i];
                s[i] = s[i - 1];
                s[i - 1] = t;
            }
        }

        octx->ok = 1;
        return;
    }

    if (ctx->log.request == ngx_http_ai_gateway_retry_request(mctx)) {
        octx->answer = *rec;
        octx->has_answer = 1;
    }

    if (RAND_bytes(span, 8) != 1) {
        return;
    }

    s = ngx_array_push(&octx->spans);
    if (s == NULL) {
        return;
    }

    if (ngx_http_ai_gateway_otel_gen(mr->pool, octx, ctx, mctx, 1, span, rec,
                                     req, resp, s)
        != NGX_OK)
    {
        octx->spans.nelts--;
        return;
    }

    if (ctx->log.collect
        && ngx_http_ai_gateway_otel_logs(
               ngx_http_get_module_loc_conf(mr,
                                            ngx_http_ai_gateway_otel_module)))
    {
        s = ngx_array_push(&octx->logs);

        if (s
            && ngx_http_ai_gateway_otel_gen_log(mr->pool, octx, ctx, mctx, 1,
                                                span, rec, req, resp, s)
               != NGX_OK)
        {
            octx->logs.nelts--;
        }
    }
}


static ngx_uint_t
ngx_http_ai_gateway_otel_logs(ngx_http_ai_gateway_otel_loc_conf_t *olcf)
{
    ngx_uint_t                             i;
    ngx_http_ai_gateway_otel_exporter_t  **exp;

    if (olcf->exporters == NULL) {
        return 0;
    }

    exp = olcf->exporters->elts;

    for (i = 0; i < olcf->exporters->nelts; i++) {
        if (exp[i]->logs) {
            return 1;
        }
    }

    return 0;
}


/* the request's spans to every exporter of its location */

void
ngx_http_ai_gateway_otel_end(ngx_http_request_t *mr)
{
    ngx_str_t                             *s;
    ngx_uint_t                             i, j;
    ngx_array_t                           *a;
    ngx_http_ai_gateway_otel_ctx_t        *octx;
    ngx_http_ai_gateway_otel_exporter_t  **exp;
    ngx_http_ai_gateway_otel_loc_conf_t   *olcf;

    octx = ngx_http_get_module_ctx(mr, ngx_http_ai_gateway_otel_module);

    if (octx == NULL || !octx->ok) {
        return;
    }

    olcf = ngx_http_get_module_loc_conf(mr, ngx_http_ai_gateway_otel_module);

    if (olcf->exporters == NULL) {
        return;
    }

    exp = olcf->exporters->elts;

    for (i = 0; i < olcf->exporters->nelts; i++) {
        a = exp[i]->logs ? &octx->logs : &octx->spans;
        s = a->elts;

        for (j = 0; j < a->nelts; j++) {
            ngx_http_ai_gateway_otel_queue(exp[i], &s[j]);
        }
    }
}


static ngx_http_ai_gateway_otel_ctx_t *
ngx_http_ai_gateway_otel_ctx(ngx_http_request_t *mr)
{
    ngx_http_ai_gateway_otel_ctx_t  *octx;

    octx = ngx_http_get_module_ctx(mr, ngx_http_ai_gateway_otel_module);

    if (octx) {
        return octx;
    }

    octx = ngx_pcalloc(mr->pool, sizeof(ngx_http_ai_gateway_otel_ctx_t));
    if (octx == NULL) {
        return NULL;
    }

    if (ngx_array_init(&octx->spans, mr->pool, 4, sizeof(ngx_str_t))
        != NGX_OK
        || ngx_array_init(&octx->logs, mr->pool, 4, sizeof(ngx_str_t))
           != NGX_OK)
    {
        return NULL;
    }

    if (RAND_bytes(octx->span, 8) != 1) {
        return NULL;
    }

    ngx_http_ai_gateway_otel_context(mr, octx);

    if (!octx->has_parent && RAND_bytes(octx->trace, 16) != 1) {
        return NULL;
    }

    ngx_http_set_ctx(mr, octx, ngx_http_ai_gateway_otel_module);

    return octx;
}


/*
 * The client's trace: cf-aig-otel-trace-id (32 hex digits) and
 * cf-aig-otel-parent-span-id (16), else traceparent
 * ("00-<trace id>-<parent id>-<flags>"); ids of zeros or malformed ones
 * are ignored.  A trace of the client's without a parent sets the trace
 * only.
 */

static void
ngx_http_ai_gateway_otel_context(ngx_http_request_t *mr,
    ngx_http_ai_gateway_otel_ctx_t *octx)
{
    u_char            *p;
    ngx_table_elt_t   *h;
    static u_char      zero[16];

    h = ngx_http_ai_gateway_otel_header(mr, "cf-aig-otel-trace-id");

    if (h && h->value.len == 32
        && ngx_http_ai_gateway_otel_hex(octx->trace, h->value.data, 16)
           == NGX_OK
        && ngx_memcmp(octx->trace, zero, 16) != 0)
    {
        octx->has_parent = 1;

        h = ngx_http_ai_gateway_otel_header(mr, "cf-aig-otel-parent-span-id");

        if (h && h->value.len == 16
            && ngx_http_ai_gateway_otel_hex(octx->parent, h->value.data, 8)
               == NGX_OK
            && ngx_memcmp(octx->parent, zero, 8) != 0)
        {
            return;
        }

        ngx_memzero(octx->parent, 8);
        return;
    }

    h = ngx_http_ai_gateway_otel_header(mr, "traceparent");

    if (h == NULL || h->value.len < 55) {
        return;
    }

    p = h->value.data;

    /* version ff is invalid; a later version may add fields after "-" */

    if (ngx_http_ai_gateway_otel_hex(octx->trace, p, 1) != NGX_OK
        || (p[0] == 'f' && p[1] == 'f')
        || p[2] != '-' || p[35] != '-' || p[52] != '-'
        || (h->value.len > 55 && (p[0] == '0' && p[1] == '0'))
        || (h->value.len > 55 && p[55] != '-')
        || ngx_http_ai_gateway_otel_hex(octx->parent, p + 36, 8) != NGX_OK
        || ngx_http_ai_gateway_otel_hex(octx->trace, p + 53, 1) != NGX_OK
        || ngx_http_ai_gateway_otel_hex(octx->trace, p + 3, 16) != NGX_OK
        || ngx_memcmp(octx->trace, zero, 16) == 0
        || ngx_memcmp(octx->parent, zero, 8) == 0)
    {
        ngx_memzero(octx->trace, 16);
        ngx_memzero(octx->parent, 8);
        return;
    }

    octx->has_parent = 1;
}


/* a request header, the last one when it was sent more than once */

static ngx_table_elt_t *
ngx_http_ai_gateway_otel_header(ngx_http_request_t *r, const char *name)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *found;

    len = ngx_strlen(name);
    part = &r->headers_in.headers.part;
    h = part->elts;
    found = NULL;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return found;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash && h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            found = &h[i];
        }
    }
}


/* n bytes from 2n hex digits, of either case */

static ngx_int_t
ngx_http_ai_gateway_otel_hex(u_char *dst, u_char *src, size_t n)
{
    ngx_int_t  hi, lo;

    while (n--) {
        hi = ngx_hextoi(src, 1);
        lo = ngx_hextoi(src + 1, 1);

        if (hi == NGX_ERROR || lo == NGX_ERROR) {
            return NGX_ERROR;
        }

        *dst++ = (u_char) (hi << 4 | lo);
        src += 2;
    }

    return NGX_OK;
}


/*
 * A span as JSON; with the payloads, unless they are not valid UTF-8: then
 * without them.
 */

static ngx_int_t
ngx_http_ai_gateway_otel_gen(ngx_pool_t *pool,
    ngx_http_ai_gateway_otel_ctx_t *octx, ngx_http_ai_gateway_ctx_t *ctx,
    ngx_http_ai_gateway_ctx_t *mctx, ngx_uint_t attempt, u_char *span,
    ngx_http_ai_gateway_log_record_t *rec, ngx_str_t *req, ngx_str_t *resp,
    ngx_str_t *out)
{
    ngx_int_t                   rc;
    ngx_uint_t                  payload, ok;
    ngx_http_ai_gateway_gen_t   gen;

    for (payload = 1; /* void */ ; payload = 0) {

        if (ngx_http_ai_gateway_gen_init(&gen, pool) != NGX_OK) {
            return NGX_ERROR;
        }

        ngx_http_ai_gateway_gen_map(&gen);

        ngx_http_ai_gateway_otel_id(&gen, "traceId", octx->trace, 16);
        ngx_http_ai_gateway_otel_id(&gen, "spanId", span, 8);

        if (attempt) {
            ngx_http_ai_gateway_otel_id(&gen, "parentSpanId", octx->span, 8);

        } else if (octx->has_parent
                   && ngx_memcmp(octx->parent, "\0\0\0\0\0\0\0\0", 8) != 0)
        {
            ngx_http_ai_gateway_otel_id(&gen, "parentSpanId", octx->parent,
                                        8);
        }

        ngx_http_ai_gateway_gen_literal(&gen, "name");

        if (!attempt) {
            ngx_http_ai_gateway_gen_literal(&gen, "ai_gateway.request");

        } else if (mctx->route.universal) {
            ngx_http_ai_gateway_gen_literal(&gen, "ai_gateway.step");

        } else {
            ngx_http_ai_gateway_gen_literal(&gen, "ai_gateway.attempt");
        }

        ngx_http_ai_gateway_gen_literal(&gen, "kind");
        ngx_http_ai_gateway_gen_int(&gen, attempt
                                          ? NGX_HTTP_AI_GATEWAY_OTEL_CLIENT
                                          : NGX_HTTP_AI_GATEWAY_OTEL_SERVER);

        ngx_http_ai_gateway_otel_nanos(&gen, "startTimeUnixNano",
                                       rec->created_at);
        ngx_http_ai_gateway_otel_nanos(&gen, "endTimeUnixNano",
                                       rec->created_at + rec->duration);

        ngx_http_ai_gateway_gen_literal(&gen, "attributes");
        ngx_http_ai_gateway_gen_array(&gen);

        ngx_http_ai_gateway_otel_attrs(&gen, ctx, mctx, attempt, rec, req,
                                       resp, payload);

        ngx_http_ai_gateway_gen_array_end(&gen);

        ok = rec->flags & NGX_HTTP_AI_GATEWAY_LOG_SUCCESS;

        ngx_http_ai_gateway_gen_literal(&gen, "status");
        ngx_http_ai_gateway_gen_map(&gen);
        ngx_http_ai_gateway_gen_literal(&gen, "code");
        ngx_http_ai_gateway_gen_int(&gen, ok ? 1 : 2);   /* OK, ERROR */
        ngx_http_ai_gateway_gen_map_end(&gen);

        ngx_http_ai_gateway_gen_map_end(&gen);

        rc = ngx_http_ai_gateway_gen_done(&gen, out);

        if (rc == NGX_DECLINED && payload) {
            continue;
        }

        return (rc == NGX_OK) ? NGX_OK : NGX_ERROR;
    }
}


/*
 * A log record as an OTLP LogRecord: its body the record as the Logs API
 * shows it (a JSON text), its attributes the span's, in the span's trace.
 */

static ngx_int_t
ngx_http_ai_gateway_otel_gen_log(ngx_pool_t *pool,
    ngx_http_ai_gateway_otel_ctx_t *octx, ngx_http_ai_gateway_ctx_t *ctx,
    ngx_http_ai_gateway_ctx_t *mctx, ngx_uint_t attempt, u_char *span,
    ngx_http_ai_gateway_log_record_t *rec, ngx_str_t *req, ngx_str_t *resp,
    ngx_str_t *out)
{
    uint64_t                    now;
    ngx_int_t                   rc;
    ngx_str_t                   text;
    ngx_uint_t                  payload, ok;
    ngx_time_t                 *tp;
    ngx_http_ai_gateway_gen_t   gen;

    if (ngx_http_ai_gateway_gen_init(&gen, pool) != NGX_OK
        || ngx_http_ai_gateway_log_json(&gen, rec, 1) != NGX_OK
        || ngx_http_ai_gateway_gen_done(&gen, &text) != NGX_OK)
    {
        return NGX_ERROR;
    }

    tp = ngx_timeofday();
    now = (uint64_t) tp->sec * 1000 + tp->msec;

    ok = rec->flags & NGX_HTTP_AI_GATEWAY_LOG_SUCCESS;

    for (payload = 1; /* void */ ; payload = 0) {

        if (ngx_http_ai_gateway_gen_init(&gen, pool) != NGX_OK) {
            return NGX_ERROR;
        }

        ngx_http_ai_gateway_gen_map(&gen);

        ngx_http_ai_gateway_otel_nanos(&gen, "timeUnixNano", rec->created_at);
        ngx_http_ai_gateway_otel_nanos(&gen, "observedTimeUnixNano", now);

        ngx_http_ai_gateway_gen_literal(&gen, "severityNumber");
        ngx_http_ai_gateway_gen_int(&gen, ok ? 9 : 17);    /* INFO, ERROR */
        ngx_http_ai_gateway_gen_literal(&gen, "severityText");

        if (ok) {
            ngx_http_ai_gateway_gen_literal(&gen, "INFO");

        } else {
            ngx_http_ai_gateway_gen_literal(&gen, "ERROR");
        }

        ngx_http_ai_gateway_gen_literal(&gen, "body");
        ngx_http_ai_gateway_gen_map(&gen);
        ngx_http_ai_gateway_gen_literal(&gen, "stringValue");
        ngx_http_ai_gateway_gen_string(&gen, &text);
        ngx_http_ai_gateway_gen_map_end(&gen);

        ngx_http_ai_gateway_gen_literal(&gen, "attributes");
        ngx_http_ai_gateway_gen_array(&gen);
        ngx_http_ai_gateway_otel_attrs(&gen, ctx, mctx, attempt, rec, req,
                                       resp, payload);
        ngx_http_ai_gateway_gen_array_end(&gen);

        ngx_http_ai_gateway_otel_id(&gen, "traceId", octx->trace, 16);
        ngx_http_ai_gateway_otel_id(&gen, "spanId", span, 8);

        ngx_http_ai_gateway_gen_map_end(&gen);

        rc = ngx_http_ai_gateway_gen_done(&gen, out);

        if (rc == NGX_DECLINED && payload) {
            continue;
        }

        return (rc == NGX_OK) ? NGX_OK : NGX_ERROR;
    }
}


/* the attributes of a span or a log record (docs/otel.md) */

static void
ngx_http_ai_gateway_otel_attrs(ngx_http_ai_gateway_gen_t *gen,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_ctx_t *mctx,
    ngx_uint_t attempt, ngx_http_ai_gateway_log_record_t *rec,
    ngx_str_t *req, ngx_str_t *resp, ngx_uint_t payload)
{
    ngx_str_t  id;

    if (rec->str[NGX_HTTP_AI_GATEWAY_LOG_MODEL].len) {
        ngx_http_ai_gateway_otel_attr_str(gen, "gen_ai.request.model",
                              &rec->str[NGX_HTTP_AI_GATEWAY_LOG_MODEL]);
    }

    if (rec->str[NGX_HTTP_AI_GATEWAY_LOG_PROVIDER].len) {
        ngx_http_ai_gateway_otel_attr_str(gen, "gen_ai.model.provider",
                           &rec->str[NGX_HTTP_AI_GATEWAY_LOG_PROVIDER]);
    }

    if (rec->flags & NGX_HTTP_AI_GATEWAY_LOG_USAGE) {
        ngx_http_ai_gateway_otel_attr_int(gen,
                                    "gen_ai.usage.input_tokens",
                                    (int64_t) (rec->input + rec->cached
                                               + rec->cache_write));
        ngx_http_ai_gateway_otel_attr_int(gen,
                                    "gen_ai.usage.output_tokens",
                                    (int64_t) rec->output);
    }

    if (rec->flags & NGX_HTTP_AI_GATEWAY_LOG_COST) {
        ngx_http_ai_gateway_otel_attr_double(gen, "gen_ai.usage.cost",
                                             rec->cost);
    }

    if (payload && (rec->flags & NGX_HTTP_AI_GATEWAY_LOG_REQUEST_BODY)
        && req->len)
    {
        ngx_http_ai_gateway_otel_attr_str(gen, "gen_ai.prompt_json", req);
    }

    if (payload && (rec->flags & NGX_HTTP_AI_GATEWAY_LOG_RESPONSE_BODY)
        && resp->len)
    {
        ngx_http_ai_gateway_otel_attr_str(gen, "gen_ai.completion_json",
                                          resp);
    }

    ngx_http_ai_gateway_otel_metadata(gen,
                            &rec->str[NGX_HTTP_AI_GATEWAY_LOG_METADATA]);

    if (rec->status) {
        ngx_http_ai_gateway_otel_attr_int(gen,
                                          "http.response.status_code",
                                          (int64_t) rec->status);
    }

    id.data = rec->id;
    id.len = NGX_HTTP_AI_GATEWAY_LOG_ID_LEN;

    ngx_http_ai_gateway_otel_attr_str(gen, "ai_gateway.log_id", &id);

    if (mctx->route.gateway_id.len) {
        ngx_http_ai_gateway_otel_attr_str(gen, "ai_gateway.gateway_id",
                                          &mctx->route.gateway_id);
    }

    ngx_http_ai_gateway_otel_attr_bool(gen, "ai_gateway.cached",
                           rec->flags & NGX_HTTP_AI_GATEWAY_LOG_CACHED);

    if (ctx->error.code) {
        ngx_http_ai_gateway_otel_attr_int(gen, "ai_gateway.error.code",
                                          (int64_t) ctx->error.code);
    }

    if (attempt) {
        ngx_http_ai_gateway_otel_attr_int(gen, "ai_gateway.step",
                                          (int64_t) rec->step);
    }
}


static void
ngx_http_ai_gateway_otel_id(ngx_http_ai_gateway_gen_t *gen, const char *key,
    u_char *id, size_t n)
{
    u_char  hex[32];

    ngx_http_ai_gateway_gen_str(gen, (u_char *) key, ngx_strlen(key));
    ngx_http_ai_gateway_gen_str(gen, hex, ngx_hex_dump(hex, id, n) - hex);
}


/* OTLP/JSON: a 64-bit integer as a string of digits */

static void
ngx_http_ai_gateway_otel_nanos(ngx_http_ai_gateway_gen_t *gen,
    const char *key, uint64_t ms)
{
    u_char  buf[NGX_INT64_LEN + 7];

    ngx_http_ai_gateway_gen_str(gen, (u_char *) key, ngx_strlen(key));
    ngx_http_ai_gateway_gen_str(gen, buf,
                                ngx_sprintf(buf, "%uL000000", ms) - buf);
}


static void
ngx_http_ai_gateway_otel_attr_key(ngx_http_ai_gateway_gen_t *gen,
    u_char *key, size_t len, const char *type)
{
    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_literal(gen, "key");
    ngx_http_ai_gateway_gen_str(gen, key, len);
    ngx_http_ai_gateway_gen_literal(gen, "value");
    ngx_http_ai_gateway_gen_map(gen);
    ngx_http_ai_gateway_gen_str(gen, (u_char *) type, ngx_strlen(type));
}


static void
ngx_http_ai_gateway_otel_attr_end(ngx_http_ai_gateway_gen_t *gen)
{
    ngx_http_ai_gateway_gen_map_end(gen);
    ngx_http_ai_gateway_gen_map_end(gen);
}


static void
ngx_http_ai_gateway_otel_attr_str(ngx_http_ai_gateway_gen_t *gen,
    const char *key, ngx_str_t *value)
{
    ngx_http_ai_gateway_otel_attr_key(gen, (u_char *) key, ngx_strlen(key),
                                      "stringValue");
    ngx_http_ai_gateway_gen_string(gen, value);
    ngx_http_ai_gateway_otel_attr_end(gen);
}


static void
ngx_http_ai_gateway_otel_attr_int(ngx_http_ai_gateway_gen_t *gen,
    const char *key, int64_t n)
{
    u_char  buf[NGX_INT64_LEN];

    ngx_http_ai_gateway_otel_attr_key(gen, (u_char *) key, ngx_strlen(key),
                                      "intValue");
    ngx_http_ai_gateway_gen_str(gen, buf, ngx_sprintf(buf, "%L", n) - buf);
    ngx_http_ai_gateway_otel_attr_end(gen);
}


static void
ngx_http_ai_gateway_otel_attr_double(ngx_http_ai_gateway_gen_t *gen,
    const char *key, double n)
{
    ngx_http_ai_gateway_otel_attr_key(gen, (u_char *) key, ngx_strlen(key),
                                      "doubleValue");
    ngx_http_ai_gateway_gen_double(gen, n);
    ngx_http_ai_gateway_otel_attr_end(gen);
}


static void
ngx_http_ai_gateway_otel_attr_bool(ngx_http_ai_gateway_gen_t *gen,
    const char *key, ngx_uint_t b)
{
    ngx_http_ai_gateway_otel_attr_key(gen, (u_char *) key, ngx_strlen(key),
                                      "boolValue");
    ngx_http_ai_gateway_gen_bool(gen, b ? 1 : 0);
    ngx_http_ai_gateway_otel_attr_end(gen);
}


/*
 * cf-aig-metadata as the record keeps it (a JSON object of strings,
 * numbers and booleans): an attribute each, but keys starting with
 * "gen_ai." or "ai_gateway." and "http.response.status_code", which are
 * reserved
 */

static void
ngx_http_ai_gateway_otel_metadata(ngx_http_ai_gateway_gen_t *gen,
    ngx_str_t *metadata)
{
    size_t      len;
    yajl_val    v, e;
    ngx_str_t   s;
    ngx_uint_t  i;

    if (metadata->len == 0
        || ngx_http_ai_gateway_json_parse(gen->pool, metadata->data,
                                          metadata->len, &v)
           != NGX_OK
        || !YAJL_IS_OBJECT(v))
    {
        return;
    }

    for (i = 0; i < v->u.object.len; i++) {
        len = ngx_strlen(v->u.object.keys[i]);
        e = v->u.object.values[i];

        /* reserved: the hosted gateway's, and this module's own */

        if ((len >= 7
             && ngx_strncmp(v->u.object.keys[i], "gen_ai.", 7) == 0)
            || (len >= 11
                && ngx_strncmp(v->u.object.keys[i], "ai_gateway.", 11) == 0)
            || (len == 25
                && ngx_strncmp(v->u.object.keys[i],
                               "http.response.status_code", 25) == 0))
        {
            continue;
        }

        if (YAJL_IS_STRING(e)) {
            if (ngx_http_ai_gateway_json_str(e, &s) != NGX_OK) {
                continue;
            }

            ngx_http_ai_gateway_otel_attr_key(gen,
                                              (u_char *) v->u.object.keys[i],
                                              len, "stringValue");
            ngx_http_ai_gateway_gen_string(gen, &s);
            ngx_http_ai_gateway_otel_attr_end(gen);

        } else if (YAJL_IS_INTEGER(e)) {
            ngx_http_ai_gateway_otel_attr_key(gen,
                                              (u_char *) v->u.object.keys[i],
                                              len, "intValue");
            ngx_http_ai_gateway_gen_str(gen, (u_char *) e->u.number.r,
                                        ngx_strlen(e->u.number.r));
            ngx_http_ai_gateway_otel_attr_end(gen);

        } else if (YAJL_IS_DOUBLE(e)) {
            ngx_http_ai_gateway_otel_attr_key(gen,
                                              (u_char *) v->u.object.keys[i],
                                              len, "doubleValue");
            ngx_http_ai_gateway_gen_double(gen, e->u.number.d);
            ngx_http_ai_gateway_otel_attr_end(gen);

        } else if (YAJL_IS_TRUE(e) || YAJL_IS_FALSE(e)) {
            ngx_http_ai_gateway_otel_attr_key(gen,
                                              (u_char *) v->u.object.keys[i],
                                              len, "boolValue");
            ngx_http_ai_gateway_gen_bool(gen, YAJL_IS_TRUE(e));
            ngx_http_ai_gateway_otel_attr_end(gen);
        }
    }
}


/* a span into a worker's queue, or dropped when the queue is full */

static void
ngx_http_ai_gateway_otel_queue(ngx_http_ai_gateway_otel_exporter_t *ex,
    ngx_str_t *span)
{
    ngx_http_ai_gateway_otel_item_t  *it;

    if (ex->last == NULL
        || ex->queued >= ex->queue
        || ex->bytes + span->len > ex->queue_size)
    {
        ngx_http_ai_gateway_otel_count(0, 1);
        return;
    }

    it = ngx_alloc(offsetof(ngx_http_ai_gateway_otel_item_t, data)
                   + span->len, ex->log);
    if (it == NULL) {
        ngx_http_ai_gateway_otel_count(0, 1);
        return;
    }

    it->next = NULL;
    it->len = span->len;
    ngx_memcpy(it->data, span->data, span->len);

    *ex->last = it;
    ex->last = &it->next;
    ex->queued++;
    ex->bytes += span->len;

    if (ex->busy) {
        return;
    }

    if ((ex->queued >= ex->batch && !ex->backoff) || ngx_exiting) {
        if (ex->flush_ev.timer_set) {
            ngx_del_timer(&ex->flush_ev);
        }

        ngx_http_ai_gateway_otel_send(ex);
        return;
    }

    if (!ex->flush_ev.timer_set) {
        ngx_add_timer(&ex->flush_ev, ex->flush);
    }
}


static void
ngx_http_ai_gateway_otel_flush_handler(ngx_event_t *ev)
{
    ngx_http_ai_gateway_otel_exporter_t  *ex = ev->data;

    if (!ex->busy && ex->queued) {
        ngx_http_ai_gateway_otel_send(ex);
    }
}


/* a batch, on the kept connection or a new one */

static void
ngx_http_ai_gateway_otel_send(ngx_http_ai_gateway_otel_exporter_t *ex)
{
    ngx_connection_t  *c;

    if (ngx_http_ai_gateway_otel_batch(ex) != NGX_OK) {
        return;
    }

    ex->busy = 1;
    ex->status = 0;
    ex->rest = 0;
    ex->in_len = 0;
    ex->header_done = 0;
    ex->close = 0;
    ex->chunked = 0;
    ex->chunk = 0;
    ex->chunk_state = 0;

    c = ex->c;

    if (c == NULL) {
        ex->reused = 0;
        ngx_http_ai_gateway_otel_connect(ex);
        return;
    }

    ex->reused = 1;

    c->idle = 0;
    c->close = 0;
    c->read->handler = ngx_http_ai_gateway_otel_read;
    c->write->handler = ngx_http_ai_gateway_otel_write;

    ngx_http_ai_gateway_otel_write(c->write);
}


/* the next "batch" spans of the queue, as one request, in a pool */

static ngx_int_t
ngx_http_ai_gateway_otel_batch(ngx_http_ai_gateway_otel_exporter_t *ex)
{
    u_char                           *p;
    size_t                            len, body;
    ngx_uint_t                        n;
    ngx_http_ai_gateway_otel_item_t  *it, *next;

    static u_char  start[] =
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
        "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"ai-gateway\"}}"
        "]},\"scopeSpans\":[{\"scope\":{\"name\":\"ngx_ai_gateway\","
        "\"version\":\"" NGX_HTTP_AI_GATEWAY_VERSION "\"},\"spans\":[";
    static u_char  logs[] =
        "{\"resourceLogs\":[{\"resource\":{\"attributes\":["
        "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"ai-gateway\"}}"
        "]},\"scopeLogs\":[{\"scope\":{\"name\":\"ngx_ai_gateway\","
        "\"version\":\"" NGX_HTTP_AI_GATEWAY_VERSION "\"},\"logRecords\":[";
    static u_char  end[] = "]}]}]}";

    body = (ex->logs ? sizeof(logs) : sizeof(start)) - 1 + sizeof(end) - 1;

    for (n = 0, it = ex->first; it && n < ex->batch; n++, it = it->next) {
        body += it->len + 1;
    }

    len = ex->head.len + sizeof("Content-Length: " CRLF CRLF) - 1
          + NGX_SIZE_T_LEN + body;

    ex->pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, ex->log);
    if (ex->pool == NULL) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(ex->pool, len);
    if (p == NULL) {
        ngx_destroy_pool(ex->pool);
        ex->pool = NULL;
        return NGX_ERROR;
    }

    ex->start = p;
    ex->pos = p;

    p = ngx_cpymem(p, ex->head.data, ex->head.len);
    p = ngx_sprintf(p, "Content-Length: %uz" CRLF CRLF, body - 1);
    if (ex->logs) {
        p = ngx_cpymem(p, logs, sizeof(logs) - 1);

    } else {
        p = ngx_cpymem(p, start, sizeof(start) - 1);
    }

    for (n = 0, it = ex->first; it && n < ex->batch; n++, it = next) {
        next = it->next;

        if (n) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, it->data, it->len);

        ex->bytes -= it->len;
        ngx_free(it);
    }

    p = ngx_cpymem(p, end, sizeof(end) - 1);

    ex->end = p;

    ex->first = it;
    if (it == NULL) {
        ex->last = &ex->first;
    }

    ex->queued -= n;
    ex->inflight = n;

    return NGX_OK;
}


static void
ngx_http_ai_gateway_otel_connect(ngx_http_ai_gateway_otel_exporter_t *ex)
{
    ngx_int_t          rc;
    ngx_connection_t  *c;

    ngx_memzero(&ex->peer, sizeof(ngx_peer_connection_t));

    ex->peer.sockaddr = ex->addr.sockaddr;
    ex->peer.socklen = ex->addr.socklen;
    ex->peer.name = &ex->addr.name;
    ex->peer.get = ngx_event_get_peer;
    ex->peer.log = ex->log;
    ex->peer.log_error = NGX_ERROR_INFO;   /* the error line is ours */

    rc = ngx_event_connect_peer(&ex->peer);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        if (ex->peer.connection) {
            ex->c = ex->peer.connection;
            ngx_http_ai_gateway_otel_close(ex);
        }

        ngx_http_ai_gateway_otel_done(ex, 0, "cannot connect");
        return;
    }

    c = ex->peer.connection;
    ex->c = c;

    c->data = ex;
    c->log = ex->log;
    c->read->log = ex->log;
    c->write->log = ex->log;

    c->pool = ngx_create_pool(128, ex->log);
    if (c->pool == NULL) {
        ngx_http_ai_gateway_otel_close(ex);
        ngx_http_ai_gateway_otel_done(ex, 0, "no memory");
        return;
    }

    c->read->handler = ngx_http_ai_gateway_otel_dummy;
    c->write->handler = ngx_http_ai_gateway_otel_connected;

    if (rc == NGX_AGAIN) {
        ngx_add_timer(c->write, ex->timeout);
        return;
    }

    ngx_http_ai_gateway_otel_connected(c->write);
}


/* connected: TLS first for https */

static void
ngx_http_ai_gateway_otel_connected(ngx_event_t *wev)
{
    ngx_int_t                             rc;
    ngx_connection_t                     *c;
    ngx_http_ai_gateway_otel_exporter_t  *ex;

    c = wev->data;
    ex = c->data;

    if (wev->timedout) {
        ngx_http_ai_gateway_otel_close(ex);
        ngx_http_ai_gateway_otel_done(ex, 0, "connection timed out");
        return;
    }

    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    if (ex->ssl == NULL) {
        c->read->handler = ngx_http_ai_gateway_otel_read;
        c->write->handler = ngx_http_ai_gateway_otel_write;
        ngx_http_ai_gateway_otel_write(wev);
        return;
    }

    if (ngx_ssl_create_connection(ex->ssl, c, NGX_SSL_BUFFER|NGX_SSL_CLIENT)
        != NGX_OK)
    {
        ngx_http_ai_gateway_otel_close(ex);
        ngx_http_ai_gateway_otel_done(ex, 0, "cannot start TLS");
        return;
    }

    if (ngx_inet_addr(ex->host.data, ex->host.len) == INADDR_NONE) {
        u_char  name[256];

        if (ex->host.len < sizeof(name)) {
            ngx_memcpy(name, ex->host.data, ex->host.len);
            name[ex->host.len] = '\0';
            SSL_set_tlsext_host_name(c->ssl->connection, (char *) name);
        }
    }

    rc = ngx_ssl_handshake(c);

    if (rc == NGX_AGAIN) {
        ngx_add_timer(c->write, ex->timeout);
        c->ssl->handler = ngx_http_ai_gateway_otel_handshake;
        return;
    }

    ngx_http_ai_gateway_otel_handshake(c);
}


static void
ngx_http_ai_gateway_otel_handshake(ngx_connection_t *c)
{
    long                                  rc;
    ngx_http_ai_gateway_otel_exporter_t  *ex;

    ex = c->data;

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (!c->ssl->handshaked) {
        ngx_http_ai_gateway_otel_close(ex);
        ngx_http_ai_gateway_otel_done(ex, 0, "TLS handshake failed");
        return;
    }

    rc = SSL_get_verify_result(c->ssl->connection);

    if (rc != X509_V_OK) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "ai_gateway otel: the certificate of \"%V\" cannot be "
                      "verified: (%l:%s)", &ex->url, rc,
                      X509_verify_cert_error_string(rc));
        ngx_http_ai_gateway_otel_close(ex);
        ngx_http_ai_gateway_otel_done(ex, 0, NULL);
        return;
    }

    if (ngx_http_ai_gateway_otel_check_host(c, &ex->host) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "ai_gateway otel: the certificate does not match "
                      "\"%V\"", &ex->url);
        ngx_http_ai_gateway_otel_close(ex);
        ngx_http_ai_gateway_otel_done(ex, 0, NULL);
        return;
    }

    c->read->handler = ngx_http_ai_gateway_otel_read;
    c->write->handler = ngx_http_ai_gateway_otel_write;

    ngx_http_ai_gateway_otel_write(c->write);
}


/* the certificate is the host's: its name, or its address (IP SAN) */

static ngx_int_t
ngx_http_ai_gateway_otel_check_host(ngx_connection_t *c, ngx_str_t *host)
{
    int      rc;
    X509    *cert;
    u_char   addr[NGX_SOCKADDR_STRLEN + 1];

    if (ngx_inet_addr(host->data, host->len) == INADDR_NONE) {
        return ngx_ssl_check_host(c, host);
    }

    if (host->len >= sizeof(addr)) {
        return NGX_ERROR;
    }

    ngx_memcpy(addr, host->data, host->len);
    addr[host->len] = '\0';

    cert = SSL_get_peer_certificate(c->ssl->connection);
    if (cert == NULL) {
        return NGX_ERROR;
    }

    rc = X509_check_ip_asc(cert, (char *) addr, 0);

    X509_free(cert);

    return (rc == 1) ? NGX_OK : NGX_ERROR;
}


static void
ngx_http_ai_gateway_otel_write(ngx_event_t *wev)
{
    ssize_t                               n;
    ngx_connection_t                     *c;
    ngx_http_ai_gateway_otel_exporter_t  *ex;

    c = wev->data;
    ex = c->data;

    if (wev->timedout) {
        ngx_http_ai_gateway_otel_close(ex);
        ngx_http_ai_gateway_otel_done(ex, 0, "sending timed out");
        return;
    }

    while (ex->pos < ex->end) {
        n = c->send(c, ex->pos, ex->end - ex->pos);

        if (n == NGX_AGAIN) {
            if (!wev->timer_set) {
                ngx_add_timer(wev, ex->timeout);
            }

            if (ngx_handle_write_event(wev, 0) != NGX_OK) {
                ngx_http_ai_gateway_otel_close(ex);
                ngx_http_ai_gateway_otel_done(ex, 0, "event error");
            }

            return;
        }

        if (n == NGX_ERROR) {
            ngx_http_ai_gateway_otel_close(ex);

            if (ex->reused) {
                /* the kept connection was closed: once on a new one */
                ex->reused = 0;
                ex->pos = ex->start;
                ngx_http_ai_gateway_otel_connect(ex);
                return;
            }

            ngx_http_ai_gateway_otel_done(ex, 0, "cannot send");
            return;
        }

        ex->pos += n;
    }

    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    wev->handler = ngx_http_ai_gateway_otel_dummy;

    if (!c->read->timer_set) {
        ngx_add_timer(c->read, ex->timeout);
    }

    ngx_http_ai_gateway_otel_read(c->read);
}


static void
ngx_http_ai_gateway_otel_read(ngx_event_t *rev)
{
    u_char                             buf[NGX_HTTP_AI_GATEWAY_OTEL_RESPONSE];
    ssize_t                            n;
    ngx_int_t                          rc;
    ngx_connection_t                  *c;
    ngx_http_ai_gateway_otel_exporter_t  *ex;

    rc = NGX_AGAIN;
    c = rev->data;
    ex = c->data;

    if (rev->timedout) {
        ngx_http_ai_gateway_otel_close(ex);
        ngx_http_ai_gateway_otel_done(ex, 0, "the collector timed out");
        return;
    }

    if (ex->pos < ex->end) {
        /* still sending */
        return;
    }

    for ( ;; ) {

        if (!ex->header_done) {
            n = c->recv(c, ex->in + ex->in_len, sizeof(ex->in) - ex->in_len);

        } else {
            n = c->recv(c, buf, (ex->chunked || ex->rest > (off_t) sizeof(buf))
                                ? sizeof(buf) : (size_t) ex->rest);
        }

        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(rev, 0) != NGX_OK) {
                ngx_http_ai_gateway_otel_close(ex);
                ngx_http_ai_gateway_otel_done(ex, 0, "event error");
            }

            return;
        }

        if (n == NGX_ERROR || n == 0) {
            ngx_http_ai_gateway_otel_close(ex);

            if (ex->reused && ex->in_len == 0 && !ex->header_done) {
                /* the kept connection was closed: once on a new one */
                ex->reused = 0;
                ex->pos = ex->start;
                ngx_http_ai_gateway_otel_connect(ex);
                return;
            }

            ngx_http_ai_gateway_otel_done(ex, 0, "the collector closed the "
                                          "connection");
            return;
        }

        if (!ex->header_done) {
            ex->in_len += n;

            rc = ngx_http_ai_gateway_otel_parse(ex);

            if (rc == NGX_AGAIN) {
                if (ex->in_len == sizeof(ex->in)) {
                    ngx_http_ai_gateway_otel_close(ex);
                    ngx_http_ai_gateway_otel_done(ex, 0, "response header "
                                                  "too long");
                    return;
                }

                continue;
            }

            if (rc == NGX_ERROR) {
                ngx_http_ai_gateway_otel_close(ex);
                ngx_http_ai_gateway_otel_done(ex, 0, "invalid response");
                return;
            }

            ex->header_done = 1;

            if (ex->chunked) {
                rc = ngx_http_ai_gateway_otel_chunked(ex, ex->in + ex->body,
                                                      ex->in + ex->in_len);
            }

        } else if (ex->chunked) {
            rc = ngx_http_ai_gateway_otel_chunked(ex, buf, buf + n);

        } else {
            ex->rest -= n;
        }

        if (ex->chunked) {
            if (rc == NGX_ERROR) {
                ngx_http_ai_gateway_otel_close(ex);
                ngx_http_ai_gateway_otel_done(ex, 0, "invalid response");
                return;
            }

            if (rc == NGX_AGAIN) {
                continue;
            }

            break;
        }

        if (ex->rest <= 0) {
            break;
        }
    }

    if (rev->timer_set) {
        ngx_del_timer(rev);
    }

    if (ex->close) {
        ngx_http_ai_gateway_otel_close(ex);

    } else {
        /* kept for the next batch, closed by nginx at a shutdown */
        c->idle = 1;
        c->read->handler = ngx_http_ai_gateway_otel_idle;
        c->write->handler = ngx_http_ai_gateway_otel_dummy;
    }

    ngx_http_ai_gateway_otel_done(ex, ex->status >= 200 && ex->status < 300,
                                  "the collector refused the batch");
}


/*
 * The response head: its status, Content-Length, and whether the
 * connection can be kept (a body of a known length); NGX_AGAIN until it is
 * whole.
 */

static ngx_int_t
ngx_http_ai_gateway_otel_parse(ngx_http_ai_gateway_otel_exporter_t *ex)
{
    u_char     *p, *last, *eol, *colon, *end;
    off_t       length;
    ngx_int_t   status;

    p = ex->in;
    last = ex->in + ex->in_len;

    eol = ngx_strlcasestrn(p, last, (u_char *) CRLF CRLF, 4 - 1);

    if (eol == NULL) {
        return NGX_AGAIN;
    }

    last = eol + 2;

    if (last - p < 12 || ngx_strncmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ') {
        return NGX_ERROR;
    }

    status = ngx_atoi(p + 9, 3);
    if (status < 100 || status > 999) {
        return NGX_ERROR;
    }

    ex->status = status;

    length = -1;
    ex->close = (p[7] == '0');

    p = ngx_strlchr(p, last, LF);

    while (p && ++p < last) {
        eol = ngx_strlchr(p, last, LF);
        if (eol == NULL) {
            break;
        }

        colon = ngx_strlchr(p, eol, ':');

        if (colon) {
            if (colon - p == 14
                && ngx_strncasecmp(p, (u_char *) "content-length", 14) == 0)
            {
                for (colon++; colon < eol && *colon == ' '; colon++) {
                    /* void */
                }

                for (end = eol; end > colon && (end[-1] == CR
                                                || end[-1] == ' ');
                     end--)
                {
                    /* void */
                }

                length = ngx_atoof(colon, end - colon);

                if (length == NGX_ERROR) {
                    return NGX_ERROR;
                }

            } else if (colon - p == 17
                       && ngx_strncasecmp(p, (u_char *) "transfer-encoding",
                                          17) == 0
                       && ngx_strlcasestrn(colon, eol, (u_char *) "chunked",
                                           7 - 1))
            {
                ex->chunked = 1;

            } else if (colon - p == 10
                       && ngx_strncasecmp(p, (u_char *) "connection", 10) == 0
                       && ngx_strlcasestrn(colon, eol, (u_char *) "close",
                                           5 - 1))
            {
                ex->close = 1;
            }
        }

        p = eol;
    }

    /* the body read so far */

    last += 2;

    ex->body = last - ex->in;

    if (ex->chunked) {
        return NGX_OK;
    }

    if (length < 0) {
        /* chunked or to the close: not read, the connection not kept */
        ex->close = 1;
        ex->rest = 0;
        return NGX_OK;
    }

    ex->rest = length - (ex->in + ex->in_len - last);

    if (ex->rest < 0) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A chunked body, skipped: NGX_OK at its end, NGX_AGAIN for more,
 * NGX_ERROR.  Trailers are skipped as lines.
 */

static ngx_int_t
ngx_http_ai_gateway_otel_chunked(ngx_http_ai_gateway_otel_exporter_t *ex,
    u_char *p, u_char *last)
{
    u_char     ch;
    size_t     n;
    ngx_int_t  d;

    enum {
        sw_size = 0,
        sw_ext,
        sw_data,
        sw_data_cr,
        sw_data_lf,
        sw_trailer,
        sw_trailer_line,
        sw_trailer_lf
    };

    while (p < last) {

        switch (ex->chunk_state) {

        case sw_size:
            ch = *p++;

            if (ch == ';' || ch == ' ' || ch == '\t' || ch == CR) {
                ex->chunk_state = sw_ext;
                break;
            }

            if (ch == LF) {
                ex->chunk_state = ex->chunk ? sw_data : sw_trailer;
                break;
            }

            d = ngx_hextoi(&ch, 1);

            if (d == NGX_ERROR || ex->chunk > (NGX_MAX_OFF_T_VALUE >> 8)) {
                return NGX_ERROR;
            }

            ex->chunk = ex->chunk * 16 + d;
            break;

        case sw_ext:
            if (*p++ == LF) {
                ex->chunk_state = ex->chunk ? sw_data : sw_trailer;
            }

            break;

        case sw_data:
            n = (ex->chunk < (off_t) (last - p)) ? (size_t) ex->chunk
                                                 : (size_t) (last - p);
            p += n;
            ex->chunk -= n;

            if (ex->chunk == 0) {
                ex->chunk_state = sw_data_cr;
            }

            break;

        case sw_data_cr:
            ch = *p++;

            if (ch == LF) {
                ex->chunk_state = sw_size;

            } else if (ch == CR) {
                ex->chunk_state = sw_data_lf;

            } else {
                return NGX_ERROR;
            }

            break;

        case sw_data_lf:
            if (*p++ != LF) {
                return NGX_ERROR;
            }

            ex->chunk_state = sw_size;
            break;

        case sw_trailer:
            ch = *p++;

            if (ch == LF) {
                return NGX_OK;
            }

            ex->chunk_state = (ch == CR) ? sw_trailer_lf : sw_trailer_line;
            break;

        case sw_trailer_lf:
            if (*p++ == LF) {
                return NGX_OK;
            }

            ex->chunk_state = sw_trailer_line;
            break;

        default: /* sw_trailer_line */
            if (*p++ == LF) {
                ex->chunk_state = sw_trailer;
            }

            break;
        }
    }

    return NGX_AGAIN;
}


/* a kept connection: anything from the collector, or a shutdown, closes it */

static void
ngx_http_ai_gateway_otel_idle(ngx_event_t *rev)
{
    ngx_connection_t                     *c;
    ngx_http_ai_gateway_otel_exporter_t  *ex;

    c = rev->data;
    ex = c->data;

    if (c->close && ex->queued && !ex->busy) {
        /* a shutdown: the queue takes this connection first */

        if (ex->flush_ev.timer_set) {
            ngx_del_timer(&ex->flush_ev);
        }

        ngx_http_ai_gateway_otel_send(ex);
        return;
    }

    ngx_http_ai_gateway_otel_close(ex);
}


static void
ngx_http_ai_gateway_otel_dummy(ngx_event_t *ev)
{
}


/* a batch is over: counted, its pool freed, the next one started */

static void
ngx_http_ai_gateway_otel_done(ngx_http_ai_gateway_otel_exporter_t *ex,
    ngx_uint_t ok, const char *why)
{
    if (ok) {
        ngx_http_ai_gateway_otel_count(ex->inflight, 0);
        ex->backoff = 0;

    } else {
        ngx_http_ai_gateway_otel_count(0, ex->inflight);
        ex->backoff = 1;

        if (why && ngx_time() - ex->error_time
                   >= NGX_HTTP_AI_GATEWAY_OTEL_ERROR_EVERY)
        {
            ex->error_time = ngx_time();

            if (ex->status) {
                ngx_log_error(NGX_LOG_ERR, ex->log, 0,
                              "ai_gateway otel: %s (status %ui): %ui spans "
                              "dropped, exporting to \"%V\"", why,
                              ex->status, ex->inflight, &ex->url);

            } else {
                ngx_log_error(NGX_LOG_ERR, ex->log, 0,
                              "ai_gateway otel: %s: %ui spans dropped, "
                              "exporting to \"%V\"", why, ex->inflight,
                              &ex->url);
            }
        }
    }

    ex->inflight = 0;
    ex->busy = 0;

    if (ex->pool) {
        ngx_destroy_pool(ex->pool);
        ex->pool = NULL;
    }

    ex->start = NULL;
    ex->pos = NULL;
    ex->end = NULL;

    if (ex->queued == 0) {
        return;
    }

    /* after a failure, the next batch waits for the timer */

    if (!ex->backoff && (ex->queued >= ex->batch || ngx_exiting)) {
        ngx_http_ai_gateway_otel_send(ex);
        return;
    }

    if (!ex->flush_ev.timer_set) {
        ngx_add_timer(&ex->flush_ev, ex->flush);
    }
}


static void
ngx_http_ai_gateway_otel_close(ngx_http_ai_gateway_otel_exporter_t *ex)
{
    ngx_pool_t        *pool;
    ngx_connection_t  *c;

    c = ex->c;

    if (c == NULL) {
        return;
    }

    ex->c = NULL;

    if (c->ssl) {
        /* no close_notify waited for, nor sent: the SSL object is freed */
        c->ssl->no_wait_shutdown = 1;
        c->ssl->no_send_shutdown = 1;
        (void) ngx_ssl_shutdown(c);
    }

    pool = c->pool;

    ngx_close_connection(c);

    if (pool) {
        ngx_destroy_pool(pool);
    }
}
