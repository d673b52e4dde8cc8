
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#ifndef _NGX_HTTP_AI_GATEWAY_STEPS_H_INCLUDED_
#define _NGX_HTTP_AI_GATEWAY_STEPS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


#define NGX_HTTP_AI_GATEWAY_MAX_STEPS     16
#define NGX_HTTP_AI_GATEWAY_STEP_CONFIG   4


/* a "config" field of a step, and the cf-aig-* header it stands for */

typedef struct {
    const char                    *field;
    ngx_str_t                      header;
    ngx_str_t                      value;      /* data NULL: not given */
} ngx_http_ai_gateway_step_config_t;


/* one step of a Universal Endpoint body, every field checked */

typedef struct {
    ngx_str_t                      provider;   /* lowercase */
    ngx_str_t                      endpoint;   /* no leading "/", may
                                                  hold "?query" */
    ngx_str_t                      authorization;
    ngx_array_t                    headers;    /* of ngx_keyval_t */
    ngx_http_ai_gateway_step_config_t
                           config[NGX_HTTP_AI_GATEWAY_STEP_CONFIG];
    ngx_str_t                      body;       /* "query" as JSON text */
    unsigned                       has_authorization_header:1;
    unsigned                       has_content_type:1;
} ngx_http_ai_gateway_step_spec_t;


typedef struct {
    /* in: is this a provider of the gateway (NULL: any) */
    ngx_uint_t                   (*known)(void *data, ngx_str_t *provider);
    void                          *data;

    /* out */
    ngx_http_ai_gateway_step_spec_t  *steps;
    ngx_uint_t                     nsteps;
    ngx_uint_t                     unknown;    /* the error is 2008 */
    ngx_str_t                      provider;   /* the unknown one */
    ngx_str_t                      error;
} ngx_http_ai_gateway_steps_t;


/*
 * NGX_OK, NGX_DECLINED with the error in s->error (a malformed body, or
 * an unknown provider: s->unknown), or NGX_ERROR (no memory).
 */

ngx_int_t ngx_http_ai_gateway_steps_parse(ngx_pool_t *pool, u_char *p,
    size_t len, ngx_http_ai_gateway_steps_t *s);


#endif /* _NGX_HTTP_AI_GATEWAY_STEPS_H_INCLUDED_ */
