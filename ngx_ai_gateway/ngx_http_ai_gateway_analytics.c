
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_api.h"


/*
 * Analytics (docs/dashboard.md): time series of requests, errors, cached
 * answers, tokens in and out and cost, per gateway, provider and model,
 * in a shared memory zone of their own:
 *
 *   ai_gateway_analytics_zone name:size [bucket=1m] [keep=24h] [max=N];
 *   ai_gateway_analytics name | off;
 *
 * The zone holds a fixed table of series, laid out once when the zone is
 * made: a series is a (gateway, provider, model) combination and a ring
 * of "keep / bucket" buckets, each the sums of the requests that started
 * in its time span.  A bucket is reused when its time comes round again;
 * nothing is allocated afterwards, so the zone never grows and never
 * fills.  The number of series is what the zone's size holds (or max=,
 * if smaller); a model name is the client's to choose, so the table is
 * shared out this way: the last eighth (at least one) of the series are
 * kept for a "__other__" model of each gateway and provider, and the first
 * series of all is "__other__" for everything (gateway, provider and
 * model).  A new combination takes a free series while there are more
 * than the reserve; past that its requests are summed in its gateway and
 * provider's "__other__" series; past the reserve too, in the first one.
 * A provider that was not routed (a name the gateway refused) is
 * "__other__", and so is a model name longer than 128 bytes or with bytes
 * outside printable ASCII.
 *
 * A request is counted once, in nginx's log phase, when it is over: by
 * what log.c and the variables report for it (a request that ran as
 * attempts reports its last attempt: the provider and model that
 * answered, or failed last), with the status its client got; its usage
 * and cost as usage.c and cost.c left them.  An error is a status from
 * 400 up (a client that left is 499), or an answer cut (log.failed).
 *
 * The counts are summed under the zone's mutex: a few additions.  The
 * management API reads them (GET .../gateways/{id}/analytics, through
 * api.c's table): the gateway's series summed by provider or by
 * provider and model, the buckets in the range asked for.  A reload
 * keeps the counts when the zone's geometry (size, bucket, keep, max) is
 * the same; a zone whose geometry changed starts again from zero.
 */


/* the longest gateway id, provider and model kept as they are */
#define NGX_HTTP_AI_GATEWAY_ANALYTICS_GW        64
#define NGX_HTTP_AI_GATEWAY_ANALYTICS_PR        64
#define NGX_HTTP_AI_GATEWAY_ANALYTICS_MODEL     128

#define NGX_HTTP_AI_GATEWAY_ANALYTICS_OTHER     "__other__"

/* group_by */
#define NGX_HTTP_AI_GATEWAY_ANALYTICS_BY_MODEL     0
#define NGX_HTTP_AI_GATEWAY_ANALYTICS_BY_PROVIDER  1


typedef struct {
    int64_t                        time;       /* its start; 0: unused */
    uint64_t                       requests;
    uint64_t                       errors;
    uint64_t                       cached;
    uint64_t                       tokens_in;
    uint64_t                       tokens_out;
    double                         cost;
} ngx_http_ai_gateway_analytics_bucket_t;


/* a series: its key, then its ring of buckets */

typedef struct {
    uint32_t                       hash;
    uint16_t                       gateway_len;
    uint16_t                       provider_len;
    uint16_t                       model_len;
    u_char                         gateway[NGX_HTTP_AI_GATEWAY_ANALYTICS_GW];
    u_char                         provider[NGX_HTTP_AI_GATEWAY_ANALYTICS_PR];
    u_char                         model[NGX_HTTP_AI_GATEWAY_ANALYTICS_MODEL];
    ngx_http_ai_gateway_analytics_bucket_t  buckets[1];
} ngx_http_ai_gateway_analytics_series_t;


/*
 * The geometry is read from here, under the mutex, never from a cycle's
 * configuration: during a reload that changed it, the old workers still
 * count into the zone the new cycle laid out again.
 */

typedef struct {
    time_t                         bucket;     /* the geometry it was */
    ngx_uint_t                     nbuckets;   /* made with */
    ngx_uint_t                     max;
    size_t                         series_size;
    ngx_uint_t                     n;          /* series in use */
    u_char                        *series;     /* max of them */
} ngx_http_ai_gateway_analytics_sh_t;


typedef struct {
    ngx_http_ai_gateway_analytics_sh_t  *sh;
    ngx_slab_pool_t                *shpool;
    time_t                          bucket;
    ngx_uint_t                      nbuckets;
    ngx_uint_t                      max;
    size_t                          series_size;
} ngx_http_ai_gateway_analytics_zone_t;


/* which zone a gateway records into (the first location's) */

typedef struct {
    ngx_str_t                       gateway;
    ngx_shm_zone_t                 *zone;
} ngx_http_ai_gateway_analytics_gateway_t;


typedef struct {
    ngx_array_t                     gateways;
} ngx_http_ai_gateway_analytics_main_conf_t;


typedef struct {
    ngx_shm_zone_t                 *zone;      /* NULL: off */
} ngx_http_ai_gateway_analytics_loc_conf_t;


/* what one request adds */

typedef struct {
    ngx_str_t                       gateway;
    ngx_str_t                       provider;
    ngx_str_t                       model;
    time_t                          time;
    ngx_uint_t                      error;
    ngx_uint_t                      cached;
    uint64_t                        tokens_in;
    uint64_t                        tokens_out;
    double                          cost;
} ngx_http_ai_gateway_analytics_point_t;


/* one group of the API's answer, in the request's pool */

typedef struct {
    ngx_str_t                       provider;
    ngx_str_t                       model;
    ngx_http_ai_gateway_analytics_bucket_t  total;
    ngx_http_ai_gateway_analytics_bucket_t *buckets;
} ngx_http_ai_gateway_analytics_group_t;


static void *ngx_http_ai_gateway_analytics_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_ai_gateway_analytics_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ai_gateway_analytics_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_ai_gateway_analytics_init(ngx_conf_t *cf);
static char *ngx_http_ai_gateway_analytics_zone(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_ai_gateway_analytics(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_ai_gateway_analytics_init_zone(
    ngx_shm_zone_t *shm_zone, void *data);
static ngx_int_t ngx_http_ai_gateway_analytics_layout(
    ngx_http_ai_gateway_analytics_zone_t *az);
static ngx_int_t ngx_http_ai_gateway_analytics_handler(ngx_http_request_t *r);
static void ngx_http_ai_gateway_analytics_key(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_analytics_point_t *pt);
static void ngx_http_ai_gateway_analytics_add(
    ngx_http_ai_gateway_analytics_zone_t *az,
    ngx_http_ai_gateway_analytics_point_t *pt);
static ngx_http_ai_gateway_analytics_series_t *
    ngx_http_ai_gateway_analytics_find(
    ngx_http_ai_gateway_analytics_zone_t *az, ngx_str_t *gateway,
    ngx_str_t *provider, ngx_str_t *model, ngx_uint_t create);
static ngx_uint_t ngx_http_ai_gateway_analytics_printable(ngx_str_t *s,
    size_t max);
static ngx_int_t ngx_http_ai_gateway_analytics_time(ngx_str_t *s,
    time_t *t);
static void ngx_http_ai_gateway_analytics_sum(
    ngx_http_ai_gateway_analytics_bucket_t *to,
    ngx_http_ai_gateway_analytics_bucket_t *from);
static void ngx_http_ai_gateway_analytics_gen_counts(
    ngx_http_ai_gateway_gen_t *gen, ngx_http_ai_gateway_analytics_bucket_t *b);


static ngx_str_t  ngx_http_ai_gateway_analytics_other =
    ngx_string(NGX_HTTP_AI_GATEWAY_ANALYTICS_OTHER);

static ngx_str_t  ngx_http_ai_gateway_analytics_model_var =
    ngx_string("ai_gateway_model");


static ngx_command_t  ngx_http_ai_gateway_analytics_commands[] = {

    { ngx_string("ai_gateway_analytics_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_ai_gateway_analytics_zone,
      0,
      0,
      NULL },

    { ngx_string("ai_gateway_analytics"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_analytics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ai_gateway_analytics_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_ai_gateway_analytics_init,    /* postconfiguration */

    ngx_http_ai_gateway_analytics_create_main_conf, /* create main conf */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ai_gateway_analytics_create_loc_conf, /* create location conf */
    ngx_http_ai_gateway_analytics_merge_loc_conf   /* merge location conf */
};


ngx_module_t  ngx_http_ai_gateway_analytics_module = {
    NGX_MODULE_V1,
    &ngx_http_ai_gateway_analytics_module_ctx, /* module context */
    ngx_http_ai_gateway_analytics_commands,    /* module directives */
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
ngx_http_ai_gateway_analytics_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ai_gateway_analytics_main_conf_t  *amcf;

    amcf = ngx_pcalloc(cf->pool,
                       sizeof(ngx_http_ai_gateway_analytics_main_conf_t));
    if (amcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&amcf->gateways, cf->pool, 4,
                       sizeof(ngx_http_ai_gateway_analytics_gateway_t))
        != NGX_OK)
    {
        return NULL;
    }

    return amcf;
}


static void *
ngx_http_ai_gateway_analytics_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ai_gateway_analytics_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool,
                       sizeof(ngx_http_ai_gateway_analytics_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->zone = NGX_CONF_UNSET_PTR;

    return conf;
}


/*
 * The gateway of a location with analytics records into its zone; a
 * gateway records into one zone only, which the API reads.
 */

static char *
ngx_http_ai_gateway_analytics_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_ai_gateway_analytics_loc_conf_t *prev = parent;
    ngx_http_ai_gateway_analytics_loc_conf_t *conf = child;

    ngx_uint_t                                  i;
    ngx_http_ai_gateway_loc_conf_t             *alcf;
    ngx_http_ai_gateway_analytics_gateway_t    *gw;
    ngx_http_ai_gateway_analytics_main_conf_t  *amcf;

    ngx_conf_merge_ptr_value(conf->zone, prev->zone, NULL);

    if (conf->zone == NULL) {
        return NGX_CONF_OK;
    }

    /* the gateway module's configuration of this location, merged */

    alcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_ai_gateway_module);

    if (alcf == NULL || alcf->gateway_id.len == 0) {
        return NGX_CONF_OK;
    }

    amcf = ngx_http_conf_get_module_main_conf(cf,
                                        ngx_http_ai_gateway_analytics_module);

    gw = amcf->gateways.elts;

    for (i = 0; i < amcf->gateways.nelts; i++) {
        if (gw[i].gateway.len == alcf->gateway_id.len
            && ngx_strncmp(gw[i].gateway.data, alcf->gateway_id.data,
                           alcf->gateway_id.len) == 0)
        {
            if (gw[i].zone != conf->zone) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "gateway \"%V\" records its analytics "
                                   "into zone \"%V\" elsewhere, not into "
                                   "\"%V\": a gateway has one analytics "
                                   "zone", &alcf->gateway_id,
                                   &gw[i].zone->shm.name,
                                   &conf->zone->shm.name);
                return NGX_CONF_ERROR;
            }

            return NGX_CONF_OK;
        }
    }

    gw = ngx_array_push(&amcf->gateways);
    if (gw == NULL) {
        return NGX_CONF_ERROR;
    }

    gw->gateway = alcf->gateway_id;
    gw->zone = conf->zone;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ai_gateway_analytics_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_ai_gateway_analytics_handler;

    return NGX_OK;
}


/* ai_gateway_analytics_zone name:size [bucket=time] [keep=time] [max=n]; */

static char *
ngx_http_ai_gateway_analytics_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    u_char                                *p;
    size_t                                 series_size;
    ssize_t                                size;
    ngx_int_t                              n;
    ngx_str_t                             *value, name, s;
    ngx_uint_t                             i, max, fit;
    time_t                                 bucket, keep;
    ngx_shm_zone_t                        *shm_zone;
    ngx_http_ai_gateway_analytics_zone_t  *az;

    value = cf->args->elts;

    p = (u_char *) ngx_strchr(value[1].data, ':');

    if (p == NULL || p == value[1].data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\", it must be \"name:size\", "
                           "e.g. \"analytics:16m\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data;
    name.len = p - value[1].data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\", it must be "
                           "\"name:size\", e.g. \"analytics:16m\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    bucket = 60;
    keep = 86400;
    max = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "bucket=", 7) == 0) {
            s.data = value[i].data + 7;
            s.len = value[i].len - 7;

            bucket = ngx_parse_time(&s, 1);

            if (bucket == (time_t) NGX_ERROR || bucket < 1
                || bucket > 86400)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\", a bucket is from 1s to "
                                   "1d", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "keep=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            keep = ngx_parse_time(&s, 1);

            if (keep == (time_t) NGX_ERROR || keep < 1
                || keep > 366 * 86400)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\", keep is from 1s to "
                                   "366d", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "max=", 4) == 0) {
            n = ngx_atoi(value[i].data + 4, value[i].len - 4);

            if (n == NGX_ERROR || n < 2 || n > 1000000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\", max is a number of "
                                   "series from 2", &value[i]);
                return NGX_CONF_ERROR;
            }

            max = n;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (keep < bucket || keep / bucket > 100000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "keep= must be at least one bucket and at most "
                           "100000 buckets");
        return NGX_CONF_ERROR;
    }

    /* the series the zone holds, its slab pool's pages and headers aside */

    series_size = ngx_align(sizeof(ngx_http_ai_gateway_analytics_series_t)
                  + (keep / bucket - 1)
                    * sizeof(ngx_http_ai_gateway_analytics_bucket_t),
                  sizeof(uint64_t));

    fit = (size > (ssize_t) (16 * ngx_pagesize))
          ? (size - size / 16 - 8 * ngx_pagesize) / series_size : 0;

    if (fit < 2 || (max && fit < max)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small: %uz bytes a series "
                           "(keep / bucket buckets), for %ui series it "
                           "needs about %uzk", &name, series_size,
                           max ? max : 2,
                           ((max ? max : 2) * series_size
                            + 16 * ngx_pagesize) * 17 / 16 / 1024 + 1);
        return NGX_CONF_ERROR;
    }

    if (max == 0) {
        max = fit;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_http_ai_gateway_analytics_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    az = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_gateway_analytics_zone_t));
    if (az == NULL) {
        return NGX_CONF_ERROR;
    }

    az->bucket = bucket;
    az->nbuckets = keep / bucket;
    az->max = max;
    az->series_size = series_size;

    shm_zone->init = ngx_http_ai_gateway_analytics_init_zone;
    shm_zone->data = az;

    return NGX_CONF_OK;
}


/* ai_gateway_analytics name | off; */

static char *
ngx_http_ai_gateway_analytics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_gateway_analytics_loc_conf_t *aacf = conf;

    ngx_str_t  *value;

    if (aacf->zone != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0) {
        aacf->zone = NULL;
        return NGX_CONF_OK;
    }

    /* declared before or after; a zone never declared has no size */

    aacf->zone = ngx_shared_memory_add(cf, &value[1], 0,
                                       &ngx_http_ai_gateway_analytics_module);
    if (aacf->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ai_gateway_analytics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_ai_gateway_analytics_zone_t  *oaz = data;

    size_t                                 len;
    ngx_http_ai_gateway_analytics_zone_t  *az;

    az = shm_zone->data;

    if (oaz) {
        az->shpool = oaz->shpool;
        az->sh = oaz->sh;

        if (az->sh->bucket == az->bucket && az->sh->nbuckets == az->nbuckets
            && az->sh->max == az->max)
        {
            /* a reload: the counts stay */
            return NGX_OK;
        }

        /* another geometry: the zone starts again */

        return ngx_http_ai_gateway_analytics_layout(az);
    }

    az->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        az->sh = az->shpool->data;
        return NGX_OK;
    }

    az->sh = ngx_slab_calloc(az->shpool,
                             sizeof(ngx_http_ai_gateway_analytics_sh_t));
    if (az->sh == NULL) {
        return NGX_ERROR;
    }

    az->shpool->data = az->sh;

    len = sizeof(" in ai_gateway_analytics_zone \"\"")
          + shm_zone->shm.name.len;

    az->shpool->log_ctx = ngx_slab_alloc(az->shpool, len);
    if (az->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(az->shpool->log_ctx, " in ai_gateway_analytics_zone \"%V\"%Z",
                &shm_zone->shm.name);

    return ngx_http_ai_gateway_analytics_layout(az);
}


/*
 * The table of series, laid out under the mutex (the old cycle's workers
 * may be counting); the first series is "__other__" for all.
 */

static ngx_int_t
ngx_http_ai_gateway_analytics_layout(ngx_http_ai_gateway_analytics_zone_t *az)
{
    u_char                                  *series;
    ngx_http_ai_gateway_analytics_sh_t      *sh;
    ngx_http_ai_gateway_analytics_series_t  *s;

    sh = az->sh;

    ngx_shmtx_lock(&az->shpool->mutex);

    if (sh->series) {
        ngx_slab_free_locked(az->shpool, sh->series);
        sh->series = NULL;
        sh->n = 0;
    }

    series = ngx_slab_calloc_locked(az->shpool, az->max * az->series_size);

    if (series == NULL) {
        ngx_shmtx_unlock(&az->shpool->mutex);
        ngx_log_error(NGX_LOG_EMERG, ngx_cycle->log, 0,
                      "ai_gateway_analytics_zone: no room for %ui series "
                      "of %uz bytes", az->max, az->series_size);
        return NGX_ERROR;
    }

    sh->series = series;
    sh->bucket = az->bucket;
    sh->nbuckets = az->nbuckets;
    sh->max = az->max;
    sh->series_size = az->series_size;
    sh->n = 1;

    s = (ngx_http_ai_gateway_analytics_series_t *) sh->series;

    s->gateway_len = ngx_http_ai_gateway_analytics_other.len;
    s->provider_len = ngx_http_ai_gateway_analytics_other.len;
    s->model_len = ngx_http_ai_gateway_analytics_other.len;
    ngx_memcpy(s->gateway, ngx_http_ai_gateway_analytics_other.data,
               s->gateway_len);
    ngx_memcpy(s->provider, ngx_http_ai_gateway_analytics_other.data,
               s->provider_len);
    ngx_memcpy(s->model, ngx_http_ai_gateway_analytics_other.data,
               s->model_len);

    ngx_shmtx_unlock(&az->shpool->mutex);

    return NGX_OK;
}


/* the log phase: the request, counted once */

static ngx_int_t
ngx_http_ai_gateway_analytics_handler(ngx_http_request_t *r)
{
    ngx_uint_t                                 status;
    ngx_http_request_t                        *sr;
    ngx_http_ai_gateway_ctx_t                 *ctx, *actx;
    ngx_http_ai_gateway_analytics_point_t      pt;
    ngx_http_ai_gateway_analytics_loc_conf_t  *aacf;

    aacf = ngx_http_get_module_loc_conf(r,
                                        ngx_http_ai_gateway_analytics_module);

    if (aacf->zone == NULL || aacf->zone->data == NULL) {
        return NGX_OK;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module);

    if (ctx == NULL || ctx->kind != NGX_HTTP_AI_GATEWAY_REQUEST) {
        return NGX_OK;
    }

    /* a request with attempts reports its last one (variables.c) */

    sr = ngx_http_ai_gateway_retry_request(ctx);
    actx = sr ? ngx_http_get_module_ctx(sr, ngx_http_ai_gateway_module)
              : NULL;

    if (actx == NULL) {
        actx = ctx;
    }

    ngx_memzero(&pt, sizeof(ngx_http_ai_gateway_analytics_point_t));

    ngx_http_ai_gateway_analytics_key(r, actx, &pt);

    if (pt.gateway.len == 0) {
        return NGX_OK;
    }

    pt.time = r->start_sec;

    status = r->err_status ? r->err_status : r->headers_out.status;

    if (status == 0 && r->connection->error) {
        status = NGX_HTTP_CLIENT_CLOSED_REQUEST;
    }

    pt.error = (status >= NGX_HTTP_BAD_REQUEST || status == 0
                || actx->log.failed || ctx->log.failed);

    pt.cached = (ctx->cache.hit || actx->cache.hit);

    if (actx->usage.known) {
        pt.tokens_in = actx->usage.input + actx->usage.cached
                       + actx->usage.cache_write;
        pt.tokens_out = actx->usage.output;
    }

    if (actx->cost.known) {
        pt.cost = actx->cost.value;
    }

    ngx_http_ai_gateway_analytics_add(aacf->zone->data, &pt);

    return NGX_OK;
}


/*
 * The series a request is counted in: the configuration's gateway id, a
 * provider the gateway routed to, the model as $ai_gateway_model reports
 * it; what the client made up is "__other__".
 */

static void
ngx_http_ai_gateway_analytics_key(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_analytics_point_t *pt)
{
    ngx_str_t                       *name;
    ngx_http_variable_value_t       *vv;
    ngx_http_ai_gateway_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_gateway_module);

    pt->gateway = alcf->gateway_id;

    if (pt->gateway.len > NGX_HTTP_AI_GATEWAY_ANALYTICS_GW) {
        pt->gateway = ngx_http_ai_gateway_analytics_other;
    }

    /* routed: a provider of the table, or a custom origin configured */

    pt->provider = ngx_http_ai_gateway_analytics_other;

    if (ctx->route.provider.len
        && (ctx->route.target.origin
            || ngx_http_ai_gateway_provider_find(&ctx->route.provider))
        && ngx_http_ai_gateway_analytics_printable(&ctx->route.provider,
                                        NGX_HTTP_AI_GATEWAY_ANALYTICS_PR))
    {
        pt->provider = ctx->route.provider;
    }

    /* the model, of the request or of its last attempt */

    name = &ngx_http_ai_gateway_analytics_model_var;

    vv = ngx_http_get_variable(r, name, ngx_hash_key(name->data, name->len));

    ngx_str_null(&pt->model);

    if (vv && !vv->not_found && vv->len) {
        pt->model.data = vv->data;
        pt->model.len = vv->len;

        if (!ngx_http_ai_gateway_analytics_printable(&pt->model,
                                         NGX_HTTP_AI_GATEWAY_ANALYTICS_MODEL))
        {
            pt->model = ngx_http_ai_gateway_analytics_other;
        }
    }
}


static ngx_uint_t
ngx_http_ai_gateway_analytics_printable(ngx_str_t *s, size_t max)
{
    size_t  i;

    if (s->len > max) {
        return 0;
    }

    for (i = 0; i < s->len; i++) {
        if (s->data[i] < 0x20 || s->data[i] > 0x7e) {
            return 0;
        }
    }

    return 1;
}


static void
ngx_http_ai_gateway_analytics_add(ngx_http_ai_gateway_analytics_zone_t *az,
    ngx_http_ai_gateway_analytics_point_t *pt)
{
    time_t                                   now, t;
    ngx_uint_t                               slot;
    ngx_http_ai_gateway_analytics_sh_t      *sh;
    ngx_http_ai_gateway_analytics_bucket_t  *b;
    ngx_http_ai_gateway_analytics_series_t  *s;

    sh = az->sh;
    now = ngx_time();

    ngx_shmtx_lock(&az->shpool->mutex);

    t = (pt->time > now) ? now : pt->time;
    t -= t % sh->bucket;
    now -= now % sh->bucket;

    if (now - t >= (time_t) sh->nbuckets * sh->bucket) {
        /* it started before the oldest bucket kept */
        ngx_shmtx_unlock(&az->shpool->mutex);
        return;
    }

    slot = (t / sh->bucket) % sh->nbuckets;

    s = ngx_http_ai_gateway_analytics_find(az, &pt->gateway, &pt->provider,
                                           &pt->model, 1);

    b = &s->buckets[slot];

    if (b->time != t) {
        if (b->time > t) {
            /* the slot is already a later time's */
            ngx_shmtx_unlock(&az->shpool->mutex);
            return;
        }

        ngx_memzero(b, sizeof(ngx_http_ai_gateway_analytics_bucket_t));
        b->time = t;
    }

    b->requests++;
    b->errors += pt->error ? 1 : 0;
    b->cached += pt->cached ? 1 : 0;
    b->tokens_in += pt->tokens_in;
    b->tokens_out += pt->tokens_out;
    b->cost += pt->cost;

    ngx_shmtx_unlock(&az->shpool->mutex);
}


/*
 * The series of a combination, under the zone's mutex.  With create, a
 * new combination takes a free series, or falls back to its gateway and
 * provider's "__other__" model, or to the first series; never NULL then.
 */

static ngx_http_ai_gateway_analytics_series_t *
ngx_http_ai_gateway_analytics_find(ngx_http_ai_gateway_analytics_zone_t *az,
    ngx_str_t *gateway, ngx_str_t *provider, ngx_str_t *model,
    ngx_uint_t create)
{
    uint32_t                                 hash;
    ngx_uint_t                               i, reserve;
    ngx_http_ai_gateway_analytics_sh_t      *sh;
    ngx_http_ai_gateway_analytics_series_t  *s;

    sh = az->sh;

    for ( ;; ) {
        ngx_crc32_init(hash);
        ngx_crc32_update(&hash, gateway->data, gateway->len);
        ngx_crc32_update(&hash, (u_char *) "/", 1);
        ngx_crc32_update(&hash, provider->data, provider->len);
        ngx_crc32_update(&hash, (u_char *) "/", 1);
        ngx_crc32_update(&hash, model->data, model->len);
        ngx_crc32_final(hash);

        for (i = 1; i < sh->n; i++) {
            s = (ngx_http_ai_gateway_analytics_series_t *)
                    (sh->series + i * sh->series_size);

            if (s->hash == hash
                && s->gateway_len == gateway->len
                && s->provider_len == provider->len
                && s->model_len == model->len
                && ngx_memcmp(s->gateway, gateway->data, gateway->len) == 0
                && ngx_memcmp(s->provider, provider->data, provider->len)
                   == 0
                && ngx_memcmp(s->model, model->data, model->len) == 0)
            {
                return s;
            }
        }

        if (!create) {
            return NULL;
        }

        reserve = sh->max / 8;

        if (reserve == 0) {
            reserve = 1;
        }

        if (sh->n < sh->max
            && (sh->n + reserve < sh->max
                || model == &ngx_http_ai_gateway_analytics_other))
        {
            break;
        }

        if (model == &ngx_http_ai_gateway_analytics_other) {
            /* the reserve is full too */
            return (ngx_http_ai_gateway_analytics_series_t *) sh->series;
        }

        model = &ngx_http_ai_gateway_analytics_other;
    }

    s = (ngx_http_ai_gateway_analytics_series_t *)
            (sh->series + sh->n * sh->series_size);

    sh->n++;

    ngx_memzero(s, sh->series_size);

    s->hash = hash;
    s->gateway_len = gateway->len;
    s->provider_len = provider->len;
    s->model_len = model->len;
    ngx_memcpy(s->gateway, gateway->data, gateway->len);
    ngx_memcpy(s->provider, provider->data, provider->len);
    ngx_memcpy(s->model, model->data, model->len);

    return s;
}


/*
 * GET .../gateways/{gateway_id}/analytics?start=&end=&group_by=
 *
 * start and end: Unix times in seconds (default: the time kept, up to
 * now); group_by: "model" (provider and model, the default) or
 * "provider".  The answer (docs/dashboard.md): the zone's bucket, the
 * range, the totals, and per group its totals and its buckets with
 * requests in them.
 */

ngx_int_t
ngx_http_ai_gateway_api_analytics(ngx_http_ai_gateway_api_t *api)
{
    size_t                                      size;
    time_t                                      now, start, end, first, t,
                                                bucket;
    ngx_str_t                                  *v, provider, model;
    ngx_uint_t                                  i, j, k, nb, by, overflow,
                                                nbuckets;
    ngx_array_t                                 groups;
    ngx_http_request_t                         *r;
    ngx_http_ai_gateway_gen_t                   gen;
    ngx_http_ai_gateway_analytics_sh_t         *sh;
    ngx_http_ai_gateway_analytics_zone_t       *az;
    ngx_http_ai_gateway_analytics_group_t      *g;
    ngx_http_ai_gateway_analytics_bucket_t      total, *b;
    ngx_http_ai_gateway_analytics_series_t     *s;
    ngx_http_ai_gateway_analytics_gateway_t    *gw;
    ngx_http_ai_gateway_analytics_main_conf_t  *amcf;

    r = api->request;

    amcf = ngx_http_get_module_main_conf(r,
                                        ngx_http_ai_gateway_analytics_module);

    az = NULL;
    gw = amcf->gateways.elts;

    for (i = 0; i < amcf->gateways.nelts; i++) {
        if (gw[i].gateway.len == api->gateway.len
            && ngx_strncmp(gw[i].gateway.data, api->gateway.data,
                           api->gateway.len) == 0)
        {
            az = gw[i].zone->data;
            break;
        }
    }

    if (az == NULL || az->sh == NULL) {
        ngx_http_ai_gateway_api_fail(api, NGX_HTTP_NOT_FOUND,
                                     NGX_HTTP_AI_GATEWAY_API_NOT_FOUND,
                                     "The gateway keeps no analytics "
                                     "(ai_gateway_analytics)");
        return NGX_OK;
    }

    /* the range asked for */

    start = 0;
    end = ngx_time();

    v = ngx_http_ai_gateway_query_arg(&api->args, "start");

    if (v && ngx_http_ai_gateway_analytics_time(v, &start) != NGX_OK) {
        ngx_http_ai_gateway_api_fail(api, NGX_HTTP_BAD_REQUEST,
                                     NGX_HTTP_AI_GATEWAY_API_INVALID,
                                     "Invalid start: expected a Unix time "
                                     "in seconds");
        return NGX_OK;
    }

    v = ngx_http_ai_gateway_query_arg(&api->args, "end");

    if (v && ngx_http_ai_gateway_analytics_time(v, &end) != NGX_OK) {
        ngx_http_ai_gateway_api_fail(api, NGX_HTTP_BAD_REQUEST,
                                     NGX_HTTP_AI_GATEWAY_API_INVALID,
                                     "Invalid end: expected a Unix time "
                                     "in seconds");
        return NGX_OK;
    }

    if (start > end) {
        ngx_http_ai_gateway_api_fail(api, NGX_HTTP_BAD_REQUEST,
                                     NGX_HTTP_AI_GATEWAY_API_INVALID,
                                     "Invalid range: start is after end");
        return NGX_OK;
    }

    by = NGX_HTTP_AI_GATEWAY_ANALYTICS_BY_MODEL;

    v = ngx_http_ai_gateway_query_arg(&api->args, "group_by");

    if (v) {
        if (v->len == 8 && ngx_strncmp(v->data, "provider", 8) == 0) {
            by = NGX_HTTP_AI_GATEWAY_ANALYTICS_BY_PROVIDER;

        } else if (!(v->len == 5 && ngx_strncmp(v->data, "model", 5) == 0)) {
            ngx_http_ai_gateway_api_fail(api, NGX_HTTP_BAD_REQUEST,
                                         NGX_HTTP_AI_GATEWAY_API_INVALID,
                                         "Invalid group_by: expected "
                                         "\"provider\" or \"model\"");
            return NGX_OK;
        }
    }

    if (ngx_array_init(&groups, r->pool, 8,
                       sizeof(ngx_http_ai_gateway_analytics_group_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_memzero(&total, sizeof(ngx_http_ai_gateway_analytics_bucket_t));
    overflow = 0;

    /* the gateway's series, summed into groups, under the mutex */

    sh = az->sh;

    ngx_shmtx_lock(&az->shpool->mutex);

    /* whole buckets, within those kept */

    bucket = sh->bucket;
    nbuckets = sh->nbuckets;
    size = sh->series_size;

    now = ngx_time();
    now -= now % bucket;
    first = now - (time_t) (nbuckets - 1) * bucket;

    start -= start % bucket;
    end -= end % bucket;

    if (start < first) {
        start = first;
    }

    if (end > now) {
        end = now;
    }

    nb = (start <= end) ? (ngx_uint_t) ((end - start) / bucket) + 1 : 0;

    for (i = 0; i < sh->n && nb; i++) {
        s = (ngx_http_ai_gateway_analytics_series_t *)
                (sh->series + i * size);

        if (i == 0) {
            /* everything's "__other__": a sign the table is full */

            for (k = 0; k < nbuckets; k++) {
                b = &s->buckets[k];

                if (b->time >= start && b->time <= end && b->requests) {
                    overflow = 1;
                    break;
                }
            }

            continue;
        }

        if (s->gateway_len != api->gateway.len
            || ngx_memcmp(s->gateway, api->gateway.data, api->gateway.len)
               != 0)
        {
            continue;
        }

        provider.data = s->provider;
        provider.len = s->provider_len;
        model.data = s->model;
        model.len = (by == NGX_HTTP_AI_GATEWAY_ANALYTICS_BY_MODEL)
                    ? s->model_len : 0;

        g = groups.elts;

        for (j = 0; j < groups.nelts; j++) {
            if (g[j].provider.len == provider.len
                && g[j].model.len == model.len
                && ngx_memcmp(g[j].provider.data, provider.data,
                              provider.len) == 0
                && ngx_memcmp(g[j].model.data, model.data, model.len) == 0)
            {
                break;
            }
        }

        if (j == groups.nelts) {
            g = ngx_array_push(&groups);
            if (g == NULL) {
                goto failed;
            }

            ngx_memzero(g, sizeof(ngx_http_ai_gateway_analytics_group_t));

            g->provider.data = ngx_pnalloc(r->pool, provider.len + 1);
            g->model.data = ngx_pnalloc(r->pool, model.len + 1);
            g->buckets = ngx_pcalloc(r->pool,
                         nb * sizeof(ngx_http_ai_gateway_analytics_bucket_t));

            if (g->provider.data == NULL || g->model.data == NULL
                || g->buckets == NULL)
            {
                goto failed;
            }

            g->provider.len = provider.len;
            g->model.len = model.len;
            ngx_memcpy(g->provider.data, provider.data, provider.len);
            ngx_memcpy(g->model.data, model.data, model.len);

        } else {
            g = &g[j];
        }

        for (k = 0; k < nbuckets; k++) {
            b = &s->buckets[k];

            if (b->time < start || b->time > end || b->requests == 0) {
                continue;
            }

            t = (b->time - start) / bucket;

            ngx_http_ai_gateway_analytics_sum(&g->buckets[t], b);
            ngx_http_ai_gateway_analytics_sum(&g->total, b);
            ngx_http_ai_gateway_analytics_sum(&total, b);
        }
    }

    ngx_shmtx_unlock(&az->shpool->mutex);

    /* the answer */

    if (ngx_http_ai_gateway_gen_init(&gen, r->pool) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_ai_gateway_gen_map(&gen);

    ngx_http_ai_gateway_gen_literal(&gen, "gateway_id");
    ngx_http_ai_gateway_gen_string(&gen, &api->gateway);
    ngx_http_ai_gateway_gen_literal(&gen, "bucket");
    ngx_http_ai_gateway_gen_int(&gen, bucket);
    ngx_http_ai_gateway_gen_literal(&gen, "start");
    ngx_http_ai_gateway_gen_int(&gen, start);
    ngx_http_ai_gateway_gen_literal(&gen, "end");
    ngx_http_ai_gateway_gen_int(&gen, end);
    ngx_http_ai_gateway_gen_literal(&gen, "group_by");

    if (by == NGX_HTTP_AI_GATEWAY_ANALYTICS_BY_MODEL) {
        ngx_http_ai_gateway_gen_literal(&gen, "model");

    } else {
        ngx_http_ai_gateway_gen_literal(&gen, "provider");
    }

    ngx_http_ai_gateway_gen_literal(&gen, "overflow");
    ngx_http_ai_gateway_gen_bool(&gen, overflow);

    ngx_http_ai_gateway_gen_literal(&gen, "totals");
    ngx_http_ai_gateway_analytics_gen_counts(&gen, &total);

    ngx_http_ai_gateway_gen_literal(&gen, "groups");
    ngx_http_ai_gateway_gen_array(&gen);

    g = groups.elts;

    for (j = 0; j < groups.nelts; j++) {
        ngx_http_ai_gateway_gen_map(&gen);
        ngx_http_ai_gateway_gen_literal(&gen, "provider");
        ngx_http_ai_gateway_gen_string(&gen, &g[j].provider);

        if (by == NGX_HTTP_AI_GATEWAY_ANALYTICS_BY_MODEL) {
            ngx_http_ai_gateway_gen_literal(&gen, "model");
            ngx_http_ai_gateway_gen_string(&gen, &g[j].model);
        }

        ngx_http_ai_gateway_gen_literal(&gen, "totals");
        ngx_http_ai_gateway_analytics_gen_counts(&gen, &g[j].total);

        ngx_http_ai_gateway_gen_literal(&gen, "series");
        ngx_http_ai_gateway_gen_array(&gen);

        for (k = 0; k < nb; k++) {
            b = &g[j].buckets[k];

            if (b->requests == 0) {
                continue;
            }

            b->time = start + (time_t) k * bucket;

            ngx_http_ai_gateway_analytics_gen_counts(&gen, b);
        }

        ngx_http_ai_gateway_gen_array_end(&gen);
        ngx_http_ai_gateway_gen_map_end(&gen);
    }

    ngx_http_ai_gateway_gen_array_end(&gen);
    ngx_http_ai_gateway_gen_map_end(&gen);

    if (ngx_http_ai_gateway_gen_done(&gen, &api->result) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;

failed:

    ngx_shmtx_unlock(&az->shpool->mutex);

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_ai_gateway_analytics_time(ngx_str_t *s, time_t *t)
{
    ngx_int_t  n;

    if (s->len == 0 || s->len > 11) {
        return NGX_ERROR;
    }

    n = ngx_atoi(s->data, s->len);

    if (n == NGX_ERROR) {
        return NGX_ERROR;
    }

    *t = (time_t) n;

    return NGX_OK;
}


static void
ngx_http_ai_gateway_analytics_sum(ngx_http_ai_gateway_analytics_bucket_t *to,
    ngx_http_ai_gateway_analytics_bucket_t *from)
{
    to->requests += from->requests;
    to->errors += from->errors;
    to->cached += from->cached;
    to->tokens_in += from->tokens_in;
    to->tokens_out += from->tokens_out;
    to->cost += from->cost;
}


/* {"time"?, "requests", "errors", "cached", "tokens_in", ..., "cost"} */

static void
ngx_http_ai_gateway_analytics_gen_counts(ngx_http_ai_gateway_gen_t *gen,
    ngx_http_ai_gateway_analytics_bucket_t *b)
{
    ngx_http_ai_gateway_gen_map(gen);

    if (b->time) {
        ngx_http_ai_gateway_gen_literal(gen, "time");
        ngx_http_ai_gateway_gen_int(gen, b->time);
    }

    ngx_http_ai_gateway_gen_literal(gen, "requests");
    ngx_http_ai_gateway_gen_int(gen, b->requests);
    ngx_http_ai_gateway_gen_literal(gen, "errors");
    ngx_http_ai_gateway_gen_int(gen, b->errors);
    ngx_http_ai_gateway_gen_literal(gen, "cached");
    ngx_http_ai_gateway_gen_int(gen, b->cached);
    ngx_http_ai_gateway_gen_literal(gen, "tokens_in");
    ngx_http_ai_gateway_gen_int(gen, b->tokens_in);
    ngx_http_ai_gateway_gen_literal(gen, "tokens_out");
    ngx_http_ai_gateway_gen_int(gen, b->tokens_out);

    /* the cost as log records write it: "%.12g" */

    ngx_http_ai_gateway_gen_literal(gen, "cost");
    ngx_http_ai_gateway_gen_double(gen, b->cost);

    ngx_http_ai_gateway_gen_map_end(gen);
}
