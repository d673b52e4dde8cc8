
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/* the one validator of what is written into an HTTP head */


#include "unit.h"
#include "ngx_http_ai_gateway_check.h"


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
