
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_module.h"
#include "ngx_http_ai_gateway_version.h"



static ngx_int_t ngx_http_ai_gateway_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_ai_gateway_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_ai_gateway_init_module(ngx_cycle_t *cycle);
static void ngx_http_ai_gateway_exit_process(ngx_cycle_t *cycle);
static void *ngx_http_ai_gateway_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_ai_gateway_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ai_gateway_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_ai_gateway(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_gateway_models(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_gateway_conf_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_ai_gateway_conf_listed(ngx_conf_t *cf,
    ngx_command_t *cmd, ngx_str_t *names, size_t size);


/*
 * A directive set by one of nginx's slots, with an error message that
 * names the directive, the value refused and what is allowed: nginx's
 * slots say "invalid value" alone.  max, when not 0, is the largest
 * time allowed (msec and sec slots), in the slot's unit.
 */

typedef struct {
    char          *(*set)(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
    void           *post;      /* the slot's own: bounds, names */
    char           *allowed;
    ngx_uint_t      max;
} ngx_http_ai_gateway_conf_slot_t;


#define NGX_HTTP_AI_GATEWAY_TIME                                              \
    "it must be a time, e.g. \"500ms\", \"30s\" or \"2m\""
#define NGX_HTTP_AI_GATEWAY_SIZE                                              \
    "it must be a size, e.g. \"16k\" or \"1m\""

#define ngx_http_ai_gateway_slot(name, set, post, allowed, max)               \
    static ngx_http_ai_gateway_conf_slot_t  ngx_http_ai_gateway_slot_##name = \
        { set, post, allowed, max }


ngx_http_ai_gateway_slot(size, ngx_conf_set_size_slot, NULL,
    NGX_HTTP_AI_GATEWAY_SIZE, 0);
ngx_http_ai_gateway_slot(off, ngx_conf_set_off_slot, NULL,
    NGX_HTTP_AI_GATEWAY_SIZE, 0);
ngx_http_ai_gateway_slot(msec, ngx_conf_set_msec_slot, NULL,
    NGX_HTTP_AI_GATEWAY_TIME, 0);
ngx_http_ai_gateway_slot(delay, ngx_conf_set_msec_slot, NULL,
    "it must be a time from 0 to 5s, e.g. \"100ms\" or \"1s\"", 5000);
ngx_http_ai_gateway_slot(ttl, ngx_conf_set_sec_slot, NULL,
    "it must be a time from 0 to 30d, e.g. \"60s\", \"1h\" or \"7d\"",
    NGX_HTTP_AI_GATEWAY_CACHE_TTL_MAX);
ngx_http_ai_gateway_slot(depth, ngx_conf_set_num_slot, NULL,
    "it must be a number, e.g. \"1\" or \"3\"", 0);
ngx_http_ai_gateway_slot(attempts, ngx_conf_set_num_slot,
    &ngx_http_ai_gateway_attempts_bounds,
    "it must be a number from 1 to 5", 0);
ngx_http_ai_gateway_slot(backoff, ngx_conf_set_enum_slot,
    ngx_http_ai_gateway_backoffs,
    "it must be \"constant\", \"linear\" or \"exponential\"", 0);


static ngx_conf_bitmask_t  ngx_http_ai_gateway_ssl_protocols[] = {
    { ngx_string("TLSv1"), NGX_SSL_TLSv1 },
    { ngx_string("TLSv1.1"), NGX_SSL_TLSv1_1 },
    { ngx_string("TLSv1.2"), NGX_SSL_TLSv1_2 },
    { ngx_string("TLSv1.3"), NGX_SSL_TLSv1_3 },
    { ngx_null_string, 0 }
};


ngx_http_ai_gateway_slot(protocols, ngx_conf_set_bitmask_slot,
    ngx_http_ai_gateway_ssl_protocols,
    "it must be one or more of \"TLSv1\", \"TLSv1.1\", \"TLSv1.2\" and "
    "\"TLSv1.3\"", 0);


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
      ngx_http_ai_gateway_conf_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, max_body_size),
      &ngx_http_ai_gateway_slot_off },

    { ngx_string("ai_gateway_connect_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_conf_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, upstream.connect_timeout),
      &ngx_http_ai_gateway_slot_msec },

    { ngx_string("ai_gateway_send_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_conf_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, upstream.send_timeout),
      &ngx_http_ai_gateway_slot_msec },

    { ngx_string("ai_gateway_request_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_conf_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, retry.timeout),
      &ngx_http_ai_gateway_slot_msec },

    { ngx_string("ai_gateway_max_attempts"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_conf_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, retry.max_attempts),
      &ngx_http_ai_gateway_slot_attempts },

    { ngx_string("ai_gateway_retry_delay"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_conf_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, retry.delay),
      &ngx_http_ai_gateway_slot_delay },

    { ngx_string("ai_gateway_retry_backoff"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_conf_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, retry.backoff),
      &ngx_http_ai_gateway_slot_backoff },

    { ngx_string("ai_gateway_read_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_conf_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, upstream.read_timeout),
      &ngx_http_ai_gateway_slot_msec },

    { ngx_string("ai_gateway_buffer_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_conf_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, upstream.buffer_size),
      &ngx_http_ai_gateway_slot_size },

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
      ngx_http_ai_gateway_conf_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, ssl_verify_depth),
      &ngx_http_ai_gateway_slot_depth },

    { ngx_string("ai_gateway_ssl_protocols"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ai_gateway_conf_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, ssl_protocols),
      &ngx_http_ai_gateway_slot_protocols },

    { ngx_string("ai_gateway_limit_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_limit_zone,
      0,
      0,
      NULL },

    { ngx_string("ai_gateway_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_ai_gateway_limit_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_gateway_limit_headers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_limit_headers_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_gateway_limit_clock"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_limit_clock_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

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
      ngx_http_ai_gateway_conf_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, cache.ttl),
      &ngx_http_ai_gateway_slot_ttl },

    { ngx_string("ai_gateway_cache_max_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_conf_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, cache.max_size),
      &ngx_http_ai_gateway_slot_size },

    { ngx_string("ai_gateway_cache_lock_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_conf_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, cache.lock_timeout),
      &ngx_http_ai_gateway_slot_msec },

    { ngx_string("ai_gateway_cache_scope"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_cache_scope,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_gateway_usage"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, usage),
      NULL },

    { ngx_string("ai_gateway_include_usage"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, include_usage),
      NULL },

    { ngx_string("ai_gateway_prices"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_prices_directive,
      0,
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

    { ngx_string("ai_gateway_auth_token_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_gateway_auth_token_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_gateway_provider_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_ai_gateway_key_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_gateway_client_keys"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_gateway_loc_conf_t, client_keys),
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
    ngx_http_ai_gateway_init_module,       /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_ai_gateway_exit_process,      /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/*
 * the version in the error log, once for each configuration the master
 * loads: at startup, and after a reload that may have loaded a new build
 */

static ngx_int_t
ngx_http_ai_gateway_init_module(ngx_cycle_t *cycle)
{
    ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                  "ai_gateway: " NGX_HTTP_AI_GATEWAY_VER);

    return NGX_OK;
}


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
        if (*p == '/' || *p == '?' || *p <= ' ' || *p == 0x7f) {
            break;
        }
    }

    if (p < value[1].data + value[1].len
        || value[1].len == 0 || value[1].len > 64)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid gateway id \"%V\" in \"ai_gateway\" "
                           "directive, it must have 1 to 64 characters, "
                           "none of them \"/\", \"?\", a space or a "
                           "control character", &value[1]);
        return NGX_CONF_ERROR;
    }

    alcf->gateway_id = value[1];

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "account=", 8) != 0
            || value[2].len == 8)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\" in \"ai_gateway\" "
                               "directive, the only parameter is "
                               "\"account=ID\"", &value[2]);
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

    u_char      *p, names[NGX_MAX_CONF_ERRSTR / 2];
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
            || (size_t) (p + 1 - value[i].data) == value[i].len)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid model \"%V\" in "
                               "\"ai_gateway_models\" directive, it must be "
                               "\"{provider}/{model}\", e.g. "
                               "\"openai/gpt-4o-mini\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        if (ngx_http_ai_gateway_provider_find(&prefix) == NULL
            && !(prefix.len > 7
                 && ngx_strncmp(prefix.data, "custom-", 7) == 0))
        {
            *ngx_http_ai_gateway_provider_names(names,
                                                names + sizeof(names) - 1)
                = '\0';

            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown provider \"%V\" of model \"%V\" in "
                               "\"ai_gateway_models\" directive, it must be "
                               "one of %s or \"custom-{slug}\"",
                               &prefix, &value[i], names);
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


static char *
ngx_http_ai_gateway_conf_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_gateway_conf_slot_t  *slot = cmd->post;

    char                   *rv;
    u_char                 *field;
    ngx_int_t               n;
    ngx_uint_t              i, big;
    ngx_str_t              *value;
    ngx_command_t           c;
    ngx_conf_num_bounds_t  *bounds;

    value = cf->args->elts;

    /* nginx's enum and bitmask slots log a bare "invalid value" first */

    if (slot->set == ngx_conf_set_enum_slot
        || slot->set == ngx_conf_set_bitmask_slot)
    {
        for (i = 1; i < cf->args->nelts; i++) {
            if (ngx_http_ai_gateway_conf_listed(cf, cmd, &value[i],
                        slot->set == ngx_conf_set_enum_slot
                        ? sizeof(ngx_conf_enum_t)
                        : sizeof(ngx_conf_bitmask_t))
                != NGX_OK)
            {
                goto invalid;
            }
        }
    }

    /* and the num slot with bounds "value must be between" alone */

    if (slot->set == ngx_conf_set_num_slot && slot->post) {
        bounds = slot->post;
        n = ngx_atoi(value[1].data, value[1].len);

        if (n == NGX_ERROR || n < bounds->low || n > bounds->high) {
            i = 1;
            goto invalid;
        }
    }

    c = *cmd;
    c.post = slot->post;

    rv = slot->set(cf, &c, conf);

    if (rv != NGX_CONF_OK) {
        if (rv != NGX_CONF_ERROR && ngx_strcmp(rv, "is duplicate") == 0) {
            return rv;
        }

        i = 1;
        goto invalid;
    }

    if (slot->max == 0) {
        return NGX_CONF_OK;
    }

    field = (u_char *) conf + cmd->offset;

    if (slot->set == ngx_conf_set_msec_slot) {
        big = (*(ngx_msec_t *) field > slot->max);

    } else {
        big = (*(time_t *) field < 0
               || (ngx_uint_t) *(time_t *) field > slot->max);
    }

    if (!big) {
        return NGX_CONF_OK;
    }

    i = 1;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\" directive, %s",
                       &value[i], &cmd->name, slot->allowed);

    return NGX_CONF_ERROR;
}


/* a name of an enum or bitmask list: both start with an ngx_str_t */

static ngx_int_t
ngx_http_ai_gateway_conf_listed(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *name, size_t size)
{
    u_char                           *p;
    ngx_str_t                        *n;
    ngx_http_ai_gateway_conf_slot_t  *slot = cmd->post;

    for (p = slot->post; ; p += size) {
        n = (ngx_str_t *) p;

        if (n->len == 0) {
            return NGX_DECLINED;
        }

        if (n->len == name->len
            && ngx_strcasecmp(n->data, name->data) == 0)
        {
            return NGX_OK;
        }
    }
}


static ngx_int_t
ngx_http_ai_gateway_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_ai_gateway_add_variables(cf);
}


static ngx_int_t
ngx_http_ai_gateway_postconfiguration(ngx_conf_t *cf)
{
    if (ngx_http_ai_gateway_cache_check_zones(cf) != NGX_OK
        || ngx_http_ai_gateway_handler_init(cf) != NGX_OK
        || ngx_http_ai_gateway_log_init(cf) != NGX_OK
        || ngx_http_ai_gateway_provider_init(cf) != NGX_OK
        || ngx_http_ai_gateway_vertex_init(cf) != NGX_OK
        || ngx_http_ai_gateway_cost_init(cf) != NGX_OK
        || ngx_http_ai_gateway_limit_init(cf) != NGX_OK)
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

    amcf->prices_default = NGX_CONF_UNSET;

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

    conf->usage = NGX_CONF_UNSET;
    conf->include_usage = NGX_CONF_UNSET;

    conf->auth_tokens = NGX_CONF_UNSET_PTR;
    conf->keys = NGX_CONF_UNSET_PTR;
    conf->client_keys = NGX_CONF_UNSET;

    ngx_http_ai_gateway_cache_create_conf(&conf->cache);
    ngx_http_ai_gateway_retry_create_conf(&conf->retry);
    ngx_http_ai_gateway_log_create_conf(&conf->log);

    conf->limit = ngx_http_ai_gateway_limit_create_conf(cf);
    if (conf->limit == NULL) {
        return NULL;
    }

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

    ngx_conf_merge_value(conf->usage, prev->usage, 1);
    ngx_conf_merge_value(conf->include_usage, prev->include_usage, 1);

    ngx_conf_merge_ptr_value(conf->auth_tokens, prev->auth_tokens, NULL);
    ngx_conf_merge_ptr_value(conf->keys, prev->keys, NULL);
    ngx_conf_merge_value(conf->client_keys, prev->client_keys, 0);

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

    if (ngx_http_ai_gateway_limit_merge_conf(cf, prev->limit, conf->limit)
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
