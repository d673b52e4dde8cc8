
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/*
 * The request log record (its bytes, written and read back; crafted and
 * cut ones refused; its JSON; filters matched against it) and the
 * management API's query parser (arguments, filters in both encodings,
 * what is refused, numbers and dates).
 */


#include "unit.h"
#include "ngx_http_ai_gateway_log.h"
#include "ngx_http_ai_gateway_query.h"


static void
unit_record(ngx_http_ai_gateway_log_record_t *rec)
{
    ngx_memzero(rec, sizeof(ngx_http_ai_gateway_log_record_t));

    ngx_memcpy(rec->id, "01ARZ3NDEKTSV4RRFFQ69G5FAV", 26);
    rec->flags = NGX_HTTP_AI_GATEWAY_LOG_SUCCESS
                 | NGX_HTTP_AI_GATEWAY_LOG_USAGE
                 | NGX_HTTP_AI_GATEWAY_LOG_COST;
    rec->created_at = 1714564800250ULL;
    rec->duration = 1234;
    rec->input = 10;
    rec->cached = 5;
    rec->output = 7;
    rec->cost = 0.000123;
    rec->status = 200;
    rec->step = 1;
    rec->feedback = -1;
    ngx_str_set(&rec->str[NGX_HTTP_AI_GATEWAY_LOG_PROVIDER], "openai");
    ngx_str_set(&rec->str[NGX_HTTP_AI_GATEWAY_LOG_MODEL], "gpt-4o");
    ngx_str_set(&rec->str[NGX_HTTP_AI_GATEWAY_LOG_METADATA],
                "{\"user\":\"alice\",\"n\":5,\"ok\":true}");
    ngx_str_set(&rec->str[NGX_HTTP_AI_GATEWAY_LOG_REQUEST_HEAD],
                "POST /x HTTP/1.1\r\nbad: \xff\xfe\r\n"
                "lead: \xf8\x90\x80\x80\r\nsurrogate: \xed\xa0\x80\r\n"
                "ok: \xc3\xa9\xf0\x9f\x98\x80\r\n");
}


static void
unit_log_codec(ngx_pool_t *pool)
{
    u_char                            *p;
    size_t                             i;
    ngx_str_t                          bytes, json;
    ngx_http_ai_gateway_gen_t          gen;
    ngx_http_ai_gateway_log_record_t   rec, d;

    unit_record(&rec);

    unit_check(ngx_http_ai_gateway_log_encode(pool, &rec, &bytes) == NGX_OK,
               "log: encoded");

    unit_check(ngx_http_ai_gateway_log_decode(bytes.data, bytes.len, &d)
               == NGX_OK, "log: decoded");

    unit_check(d.created_at == rec.created_at && d.duration == 1234
               && d.input == 10 && d.cached == 5 && d.output == 7
               && d.cost == rec.cost && d.status == 200 && d.step == 1
               && d.feedback == -1 && d.flags == rec.flags
               && ngx_memcmp(d.id, rec.id, 26) == 0,
               "log: the same numbers back");

    for (i = 0; i < NGX_HTTP_AI_GATEWAY_LOG_NSTR; i++) {
        unit_check(d.str[i].len == rec.str[i].len
                   && (d.str[i].len == 0
                       || ngx_memcmp(d.str[i].data, rec.str[i].data,
                                     d.str[i].len) == 0),
                   "log: string %d back", (int) i);
    }

    /* every shorter prefix, and one byte more, are no record */

    for (i = 0; i < bytes.len; i++) {
        if (ngx_http_ai_gateway_log_decode(bytes.data, i, &d) != NGX_DECLINED)
        {
            unit_check(0, "log: a record cut at %d accepted", (int) i);
            break;
        }
    }

    p = ngx_pnalloc(pool, bytes.len + 1);
    ngx_memcpy(p, bytes.data, bytes.len);
    p[bytes.len] = 'x';

    unit_check(ngx_http_ai_gateway_log_decode(p, bytes.len + 1, &d)
               == NGX_DECLINED, "log: a byte too many refused");

    /* crafted fields */

    ngx_memcpy(p, bytes.data, bytes.len);
    p[0] = 'X';
    unit_check(ngx_http_ai_gateway_log_decode(p, bytes.len, &d)
               == NGX_DECLINED, "log: another magic refused");

    ngx_memcpy(p, bytes.data, bytes.len);
    p[7] = 0x80;
    unit_check(ngx_http_ai_gateway_log_decode(p, bytes.len, &d)
               == NGX_DECLINED, "log: unknown flags refused");

    ngx_memcpy(p, bytes.data, bytes.len);
    p[4 + 4 + 88 + 4] = 3;
    unit_check(ngx_http_ai_gateway_log_decode(p, bytes.len, &d)
               == NGX_DECLINED, "log: feedback 2 refused");

    ngx_memcpy(p, bytes.data, bytes.len);
    p[4 + 4 + 88 + 5] = 101;
    unit_check(ngx_http_ai_gateway_log_decode(p, bytes.len, &d)
               == NGX_DECLINED, "log: score 101 refused");

    ngx_memcpy(p, bytes.data, bytes.len);
    p[4 + 4 + 88 + 6] = 'I';
    unit_check(ngx_http_ai_gateway_log_decode(p, bytes.len, &d)
               == NGX_DECLINED, "log: an id out of the alphabet refused");

    ngx_memcpy(p, bytes.data, bytes.len);
    p[4 + 4 + 88 + 6 + 26 + 3] = 0x7f;
    unit_check(ngx_http_ai_gateway_log_decode(p, bytes.len, &d)
               == NGX_DECLINED, "log: a string longer than the rest refused");

    /* the JSON: the list's item and the single log, valid UTF-8 */

    (void) ngx_http_ai_gateway_log_decode(bytes.data, bytes.len, &d);

    unit_check(ngx_http_ai_gateway_gen_init(&gen, pool) == NGX_OK
               && ngx_http_ai_gateway_log_json(&gen, &d, 1) == NGX_OK
               && ngx_http_ai_gateway_gen_done(&gen, &json) == NGX_OK,
               "log: JSON written");

    unit_check(ngx_strnstr(json.data, "\"created_at\":"
                           "\"2024-05-01T12:00:00.250Z\"", json.len) != NULL,
               "log: created_at in RFC 3339: %.*s", (int) json.len,
               json.data);
    unit_check(ngx_strnstr(json.data, "\"tokens_in\":15", json.len) != NULL,
               "log: tokens_in = input + cached");
    unit_check(ngx_strnstr(json.data, "\"cost\":0.000123", json.len) != NULL,
               "log: the cost");
    unit_check(ngx_strnstr(json.data, "\"metadata\":{\"user\":\"alice\"",
                           json.len) != NULL, "log: metadata, an object");
    unit_check(ngx_strnstr(json.data, "bad: ??", json.len) != NULL,
               "log: bytes that are not UTF-8 written as ?");
    unit_check(ngx_strnstr(json.data, "lead: ????", json.len) != NULL,
               "log: a lead byte above F4 is no UTF-8");
    unit_check(ngx_strnstr(json.data, "surrogate: ???", json.len) != NULL,
               "log: nor a surrogate");
    unit_check(ngx_strnstr(json.data, "ok: \xc3\xa9\xf0\x9f\x98\x80",
                           json.len) != NULL, "log: UTF-8 kept as it is");
    unit_check(ngx_strnstr(json.data, "\"score\":null", json.len) != NULL,
               "log: no score: null");

    /* PATCHed fields kept apart */

    {
        ngx_str_t  f, c, m;

        ngx_str_set(&f, "1");
        ngx_str_set(&c, "100");
        ngx_str_set(&m, "null");

        unit_check(ngx_http_ai_gateway_log_override(&d, &f, &c, &m) == NGX_OK
                   && d.feedback == 1 && d.score == 100
                   && (d.flags & NGX_HTTP_AI_GATEWAY_LOG_SCORE),
                   "log: overrides applied");

        ngx_str_set(&c, "101");
        unit_check(ngx_http_ai_gateway_log_override(&d, NULL, &c, NULL)
                   == NGX_DECLINED, "log: a score of 101 refused");

        ngx_str_set(&f, "2");
        unit_check(ngx_http_ai_gateway_log_override(&d, &f, NULL, NULL)
                   == NGX_DECLINED, "log: a feedback of 2 refused");
    }
}


static ngx_int_t
unit_filters(ngx_pool_t *pool, const char *query, ngx_array_t *filters,
    ngx_str_t *err)
{
    ngx_str_t    q;
    ngx_array_t  args;

    q.data = (u_char *) query;
    q.len = ngx_strlen(query);

    ngx_str_null(err);

    if (ngx_array_init(filters, pool, 4,
                       sizeof(ngx_http_ai_gateway_query_filter_t))
        != NGX_OK
        || ngx_http_ai_gateway_query_args(pool, &q, &args) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_ai_gateway_query_filters(pool, &args,
                                             ngx_http_ai_gateway_log_keys,
                                             filters, err);
}


static ngx_uint_t
unit_matches(ngx_pool_t *pool, ngx_http_ai_gateway_log_record_t *rec,
    const char *query)
{
    ngx_str_t    err;
    ngx_array_t  filters;

    if (unit_filters(pool, query, &filters, &err) != NGX_OK) {
        fprintf(stderr, "unit: %s: %.*s\n", query, (int) err.len, err.data);
        return 2;
    }

    return ngx_http_ai_gateway_log_match(pool, rec, &filters, NULL);
}


static void
unit_query(ngx_pool_t *pool)
{
    double                             n;
    ngx_str_t                          err;
    ngx_array_t                        filters;
    ngx_http_ai_gateway_log_record_t   rec;

    static const char  *refused[] = {
        "filters=%5B%7B%22key%22%3A%22nope%22%2C%22operator%22%3A%22eq%22"
        "%2C%22value%22%3A%5B1%5D%7D%5D",
        "filters.key=provider&filters.operator=like&filters.value=x",
        "filters.key=cost&filters.operator=gt&filters.value=cheap",
        "filters.key=cost&filters.operator=contains&filters.value=1",
        "filters.key=success&filters.operator=eq&filters.value=maybe",
        "filters.key=duration&filters.operator=gt&filters.value=1"
        "&filters.value=2",
        "filters.key=duration&filters.operator=gt",
        "filters.key=duration&filters.value=1",
        "filters.operator=eq",
        "filters=[",
        "filters=%5B1%5D",
        "filters.key=created_at&filters.operator=gt&filters.value=tomorrow",
        "filters.key=created_at&filters.operator=gt"
        "&filters.value=2024-13-01",
        NULL
    };
    const char  **q;

    unit_record(&rec);
    ngx_str_null(&rec.str[NGX_HTTP_AI_GATEWAY_LOG_REQUEST_HEAD]);

    unit_check(unit_filters(pool, "filters=%5B%7B%22key%22%3A%22nope%22%2C"
                            "%22operator%22%3A%22eq%22%2C%22value%22%3A"
                            "%5B1%5D%7D%5D", &filters, &err) == NGX_DECLINED
               && err.len > 40
               && ngx_strncmp(err.data, "Invalid enum value. Expected 'id' "
                              "| 'created_at'", 47) == 0
               && ngx_strnstr(err.data, "received 'nope'", err.len),
               "query: the hosted API's message: %.*s", (int) err.len,
               err.data);

    for (q = refused; *q; q++) {
        unit_check(unit_filters(pool, *q, &filters, &err) == NGX_DECLINED
                   && err.len, "query: %s refused", *q);
    }

    unit_check(unit_matches(pool, &rec, "filters.key=provider"
                            "&filters.operator=eq&filters.value=openai") == 1,
               "query: provider eq");
    unit_check(unit_matches(pool, &rec, "filters.key=provider"
                            "&filters.operator=neq&filters.value=x"
                            "&filters.value=openai") == 0,
               "query: neq, any value");
    unit_check(unit_matches(pool, &rec, "filters.key=model"
                            "&filters.operator=contains&filters.value=PT-4")
               == 1, "query: contains, any case");
    unit_check(unit_matches(pool, &rec, "filters.key=tokens"
                            "&filters.operator=gt&filters.value=21") == 1,
               "query: tokens = in + out");
    unit_check(unit_matches(pool, &rec, "filters.key=tokens"
                            "&filters.operator=gt&filters.value=22") == 0,
               "query: not above 22");
    unit_check(unit_matches(pool, &rec, "filters.key=cost"
                            "&filters.operator=lt&filters.value=0.001") == 1,
               "query: cost lt");
    unit_check(unit_matches(pool, &rec, "filters.key=feedback"
                            "&filters.operator=eq&filters.value=-1") == 1,
               "query: feedback");
    unit_check(unit_matches(pool, &rec, "filters.key=score"
                            "&filters.operator=eq&filters.value=1") == 2,
               "query: score is no filter key");
    unit_check(unit_matches(pool, &rec, "filters.key=success"
                            "&filters.operator=eq&filters.value=true"
                            "&filters.key=cached&filters.operator=eq"
                            "&filters.value=false") == 1,
               "query: two filters, both");
    unit_check(unit_matches(pool, &rec, "filters.key=metadata.value"
                            "&filters.operator=eq&filters.value=5") == 1,
               "query: metadata.value, a number's text");
    unit_check(unit_matches(pool, &rec, "filters.key=metadata.key"
                            "&filters.operator=neq&filters.value=user") == 0,
               "query: metadata.key neq");
    unit_check(unit_matches(pool, &rec, "filters.key=event_id"
                            "&filters.operator=eq&filters.value=") == 1,
               "query: an empty value is null: no event id");
    unit_check(unit_matches(pool, &rec, "filters.key=created_at"
                            "&filters.operator=gt"
                            "&filters.value=2024-05-01T14%3A00%3A00%2B02%3A00")
               == 1, "query: created_at after an offset date");
    unit_check(unit_matches(pool, &rec, "filters.key=created_at"
                            "&filters.operator=lt"
                            "&filters.value=2024-05-01T12%3A00%3A00.251Z")
               == 1, "query: milliseconds");
    unit_check(unit_matches(pool, &rec, "filters=%5B%7B%22key%22%3A%22step"
                            "%22%7D%5D") == 2, "query: step is no key");
    unit_check(unit_matches(pool, &rec,
                            "filters=%5B%7B%22key%22%3A%22provider%22%2C"
                            "%22operator%22%3A%22eq%22%2C%22value%22%3A"
                            "%22openai%22%7D%5D") == 1,
               "query: JSON, one value not in an array");

    unit_check(ngx_http_ai_gateway_query_number((u_char *) "1e3", 3, &n)
               == NGX_OK && n == 1000, "query: 1e3");
    unit_check(ngx_http_ai_gateway_query_number((u_char *) "0x10", 4, &n)
               == NGX_DECLINED, "query: 0x10 refused");
    unit_check(ngx_http_ai_gateway_query_number((u_char *) "inf", 3, &n)
               == NGX_DECLINED, "query: inf refused");
    unit_check(ngx_http_ai_gateway_query_number((u_char *) "1e999", 5, &n)
               == NGX_DECLINED, "query: 1e999 refused");
    unit_check(ngx_http_ai_gateway_query_date((u_char *) "1970-01-02", 10, &n)
               == NGX_OK && n == 86400000, "query: a date alone");
    unit_check(ngx_http_ai_gateway_query_date(
                   (u_char *) "2000-03-01T00:00:00Z", 20, &n)
               == NGX_OK && n == 951868800000.0,
               "query: after a leap day");
}


/* the names whose values a record redacts, and some it keeps */

static void
unit_log_secret_names(void)
{
    ngx_uint_t  i;

    static const char  *secret[] = {
        "Authorization", "x-api-key", "api-key", "x-goog-api-key",
        "cf-aig-authorization", "Cookie", "Set-Cookie", "key", "KEY",
        "X-Access-Token", "client_secret", "password", "X-Amz-Signature",
        "sessionid", "aws-credential", "sig", "Proxy-Authorization",
        "x-ratelimit-limit-tokens", "apikey", "PASSWD", "token",
        NULL
    };

    static const char  *plain[] = {
        "content-type", "x-ratelimit-limit-requests", "user-agent",
        "accept", "", "ke", "tok", "x-request-id", "host", "secre",
        "passport", "content-length", "anthropic-version", "cf-aig-step",
        "x-stainless-os", "si", "a", "coo", "credentia", "sessio",
        NULL
    };

    for (i = 0; secret[i]; i++) {
        unit_check(ngx_http_ai_gateway_log_secret_name((u_char *) secret[i],
                                                       strlen(secret[i])),
                   "log: \"%s\" names a credential", secret[i]);
    }

    for (i = 0; plain[i]; i++) {
        unit_check(!ngx_http_ai_gateway_log_secret_name((u_char *) plain[i],
                                                        strlen(plain[i])),
                   "log: \"%s\" names no credential", plain[i]);
    }

    /* a word's last byte past the name's end is not read */

    unit_check(!ngx_http_ai_gateway_log_secret_name((u_char *) "x-keyz", 3),
               "log: \"x-k\" (of \"x-keyz\") names no credential");
}


void
unit_logs(void)
{
    ngx_pool_t  *pool;

    pool = ngx_create_pool(4096, NULL);
    if (pool == NULL) {
        unit_check(0, "log: no pool");
        return;
    }

    unit_log_codec(pool);
    unit_log_secret_names();
    unit_query(pool);

    ngx_destroy_pool(pool);
}
