
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#ifndef _NGX_HTTP_AI_GATEWAY_METRICS_H_INCLUDED_
#define _NGX_HTTP_AI_GATEWAY_METRICS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * Gateway-wide counters of the OpenTelemetry exporter (otel.c): spans
 * exported and spans dropped, added to the metrics zone's
 * ai_gateway_otel_spans_exported_total and _dropped_total.  Callable from
 * any worker context, a timer handler included, with no request; a no-op
 * when no ai_gateway_metrics_zone is configured.
 */

void ngx_http_ai_gateway_metrics_otel(ngx_uint_t exported,
    ngx_uint_t dropped);


#endif /* _NGX_HTTP_AI_GATEWAY_METRICS_H_INCLUDED_ */
