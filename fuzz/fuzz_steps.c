
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/*
 * A Universal Endpoint body.  Whatever it is, what the parser accepts
 * must be writable into a provider request as it is: every header name
 * a token, every value, the "authorization" and the endpoint free of
 * control characters, and no "." or ".." segment in the endpoint's path.
 */


#include "fuzz.h"
#include "ngx_http_ai_gateway_check.h"
#include "ngx_http_ai_gateway_steps.h"


static ngx_uint_t
fuzz_known(void *data, ngx_str_t *provider)
{
    /* every provider but "x...", so that both paths are taken */
    return provider->len == 0 || provider->data[0] != 'x';
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                           *q;
    ngx_int_t                         rc;
    ngx_uint_t                        i, k;
    ngx_pool_t                       *pool;
    ngx_keyval_t                     *kv;
    ngx_http_ai_gateway_steps_t       s;
    ngx_http_ai_gateway_step_spec_t  *st;

    pool = ngx_create_pool(4096, NULL);

    s.known = fuzz_known;
    s.data = NULL;

    rc = ngx_http_ai_gateway_steps_parse(pool, (u_char *) data, size, &s);

    if (rc == NGX_DECLINED && s.error.len == 0) {
        abort();
    }

    if (rc == NGX_OK) {
        if (s.nsteps == 0 || s.nsteps > NGX_HTTP_AI_GATEWAY_MAX_STEPS) {
            abort();
        }

        for (i = 0; i < s.nsteps; i++) {
            st = &s.steps[i];

            if (st->provider.len == 0
                || ngx_http_ai_gateway_check_query(st->endpoint.data,
                                                   st->endpoint.len)
                   != NGX_OK
                || ngx_http_ai_gateway_check_value(st->authorization.data,
                                                   st->authorization.len)
                   != NGX_OK)
            {
                abort();
            }

            q = ngx_strlchr(st->endpoint.data,
                            st->endpoint.data + st->endpoint.len, '?');

            if (ngx_http_ai_gateway_check_segments(st->endpoint.data,
                       (q ? q : st->endpoint.data + st->endpoint.len)
                       - st->endpoint.data)
                != NGX_OK)
            {
                abort();
            }

            kv = st->headers.elts;

            for (k = 0; k < st->headers.nelts; k++) {
                if (ngx_http_ai_gateway_check_name(kv[k].key.data,
                                                   kv[k].key.len)
                    != NGX_OK
                    || ngx_http_ai_gateway_check_value(kv[k].value.data,
                                                       kv[k].value.len)
                       != NGX_OK)
                {
                    abort();
                }
            }

            if (st->body.len) {
                fuzz_json(st->body.data, st->body.len);
            }
        }
    }

    ngx_destroy_pool(pool);

    return 0;
}
