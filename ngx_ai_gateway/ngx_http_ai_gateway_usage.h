
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#ifndef _NGX_HTTP_AI_GATEWAY_USAGE_H_INCLUDED_
#define _NGX_HTTP_AI_GATEWAY_USAGE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * Accounting, the part that knows nothing of HTTP (docs/usage.md):
 *
 *   ngx_http_ai_gateway_usage.c     the meter: the token counts of a
 *                                    provider's answer read as its bytes
 *                                    pass, split anywhere (one JSON text,
 *                                    server-sent events, AWS event-stream
 *                                    frames); the request side of
 *                                    stream_options.include_usage
 *   ngx_http_ai_gateway_price.c     the price table (a JSON file), model
 *                                    names matched across dated versions,
 *                                    the cost of counts, cf-aig-custom-cost
 *   ngx_http_ai_gateway_metadata.c  cf-aig-metadata: the entries kept
 */


/* the longest model name kept from an answer */
#define NGX_HTTP_AI_GATEWAY_METER_MODEL   128


typedef enum {
    NGX_HTTP_AI_GATEWAY_METER_JSON = 0,        /* one JSON text (an array of
                                                  them: Gemini's stream
                                                  without alt=sse) */
    NGX_HTTP_AI_GATEWAY_METER_SSE,             /* server-sent events */
    NGX_HTTP_AI_GATEWAY_METER_EVENTSTREAM      /* AWS event-stream frames */
} ngx_http_ai_gateway_meter_framing_e;


/*
 * Token counts, apart, none counted twice: what the provider billed as
 * input is input + cached + cache_write, as output is output (reasoning
 * included).
 */

typedef struct {
    uint64_t                       input;      /* not read from a cache */
    uint64_t                       cached;     /* read from the prompt
                                                  cache */
    uint64_t                       cache_write; /* written to it */
    uint64_t                       output;     /* reasoning included */
    uint64_t                       reasoning;  /* of output */
    unsigned                       known:1;    /* the answer reported
                                                  counts (or, cut short,
                                                  showed output) */
    unsigned                       partial:1;  /* the answer did not end:
                                                  lower bounds */
} ngx_http_ai_gateway_tokens_t;


typedef struct ngx_http_ai_gateway_meter_s  ngx_http_ai_gateway_meter_t;


/* a per-token price, US dollars; a cost */

typedef struct {
    double                         input;
    double                         output;
    double                         cached;     /* cached input */
    double                         cache_write;
} ngx_http_ai_gateway_price_t;


typedef struct ngx_http_ai_gateway_prices_s  ngx_http_ai_gateway_prices_t;


/* ngx_http_ai_gateway_usage.c */

/*
 * A meter for one answer; strip: an SSE event that is only the usage
 * chunk of an OpenAI stream ("choices":[] and a "usage" object) is
 * reported for removal.  NULL: no memory.  Its parsers are freed with the
 * pool.
 */
ngx_http_ai_gateway_meter_t *ngx_http_ai_gateway_meter_create(
    ngx_pool_t *pool, ngx_http_ai_gateway_meter_framing_e framing,
    ngx_uint_t strip);

/*
 * Reads the answer's bytes from *pos up to last.  NGX_AGAIN: all read;
 * NGX_OK: an SSE event ends at *pos (*drop: it is the usage chunk to
 * remove), call again for the rest; NGX_ERROR: no memory.  A meter that
 * cannot make sense of the bytes (not the framing, not JSON) reads them
 * and counts nothing more.
 */
ngx_int_t ngx_http_ai_gateway_meter_feed(ngx_http_ai_gateway_meter_t *m,
    u_char **pos, u_char *last, ngx_uint_t *drop);

/*
 * The answer ended (complete: as its framing said), or was cut; the
 * counts read.  A cut answer's counts are known and partial: lower
 * bounds, its output at least the number of events that carried output.
 */
void ngx_http_ai_gateway_meter_finish(ngx_http_ai_gateway_meter_t *m,
    ngx_uint_t complete, ngx_http_ai_gateway_tokens_t *t);

/* the model the answer named, or an empty string */
void ngx_http_ai_gateway_meter_model(ngx_http_ai_gateway_meter_t *m,
    ngx_str_t *model);

/*
 * A streamed OpenAI request body (p[len] need not be 0) that does not ask
 * for usage: *out is the same body asking for it (one member added, or
 * "include_usage":false made true), NGX_OK; NGX_DECLINED: not streamed,
 * asks already, or a shape left alone; NGX_ERROR: no memory.
 */
ngx_int_t ngx_http_ai_gateway_meter_request(ngx_pool_t *pool, u_char *p,
    size_t len, ngx_str_t *out);

/* ngx_http_ai_gateway_price.c */

ngx_http_ai_gateway_prices_t *ngx_http_ai_gateway_prices_create(
    ngx_pool_t *pool);

/*
 * A price file's text added to the table: its entries replace those of
 * the same provider and model.  NGX_DECLINED with *err (a message in the
 * pool) when the text is not a valid price file; NGX_ERROR: no memory.
 */
ngx_int_t ngx_http_ai_gateway_prices_add(ngx_http_ai_gateway_prices_t *pp,
    u_char *p, size_t len, ngx_str_t *err);

/* the price of a provider's model, or NULL */
ngx_http_ai_gateway_price_t *ngx_http_ai_gateway_prices_find(
    ngx_http_ai_gateway_prices_t *pp, ngx_str_t *provider, ngx_str_t *model);

/* the table's entries, for the documentation's tests */
ngx_uint_t ngx_http_ai_gateway_prices_count(ngx_http_ai_gateway_prices_t *pp);

double ngx_http_ai_gateway_price_cost(ngx_http_ai_gateway_price_t *price,
    ngx_http_ai_gateway_tokens_t *t);

/*
 * cf-aig-custom-cost: {"per_token_in":n,"per_token_out":n} as a price
 * (cached and cache writes at per_token_in), or {"total_cost":n}.
 * NGX_OK: a price, *total < 0; NGX_DONE: *total; NGX_DECLINED: not a
 * custom cost; NGX_ERROR: no memory.
 */
ngx_int_t ngx_http_ai_gateway_price_custom(ngx_pool_t *pool, u_char *p,
    size_t len, ngx_http_ai_gateway_price_t *price, double *total);

/* "0.000123": dollars, to 10 decimals, trailing zeros left out */
u_char *ngx_http_ai_gateway_price_print(u_char *buf, double cost);

#define NGX_HTTP_AI_GATEWAY_PRICE_LEN  (NGX_INT64_LEN + 12)

/* ngx_http_ai_gateway_metadata.c */

/*
 * cf-aig-metadata's value: NGX_OK with *out the JSON object of the
 * entries kept; NGX_DECLINED: no metadata (not a JSON object, a null or
 * object value, no entry kept); NGX_ERROR: no memory.
 */
ngx_int_t ngx_http_ai_gateway_metadata_parse(ngx_pool_t *pool, u_char *p,
    size_t len, ngx_str_t *out);


#endif /* _NGX_HTTP_AI_GATEWAY_USAGE_H_INCLUDED_ */
