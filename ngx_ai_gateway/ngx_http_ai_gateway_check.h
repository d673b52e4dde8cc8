
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#ifndef _NGX_HTTP_AI_GATEWAY_CHECK_H_INCLUDED_
#define _NGX_HTTP_AI_GATEWAY_CHECK_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* NGX_OK: the bytes may be written as that part of an HTTP head */

ngx_int_t ngx_http_ai_gateway_check_name(u_char *p, size_t len);
ngx_int_t ngx_http_ai_gateway_check_value(u_char *p, size_t len);
ngx_int_t ngx_http_ai_gateway_check_path(u_char *p, size_t len);
ngx_int_t ngx_http_ai_gateway_check_query(u_char *p, size_t len);
ngx_int_t ngx_http_ai_gateway_check_host(u_char *p, size_t len);

/* NGX_OK: no "." or ".." segment, escaped or not */

ngx_int_t ngx_http_ai_gateway_check_segments(u_char *p, size_t len);


#endif /* _NGX_HTTP_AI_GATEWAY_CHECK_H_INCLUDED_ */
