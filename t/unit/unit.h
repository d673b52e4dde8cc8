
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#ifndef _UNIT_H_INCLUDED_
#define _UNIT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_gateway_openai.h"
#include "shim.h"


extern ngx_uint_t  unit_passed;
extern ngx_uint_t  unit_failed;


#define unit_check(cond, ...)                                                 \
    do {                                                                      \
        if (cond) {                                                           \
            unit_passed++;                                                    \
        } else {                                                              \
            unit_failed++;                                                    \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);              \
            fprintf(stderr, __VA_ARGS__);                                     \
            fprintf(stderr, "\n");                                            \
        }                                                                     \
    } while (0)


/* a file's bytes (malloc()ed, NUL after them), or NULL */
u_char *unit_read(const char *path, size_t *len);

/* got equals the file "expected" (UNIT_UPDATE=1 writes the file) */
void unit_expect(const char *what, u_char *got, size_t len,
    const char *expected);

/* a test translation context, deterministic */
void unit_compat(ngx_http_ai_gateway_compat_t *c, ngx_uint_t include_usage);

/* the SSE bytes of a fixture: .sse as is, .chunks.txt by the recipe */
u_char *unit_stream_body(const char *provider, const char *path,
    size_t *len);

/* the whole translated stream of body, fed in pieces of at most step
 * bytes (0: in two pieces split at "split") */
ngx_int_t unit_stream_run(ngx_http_ai_gateway_translator_t *t,
    ngx_uint_t include_usage, u_char *body, size_t len, size_t step,
    size_t split, ngx_uint_t complete, u_char **out, size_t *out_len);

void unit_sse(void);
void unit_requests(void);
void unit_responses(void);
void unit_embeddings(void);
void unit_errors(void);
void unit_streams(void);
void unit_nomem(void);
void unit_memory(void);
void unit_lookup(void);
void unit_checks(void);
void unit_steps(void);
void unit_cache_entries(void);
void unit_json(void);
void unit_usage(void);
void unit_logs(void);


#endif /* _UNIT_H_INCLUDED_ */
