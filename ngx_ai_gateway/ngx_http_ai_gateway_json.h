
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#ifndef _NGX_HTTP_AI_GATEWAY_JSON_H_INCLUDED_
#define _NGX_HTTP_AI_GATEWAY_JSON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>


/*
 * The module's JSON, knowing nothing of HTTP: pools, strings and chains
 * in, text out.  ngx_http_ai_gateway_yajl.c holds the generator (gen_*:
 * yajl_gen's output in a pool buffer, strings to escape written by
 * yajl_gen_string()), the parser (yajl's, building yajl trees in a pool,
 * depth-limited, "\u0000" kept) and the value accessors (json_*);
 * ngx_http_ai_gateway_json.c the texts the gateway itself writes (its
 * error envelope, the Unified API's model list, a body with one top-level
 * string replaced) and the top-level string lookup;
 * ngx_http_ai_gateway_canonical.c the canonical text of a body, for cache
 * keys.  The translators, the Universal Endpoint's steps and the HTTP
 * layer above all use these.
 */


/* nesting accepted in parsed and copied JSON (yajl_gen stops at 128) */
#define NGX_HTTP_AI_GATEWAY_MAX_DEPTH     100


/* the nesting the generator writes, as yajl_gen's */
#define NGX_HTTP_AI_GATEWAY_GEN_DEPTH     128


/* JSON output, written into a pool buffer */

typedef struct {
    ngx_pool_t                    *pool;
    yajl_gen                       enc;        /* strings to escape */
    u_char                        *buf;
    size_t                         len;
    size_t                         size;
    ngx_uint_t                     depth;      /* maps and arrays open */
    unsigned                       nomem:1;
    unsigned                       invalid:1;  /* bad UTF-8, too deep, a
                                                  call yajl_gen refuses */
    u_char                         state[NGX_HTTP_AI_GATEWAY_GEN_DEPTH];
} ngx_http_ai_gateway_gen_t;


/*
 * Output written once and replayed, leaving one map open after a member:
 * the head of every chunk of a stream.
 */

typedef struct {
    ngx_str_t                      text;
} ngx_http_ai_gateway_gen_saved_t;


#define ngx_http_ai_gateway_gen_literal(gen, s)                               \
    ngx_http_ai_gateway_gen_str(gen, (u_char *) s, sizeof(s) - 1)


/* ngx_http_ai_gateway_yajl.c: JSON output */

ngx_int_t ngx_http_ai_gateway_gen_init(ngx_http_ai_gateway_gen_t *gen,
    ngx_pool_t *pool);
void ngx_http_ai_gateway_gen_reset(ngx_http_ai_gateway_gen_t *gen);
void ngx_http_ai_gateway_gen_raw(ngx_http_ai_gateway_gen_t *gen, u_char *p,
    size_t len);
void ngx_http_ai_gateway_gen_str(ngx_http_ai_gateway_gen_t *gen, u_char *p,
    size_t len);
void ngx_http_ai_gateway_gen_string(ngx_http_ai_gateway_gen_t *gen,
    ngx_str_t *s);
void ngx_http_ai_gateway_gen_num(ngx_http_ai_gateway_gen_t *gen, u_char *p,
    size_t len);
void ngx_http_ai_gateway_gen_double(ngx_http_ai_gateway_gen_t *gen,
    double n);
void ngx_http_ai_gateway_gen_int(ngx_http_ai_gateway_gen_t *gen,
    long long n);
void ngx_http_ai_gateway_gen_null(ngx_http_ai_gateway_gen_t *gen);
void ngx_http_ai_gateway_gen_bool(ngx_http_ai_gateway_gen_t *gen,
    ngx_uint_t b);
void ngx_http_ai_gateway_gen_map(ngx_http_ai_gateway_gen_t *gen);
void ngx_http_ai_gateway_gen_map_end(ngx_http_ai_gateway_gen_t *gen);
void ngx_http_ai_gateway_gen_array(ngx_http_ai_gateway_gen_t *gen);
void ngx_http_ai_gateway_gen_array_end(ngx_http_ai_gateway_gen_t *gen);
void ngx_http_ai_gateway_gen_value(ngx_http_ai_gateway_gen_t *gen,
    yajl_val v);
ngx_int_t ngx_http_ai_gateway_gen_save(ngx_http_ai_gateway_gen_t *gen,
    size_t mark, ngx_http_ai_gateway_gen_saved_t *saved);
void ngx_http_ai_gateway_gen_replay(ngx_http_ai_gateway_gen_t *gen,
    ngx_http_ai_gateway_gen_saved_t *saved);
void ngx_http_ai_gateway_gen_member_str(ngx_http_ai_gateway_gen_t *gen,
    u_char *p, size_t len);
ngx_int_t ngx_http_ai_gateway_gen_done(ngx_http_ai_gateway_gen_t *gen,
    ngx_str_t *out);
ngx_int_t ngx_http_ai_gateway_json_text(ngx_pool_t *pool, yajl_val v,
    ngx_str_t *out);

/* ngx_http_ai_gateway_yajl.c: JSON input */

ngx_int_t ngx_http_ai_gateway_json_parse(ngx_pool_t *pool, u_char *p,
    size_t len, yajl_val *v);
yajl_val ngx_http_ai_gateway_json_get(yajl_val obj, const char *key);
ngx_int_t ngx_http_ai_gateway_json_str(yajl_val v, ngx_str_t *s);
/* a parsed string held a "\u0000" (kept as C0 80, see yajl.c) */
ngx_uint_t ngx_http_ai_gateway_json_has_nul(ngx_str_t *s);
ngx_uint_t ngx_http_ai_gateway_json_is(yajl_val v, const char *s);
ngx_uint_t ngx_http_ai_gateway_json_count(yajl_val v, uint64_t *n);

/* ngx_http_ai_gateway_json.c */

ngx_int_t ngx_http_ai_gateway_json_error(ngx_pool_t *pool, ngx_uint_t status,
    ngx_uint_t code, ngx_str_t *message, ngx_str_t *out);
ngx_int_t ngx_http_ai_gateway_json_models(ngx_pool_t *pool,
    ngx_array_t *models, ngx_str_t *out);
ngx_int_t ngx_http_ai_gateway_json_top_string(ngx_pool_t *pool,
    ngx_chain_t *in, const char *key, ngx_str_t *value);
ngx_int_t ngx_http_ai_gateway_json_replace(ngx_pool_t *pool, yajl_val tree,
    const char *key, ngx_str_t *value, ngx_str_t *out);

/* ngx_http_ai_gateway_canonical.c */

ngx_int_t ngx_http_ai_gateway_canonical_json(ngx_pool_t *pool, u_char *p,
    size_t len, void (*print)(void *data, const char *s, size_t len),
    void *data, ngx_uint_t *stream, ngx_str_t *model);
void ngx_http_ai_gateway_canonical_exit_process(void);


#endif /* _NGX_HTTP_AI_GATEWAY_JSON_H_INCLUDED_ */
