
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/* the one validator of what is written into an HTTP head */


#include "unit.h"
#include "ngx_http_ai_gateway_check.h"
#include "ngx_http_ai_gateway_steps.h"


typedef ngx_int_t (*unit_check_pt)(u_char *p, size_t len);


/* every byte value, alone after a leading "/" (paths) or "a" */

static void
unit_check_class(const char *name, unit_check_pt check, const char *allowed,
    ngx_uint_t ranges)
{
    u_char      buf[2];
    ngx_uint_t  c, ok, want;

    for (c = 0; c < 256; c++) {
        buf[0] = (check == ngx_http_ai_gateway_check_path) ? '/' : 'a';
        buf[1] = (u_char) c;

        want = (strchr(allowed, (int) c) != NULL && c != 0)
               || ((ranges & 1) && c >= 0x21 && c <= 0x7e
                   && !strchr("?#", (int) c))
               || ((ranges & 2) && c >= 0x80)
               || ((ranges & 4) && c == '?')
               || ((ranges & 8) && c == ' ');

        ok = (check(buf, 2) == NGX_OK);

        unit_check(ok == want, "%s: byte 0x%02x %s", name, (unsigned) c,
                   want ? "refused" : "allowed");
    }
}


void
unit_checks(void)
{
    unit_check_class("name", ngx_http_ai_gateway_check_name,
                     "!#$%&'*+-.^_`|~0123456789"
                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "abcdefghijklmnopqrstuvwxyz", 0);

    unit_check_class("value", ngx_http_ai_gateway_check_value, "\t#?",
                     1 | 2 | 8);

    unit_check_class("path", ngx_http_ai_gateway_check_path, "", 1);

    unit_check_class("query", ngx_http_ai_gateway_check_query, "", 1 | 4);

    unit_check_class("host", ngx_http_ai_gateway_check_host,
                     "-._:[]0123456789"
                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "abcdefghijklmnopqrstuvwxyz", 0);

    unit_check(ngx_http_ai_gateway_check_name((u_char *) "", 0)
               == NGX_DECLINED, "empty name allowed");
    unit_check(ngx_http_ai_gateway_check_host((u_char *) "", 0)
               == NGX_DECLINED, "empty host allowed");
    unit_check(ngx_http_ai_gateway_check_path((u_char *) "", 0)
               == NGX_DECLINED, "empty path allowed");
    unit_check(ngx_http_ai_gateway_check_path((u_char *) "v1/x", 4)
               == NGX_DECLINED, "path without \"/\" allowed");
    unit_check(ngx_http_ai_gateway_check_value((u_char *) "", 0) == NGX_OK,
               "empty value refused");
    unit_check(ngx_http_ai_gateway_check_value(
                   (u_char *) "Bearer a\r\n\r\nGET / HTTP/1.1", 25)
               == NGX_DECLINED, "CRLF in a value allowed");

    {
        ngx_uint_t   k;

        static struct {
            const char  *path;
            ngx_int_t    rc;
        } segs[] = {
            { "/v1/a/g/openai/chat/completions", NGX_OK },
            { "/x/.../y", NGX_OK },
            { "/x/.y/..z", NGX_OK },
            { "/x/%2e%2e%2e", NGX_OK },
            { "/model/arn%3Aaws%2Fprofile%2Fabc/invoke", NGX_OK },
            { "", NGX_OK },
            { ".", NGX_DECLINED },
            { "/..", NGX_DECLINED },
            { "/a/./b", NGX_DECLINED },
            { "/a/../b", NGX_DECLINED },
            { "/a/%2e%2E/b", NGX_DECLINED },
            { "/a/.%2e/b", NGX_DECLINED },
            { "/x%2F..%2F..%2Fopenai/v1", NGX_DECLINED },
            { "/x%2f..%2fy", NGX_DECLINED },
            { "..%2Fsecret", NGX_DECLINED },
            { "/a\\..\\b", NGX_DECLINED },
            { "/a%5C..%5cb", NGX_DECLINED },
            { "/a/..", NGX_DECLINED },
            { "/a/%2E", NGX_DECLINED },
        };

        for (k = 0; k < sizeof(segs) / sizeof(segs[0]); k++) {
            unit_check(ngx_http_ai_gateway_check_segments(
                           (u_char *) segs[k].path, strlen(segs[k].path))
                       == segs[k].rc, "segments of \"%s\"", segs[k].path);
        }
    }
}


/* the Universal Endpoint's steps parser on the cases of t/unit/cases/steps */

static ngx_uint_t
unit_known(void *data, ngx_str_t *provider)
{
    return !(provider->len == 1 && provider->data[0] == 'x');
}


static ngx_int_t
unit_steps_run(const char *file, ngx_http_ai_gateway_steps_t *s,
    ngx_pool_t *pool)
{
    u_char     *p;
    size_t      len;
    ngx_int_t   rc;

    p = unit_read(file, &len);
    if (p == NULL) {
        unit_check(0, "cannot read %s", file);
        return NGX_ERROR;
    }

    s->known = unit_known;
    s->data = NULL;

    rc = ngx_http_ai_gateway_steps_parse(pool, p, len, s);

    free(p);

    return rc;
}


void
unit_steps(void)
{
    ngx_int_t                     rc;
    ngx_pool_t                   *pool;
    ngx_keyval_t                 *kv;
    ngx_http_ai_gateway_steps_t   s;

    pool = ngx_create_pool(4096, NULL);

    rc = unit_steps_run("t/unit/cases/steps/fallback.json", &s, pool);

    unit_check(rc == NGX_OK && s.nsteps == 2, "fallback: two steps");

    if (rc == NGX_OK) {
        unit_check(s.steps[1].provider.len == 6
                   && ngx_strncmp(s.steps[1].provider.data, "openai", 6)
                      == 0, "fallback: provider in lowercase");
        unit_check(s.steps[1].endpoint.len == 20
                   && ngx_strncmp(s.steps[1].endpoint.data,
                                  "chat/completions?x=1", 20) == 0,
                   "fallback: endpoint without its \"/\"");
        unit_check(s.steps[1].config[1].value.len == 1
                   && s.steps[1].config[1].value.data[0] == '3',
                   "fallback: maxAttempts as written");
        kv = s.steps[0].headers.elts;
        unit_check(s.steps[0].headers.nelts == 3
                   && kv[2].value.len == 1 && kv[2].value.data[0] == '2',
                   "fallback: a number header as written");
    }

    rc = unit_steps_run("t/unit/cases/steps/single.json", &s, pool);
    unit_check(rc == NGX_OK && s.nsteps == 1
               && s.steps[0].has_authorization_header
               && s.steps[0].headers.nelts == 4,
               "single: one step, null header left out");

    rc = unit_steps_run("t/unit/cases/steps/bad.json", &s, pool);
    unit_check(rc == NGX_DECLINED && !s.unknown
               && ngx_strlchr(s.error.data, s.error.data + s.error.len, '\r')
                  == NULL, "bad: refused, no value quoted");

    rc = unit_steps_run("t/unit/cases/steps/many.json", &s, pool);
    unit_check(rc == NGX_DECLINED
               && s.error.len > 28
               && ngx_strncmp(s.error.data, "Universal Endpoint step 1: "
                              "\"endpoint\"", 37) == 0,
               "many: the first bad step named");

    rc = ngx_http_ai_gateway_steps_parse(pool, (u_char *)
                                         "[{\"provider\":\"x\"}]", 18, &s);
    unit_check(rc == NGX_DECLINED && s.unknown, "unknown provider");

    ngx_destroy_pool(pool);
}
