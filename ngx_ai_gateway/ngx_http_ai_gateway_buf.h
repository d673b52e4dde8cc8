
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#ifndef _NGX_HTTP_AI_GATEWAY_BUF_H_INCLUDED_
#define _NGX_HTTP_AI_GATEWAY_BUF_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


ngx_int_t ngx_http_ai_gateway_reserve(ngx_pool_t *pool, u_char **buf,
    size_t *size, size_t used, size_t need, size_t min, size_t max);


#endif /* _NGX_HTTP_AI_GATEWAY_BUF_H_INCLUDED_ */
