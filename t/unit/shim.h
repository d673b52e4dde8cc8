
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#ifndef _NGX_SHIM_H_INCLUDED_
#define _NGX_SHIM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


extern ngx_int_t   ngx_shim_fail_after;
extern ngx_uint_t  ngx_shim_allocs;


#endif /* _NGX_SHIM_H_INCLUDED_ */
