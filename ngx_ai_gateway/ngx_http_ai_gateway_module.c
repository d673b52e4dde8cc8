
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_module.h"



static ngx_int_t ngx_http_ai_gateway_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_ai_gateway_postconfiguration(ngx_conf_t *cf);
static void ngx_http_ai_gateway_exit_process(ngx_cycle_t *cycle);
static void *ngx_http_ai_gateway_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_ai_gateway_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ai_gateway_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_ai_gateway(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_gateway_models(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_conf_bitmask_t  ngx_http_ai_gateway_ssl_protocols[] = {
    { ngx_string("TLSv1"), NGX_SSL_TLSv1 },
    { ngx_string("TLSv1.1"), NGX_SSL_TLSv1_1 },
    { ngx_string("TLSv1.2"), NGX_SSL_TLSv1_2 },
    { ngx_string("TLSv1.3"), NGX_SSL_TLSv1_3 },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_ai_gateway_commands[] = {

    { ngx_string("ai_gateway"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_ai_gateway,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_gateway_provider"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_ai_gateway_provider_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_gateway_models"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ai_gateway_models,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_gateway_max_body_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_off_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, max_body_size),
      NULL },

    { ngx_string("ai_gateway_connect_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, upstream.connect_timeout),
      NULL },

    { ngx_string("ai_gateway_send_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, upstream.send_timeout),
      NULL },

    { ngx_string("ai_gateway_request_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, retry.timeout),
      NULL },

    { ngx_string("ai_gateway_max_attempts"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, retry.max_attempts),
      &ngx_http_ai_gateway_attempts_bounds },

    { ngx_string("ai_gateway_retry_delay"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, retry.delay),
      NULL },

    { ngx_string("ai_gateway_retry_backoff"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, retry.backoff),
      ngx_http_ai_gateway_backoffs },

    { ngx_string("ai_gateway_read_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, upstream.read_timeout),
      NULL },

    { ngx_string("ai_gateway_buffer_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, upstream.buffer_size),
      NULL },

    { ngx_string("ai_gateway_ssl_verify"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, upstream.ssl_verify),
      NULL },

    { ngx_string("ai_gateway_ssl_trusted_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, ssl_trusted_certificate),
      NULL },

    { ngx_string("ai_gateway_ssl_verify_depth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, ssl_verify_depth),
      NULL },

    { ngx_string("ai_gateway_ssl_protocols"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_conf_set_bitmask_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, ssl_protocols),
      &ngx_http_ai_gateway_ssl_protocols },

    { ngx_string("ai_gateway_cache_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_cache_zone,
      0,
      0,
      NULL },

    { ngx_string("ai_gateway_cache"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_cache_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_gateway_cache_redis"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ai_gateway_cache_redis,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_gateway_cache_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, cache.ttl),
      NULL },

    { ngx_string("ai_gateway_cache_max_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, cache.max_size),
      NULL },

    { ngx_string("ai_gateway_cache_lock_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, cache.lock_timeout),
      NULL },

    { ngx_string("ai_gateway_cache_scope"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_cache_scope,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    /* request logs (ngx_http_ai_gateway_log.c) */

    { ngx_string("ai_gateway_log_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_log_zone,
      0,
      0,
      NULL },

    { ngx_string("ai_gateway_logs"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_logs_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_gateway_logs_redis"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ai_gateway_logs_redis,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_gateway_logs_max"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, log.max),
      &ngx_http_ai_gateway_log_max_bounds },

    { ngx_string("ai_gateway_logs_strategy"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, log.strategy),
      ngx_http_ai_gateway_log_strategies },

    { ngx_string("ai_gateway_log_collect"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, log.collect),
      NULL },

    { ngx_string("ai_gateway_log_payload"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, log.payload),
      NULL },

    { ngx_string("ai_gateway_log_payload_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, log.payload_size),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ai_gateway_module_ctx = {
    ngx_http_ai_gateway_preconfiguration,  /* preconfiguration */
    ngx_http_ai_gateway_postconfiguration, /* postconfiguration */

    ngx_http_ai_gateway_create_main_conf,  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ai_gateway_create_loc_conf,   /* create location configuration */
    ngx_http_ai_gateway_merge_loc_conf     /* merge location configuration */
};


ngx_module_t  ngx_http_ai_gateway_module = {
    NGX_MODULE_V1,
    &ngx_http_ai_gateway_module_ctx,       /* module context */
    ngx_http_ai_gateway_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_ai_gateway_exit_process,      /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* what a worker made once for itself goes with it */

static void
ngx_http_ai_gateway_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_ai_gateway_cache_exit_process();
    ngx_http_ai_gateway_canonical_exit_process();
}


static char *
ngx_http_ai_gateway(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_gateway_loc_conf_t *alcf = conf;

    u_char                    *p;
    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    if (alcf->gateway_id.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (p = value[1].data; p < value[1].data + value[1].len; p++) {
        if (*p == '/' || *p == '?' || *p <= ' ') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid gateway id \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    if (value[1].len == 0 || value[1].len > 64) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "gateway id \"%V\" must have 1 to 64 characters",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    alcf->gateway_id = value[1];

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "account=", 8) != 0
            || value[2].len == 8)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        alcf->account_id.data = value[2].data + 8;
        alcf->account_id.len = value[2].len - 8;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_ai_gateway_handler;

    return NGX_CONF_OK;
}


/* ai_gateway_models provider/model ...; what GET /compat/v1/models lists */

static char *
ngx_http_ai_gateway_models(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_gateway_loc_conf_t *alcf = conf;

    u_char      *p;
    ngx_str_t   *value, *m, prefix;
    ngx_uint_t   i;

    if (alcf->models != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    alcf->models = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                    sizeof(ngx_str_t));
    if (alcf->models == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        p = ngx_strlchr(value[i].data, value[i].data + value[i].len, '/');

        prefix.data = value[i].data;
        prefix.len = p ? (size_t) (p - value[i].data) : 0;

        if (p == NULL || prefix.len == 0
            || (size_t) (p + 1 - value[i].data) == value[i].len
            || (ngx_http_ai_gateway_provider_find(&prefix) == NULL
                && !(prefix.len > 7
                     && ngx_strncmp(prefix.data, "custom-", 7) == 0)))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid model \"%V\", use "
                               "\"{provider}/{model}\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        m = ngx_array_push(alcf->models);
        if (m == NULL) {
            return NGX_CONF_ERROR;
        }

        *m = value[i];
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ai_gateway_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_ai_gateway_add_variables(cf);
}


static ngx_int_t
ngx_http_ai_gateway_postconfiguration(ngx_conf_t *cf)
{
    if (ngx_http_ai_gateway_handler_init(cf) != NGX_OK
        || ngx_http_ai_gateway_log_init(cf) != NGX_OK
        || ngx_http_ai_gateway_provider_init(cf) != NGX_OK
        || ngx_http_ai_gateway_vertex_init(cf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void *
ngx_http_ai_gateway_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ai_gateway_main_conf_t  *amcf;

    amcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_gateway_main_conf_t));
    if (amcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&amcf->ssl, cf->pool, 2, sizeof(void *)) != NGX_OK) {
        return NULL;
    }

    return amcf;
}


static void *
ngx_http_ai_gateway_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ai_gateway_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_gateway_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->gateway_id = { 0, NULL };
     *     conf->account_id = { 0, NULL };
     *     conf->ssl_trusted_certificate = { 0, NULL };
     *     conf->ssl_protocols = 0;
     */

    conf->origins = NGX_CONF_UNSET_PTR;
    conf->models = NGX_CONF_UNSET_PTR;
    conf->max_body_size = NGX_CONF_UNSET;
    conf->ssl_verify_depth = NGX_CONF_UNSET_UINT;

    conf->upstream.connect_timeout = NGX_CONF_UNSET_MSEC;
    conf->upstream.send_timeout = NGX_CONF_UNSET_MSEC;
    conf->upstream.read_timeout = NGX_CONF_UNSET_MSEC;
    conf->upstream.buffer_size = NGX_CONF_UNSET_SIZE;
    conf->upstream.ssl_verify = NGX_CONF_UNSET;

    conf->upstream.hide_headers = NGX_CONF_UNSET_PTR;
    conf->upstream.pass_headers = NGX_CONF_UNSET_PTR;

    ngx_http_ai_gateway_cache_create_conf(&conf->cache);
    ngx_http_ai_gateway_retry_create_conf(&conf->retry);
    ngx_http_ai_gateway_log_create_conf(&conf->log);

    return conf;
}


static char *
ngx_http_ai_gateway_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_ai_gateway_loc_conf_t *prev = parent;
    ngx_http_ai_gateway_loc_conf_t *conf = child;

    /* nested locations (limit_except too) belong to the same gateway */

    if (conf->gateway_id.data == NULL) {
        conf->gateway_id = prev->gateway_id;
        conf->account_id = prev->account_id;
    }

    ngx_conf_merge_ptr_value(conf->models, prev->models, NULL);
    ngx_conf_merge_off_value(conf->max_body_size, prev->max_body_size,
                             32 * 1024 * 1024);

    if (ngx_http_ai_gateway_cache_merge_conf(cf, &prev->cache, &conf->cache)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_ai_gateway_retry_merge_conf(cf, &prev->retry, &conf->retry)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_ai_gateway_log_merge_conf(cf, &prev->log, &conf->log,
                                           &conf->gateway_id,
                                           &conf->account_id)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_ai_gateway_provider_merge(cf, prev, conf) != NGX_CONF_OK
        || ngx_http_ai_gateway_upstream_merge(cf, prev, conf) != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
