
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_module.h"
#include "ngx_http_ai_gateway_metrics.h"


/*
 * Metrics (docs/observability.md): counters and histograms in one shared
 * memory zone, "ai_gateway_metrics_zone name:size [max_series=N]", which
 * every worker adds to, served by "ai_gateway_metrics_endpoint" in the
 * Prometheus text exposition format 0.0.4 or as JSON.
 *
 * A series is one combination of labels: gateway, provider, model, client
 * (the gateway token's name, $ai_gateway_client), status class and
 * cached.  Its counters (requests, cache hits and misses, tokens, cost in
 * nano-dollars, retries, fallbacks, refusals, errors by gateway code) and
 * its two histograms (duration, time to first byte; fixed buckets, sums in
 * milliseconds) are ngx_atomic_t words added to with
 * ngx_atomic_fetch_add(), without a lock.  Only finding a request's
 * series takes the zone's mutex: a hash of the labels, a short probe in an
 * open-addressed table of series numbers and, for a new combination, the
 * series written and published; nothing is allocated then, the zone is
 * laid out whole when it is created.  A series is never removed, so that
 * counters only grow.
 *
 * The number of series is bounded by max_series.  Past it, a request with
 * a new combination is recorded in one of the overflow series (every text
 * label "__overflow__", the status class and cached kept) and
 * ai_gateway_metrics_series_refused_total grows: a client choosing model
 * names cannot make the zone grow.  Label values are cut to
 * NGX_HTTP_AI_GATEWAY_METRICS_LABEL bytes and every byte outside printable
 * ASCII is replaced by "_", so that any value is valid UTF-8; '\' and '"'
 * are escaped when served.
 *
 * The zone survives a reload: given the old zone's data, init_zone keeps
 * its memory when the header's magic, layout version, series size and
 * max_series match, and lays it out anew (the numbers start from zero)
 * when they do not.  A zone whose size changes is a new zone to nginx.
 *
 * Recorded in the log phase of a request the gateway's content handler
 * took, from what the stages left in its context: for a request run as
 * attempts (retries, the Universal Endpoint), the last attempt's provider,
 * model, usage, cost and time to first byte, as the variables report
 * them; the request's own duration, status and error code.
 */


#define NGX_HTTP_AI_GATEWAY_METRICS_MAGIC     0x6169676d  /* "aigm" */
#define NGX_HTTP_AI_GATEWAY_METRICS_VERSION   1

/* the bytes kept of a label value */
#define NGX_HTTP_AI_GATEWAY_METRICS_LABEL     64

#define NGX_HTTP_AI_GATEWAY_METRICS_MAX_SERIES  1000
#define NGX_HTTP_AI_GATEWAY_METRICS_MAX_LIMIT   100000

#define NGX_HTTP_AI_GATEWAY_METRICS_GATEWAY   0
#define NGX_HTTP_AI_GATEWAY_METRICS_PROVIDER  1
#define NGX_HTTP_AI_GATEWAY_METRICS_MODEL     2
#define NGX_HTTP_AI_GATEWAY_METRICS_CLIENT    3
#define NGX_HTTP_AI_GATEWAY_METRICS_LABELS    4

/* status classes: unknown, 1xx ... 5xx */
#define NGX_HTTP_AI_GATEWAY_METRICS_CLASSES   6

/* the overflow series: one per status class and cached */
#define NGX_HTTP_AI_GATEWAY_METRICS_OVERFLOW                                 \
    (NGX_HTTP_AI_GATEWAY_METRICS_CLASSES * 2)

#define NGX_HTTP_AI_GATEWAY_METRICS_BUCKETS   14

/* the gateway's error codes (module.h), and one for any other */
#define NGX_HTTP_AI_GATEWAY_METRICS_CODES     18

#define NGX_HTTP_AI_GATEWAY_METRICS_IN        0
#define NGX_HTTP_AI_GATEWAY_METRICS_OUT       1
#define NGX_HTTP_AI_GATEWAY_METRICS_CACHED    2
#define NGX_HTTP_AI_GATEWAY_METRICS_REASONING 3

/* the longest line served, labels escaped */
#define NGX_HTTP_AI_GATEWAY_METRICS_LINE                                     \
    (NGX_HTTP_AI_GATEWAY_METRICS_LABELS * NGX_HTTP_AI_GATEWAY_METRICS_LABEL  \
     * 2 + 512)

#define NGX_HTTP_AI_GATEWAY_METRICS_BUF       16384


typedef struct {
    ngx_atomic_t                   requests;
    ngx_atomic_t                   cache_hits;
    ngx_atomic_t                   cache_misses;
    ngx_atomic_t                   tokens[4];
    ngx_atomic_t                   cost;        /* nano-dollars */
    ngx_atomic_t                   retries;
    ngx_atomic_t                   fallbacks;
    ngx_atomic_t                   rate_limited;
    ngx_atomic_t                   spend_limited;
    ngx_atomic_t                   errors[NGX_HTTP_AI_GATEWAY_METRICS_CODES];
    ngx_atomic_t                   duration[NGX_HTTP_AI_GATEWAY_METRICS_BUCKETS
                                            + 1];
    ngx_atomic_t                   duration_sum; /* ms */
    ngx_atomic_t                   ttfb[NGX_HTTP_AI_GATEWAY_METRICS_BUCKETS
                                        + 1];
    ngx_atomic_t                   ttfb_sum;    /* ms */

    uint32_t                       hash;
    u_char                         status;      /* class */
    u_char                         cached;
    u_char                         len[NGX_HTTP_AI_GATEWAY_METRICS_LABELS];
    u_char                         label[NGX_HTTP_AI_GATEWAY_METRICS_LABELS]
                                        [NGX_HTTP_AI_GATEWAY_METRICS_LABEL];
} ngx_http_ai_gateway_metrics_series_t;


typedef struct {
    uint32_t                       magic;
    uint32_t                       version;
    ngx_uint_t                     series_size;
    ngx_uint_t                     max_series;
    ngx_uint_t                     nhash;       /* a power of 2 */

    ngx_atomic_t                   nseries;     /* in use */
    ngx_atomic_t                   refused;     /* to the overflow */
    ngx_atomic_t                   otel_exported;
    ngx_atomic_t                   otel_dropped;

    uint32_t                      *hash;        /* series number + 1 */
    ngx_http_ai_gateway_metrics_series_t  *series;  /* max_series, then
                                                       the overflow */
} ngx_http_ai_gateway_metrics_sh_t;


typedef struct {
    ngx_str_t                      name;
    ngx_uint_t                     max_series;
    ngx_shm_zone_t                *shm_zone;
    ngx_slab_pool_t               *shpool;
    ngx_http_ai_gateway_metrics_sh_t  *sh;
} ngx_http_ai_gateway_metrics_zone_t;


/* a zone named by a directive, checked once the configuration is read */

typedef struct {
    ngx_shm_zone_t                *zone;
    const char                    *directive;
    u_char                        *file;
    ngx_uint_t                     line;
} ngx_http_ai_gateway_metrics_ref_t;


typedef struct {
    ngx_array_t                    zones;       /* of ngx_shm_zone_t * */
    ngx_array_t                    refs;        /* of ..._metrics_ref_t */
    ngx_int_t                      model_index;
    ngx_int_t                      attempts_index;
    ngx_int_t                      duration_index;
} ngx_http_ai_gateway_metrics_main_conf_t;


typedef struct {
    ngx_shm_zone_t                *zone;       /* recorded to, or NULL */
    ngx_shm_zone_t                *endpoint_zone;
    ngx_str_t                      endpoint_name;
    ngx_flag_t                     endpoint;
} ngx_http_ai_gateway_metrics_loc_conf_t;


/* a request's labels, before its series is found */

typedef struct {
    u_char                         len[NGX_HTTP_AI_GATEWAY_METRICS_LABELS];
    u_char                         label[NGX_HTTP_AI_GATEWAY_METRICS_LABELS]
                                        [NGX_HTTP_AI_GATEWAY_METRICS_LABEL];
    u_char                         status;
    u_char                         cached;
    uint32_t                       hash;
} ngx_http_ai_gateway_metrics_key_t;


/* the endpoint's output in the making */

typedef struct {
    ngx_http_request_t            *request;
    ngx_chain_t                   *out;
    ngx_chain_t                  **last;
    ngx_buf_t                     *buf;
    off_t                          size;
} ngx_http_ai_gateway_metrics_out_t;


typedef struct {
    const char                    *name;
    const char                    *help;
    size_t                         offset;
} ngx_http_ai_gateway_metrics_counter_t;


static ngx_int_t ngx_http_ai_gateway_metrics_init(ngx_conf_t *cf);
static void *ngx_http_ai_gateway_metrics_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_ai_gateway_metrics_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ai_gateway_metrics_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_ai_gateway_metrics_init_process(ngx_cycle_t *cycle);
static char *ngx_http_ai_gateway_metrics_zone(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_ai_gateway_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_gateway_metrics_endpoint(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_shm_zone_t *ngx_http_ai_gateway_metrics_ref(ngx_conf_t *cf,
    ngx_str_t *name, const char *directive);
static size_t ngx_http_ai_gateway_metrics_zone_need(ngx_uint_t max_series,
    ngx_uint_t *nhash);
static ngx_int_t ngx_http_ai_gateway_metrics_init_zone(
    ngx_shm_zone_t *shm_zone, void *data);
static ngx_int_t ngx_http_ai_gateway_metrics_log_handler(
    ngx_http_request_t *r);
static void ngx_http_ai_gateway_metrics_label(
    ngx_http_ai_gateway_metrics_key_t *key, ngx_uint_t n, u_char *p,
    size_t len);
static ngx_http_ai_gateway_metrics_series_t *
    ngx_http_ai_gateway_metrics_series(ngx_http_ai_gateway_metrics_zone_t *mz,
    ngx_http_ai_gateway_metrics_key_t *key);
static void ngx_http_ai_gateway_metrics_observe(ngx_atomic_t *buckets,
    ngx_atomic_t *sum, ngx_msec_t ms);
static ngx_int_t ngx_http_ai_gateway_metrics_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_gateway_metrics_text(
    ngx_http_ai_gateway_metrics_out_t *o, ngx_http_ai_gateway_metrics_sh_t *sh,
    ngx_http_ai_gateway_metrics_series_t **all, ngx_str_t *labels,
    ngx_uint_t n);
static ngx_int_t ngx_http_ai_gateway_metrics_json(
    ngx_http_ai_gateway_metrics_out_t *o, ngx_http_ai_gateway_metrics_sh_t *sh,
    ngx_http_ai_gateway_metrics_series_t **all, ngx_uint_t n);
static ngx_int_t ngx_http_ai_gateway_metrics_histogram(
    ngx_http_ai_gateway_metrics_out_t *o, const char *name, ngx_str_t *labels,
    ngx_atomic_t *buckets, ngx_atomic_t *sum);
static u_char *ngx_http_ai_gateway_metrics_escape(u_char *p, u_char *src,
    size_t len);
static ngx_int_t ngx_http_ai_gateway_metrics_printf(
    ngx_http_ai_gateway_metrics_out_t *o, const char *fmt, ...);


static ngx_command_t  ngx_http_ai_gateway_metrics_commands[] = {

    { ngx_string("ai_gateway_metrics_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_ai_gateway_metrics_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_gateway_metrics"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_gateway_metrics_endpoint"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_metrics_endpoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ai_gateway_metrics_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_ai_gateway_metrics_init,      /* postconfiguration */

    ngx_http_ai_gateway_metrics_create_main_conf, /* create main conf */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ai_gateway_metrics_create_loc_conf, /* create location conf */
    ngx_http_ai_gateway_metrics_merge_loc_conf   /* merge location conf */
};


ngx_module_t  ngx_http_ai_gateway_metrics_module = {
    NGX_MODULE_V1,
    &ngx_http_ai_gateway_metrics_module_ctx, /* module context */
    ngx_http_ai_gateway_metrics_commands,  /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_ai_gateway_metrics_init_process, /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* the zone the exporter's counters go to, in this worker: the first one */
static ngx_http_ai_gateway_metrics_zone_t
    *ngx_http_ai_gateway_metrics_otel_zone;


static ngx_uint_t  ngx_http_ai_gateway_metrics_codes[] = {
    NGX_HTTP_AI_GATEWAY_ERR_NO_GATEWAY,
    NGX_HTTP_AI_GATEWAY_ERR_RATE_LIMITED,
    NGX_HTTP_AI_GATEWAY_ERR_PROVIDER_FAILED,
    NGX_HTTP_AI_GATEWAY_ERR_BAD_PROVIDER,
    NGX_HTTP_AI_GATEWAY_ERR_UNAUTHORIZED,
    NGX_HTTP_AI_GATEWAY_ERR_BYOK_ALIAS,
    NGX_HTTP_AI_GATEWAY_ERR_SPEND_LIMITED,
    NGX_HTTP_AI_GATEWAY_ERR_BAD_PATH,
    NGX_HTTP_AI_GATEWAY_ERR_TOO_LARGE,
    NGX_HTTP_AI_GATEWAY_ERR_TIMEOUT,
    NGX_HTTP_AI_GATEWAY_ERR_BAD_HEADER,
    NGX_HTTP_AI_GATEWAY_ERR_NOT_AVAILABLE,
    NGX_HTTP_AI_GATEWAY_ERR_GATEWAY,
    NGX_HTTP_AI_GATEWAY_ERR_BAD_MODEL,
    NGX_HTTP_AI_GATEWAY_ERR_BAD_REQUEST,
    NGX_HTTP_AI_GATEWAY_ERR_LOCATION,
    NGX_HTTP_AI_GATEWAY_ERR_CREDENTIALS,
    0                                      /* any other */
};


/* the buckets' upper bounds, in milliseconds and as served */

static ngx_msec_t  ngx_http_ai_gateway_metrics_bounds[] = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
    120000
};

static char  *ngx_http_ai_gateway_metrics_le[] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
    "10", "30", "60", "120", "+Inf"
};


static char  *ngx_http_ai_gateway_metrics_classes[] = {
    "unknown", "1xx", "2xx", "3xx", "4xx", "5xx"
};

static char  *ngx_http_ai_gateway_metrics_names[] = {
    "gateway", "provider", "model", "client"
};


#define ngx_http_ai_gateway_metrics_off(field)                               \
    offsetof(ngx_http_ai_gateway_metrics_series_t, field)

static ngx_http_ai_gateway_metrics_counter_t
    ngx_http_ai_gateway_metrics_counters[] =
{
    { "ai_gateway_requests_total",
      "Requests the gateway answered.",
      ngx_http_ai_gateway_metrics_off(requests) },

    { "ai_gateway_cache_hits_total",
      "Requests answered from the response cache.",
      ngx_http_ai_gateway_metrics_off(cache_hits) },

    { "ai_gateway_cache_misses_total",
      "Cacheable requests not found in the response cache.",
      ngx_http_ai_gateway_metrics_off(cache_misses) },

    { "ai_gateway_input_tokens_total",
      "Tokens in as the provider reported them: input, cached and cache "
      "writes.",
      ngx_http_ai_gateway_metrics_off(tokens[NGX_HTTP_AI_GATEWAY_METRICS_IN]) },

    { "ai_gateway_output_tokens_total",
      "Tokens out as the provider reported them, reasoning included.",
      ngx_http_ai_gateway_metrics_off(
          tokens[NGX_HTTP_AI_GATEWAY_METRICS_OUT]) },

    { "ai_gateway_cached_tokens_total",
      "Tokens in read from the provider's prompt cache.",
      ngx_http_ai_gateway_metrics_off(
          tokens[NGX_HTTP_AI_GATEWAY_METRICS_CACHED]) },

    { "ai_gateway_reasoning_tokens_total",
      "Tokens out spent on reasoning.",
      ngx_http_ai_gateway_metrics_off(
          tokens[NGX_HTTP_AI_GATEWAY_METRICS_REASONING]) },

    { "ai_gateway_retries_total",
      "Attempts made again on the same step after a failure.",
      ngx_http_ai_gateway_metrics_off(retries) },

    { "ai_gateway_fallbacks_total",
      "Moves to the next step of a Universal Endpoint request.",
      ngx_http_ai_gateway_metrics_off(fallbacks) },

    { "ai_gateway_rate_limited_total",
      "Requests refused by a rate limit (code 2003).",
      ngx_http_ai_gateway_metrics_off(rate_limited) },

    { "ai_gateway_spend_limited_total",
      "Requests refused by a spend limit (code 2045).",
      ngx_http_ai_gateway_metrics_off(spend_limited) },

    { NULL, NULL, 0 }
};


static ngx_str_t  ngx_http_ai_gateway_metrics_model_var =
    ngx_string("ai_gateway_model");
static ngx_str_t  ngx_http_ai_gateway_metrics_attempts_var =
    ngx_string("ai_gateway_attempts");
static ngx_str_t  ngx_http_ai_gateway_metrics_duration_var =
    ngx_string("ai_gateway_duration");
static ngx_str_t  ngx_http_ai_gateway_metrics_overflow =
    ngx_string("__overflow__");


static void *
ngx_http_ai_gateway_metrics_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ai_gateway_metrics_main_conf_t  *mmcf;

    mmcf = ngx_pcalloc(cf->pool,
                       sizeof(ngx_http_ai_gateway_metrics_main_conf_t));
    if (mmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&mmcf->zones, cf->pool, 2, sizeof(ngx_shm_zone_t *))
        != NGX_OK)
    {
        return NULL;
    }

    if (ngx_array_init(&mmcf->refs, cf->pool, 2,
                       sizeof(ngx_http_ai_gateway_metrics_ref_t))
        != NGX_OK)
    {
        return NULL;
    }

    mmcf->model_index = NGX_ERROR;
    mmcf->attempts_index = NGX_ERROR;
    mmcf->duration_index = NGX_ERROR;

    return mmcf;
}


static void *
ngx_http_ai_gateway_metrics_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ai_gateway_metrics_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool,
                       sizeof(ngx_http_ai_gateway_metrics_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->endpoint_zone = NULL;
     *     conf->endpoint_name = { 0, NULL };
     */

    conf->zone = NGX_CONF_UNSET_PTR;
    conf->endpoint = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_http_ai_gateway_metrics_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_ai_gateway_metrics_loc_conf_t *prev = parent;
    ngx_http_ai_gateway_metrics_loc_conf_t *conf = child;

    ngx_shm_zone_t                           **zones;
    ngx_http_ai_gateway_metrics_main_conf_t   *mmcf;

    ngx_conf_merge_ptr_value(conf->zone, prev->zone, NULL);
    ngx_conf_merge_value(conf->endpoint, prev->endpoint, 0);

    if (!conf->endpoint || conf->endpoint_zone) {
        return NGX_CONF_OK;
    }

    /* the endpoint's zone: its own, the location's, or the first one */

    if (conf->zone) {
        conf->endpoint_zone = conf->zone;
        return NGX_CONF_OK;
    }

    mmcf = ngx_http_conf_get_module_main_conf(cf,
                                         ngx_http_ai_gateway_metrics_module);

    if (mmcf->zones.nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ai_gateway_metrics_endpoint\" needs an "
                           "\"ai_gateway_metrics_zone\"");
        return NGX_CONF_ERROR;
    }

    zones = mmcf->zones.elts;
    conf->endpoint_zone = zones[0];

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ai_gateway_metrics_init(ngx_conf_t *cf)
{
    ngx_uint_t                                i;
    ngx_http_handler_pt                      *h;
    ngx_http_core_main_conf_t                *cmcf;
    ngx_http_ai_gateway_metrics_ref_t        *ref;
    ngx_http_ai_gateway_metrics_main_conf_t  *mmcf;

    mmcf = ngx_http_conf_get_module_main_conf(cf,
                                         ngx_http_ai_gateway_metrics_module);

    /* every zone named must be declared (its data is set there) */

    ref = mmcf->refs.elts;

    for (i = 0; i < mmcf->refs.nelts; i++) {
        if (ref[i].zone->data) {
            continue;
        }

        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "unknown zone \"%V\" in \"%s\" directive in %s:%ui, "
                      "it must be declared with "
                      "\"ai_gateway_metrics_zone %V:size\" in http{}",
                      &ref[i].zone->shm.name, ref[i].directive, ref[i].file,
                      ref[i].line, &ref[i].zone->shm.name);

        return NGX_ERROR;
    }

    if (mmcf->zones.nelts == 0) {
        return NGX_OK;
    }

    mmcf->model_index = ngx_http_get_variable_index(cf,
                                       &ngx_http_ai_gateway_metrics_model_var);
    if (mmcf->model_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    mmcf->attempts_index = ngx_http_get_variable_index(cf,
                                    &ngx_http_ai_gateway_metrics_attempts_var);
    if (mmcf->attempts_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    mmcf->duration_index = ngx_http_get_variable_index(cf,
                                    &ngx_http_ai_gateway_metrics_duration_var);
    if (mmcf->duration_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_ai_gateway_metrics_log_handler;

    return NGX_OK;
}


/* the exporter's counters go to this cycle's first zone */

static ngx_int_t
ngx_http_ai_gateway_metrics_init_process(ngx_cycle_t *cycle)
{
    ngx_shm_zone_t                          **zones;
    ngx_http_ai_gateway_metrics_main_conf_t  *mmcf;

    ngx_http_ai_gateway_metrics_otel_zone = NULL;

    mmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                         ngx_http_ai_gateway_metrics_module);

    if (mmcf == NULL || mmcf->zones.nelts == 0) {
        return NGX_OK;
    }

    zones = mmcf->zones.elts;
    ngx_http_ai_gateway_metrics_otel_zone = zones[0]->data;

    return NGX_OK;
}


void
ngx_http_ai_gateway_metrics_otel(ngx_uint_t exported, ngx_uint_t dropped)
{
    ngx_http_ai_gateway_metrics_sh_t  *sh;

    if (ngx_http_ai_gateway_metrics_otel_zone == NULL) {
        return;
    }

    sh = ngx_http_ai_gateway_metrics_otel_zone->sh;

    if (sh == NULL) {
        return;
    }

    if (exported) {
        (void) ngx_atomic_fetch_add(&sh->otel_exported, exported);
    }

    if (dropped) {
        (void) ngx_atomic_fetch_add(&sh->otel_dropped, dropped);
    }
}


/* ai_gateway_metrics_zone name:size [max_series=N]; */

static char *
ngx_http_ai_gateway_metrics_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_gateway_metrics_main_conf_t *mmcf = conf;

    u_char                              *p;
    size_t                               need;
    ssize_t                              size;
    ngx_str_t                           *value, name, s;
    ngx_int_t                            n;
    ngx_uint_t                           i, nhash;
    ngx_shm_zone_t                      *shm_zone, **zp;
    ngx_http_ai_gateway_metrics_zone_t  *mz;

    value = cf->args->elts;

    p = (u_char *) ngx_strchr(value[1].data, ':');

    if (p == NULL || p == value[1].data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\", use name:size", &value[1]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data;
    name.len = p - name.data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    mz = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_gateway_metrics_zone_t));
    if (mz == NULL) {
        return NGX_CONF_ERROR;
    }

    mz->name = name;
    mz->max_series = NGX_HTTP_AI_GATEWAY_METRICS_MAX_SERIES;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "max_series=", 11) == 0) {
            n = ngx_atoi(value[i].data + 11, value[i].len - 11);

            if (n < 1 || n > NGX_HTTP_AI_GATEWAY_METRICS_MAX_LIMIT) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\": from 1 to %d",
                                   &value[i],
                                   NGX_HTTP_AI_GATEWAY_METRICS_MAX_LIMIT);
                return NGX_CONF_ERROR;
            }

            mz->max_series = n;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    /* the layout, and the slab allocator's own pages */

    need = ngx_http_ai_gateway_metrics_zone_need(mz->max_series, &nhash)
           + 8 * ngx_pagesize;

    if ((size_t) size < need) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small for max_series=%ui: "
                           "it needs at least %uzk", &name, mz->max_series,
                           need / 1024 + 1);
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_http_ai_gateway_metrics_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    mz->shm_zone = shm_zone;

    shm_zone->init = ngx_http_ai_gateway_metrics_init_zone;
    shm_zone->data = mz;

    zp = ngx_array_push(&mmcf->zones);
    if (zp == NULL) {
        return NGX_CONF_ERROR;
    }

    *zp = shm_zone;

    return NGX_CONF_OK;
}


/* ai_gateway_metrics zone | off; */

static char *
ngx_http_ai_gateway_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_gateway_metrics_loc_conf_t *mlcf = conf;

    ngx_str_t  *value;

    if (mlcf->zone != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        mlcf->zone = NULL;
        return NGX_CONF_OK;
    }

    mlcf->zone = ngx_http_ai_gateway_metrics_ref(cf, &value[1],
                                                 "ai_gateway_metrics");
    if (mlcf->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* ai_gateway_metrics_endpoint [zone]; */

static char *
ngx_http_ai_gateway_metrics_endpoint(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_gateway_metrics_loc_conf_t *mlcf = conf;

    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    if (mlcf->endpoint != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    mlcf->endpoint = 1;

    if (cf->args->nelts == 2) {
        value = cf->args->elts;

        mlcf->endpoint_zone = ngx_http_ai_gateway_metrics_ref(cf, &value[1],
                                             "ai_gateway_metrics_endpoint");
        if (mlcf->endpoint_zone == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_ai_gateway_metrics_handler;

    return NGX_CONF_OK;
}


/*
 * A zone named by a directive: size 0, a reference to an
 * ai_gateway_metrics_zone declared anywhere in http{}, checked at
 * postconfiguration.
 */

static ngx_shm_zone_t *
ngx_http_ai_gateway_metrics_ref(ngx_conf_t *cf, ngx_str_t *name,
    const char *directive)
{
    ngx_shm_zone_t                           *zone;
    ngx_http_ai_gateway_metrics_ref_t        *ref;
    ngx_http_ai_gateway_metrics_main_conf_t  *mmcf;

    zone = ngx_shared_memory_add(cf, name, 0,
                                 &ngx_http_ai_gateway_metrics_module);
    if (zone == NULL) {
        return NULL;
    }

    mmcf = ngx_http_conf_get_module_main_conf(cf,
                                         ngx_http_ai_gateway_metrics_module);

    ref = ngx_array_push(&mmcf->refs);
    if (ref == NULL) {
        return NULL;
    }

    ref->zone = zone;
    ref->directive = directive;
    ref->file = cf->conf_file->file.name.data;
    ref->line = cf->conf_file->line;

    return zone;
}


/* the bytes the zone's layout takes, and its hash table's slots */

static size_t
ngx_http_ai_gateway_metrics_zone_need(ngx_uint_t max_series,
    ngx_uint_t *nhash)
{
    ngx_uint_t  n;

    for (n = 16; n < 2 * max_series; n <<= 1) { /* void */ }

    *nhash = n;

    return ngx_align(sizeof(ngx_http_ai_gateway_metrics_sh_t), 16)
           + ngx_align(n * sizeof(uint32_t), 16)
           + (max_series + NGX_HTTP_AI_GATEWAY_METRICS_OVERFLOW)
             * sizeof(ngx_http_ai_gateway_metrics_series_t);
}


static ngx_int_t
ngx_http_ai_gateway_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_ai_gateway_metrics_zone_t  *omz = data;

    u_char                                *p;
    size_t                                 size;
    ngx_uint_t                             i, n, nhash;
    ngx_slab_pool_t                       *shpool;
    ngx_http_ai_gateway_metrics_sh_t      *sh;
    ngx_http_ai_gateway_metrics_zone_t    *mz;
    ngx_http_ai_gateway_metrics_series_t  *s;

    mz = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    mz->shpool = shpool;

    size = ngx_http_ai_gateway_metrics_zone_need(mz->max_series, &nhash);

    sh = (omz || shm_zone->shm.exists) ? shpool->data : NULL;

    if (sh) {
        if (sh->magic == NGX_HTTP_AI_GATEWAY_METRICS_MAGIC
            && sh->version == NGX_HTTP_AI_GATEWAY_METRICS_VERSION
            && sh->series_size == sizeof(ngx_http_ai_gateway_metrics_series_t)
            && sh->max_series == mz->max_series
            && sh->nhash == nhash)
        {
            /* the numbers survive the reload */
            mz->sh = sh;
            return NGX_OK;
        }

        ngx_log_error(NGX_LOG_NOTICE, shm_zone->shm.log, 0,
                      "ai_gateway_metrics_zone \"%V\": the layout changed, "
                      "the metrics start from zero", &shm_zone->shm.name);

        ngx_slab_free(shpool, sh);
        shpool->data = NULL;
    }

    p = ngx_slab_alloc(shpool, size);
    if (p == NULL) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "ai_gateway_metrics_zone \"%V\" is too small",
                      &shm_zone->shm.name);
        return NGX_ERROR;
    }

    ngx_memzero(p, size);

    sh = (ngx_http_ai_gateway_metrics_sh_t *) p;
    p += ngx_align(sizeof(ngx_http_ai_gateway_metrics_sh_t), 16);

    sh->hash = (uint32_t *) p;
    p += ngx_align(nhash * sizeof(uint32_t), 16);

    sh->series = (ngx_http_ai_gateway_metrics_series_t *) p;

    sh->series_size = sizeof(ngx_http_ai_gateway_metrics_series_t);
    sh->max_series = mz->max_series;
    sh->nhash = nhash;

    /* the overflow series: every text label "__overflow__" */

    for (i = 0; i < NGX_HTTP_AI_GATEWAY_METRICS_OVERFLOW; i++) {
        s = &sh->series[mz->max_series + i];

        s->status = (u_char) (i / 2);
        s->cached = (u_char) (i % 2);

        for (n = 0; n < NGX_HTTP_AI_GATEWAY_METRICS_LABELS; n++) {
            s->len[n] = (u_char) ngx_http_ai_gateway_metrics_overflow.len;
            ngx_memcpy(s->label[n], ngx_http_ai_gateway_metrics_overflow.data,
                       ngx_http_ai_gateway_metrics_overflow.len);
        }
    }

    sh->version = NGX_HTTP_AI_GATEWAY_METRICS_VERSION;
    sh->magic = NGX_HTTP_AI_GATEWAY_METRICS_MAGIC;

    shpool->data = sh;
    mz->sh = sh;

    return NGX_OK;
}


/* the log phase: the request's numbers, added to its series */

static ngx_int_t
ngx_http_ai_gateway_metrics_log_handler(ngx_http_request_t *r)
{
    uint64_t                                  nano;
    ngx_int_t                                 attempts, n;
    ngx_uint_t                                i, status, step, code;
    ngx_str_t                                *client;
    ngx_http_request_t                       *sr;
    ngx_http_variable_value_t                *vv;
    ngx_http_ai_gateway_ctx_t                *ctx, *actx;
    ngx_http_ai_gateway_loc_conf_t           *alcf;
    ngx_http_ai_gateway_metrics_key_t         key;
    ngx_http_ai_gateway_metrics_zone_t       *mz;
    ngx_http_ai_gateway_metrics_series_t     *s;
    ngx_http_ai_gateway_metrics_loc_conf_t   *mlcf;
    ngx_http_ai_gateway_metrics_main_conf_t  *mmcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_metrics_module);

    if (mlcf->zone == NULL) {
        return NGX_OK;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    if (ctx == NULL || ctx->kind != NGX_HTTP_AI_GATEWAY_REQUEST) {
        return NGX_OK;
    }

    mz = mlcf->zone->data;

    if (mz == NULL || mz->sh == NULL) {
        return NGX_OK;
    }

    mmcf = ngx_http_get_module_main_conf(r,
                                         ngx_http_ai_gateway_metrics_module);

    /* a request run as attempts reports its last one, as variables do */

    sr = ngx_http_ai_gateway_retry_request(ctx);
    actx = sr ? ngx_http_get_module_ctx(sr, ngx_http_ai_gateway_module)
              : NULL;

    if (actx == NULL) {
        actx = ctx;
    }

    /* the status, as the request's log record has it */

    status = r->err_status ? r->err_status : r->headers_out.status;

    if (status == 0 && r->connection->error) {
        status = NGX_HTTP_CLIENT_CLOSED_REQUEST;
    }

    ngx_memzero(&key, sizeof(ngx_http_ai_gateway_metrics_key_t));

    key.status = (u_char) ((status >= 100 && status < 600) ? status / 100
                                                           : 0);
    key.cached = (ctx->cache.hit || actx->cache.hit) ? 1 : 0;

    if (ctx->route.gateway_id.len) {
        ngx_http_ai_gateway_metrics_label(&key,
                                          NGX_HTTP_AI_GATEWAY_METRICS_GATEWAY,
                                          ctx->route.gateway_id.data,
                                          ctx->route.gateway_id.len);
    } else {
        alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_module);
        ngx_http_ai_gateway_metrics_label(&key,
                                          NGX_HTTP_AI_GATEWAY_METRICS_GATEWAY,
                                          alcf->gateway_id.data,
                                          alcf->gateway_id.len);
    }

    ngx_http_ai_gateway_metrics_label(&key,
                                      NGX_HTTP_AI_GATEWAY_METRICS_PROVIDER,
                                      actx->route.provider.data,
                                      actx->route.provider.len);

    vv = ngx_http_get_indexed_variable(r, mmcf->model_index);

    if (vv && !vv->not_found) {
        ngx_http_ai_gateway_metrics_label(&key,
                                          NGX_HTTP_AI_GATEWAY_METRICS_MODEL,
                                          vv->data, vv->len);
    }

    client = ngx_http_ai_gateway_client(r);

    ngx_http_ai_gateway_metrics_label(&key, NGX_HTTP_AI_GATEWAY_METRICS_CLIENT,
                                      client->data, client->len);

    s = ngx_http_ai_gateway_metrics_series(mz, &key);

    /* a miss: looked up in a cache and not found (not "no cache") */

    if (key.cached) {
        (void) ngx_atomic_fetch_add(&s->cache_hits, 1);

    } else if (ctx->cache.state || actx->cache.state) {
        (void) ngx_atomic_fetch_add(&s->cache_misses, 1);
    }

    /* the error: the request's own, else its last attempt's */

    code = ctx->error.code ? ctx->error.code : actx->error.code;

    if (code) {
        for (i = 0; ngx_http_ai_gateway_metrics_codes[i]; i++) {
            if (ngx_http_ai_gateway_metrics_codes[i] == code) {
                break;
            }
        }

        (void) ngx_atomic_fetch_add(&s->errors[i], 1);

        if (code == NGX_HTTP_AI_GATEWAY_ERR_RATE_LIMITED) {
            (void) ngx_atomic_fetch_add(&s->rate_limited, 1);

        } else if (code == NGX_HTTP_AI_GATEWAY_ERR_SPEND_LIMITED) {
            (void) ngx_atomic_fetch_add(&s->spend_limited, 1);
        }
    }

    /* usage and cost, as usage.c and cost.c left them */

    if (actx->usage.known) {
        (void) ngx_atomic_fetch_add(&s->tokens[NGX_HTTP_AI_GATEWAY_METRICS_IN],
                                    (ngx_atomic_int_t) (actx->usage.input
                                                   + actx->usage.cached
                                                   + actx->usage.cache_write));
        (void) ngx_atomic_fetch_add(
                                 &s->tokens[NGX_HTTP_AI_GATEWAY_METRICS_OUT],
                                 (ngx_atomic_int_t) actx->usage.output);
        (void) ngx_atomic_fetch_add(
                              &s->tokens[NGX_HTTP_AI_GATEWAY_METRICS_CACHED],
                              (ngx_atomic_int_t) actx->usage.cached);
        (void) ngx_atomic_fetch_add(
                           &s->tokens[NGX_HTTP_AI_GATEWAY_METRICS_REASONING],
                           (ngx_atomic_int_t) actx->usage.reasoning);
    }

    if (actx->cost.known && actx->cost.value > 0
        && actx->cost.value < 1e9)
    {
        nano = (uint64_t) (actx->cost.value * 1e9 + 0.5);
        (void) ngx_atomic_fetch_add(&s->cost, (ngx_atomic_int_t) nano);
    }

    /* attempts: retries on a step, and fallbacks to the next steps */

    step = ngx_http_ai_gateway_retry_step(ctx);

    vv = ngx_http_get_indexed_variable(r, mmcf->attempts_index);

    attempts = (vv && !vv->not_found) ? ngx_atoi(vv->data, vv->len) : 1;

    if (attempts > 0 && (ngx_uint_t) attempts > step + 1) {
        (void) ngx_atomic_fetch_add(&s->retries,
                                    (ngx_atomic_int_t) (attempts - step - 1));
    }

    if (step) {
        (void) ngx_atomic_fetch_add(&s->fallbacks, (ngx_atomic_int_t) step);
    }

    /*
     * the times, as the variables have them: $ai_gateway_duration (the
     * request's, in milliseconds), and the time to first byte upstream.c
     * measured for $ai_gateway_ttfb and the log record
     */

    vv = ngx_http_get_indexed_variable(r, mmcf->duration_index);

    if (vv && !vv->not_found) {
        n = ngx_atoi(vv->data, vv->len);

        if (n != NGX_ERROR) {
            ngx_http_ai_gateway_metrics_observe(s->duration,
                                                &s->duration_sum,
                                                (ngx_msec_t) n);
        }
    }

    if (actx->relay.first_byte) {
        ngx_http_ai_gateway_metrics_observe(s->ttfb, &s->ttfb_sum,
                                            actx->relay.ttfb);
    }

    /*
     * the request is counted last: a reader that sees it counted (the
     * endpoint, in another worker) sees all its other numbers
     */

    (void) ngx_atomic_fetch_add(&s->requests, 1);

    return NGX_OK;
}


/*
 * A label value: at most NGX_HTTP_AI_GATEWAY_METRICS_LABEL bytes, each
 * outside printable ASCII replaced by "_".
 */

static void
ngx_http_ai_gateway_metrics_label(ngx_http_ai_gateway_metrics_key_t *key,
    ngx_uint_t n, u_char *p, size_t len)
{
    size_t   i;
    u_char  *d;

    len = ngx_min(len, NGX_HTTP_AI_GATEWAY_METRICS_LABEL);
    d = key->label[n];

    for (i = 0; i < len; i++) {
        d[i] = (p[i] >= 0x20 && p[i] < 0x7f) ? p[i] : '_';
    }

    key->len[n] = (u_char) len;
}


/*
 * The request's series: found, made, or an overflow one.  The zone's
 * mutex is held for the probe and, for a new combination, the copy of
 * its labels; the series number is published after the series.
 */

static ngx_http_ai_gateway_metrics_series_t *
ngx_http_ai_gateway_metrics_series(ngx_http_ai_gateway_metrics_zone_t *mz,
    ngx_http_ai_gateway_metrics_key_t *key)
{
    uint32_t                               hash, *slot;
    ngx_uint_t                             i, n, mask;
    ngx_http_ai_gateway_metrics_sh_t      *sh;
    ngx_http_ai_gateway_metrics_series_t  *s;

    sh = mz->sh;

    /* the key is zeroed past each value: hashed and compared whole */

    hash = ngx_crc32_short((u_char *) key,
                           offsetof(ngx_http_ai_gateway_metrics_key_t, hash));

    mask = sh->nhash - 1;

    ngx_shmtx_lock(&mz->shpool->mutex);

    for (i = hash & mask; /* void */ ; i = (i + 1) & mask) {

        slot = &sh->hash[i];

        if (*slot == 0) {
            break;
        }

        s = &sh->series[*slot - 1];

        if (s->hash == hash
            && s->status == key->status
            && s->cached == key->cached
            && ngx_memcmp(s->len, key->len, sizeof(key->len)) == 0
            && ngx_memcmp(s->label, key->label, sizeof(key->label)) == 0)
        {
            ngx_shmtx_unlock(&mz->shpool->mutex);
            return s;
        }
    }

    n = sh->nseries;

    if (n >= sh->max_series) {
        ngx_shmtx_unlock(&mz->shpool->mutex);

        (void) ngx_atomic_fetch_add(&sh->refused, 1);

        return &sh->series[sh->max_series + key->status * 2 + key->cached];
    }

    /* the table is at most half full: the probe above found a free slot */

    s = &sh->series[n];

    s->hash = hash;
    s->status = key->status;
    s->cached = key->cached;
    ngx_memcpy(s->len, key->len, sizeof(key->len));
    ngx_memcpy(s->label, key->label, sizeof(key->label));

    ngx_memory_barrier();

    *slot = (uint32_t) (n + 1);
    sh->nseries = n + 1;

    ngx_shmtx_unlock(&mz->shpool->mutex);

    return s;
}


static void
ngx_http_ai_gateway_metrics_observe(ngx_atomic_t *buckets, ngx_atomic_t *sum,
    ngx_msec_t ms)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_AI_GATEWAY_METRICS_BUCKETS; i++) {
        if (ms <= ngx_http_ai_gateway_metrics_bounds[i]) {
            break;
        }
    }

    /* each bucket counts its own; they are added up when served */

    (void) ngx_atomic_fetch_add(&buckets[i], 1);
    (void) ngx_atomic_fetch_add(sum, (ngx_atomic_int_t) ms);
}


/*
 * The endpoint: the zone's series in the Prometheus text format, or as
 * JSON with "?format=json" or "Accept: application/json".  The output is
 * made whole in the request's pool, one pass over at most max_series
 * series (plus the overflow ones), reading the counters without a lock.
 */

static ngx_int_t
ngx_http_ai_gateway_metrics_handler(ngx_http_request_t *r)
{
    u_char                                  *p;
    ngx_int_t                                rc;
    ngx_str_t                                format, *labels;
    ngx_uint_t                               i, n, k, json, nseries;
    ngx_atomic_uint_t                        requests;
    ngx_table_elt_t                         *h;
    ngx_list_part_t                         *part;
    ngx_http_ai_gateway_metrics_sh_t        *sh;
    ngx_http_ai_gateway_metrics_out_t        o;
    ngx_http_ai_gateway_metrics_zone_t      *mz;
    ngx_http_ai_gateway_metrics_series_t   **all, *s, *copy;
    ngx_http_ai_gateway_metrics_loc_conf_t  *mlcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_metrics_module);

    mz = mlcf->endpoint_zone->data;

    if (mz == NULL || mz->sh == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    sh = mz->sh;

    json = 0;

    if (ngx_http_arg(r, (u_char *) "format", 6, &format) == NGX_OK) {
        json = (format.len == 4
                && ngx_strncmp(format.data, "json", 4) == 0);

    } else {
        part = &r->headers_in.headers.part;
        h = part->elts;

        for (i = 0; /* void */ ; i++) {

            if (i >= part->nelts) {
                if (part->next == NULL) {
                    break;
                }

                part = part->next;
                h = part->elts;
                i = 0;
            }

            if (h[i].key.len == 6
                && ngx_strncasecmp(h[i].key.data, (u_char *) "accept", 6)
                   == 0
                && ngx_strlcasestrn(h[i].value.data,
                                    h[i].value.data + h[i].value.len,
                                    (u_char *) "application/json", 16 - 1)
                   != NULL)
            {
                json = 1;
                break;
            }
        }
    }

    /* the series in use now, and the overflow ones that were used */

    nseries = sh->nseries;
    ngx_memory_barrier();

    if (nseries > sh->max_series) {
        nseries = sh->max_series;
    }

    all = ngx_palloc(r->pool, (nseries + NGX_HTTP_AI_GATEWAY_METRICS_OVERFLOW)
                              * sizeof(ngx_http_ai_gateway_metrics_series_t *));
    if (all == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    copy = ngx_palloc(r->pool,
                      (nseries + NGX_HTTP_AI_GATEWAY_METRICS_OVERFLOW)
                      * sizeof(ngx_http_ai_gateway_metrics_series_t));
    if (copy == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /*
     * each series as it is now, its request count read first: the
     * request is counted last (metrics_log_handler()), so that every
     * request counted has its other numbers in the copy
     */

    n = 0;

    for (i = 0; i < nseries + NGX_HTTP_AI_GATEWAY_METRICS_OVERFLOW; i++) {
        s = (i < nseries) ? &sh->series[i]
                          : &sh->series[sh->max_series + i - nseries];

        requests = s->requests;

        if (i >= nseries && requests == 0) {
            continue;
        }

        ngx_memory_barrier();

        ngx_memcpy(&copy[n], s, sizeof(ngx_http_ai_gateway_metrics_series_t));
        copy[n].requests = requests;

        all[n] = &copy[n];
        n++;
    }

    o.request = r;
    o.out = NULL;
    o.last = &o.out;
    o.buf = NULL;
    o.size = 0;

    if (json) {
        rc = ngx_http_ai_gateway_metrics_json(&o, sh, all, n);

    } else {
        /* each series' labels, escaped once */

        labels = ngx_palloc(r->pool, (n + 1) * sizeof(ngx_str_t));
        if (labels == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        for (i = 0; i < n; i++) {
            s = all[i];

            p = ngx_pnalloc(r->pool, NGX_HTTP_AI_GATEWAY_METRICS_LINE);
            if (p == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            labels[i].data = p;

            for (k = 0; k < NGX_HTTP_AI_GATEWAY_METRICS_LABELS; k++) {
                p = ngx_sprintf(p, "%s=\"",
                                ngx_http_ai_gateway_metrics_names[k]);
                p = ngx_http_ai_gateway_metrics_escape(p, s->label[k],
                                                       s->len[k]);
                *p++ = '"';
                *p++ = ',';
            }

            p = ngx_sprintf(p, "status=\"%s\",cached=\"%s\"",
                        ngx_http_ai_gateway_metrics_classes[s->status
                                   % NGX_HTTP_AI_GATEWAY_METRICS_CLASSES],
                        s->cached ? "true" : "false");

            labels[i].len = p - labels[i].data;
        }

        rc = ngx_http_ai_gateway_metrics_text(&o, sh, all, labels, n);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = o.size;

    if (json) {
        ngx_str_set(&r->headers_out.content_type, "application/json");

    } else {
        ngx_str_set(&r->headers_out.content_type,
                    "text/plain; version=0.0.4; charset=utf-8");
    }

    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    if (o.buf) {
        o.buf->last_buf = (r == r->main) ? 1 : 0;
        o.buf->last_in_chain = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only || o.out == NULL) {
        return rc;
    }

    return ngx_http_output_filter(r, o.out);
}


static ngx_int_t
ngx_http_ai_gateway_metrics_text(ngx_http_ai_gateway_metrics_out_t *o,
    ngx_http_ai_gateway_metrics_sh_t *sh,
    ngx_http_ai_gateway_metrics_series_t **all, ngx_str_t *labels,
    ngx_uint_t n)
{
    ngx_uint_t                              i, k;
    ngx_atomic_uint_t                       v;
    ngx_http_ai_gateway_metrics_counter_t  *c;

    for (c = ngx_http_ai_gateway_metrics_counters; c->name; c++) {

        if (ngx_http_ai_gateway_metrics_printf(o,
                "# HELP %s %s\n# TYPE %s counter\n",
                c->name, c->help, c->name)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        for (i = 0; i < n; i++) {
            v = *(ngx_atomic_t *) ((u_char *) all[i] + c->offset);

            if (ngx_http_ai_gateway_metrics_printf(o, "%s{%V} %uA\n",
                                                   c->name, &labels[i], v)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    if (ngx_http_ai_gateway_metrics_printf(o,
            "# HELP ai_gateway_cost_usd_total Cost of the answers in US "
            "dollars, as priced by the gateway or set by cf-aig-custom-cost."
            "\n# TYPE ai_gateway_cost_usd_total counter\n")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        v = all[i]->cost;

        if (ngx_http_ai_gateway_metrics_printf(o,
                "ai_gateway_cost_usd_total{%V} %uA.%09uA\n",
                &labels[i], v / 1000000000, v % 1000000000)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_http_ai_gateway_metrics_printf(o,
            "# HELP ai_gateway_errors_total Requests answered with a gateway "
            "error, by its code (docs/errors.md).\n"
            "# TYPE ai_gateway_errors_total counter\n")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        for (k = 0; k < NGX_HTTP_AI_GATEWAY_METRICS_CODES; k++) {
            v = all[i]->errors[k];

            if (v == 0) {
                continue;
            }

            if (ngx_http_ai_gateway_metrics_codes[k]) {
                if (ngx_http_ai_gateway_metrics_printf(o,
                        "ai_gateway_errors_total{%V,code=\"%ui\"} %uA\n",
                        &labels[i], ngx_http_ai_gateway_metrics_codes[k], v)
                    != NGX_OK)
                {
                    return NGX_ERROR;
                }

                continue;
            }

            if (ngx_http_ai_gateway_metrics_printf(o,
                    "ai_gateway_errors_total{%V,code=\"other\"} %uA\n",
                    &labels[i], v)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    if (ngx_http_ai_gateway_metrics_printf(o,
            "# HELP ai_gateway_request_duration_seconds Time from the "
            "request's first byte to its log phase.\n"
            "# TYPE ai_gateway_request_duration_seconds histogram\n")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        if (ngx_http_ai_gateway_metrics_histogram(o,
                "ai_gateway_request_duration_seconds", &labels[i],
                all[i]->duration, &all[i]->duration_sum)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_http_ai_gateway_metrics_printf(o,
            "# HELP ai_gateway_time_to_first_byte_seconds Time from sending "
            "the request to the provider to its first byte.\n"
            "# TYPE ai_gateway_time_to_first_byte_seconds histogram\n")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        if (ngx_http_ai_gateway_metrics_histogram(o,
                "ai_gateway_time_to_first_byte_seconds", &labels[i],
                all[i]->ttfb, &all[i]->ttfb_sum)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return ngx_http_ai_gateway_metrics_printf(o,
        "# HELP ai_gateway_metrics_series Label combinations in use.\n"
        "# TYPE ai_gateway_metrics_series gauge\n"
        "ai_gateway_metrics_series %uA\n"
        "# HELP ai_gateway_metrics_series_limit Label combinations at most "
        "(max_series).\n"
        "# TYPE ai_gateway_metrics_series_limit gauge\n"
        "ai_gateway_metrics_series_limit %ui\n"
        "# HELP ai_gateway_metrics_series_refused_total Requests recorded in "
        "an overflow series: a new label combination past max_series.\n"
        "# TYPE ai_gateway_metrics_series_refused_total counter\n"
        "ai_gateway_metrics_series_refused_total %uA\n"
        "# HELP ai_gateway_otel_spans_exported_total Spans the "
        "OpenTelemetry exporter sent.\n"
        "# TYPE ai_gateway_otel_spans_exported_total counter\n"
        "ai_gateway_otel_spans_exported_total %uA\n"
        "# HELP ai_gateway_otel_spans_dropped_total Spans the "
        "OpenTelemetry exporter dropped.\n"
        "# TYPE ai_gateway_otel_spans_dropped_total counter\n"
        "ai_gateway_otel_spans_dropped_total %uA\n",
        (ngx_atomic_uint_t) ngx_min(sh->nseries, sh->max_series),
        sh->max_series, (ngx_atomic_uint_t) sh->refused,
        (ngx_atomic_uint_t) sh->otel_exported,
        (ngx_atomic_uint_t) sh->otel_dropped);
}


static ngx_int_t
ngx_http_ai_gateway_metrics_histogram(ngx_http_ai_gateway_metrics_out_t *o,
    const char *name, ngx_str_t *labels, ngx_atomic_t *buckets,
    ngx_atomic_t *sum)
{
    ngx_uint_t         i;
    ngx_atomic_uint_t  count, ms;

    count = 0;

    for (i = 0; i <= NGX_HTTP_AI_GATEWAY_METRICS_BUCKETS; i++) {
        count += buckets[i];

        if (ngx_http_ai_gateway_metrics_printf(o,
                "%s_bucket{%V,le=\"%s\"} %uA\n", name, labels,
                ngx_http_ai_gateway_metrics_le[i], count)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    ms = *sum;

    return ngx_http_ai_gateway_metrics_printf(o,
                                          "%s_sum{%V} %uA.%03uA\n"
                                          "%s_count{%V} %uA\n",
                                          name, labels, ms / 1000, ms % 1000,
                                          name, labels, count);
}


static ngx_int_t
ngx_http_ai_gateway_metrics_json(ngx_http_ai_gateway_metrics_out_t *o,
    ngx_http_ai_gateway_metrics_sh_t *sh,
    ngx_http_ai_gateway_metrics_series_t **all, ngx_uint_t n)
{
    u_char                                 *p, *start;
    ngx_uint_t                              i, k, h, first;
    ngx_atomic_t                           *b;
    ngx_atomic_uint_t                       v, count, ms;
    ngx_http_ai_gateway_metrics_series_t   *s;
    ngx_http_ai_gateway_metrics_counter_t  *c;

    if (ngx_http_ai_gateway_metrics_printf(o,
            "{\"series_in_use\":%uA,\"series_limit\":%ui,"
            "\"series_refused\":%uA,\"otel_spans_exported\":%uA,"
            "\"otel_spans_dropped\":%uA,\"series\":[",
            (ngx_atomic_uint_t) ngx_min(sh->nseries, sh->max_series),
            sh->max_series, (ngx_atomic_uint_t) sh->refused,
            (ngx_atomic_uint_t) sh->otel_exported,
            (ngx_atomic_uint_t) sh->otel_dropped)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        s = all[i];

        /* the labels: printable ASCII, '\' and '"' escaped */

        start = ngx_pnalloc(o->request->pool,
                            NGX_HTTP_AI_GATEWAY_METRICS_LINE);
        if (start == NULL) {
            return NGX_ERROR;
        }

        p = ngx_sprintf(start, "%s{\"labels\":{", i ? "," : "");

        for (k = 0; k < NGX_HTTP_AI_GATEWAY_METRICS_LABELS; k++) {
            p = ngx_sprintf(p, "\"%s\":\"",
                            ngx_http_ai_gateway_metrics_names[k]);
            p = ngx_http_ai_gateway_metrics_escape(p, s->label[k], s->len[k]);
            *p++ = '"';
            *p++ = ',';
        }

        p = ngx_sprintf(p, "\"status\":\"%s\",\"cached\":\"%s\"}",
                        ngx_http_ai_gateway_metrics_classes[s->status
                                   % NGX_HTTP_AI_GATEWAY_METRICS_CLASSES],
                        s->cached ? "true" : "false");

        if (ngx_http_ai_gateway_metrics_printf(o, "%*s", (size_t) (p - start),
                                               start)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        for (c = ngx_http_ai_gateway_metrics_counters; c->name; c++) {
            v = *(ngx_atomic_t *) ((u_char *) s + c->offset);

            if (ngx_http_ai_gateway_metrics_printf(o, ",\"%s\":%uA",
                                                   c->name, v)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        v = s->cost;

        if (ngx_http_ai_gateway_metrics_printf(o,
                ",\"ai_gateway_cost_usd_total\":%uA.%09uA"
                ",\"ai_gateway_errors_total\":{",
                v / 1000000000, v % 1000000000)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        first = 1;

        for (k = 0; k < NGX_HTTP_AI_GATEWAY_METRICS_CODES; k++) {
            v = s->errors[k];

            if (v == 0) {
                continue;
            }

            if (ngx_http_ai_gateway_metrics_codes[k]) {
                if (ngx_http_ai_gateway_metrics_printf(o, "%s\"%ui\":%uA",
                        first ? "" : ",",
                        ngx_http_ai_gateway_metrics_codes[k], v)
                    != NGX_OK)
                {
                    return NGX_ERROR;
                }

            } else if (ngx_http_ai_gateway_metrics_printf(o,
                           "%s\"other\":%uA", first ? "" : ",", v)
                       != NGX_OK)
            {
                return NGX_ERROR;
            }

            first = 0;
        }

        /* the histograms, buckets cumulative as in the text form */

        for (h = 0; h < 2; h++) {
            b = h ? s->ttfb : s->duration;
            ms = h ? s->ttfb_sum : s->duration_sum;

            if (ngx_http_ai_gateway_metrics_printf(o,
                    "},\"%s\":{\"buckets\":{",
                    h ? "ai_gateway_time_to_first_byte_seconds"
                      : "ai_gateway_request_duration_seconds")
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            count = 0;

            for (k = 0; k <= NGX_HTTP_AI_GATEWAY_METRICS_BUCKETS; k++) {
                count += b[k];

                if (ngx_http_ai_gateway_metrics_printf(o, "%s\"%s\":%uA",
                        k ? "," : "", ngx_http_ai_gateway_metrics_le[k],
                        count)
                    != NGX_OK)
                {
                    return NGX_ERROR;
                }
            }

            if (ngx_http_ai_gateway_metrics_printf(o,
                    "},\"sum\":%uA.%03uA,\"count\":%uA",
                    ms / 1000, ms % 1000, count)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        if (ngx_http_ai_gateway_metrics_printf(o, "}}") != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return ngx_http_ai_gateway_metrics_printf(o, "]}\n");
}


/* a label value, '\' and '"' escaped (its bytes are printable ASCII) */

static u_char *
ngx_http_ai_gateway_metrics_escape(u_char *p, u_char *src, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (src[i] == '\\' || src[i] == '"') {
            *p++ = '\\';
        }

        *p++ = src[i];
    }

    return p;
}


/* one line or less at a time, into 16k buffers of the request's pool */

static ngx_int_t
ngx_http_ai_gateway_metrics_printf(ngx_http_ai_gateway_metrics_out_t *o,
    const char *fmt, ...)
{
    u_char       *p;
    va_list       args;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    b = o->buf;

    if (b == NULL
        || (size_t) (b->end - b->last) < NGX_HTTP_AI_GATEWAY_METRICS_LINE * 2)
    {
        b = ngx_create_temp_buf(o->request->pool,
                                NGX_HTTP_AI_GATEWAY_METRICS_BUF);
        if (b == NULL) {
            return NGX_ERROR;
        }

        cl = ngx_alloc_chain_link(o->request->pool);
        if (cl == NULL) {
            return NGX_ERROR;
        }

        cl->buf = b;
        cl->next = NULL;

        *o->last = cl;
        o->last = &cl->next;
        o->buf = b;
    }

    va_start(args, fmt);
    p = ngx_vslprintf(b->last, b->end, fmt, args);
    va_end(args);

    o->size += p - b->last;
    b->last = p;

    return NGX_OK;
}
