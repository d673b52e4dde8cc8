
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#ifndef _NGX_HTTP_AI_GATEWAY_CACHE_ENTRY_H_INCLUDED_
#define _NGX_HTTP_AI_GATEWAY_CACHE_ENTRY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* the most headers an entry keeps, besides Content-Type */
#define NGX_HTTP_AI_GATEWAY_CACHE_HEADERS  64


/* a cache entry, decoded: every piece points into the entry's bytes */

typedef struct {
    ngx_uint_t                     status;
    ngx_str_t                      content_type;
    ngx_uint_t                     nheaders;
    ngx_keyval_t                   headers[NGX_HTTP_AI_GATEWAY_CACHE_HEADERS];
    ngx_str_t                      body;

    unsigned                       has_content_type:1;

    const char                    *error;      /* why it was refused */
    ngx_uint_t                     header;     /* where: header number */
} ngx_http_ai_gateway_cache_entry_t;


ngx_uint_t ngx_http_ai_gateway_cache_entry_keeps(u_char *name, size_t len);
ngx_int_t ngx_http_ai_gateway_cache_entry_check(
    ngx_http_ai_gateway_cache_entry_t *e);
size_t ngx_http_ai_gateway_cache_entry_head_size(
    ngx_http_ai_gateway_cache_entry_t *e);
u_char *ngx_http_ai_gateway_cache_entry_write_head(u_char *p,
    ngx_http_ai_gateway_cache_entry_t *e);
void ngx_http_ai_gateway_cache_entry_set_body(u_char *head, size_t head_size,
    size_t len);
ngx_int_t ngx_http_ai_gateway_cache_entry_decode(u_char *p, size_t len,
    ngx_http_ai_gateway_cache_entry_t *e);


#endif /* _NGX_HTTP_AI_GATEWAY_CACHE_ENTRY_H_INCLUDED_ */
