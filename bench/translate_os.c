
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/* what nginx's src/core/ngx_palloc.c needs of the rest of nginx */


#include <ngx_config.h>
#include <ngx_core.h>


ngx_uint_t  ngx_pagesize = 4096;


void *
ngx_memalign(size_t alignment, size_t size, ngx_log_t *log)
{
    void  *p;

    if (posix_memalign(&p, alignment, size) != 0) {
        return NULL;
    }

    return p;
}


void
ngx_log_error_core(ngx_uint_t level, ngx_log_t *log, ngx_err_t err,
    const char *fmt, ...)
{
}
