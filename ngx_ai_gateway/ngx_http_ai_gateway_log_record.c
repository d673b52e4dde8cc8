
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_gateway_json.h"
#include "ngx_http_ai_gateway_log.h"


/*
 * A request log record, knowing nothing of HTTP.  In a store it is bytes
 * of its own format ("AGL1"): fixed fields in little-endian order, then
 * the strings, each with its length.  The same bytes go to the shared
 * memory zone and to Redis; read back, they are decoded by a checking
 * decoder (every length, every field's range, the id's alphabet), so
 * that a store holding anything else (another program's keys in Redis, a
 * zone of an older version) yields no record rather than a crash.
 *
 * The Logs API's view of a record is here too: its JSON (the hosted
 * gateway's log object: the list item, or the single log with its heads
 * and sizes), the filters of a list or delete matched against it, and its
 * sort key in the orders other than created_at.  Strings that came from a
 * client or a provider (a model name, a header) are written as valid
 * UTF-8, any other byte shown as "?".
 */


#define NGX_HTTP_AI_GATEWAY_LOG_MAGIC     "AGL1"
#define NGX_HTTP_AI_GATEWAY_LOG_NUMBERS   11
#define NGX_HTTP_AI_GATEWAY_LOG_FIXED     (4 + 4 + 8 * 11 + 2 + 2 + 1 + 1     \
                                           + NGX_HTTP_AI_GATEWAY_LOG_ID_LEN)


ngx_http_ai_gateway_query_key_t  ngx_http_ai_gateway_log_keys[] = {
    { ngx_string("id"), NGX_HTTP_AI_GATEWAY_KEY_STRING },
    { ngx_string("created_at"), NGX_HTTP_AI_GATEWAY_KEY_DATE },
    { ngx_string("request_content_type"), NGX_HTTP_AI_GATEWAY_KEY_STRING },
    { ngx_string("response_content_type"), NGX_HTTP_AI_GATEWAY_KEY_STRING },
    { ngx_string("request_type"), NGX_HTTP_AI_GATEWAY_KEY_STRING },
    { ngx_string("success"), NGX_HTTP_AI_GATEWAY_KEY_BOOL },
    { ngx_string("cached"), NGX_HTTP_AI_GATEWAY_KEY_BOOL },
    { ngx_string("provider"), NGX_HTTP_AI_GATEWAY_KEY_STRING },
    { ngx_string("model"), NGX_HTTP_AI_GATEWAY_KEY_STRING },
    { ngx_string("model_type"), NGX_HTTP_AI_GATEWAY_KEY_STRING },
    { ngx_string("cost"), NGX_HTTP_AI_GATEWAY_KEY_NUMBER },
    { ngx_string("tokens"), NGX_HTTP_AI_GATEWAY_KEY_NUMBER },
    { ngx_string("tokens_in"), NGX_HTTP_AI_GATEWAY_KEY_NUMBER },
    { ngx_string("tokens_out"), NGX_HTTP_AI_GATEWAY_KEY_NUMBER },
    { ngx_string("duration"), NGX_HTTP_AI_GATEWAY_KEY_NUMBER },
    { ngx_string("feedback"), NGX_HTTP_AI_GATEWAY_KEY_NUMBER },
    { ngx_string("event_id"), NGX_HTTP_AI_GATEWAY_KEY_STRING },
    { ngx_string("metadata.key"), NGX_HTTP_AI_GATEWAY_KEY_STRING },
    { ngx_string("metadata.value"), NGX_HTTP_AI_GATEWAY_KEY_STRING },
    { ngx_string("authentication"), NGX_HTTP_AI_GATEWAY_KEY_BOOL },
    { ngx_string("wholesale"), NGX_HTTP_AI_GATEWAY_KEY_BOOL },
    { ngx_string("compatibilityMode"), NGX_HTTP_AI_GATEWAY_KEY_BOOL },
    { ngx_string("dlp_action"), NGX_HTTP_AI_GATEWAY_KEY_STRING },
    { ngx_string("user_agent"), NGX_HTTP_AI_GATEWAY_KEY_STRING },
    { ngx_null_string, 0 }
};


ngx_str_t  ngx_http_ai_gateway_log_orders[] = {
    ngx_string("created_at"),
    ngx_string("provider"),
    ngx_string("model"),
    ngx_string("model_type"),
    ngx_string("success"),
    ngx_string("cached"),
    ngx_string("cost"),
    ngx_string("tokens_in"),
    ngx_string("tokens_out"),
    ngx_string("duration"),
    ngx_string("feedback"),
    ngx_null_string
};


/* a field's value for the filters */

typedef struct {
    ngx_uint_t                     type;       /* VALUE_NULL, STRING,
                                                  NUMBER */
    ngx_str_t                      str;
    double                         num;
} ngx_http_ai_gateway_log_field_t;


static u_char *ngx_http_ai_gateway_log_put(u_char *p, uint64_t n,
    size_t size);
static uint64_t ngx_http_ai_gateway_log_get(u_char *p, size_t size);
static ngx_uint_t ngx_http_ai_gateway_log_id_ok(u_char *id);
static void ngx_http_ai_gateway_log_payload_state(
    ngx_http_ai_gateway_gen_t *gen, uint32_t flags, uint32_t body,
    uint32_t cut);
static void ngx_http_ai_gateway_log_text(ngx_http_ai_gateway_gen_t *gen,
    ngx_str_t *s);
static size_t ngx_http_ai_gateway_log_utf8(u_char *p, u_char *last);
static void ngx_http_ai_gateway_log_key_text(ngx_http_ai_gateway_gen_t *gen,
    const char *key, ngx_str_t *s);
static void ngx_http_ai_gateway_log_number(ngx_http_ai_gateway_gen_t *gen,
    const char *key, double n);
static void ngx_http_ai_gateway_log_gen_metadata(
    ngx_http_ai_gateway_gen_t *gen, ngx_str_t *metadata);
static void ngx_http_ai_gateway_log_field(
    ngx_http_ai_gateway_log_record_t *rec, ngx_uint_t key,
    ngx_http_ai_gateway_log_field_t *f);
static ngx_uint_t ngx_http_ai_gateway_log_test(
    ngx_http_ai_gateway_log_field_t *f, ngx_uint_t op,
    ngx_http_ai_gateway_query_value_t *v);
static ngx_uint_t ngx_http_ai_gateway_log_filter(ngx_pool_t *pool,
    ngx_http_ai_gateway_log_record_t *rec,
    ngx_http_ai_gateway_query_filter_t *f);
static ngx_uint_t ngx_http_ai_gateway_log_metadata_test(ngx_pool_t *pool,
    ngx_http_ai_gateway_log_record_t *rec,
    ngx_http_ai_gateway_query_filter_t *f);
static ngx_uint_t ngx_http_ai_gateway_log_contains(ngx_str_t *s,
    ngx_str_t *part);


/* the record's bytes */

ngx_int_t
ngx_http_ai_gateway_log_encode(ngx_pool_t *pool,
    ngx_http_ai_gateway_log_record_t *rec, ngx_str_t *out)
{
    u_char      *p;
    size_t       len;
    uint64_t     cost;
    ngx_uint_t   i;

    len = NGX_HTTP_AI_GATEWAY_LOG_FIXED;

    for (i = 0; i < NGX_HTTP_AI_GATEWAY_LOG_NSTR; i++) {
        if (rec->str[i].len > NGX_HTTP_AI_GATEWAY_LOG_MAX_STR) {
            rec->str[i].len = NGX_HTTP_AI_GATEWAY_LOG_MAX_STR;
        }

        len += 4 + rec->str[i].len;
    }

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;
    out->len = len;

    ngx_memcpy(&cost, &rec->cost, sizeof(uint64_t));

    p = ngx_cpymem(p, NGX_HTTP_AI_GATEWAY_LOG_MAGIC, 4);
    p = ngx_http_ai_gateway_log_put(p, rec->flags, 4);
    p = ngx_http_ai_gateway_log_put(p, rec->created_at, 8);
    p = ngx_http_ai_gateway_log_put(p, rec->duration, 8);
    p = ngx_http_ai_gateway_log_put(p, rec->ttfb, 8);
    p = ngx_http_ai_gateway_log_put(p, rec->input, 8);
    p = ngx_http_ai_gateway_log_put(p, rec->cached, 8);
    p = ngx_http_ai_gateway_log_put(p, rec->cache_write, 8);
    p = ngx_http_ai_gateway_log_put(p, rec->output, 8);
    p = ngx_http_ai_gateway_log_put(p, rec->reasoning, 8);
    p = ngx_http_ai_gateway_log_put(p, rec->request_size, 8);
    p = ngx_http_ai_gateway_log_put(p, rec->response_size, 8);
    p = ngx_http_ai_gateway_log_put(p, cost, 8);
    p = ngx_http_ai_gateway_log_put(p, rec->status, 2);
    p = ngx_http_ai_gateway_log_put(p, rec->step, 2);
    p = ngx_http_ai_gateway_log_put(p, rec->feedback + 1, 1);
    p = ngx_http_ai_gateway_log_put(p, rec->score, 1);
    p = ngx_cpymem(p, rec->id, NGX_HTTP_AI_GATEWAY_LOG_ID_LEN);

    for (i = 0; i < NGX_HTTP_AI_GATEWAY_LOG_NSTR; i++) {
        p = ngx_http_ai_gateway_log_put(p, rec->str[i].len, 4);

        if (rec->str[i].len) {
            p = ngx_cpymem(p, rec->str[i].data, rec->str[i].len);
        }
    }

    return NGX_OK;
}


/*
 * Bytes from a store: NGX_OK with every string of rec pointing into p,
 * or NGX_DECLINED when they are not a record.
 */

ngx_int_t
ngx_http_ai_gateway_log_decode(u_char *p, size_t len,
    ngx_http_ai_gateway_log_record_t *rec)
{
    u_char      *last;
    size_t       n;
    uint64_t     v[NGX_HTTP_AI_GATEWAY_LOG_NUMBERS];
    ngx_uint_t   i, feedback;

    ngx_memzero(rec, sizeof(ngx_http_ai_gateway_log_record_t));

    if (len < NGX_HTTP_AI_GATEWAY_LOG_FIXED
        || ngx_memcmp(p, NGX_HTTP_AI_GATEWAY_LOG_MAGIC, 4) != 0)
    {
        return NGX_DECLINED;
    }

    last = p + len;
    p += 4;

    rec->flags = (uint32_t) ngx_http_ai_gateway_log_get(p, 4);
    p += 4;

    if (rec->flags & ~NGX_HTTP_AI_GATEWAY_LOG_FLAGS) {
        return NGX_DECLINED;
    }

    for (i = 0; i < NGX_HTTP_AI_GATEWAY_LOG_NUMBERS; i++) {
        v[i] = ngx_http_ai_gateway_log_get(p, 8);
        p += 8;
    }

    rec->created_at = v[0];
    rec->duration = v[1];
    rec->ttfb = v[2];
    rec->input = v[3];
    rec->cached = v[4];
    rec->cache_write = v[5];
    rec->output = v[6];
    rec->reasoning = v[7];
    rec->request_size = v[8];
    rec->response_size = v[9];
    ngx_memcpy(&rec->cost, &v[10], sizeof(double));

    rec->status = ngx_http_ai_gateway_log_get(p, 2);
    rec->step = ngx_http_ai_gateway_log_get(p + 2, 2);
    feedback = p[4];
    rec->score = p[5];
    p += 6;

    if (rec->status > 999 || feedback > 2 || rec->score > 100
        || rec->cost != rec->cost
        || rec->cost > 1e300 || rec->cost < -1e300)
    {
        return NGX_DECLINED;
    }

    rec->feedback = (ngx_int_t) feedback - 1;

    if (!ngx_http_ai_gateway_log_id_ok(p)) {
        return NGX_DECLINED;
    }

    ngx_memcpy(rec->id, p, NGX_HTTP_AI_GATEWAY_LOG_ID_LEN);
    p += NGX_HTTP_AI_GATEWAY_LOG_ID_LEN;

    for (i = 0; i < NGX_HTTP_AI_GATEWAY_LOG_NSTR; i++) {

        if (last - p < 4) {
            return NGX_DECLINED;
        }

        n = ngx_http_ai_gateway_log_get(p, 4);
        p += 4;

        if (n > NGX_HTTP_AI_GATEWAY_LOG_MAX_STR || n > (size_t) (last - p)) {
            return NGX_DECLINED;
        }

        rec->str[i].data = p;
        rec->str[i].len = n;
        p += n;
    }

    if (p != last) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static u_char *
ngx_http_ai_gateway_log_put(u_char *p, uint64_t n, size_t size)
{
    size_t  i;

    for (i = 0; i < size; i++) {
        *p++ = (u_char) (n & 0xff);
        n >>= 8;
    }

    return p;
}


static uint64_t
ngx_http_ai_gateway_log_get(u_char *p, size_t size)
{
    size_t    i;
    uint64_t  n;

    n = 0;

    for (i = size; i > 0; i--) {
        n = (n << 8) | p[i - 1];
    }

    return n;
}


/* 26 characters of Crockford's base32, the first one at most '7' */

static ngx_uint_t
ngx_http_ai_gateway_log_id_ok(u_char *id)
{
    ngx_uint_t  i;

    if (id[0] < '0' || id[0] > '7') {
        return 0;
    }

    for (i = 1; i < NGX_HTTP_AI_GATEWAY_LOG_ID_LEN; i++) {
        if (!((id[i] >= '0' && id[i] <= '9')
              || (id[i] >= 'A' && id[i] <= 'Z' && id[i] != 'I'
                  && id[i] != 'L' && id[i] != 'O' && id[i] != 'U')))
        {
            return 0;
        }
    }

    return 1;
}


/*
 * The fields a PATCH changes, kept apart by a store that cannot rewrite a
 * record in place (Redis): each NULL when not set; all checked.
 */

ngx_int_t
ngx_http_ai_gateway_log_override(ngx_http_ai_gateway_log_record_t *rec,
    ngx_str_t *feedback, ngx_str_t *score, ngx_str_t *metadata)
{
    ngx_int_t  n;

    if (feedback && feedback->data) {
        if (feedback->len == 2 && feedback->data[0] == '-'
            && feedback->data[1] == '1')
        {
            rec->feedback = -1;

        } else if (feedback->len == 1
                   && (feedback->data[0] == '0' || feedback->data[0] == '1'))
        {
            rec->feedback = feedback->data[0] - '0';

        } else {
            return NGX_DECLINED;
        }
    }

    if (score && score->data) {
        if (score->len == 0) {
            rec->flags &= ~NGX_HTTP_AI_GATEWAY_LOG_SCORE;
            rec->score = 0;

        } else {
            n = (score->len <= 3) ? ngx_atoi(score->data, score->len)
                                  : NGX_ERROR;

            if (n < 0 || n > 100) {
                return NGX_DECLINED;
            }

            rec->flags |= NGX_HTTP_AI_GATEWAY_LOG_SCORE;
            rec->score = n;
        }
    }

    if (metadata && metadata->data) {
        if (metadata->len > NGX_HTTP_AI_GATEWAY_LOG_MAX_STR) {
            return NGX_DECLINED;
        }

        rec->str[NGX_HTTP_AI_GATEWAY_LOG_METADATA] = *metadata;
    }

    return NGX_OK;
}


/*
 * Metadata given to PATCH: an object of at most five string, number or
 * boolean values (the first five kept, as for cf-aig-metadata), or null.
 * NGX_DECLINED: anything else.
 */

ngx_int_t
ngx_http_ai_gateway_log_metadata(ngx_pool_t *pool, yajl_val v,
    ngx_str_t *out)
{
    size_t                     i;
    yajl_val                   val;
    ngx_http_ai_gateway_gen_t  gen;

    if (v == NULL || YAJL_IS_NULL(v)) {
        ngx_str_set(out, "null");
        return NGX_OK;
    }

    if (!YAJL_IS_OBJECT(v)) {
        return NGX_DECLINED;
    }

    for (i = 0; i < v->u.object.len; i++) {
        val = v->u.object.values[i];

        if (!(YAJL_IS_STRING(val) || YAJL_IS_NUMBER(val) || YAJL_IS_TRUE(val)
              || YAJL_IS_FALSE(val)))
        {
            return NGX_DECLINED;
        }
    }

    if (ngx_http_ai_gateway_gen_init(&gen, pool) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_ai_gateway_gen_map(&gen);

    for (i = 0; i < v->u.object.len && i < 5; i++) {
        ngx_http_ai_gateway_gen_str(&gen, (u_char *) v->u.object.keys[i],
                                    ngx_strlen(v->u.object.keys[i]));
        ngx_http_ai_gateway_gen_value(&gen, v->u.object.values[i]);
    }

    ngx_http_ai_gateway_gen_map_end(&gen);

    return ngx_http_ai_gateway_gen_done(&gen, out);
}


/* "2024-05-01T12:00:00.250Z": 24 bytes */

u_char *
ngx_http_ai_gateway_log_time(u_char *buf, uint64_t ms)
{
    ngx_tm_t  tm;

    ngx_gmtime((time_t) (ms / 1000), &tm);

    return ngx_sprintf(buf, "%4d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                       tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                       tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec,
                       (int) (ms % 1000));
}


/*
 * The hosted gateway's log object: the list's item, or with "full" the
 * single log (heads, their completeness, sizes).
 */

ngx_int_t
ngx_http_ai_gateway_log_json(ngx_http_ai_gateway_gen_t *gen,
    ngx_http_ai_gateway_log_record_t *rec, ngx_uint_t full)
{
    u_char                           buf[32];
    ngx_str_t                        s;
    ngx_uint_t                       f;

    f = rec->flags;

    ngx_http_ai_gateway_gen_map(gen);

    s.data = rec->id;
    s.len = NGX_HTTP_AI_GATEWAY_LOG_ID_LEN;
    ngx_http_ai_gateway_log_key_text(gen, "id", &s);

    s.data = buf;
    s.len = ngx_http_ai_gateway_log_time(buf, rec->created_at) - buf;
    ngx_http_ai_gateway_log_key_text(gen, "created_at", &s);

    ngx_http_ai_gateway_log_key_text(gen, "provider",
                                &rec->str[NGX_HTTP_AI_GATEWAY_LOG_PROVIDER]);
    ngx_http_ai_gateway_log_key_text(gen, "model",
                                &rec->str[NGX_HTTP_AI_GATEWAY_LOG_MODEL]);

    if (rec->str[NGX_HTTP_AI_GATEWAY_LOG_MODEL_TYPE].len) {
        ngx_http_ai_gateway_log_key_text(gen, "model_type",
                                &rec->str[NGX_HTTP_AI_GATEWAY_LOG_MODEL_TYPE]);
    }

    ngx_http_ai_gateway_log_key_text(gen, "path",
                                &rec->str[NGX_HTTP_AI_GATEWAY_LOG_PATH]);
    ngx_http_ai_gateway_log_key_text(gen, "request_type",
                              &rec->str[NGX_HTTP_AI_GATEWAY_LOG_REQUEST_TYPE]);

    ngx_http_ai_gateway_gen_literal(gen, "status_code");
    ngx_http_ai_gateway_gen_int(gen, rec->status);

    ngx_http_ai_gateway_gen_literal(gen, "success");
    ngx_http_ai_gateway_gen_bool(gen, f & NGX_HTTP_AI_GATEWAY_LOG_SUCCESS);

    ngx_http_ai_gateway_gen_literal(gen, "cached");
    ngx_http_ai_gateway_gen_bool(gen, f & NGX_HTTP_AI_GATEWAY_LOG_CACHED);

    ngx_http_ai_gateway_gen_literal(gen, "duration");
    ngx_http_ai_gateway_gen_int(gen, (long long) rec->duration);

    if (f & NGX_HTTP_AI_GATEWAY_LOG_TTFB) {
        ngx_http_ai_gateway_gen_literal(gen, "ttfb");
        ngx_http_ai_gateway_gen_int(gen, (long long) rec->ttfb);
    }

    ngx_http_ai_gateway_gen_literal(gen, "tokens_in");

    if (f & NGX_HTTP_AI_GATEWAY_LOG_USAGE) {
        ngx_http_ai_gateway_gen_int(gen, (long long) (rec->input + rec->cached
                                                      + rec->cache_write));
    } else {
        ngx_http_ai_gateway_gen_null(gen);
    }

    ngx_http_ai_gateway_gen_literal(gen, "tokens_out");

    if (f & NGX_HTTP_AI_GATEWAY_LOG_USAGE) {
        ngx_http_ai_gateway_gen_int(gen, (long long) rec->output);
    } else {
        ngx_http_ai_gateway_gen_null(gen);
    }

    if (f & NGX_HTTP_AI_GATEWAY_LOG_USAGE) {
        ngx_http_ai_gateway_gen_literal(gen, "usage");
        ngx_http_ai_gateway_gen_map(gen);
        ngx_http_ai_gateway_gen_literal(gen, "input_tokens");
        ngx_http_ai_gateway_gen_int(gen, (long long) rec->input);
        ngx_http_ai_gateway_gen_literal(gen, "cached_tokens");
        ngx_http_ai_gateway_gen_int(gen, (long long) rec->cached);
        ngx_http_ai_gateway_gen_literal(gen, "cache_write_tokens");
        ngx_http_ai_gateway_gen_int(gen, (long long) rec->cache_write);
        ngx_http_ai_gateway_gen_literal(gen, "output_tokens");
        ngx_http_ai_gateway_gen_int(gen, (long long) rec->output);
        ngx_http_ai_gateway_gen_literal(gen, "reasoning_tokens");
        ngx_http_ai_gateway_gen_int(gen, (long long) rec->reasoning);
        ngx_http_ai_gateway_gen_literal(gen, "partial");
        ngx_http_ai_gateway_gen_bool(gen, f & NGX_HTTP_AI_GATEWAY_LOG_PARTIAL);
        ngx_http_ai_gateway_gen_map_end(gen);
    }

    if (f & NGX_HTTP_AI_GATEWAY_LOG_COST) {
        ngx_http_ai_gateway_log_number(gen, "cost", rec->cost);
    }

    ngx_http_ai_gateway_gen_literal(gen, "custom_cost");
    ngx_http_ai_gateway_gen_bool(gen, f & NGX_HTTP_AI_GATEWAY_LOG_CUSTOM_COST);

    if (rec->str[NGX_HTTP_AI_GATEWAY_LOG_METADATA].len) {
        ngx_http_ai_gateway_gen_literal(gen, "metadata");
        ngx_http_ai_gateway_log_gen_metadata(gen,
                                &rec->str[NGX_HTTP_AI_GATEWAY_LOG_METADATA]);
    }

    ngx_http_ai_gateway_gen_literal(gen, "step");
    ngx_http_ai_gateway_gen_int(gen, rec->step);

    ngx_http_ai_gateway_log_key_text(gen, "event_id",
                                &rec->str[NGX_HTTP_AI_GATEWAY_LOG_EVENT_ID]);

    ngx_http_ai_gateway_gen_literal(gen, "feedback");
    ngx_http_ai_gateway_gen_int(gen, rec->feedback);

    ngx_http_ai_gateway_gen_literal(gen, "score");

    if (f & NGX_HTTP_AI_GATEWAY_LOG_SCORE) {
        ngx_http_ai_gateway_gen_int(gen, rec->score);
    } else {
        ngx_http_ai_gateway_gen_null(gen);
    }

    ngx_http_ai_gateway_log_key_text(gen, "request_content_type",
                                &rec->str[NGX_HTTP_AI_GATEWAY_LOG_REQUEST_CT]);
    ngx_http_ai_gateway_log_key_text(gen, "response_content_type",
                                &rec->str[NGX_HTTP_AI_GATEWAY_LOG_RESPONSE_CT]);

    if (full) {
        ngx_http_ai_gateway_log_key_text(gen, "user_agent",
                                &rec->str[NGX_HTTP_AI_GATEWAY_LOG_USER_AGENT]);

        ngx_http_ai_gateway_log_key_text(gen, "request_head",
                              &rec->str[NGX_HTTP_AI_GATEWAY_LOG_REQUEST_HEAD]);
        ngx_http_ai_gateway_gen_literal(gen, "request_head_complete");
        ngx_http_ai_gateway_gen_bool(gen,
                                  f & NGX_HTTP_AI_GATEWAY_LOG_REQUEST_HEAD_OK);
        ngx_http_ai_gateway_gen_literal(gen, "request_size");
        ngx_http_ai_gateway_gen_int(gen, (long long) rec->request_size);

        ngx_http_ai_gateway_log_key_text(gen, "response_head",
                             &rec->str[NGX_HTTP_AI_GATEWAY_LOG_RESPONSE_HEAD]);
        ngx_http_ai_gateway_gen_literal(gen, "response_head_complete");
        ngx_http_ai_gateway_gen_bool(gen,
                                 f & NGX_HTTP_AI_GATEWAY_LOG_RESPONSE_HEAD_OK);
        ngx_http_ai_gateway_gen_literal(gen, "response_size");
        ngx_http_ai_gateway_gen_int(gen, (long long) rec->response_size);

        /* what the payload endpoints hold */

        ngx_http_ai_gateway_gen_literal(gen, "request_payload");
        ngx_http_ai_gateway_log_payload_state(gen, f,
                                        NGX_HTTP_AI_GATEWAY_LOG_REQUEST_BODY,
                                        NGX_HTTP_AI_GATEWAY_LOG_REQUEST_CUT);
        ngx_http_ai_gateway_gen_literal(gen, "response_payload");
        ngx_http_ai_gateway_log_payload_state(gen, f,
                                       NGX_HTTP_AI_GATEWAY_LOG_RESPONSE_BODY,
                                       NGX_HTTP_AI_GATEWAY_LOG_RESPONSE_CUT);
    }

    ngx_http_ai_gateway_gen_map_end(gen);

    return (gen->nomem) ? NGX_ERROR : NGX_OK;
}


/* "none", "complete" or "truncated" */

static void
ngx_http_ai_gateway_log_payload_state(ngx_http_ai_gateway_gen_t *gen,
    uint32_t flags, uint32_t body, uint32_t cut)
{
    if (!(flags & body)) {
        ngx_http_ai_gateway_gen_literal(gen, "none");

    } else if (flags & cut) {
        ngx_http_ai_gateway_gen_literal(gen, "truncated");

    } else {
        ngx_http_ai_gateway_gen_literal(gen, "complete");
    }
}


/* a string of the record, as valid UTF-8 */

static void
ngx_http_ai_gateway_log_text(ngx_http_ai_gateway_gen_t *gen, ngx_str_t *s)
{
    u_char  *p, *last, *copy, *d;
    size_t   n;

    last = s->data + s->len;

    for (p = s->data; p < last; p += n) {
        n = ngx_http_ai_gateway_log_utf8(p, last);

        if (n == 0) {
            break;
        }
    }

    if (p == last) {
        ngx_http_ai_gateway_gen_string(gen, s);
        return;
    }

    copy = ngx_pnalloc(gen->pool, s->len);
    if (copy == NULL) {
        gen->nomem = 1;
        return;
    }

    d = ngx_cpymem(copy, s->data, p - s->data);

    while (p < last) {
        n = ngx_http_ai_gateway_log_utf8(p, last);

        if (n == 0) {
            *d++ = '?';
            p++;
            continue;
        }

        d = ngx_cpymem(d, p, n);
        p += n;
    }

    ngx_http_ai_gateway_gen_str(gen, copy, d - copy);
}


/*
 * The length of the well-formed UTF-8 sequence at p (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), 0 when there is
 * none.  C0 80, the parsed JSON's NUL (yajl.c), is none.
 */

static size_t
ngx_http_ai_gateway_log_utf8(u_char *p, u_char *last)
{
    u_char  c, lo, hi;
    size_t  n, i;

    c = *p;

    if (c < 0x80) {
        return 1;
    }

    lo = 0x80;
    hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;

    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = (c == 0xe0) ? 0xa0 : 0x80;
        hi = (c == 0xed) ? 0x9f : 0xbf;

    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = (c == 0xf0) ? 0x90 : 0x80;
        hi = (c == 0xf4) ? 0x8f : 0xbf;

    } else {
        return 0;
    }

    if ((size_t) (last - p) < n || p[1] < lo || p[1] > hi) {
        return 0;
    }

    for (i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 0;
        }
    }

    return n;
}


static void
ngx_http_ai_gateway_log_key_text(ngx_http_ai_gateway_gen_t *gen,
    const char *key, ngx_str_t *s)
{
    ngx_http_ai_gateway_gen_str(gen, (u_char *) key, ngx_strlen(key));
    ngx_http_ai_gateway_log_text(gen, s);
}


/* a cost: as few digits as tell it apart, no exponent for small ones */

static void
ngx_http_ai_gateway_log_number(ngx_http_ai_gateway_gen_t *gen,
    const char *key, double n)
{
    ngx_http_ai_gateway_gen_str(gen, (u_char *) key, ngx_strlen(key));
    ngx_http_ai_gateway_gen_double(gen, n);
}


/* stored metadata: a JSON object (re-written), or null */

static void
ngx_http_ai_gateway_log_gen_metadata(ngx_http_ai_gateway_gen_t *gen,
    ngx_str_t *metadata)
{
    yajl_val  v;

    if (ngx_http_ai_gateway_json_parse(gen->pool, metadata->data,
                                       metadata->len, &v)
        != NGX_OK
        || !YAJL_IS_OBJECT(v))
    {
        ngx_http_ai_gateway_gen_null(gen);
        return;
    }

    ngx_http_ai_gateway_gen_value(gen, v);
}


/*
 * The record matches every filter and the free-text search (a substring,
 * in any case, of its id, provider, model, path, event id or metadata).
 */

ngx_uint_t
ngx_http_ai_gateway_log_match(ngx_pool_t *pool,
    ngx_http_ai_gateway_log_record_t *rec, ngx_array_t *filters,
    ngx_str_t *search)
{
    ngx_str_t                            id;
    ngx_uint_t                           i;
    ngx_http_ai_gateway_query_filter_t  *f;

    if (filters) {
        f = filters->elts;

        for (i = 0; i < filters->nelts; i++) {
            if (!ngx_http_ai_gateway_log_filter(pool, rec, &f[i])) {
                return 0;
            }
        }
    }

    if (search == NULL || search->len == 0) {
        return 1;
    }

    id.data = rec->id;
    id.len = NGX_HTTP_AI_GATEWAY_LOG_ID_LEN;

    return ngx_http_ai_gateway_log_contains(&id, search)
           || ngx_http_ai_gateway_log_contains(
                  &rec->str[NGX_HTTP_AI_GATEWAY_LOG_PROVIDER], search)
           || ngx_http_ai_gateway_log_contains(
                  &rec->str[NGX_HTTP_AI_GATEWAY_LOG_MODEL], search)
           || ngx_http_ai_gateway_log_contains(
                  &rec->str[NGX_HTTP_AI_GATEWAY_LOG_PATH], search)
           || ngx_http_ai_gateway_log_contains(
                  &rec->str[NGX_HTTP_AI_GATEWAY_LOG_EVENT_ID], search)
           || ngx_http_ai_gateway_log_contains(
                  &rec->str[NGX_HTTP_AI_GATEWAY_LOG_METADATA], search);
}


/*
 * One filter: eq, any of its values; neq, none of them; contains, any as
 * a substring; lt, gt (le, ge), its one value.  null stands for a field
 * the record does not have (no tokens, no cost, no feedback).
 */

static ngx_uint_t
ngx_http_ai_gateway_log_filter(ngx_pool_t *pool,
    ngx_http_ai_gateway_log_record_t *rec,
    ngx_http_ai_gateway_query_filter_t *f)
{
    ngx_uint_t                        i;
    ngx_http_ai_gateway_log_field_t   field;

    if (f->key == NGX_HTTP_AI_GATEWAY_LOG_KEY_METADATA_KEY
        || f->key == NGX_HTTP_AI_GATEWAY_LOG_KEY_METADATA_VALUE)
    {
        return ngx_http_ai_gateway_log_metadata_test(pool, rec, f);
    }

    ngx_http_ai_gateway_log_field(rec, f->key, &field);

    switch (f->op) {

    case NGX_HTTP_AI_GATEWAY_OP_NEQ:

        for (i = 0; i < f->nvalues; i++) {
            if (ngx_http_ai_gateway_log_test(&field, NGX_HTTP_AI_GATEWAY_OP_EQ,
                                             &f->values[i]))
            {
                return 0;
            }
        }

        return 1;

    default:

        for (i = 0; i < f->nvalues; i++) {
            if (ngx_http_ai_gateway_log_test(&field, f->op, &f->values[i])) {
                return 1;
            }
        }

        return 0;
    }
}


static void
ngx_http_ai_gateway_log_field(ngx_http_ai_gateway_log_record_t *rec,
    ngx_uint_t key, ngx_http_ai_gateway_log_field_t *f)
{
    ngx_uint_t  usage;

    ngx_memzero(f, sizeof(ngx_http_ai_gateway_log_field_t));

    f->type = NGX_HTTP_AI_GATEWAY_VALUE_NUMBER;
    usage = rec->flags & NGX_HTTP_AI_GATEWAY_LOG_USAGE;

    switch (key) {

    case NGX_HTTP_AI_GATEWAY_LOG_KEY_ID:
        f->type = NGX_HTTP_AI_GATEWAY_VALUE_STRING;
        f->str.data = rec->id;
        f->str.len = NGX_HTTP_AI_GATEWAY_LOG_ID_LEN;
        return;

    case NGX_HTTP_AI_GATEWAY_LOG_KEY_CREATED_AT:
        f->num = (double) rec->created_at;
        return;

    case NGX_HTTP_AI_GATEWAY_LOG_KEY_REQUEST_CT:
        f->str = rec->str[NGX_HTTP_AI_GATEWAY_LOG_REQUEST_CT];
        break;

    case NGX_HTTP_AI_GATEWAY_LOG_KEY_RESPONSE_CT:
        f->str = rec->str[NGX_HTTP_AI_GATEWAY_LOG_RESPONSE_CT];
        break;

    case NGX_HTTP_AI_GATEWAY_LOG_KEY_REQUEST_TYPE:
        f->str = rec->str[NGX_HTTP_AI_GATEWAY_LOG_REQUEST_TYPE];
        break;

    case NGX_HTTP_AI_GATEWAY_LOG_KEY_PROVIDER:
        f->str = rec->str[NGX_HTTP_AI_GATEWAY_LOG_PROVIDER];
        break;

    case NGX_HTTP_AI_GATEWAY_LOG_KEY_MODEL:
        f->str = rec->str[NGX_HTTP_AI_GATEWAY_LOG_MODEL];
        break;

    case NGX_HTTP_AI_GATEWAY_LOG_KEY_MODEL_TYPE:
        f->str = rec->str[NGX_HTTP_AI_GATEWAY_LOG_MODEL_TYPE];
        break;

    case NGX_HTTP_AI_GATEWAY_LOG_KEY_EVENT_ID:
        f->str = rec->str[NGX_HTTP_AI_GATEWAY_LOG_EVENT_ID];
        break;

    case NGX_HTTP_AI_GATEWAY_LOG_KEY_USER_AGENT:
        f->str = rec->str[NGX_HTTP_AI_GATEWAY_LOG_USER_AGENT];
        break;

    case NGX_HTTP_AI_GATEWAY_LOG_KEY_DLP_ACTION:
        /* no DLP in this gateway: never an action */
        f->type = NGX_HTTP_AI_GATEWAY_VALUE_NULL;
        return;

    case NGX_HTTP_AI_GATEWAY_LOG_KEY_SUCCESS:
        f->num = (rec->flags & NGX_HTTP_AI_GATEWAY_LOG_SUCCESS) ? 1 : 0;
        return;

    case NGX_HTTP_AI_GATEWAY_LOG_KEY_CACHED:
        f->num = (rec->flags & NGX_HTTP_AI_GATEWAY_LOG_CACHED) ? 1 : 0;
        return;

    case NGX_HTTP_AI_GATEWAY_LOG_KEY_COMPATIBILITY_MODE:
        f->num = (rec->flags & NGX_HTTP_AI_GATEWAY_LOG_COMPAT) ? 1 : 0;
        return;

    case NGX_HTTP_AI_GATEWAY_LOG_KEY_AUTHENTICATION:
        f->num = (rec->flags & NGX_HTTP_AI_GATEWAY_LOG_AUTHENTICATED) ? 1 : 0;
        return;

    case NGX_HTTP_AI_GATEWAY_LOG_KEY_WHOLESALE:
        /* no unified billing here */
        f->num = 0;
        return;

    case NGX_HTTP_AI_GATEWAY_LOG_KEY_COST:

        if (!(rec->flags & NGX_HTTP_AI_GATEWAY_LOG_COST)) {
            f->type = NGX_HTTP_AI_GATEWAY_VALUE_NULL;
        }

        f->num = rec->cost;
        return;

    case NGX_HTTP_AI_GATEWAY_LOG_KEY_TOKENS:
    case NGX_HTTP_AI_GATEWAY_LOG_KEY_TOKENS_IN:
    case NGX_HTTP_AI_GATEWAY_LOG_KEY_TOKENS_OUT:

        if (!usage) {
            f->type = NGX_HTTP_AI_GATEWAY_VALUE_NULL;
            return;
        }

        f->num = (key == NGX_HTTP_AI_GATEWAY_LOG_KEY_TOKENS_OUT)
                 ? 0 : (double) (rec->input + rec->cached + rec->cache_write);

        if (key != NGX_HTTP_AI_GATEWAY_LOG_KEY_TOKENS_IN) {
            f->num += (double) rec->output;
        }

        return;

    case NGX_HTTP_AI_GATEWAY_LOG_KEY_DURATION:
        f->num = (double) rec->duration;
        return;

    default: /* NGX_HTTP_AI_GATEWAY_LOG_KEY_FEEDBACK */

        if (rec->feedback == 0) {
            f->type = NGX_HTTP_AI_GATEWAY_VALUE_NULL;
        }

        f->num = (double) rec->feedback;
        return;
    }

    /* a string field: an empty one is null */

    f->type = f->str.len ? NGX_HTTP_AI_GATEWAY_VALUE_STRING
                         : NGX_HTTP_AI_GATEWAY_VALUE_NULL;
}


static ngx_uint_t
ngx_http_ai_gateway_log_test(ngx_http_ai_gateway_log_field_t *f,
    ngx_uint_t op, ngx_http_ai_gateway_query_value_t *v)
{
    ngx_int_t  cmp;

    if (v->type == NGX_HTTP_AI_GATEWAY_VALUE_NULL
        || f->type == NGX_HTTP_AI_GATEWAY_VALUE_NULL)
    {
        /* null equals null only; nothing is above or below it */

        return op == NGX_HTTP_AI_GATEWAY_OP_EQ && v->type == f->type;
    }

    if (op == NGX_HTTP_AI_GATEWAY_OP_CONTAINS) {
        return f->type == NGX_HTTP_AI_GATEWAY_VALUE_STRING
               && ngx_http_ai_gateway_log_contains(&f->str, &v->str);
    }

    if (f->type == NGX_HTTP_AI_GATEWAY_VALUE_STRING) {

        if (v->type != NGX_HTTP_AI_GATEWAY_VALUE_STRING) {
            return 0;
        }

        cmp = ngx_memn2cmp(f->str.data, v->str.data, f->str.len, v->str.len);

    } else {

        if (v->type != NGX_HTTP_AI_GATEWAY_VALUE_NUMBER) {
            return 0;
        }

        cmp = (f->num < v->num) ? -1 : (f->num > v->num) ? 1 : 0;
    }

    switch (op) {

    case NGX_HTTP_AI_GATEWAY_OP_EQ:
        return cmp == 0;

    case NGX_HTTP_AI_GATEWAY_OP_LT:
        return cmp < 0;

    case NGX_HTTP_AI_GATEWAY_OP_GT:
        return cmp > 0;

    case NGX_HTTP_AI_GATEWAY_OP_LE:
        return cmp <= 0;

    case NGX_HTTP_AI_GATEWAY_OP_GE:
        return cmp >= 0;

    default:
        return 0;
    }
}


/*
 * metadata.key and metadata.value: each entry's key, or its value as
 * text; the two are matched independently, as the hosted API does.
 */

static ngx_uint_t
ngx_http_ai_gateway_log_metadata_test(ngx_pool_t *pool,
    ngx_http_ai_gateway_log_record_t *rec,
    ngx_http_ai_gateway_query_filter_t *f)
{
    size_t                            i;
    yajl_val                          v, e;
    ngx_str_t                        *m;
    ngx_uint_t                        j, any, op;
    ngx_http_ai_gateway_log_field_t   field;

    m = &rec->str[NGX_HTTP_AI_GATEWAY_LOG_METADATA];

    v = NULL;

    if (m->len
        && ngx_http_ai_gateway_json_parse(pool, m->data, m->len, &v)
           != NGX_OK)
    {
        v = NULL;
    }

    op = (f->op == NGX_HTTP_AI_GATEWAY_OP_NEQ) ? NGX_HTTP_AI_GATEWAY_OP_EQ
                                               : f->op;
    any = 0;

    if (!YAJL_IS_OBJECT(v) || v->u.object.len == 0) {
        field.type = NGX_HTTP_AI_GATEWAY_VALUE_NULL;

        for (j = 0; j < f->nvalues && !any; j++) {
            any = ngx_http_ai_gateway_log_test(&field, op, &f->values[j]);
        }

        return (f->op == NGX_HTTP_AI_GATEWAY_OP_NEQ) ? !any : any;
    }

    for (i = 0; i < v->u.object.len && !any; i++) {

        field.type = NGX_HTTP_AI_GATEWAY_VALUE_STRING;

        if (f->key == NGX_HTTP_AI_GATEWAY_LOG_KEY_METADATA_KEY) {
            field.str.data = (u_char *) v->u.object.keys[i];

        } else {
            e = v->u.object.values[i];

            if (YAJL_IS_STRING(e)) {
                field.str.data = (u_char *) e->u.string;

            } else if (YAJL_IS_NUMBER(e)) {
                field.str.data = (u_char *) e->u.number.r;

            } else if (YAJL_IS_TRUE(e)) {
                field.str.data = (u_char *) "true";

            } else if (YAJL_IS_FALSE(e)) {
                field.str.data = (u_char *) "false";

            } else {
                continue;
            }
        }

        field.str.len = ngx_strlen(field.str.data);

        for (j = 0; j < f->nvalues && !any; j++) {
            any = ngx_http_ai_gateway_log_test(&field, op, &f->values[j]);
        }
    }

    return (f->op == NGX_HTTP_AI_GATEWAY_OP_NEQ) ? !any : any;
}


/* part is in s, in any case */

static ngx_uint_t
ngx_http_ai_gateway_log_contains(ngx_str_t *s, ngx_str_t *part)
{
    size_t  i, j;

    if (part->len == 0) {
        return 1;
    }

    if (part->len > s->len) {
        return 0;
    }

    for (i = 0; i + part->len <= s->len; i++) {
        for (j = 0; j < part->len; j++) {
            if (ngx_tolower(s->data[i + j]) != ngx_tolower(part->data[j])) {
                break;
            }
        }

        if (j == part->len) {
            return 1;
        }
    }

    return 0;
}


/*
 * The record's key in an order other than created_at; what a record does
 * not have (a cost, tokens) sorts below every value; strings by their
 * first NGX_HTTP_AI_GATEWAY_LOG_SORT_STR bytes.
 */

void
ngx_http_ai_gateway_log_sort_key(ngx_http_ai_gateway_log_record_t *rec,
    ngx_uint_t order, ngx_http_ai_gateway_log_sort_t *key)
{
    ngx_str_t  *s;

    ngx_memzero(key, sizeof(ngx_http_ai_gateway_log_sort_t));

    key->created_at = rec->created_at;
    ngx_memcpy(key->id, rec->id, NGX_HTTP_AI_GATEWAY_LOG_ID_LEN);

    s = NULL;

    switch (order) {

    case NGX_HTTP_AI_GATEWAY_LOG_ORDER_PROVIDER:
        s = &rec->str[NGX_HTTP_AI_GATEWAY_LOG_PROVIDER];
        break;

    case NGX_HTTP_AI_GATEWAY_LOG_ORDER_MODEL:
        s = &rec->str[NGX_HTTP_AI_GATEWAY_LOG_MODEL];
        break;

    case NGX_HTTP_AI_GATEWAY_LOG_ORDER_MODEL_TYPE:
        s = &rec->str[NGX_HTTP_AI_GATEWAY_LOG_MODEL_TYPE];
        break;

    case NGX_HTTP_AI_GATEWAY_LOG_ORDER_SUCCESS:
        key->num = (rec->flags & NGX_HTTP_AI_GATEWAY_LOG_SUCCESS) ? 1 : 0;
        break;

    case NGX_HTTP_AI_GATEWAY_LOG_ORDER_CACHED:
        key->num = (rec->flags & NGX_HTTP_AI_GATEWAY_LOG_CACHED) ? 1 : 0;
        break;

    case NGX_HTTP_AI_GATEWAY_LOG_ORDER_COST:
        key->num = (rec->flags & NGX_HTTP_AI_GATEWAY_LOG_COST) ? rec->cost
                                                               : -1e300;
        break;

    case NGX_HTTP_AI_GATEWAY_LOG_ORDER_TOKENS_IN:
        key->num = (rec->flags & NGX_HTTP_AI_GATEWAY_LOG_USAGE)
                   ? (double) (rec->input + rec->cached + rec->cache_write)
                   : -1;
        break;

    case NGX_HTTP_AI_GATEWAY_LOG_ORDER_TOKENS_OUT:
        key->num = (rec->flags & NGX_HTTP_AI_GATEWAY_LOG_USAGE)
                   ? (double) rec->output : -1;
        break;

    case NGX_HTTP_AI_GATEWAY_LOG_ORDER_DURATION:
        key->num = (double) rec->duration;
        break;

    case NGX_HTTP_AI_GATEWAY_LOG_ORDER_FEEDBACK:
        key->num = (double) rec->feedback;
        break;

    default: /* created_at */
        key->num = (double) rec->created_at;
        break;
    }

    if (s && s->len) {
        key->len = ngx_min(s->len, NGX_HTTP_AI_GATEWAY_LOG_SORT_STR);
        ngx_memcpy(key->str, s->data, key->len);
    }
}


/* ascending: the order's key, then created_at, then the id */

ngx_int_t
ngx_http_ai_gateway_log_sort_cmp(ngx_http_ai_gateway_log_sort_t *a,
    ngx_http_ai_gateway_log_sort_t *b, ngx_uint_t order)
{
    ngx_int_t  rc;

    switch (order) {

    case NGX_HTTP_AI_GATEWAY_LOG_ORDER_PROVIDER:
    case NGX_HTTP_AI_GATEWAY_LOG_ORDER_MODEL:
    case NGX_HTTP_AI_GATEWAY_LOG_ORDER_MODEL_TYPE:
        rc = ngx_memn2cmp(a->str, b->str, a->len, b->len);
        break;

    default:
        rc = (a->num < b->num) ? -1 : (a->num > b->num) ? 1 : 0;
    }

    if (rc) {
        return rc;
    }

    if (a->created_at != b->created_at) {
        return (a->created_at < b->created_at) ? -1 : 1;
    }

    return ngx_memcmp(a->id, b->id, NGX_HTTP_AI_GATEWAY_LOG_ID_LEN);
}


/*
 * A header or argument name that names a credential: the providers' own
 * (Authorization, x-api-key, api-key, x-goog-api-key, key=), the
 * gateway's (cf-aig-authorization), cookies, and any name with "key",
 * "token", "secret", "passw", "auth", "cookie", "credential", "sig" or
 * "session" in it, in any case.  A table gives, for each byte, the
 * words starting with it: most bytes of a name start none, and cost a
 * load and a test.
 */

typedef struct {
    const char                    *rest;       /* after the first byte */
    size_t                         len;        /* of rest */
} ngx_http_ai_gateway_log_word_t;


static ngx_http_ai_gateway_log_word_t  ngx_http_ai_gateway_log_words[][3] = {
    /* 0: none */  { { NULL, 0 } },
    /* 1: a */     { { "uth", 3 }, { NULL, 0 } },
    /* 2: c */     { { "ookie", 5 }, { "redential", 9 }, { NULL, 0 } },
    /* 3: k */     { { "ey", 2 }, { NULL, 0 } },
    /* 4: p */     { { "assw", 4 }, { NULL, 0 } },
    /* 5: s */     { { "ecret", 5 }, { "ig", 2 }, { "ession", 6 } },
    /* 6: t */     { { "oken", 4 }, { NULL, 0 } }
};


ngx_uint_t
ngx_http_ai_gateway_log_secret_name(u_char *name, size_t len)
{
    size_t                           i, j;
    ngx_uint_t                       w, k;
    ngx_http_ai_gateway_log_word_t  *word;

    static u_char  first[256] = {
        ['a'] = 1, ['A'] = 1, ['c'] = 2, ['C'] = 2, ['k'] = 3, ['K'] = 3,
        ['p'] = 4, ['P'] = 4, ['s'] = 5, ['S'] = 5, ['t'] = 6, ['T'] = 6
    };

    for (i = 0; i < len; i++) {
        w = first[name[i]];

        if (w == 0) {
            continue;
        }

        for (k = 0; k < 3; k++) {
            word = &ngx_http_ai_gateway_log_words[w][k];

            if (word->rest == NULL) {
                break;
            }

            if (word->len > len - i - 1) {
                continue;
            }

            for (j = 0; j < word->len; j++) {
                if (ngx_tolower(name[i + 1 + j]) != (u_char) word->rest[j]) {
                    break;
                }
            }

            if (j == word->len) {
                return 1;
            }
        }
    }

    return 0;
}
