
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_gateway_log_store.h"


/*
 * What the two log stores share: the gateways' stores found by gateway
 * id (for the Logs API), and the records a store could not keep.  A
 * store that is down, too slow or full of another gateway's records loses
 * records; each worker counts them per gateway and says so in the error
 * log at most once per NGX_HTTP_AI_GATEWAY_LOG_LOST_INTERVAL, with the
 * count since it last said so: a dead store makes one line per interval,
 * not one per request.
 */


#define NGX_HTTP_AI_GATEWAY_LOG_LOST_INTERVAL  10


void
ngx_http_ai_gateway_log_lost(ngx_http_ai_gateway_log_target_t *t,
    ngx_uint_t n, const char *why, ngx_log_t *log)
{
    t->lost += n;

    if (ngx_time() - t->logged < NGX_HTTP_AI_GATEWAY_LOG_LOST_INTERVAL) {
        return;
    }

    ngx_log_error(NGX_LOG_ERR, log ? log : ngx_cycle->log, 0,
                  "ai_gateway: %ui log records of gateway \"%V\" lost: %s",
                  t->lost, &t->gateway, why);

    t->logged = ngx_time();
    t->lost = 0;
}


ngx_http_ai_gateway_log_target_t *
ngx_http_ai_gateway_log_target(ngx_array_t *targets, ngx_str_t *gateway)
{
    ngx_uint_t                          i;
    ngx_http_ai_gateway_log_target_t  **t;

    if (targets->elts == NULL) {
        return NULL;
    }

    t = targets->elts;

    for (i = 0; i < targets->nelts; i++) {
        if (t[i]->gateway.len == gateway->len
            && ngx_strncmp(t[i]->gateway.data, gateway->data, gateway->len)
               == 0)
        {
            return t[i];
        }
    }

    return NULL;
}
