
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/*
 * byte 0: what is fuzzed (bits 0-1: the meter on JSON, SSE or AWS
 * event-stream bytes, or 3: the request side), strip (bit 2), the body
 * complete (bit 3), the request side's part (bits 4-5: include_usage,
 * cf-aig-metadata, cf-aig-custom-cost, a price file); byte 1: a seed for
 * the split points; then the bytes.
 *
 * The meter reads the bytes whole, then in pieces whose sizes come from
 * the seed and the bytes: the counts, the model and the bytes kept (the
 * usage chunk left out) must be the same.  What the request side writes
 * must be one JSON text: the body with include_usage asks for usage (a
 * second pass finds nothing to add), the metadata kept reads back the
 * same.
 */


#include "fuzz.h"
#include "ngx_http_ai_gateway_usage.h"


typedef struct {
    ngx_http_ai_gateway_tokens_t   t;
    u_char                         model[NGX_HTTP_AI_GATEWAY_METER_MODEL];
    size_t                         model_len;
    u_char                        *kept;
    size_t                         kept_len;
} fuzz_meter_t;


static void
fuzz_meter(ngx_uint_t flags, const uint8_t *p, size_t len, ngx_uint_t seed,
    fuzz_meter_t *o)
{
    u_char                       *pos, *last, *start;
    size_t                        off, n;
    ngx_int_t                     rc;
    ngx_str_t                     model;
    ngx_uint_t                    drop;
    ngx_pool_t                   *pool;
    ngx_http_ai_gateway_meter_t  *m;

    pool = ngx_create_pool(4096, NULL);

    m = ngx_http_ai_gateway_meter_create(pool, flags & 3, (flags >> 2) & 1);
    if (m == NULL) {
        abort();
    }

    o->kept = malloc(len + 1);
    o->kept_len = 0;

    start = (u_char *) p;

    for (off = 0; off < len; off += n) {

        if (seed == 0) {
            n = len - off;

        } else {
            n = 1 + (p[off] ^ seed) % (seed & 0x3f ? seed & 0x3f : 64);
            n = ngx_min(n, len - off);
        }

        pos = (u_char *) p + off;
        last = pos + n;

        for ( ;; ) {
            rc = ngx_http_ai_gateway_meter_feed(m, &pos, last, &drop);

            if (rc == NGX_ERROR) {
                abort();
            }

            if (rc == NGX_AGAIN) {
                if (pos != last) {
                    abort();
                }

                break;
            }

            if (pos < start || pos > last) {
                abort();
            }

            if (!drop) {
                memcpy(o->kept + o->kept_len, start, pos - start);
                o->kept_len += pos - start;
            }

            start = pos;
        }
    }

    memcpy(o->kept + o->kept_len, start, p + len - start);
    o->kept_len += p + len - start;

    ngx_http_ai_gateway_meter_finish(m, (flags >> 3) & 1, &o->t);

    ngx_http_ai_gateway_meter_model(m, &model);

    if (model.len > NGX_HTTP_AI_GATEWAY_METER_MODEL) {
        abort();
    }

    memcpy(o->model, model.data, model.len);
    o->model_len = model.len;

    ngx_destroy_pool(pool);
}


static void
fuzz_request(ngx_uint_t part, const uint8_t *p, size_t len)
{
    u_char                         *copy, name[64];
    double                          total;
    ngx_int_t                       rc;
    ngx_str_t                       out, again, err, provider, model;
    ngx_pool_t                     *pool;
    ngx_http_ai_gateway_price_t     price;
    ngx_http_ai_gateway_prices_t   *pp;
    ngx_http_ai_gateway_tokens_t    t;

    pool = ngx_create_pool(4096, NULL);

    switch (part) {

    case 0:
        rc = ngx_http_ai_gateway_meter_request(pool, (u_char *) p, len, &out);

        if (rc == NGX_OK) {
            fuzz_json(out.data, out.len);

            if (ngx_http_ai_gateway_meter_request(pool, out.data, out.len,
                                                  &again)
                != NGX_DECLINED)
            {
                fprintf(stderr, "include_usage not asked for: %.*s\n",
                        (int) out.len, out.data);
                abort();
            }

        } else if (rc != NGX_DECLINED) {
            abort();
        }

        break;

    case 1:
        rc = ngx_http_ai_gateway_metadata_parse(pool, (u_char *) p, len,
                                                &out);

        if (rc == NGX_OK) {
            fuzz_json(out.data, out.len);

            /* a copy: what is kept is kept again, the same */

            copy = malloc(out.len);
            memcpy(copy, out.data, out.len);

            if (ngx_http_ai_gateway_metadata_parse(pool, copy, out.len,
                                                   &again)
                != NGX_OK
                || again.len != out.len
                || memcmp(again.data, copy, out.len) != 0)
            {
                fprintf(stderr, "metadata not stable: %.*s\n",
                        (int) out.len, copy);
                abort();
            }

            free(copy);

        } else if (rc != NGX_DECLINED) {
            abort();
        }

        break;

    case 2:
        rc = ngx_http_ai_gateway_price_custom(pool, (u_char *) p, len, &price,
                                              &total);

        ngx_memzero(&t, sizeof(ngx_http_ai_gateway_tokens_t));
        t.input = 1000;
        t.output = 1000;

        if ((rc == NGX_DONE && !(total >= 0))
            || (rc == NGX_OK
                && !(ngx_http_ai_gateway_price_cost(&price, &t) >= 0)))
        {
            abort();
        }

        break;

    default:
        pp = ngx_http_ai_gateway_prices_create(pool);

        if (ngx_http_ai_gateway_prices_add(pp, (u_char *) p, len, &err)
            == NGX_OK)
        {
            /* names from the bytes themselves */

            ngx_str_set(&provider, "openai");
            model.data = name;
            model.len = ngx_min(len, sizeof(name));
            memcpy(name, p, model.len);

            (void) ngx_http_ai_gateway_prices_find(pp, &provider, &model);
        }
    }

    ngx_destroy_pool(pool);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char        buf[NGX_HTTP_AI_GATEWAY_PRICE_LEN];
    fuzz_meter_t  whole, split;

    if (size < 2) {
        return 0;
    }

    if ((data[0] & 3) == 3) {
        fuzz_request((data[0] >> 4) & 3, data + 2, size - 2);
        return 0;
    }

    fuzz_meter(data[0], data + 2, size - 2, 0, &whole);
    fuzz_meter(data[0], data + 2, size - 2, data[1] | 1, &split);

    if (ngx_memcmp(&whole.t, &split.t, sizeof(ngx_http_ai_gateway_tokens_t))
        != 0
        || whole.model_len != split.model_len
        || memcmp(whole.model, split.model, whole.model_len) != 0
        || whole.kept_len != split.kept_len
        || memcmp(whole.kept, split.kept, whole.kept_len) != 0)
    {
        fprintf(stderr, "split differs: %llu/%llu/%llu %llu/%llu/%llu\n",
                (unsigned long long) whole.t.input,
                (unsigned long long) whole.t.output,
                (unsigned long long) whole.kept_len,
                (unsigned long long) split.t.input,
                (unsigned long long) split.t.output,
                (unsigned long long) split.kept_len);
        abort();
    }

    /* the counts have a cost, printed within its buffer */

    (void) ngx_http_ai_gateway_price_print(buf, (double) whole.t.input
                                                * 0.000001);

    free(whole.kept);
    free(split.kept);

    return 0;
}
