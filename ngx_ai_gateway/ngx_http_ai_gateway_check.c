
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_gateway_check.h"


/*
 * What may be written into an HTTP message head.  Every piece the gateway
 * writes into a provider request line or header, and every header it
 * sends a client from a store, passes one of these checks first, whatever
 * its source: the client, a Universal Endpoint step, a cache entry, the
 * configuration, a token exchange.  Nothing is repaired: a piece that
 * fails is refused whole.
 *
 * Each class is a bitmap of the bytes it allows (RFC 9110, RFC 9112):
 *
 *   name    a token: ALPHA DIGIT ! # $ % & ' * + - . ^ _ ` | ~
 *   value   visible ASCII, space, tab and obs-text (0x80-0xff); no
 *           other control byte (CR, LF and NUL above all)
 *   path    visible ASCII but "?" and "#": an origin-form path, which
 *           must start with "/"
 *   query   visible ASCII but "#"
 *   host    a host name, an IPv4 or a bracketed IPv6 address, and an
 *           optional port: ALPHA DIGIT - . _ : [ ]
 *
 * A path that is written raw must also mean the same to nginx, which picks
 * the location on the normalized URI, and to the provider:
 * ngx_http_ai_gateway_check_segments() refuses "." and ".." segments, in
 * any of their escaped forms.
 */


static uint32_t  ngx_http_ai_gateway_name_bits[] = {
    0x00000000, /* 0000 0000 0000 0000  0000 0000 0000 0000 */

                /* ?>=< ;:98 7654 3210  /.-, +*)( '&%$ #"!  */
    0x03ff6cfa, /* 0000 0011 1111 1111  0110 1100 1111 1010 */

                /* _^]\ [ZYX WVUT SRQP  ONML KJIH GFED CBA@ */
    0xc7fffffe, /* 1100 0111 1111 1111  1111 1111 1111 1110 */

                /*  ~}| {zyx wvut srqp  onml kjih gfed cba` */
    0x57ffffff, /* 0101 0111 1111 1111  1111 1111 1111 1111 */

    0x00000000, 0x00000000, 0x00000000, 0x00000000
};


static uint32_t  ngx_http_ai_gateway_value_bits[] = {
    0x00000200, /* HT */
    0xffffffff, 0xffffffff,
    0x7fffffff, /* not DEL */
    0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff
};


static uint32_t  ngx_http_ai_gateway_path_bits[] = {
    0x00000000,

                /* ?>=< ;:98 7654 3210  /.-, +*)( '&%$ #"!  */
    0x7ffffff6, /* 0111 1111 1111 1111  1111 1111 1111 0110 */

    0xffffffff,
    0x7fffffff, /* not DEL */
    0x00000000, 0x00000000, 0x00000000, 0x00000000
};


static uint32_t  ngx_http_ai_gateway_query_bits[] = {
    0x00000000,

                /* ?>=< ;:98 7654 3210  /.-, +*)( '&%$ #"!  */
    0xfffffff6, /* 1111 1111 1111 1111  1111 1111 1111 0110 */

    0xffffffff,
    0x7fffffff, /* not DEL */
    0x00000000, 0x00000000, 0x00000000, 0x00000000
};


static uint32_t  ngx_http_ai_gateway_host_bits[] = {
    0x00000000,

                /* ?>=< ;:98 7654 3210  /.-, +*)( '&%$ #"!  */
    0x07ff6000, /* 0000 0111 1111 1111  0110 0000 0000 0000 */

                /* _^]\ [ZYX WVUT SRQP  ONML KJIH GFED CBA@ */
    0xaffffffe, /* 1010 1111 1111 1111  1111 1111 1111 1110 */

                /*  ~}| {zyx wvut srqp  onml kjih gfed cba` */
    0x07fffffe, /* 0000 0111 1111 1111  1111 1111 1111 1110 */

    0x00000000, 0x00000000, 0x00000000, 0x00000000
};


static ngx_int_t
ngx_http_ai_gateway_check_bits(uint32_t *bits, u_char *p, size_t len)
{
    u_char  *last;

    if (len == 0) {
        return NGX_OK;
    }

    for (last = p + len; p < last; p++) {
        if (!(bits[*p >> 5] & (1U << (*p & 0x1f)))) {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_gateway_check_name(u_char *p, size_t len)
{
    if (len == 0) {
        return NGX_DECLINED;
    }

    return ngx_http_ai_gateway_check_bits(ngx_http_ai_gateway_name_bits,
                                          p, len);
}


ngx_int_t
ngx_http_ai_gateway_check_value(u_char *p, size_t len)
{
    return ngx_http_ai_gateway_check_bits(ngx_http_ai_gateway_value_bits,
                                          p, len);
}


ngx_int_t
ngx_http_ai_gateway_check_path(u_char *p, size_t len)
{
    if (len == 0 || p[0] != '/') {
        return NGX_DECLINED;
    }

    return ngx_http_ai_gateway_check_bits(ngx_http_ai_gateway_path_bits,
                                          p, len);
}


ngx_int_t
ngx_http_ai_gateway_check_query(u_char *p, size_t len)
{
    return ngx_http_ai_gateway_check_bits(ngx_http_ai_gateway_query_bits,
                                          p, len);
}


ngx_int_t
ngx_http_ai_gateway_check_host(u_char *p, size_t len)
{
    if (len == 0) {
        return NGX_DECLINED;
    }

    return ngx_http_ai_gateway_check_bits(ngx_http_ai_gateway_host_bits,
                                          p, len);
}


/*
 * NGX_DECLINED when a segment of the path is "." or "..", its dots
 * literal or escaped ("%2e"), and its slashes literal or escaped ("%2F"),
 * or backslashes, which some servers take for slashes ("\\", "%5C").
 */

ngx_int_t
ngx_http_ai_gateway_check_segments(u_char *p, size_t len)
{
    u_char      *last;
    ngx_uint_t   dots, other, end;

    if (len == 0) {
        return NGX_OK;
    }

    last = p + len;
    dots = 0;
    other = 0;

    for ( ;; ) {
        end = (p == last);

        if (end) {
            /* void */

        } else if (*p == '/' || *p == '\\') {
            p++;

        } else if (last - p >= 3 && p[0] == '%'
                   && ((p[1] == '2' && (p[2] == 'f' || p[2] == 'F'))
                       || (p[1] == '5' && (p[2] == 'c' || p[2] == 'C'))))
        {
            p += 3;

        } else {
            if (*p == '.') {
                dots++;
                p++;

            } else if (last - p >= 3 && p[0] == '%' && p[1] == '2'
                       && (p[2] == 'e' || p[2] == 'E'))
            {
                dots++;
                p += 3;

            } else {
                other = 1;
                p++;
            }

            continue;
        }

        /* the end of a segment */

        if (!other && (dots == 1 || dots == 2)) {
            return NGX_DECLINED;
        }

        if (end) {
            return NGX_OK;
        }

        dots = 0;
        other = 0;
    }
}
