
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/*
 * Unit tests of the Unified API translators: sh t/unit/run.sh.
 */


#include "unit.h"


ngx_uint_t  unit_passed;
ngx_uint_t  unit_failed;


int
main(void)
{
    unit_sse();
    unit_requests();
    unit_responses();
    unit_embeddings();
    unit_errors();
    unit_streams();
    unit_nomem();
    unit_memory();
    unit_lookup();
    unit_checks();
    unit_steps();
    unit_cache_entries();
    unit_json();
    unit_usage();
    unit_logs();

    printf("unit: %lu passed, %lu failed\n", (unsigned long) unit_passed,
           (unsigned long) unit_failed);

    return unit_failed ? 1 : 0;
}


u_char *
unit_read(const char *path, size_t *len)
{
    long     n;
    FILE    *f;
    u_char  *p;

    f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }

    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);

    p = malloc(n + 1);
    if (p == NULL || fread(p, 1, n, f) != (size_t) n) {
        fclose(f);
        free(p);
        return NULL;
    }

    fclose(f);

    p[n] = '\0';
    *len = n;

    return p;
}


void
unit_expect(const char *what, u_char *got, size_t len, const char *expected)
{
    FILE    *f;
    size_t   elen, i;
    u_char  *e;

    if (getenv("UNIT_UPDATE") != NULL) {
        f = fopen(expected, "wb");
        if (f != NULL) {
            fwrite(got, 1, len, f);
            fclose(f);
        }
    }

    e = unit_read(expected, &elen);

    if (e == NULL) {
        unit_check(0, "%s: no file %s", what, expected);
        return;
    }

    if (elen == len && memcmp(e, got, len) == 0) {
        unit_check(1, "%s", what);
        free(e);
        return;
    }

    for (i = 0; i < len && i < elen && e[i] == got[i]; i++) {
        /* void */
    }

    unit_check(0, "%s: differs from %s at byte %lu\n"
               "  expected: %.*s\n  got:      %.*s", what, expected,
               (unsigned long) i,
               (int) ngx_min(elen - i, 200), e + i,
               (int) ngx_min(len - i, 200), got + i);

    free(e);
}


void
unit_compat(ngx_http_ai_gateway_compat_t *c, ngx_uint_t include_usage)
{
    ngx_memzero(c, sizeof(ngx_http_ai_gateway_compat_t));

    ngx_str_set(&c->model, "test-model");
    ngx_str_set(&c->id, "chatcmpl-test");
    c->created = 1700000000;
    c->stream = 1;
    c->include_usage = include_usage;
}


/*
 * .chunks.txt to SSE, as the fixtures' README says: Anthropic
 * "event: <type>\ndata: <L>\n\n", Gemini "data: <L>\r\n\r\n".
 */

u_char *
unit_stream_body(const char *provider, const char *path, size_t *len)
{
    char      *type;
    u_char    *in, *out, *p, *line, *nl, *last;
    size_t     n;
    yajl_val   v, t;

    in = unit_read(path, &n);
    if (in == NULL) {
        return NULL;
    }

    if (strstr(path, ".chunks.txt") == NULL) {
        *len = n;
        return in;
    }

    out = malloc(n * 2 + 4096);
    p = out;
    last = in + n;

    for (line = in; line < last; line = nl + 1) {
        nl = (u_char *) memchr(line, '\n', last - line);
        if (nl == NULL) {
            nl = last;
        }

        if (nl == line) {
            continue;
        }

        *nl = '\0';

        if (strcmp(provider, "anthropic") == 0) {
            v = yajl_tree_parse((char *) line, NULL, 0);
            t = ngx_http_ai_gateway_json_get(v, "type");
            type = YAJL_IS_STRING(t) ? t->u.string : "unknown";
            p += sprintf((char *) p, "event: %s\ndata: %s\n\n", type,
                         (char *) line);
            yajl_tree_free(v);

        } else {
            p += sprintf((char *) p, "data: %s\r\n\r\n", (char *) line);
        }
    }

    free(in);

    *len = p - out;

    return out;
}


ngx_int_t
unit_stream_run(ngx_http_ai_gateway_translator_t *t,
    ngx_uint_t include_usage, u_char *body, size_t len, size_t step,
    size_t split, ngx_uint_t complete, u_char **out, size_t *out_len)
{
    u_char                        *acc;
    size_t                         off, n, cap, used;
    ngx_int_t                      rc;
    ngx_str_t                      o;
    ngx_pool_t                    *pool;
    ngx_http_ai_gateway_compat_t   c;
    ngx_http_ai_gateway_stream_t  *s;

    pool = ngx_create_pool(4096, NULL);
    unit_compat(&c, include_usage);

    *out = NULL;
    *out_len = 0;

    s = t->stream_create(pool, &c);
    if (s == NULL) {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    cap = 4096;
    used = 0;
    acc = malloc(cap);
    rc = NGX_OK;

    for (off = 0; off < len || (len == 0 && off == 0); off += n) {

        if (step) {
            n = ngx_min(step, len - off);

        } else {
            n = (off < split) ? split - off : len - off;
        }

        rc = t->stream_feed(s, body + off, n, &o);
        if (rc != NGX_OK) {
            break;
        }

        while (used + o.len > cap) {
            cap *= 2;
            acc = realloc(acc, cap);
        }

        if (o.len) {
            memcpy(acc + used, o.data, o.len);
            used += o.len;
        }

        if (len == 0) {
            break;
        }
    }

    if (rc == NGX_OK) {
        rc = t->stream_finish(s, complete, &o);

        if (rc == NGX_OK) {
            while (used + o.len > cap) {
                cap *= 2;
                acc = realloc(acc, cap);
            }

            if (o.len) {
                memcpy(acc + used, o.data, o.len);
                used += o.len;
            }
        }
    }

    ngx_destroy_pool(pool);

    *out = acc;
    *out_len = used;

    return rc;
}
