
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/*
 * bench/translate.c: the CPU time of the Unified API's stream translators
 * alone, per stream event, without a network or a proxy: a recorded
 * stream lengthened to EVENTS text events is fed to the translator one
 * event per call (as a paced provider sends them) ROUNDS times.
 * bench/translate.sh builds and runs it.
 */


#include <time.h>

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_gateway_openai.h"
#include "ngx_http_ai_gateway_translate.h"


static ngx_log_t  bench_log;


static double
bench_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}


/* the events of a fixture, each ending with its blank line */

static ngx_uint_t
bench_events(u_char *p, size_t len, ngx_str_t *ev, ngx_uint_t max)
{
    u_char      *last, *end;
    ngx_uint_t   n;

    last = p + len;
    n = 0;

    while (p < last && n < max) {
        end = (u_char *) strstr((char *) p, "\n\n");
        if (end == NULL) {
            end = (u_char *) strstr((char *) p, "\r\n\r\n");
            if (end == NULL) {
                break;
            }
            end += 2;
        }

        end += 2;
        ev[n].data = p;
        ev[n].len = end - p;
        n++;
        p = end;
    }

    return n;
}


static u_char *
bench_read(const char *path, size_t *len)
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
        exit(1);
    }

    p[n] = '\0';
    *len = n;
    fclose(f);

    return p;
}


static void
bench_run(const char *provider, const char *path, ngx_uint_t text,
    ngx_uint_t events, ngx_uint_t rounds)
{
    u_char                            *body;
    size_t                             len, out_bytes;
    double                             t0, t1;
    ngx_str_t                          ev[64], o, seq[1024], name;
    ngx_uint_t                         i, j, n, k;
    ngx_pool_t                        *pool;
    ngx_http_ai_gateway_compat_t       c;
    ngx_http_ai_gateway_stream_t      *s;
    ngx_http_ai_gateway_translator_t  *t;

    body = bench_read(path, &len);
    if (body == NULL) {
        exit(1);
    }

    n = bench_events(body, len, ev, 64);

    /* the events before the text one, it EVENTS times, the rest */

    k = 0;

    for (i = 0; i < text; i++) {
        seq[k++] = ev[i];
    }

    for (i = 0; i < events; i++) {
        seq[k++] = ev[text];
    }

    for (i = text + 1; i < n; i++) {
        seq[k++] = ev[i];
    }

    name.data = (u_char *) provider;
    name.len = strlen(provider);
    t = ngx_http_ai_gateway_translator(&name);
    out_bytes = 0;

    t0 = bench_now();

    for (j = 0; j < rounds; j++) {
        pool = ngx_create_pool(4096, &bench_log);
        ngx_memzero(&c, sizeof(ngx_http_ai_gateway_compat_t));
        ngx_str_set(&c.model, "test-model");
        ngx_str_set(&c.id, "chatcmpl-test");
        c.created = 1700000000;
        c.stream = 1;
        c.include_usage = 1;

        s = t->stream_create(pool, &c);

        for (i = 0; i < k; i++) {
            if (t->stream_feed(s, seq[i].data, seq[i].len, &o) == NGX_ERROR) {
                fprintf(stderr, "feed failed\n");
                exit(1);
            }

            out_bytes += o.len;
        }

        (void) t->stream_finish(s, 1, &o);
        out_bytes += o.len;

        ngx_destroy_pool(pool);
    }

    t1 = bench_now();

    printf("%-10s %4lu events: %7.2f us per stream, %5.3f us per event, "
           "%lu bytes out per stream\n", provider, (unsigned long) k,
           (t1 - t0) * 1e6 / rounds, (t1 - t0) * 1e6 / rounds / k,
           (unsigned long) (out_bytes / rounds));

    free(body);
}


int
main(int argc, char **argv)
{
    ngx_uint_t  events, rounds;

    events = argc > 1 ? atoi(argv[1]) : 30;
    events = ngx_min(events, 1000);
    rounds = argc > 2 ? atoi(argv[2]) : 20000;

    bench_run("anthropic", "t/fixtures/anthropic/stream-text.sse", 3,
              events, rounds);
    bench_run("gemini", "t/fixtures/google-gemini/stream-text.sse", 1,
              events, rounds);

    return 0;
}
