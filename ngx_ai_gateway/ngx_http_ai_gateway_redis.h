
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#ifndef _NGX_HTTP_AI_GATEWAY_REDIS_H_INCLUDED_
#define _NGX_HTTP_AI_GATEWAY_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/*
 * A Redis server of the module (ngx_http_ai_gateway_redis.c): declared
 * with "ai_gateway_redis name address ...", or written in place by the
 * directive that uses it (the cache: "ai_gateway_cache_redis address").
 * Each worker keeps one connection per server, shared by every use.
 */

typedef struct ngx_http_ai_gateway_redis_s     ngx_http_ai_gateway_redis_t;
typedef struct ngx_http_ai_gateway_redis_op_s  ngx_http_ai_gateway_redis_op_t;


/* reply types, as a mask of the ones a command expects */

#define NGX_HTTP_AI_GATEWAY_REDIS_NIL      0x01
#define NGX_HTTP_AI_GATEWAY_REDIS_STRING   0x02
#define NGX_HTTP_AI_GATEWAY_REDIS_INTEGER  0x04
#define NGX_HTTP_AI_GATEWAY_REDIS_STATUS   0x08


typedef struct {
    ngx_uint_t                     type;
    ngx_str_t                      str;        /* STRING, STATUS */
    int64_t                        integer;    /* INTEGER */
} ngx_http_ai_gateway_redis_reply_t;


/*
 * Called once per waited command, from the event loop: reply is NULL when
 * the command failed (no connection, an error reply, a reply of a type not
 * expected, the timeout); the failure is logged already.  The reply's
 * bytes are valid during the call only.
 */

typedef void (*ngx_http_ai_gateway_redis_handler_pt)(void *data,
    ngx_http_ai_gateway_redis_reply_t *reply);


#define NGX_HTTP_AI_GATEWAY_REDIS_MAX_ARGS  16


/* configuration */

ngx_http_ai_gateway_redis_t *ngx_http_ai_gateway_redis_add(ngx_conf_t *cf,
    ngx_str_t *address);
ngx_http_ai_gateway_redis_t *ngx_http_ai_gateway_redis_ref(ngx_conf_t *cf,
    ngx_str_t *name);
ngx_int_t ngx_http_ai_gateway_redis_parameter(ngx_conf_t *cf,
    ngx_http_ai_gateway_redis_t *rd, ngx_str_t *value);
char *ngx_http_ai_gateway_redis_done(ngx_conf_t *cf,
    ngx_http_ai_gateway_redis_t *rd);

/* commands */

ngx_http_ai_gateway_redis_op_t *ngx_http_ai_gateway_redis_command(
    ngx_http_ai_gateway_redis_t *rd, ngx_uint_t argc, ngx_str_t *argv,
    ngx_uint_t expect, ngx_http_ai_gateway_redis_handler_pt handler,
    void *data, ngx_log_t *log);
void ngx_http_ai_gateway_redis_cancel(ngx_http_ai_gateway_redis_op_t *op);
void ngx_http_ai_gateway_redis_send(ngx_http_ai_gateway_redis_t *rd,
    ngx_uint_t argc, ngx_str_t *argv, ngx_log_t *log);
ngx_str_t *ngx_http_ai_gateway_redis_name(ngx_http_ai_gateway_redis_t *rd);


extern ngx_module_t  ngx_http_ai_gateway_redis_module;


#endif /* _NGX_HTTP_AI_GATEWAY_REDIS_H_INCLUDED_ */
