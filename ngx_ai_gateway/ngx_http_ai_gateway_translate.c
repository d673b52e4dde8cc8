
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_gateway_openai.h"


/*
 * The table of native dialects behind ngx_http_ai_gateway_translate.h:
 * what the HTTP layer looks up by a provider's dialect name, and the
 * only way it reaches a translator.
 */


ngx_http_ai_gateway_translator_t  ngx_http_ai_gateway_translators[] = {

    { ngx_string("anthropic"),
      ngx_http_ai_gateway_anthropic_request,
      ngx_http_ai_gateway_anthropic_response,
      ngx_http_ai_gateway_anthropic_error,
      ngx_http_ai_gateway_anthropic_stream,
      ngx_http_ai_gateway_stream_feed,
      ngx_http_ai_gateway_stream_finish,
      NULL,
      NULL },

    { ngx_string("gemini"),
      ngx_http_ai_gateway_gemini_request,
      ngx_http_ai_gateway_gemini_response,
      ngx_http_ai_gateway_gemini_error,
      ngx_http_ai_gateway_gemini_stream,
      ngx_http_ai_gateway_stream_feed,
      ngx_http_ai_gateway_stream_finish,
      ngx_http_ai_gateway_gemini_embed_request,
      ngx_http_ai_gateway_gemini_embed_response },

    { ngx_null_string, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL }
};


ngx_http_ai_gateway_translator_t *
ngx_http_ai_gateway_translator(ngx_str_t *name)
{
    ngx_http_ai_gateway_translator_t  *t;

    for (t = ngx_http_ai_gateway_translators; t->name.len; t++) {
        if (t->name.len == name->len
            && ngx_strncmp(t->name.data, name->data, name->len) == 0)
        {
            return t;
        }
    }

    return NULL;
}
