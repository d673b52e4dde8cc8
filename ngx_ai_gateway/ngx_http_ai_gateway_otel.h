
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#ifndef _NGX_HTTP_AI_GATEWAY_OTEL_H_INCLUDED_
#define _NGX_HTTP_AI_GATEWAY_OTEL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_log.h"


/*
 * OpenTelemetry traces (ngx_http_ai_gateway_otel.c): log.c hands each
 * request's records to it in the log phase, one span each, and it
 * exports them to the collectors of ai_gateway_otel_exporter.
 */


ngx_uint_t ngx_http_ai_gateway_otel_enabled(ngx_http_request_t *r);
void ngx_http_ai_gateway_otel_span(ngx_http_request_t *r,
    ngx_http_request_t *mr, ngx_http_ai_gateway_log_record_t *rec,
    ngx_str_t *req, ngx_str_t *resp);
void ngx_http_ai_gateway_otel_end(ngx_http_request_t *mr);
void ngx_http_ai_gateway_otel_count(ngx_uint_t exported, ngx_uint_t dropped);


extern ngx_module_t  ngx_http_ai_gateway_otel_module;


#endif /* _NGX_HTTP_AI_GATEWAY_OTEL_H_INCLUDED_ */
