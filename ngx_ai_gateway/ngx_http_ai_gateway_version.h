
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#ifndef _NGX_HTTP_AI_GATEWAY_VERSION_H_INCLUDED_
#define _NGX_HTTP_AI_GATEWAY_VERSION_H_INCLUDED_


/*
 * The module's version, in this one place: the error log names it at
 * startup, "make deb" makes the package's version of it, CHANGELOG.md
 * heads its entry with it.
 */


#define NGX_HTTP_AI_GATEWAY_VERSION  "0.8.0"
#define NGX_HTTP_AI_GATEWAY_VER      "ngx_ai_gateway/"                     \
                                     NGX_HTTP_AI_GATEWAY_VERSION


#endif /* _NGX_HTTP_AI_GATEWAY_VERSION_H_INCLUDED_ */
