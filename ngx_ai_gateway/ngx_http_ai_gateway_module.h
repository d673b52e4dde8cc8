
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#ifndef _NGX_HTTP_AI_GATEWAY_MODULE_H_INCLUDED_
#define _NGX_HTTP_AI_GATEWAY_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_json.h"
#include "ngx_http_ai_gateway_translate.h"
#include "ngx_http_ai_gateway_cache.h"
#include "ngx_http_ai_gateway_check.h"
#include "ngx_http_ai_gateway_buf.h"
#include "ngx_http_ai_gateway_usage.h"
#include "ngx_http_ai_gateway_log_store.h"


/* gateway error codes, see docs/errors.md */

#define NGX_HTTP_AI_GATEWAY_ERR_NO_GATEWAY       2001
#define NGX_HTTP_AI_GATEWAY_ERR_RATE_LIMITED     2003
#define NGX_HTTP_AI_GATEWAY_ERR_PROVIDER_FAILED  2005
#define NGX_HTTP_AI_GATEWAY_ERR_BAD_PROVIDER     2008
#define NGX_HTTP_AI_GATEWAY_ERR_UNAUTHORIZED     2009
#define NGX_HTTP_AI_GATEWAY_ERR_BYOK_ALIAS       2040
#define NGX_HTTP_AI_GATEWAY_ERR_BAD_PATH         2201
#define NGX_HTTP_AI_GATEWAY_ERR_TOO_LARGE        2202
#define NGX_HTTP_AI_GATEWAY_ERR_TIMEOUT          2203
#define NGX_HTTP_AI_GATEWAY_ERR_BAD_HEADER       2204
#define NGX_HTTP_AI_GATEWAY_ERR_NOT_AVAILABLE    2205
#define NGX_HTTP_AI_GATEWAY_ERR_GATEWAY          2206
#define NGX_HTTP_AI_GATEWAY_ERR_BAD_MODEL        2207
#define NGX_HTTP_AI_GATEWAY_ERR_BAD_REQUEST      2208
#define NGX_HTTP_AI_GATEWAY_ERR_LOCATION         2209
#define NGX_HTTP_AI_GATEWAY_ERR_CREDENTIALS      2220
#define NGX_HTTP_AI_GATEWAY_ERR_SPEND_LIMITED    2045


/* the longest provider response translated whole (not streamed) */
#define NGX_HTTP_AI_GATEWAY_MAX_RESPONSE         (32 * 1024 * 1024)


/* the Unified API's endpoints */

#define NGX_HTTP_AI_GATEWAY_CHAT                 0
#define NGX_HTTP_AI_GATEWAY_EMBEDDINGS           1
#define NGX_HTTP_AI_GATEWAY_MODELS               2


/* what happens to a provider's response body */

typedef enum {
    NGX_HTTP_AI_GATEWAY_RELAY = 0,             /* as it is */
    NGX_HTTP_AI_GATEWAY_TRANSLATE_STREAM,
    NGX_HTTP_AI_GATEWAY_TRANSLATE_WHOLE,
    NGX_HTTP_AI_GATEWAY_TRANSLATE_ERROR,
    NGX_HTTP_AI_GATEWAY_KEEP                   /* whole, for the gateway */
} ngx_http_ai_gateway_relay_e;


/* path rules of the provider table */

typedef enum {
    NGX_HTTP_AI_GATEWAY_RULE_PLAIN = 0,
    NGX_HTTP_AI_GATEWAY_RULE_AZURE,
    NGX_HTTP_AI_GATEWAY_RULE_BEDROCK,
    NGX_HTTP_AI_GATEWAY_RULE_VERTEX,
    NGX_HTTP_AI_GATEWAY_RULE_FAL
} ngx_http_ai_gateway_rule_e;


/* one row of the built-in provider table (static data) */

typedef struct {
    ngx_str_t                      slug;
    ngx_str_t                      alias;
    ngx_str_t                      url;        /* origin + path prefix */
    ngx_str_t                      insert;     /* segment added ... */
    ngx_str_t                      keep;       /* ... unless the path
                                                  starts with one of these */
    ngx_str_t                      strip;      /* first segment removed */
    ngx_str_t                      auth;       /* credential header */
    ngx_http_ai_gateway_rule_e     rule;
} ngx_http_ai_gateway_provider_t;


/* a provider's upstream origin, parsed from its URL at config time */

typedef struct {
    ngx_str_t                      slug;
    ngx_http_ai_gateway_provider_t *provider;  /* NULL for custom-* */
    ngx_str_t                      host;       /* may hold {placeholders} */
    ngx_str_t                      prefix;     /* may hold {placeholders} */
    ngx_str_t                      tls_name;   /* from host=, or empty */
    ngx_str_t                      auth;
    in_port_t                      port;
    unsigned                       ssl:1;
    unsigned                       no_port:1;
    unsigned                       templated:1;
    unsigned                       custom:1;
} ngx_http_ai_gateway_origin_t;


/* what one request is sent to */

typedef struct {
    ngx_http_ai_gateway_origin_t  *origin;
    ngx_str_t                      host;       /* connect to (name) */
    ngx_str_t                      tls_name;   /* SNI, certificate name */
    ngx_str_t                      host_header;
    ngx_str_t                      path;       /* raw, escaped */
    ngx_str_t                      args;       /* raw query, no '?' */
    in_port_t                      port;
    unsigned                       ssl:1;
    unsigned                       no_port:1;
    unsigned                       fal_target:1;
} ngx_http_ai_gateway_target_t;


/* a Google service-account key (ngx_http_ai_gateway_vertex.c) */

typedef struct {
    ngx_str_t                      project_id;  /* the fields in this order */
    ngx_str_t                      client_email;
    ngx_str_t                      private_key;
    ngx_str_t                      private_key_id;
    ngx_str_t                      region;
    u_char                         key[32];     /* SHA-256 of the JSON */
    ngx_int_t                      status;      /* the exchange's error */
    unsigned                       exchange_started:1;
    unsigned                       exchange_done:1;
} ngx_http_ai_gateway_vertex_sa_t;


/* retries and the request timeout (ngx_http_ai_gateway_retry.c) */

typedef struct {
    ngx_msec_t                     timeout;    /* to the first byte */
    ngx_msec_t                     delay;
    ngx_uint_t                     max_attempts;
    ngx_uint_t                     backoff;
} ngx_http_ai_gateway_retry_conf_t;

typedef struct ngx_http_ai_gateway_retry_s  ngx_http_ai_gateway_retry_t;


/* a gateway token of a token file (ngx_http_ai_gateway_auth.c) */

typedef struct {
    u_char                         md[32];     /* SHA-256 */
    ngx_str_t                      name;       /* the client, or empty */
} ngx_http_ai_gateway_token_t;


/* what one attempt is sent as: the request, or a Universal Endpoint step */

typedef struct {
    ngx_str_t                      uri;        /* for the location */
    ngx_str_t                      args;
    ngx_str_t                      unparsed;   /* raw path and query */
    ngx_list_t                    *headers;    /* NULL: the request's */
    ngx_table_elt_t               *authorization;
    ngx_str_t                      body;       /* with headers */
    ngx_http_ai_gateway_retry_conf_t  conf;
} ngx_http_ai_gateway_step_t;


/* rate limits: ngx_http_ai_gateway_limit.c */

typedef struct ngx_http_ai_gateway_limit_conf_s
    ngx_http_ai_gateway_limit_conf_t;
typedef struct ngx_http_ai_gateway_limit_part_s
    ngx_http_ai_gateway_limit_part_t;


typedef struct {
    ngx_str_t                      gateway_id;
    ngx_str_t                      account_id;

    ngx_array_t                   *origins;    /* overrides and custom */
    ngx_array_t                   *models;     /* ai_gateway_models */

    ngx_http_upstream_conf_t       upstream;

    off_t                          max_body_size;

    ngx_http_ai_gateway_cache_conf_t  cache;
    ngx_http_ai_gateway_retry_conf_t  retry;
    ngx_http_ai_gateway_log_conf_t    log;

    ngx_flag_t                     usage;      /* ai_gateway_usage */
    ngx_flag_t                     include_usage;

    ngx_array_t                   *auth_tokens; /* auth.c: of
                                                   ngx_http_ai_gateway_
                                                   token_t, or NULL */
    ngx_array_t                   *keys;       /* keys.c: stored provider
                                                  keys, or NULL */
    ngx_flag_t                     client_keys; /* ai_gateway_client_keys */
    ngx_http_ai_gateway_limit_conf_t  *limit;  /* limit.c */

    ngx_str_t                      ssl_trusted_certificate;
    ngx_uint_t                     ssl_verify_depth;
    ngx_uint_t                     ssl_protocols;
} ngx_http_ai_gateway_loc_conf_t;


typedef struct {
    ngx_array_t                    ssl;        /* shared client contexts */
    ngx_http_ai_gateway_origin_t  *defaults;   /* one per table row */
    ngx_resolver_t                *resolver;   /* from /etc/resolv.conf */
    ngx_http_complex_value_t      *tls_name;
    ngx_http_ai_gateway_origin_t  *token_origin; /* Google's OAuth */
    ngx_array_t                   *cache_refs; /* "ai_gateway_cache" zones */
    ngx_http_ai_gateway_prices_t  *prices;     /* cost.c */
    ngx_flag_t                     prices_default;
    ngx_array_t                    log_targets; /* log.c: a gateway's
                                                   log store */
} ngx_http_ai_gateway_main_conf_t;


/*
 * The request context, in parts, each written by the stage that owns it
 * (docs/architecture.md); the others read them.
 */

typedef enum {
    NGX_HTTP_AI_GATEWAY_REQUEST = 0,           /* a client's request */
    NGX_HTTP_AI_GATEWAY_ATTEMPT,               /* a subrequest of retry.c */
    NGX_HTTP_AI_GATEWAY_EXCHANGE               /* a subrequest of vertex.c */
} ngx_http_ai_gateway_kind_e;


/* parse and route: handler.c, provider.c, compat.c, vertex.c */

typedef struct {
    ngx_str_t                          account_id;
    ngx_str_t                          gateway_id;
    ngx_str_t                          provider;        /* slug as routed */
    ngx_str_t                          model;

    ngx_http_ai_gateway_target_t       target;

    ngx_str_t                          credential;      /* compat: key */
    ngx_keyval_t                       version;         /* compat: added */
    ngx_str_t                          method;          /* or the client's */

    ngx_http_ai_gateway_vertex_sa_t   *sa;              /* key to exchange,
                                                           or exchanged */

    ngx_uint_t                         endpoint;        /* compat */
    ngx_http_ai_gateway_translator_t  *translator;
    ngx_http_ai_gateway_compat_t       tc;              /* the translation */

    unsigned                           compat:1;
    unsigned                           universal:1;
    unsigned                           no_encoding:1;
    unsigned                           model_done:1;
} ngx_http_ai_gateway_route_t;


/* the request body: handler.c (kept), compat.c (sent instead) */

typedef struct {
    ngx_str_t                          raw;             /* as read */
    size_t                             raw_size;
    void                              *tree;            /* compat: parsed */
    off_t                              received;        /* bytes read */
    ngx_str_t                          sent;            /* sent instead */
    unsigned                           set:1;           /* sent is set */
    unsigned                           keep:1;          /* raw is needed:
                                                           include_usage
                                                           (cost.c) */
} ngx_http_ai_gateway_body_t;


/* the provider request and its answer: upstream.c, relay.c */

typedef struct {
    ngx_chain_t                       *request;         /* to the provider */

    ngx_http_status_t                  status;
    ngx_http_chunked_t                 chunked;

    ngx_msec_t                         start;
    ngx_msec_t                         ttfb;

    ngx_http_ai_gateway_relay_e        mode;
    ngx_http_ai_gateway_stream_t      *stream;
    ngx_chain_t                      **out;             /* append here */
    ngx_str_t                          resp;            /* kept whole */
    size_t                             resp_size;

    unsigned                           head:1;
    unsigned                           first_byte:1;
    unsigned                           ended:1;         /* relay_end() */
    unsigned                           hold:1;          /* the header waits
                                                           for the body
                                                           translated whole */
} ngx_http_ai_gateway_relay_t;


/* the gateway's error: error.c, filter.c */

typedef struct {
    ngx_uint_t                         code;
    ngx_str_t                          message;
    ngx_str_t                          body;            /* the envelope */
    unsigned                           made:1;          /* body is made */
    unsigned                           sent:1;
} ngx_http_ai_gateway_error_t;


/* the request's ids: ids.c */

typedef struct {
    u_char                             log_id[26];
    ngx_str_t                          event_id;
    unsigned                           log_id_done:1;
} ngx_http_ai_gateway_ids_t;


/* the gateway's request headers: headers.c */

typedef struct {
    ngx_table_elt_t                   *cache_ttl;
    ngx_table_elt_t                   *legacy_cache_ttl;
    ngx_table_elt_t                   *cache_key;
    ngx_table_elt_t                   *skip_cache;
    ngx_table_elt_t                   *legacy_skip_cache;
    ngx_table_elt_t                   *request_timeout;
    ngx_table_elt_t                   *max_attempts;
    ngx_table_elt_t                   *retry_delay;
    ngx_table_elt_t                   *backoff;
    ngx_table_elt_t                   *event_id;
    ngx_table_elt_t                   *metadata;
    ngx_table_elt_t                   *custom_cost;
    ngx_table_elt_t                   *collect_log;
    ngx_table_elt_t                   *collect_log_payload;
    ngx_table_elt_t                   *authorization;   /* cf-aig-auth... */
    ngx_table_elt_t                   *byok_alias;
    ngx_array_t                        all;             /* every cf-* one */
    unsigned                           parsed:1;
} ngx_http_ai_gateway_headers_t;


/* the cache: cache.c */

typedef struct {
    ngx_http_ai_gateway_cache_t       *state;           /* NULL: no cache */
    ngx_uint_t                         status;          /* MISS, HIT */
    unsigned                           hit:1;
} ngx_http_ai_gateway_cache_part_t;


/*
 * What the provider's answer used, as the provider reported it: usage.c
 * (read by cost, logs, variables, limits).  The four token counts are
 * apart, none counted twice: tokens in = input + cached + cache_write,
 * tokens out = output (reasoning included).
 */

typedef struct {
    uint64_t                           input;           /* not cached */
    uint64_t                           cached;          /* read from the
                                                           prompt cache */
    uint64_t                           cache_write;     /* written to it */
    uint64_t                           output;
    uint64_t                           reasoning;       /* of output */
    unsigned                           known:1;         /* reported */
    unsigned                           partial:1;       /* cut, or the
                                                           client left */
} ngx_http_ai_gateway_usage_t;


/* its cost in US dollars: cost.c */

typedef struct {
    double                             value;
    unsigned                           known:1;         /* else: no cost */
    unsigned                           custom:1;        /* cf-aig-custom-
                                                           cost */
} ngx_http_ai_gateway_cost_t;


/*
 * The accounting of the answer and the request's tags: cost.c (the meter
 * reading the provider's answer in the relay, the model priced, the
 * include_usage the gateway added, cf-aig-metadata as kept).
 */

typedef struct {
    ngx_http_ai_gateway_meter_t       *parser;
    ngx_str_t                          model;           /* priced */
    ngx_str_t                          metadata;        /* JSON, or empty:
                                                           none */
    u_char                            *hold;            /* strip: an SSE
                                                           event's start */
    size_t                             hold_len;
    size_t                             hold_size;
    uint64_t                           header_in;       /* Bedrock's count
                                                           headers */
    uint64_t                           header_out;
    unsigned                           header:1;
    unsigned                           strip:1;         /* include_usage
                                                           added: its chunk
                                                           is left out */
    unsigned                           metadata_done:1;
    unsigned                           done:1;          /* usage and cost
                                                           are final */
} ngx_http_ai_gateway_meter_part_t;


/*
 * The request's log record in the making: log.c; relay.c keeps the
 * answer (up to limit bytes) and the end of an attempt's provider
 * exchange.
 */

typedef struct {
    ngx_str_t                          resp;            /* the answer */
    size_t                             resp_size;       /* its buffer */
    off_t                              resp_bytes;      /* all of it */
    size_t                             limit;           /* kept at most */
    uint64_t                           end;             /* an attempt's,
                                                           ms since the
                                                           epoch */
    ngx_uint_t                         step;            /* an attempt's */
    ngx_array_t                       *attempts;        /* the request's
                                                           attempts (ctx *) */
    ngx_http_request_t                *request;         /* this one */
    unsigned                           started:1;
    unsigned                           collect:1;       /* a record */
    unsigned                           payload:1;       /* with the bodies */
    unsigned                           cut:1;           /* answer beyond
                                                           limit */
    unsigned                           failed:1;        /* the provider's
                                                           answer cut */
} ngx_http_ai_gateway_log_part_t;


/*
 * Access: the client authenticated (auth.c, on the request) and the
 * stored provider key chosen (keys.c, on the request or each attempt).
 */

typedef struct {
    ngx_str_t                          client;          /* the token's
                                                           name */
    ngx_str_t                          token;           /* the token, when
                                                           it came in a
                                                           provider's
                                                           header */
    ngx_str_t                          alias;           /* of the stored
                                                           key used */
    ngx_str_t                         *key;             /* the stored key
                                                           used, or NULL */
    unsigned                           done:1;          /* authenticated */
    unsigned                           refused:1;       /* 401 */
} ngx_http_ai_gateway_access_t;


typedef struct {
    ngx_http_ai_gateway_kind_e         kind;
    ngx_uint_t                         stage;           /* handler.c */

    ngx_http_ai_gateway_headers_t      headers;
    ngx_http_ai_gateway_route_t        route;
    ngx_http_ai_gateway_body_t         body;
    ngx_http_ai_gateway_relay_t        relay;
    ngx_http_ai_gateway_error_t        error;
    ngx_http_ai_gateway_ids_t          ids;
    ngx_http_ai_gateway_cache_part_t   cache;
    ngx_http_ai_gateway_usage_t        usage;
    ngx_http_ai_gateway_cost_t         cost;
    ngx_http_ai_gateway_meter_part_t   meter;
    ngx_http_ai_gateway_log_part_t     log;             /* log.c */
    ngx_http_ai_gateway_access_t       access;          /* auth.c, keys.c */
    ngx_http_ai_gateway_limit_part_t  *limit;           /* limit.c (the
                                                           main request's) */

    ngx_http_ai_gateway_retry_t       *retry;           /* attempts: retry.c
                                                           (an attempt's
                                                           points to its
                                                           request's) */
} ngx_http_ai_gateway_ctx_t;


/* the request's context: there once the content handler has run */
#define ngx_http_ai_gateway_ctx(r)                                            \
    ((ngx_http_ai_gateway_ctx_t *)                                            \
     ngx_http_get_module_ctx(r, ngx_http_ai_gateway_module))


/* ngx_http_ai_gateway_handler.c */

ngx_int_t ngx_http_ai_gateway_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_ai_gateway_handler_init(ngx_conf_t *cf);
ngx_http_ai_gateway_ctx_t *ngx_http_ai_gateway_get_ctx(ngx_http_request_t *r);

/* ngx_http_ai_gateway_headers.c */

ngx_http_ai_gateway_headers_t *ngx_http_ai_gateway_headers(
    ngx_http_request_t *r, ngx_http_ai_gateway_ctx_t *ctx);
ngx_int_t ngx_http_ai_gateway_headers_parse(ngx_pool_t *pool,
    ngx_list_t *list, ngx_http_ai_gateway_headers_t *hs);
ngx_uint_t ngx_http_ai_gateway_headers_true(ngx_table_elt_t *h);

/* ngx_http_ai_gateway_provider.c */

ngx_http_ai_gateway_provider_t *ngx_http_ai_gateway_provider_find(
    ngx_str_t *slug);
u_char *ngx_http_ai_gateway_provider_names(u_char *buf, u_char *last);
ngx_int_t ngx_http_ai_gateway_provider_init(ngx_conf_t *cf);
char *ngx_http_ai_gateway_provider_merge(ngx_conf_t *cf,
    ngx_http_ai_gateway_loc_conf_t *prev, ngx_http_ai_gateway_loc_conf_t *conf);
char *ngx_http_ai_gateway_provider_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
ngx_int_t ngx_http_ai_gateway_route(ngx_http_request_t *r,
    ngx_http_ai_gateway_loc_conf_t *alcf, ngx_http_ai_gateway_ctx_t *ctx,
    ngx_str_t *slug, ngx_str_t *rest);
ngx_int_t ngx_http_ai_gateway_route_origin(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_origin_t *o,
    ngx_str_t *rest);
ngx_int_t ngx_http_ai_gateway_parse_origin(ngx_pool_t *pool, ngx_str_t *url,
    ngx_http_ai_gateway_origin_t *o, char **err);

/* ngx_http_ai_gateway_upstream.c */

ngx_int_t ngx_http_ai_gateway_upstream_init(ngx_http_request_t *r,
    ngx_http_ai_gateway_loc_conf_t *alcf, ngx_http_ai_gateway_ctx_t *ctx);
char *ngx_http_ai_gateway_upstream_merge(ngx_conf_t *cf,
    ngx_http_ai_gateway_loc_conf_t *prev, ngx_http_ai_gateway_loc_conf_t *conf);

/* ngx_http_ai_gateway_error.c */

ngx_int_t ngx_http_ai_gateway_fail(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_uint_t code, const char *fmt, ...);
ngx_int_t ngx_http_ai_gateway_send_error(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_uint_t status);
ngx_int_t ngx_http_ai_gateway_envelope(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_uint_t status);

/* ngx_http_ai_gateway_variables.c */

ngx_int_t ngx_http_ai_gateway_add_variables(ngx_conf_t *cf);

/* ngx_http_ai_gateway_ids.c */

void ngx_http_ai_gateway_log_id(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
ngx_int_t ngx_http_ai_gateway_event_id(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);

/* ngx_http_ai_gateway_compat.c */

ngx_int_t ngx_http_ai_gateway_compat_check(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_str_t *rest);
ngx_int_t ngx_http_ai_gateway_compat_models(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
ngx_int_t ngx_http_ai_gateway_compat_prepare(ngx_http_request_t *r,
    ngx_http_ai_gateway_loc_conf_t *alcf, ngx_http_ai_gateway_ctx_t *ctx);

/* ngx_http_ai_gateway_relay.c */

void ngx_http_ai_gateway_relay_header(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
void ngx_http_ai_gateway_relay_headers_out(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
void ngx_http_ai_gateway_relay_tail(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
ngx_int_t ngx_http_ai_gateway_relay_body(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, u_char *p, size_t len);
ngx_int_t ngx_http_ai_gateway_relay_end(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
void ngx_http_ai_gateway_relay_finalize(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_int_t rc);

/* ngx_http_ai_gateway_vertex.c */

ngx_int_t ngx_http_ai_gateway_vertex_credential(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_uint_t need_region);
ngx_int_t ngx_http_ai_gateway_vertex_token(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
ngx_int_t ngx_http_ai_gateway_vertex_exchange(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
ngx_int_t ngx_http_ai_gateway_vertex_init(ngx_conf_t *cf);

/* ngx_http_ai_gateway_cache.c */

ngx_int_t ngx_http_ai_gateway_cache_headers(ngx_http_request_t *r,
    ngx_http_ai_gateway_loc_conf_t *alcf, ngx_http_ai_gateway_ctx_t *ctx);
ngx_int_t ngx_http_ai_gateway_cache_lookup(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
ngx_int_t ngx_http_ai_gateway_cache_answer(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
void ngx_http_ai_gateway_cache_upstream_done(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_int_t rc);
ngx_int_t ngx_http_ai_gateway_cache_header(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
void ngx_http_ai_gateway_cache_body(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_chain_t *in);
ngx_int_t ngx_http_ai_gateway_cache_key_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
ngx_int_t ngx_http_ai_gateway_cache_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

/* ngx_http_ai_gateway_cache_key.c */

ngx_int_t ngx_http_ai_gateway_cache_key(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_cache_t *c);

/* ngx_http_ai_gateway_retry.c */

extern ngx_conf_enum_t  ngx_http_ai_gateway_backoffs[];
extern ngx_conf_num_bounds_t  ngx_http_ai_gateway_attempts_bounds;

void ngx_http_ai_gateway_retry_create_conf(
    ngx_http_ai_gateway_retry_conf_t *conf);
char *ngx_http_ai_gateway_retry_merge_conf(ngx_conf_t *cf,
    ngx_http_ai_gateway_retry_conf_t *prev,
    ngx_http_ai_gateway_retry_conf_t *conf);
ngx_int_t ngx_http_ai_gateway_retry_settings(ngx_http_request_t *r,
    ngx_http_ai_gateway_headers_t *hs, ngx_http_ai_gateway_retry_conf_t *s);
ngx_msec_t ngx_http_ai_gateway_retry_wait(
    ngx_http_ai_gateway_retry_conf_t *s, ngx_uint_t n);
ngx_int_t ngx_http_ai_gateway_retry_plan(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_retry_conf_t *s);
ngx_int_t ngx_http_ai_gateway_retry_steps(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_http_ai_gateway_step_t *steps,
    ngx_uint_t n);
ngx_int_t ngx_http_ai_gateway_retry_begin(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
ngx_int_t ngx_http_ai_gateway_retry_value(ngx_http_request_t *r,
    ngx_str_t *name, ngx_str_t *value, ngx_http_ai_gateway_retry_conf_t *s);
void ngx_http_ai_gateway_retry_armed(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
ngx_uint_t ngx_http_ai_gateway_retry_step(ngx_http_ai_gateway_ctx_t *ctx);
ngx_http_request_t *ngx_http_ai_gateway_retry_request(
    ngx_http_ai_gateway_ctx_t *ctx);
ngx_int_t ngx_http_ai_gateway_retry_header(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
ngx_int_t ngx_http_ai_gateway_retry_body(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_chain_t *in);
ngx_int_t ngx_http_ai_gateway_retry_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

/* ngx_http_ai_gateway_cost.c */

char *ngx_http_ai_gateway_prices_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_gateway_cost_init(ngx_conf_t *cf);
void ngx_http_ai_gateway_cost_route(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
ngx_int_t ngx_http_ai_gateway_cost_request(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
void ngx_http_ai_gateway_cost_cached(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
void ngx_http_ai_gateway_cost_start(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
void ngx_http_ai_gateway_cost_feed(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, u_char *p, size_t len);
void ngx_http_ai_gateway_cost_end(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx, ngx_uint_t complete);
ngx_str_t *ngx_http_ai_gateway_cost_metadata(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);

/* ngx_http_ai_gateway_log.c */

extern ngx_conf_enum_t  ngx_http_ai_gateway_log_strategies[];
extern ngx_conf_num_bounds_t  ngx_http_ai_gateway_log_max_bounds;

char *ngx_http_ai_gateway_logs_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_ai_gateway_logs_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void ngx_http_ai_gateway_log_create_conf(ngx_http_ai_gateway_log_conf_t *conf);
char *ngx_http_ai_gateway_log_merge_conf(ngx_conf_t *cf,
    ngx_http_ai_gateway_log_conf_t *prev, ngx_http_ai_gateway_log_conf_t *conf,
    ngx_str_t *gateway, ngx_str_t *account);
ngx_int_t ngx_http_ai_gateway_log_init(ngx_conf_t *cf);
void ngx_http_ai_gateway_log_start(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);

/* ngx_http_ai_gateway_auth.c */

ngx_int_t ngx_http_ai_gateway_auth(ngx_http_request_t *r,
    ngx_http_ai_gateway_loc_conf_t *alcf, ngx_http_ai_gateway_ctx_t *ctx);
ngx_http_ai_gateway_token_t *ngx_http_ai_gateway_tokens_find(
    ngx_array_t *tokens, u_char *p, size_t len);
ngx_array_t *ngx_http_ai_gateway_tokens_read(ngx_conf_t *cf, ngx_str_t *path,
    const char *what);
char *ngx_http_ai_gateway_auth_token_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_gateway_client_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

/*
 * The client identity of a request (for limits, logs, metrics): the name
 * of the gateway token it was authenticated with, the same for each of
 * its attempts and Universal Endpoint steps (r may be any of them).  It
 * is empty when the location asks for no token, the token has no name,
 * or the request is not authenticated yet (authentication is the first
 * thing the content handler does, before the body is read).  Never NULL;
 * the bytes are the configuration's: letters, digits and "-_.@", at most
 * 64.
 */
ngx_str_t *ngx_http_ai_gateway_client(ngx_http_request_t *r);

/* ngx_http_ai_gateway_keys.c */

ngx_int_t ngx_http_ai_gateway_secret_file(ngx_conf_t *cf, ngx_pool_t *pool,
    ngx_str_t *path, size_t max, const char *what, ngx_str_t *out);
char *ngx_http_ai_gateway_key_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_gateway_keys_pick(ngx_http_request_t *r,
    ngx_http_ai_gateway_loc_conf_t *alcf, ngx_http_ai_gateway_ctx_t *ctx,
    ngx_str_t *slug);
ngx_int_t ngx_http_ai_gateway_keys_apply(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
ngx_uint_t ngx_http_ai_gateway_keys_skip(ngx_http_ai_gateway_ctx_t *ctx,
    ngx_table_elt_t *h);
ngx_int_t ngx_http_ai_gateway_bearer(ngx_str_t *value);

/* ngx_http_ai_gateway_limit.c */

ngx_http_ai_gateway_limit_conf_t *ngx_http_ai_gateway_limit_create_conf(
    ngx_conf_t *cf);
char *ngx_http_ai_gateway_limit_merge_conf(ngx_conf_t *cf,
    ngx_http_ai_gateway_limit_conf_t *prev,
    ngx_http_ai_gateway_limit_conf_t *conf);
char *ngx_http_ai_gateway_limit_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_ai_gateway_limit_headers_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_ai_gateway_limit_clock_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_ai_gateway_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_gateway_limit_init(ngx_conf_t *cf);
ngx_int_t ngx_http_ai_gateway_limit_check(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
ngx_int_t ngx_http_ai_gateway_limit_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

/* ngx_http_ai_gateway_universal.c */

ngx_int_t ngx_http_ai_gateway_universal_check(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);
ngx_int_t ngx_http_ai_gateway_universal_steps(ngx_http_request_t *r,
    ngx_http_ai_gateway_ctx_t *ctx);


extern ngx_module_t  ngx_http_ai_gateway_module;


#endif /* _NGX_HTTP_AI_GATEWAY_MODULE_H_INCLUDED_ */
