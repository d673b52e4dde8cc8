
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#ifndef _YAJL_REF_H_INCLUDED_
#define _YAJL_REF_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>


yajl_val yajl_ref_parse(u_char *p, size_t len);
ngx_uint_t yajl_ref_equal(yajl_val a, yajl_val b);
ngx_int_t yajl_ref_text(yajl_val v, u_char **out, size_t *len);
ngx_uint_t yajl_ref_string(yajl_gen g, const u_char *p, size_t len);
ngx_uint_t yajl_ref_same_parse(u_char *p, size_t len);
ngx_uint_t yajl_ref_same_gen(u_char *p, size_t len);


#endif /* _YAJL_REF_H_INCLUDED_ */
