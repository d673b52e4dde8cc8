
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/*
 * The few nginx core functions the translators (and their tests) call,
 * for unit tests and fuzzing without the nginx sources.  Every pool
 * allocation is a malloc() of its own, so AddressSanitizer sees each one;
 * a pool's cleanups run when it is destroyed, newest first, as in nginx.
 *
 * ngx_shim_fail_after: when not negative, that many more allocations
 * succeed and the next ones fail (allocation failure tests).
 * ngx_shim_allocs: the allocations made, less those a pool reset gave
 * back (for the test that a stream's memory does not grow with it).
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "shim.h"


ngx_int_t  ngx_shim_fail_after = -1;
ngx_uint_t  ngx_shim_allocs;

static ngx_log_t    ngx_shim_log;
static ngx_cycle_t  ngx_shim_cycle = { .log = &ngx_shim_log };

volatile ngx_cycle_t  *ngx_cycle = &ngx_shim_cycle;


/* a heap allocation outside pools, counted like pool ones */

void *
ngx_alloc(size_t size, ngx_log_t *log)
{
    if (ngx_shim_fail_after >= 0) {
        if (ngx_shim_fail_after == 0) {
            return NULL;
        }

        ngx_shim_fail_after--;
    }

    ngx_shim_allocs++;

    return malloc(size ? size : 1);
}


#if !(NGX_SHIM_REAL_POOL)

/* NGX_SHIM_REAL_POOL: nginx's own pools instead (bench/translate.sh) */

static void *
ngx_shim_alloc(ngx_pool_t *pool, size_t size)
{
    ngx_pool_large_t  *l;

    if (ngx_shim_fail_after >= 0) {
        if (ngx_shim_fail_after == 0) {
            return NULL;
        }

        ngx_shim_fail_after--;
    }

    ngx_shim_allocs++;

    l = malloc(sizeof(ngx_pool_large_t));
    if (l == NULL) {
        return NULL;
    }

    l->alloc = malloc(size ? size : 1);
    if (l->alloc == NULL) {
        free(l);
        return NULL;
    }

    l->next = pool->large;
    pool->large = l;

    return l->alloc;
}


ngx_pool_t *
ngx_create_pool(size_t size, ngx_log_t *log)
{
    ngx_pool_t  *p;

    (void) size;

    p = calloc(1, sizeof(ngx_pool_t));
    if (p == NULL) {
        return NULL;
    }

    p->log = log;

    return p;
}


void
ngx_destroy_pool(ngx_pool_t *pool)
{
    ngx_pool_large_t    *l, *ln;
    ngx_pool_cleanup_t  *c;

    for (c = pool->cleanup; c; c = c->next) {
        if (c->handler) {
            c->handler(c->data);
        }
    }

    for (l = pool->large; l; l = ln) {
        ln = l->next;
        free(l->alloc);
        free(l);
    }

    free(pool);
}


/*
 * As nginx's: every allocation goes (cleanups are not run).  nginx reuses
 * a reset pool's memory, so its allocations no longer count.
 */

void
ngx_reset_pool(ngx_pool_t *pool)
{
    ngx_pool_large_t  *l, *ln;

    for (l = pool->large; l; l = ln) {
        ln = l->next;
        free(l->alloc);
        free(l);

        ngx_shim_allocs--;
    }

    pool->large = NULL;
}


void *
ngx_palloc(ngx_pool_t *pool, size_t size)
{
    return ngx_shim_alloc(pool, size);
}


void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    return ngx_shim_alloc(pool, size);
}


void *
ngx_pcalloc(ngx_pool_t *pool, size_t size)
{
    void  *p;

    p = ngx_shim_alloc(pool, size);
    if (p) {
        memset(p, 0, size);
    }

    return p;
}


ngx_int_t
ngx_pfree(ngx_pool_t *pool, void *p)
{
    ngx_pool_large_t  *l;

    for (l = pool->large; l; l = l->next) {
        if (p == l->alloc) {
            free(l->alloc);
            l->alloc = NULL;
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


ngx_pool_cleanup_t *
ngx_pool_cleanup_add(ngx_pool_t *p, size_t size)
{
    ngx_pool_cleanup_t  *c;

    c = ngx_shim_alloc(p, sizeof(ngx_pool_cleanup_t));
    if (c == NULL) {
        return NULL;
    }

    if (size) {
        c->data = ngx_shim_alloc(p, size);
        if (c->data == NULL) {
            return NULL;
        }

    } else {
        c->data = NULL;
    }

    c->handler = NULL;
    c->next = p->cleanup;
    p->cleanup = c;

    return c;
}


#endif


ngx_array_t *
ngx_array_create(ngx_pool_t *p, ngx_uint_t n, size_t size)
{
    ngx_array_t  *a;

    a = ngx_palloc(p, sizeof(ngx_array_t));
    if (a == NULL) {
        return NULL;
    }

    if (ngx_array_init(a, p, n, size) != NGX_OK) {
        return NULL;
    }

    return a;
}


void *
ngx_array_push(ngx_array_t *a)
{
    void  *new;

    if (a->nelts == a->nalloc) {
        new = ngx_palloc(a->pool, 2 * a->nalloc * a->size);
        if (new == NULL) {
            return NULL;
        }

        memcpy(new, a->elts, a->nelts * a->size);
        a->elts = new;
        a->nalloc *= 2;
    }

    return (u_char *) a->elts + a->size * a->nelts++;
}


u_char *
ngx_pstrdup(ngx_pool_t *pool, ngx_str_t *src)
{
    u_char  *dst;

    dst = ngx_pnalloc(pool, src->len);
    if (dst == NULL) {
        return NULL;
    }

    memcpy(dst, src->data, src->len);

    return dst;
}


ngx_int_t
ngx_strcasecmp(u_char *s1, u_char *s2)
{
    return strcasecmp((char *) s1, (char *) s2);
}


ngx_int_t
ngx_strncasecmp(u_char *s1, u_char *s2, size_t n)
{
    return strncasecmp((char *) s1, (char *) s2, n);
}


/* the formats the translators use: %V %s %*s %ui %i %d %T %O %L %uL %% */

u_char *
ngx_vslprintf(u_char *buf, u_char *last, const char *fmt, va_list args)
{
    char        num[32];
    size_t      len, width;
    u_char     *s;
    ngx_str_t  *v;
    ngx_int_t   unsig, star, zero;

    while (*fmt && buf < last) {

        if (*fmt != '%') {
            *buf++ = *fmt++;
            continue;
        }

        fmt++;
        unsig = 0;
        star = 0;
        len = 0;
        width = 0;
        zero = (*fmt == '0');

        while (*fmt >= '0' && *fmt <= '9') {
            width = width * 10 + (*fmt++ - '0');
        }

        if (*fmt == 'u') {
            unsig = 1;
            fmt++;
        }

        if (*fmt == '*') {
            star = 1;
            len = va_arg(args, size_t);
            fmt++;
        }

        s = NULL;

        switch (*fmt) {

        case 'V':
            v = va_arg(args, ngx_str_t *);
            s = v->data;
            len = v->len;
            break;

        case 's':
            s = va_arg(args, u_char *);
            if (!star) {
                len = strlen((char *) s);
            }
            break;

        case 'i':
            if (unsig) {
                snprintf(num, sizeof(num), "%lu",
                         (unsigned long) va_arg(args, ngx_uint_t));
            } else {
                snprintf(num, sizeof(num), "%ld",
                         (long) va_arg(args, ngx_int_t));
            }
            break;

        case 'd':
            if (unsig) {
                snprintf(num, sizeof(num), "%u", va_arg(args, unsigned));
            } else {
                snprintf(num, sizeof(num), "%d", va_arg(args, int));
            }
            break;

        case 'T':
            snprintf(num, sizeof(num), "%ld", (long) va_arg(args, time_t));
            break;

        case 'O':
            snprintf(num, sizeof(num), "%lld",
                     (long long) va_arg(args, off_t));
            break;

        case 'L':
            if (unsig) {
                snprintf(num, sizeof(num), "%llu",
                         (unsigned long long) va_arg(args, uint64_t));
            } else {
                snprintf(num, sizeof(num), "%lld",
                         (long long) va_arg(args, int64_t));
            }
            break;

        case '%':
            num[0] = '%';
            num[1] = '\0';
            break;

        default:
            abort();
        }

        if (s == NULL) {
            s = (u_char *) num;
            len = strlen(num);

            /* "%02d": the width, zeros or spaces first */

            while (width > len && buf < last) {
                *buf++ = zero ? '0' : ' ';
                width--;
            }
        }

        fmt++;

        len = ngx_min(len, (size_t) (last - buf));
        buf = ngx_cpymem(buf, s, len);
    }

    return buf;
}


u_char * ngx_cdecl
ngx_sprintf(u_char *buf, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, (void *) -1, fmt, args);
    va_end(args);

    return p;
}


u_char * ngx_cdecl
ngx_snprintf(u_char *buf, size_t max, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + max, fmt, args);
    va_end(args);

    return p;
}


/* RFC 4648 base64 with padding, as in nginx */

void
ngx_encode_base64(ngx_str_t *dst, ngx_str_t *src)
{
    u_char  *d, *s;
    size_t   len;

    static u_char  basis[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    s = src->data;
    d = dst->data;

    for (len = src->len; len > 2; len -= 3) {
        *d++ = basis[s[0] >> 2];
        *d++ = basis[((s[0] & 3) << 4) | (s[1] >> 4)];
        *d++ = basis[((s[1] & 0x0f) << 2) | (s[2] >> 6)];
        *d++ = basis[s[2] & 0x3f];
        s += 3;
    }

    if (len) {
        *d++ = basis[s[0] >> 2];

        if (len == 1) {
            *d++ = basis[(s[0] & 3) << 4];
            *d++ = '=';

        } else {
            *d++ = basis[((s[0] & 3) << 4) | (s[1] >> 4)];
            *d++ = basis[(s[1] & 0x0f) << 2];
        }

        *d++ = '=';
    }

    dst->len = d - dst->data;
}


/* padded base64 decoded, a table apart from the encoder's: NGX_ERROR */

ngx_int_t
ngx_decode_base64(ngx_str_t *dst, ngx_str_t *src)
{
    size_t      i, len;
    u_char     *d, c;
    uint32_t    acc;
    ngx_uint_t  bits;

    len = src->len;

    if (len % 4) {
        return NGX_ERROR;
    }

    while (len && src->len - len < 2 && src->data[len - 1] == '=') {
        len--;
    }

    d = dst->data;
    acc = 0;
    bits = 0;

    for (i = 0; i < len; i++) {
        c = src->data[i];

        if (c >= 'A' && c <= 'Z') {
            c -= 'A';

        } else if (c >= 'a' && c <= 'z') {
            c = c - 'a' + 26;

        } else if (c >= '0' && c <= '9') {
            c = c - '0' + 52;

        } else if (c == '+') {
            c = 62;

        } else if (c == '/') {
            c = 63;

        } else {
            return NGX_ERROR;
        }

        acc = (acc << 6) | c;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            *d++ = (u_char) (acc >> bits);
        }
    }

    dst->len = d - dst->data;

    return NGX_OK;
}


/* as in nginx: 0xffffffff invalid, 0xfffffffe incomplete */

uint32_t
ngx_utf8_decode(u_char **p, size_t n)
{
    size_t    len;
    uint32_t  u, i, valid;

    u = **p;

    if (u >= 0xf0) {
        u &= 0x07;
        valid = 0xffff;
        len = 3;

    } else if (u >= 0xe0) {
        u &= 0x0f;
        valid = 0x7ff;
        len = 2;

    } else if (u >= 0xc2) {
        u &= 0x1f;
        valid = 0x7f;
        len = 1;

    } else {
        (*p)++;
        return 0xffffffff;
    }

    if (n - 1 < len) {
        return 0xfffffffe;
    }

    (*p)++;

    while (len) {
        i = *(*p)++;

        if (i < 0x80) {
            return 0xffffffff;
        }

        u = (u << 6) | (i & 0x3f);

        len--;
    }

    if (u > valid) {
        return u;
    }

    return 0xffffffff;
}


/* the request log's and the management API's few more, as in nginx */

ngx_int_t
ngx_memn2cmp(u_char *s1, u_char *s2, size_t n1, size_t n2)
{
    size_t     n;
    ngx_int_t  m, z;

    if (n1 <= n2) {
        n = n1;
        z = -1;

    } else {
        n = n2;
        z = 1;
    }

    m = n ? ngx_memcmp(s1, s2, n) : 0;

    if (m || n1 == n2) {
        return m;
    }

    return z;
}


ngx_int_t
ngx_atoi(u_char *line, size_t n)
{
    ngx_int_t  value, cutoff, cutlim;

    if (n == 0) {
        return NGX_ERROR;
    }

    cutoff = NGX_MAX_INT_T_VALUE / 10;
    cutlim = NGX_MAX_INT_T_VALUE % 10;

    for (value = 0; n--; line++) {
        if (*line < '0' || *line > '9') {
            return NGX_ERROR;
        }

        if (value >= cutoff && (value > cutoff || *line - '0' > cutlim)) {
            return NGX_ERROR;
        }

        value = value * 10 + (*line - '0');
    }

    return value;
}


/* the month 1 to 12 and the year in full, as nginx's */

void
ngx_gmtime(time_t t, ngx_tm_t *tp)
{
    (void) gmtime_r(&t, tp);

    tp->ngx_tm_mon++;
    tp->ngx_tm_year += 1900;
}


/* %XX decoded, anything else copied (type is not looked at) */

void
ngx_unescape_uri(u_char **dst, u_char **src, size_t size, ngx_uint_t type)
{
    u_char  *d, *s, c, h, l;

    d = *dst;
    s = *src;

    while (size--) {
        c = *s++;

        if (c == '%' && size >= 2 && isxdigit(s[0]) && isxdigit(s[1])) {
            h = (u_char) (s[0] | 0x20);
            l = (u_char) (s[1] | 0x20);
            h = (h >= 'a') ? h - 'a' + 10 : h - '0';
            l = (l >= 'a') ? l - 'a' + 10 : l - '0';
            *d++ = (u_char) ((h << 4) | l);
            s += 2;
            size -= 2;
            continue;
        }

        *d++ = c;
    }

    *dst = d;
    *src = s;
}


u_char *
ngx_strnstr(u_char *s1, char *s2, size_t len)
{
    size_t  n;

    n = strlen(s2);

    for ( /* void */ ; len >= n; s1++, len--) {
        if (ngx_memcmp(s1, s2, n) == 0) {
            return s1;
        }
    }

    return NULL;
}
