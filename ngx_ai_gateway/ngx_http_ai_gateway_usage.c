
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <yajl/yajl_parse.h>

#include "ngx_http_ai_gateway_buf.h"
#include "ngx_http_ai_gateway_json.h"
#include "ngx_http_ai_gateway_sse.h"
#include "ngx_http_ai_gateway_usage.h"


/*
 * The meter: what a provider's answer says it used, read from the answer's
 * bytes as they pass, in pieces split anywhere; the relay never waits for
 * it.
 *
 * The bytes are framed three ways: one JSON text (a whole answer; Gemini's
 * stream without alt=sse is a JSON array of answers; a body that starts
 * otherwise is read as SSE, a stream sent with another type), server-sent
 * events (each event's data lines one JSON text; "[DONE]" and other data
 * that is not JSON count nothing) or AWS event-stream frames (each payload
 * one JSON text; InvokeModelWithResponseStream's payload carries the
 * model's own event as base64 in "bytes", which is decoded and read the
 * same way).  JSON goes through yajl's event parser, incrementally, one
 * parser per answer reading a stream's texts one after another; strings
 * are given to yajl up to NGX_HTTP_AI_GATEWAY_METER_STRING bytes and the
 * rest of a longer one is skipped by a scan of the bytes (no count or
 * model is that long), so that yajl never holds more than that much of a
 * text, whatever its size.
 *
 * An SSE event's data is copied as it comes (at most
 * NGX_HTTP_AI_GATEWAY_MAX_EVENT bytes; a longer event is not read) and
 * looked at when the event ends: parsed when a scan of its keys finds
 * what may hold counts ("usage" objects, "usageMetadata"...) or the model
 * not known yet; otherwise the scan only tells whether it carried output.
 * Most events of a stream are a few tokens of text: parsing each would
 * cost three times as much.
 *
 * Counts are found where the providers put them, by position, never by a
 * key alone (a tool's arguments may hold any key): "usage" of an answer
 * (OpenAI and the OpenAI-compatible providers, Anthropic, the Responses
 * API, Bedrock Converse, Cohere v2), "message.usage" (Anthropic's
 * message_start), "response.usage" (Responses events), "delta.usage"
 * (Cohere's message-end), "x_groq.usage", "result.usage" (Workers AI),
 * "usageMetadata" (Gemini, Vertex AI), "meta" (Cohere v1 and embeddings)
 * and "amazon-bedrock-invocationMetrics".  Each usage object's fields
 * replace the same fields of an earlier one, never add to them: a stream
 * repeats or completes its counts (Gemini's running totals, Anthropic's
 * message_start then message_delta), and nothing is counted twice.  The
 * fields are read as each provider defines them (ngx_http_ai_gateway_
 * meter_tokens()): input without what was read from or written to a
 * prompt cache, the cached and cache-written input, output with its
 * reasoning.
 *
 * An answer cut short (the provider's connection lost, the client gone)
 * reports the counts seen (zero when none was seen); its output is at
 * least the number of events that carried output, each at least one
 * token: an estimate, marked partial.
 *
 * With strip set, an SSE event that is only an OpenAI stream's usage chunk
 * ("choices":[] and a "usage" object) is reported as such when it ends, so
 * that the relay can leave it out: the gateway asked for it, not the
 * client (ngx_http_ai_gateway_meter_request()).
 */


/* the bytes of a JSON string given to yajl; the rest are skipped */
#define NGX_HTTP_AI_GATEWAY_METER_STRING  65536

/* the keys of the path remembered, by depth */
#define NGX_HTTP_AI_GATEWAY_METER_TRACK   8

/* the longest AWS event-stream frame (AWS's own limit) */
#define NGX_HTTP_AI_GATEWAY_METER_FRAME   (16 * 1024 * 1024)

/* counts above 2^53 are clamped: sums never overflow */
#define NGX_HTTP_AI_GATEWAY_METER_MAX     9007199254740992ULL


/* the raw fields of usage objects, as the providers name them */

enum {
    ngx_meter_f_prompt = 0,          /* prompt_tokens */
    ngx_meter_f_completion,          /* completion_tokens */
    ngx_meter_f_total,               /* total_tokens */
    ngx_meter_f_input,               /* input_tokens */
    ngx_meter_f_output,              /* output_tokens */
    ngx_meter_f_cache_read,          /* cache_read_input_tokens */
    ngx_meter_f_cache_creation,      /* cache_creation_input_tokens */
    ngx_meter_f_hit,                 /* prompt_cache_hit_tokens */
    ngx_meter_f_b_input,             /* inputTokens, inputTokenCount */
    ngx_meter_f_b_output,            /* outputTokens, outputTokenCount */
    ngx_meter_f_b_cache_read,        /* cacheReadInputToken(Count)s */
    ngx_meter_f_b_cache_write,       /* cacheWriteInputToken(Count)s */
    ngx_meter_f_g_prompt,            /* promptTokenCount */
    ngx_meter_f_g_candidates,        /* candidatesTokenCount */
    ngx_meter_f_g_cached,            /* cachedContentTokenCount */
    ngx_meter_f_g_thoughts,          /* thoughtsTokenCount */
    ngx_meter_f_g_tool,              /* toolUsePromptTokenCount */
    ngx_meter_f_direct,              /* the fields above: in the object */
    ngx_meter_f_prompt_cached = ngx_meter_f_direct,
                                     /* prompt_tokens_details
                                        .cached_tokens */
    ngx_meter_f_completion_reasoning, /* completion_tokens_details
                                        .reasoning_tokens */
    ngx_meter_f_input_cached,        /* input_tokens_details.cached_tokens */
    ngx_meter_f_output_reasoning,    /* output_tokens_details
                                        .reasoning_tokens */
    ngx_meter_f_billed_input,        /* billed_units.input_tokens */
    ngx_meter_f_billed_output,       /* billed_units.output_tokens */
    ngx_meter_f_tokens_input,        /* tokens.input_tokens */
    ngx_meter_f_tokens_output,       /* tokens.output_tokens */
    ngx_meter_f_n
};


/* the keys the meter knows */

enum {
    ngx_meter_k_other = 0,
    ngx_meter_k_elem,                /* an array's element: no key */
    ngx_meter_k_usage,
    ngx_meter_k_usage_metadata,
    ngx_meter_k_metrics,
    ngx_meter_k_meta,
    ngx_meter_k_message,
    ngx_meter_k_response,
    ngx_meter_k_delta,
    ngx_meter_k_x_groq,
    ngx_meter_k_result,
    ngx_meter_k_choices,
    ngx_meter_k_prompt_details,
    ngx_meter_k_completion_details,
    ngx_meter_k_input_details,
    ngx_meter_k_output_details,
    ngx_meter_k_billed,
    ngx_meter_k_tokens,
    ngx_meter_k_model,
    ngx_meter_k_model_version,
    ngx_meter_k_bytes,
    ngx_meter_k_text,                /* a key whose string is output */
    ngx_meter_k_cached_tokens,
    ngx_meter_k_reasoning_tokens,
    ngx_meter_k_field                /* + a direct field */
};


typedef struct {
    ngx_str_t                      name;
    ngx_uint_t                     key;
} ngx_http_ai_gateway_meter_key_t;


static ngx_http_ai_gateway_meter_key_t  ngx_http_ai_gateway_meter_keys[] = {
    { ngx_string("usage"), ngx_meter_k_usage },
    { ngx_string("usageMetadata"), ngx_meter_k_usage_metadata },
    { ngx_string("amazon-bedrock-invocationMetrics"), ngx_meter_k_metrics },
    { ngx_string("meta"), ngx_meter_k_meta },
    { ngx_string("message"), ngx_meter_k_message },
    { ngx_string("response"), ngx_meter_k_response },
    { ngx_string("delta"), ngx_meter_k_delta },
    { ngx_string("x_groq"), ngx_meter_k_x_groq },
    { ngx_string("result"), ngx_meter_k_result },
    { ngx_string("choices"), ngx_meter_k_choices },
    { ngx_string("prompt_tokens_details"), ngx_meter_k_prompt_details },
    { ngx_string("completion_tokens_details"),
      ngx_meter_k_completion_details },
    { ngx_string("input_tokens_details"), ngx_meter_k_input_details },
    { ngx_string("output_tokens_details"), ngx_meter_k_output_details },
    { ngx_string("billed_units"), ngx_meter_k_billed },
    { ngx_string("tokens"), ngx_meter_k_tokens },
    { ngx_string("model"), ngx_meter_k_model },
    { ngx_string("modelVersion"), ngx_meter_k_model_version },
    { ngx_string("bytes"), ngx_meter_k_bytes },
    { ngx_string("content"), ngx_meter_k_text },
    { ngx_string("text"), ngx_meter_k_text },
    { ngx_string("partial_json"), ngx_meter_k_text },
    { ngx_string("arguments"), ngx_meter_k_text },
    { ngx_string("thinking"), ngx_meter_k_text },
    { ngx_string("reasoning_content"), ngx_meter_k_text },
    { ngx_string("reasoning"), ngx_meter_k_text },
    { ngx_string("cached_tokens"), ngx_meter_k_cached_tokens },
    { ngx_string("reasoning_tokens"), ngx_meter_k_reasoning_tokens },

    { ngx_string("prompt_tokens"),
      ngx_meter_k_field + ngx_meter_f_prompt },
    { ngx_string("completion_tokens"),
      ngx_meter_k_field + ngx_meter_f_completion },
    { ngx_string("total_tokens"),
      ngx_meter_k_field + ngx_meter_f_total },
    { ngx_string("input_tokens"),
      ngx_meter_k_field + ngx_meter_f_input },
    { ngx_string("output_tokens"),
      ngx_meter_k_field + ngx_meter_f_output },
    { ngx_string("cache_read_input_tokens"),
      ngx_meter_k_field + ngx_meter_f_cache_read },
    { ngx_string("cache_creation_input_tokens"),
      ngx_meter_k_field + ngx_meter_f_cache_creation },
    { ngx_string("prompt_cache_hit_tokens"),
      ngx_meter_k_field + ngx_meter_f_hit },
    { ngx_string("inputTokens"),
      ngx_meter_k_field + ngx_meter_f_b_input },
    { ngx_string("inputTokenCount"),
      ngx_meter_k_field + ngx_meter_f_b_input },
    { ngx_string("outputTokens"),
      ngx_meter_k_field + ngx_meter_f_b_output },
    { ngx_string("outputTokenCount"),
      ngx_meter_k_field + ngx_meter_f_b_output },
    { ngx_string("cacheReadInputTokens"),
      ngx_meter_k_field + ngx_meter_f_b_cache_read },
    { ngx_string("cacheReadInputTokenCount"),
      ngx_meter_k_field + ngx_meter_f_b_cache_read },
    { ngx_string("cacheWriteInputTokens"),
      ngx_meter_k_field + ngx_meter_f_b_cache_write },
    { ngx_string("cacheWriteInputTokenCount"),
      ngx_meter_k_field + ngx_meter_f_b_cache_write },
    { ngx_string("promptTokenCount"),
      ngx_meter_k_field + ngx_meter_f_g_prompt },
    { ngx_string("candidatesTokenCount"),
      ngx_meter_k_field + ngx_meter_f_g_candidates },
    { ngx_string("cachedContentTokenCount"),
      ngx_meter_k_field + ngx_meter_f_g_cached },
    { ngx_string("thoughtsTokenCount"),
      ngx_meter_k_field + ngx_meter_f_g_thoughts },
    { ngx_string("toolUsePromptTokenCount"),
      ngx_meter_k_field + ngx_meter_f_g_tool },

    { ngx_null_string, 0 }
};


/* the table indexed by a hash of a key's length, first and last bytes */

#define ngx_http_ai_gateway_meter_hash(s, len)                               \
    (((len) * 7 + (s)[0] + (s)[(len) - 1] * 3) & 63)

static u_char      ngx_http_ai_gateway_meter_index[64][4];
static ngx_uint_t  ngx_http_ai_gateway_meter_indexed;

/* the bytes of a key's name: letters, digits, "_", "-" */
static u_char      ngx_http_ai_gateway_meter_name[256];


/* one JSON text being read */

typedef struct {
    ngx_http_ai_gateway_meter_t   *meter;
    yajl_handle                    h;

    ngx_uint_t                     depth;      /* containers open */
    ngx_uint_t                     root;       /* depth of an answer */
    ngx_uint_t                     key;        /* of the value to come */
    ngx_uint_t                     usage;      /* depth of a usage object */
    ngx_uint_t                     choices;    /* depth of "choices" */
    uint64_t                       arrays;     /* bit d: depth d is one */
    u_char                         keys[NGX_HTTP_AI_GATEWAY_METER_TRACK + 1];

    uint64_t                       rec[ngx_meter_f_n];
    uint32_t                       rec_seen;

    size_t                         string;     /* bytes of the string */
    ngx_uint_t                     escape;     /* 5: after "\", 4..1: hex
                                                  digits of "\u" to come */

    unsigned                       in_string:1;
    unsigned                       cut:1;      /* the string's rest is
                                                  skipped */
    unsigned                       failed:1;   /* not JSON, too deep */
    unsigned                       nested:1;   /* decoded from "bytes" */
    unsigned                       has_usage:1;
    unsigned                       choices_items:1;
    unsigned                       choices_empty:1;
    unsigned                       output:1;   /* this answer's output */
} ngx_http_ai_gateway_meter_doc_t;


struct ngx_http_ai_gateway_meter_s {
    ngx_pool_t                    *pool;
    ngx_uint_t                     framing;

    ngx_http_ai_gateway_meter_doc_t  doc;
    ngx_http_ai_gateway_meter_doc_t  inner;    /* decoded from "bytes" */

    uint64_t                       fields[ngx_meter_f_n];
    uint32_t                       seen;
    uint64_t                       outputs;    /* events with output */

    ngx_uint_t                     state;

    /* SSE */
    u_char                         name[4];
    size_t                         name_len;
    ngx_uint_t                     data_lines;
    u_char                        *event;      /* the event's data */
    size_t                         event_len;
    size_t                         event_size;

    /* event-stream */
    u_char                         prelude[12];
    size_t                         have;
    size_t                         rest;
    uint32_t                       total;
    uint32_t                       headers;

    size_t                         model_len;
    u_char                         model[NGX_HTTP_AI_GATEWAY_METER_MODEL];

    unsigned                       strip:1;
    unsigned                       cr:1;       /* a CR ended the last
                                                  line */
    unsigned                       lines:1;    /* the event has lines */
    unsigned                       too_long:1; /* the event's data */
    unsigned                       broken:1;   /* framing lost */
};


/* the states of the SSE and event-stream readers */

enum {
    ngx_meter_sw_start = 0,
    ngx_meter_sw_name,
    ngx_meter_sw_space,
    ngx_meter_sw_data,
    ngx_meter_sw_skip
};

enum {
    ngx_meter_sw_prelude = 0,
    ngx_meter_sw_headers,
    ngx_meter_sw_payload,
    ngx_meter_sw_crc
};


static ngx_int_t ngx_http_ai_gateway_meter_sse(ngx_http_ai_gateway_meter_t *m,
    u_char **pos, u_char *last, ngx_uint_t *drop);
static ngx_int_t ngx_http_ai_gateway_meter_data(
    ngx_http_ai_gateway_meter_t *m, u_char *p, size_t len);
static ngx_int_t ngx_http_ai_gateway_meter_sse_end(
    ngx_http_ai_gateway_meter_t *m, ngx_uint_t *drop);
static void ngx_http_ai_gateway_meter_scan(ngx_http_ai_gateway_meter_t *m,
    u_char *p, u_char *last, ngx_uint_t *parse, ngx_uint_t *output);
static ngx_int_t ngx_http_ai_gateway_meter_event(
    ngx_http_ai_gateway_meter_t *m, u_char **pos, u_char *last);
static ngx_int_t ngx_http_ai_gateway_meter_open(
    ngx_http_ai_gateway_meter_t *m, ngx_http_ai_gateway_meter_doc_t *doc);
static ngx_int_t ngx_http_ai_gateway_meter_begin(
    ngx_http_ai_gateway_meter_t *m, ngx_http_ai_gateway_meter_doc_t *doc);
static void ngx_http_ai_gateway_meter_close(
    ngx_http_ai_gateway_meter_doc_t *doc, ngx_uint_t complete);
static void ngx_http_ai_gateway_meter_json(
    ngx_http_ai_gateway_meter_doc_t *doc, u_char *p, size_t len);
static void ngx_http_ai_gateway_meter_parse(
    ngx_http_ai_gateway_meter_doc_t *doc, u_char *p, size_t len);
static void ngx_http_ai_gateway_meter_cleanup(void *data);
static void ngx_http_ai_gateway_meter_tokens(ngx_http_ai_gateway_meter_t *m,
    ngx_http_ai_gateway_tokens_t *t);
static void ngx_http_ai_gateway_meter_index_keys(void);
static ngx_uint_t ngx_http_ai_gateway_meter_key(const u_char *s, size_t len);
static ngx_uint_t ngx_http_ai_gateway_meter_value(
    ngx_http_ai_gateway_meter_doc_t *doc);
static void ngx_http_ai_gateway_meter_bytes(
    ngx_http_ai_gateway_meter_doc_t *doc, const u_char *s, size_t len);

static int ngx_http_ai_gateway_meter_null(void *ctx);
static int ngx_http_ai_gateway_meter_boolean(void *ctx, int b);
static int ngx_http_ai_gateway_meter_number(void *ctx, const char *s,
    size_t len);
static int ngx_http_ai_gateway_meter_string(void *ctx, const unsigned char *s,
    size_t len);
static int ngx_http_ai_gateway_meter_start_map(void *ctx);
static int ngx_http_ai_gateway_meter_map_key(void *ctx,
    const unsigned char *s, size_t len);
static int ngx_http_ai_gateway_meter_end_map(void *ctx);
static int ngx_http_ai_gateway_meter_start_array(void *ctx);
static int ngx_http_ai_gateway_meter_end_array(void *ctx);
static int ngx_http_ai_gateway_meter_start(
    ngx_http_ai_gateway_meter_doc_t *doc, ngx_uint_t array);
static int ngx_http_ai_gateway_meter_end(ngx_http_ai_gateway_meter_doc_t *doc,
    ngx_uint_t array);


static yajl_callbacks  ngx_http_ai_gateway_meter_callbacks = {
    ngx_http_ai_gateway_meter_null,
    ngx_http_ai_gateway_meter_boolean,
    NULL,
    NULL,
    ngx_http_ai_gateway_meter_number,
    ngx_http_ai_gateway_meter_string,
    ngx_http_ai_gateway_meter_start_map,
    ngx_http_ai_gateway_meter_map_key,
    ngx_http_ai_gateway_meter_end_map,
    ngx_http_ai_gateway_meter_start_array,
    ngx_http_ai_gateway_meter_end_array
};


ngx_http_ai_gateway_meter_t *
ngx_http_ai_gateway_meter_create(ngx_pool_t *pool,
    ngx_http_ai_gateway_meter_framing_e framing, ngx_uint_t strip)
{
    ngx_pool_cleanup_t           *cln;
    ngx_http_ai_gateway_meter_t  *m;

    if (!ngx_http_ai_gateway_meter_indexed) {
        ngx_http_ai_gateway_meter_index_keys();
    }

    m = ngx_pcalloc(pool, sizeof(ngx_http_ai_gateway_meter_t));
    if (m == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_ai_gateway_meter_cleanup;
    cln->data = m;

    m->pool = pool;
    m->framing = framing;
    m->strip = (framing == NGX_HTTP_AI_GATEWAY_METER_SSE && strip);

    m->doc.meter = m;
    m->inner.meter = m;

    return m;
}


static void
ngx_http_ai_gateway_meter_cleanup(void *data)
{
    ngx_http_ai_gateway_meter_t *m = data;

    if (m->doc.h) {
        yajl_free(m->doc.h);
        m->doc.h = NULL;
    }

    if (m->inner.h) {
        yajl_free(m->inner.h);
        m->inner.h = NULL;
    }
}


ngx_int_t
ngx_http_ai_gateway_meter_feed(ngx_http_ai_gateway_meter_t *m, u_char **pos,
    u_char *last, ngx_uint_t *drop)
{
    u_char  *p;

    *drop = 0;

    if (m->broken) {
        *pos = last;
        return NGX_AGAIN;
    }

    switch (m->framing) {

    case NGX_HTTP_AI_GATEWAY_METER_SSE:
        return ngx_http_ai_gateway_meter_sse(m, pos, last, drop);

    case NGX_HTTP_AI_GATEWAY_METER_EVENTSTREAM:
        return ngx_http_ai_gateway_meter_event(m, pos, last);

    default: /* NGX_HTTP_AI_GATEWAY_METER_JSON */

        if (m->doc.h == NULL) {

            for (p = *pos; p < last; p++) {
                if (*p != ' ' && *p != '\t' && *p != CR && *p != LF) {
                    break;
                }
            }

            *pos = p;

            if (p == last) {
                return NGX_AGAIN;
            }

            if (*p != '{' && *p != '[') {
                /* a stream sent with another type ("data: ...") */
                m->framing = NGX_HTTP_AI_GATEWAY_METER_SSE;
                return ngx_http_ai_gateway_meter_sse(m, pos, last, drop);
            }

            if (ngx_http_ai_gateway_meter_open(m, &m->doc) != NGX_OK) {
                return NGX_ERROR;
            }
        }

        ngx_http_ai_gateway_meter_json(&m->doc, *pos, last - *pos);
        *pos = last;

        return NGX_AGAIN;
    }
}


/*
 * Server-sent events: lines end with LF, CRLF or CR; a blank line ends an
 * event; "data:" lines (one space after the colon dropped) are the event's
 * JSON text, joined with LF; other fields and comments are skipped.
 */

static ngx_int_t
ngx_http_ai_gateway_meter_sse(ngx_http_ai_gateway_meter_t *m, u_char **pos,
    u_char *last, ngx_uint_t *drop)
{
    u_char  *p, *q, *r, ch;

    for (p = *pos; p < last; /* void */) {

        ch = *p;

        if (m->cr) {
            m->cr = 0;

            if (ch == LF) {
                p++;
                continue;
            }
        }

        switch (m->state) {

        case ngx_meter_sw_start:

            if (ch == CR || ch == LF) {
                m->cr = (ch == CR);
                p++;

                if (!m->lines) {
                    /* blank lines between events */
                    continue;
                }

                /* a blank line: the event is complete */

                if (m->data_lines
                    && ngx_http_ai_gateway_meter_sse_end(m, drop) != NGX_OK)
                {
                    return NGX_ERROR;
                }

                m->lines = 0;

                *pos = p;
                return NGX_OK;
            }

            m->lines = 1;
            m->name_len = 0;
            m->state = ngx_meter_sw_name;

            /* fall through */

        case ngx_meter_sw_name:

            if (ch == ':' || ch == CR || ch == LF) {

                if (m->name_len == 4
                    && ngx_strncmp(m->name, "data", 4) == 0)
                {
                    if (m->data_lines++
                        && ngx_http_ai_gateway_meter_data(m, (u_char *) "\n",
                                                          1)
                           != NGX_OK)
                    {
                        return NGX_ERROR;
                    }

                    if (ch == ':') {
                        p++;
                        m->state = ngx_meter_sw_space;
                        continue;
                    }
                }

                if (ch == ':') {
                    p++;
                    m->state = ngx_meter_sw_skip;
                    continue;
                }

                /* a field without a value */

                m->cr = (ch == CR);
                p++;
                m->state = ngx_meter_sw_start;
                continue;
            }

            if (m->name_len < 4) {
                m->name[m->name_len] = ch;
            }

            m->name_len++;
            p++;
            continue;

        case ngx_meter_sw_space:

            m->state = ngx_meter_sw_data;

            if (ch == ' ') {
                p++;
                continue;
            }

            /* fall through */

        default: /* ngx_meter_sw_data, ngx_meter_sw_skip */

            q = memchr(p, LF, last - p);

            if (q == NULL) {
                q = last;
            }

            r = memchr(p, CR, q - p);

            if (r) {
                q = r;
            }

            if (m->state == ngx_meter_sw_data && q > p
                && ngx_http_ai_gateway_meter_data(m, p, q - p) != NGX_OK)
            {
                return NGX_ERROR;
            }

            p = q;

            if (p < last) {
                m->cr = (*p == CR);
                p++;
                m->state = ngx_meter_sw_start;
            }

            continue;
        }
    }

    *pos = last;

    return NGX_AGAIN;
}


/* an event's data, kept until the event ends */

static ngx_int_t
ngx_http_ai_gateway_meter_data(ngx_http_ai_gateway_meter_t *m, u_char *p,
    size_t len)
{
    if (m->too_long) {
        return NGX_OK;
    }

    if (m->event_len + len > NGX_HTTP_AI_GATEWAY_MAX_EVENT) {
        /* as long as no answer's usage: not read */
        m->too_long = 1;
        return NGX_OK;
    }

    if (ngx_http_ai_gateway_reserve(m->pool, &m->event, &m->event_size,
                                    m->event_len, m->event_len + len, 1024,
                                    0)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_memcpy(m->event + m->event_len, p, len);
    m->event_len += len;

    return NGX_OK;
}


/*
 * An event's end: its data is parsed when it may hold counts or the
 * model; most events of a stream hold neither (a piece of text, a tool
 * call's arguments), and a scan of their keys tells whether they carried
 * output, which is what a cut stream's estimate needs
 */

static ngx_int_t
ngx_http_ai_gateway_meter_sse_end(ngx_http_ai_gateway_meter_t *m,
    ngx_uint_t *drop)
{
    ngx_uint_t                        parse, output;
    ngx_http_ai_gateway_meter_doc_t  *doc;

    doc = &m->doc;

    parse = 0;
    output = 0;

    if (!m->too_long && m->event_len) {
        ngx_http_ai_gateway_meter_scan(m, m->event, m->event + m->event_len,
                                       &parse, &output);
    }

    if (parse) {
        if (ngx_http_ai_gateway_meter_begin(m, doc) != NGX_OK) {
            return NGX_ERROR;
        }

        ngx_http_ai_gateway_meter_json(doc, m->event, m->event_len);

        *drop = m->strip && !doc->failed && doc->depth == 0
                && doc->has_usage && doc->choices_empty;

    } else if (output) {
        m->outputs++;
    }

    m->event_len = 0;
    m->data_lines = 0;
    m->too_long = 0;

    return NGX_OK;
}


/*
 * The keys of an event's JSON, found without parsing it: a quote, a name,
 * a quote, a colon.  To parse: "usage" or "meta" objects, "usageMetadata",
 * "amazon-bedrock-invocationMetrics", "bytes", and "model" until it is
 * known.  Output: a non-empty string after one of the keys whose strings
 * are output ("content", "text", "arguments", "delta"...).  A quote after
 * a backslash is inside a string.
 */

static void
ngx_http_ai_gateway_meter_scan(ngx_http_ai_gateway_meter_t *m, u_char *p,
    u_char *last, ngx_uint_t *parse, ngx_uint_t *output)
{
    u_char      *start, *k;
    size_t       n;
    ngx_uint_t   key;

    start = p;

    for ( ;; ) {
        p = memchr(p, '"', last - p);

        if (p == NULL) {
            return;
        }

        if (p > start && p[-1] == '\\') {
            p++;
            continue;
        }

        k = ++p;

        while (p < last && ngx_http_ai_gateway_meter_name[*p]) {
            p++;
        }

        if (p == last) {
            return;
        }

        if (*p != '"' || p == k) {
            continue;
        }

        n = p - k;

        for (p++; p < last && (*p == ' ' || *p == '\t' || *p == CR
                               || *p == LF); p++)
        {
            /* void */
        }

        if (p == last || *p != ':') {
            /* a string value */
            continue;
        }

        key = ngx_http_ai_gateway_meter_key(k, n);

        if (key == ngx_meter_k_other) {
            p++;
            continue;
        }

        for (p++; p < last && (*p == ' ' || *p == '\t' || *p == CR
                               || *p == LF); p++)
        {
            /* void */
        }

        if (p == last) {
            return;
        }

        switch (key) {

        case ngx_meter_k_usage:
        case ngx_meter_k_meta:

            if (*p == '{') {
                *parse = 1;
                return;
            }

            break;

        case ngx_meter_k_usage_metadata:
        case ngx_meter_k_metrics:
        case ngx_meter_k_bytes:
            *parse = 1;
            return;

        case ngx_meter_k_model:
        case ngx_meter_k_model_version:

            if (m->model_len == 0) {
                *parse = 1;
                return;
            }

            break;

        case ngx_meter_k_text:
        case ngx_meter_k_delta:
        case ngx_meter_k_response:

            if (*p == '"' && p + 1 < last && p[1] != '"') {
                *output = 1;
            }

            break;
        }
    }
}


/*
 * AWS event-stream frames: a 12-byte prelude (total length, headers
 * length, CRC), the headers, the payload, a CRC.  Only the payload is
 * read; the CRCs are not checked (nothing is decided on a frame but its
 * counts).
 */

static ngx_int_t
ngx_http_ai_gateway_meter_event(ngx_http_ai_gateway_meter_t *m,
    u_char **pos, u_char *last)
{
    u_char  *p;
    size_t   n;

    p = *pos;

    while (p < last) {

        switch (m->state) {

        case ngx_meter_sw_prelude:

            n = ngx_min((size_t) (last - p), 12 - m->have);
            ngx_memcpy(m->prelude + m->have, p, n);
            m->have += n;
            p += n;

            if (m->have < 12) {
                break;
            }

            m->total = ((uint32_t) m->prelude[0] << 24)
                       | ((uint32_t) m->prelude[1] << 16)
                       | ((uint32_t) m->prelude[2] << 8) | m->prelude[3];
            m->headers = ((uint32_t) m->prelude[4] << 24)
                         | ((uint32_t) m->prelude[5] << 16)
                         | ((uint32_t) m->prelude[6] << 8) | m->prelude[7];

            if (m->total < 16 || m->total > NGX_HTTP_AI_GATEWAY_METER_FRAME
                || m->headers > m->total - 16)
            {
                /* not event-stream framing: nothing more is read */
                m->broken = 1;
                *pos = last;
                return NGX_AGAIN;
            }

            m->have = 0;
            m->rest = m->headers;
            m->state = ngx_meter_sw_headers;
            break;

        case ngx_meter_sw_headers:

            n = ngx_min((size_t) (last - p), m->rest);
            p += n;
            m->rest -= n;

            if (m->rest) {
                break;
            }

            if (ngx_http_ai_gateway_meter_begin(m, &m->doc) != NGX_OK) {
                return NGX_ERROR;
            }

            m->rest = m->total - m->headers - 16;
            m->state = ngx_meter_sw_payload;
            break;

        case ngx_meter_sw_payload:

            n = ngx_min((size_t) (last - p), m->rest);

            if (n) {
                ngx_http_ai_gateway_meter_json(&m->doc, p, n);
            }

            p += n;
            m->rest -= n;

            if (m->rest) {
                break;
            }

            m->rest = 4;
            m->state = ngx_meter_sw_crc;
            break;

        default: /* ngx_meter_sw_crc */

            n = ngx_min((size_t) (last - p), m->rest);
            p += n;
            m->rest -= n;

            if (m->rest == 0) {
                m->state = ngx_meter_sw_prelude;
            }

            break;
        }
    }

    *pos = last;

    return NGX_AGAIN;
}


void
ngx_http_ai_gateway_meter_finish(ngx_http_ai_gateway_meter_t *m,
    ngx_uint_t complete, ngx_http_ai_gateway_tokens_t *t)
{
    ngx_uint_t  drop;

    if (complete && m->data_lines
        && m->framing == NGX_HTTP_AI_GATEWAY_METER_SSE)
    {
        /* the last event without its blank line */
        (void) ngx_http_ai_gateway_meter_sse_end(m, &drop);
    }

    if (m->doc.h) {
        /* a JSON body is complete when the body ended as its framing said */
        ngx_http_ai_gateway_meter_close(&m->doc,
                       complete
                       && m->framing == NGX_HTTP_AI_GATEWAY_METER_JSON);
    }

    ngx_http_ai_gateway_meter_tokens(m, t);

    if (complete) {
        return;
    }

    /* lower bounds, zero when nothing was seen */

    t->known = 1;
    t->partial = 1;

    /* each event that carried output was at least one token of it */

    if (m->outputs > t->output) {
        t->output = m->outputs;
    }
}


void
ngx_http_ai_gateway_meter_model(ngx_http_ai_gateway_meter_t *m,
    ngx_str_t *model)
{
    model->data = m->model;
    model->len = m->model_len;
}


/*
 * The counts, from the fields as each provider defines them:
 *
 *   Gemini       promptTokenCount (+ toolUsePromptTokenCount) holds
 *                cachedContentTokenCount; output is candidatesTokenCount
 *                and thoughtsTokenCount
 *   Anthropic    input_tokens, cache_read_input_tokens,
 *                cache_creation_input_tokens apart
 *   Responses    input_tokens holds input_tokens_details.cached_tokens;
 *                output_tokens holds output_tokens_details
 *                .reasoning_tokens
 *   Bedrock      inputTokens, cacheRead/WriteInputTokens apart
 *   Cohere       billed_units (what is billed), else tokens
 *   OpenAI       prompt_tokens holds prompt_tokens_details.cached_tokens
 *                (DeepSeek: prompt_cache_hit_tokens); completion_tokens
 *                holds completion_tokens_details.reasoning_tokens, except
 *                where total_tokens says it does not (xAI)
 */

static void
ngx_http_ai_gateway_meter_tokens(ngx_http_ai_gateway_meter_t *m,
    ngx_http_ai_gateway_tokens_t *t)
{
    uint64_t  *f, prompt, cached;
    uint32_t   seen;

#define ngx_meter_has(x)  (seen & (1U << (x)))

    ngx_memzero(t, sizeof(ngx_http_ai_gateway_tokens_t));

    f = m->fields;
    seen = m->seen;

    if (seen == 0) {
        return;
    }

    t->known = 1;

    if (ngx_meter_has(ngx_meter_f_g_prompt)
        || ngx_meter_has(ngx_meter_f_g_candidates)
        || ngx_meter_has(ngx_meter_f_g_thoughts))
    {
        prompt = f[ngx_meter_f_g_prompt] + f[ngx_meter_f_g_tool];
        cached = ngx_min(f[ngx_meter_f_g_cached], prompt);

        t->input = prompt - cached;
        t->cached = cached;
        t->reasoning = f[ngx_meter_f_g_thoughts];
        t->output = f[ngx_meter_f_g_candidates] + t->reasoning;

    } else if (ngx_meter_has(ngx_meter_f_input)
               || ngx_meter_has(ngx_meter_f_output))
    {
        if (ngx_meter_has(ngx_meter_f_input_cached)) {
            cached = ngx_min(f[ngx_meter_f_input_cached],
                             f[ngx_meter_f_input]);
            t->input = f[ngx_meter_f_input] - cached;
            t->cached = cached;

        } else {
            t->input = f[ngx_meter_f_input];
            t->cached = f[ngx_meter_f_cache_read];
            t->cache_write = f[ngx_meter_f_cache_creation];
        }

        t->output = f[ngx_meter_f_output];
        t->reasoning = ngx_min(f[ngx_meter_f_output_reasoning], t->output);

    } else if (ngx_meter_has(ngx_meter_f_b_input)
               || ngx_meter_has(ngx_meter_f_b_output))
    {
        t->input = f[ngx_meter_f_b_input];
        t->cached = f[ngx_meter_f_b_cache_read];
        t->cache_write = f[ngx_meter_f_b_cache_write];
        t->output = f[ngx_meter_f_b_output];

    } else if (ngx_meter_has(ngx_meter_f_billed_input)
               || ngx_meter_has(ngx_meter_f_billed_output))
    {
        t->input = f[ngx_meter_f_billed_input];
        t->output = f[ngx_meter_f_billed_output];

    } else if (ngx_meter_has(ngx_meter_f_prompt)
               || ngx_meter_has(ngx_meter_f_completion))
    {
        prompt = f[ngx_meter_f_prompt];

        cached = ngx_meter_has(ngx_meter_f_prompt_cached)
                 ? f[ngx_meter_f_prompt_cached] : f[ngx_meter_f_hit];
        cached = ngx_min(cached, prompt);

        t->input = prompt - cached;
        t->cached = cached;
        t->output = f[ngx_meter_f_completion];
        t->reasoning = f[ngx_meter_f_completion_reasoning];

        if (t->reasoning && ngx_meter_has(ngx_meter_f_total)
            && f[ngx_meter_f_total] == prompt + t->output + t->reasoning)
        {
            /* the reasoning is not in completion_tokens */
            t->output += t->reasoning;
        }

        t->reasoning = ngx_min(t->reasoning, t->output);

    } else if (ngx_meter_has(ngx_meter_f_tokens_input)
               || ngx_meter_has(ngx_meter_f_tokens_output))
    {
        t->input = f[ngx_meter_f_tokens_input];
        t->output = f[ngx_meter_f_tokens_output];

    } else {
        /* a total alone, a cache count alone */
        t->known = 0;
    }

#undef ngx_meter_has
}


/* a JSON text's reader */

static ngx_int_t
ngx_http_ai_gateway_meter_open(ngx_http_ai_gateway_meter_t *m,
    ngx_http_ai_gateway_meter_doc_t *doc)
{
    ngx_uint_t  nested;

    nested = doc->nested;

    if (doc->h) {
        yajl_free(doc->h);
    }

    ngx_memzero(doc, sizeof(ngx_http_ai_gateway_meter_doc_t));

    doc->meter = m;
    doc->root = 1;
    doc->nested = nested;

    doc->h = yajl_alloc(&ngx_http_ai_gateway_meter_callbacks, NULL, doc);
    if (doc->h == NULL) {
        return NGX_ERROR;
    }

    /* a string cut short may end mid-character */
    yajl_config(doc->h, yajl_dont_validate_strings, 1);

    if (m->framing != NGX_HTTP_AI_GATEWAY_METER_JSON) {
        /* a stream's texts, one after another */
        yajl_config(doc->h, yajl_allow_multiple_values, 1);
    }

    return NGX_OK;
}


/*
 * The next JSON text of a stream (an SSE event's data, a frame's
 * payload): the parser of the last one goes on, yajl reading one value
 * after another, unless the last text did not end as a value (cut, not
 * JSON); a new parser then.  A yajl handle per text would cost more than
 * reading the text.
 */

static ngx_int_t
ngx_http_ai_gateway_meter_begin(ngx_http_ai_gateway_meter_t *m,
    ngx_http_ai_gateway_meter_doc_t *doc)
{
    yajl_handle  h;
    ngx_uint_t   nested;

    if (doc->h == NULL || doc->failed || doc->depth || doc->in_string) {
        return ngx_http_ai_gateway_meter_open(m, doc);
    }

    h = doc->h;
    nested = doc->nested;

    ngx_memzero(doc, sizeof(ngx_http_ai_gateway_meter_doc_t));

    doc->meter = m;
    doc->h = h;
    doc->root = 1;
    doc->nested = nested;

    return NGX_OK;
}


static void
ngx_http_ai_gateway_meter_close(ngx_http_ai_gateway_meter_doc_t *doc,
    ngx_uint_t complete)
{
    if (complete && !doc->failed) {
        (void) yajl_complete_parse(doc->h);
    }

    yajl_free(doc->h);
    doc->h = NULL;
}


/*
 * The bytes of a JSON text to yajl, but of a string no more than
 * NGX_HTTP_AI_GATEWAY_METER_STRING bytes: a cut is made before a
 * character or an escape, never inside one, and the closing quote is
 * given again.
 */

static void
ngx_http_ai_gateway_meter_json(ngx_http_ai_gateway_meter_doc_t *doc,
    u_char *p, size_t len)
{
    u_char  *q, *r, *last, *start;
    size_t   n;

    if (doc->failed) {
        return;
    }

    last = p + len;
    start = p;

    for (q = p; q < last; /* void */) {

        if (!doc->in_string) {
            q = memchr(q, '"', last - q);

            if (q == NULL) {
                break;
            }

            q++;
            doc->in_string = 1;
            doc->string = 0;
            continue;
        }

        if (doc->escape) {
            if (doc->escape == 5) {
                doc->escape = (*q == 'u') ? 4 : 0;

            } else {
                doc->escape--;
            }

            q++;
            continue;
        }

        /* the string's bytes up to a quote or a backslash */

        for (r = q; r < last && *r != '"' && *r != '\\'; r++) {
            /* void */
        }

        n = r - q;

        if (!doc->cut) {
            if (doc->string + n > NGX_HTTP_AI_GATEWAY_METER_STRING) {
                r = q + (NGX_HTTP_AI_GATEWAY_METER_STRING - doc->string);
                ngx_http_ai_gateway_meter_parse(doc, start, r - start);
                doc->cut = 1;
                continue;
            }

            doc->string += n;
        }

        if (r == last) {
            break;
        }

        if (*r == '"') {
            doc->in_string = 0;

            if (doc->cut) {
                doc->cut = 0;
                start = r;
            }

        } else {
            /* a backslash, counted as a byte of the string */

            doc->escape = 5;

            if (!doc->cut
                && ++doc->string > NGX_HTTP_AI_GATEWAY_METER_STRING)
            {
                ngx_http_ai_gateway_meter_parse(doc, start, r - start);
                doc->cut = 1;
            }
        }

        q = r + 1;
    }

    if (!doc->cut) {
        ngx_http_ai_gateway_meter_parse(doc, start, last - start);
    }
}


static void
ngx_http_ai_gateway_meter_parse(ngx_http_ai_gateway_meter_doc_t *doc,
    u_char *p, size_t len)
{
    if (len == 0 || doc->failed) {
        return;
    }

    if (yajl_parse(doc->h, p, len) != yajl_status_ok) {
        doc->failed = 1;
    }
}


/* the parser's events */

/* every key of an answer is looked up: the table is indexed once */

static void
ngx_http_ai_gateway_meter_index_keys(void)
{
    ngx_uint_t                        h, i, j;
    ngx_http_ai_gateway_meter_key_t  *k;

    for (i = 0; i < 256; i++) {
        ngx_http_ai_gateway_meter_name[i] = ((i >= 'a' && i <= 'z')
                                             || (i >= 'A' && i <= 'Z')
                                             || (i >= '0' && i <= '9')
                                             || i == '_' || i == '-');
    }

    k = ngx_http_ai_gateway_meter_keys;

    for (i = 0; k[i].name.len; i++) {
        h = ngx_http_ai_gateway_meter_hash(k[i].name.data, k[i].name.len);

        for (j = 0; j < 4 && ngx_http_ai_gateway_meter_index[h][j]; j++) {
            /* void */
        }

        /* at most 3 keys share a hash (the unit tests find each key) */

        if (j < 4) {
            ngx_http_ai_gateway_meter_index[h][j] = (u_char) (i + 1);
        }
    }

    ngx_http_ai_gateway_meter_indexed = 1;
}


static ngx_uint_t
ngx_http_ai_gateway_meter_key(const u_char *s, size_t len)
{
    u_char                           *e;
    ngx_uint_t                        j;
    ngx_http_ai_gateway_meter_key_t  *k;

    if (len == 0 || len > 64) {
        return ngx_meter_k_other;
    }

    e = ngx_http_ai_gateway_meter_index[ngx_http_ai_gateway_meter_hash(s,
                                                                       len)];

    for (j = 0; j < 4 && e[j]; j++) {
        k = &ngx_http_ai_gateway_meter_keys[e[j] - 1];

        if (k->name.len == len && ngx_memcmp(k->name.data, s, len) == 0) {
            return k->key;
        }
    }

    return ngx_meter_k_other;
}


/* the key of a value (none in an array); an element of "choices" seen */

static ngx_uint_t
ngx_http_ai_gateway_meter_value(ngx_http_ai_gateway_meter_doc_t *doc)
{
    ngx_uint_t  key;

    if (doc->depth && doc->depth < 64
        && (doc->arrays & ((uint64_t) 1 << doc->depth)))
    {
        key = ngx_meter_k_elem;

    } else {
        key = doc->key;
    }

    doc->key = ngx_meter_k_other;

    if (doc->choices && doc->depth == doc->choices) {
        doc->choices_items = 1;
    }

    return key;
}


static int
ngx_http_ai_gateway_meter_null(void *ctx)
{
    (void) ngx_http_ai_gateway_meter_value(ctx);
    return 1;
}


static int
ngx_http_ai_gateway_meter_boolean(void *ctx, int b)
{
    (void) ngx_http_ai_gateway_meter_value(ctx);
    return 1;
}


static int
ngx_http_ai_gateway_meter_number(void *ctx, const char *s, size_t len)
{
    ngx_http_ai_gateway_meter_doc_t *doc = ctx;

    size_t      i;
    uint64_t    n;
    ngx_uint_t  key, field, in;

    key = ngx_http_ai_gateway_meter_value(doc);

    if (doc->usage == 0) {
        return 1;
    }

    field = ngx_meter_f_n;

    if (doc->depth == doc->usage) {
        if (key >= ngx_meter_k_field
            && key - ngx_meter_k_field < ngx_meter_f_direct)
        {
            field = key - ngx_meter_k_field;
        }

    } else if (doc->depth == doc->usage + 1
               && doc->depth <= NGX_HTTP_AI_GATEWAY_METER_TRACK)
    {
        in = doc->keys[doc->depth];

        if (in == ngx_meter_k_prompt_details
            && key == ngx_meter_k_cached_tokens)
        {
            field = ngx_meter_f_prompt_cached;

        } else if (in == ngx_meter_k_completion_details
                   && key == ngx_meter_k_reasoning_tokens)
        {
            field = ngx_meter_f_completion_reasoning;

        } else if (in == ngx_meter_k_input_details
                   && key == ngx_meter_k_cached_tokens)
        {
            field = ngx_meter_f_input_cached;

        } else if (in == ngx_meter_k_output_details
                   && key == ngx_meter_k_reasoning_tokens)
        {
            field = ngx_meter_f_output_reasoning;

        } else if (in == ngx_meter_k_billed || in == ngx_meter_k_tokens) {

            if (key == ngx_meter_k_field + ngx_meter_f_input) {
                field = (in == ngx_meter_k_billed)
                        ? ngx_meter_f_billed_input
                        : ngx_meter_f_tokens_input;

            } else if (key == ngx_meter_k_field + ngx_meter_f_output) {
                field = (in == ngx_meter_k_billed)
                        ? ngx_meter_f_billed_output
                        : ngx_meter_f_tokens_output;
            }
        }
    }

    if (field == ngx_meter_f_n || len == 0 || len > 20) {
        return 1;
    }

    /* a count: a non-negative integer */

    n = 0;

    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 1;
        }

        n = n * 10 + (s[i] - '0');

        if (n > NGX_HTTP_AI_GATEWAY_METER_MAX) {
            n = NGX_HTTP_AI_GATEWAY_METER_MAX;
            break;
        }
    }

    doc->rec[field] = n;
    doc->rec_seen |= 1U << field;

    return 1;
}


static int
ngx_http_ai_gateway_meter_string(void *ctx, const unsigned char *s,
    size_t len)
{
    ngx_http_ai_gateway_meter_doc_t *doc = ctx;

    ngx_uint_t                    key, in;
    ngx_http_ai_gateway_meter_t  *m;

    m = doc->meter;

    key = ngx_http_ai_gateway_meter_value(doc);

    if (doc->usage || len == 0) {
        return 1;
    }

    in = (doc->depth == doc->root + 1
          && doc->depth <= NGX_HTTP_AI_GATEWAY_METER_TRACK)
         ? doc->keys[doc->depth] : ngx_meter_k_other;

    switch (key) {

    case ngx_meter_k_model:
    case ngx_meter_k_model_version:

        if (m->model_len == 0 && len <= NGX_HTTP_AI_GATEWAY_METER_MODEL
            && (doc->depth == doc->root
                || (key == ngx_meter_k_model
                    && (in == ngx_meter_k_message
                        || in == ngx_meter_k_response))))
        {
            ngx_memcpy(m->model, s, len);
            m->model_len = len;
        }

        break;

    case ngx_meter_k_text:

        if (doc->depth > doc->root) {
            doc->output = 1;
        }

        break;

    case ngx_meter_k_delta:       /* the Responses API's text */
    case ngx_meter_k_response:    /* Workers AI's */

        if (doc->depth == doc->root) {
            doc->output = 1;
        }

        break;

    case ngx_meter_k_bytes:

        if (doc->depth == doc->root && !doc->nested
            && m->framing == NGX_HTTP_AI_GATEWAY_METER_EVENTSTREAM)
        {
            ngx_http_ai_gateway_meter_bytes(doc, s, len);
        }

        break;
    }

    return 1;
}


/*
 * An InvokeModelWithResponseStream payload, {"bytes":"<base64>"}: the
 * model's own event, read as any other answer
 */

static void
ngx_http_ai_gateway_meter_bytes(ngx_http_ai_gateway_meter_doc_t *doc,
    const u_char *s, size_t len)
{
    ngx_str_t                     src, dst;
    ngx_http_ai_gateway_meter_t  *m;

    m = doc->meter;

    dst.data = ngx_alloc(ngx_base64_decoded_length(len), ngx_cycle->log);
    if (dst.data == NULL) {
        return;
    }

    src.data = (u_char *) s;
    src.len = len;

    if (ngx_decode_base64(&dst, &src) == NGX_OK
        && ngx_http_ai_gateway_meter_begin(m, &m->inner) == NGX_OK)
    {
        m->inner.nested = 1;

        ngx_http_ai_gateway_meter_json(&m->inner, dst.data, dst.len);
    }

    ngx_free(dst.data);
}


static int
ngx_http_ai_gateway_meter_start_map(void *ctx)
{
    return ngx_http_ai_gateway_meter_start(ctx, 0);
}


static int
ngx_http_ai_gateway_meter_start_array(void *ctx)
{
    return ngx_http_ai_gateway_meter_start(ctx, 1);
}


static int
ngx_http_ai_gateway_meter_start(ngx_http_ai_gateway_meter_doc_t *doc,
    ngx_uint_t array)
{
    ngx_uint_t  key, d, up;

    key = ngx_http_ai_gateway_meter_value(doc);

    if (doc->depth >= NGX_HTTP_AI_GATEWAY_MAX_DEPTH) {
        doc->failed = 1;
        return 0;
    }

    d = ++doc->depth;

    if (d < 64) {
        if (array) {
            doc->arrays |= (uint64_t) 1 << d;

        } else {
            doc->arrays &= ~((uint64_t) 1 << d);
        }
    }

    if (d <= NGX_HTTP_AI_GATEWAY_METER_TRACK) {
        doc->keys[d] = (u_char) key;
    }

    if (d == 1) {
        /* a JSON array of answers, or an answer */
        doc->root = array ? 2 : 1;
        return 1;
    }

    if (doc->usage) {
        return 1;
    }

    if (array) {
        if (d == doc->root + 1 && key == ngx_meter_k_choices) {
            doc->choices = d;
            doc->choices_items = 0;
        }

        return 1;
    }

    up = (d == doc->root + 2) ? doc->keys[doc->root + 1] : ngx_meter_k_other;

    if ((d == doc->root + 1
         && (key == ngx_meter_k_usage || key == ngx_meter_k_usage_metadata
             || key == ngx_meter_k_metrics || key == ngx_meter_k_meta))
        || (d == doc->root + 2 && key == ngx_meter_k_usage
            && (up == ngx_meter_k_message || up == ngx_meter_k_response
                || up == ngx_meter_k_delta || up == ngx_meter_k_x_groq
                || up == ngx_meter_k_result)))
    {
        doc->usage = d;
        doc->rec_seen = 0;
    }

    return 1;
}


static int
ngx_http_ai_gateway_meter_map_key(void *ctx, const unsigned char *s,
    size_t len)
{
    ngx_http_ai_gateway_meter_doc_t *doc = ctx;

    doc->key = ngx_http_ai_gateway_meter_key(s, len);

    return 1;
}


static int
ngx_http_ai_gateway_meter_end_map(void *ctx)
{
    return ngx_http_ai_gateway_meter_end(ctx, 0);
}


static int
ngx_http_ai_gateway_meter_end_array(void *ctx)
{
    return ngx_http_ai_gateway_meter_end(ctx, 1);
}


static int
ngx_http_ai_gateway_meter_end(ngx_http_ai_gateway_meter_doc_t *doc,
    ngx_uint_t array)
{
    ngx_uint_t                    f;
    ngx_http_ai_gateway_meter_t  *m;

    m = doc->meter;

    if (array) {
        if (doc->choices && doc->depth == doc->choices) {
            doc->choices_empty = !doc->choices_items;
            doc->choices = 0;
        }

    } else {

        if (doc->usage && doc->depth == doc->usage) {
            /* the fields present replace the same fields seen before */

            for (f = 0; f < ngx_meter_f_n; f++) {
                if (doc->rec_seen & (1U << f)) {
                    m->fields[f] = doc->rec[f];
                }
            }

            m->seen |= doc->rec_seen;

            doc->usage = 0;
            doc->has_usage = 1;
        }

        if (doc->depth == doc->root) {
            /* an answer, an event: it carried output or not */

            if (doc->output) {
                m->outputs++;
                doc->output = 0;
            }
        }
    }

    doc->depth--;
    doc->key = ngx_meter_k_other;

    return 1;
}


/*
 * The request side: stream_options.include_usage, so that a streamed
 * OpenAI answer reports its counts.  The body is read once with yajl's
 * event parser, which gives the offsets of what changes: a member is
 * added after an object's "{", or "false" made "true"; the rest of the
 * body is left as the client wrote it.
 */

enum {
    ngx_meter_r_other = 0,
    ngx_meter_r_stream,
    ngx_meter_r_options,
    ngx_meter_r_usage
};


typedef struct {
    yajl_handle                    h;
    ngx_uint_t                     depth;
    ngx_uint_t                     key;
    ngx_uint_t                     streams;    /* "stream" members */
    ngx_uint_t                     options;    /* "stream_options" */
    ngx_uint_t                     usages;     /* "include_usage" */
    ngx_uint_t                     members;    /* of stream_options */
    size_t                         open;       /* after the body's "{" */
    size_t                         options_open;
    size_t                         value_end;  /* after "false" */
    unsigned                       object:1;   /* the body is an object */
    unsigned                       stream:1;   /* "stream":true */
    unsigned                       in_options:1;
    unsigned                       options_object:1;
    unsigned                       value:2;    /* 1 true, 2 false, 3 other */
} ngx_http_ai_gateway_meter_req_t;


static int ngx_http_ai_gateway_meter_r_value(void *ctx);
static int ngx_http_ai_gateway_meter_r_boolean(void *ctx, int b);
static int ngx_http_ai_gateway_meter_r_number(void *ctx, const char *s,
    size_t len);
static int ngx_http_ai_gateway_meter_r_string(void *ctx,
    const unsigned char *s, size_t len);
static int ngx_http_ai_gateway_meter_r_start_map(void *ctx);
static int ngx_http_ai_gateway_meter_r_map_key(void *ctx,
    const unsigned char *s, size_t len);
static int ngx_http_ai_gateway_meter_r_start_array(void *ctx);
static int ngx_http_ai_gateway_meter_r_end(void *ctx);


static yajl_callbacks  ngx_http_ai_gateway_meter_r_callbacks = {
    ngx_http_ai_gateway_meter_r_value,
    ngx_http_ai_gateway_meter_r_boolean,
    NULL,
    NULL,
    ngx_http_ai_gateway_meter_r_number,
    ngx_http_ai_gateway_meter_r_string,
    ngx_http_ai_gateway_meter_r_start_map,
    ngx_http_ai_gateway_meter_r_map_key,
    ngx_http_ai_gateway_meter_r_end,
    ngx_http_ai_gateway_meter_r_start_array,
    ngx_http_ai_gateway_meter_r_end
};


ngx_int_t
ngx_http_ai_gateway_meter_request(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_str_t *out)
{
    u_char                           *d;
    size_t                            at, cut;
    ngx_str_t                         add;
    yajl_status                       st;
    ngx_http_ai_gateway_meter_req_t   rq;

    static ngx_str_t  member = ngx_string("\"stream_options\":"
                                          "{\"include_usage\":true},");
    static ngx_str_t  option = ngx_string("\"include_usage\":true,");

    /* most requests do not stream: no "stream" key, nothing to parse */

    for (d = p; /* void */; d++) {
        d = memchr(d, '"', p + len - d);

        if (d == NULL || p + len - d < 8) {
            return NGX_DECLINED;
        }

        if (ngx_strncmp(d, "\"stream\"", 8) == 0) {
            break;
        }
    }

    ngx_memzero(&rq, sizeof(ngx_http_ai_gateway_meter_req_t));

    rq.h = yajl_alloc(&ngx_http_ai_gateway_meter_r_callbacks, NULL, &rq);
    if (rq.h == NULL) {
        return NGX_ERROR;
    }

    /* one call: the offsets are the body's */

    st = yajl_parse(rq.h, p, len);

    if (st == yajl_status_ok) {
        st = yajl_complete_parse(rq.h);
    }

    yajl_free(rq.h);

    if (st != yajl_status_ok || !rq.object || rq.streams != 1 || !rq.stream
        || rq.options > 1 || rq.usages > 1
        || (rq.options && !rq.options_object)
        || rq.value == 1 || rq.value == 3)
    {
        return NGX_DECLINED;
    }

    if (rq.value == 2) {
        /* "include_usage":false */

        if (rq.value_end < 5
            || ngx_strncmp(p + rq.value_end - 5, "false", 5) != 0)
        {
            return NGX_DECLINED;
        }

        out->data = ngx_pnalloc(pool, len - 1);
        if (out->data == NULL) {
            return NGX_ERROR;
        }

        d = ngx_cpymem(out->data, p, rq.value_end - 5);
        d = ngx_cpymem(d, "true", 4);
        d = ngx_cpymem(d, p + rq.value_end, len - rq.value_end);
        out->len = d - out->data;

        return NGX_OK;
    }

    if (rq.options) {
        at = rq.options_open;
        add = option;
        cut = rq.members ? 0 : 1;     /* no "," in an empty object */

    } else {
        at = rq.open;
        add = member;
        cut = 0;                      /* "stream" follows */
    }

    if (at == 0 || p[at - 1] != '{') {
        return NGX_DECLINED;
    }

    out->data = ngx_pnalloc(pool, len + add.len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    d = ngx_cpymem(out->data, p, at);
    d = ngx_cpymem(d, add.data, add.len - cut);
    d = ngx_cpymem(d, p + at, len - at);
    out->len = d - out->data;

    return NGX_OK;
}


static int
ngx_http_ai_gateway_meter_r_scalar(ngx_http_ai_gateway_meter_req_t *rq,
    ngx_uint_t value)
{
    if (rq->depth == 1 && rq->key == ngx_meter_r_options) {
        rq->options_object = 0;
    }

    if (rq->depth == 2 && rq->in_options && rq->key == ngx_meter_r_usage) {
        rq->value = value;
        rq->value_end = yajl_get_bytes_consumed(rq->h);
    }

    rq->key = ngx_meter_r_other;

    return 1;
}


static int
ngx_http_ai_gateway_meter_r_value(void *ctx)
{
    return ngx_http_ai_gateway_meter_r_scalar(ctx, 3);
}


static int
ngx_http_ai_gateway_meter_r_boolean(void *ctx, int b)
{
    ngx_http_ai_gateway_meter_req_t *rq = ctx;

    if (rq->depth == 1 && rq->key == ngx_meter_r_stream) {
        rq->stream = b ? 1 : 0;
    }

    return ngx_http_ai_gateway_meter_r_scalar(rq, b ? 1 : 2);
}


static int
ngx_http_ai_gateway_meter_r_number(void *ctx, const char *s, size_t len)
{
    return ngx_http_ai_gateway_meter_r_value(ctx);
}


static int
ngx_http_ai_gateway_meter_r_string(void *ctx, const unsigned char *s,
    size_t len)
{
    return ngx_http_ai_gateway_meter_r_value(ctx);
}


static int
ngx_http_ai_gateway_meter_r_start_map(void *ctx)
{
    ngx_http_ai_gateway_meter_req_t *rq = ctx;

    if (rq->depth >= NGX_HTTP_AI_GATEWAY_MAX_DEPTH) {
        return 0;
    }

    if (rq->depth == 0) {
        rq->object = 1;
        rq->open = yajl_get_bytes_consumed(rq->h);
    }

    if (rq->depth == 1 && rq->key == ngx_meter_r_options) {
        rq->options_object = 1;
        rq->in_options = 1;
        rq->options_open = yajl_get_bytes_consumed(rq->h);

    } else if (rq->depth == 2 && rq->in_options
               && rq->key == ngx_meter_r_usage)
    {
        rq->value = 3;
    }

    rq->depth++;
    rq->key = ngx_meter_r_other;

    return 1;
}


static int
ngx_http_ai_gateway_meter_r_start_array(void *ctx)
{
    ngx_http_ai_gateway_meter_req_t *rq = ctx;

    if (rq->depth >= NGX_HTTP_AI_GATEWAY_MAX_DEPTH) {
        return 0;
    }

    if (rq->depth == 1 && rq->key == ngx_meter_r_options) {
        rq->options_object = 0;

    } else if (rq->depth == 2 && rq->in_options
               && rq->key == ngx_meter_r_usage)
    {
        rq->value = 3;
    }

    rq->depth++;
    rq->key = ngx_meter_r_other;

    return 1;
}


static int
ngx_http_ai_gateway_meter_r_map_key(void *ctx, const unsigned char *s,
    size_t len)
{
    ngx_http_ai_gateway_meter_req_t *rq = ctx;

    rq->key = ngx_meter_r_other;

    if (rq->depth == 1) {
        if (len == 6 && ngx_strncmp(s, "stream", 6) == 0) {
            rq->key = ngx_meter_r_stream;
            rq->streams++;

        } else if (len == 14 && ngx_strncmp(s, "stream_options", 14) == 0) {
            rq->key = ngx_meter_r_options;
            rq->options++;
        }

    } else if (rq->depth == 2 && rq->in_options) {
        rq->members++;

        if (len == 13 && ngx_strncmp(s, "include_usage", 13) == 0) {
            rq->key = ngx_meter_r_usage;
            rq->usages++;
        }
    }

    return 1;
}


static int
ngx_http_ai_gateway_meter_r_end(void *ctx)
{
    ngx_http_ai_gateway_meter_req_t *rq = ctx;

    rq->depth--;

    if (rq->depth == 1) {
        rq->in_options = 0;
    }

    rq->key = ngx_meter_r_other;

    return 1;
}
