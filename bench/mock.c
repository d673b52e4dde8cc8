
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/*
 * bench/mock.c: a canned provider (OpenAI, Anthropic, Gemini) for
 * bench/run.sh.
 *
 *   mock [-e EVENTS] [-p PACED_PORT] [-d DELAY_MS] PORT
 *        OPENAI_JSON OPENAI_SSE [ANTHROPIC_JSON ANTHROPIC_SSE
 *        GEMINI_JSON GEMINI_SSE]
 *
 * One thread, epoll, keepalive, no allocation per request: the responses
 * are built once at startup and written with one write() each.
 *
 *   POST /v1/chat/completions            OpenAI: the SSE file when the
 *                                        body has "stream": true, else the
 *                                        JSON file
 *   POST /v1/messages                    Anthropic, the same way
 *   POST /v1beta/models/M:generateContent
 *                                        Gemini, the JSON file
 *   POST /v1beta/models/M:streamGenerateContent...
 *                                        Gemini, the SSE file
 *   GET /stats                           {"connections":N,"requests":N}:
 *                                        connections accepted and provider
 *                                        requests answered so far (the
 *                                        bench checks upstream keepalive)
 *   POST /v1/traces                      200 {} (an OTLP collector, for
 *                                        the OTel variant)
 *   anything else                        404
 *
 * JSON answers have a Content-Length.  SSE answers are chunked, one chunk
 * per event (split after every blank line, "\n\n" or "\r\n\r\n"), like a
 * real provider.  Every answer carries a block of headers of the kind the
 * provider sends, so that the proxies parse a realistic header block.
 *
 * -e EVENTS: an Anthropic or Gemini SSE file with fewer events is
 * lengthened to EVENTS events by repeating its recorded content deltas, in
 * order, as many times as needed; the events before the first delta and
 * after the last one are kept as recorded (the OpenAI file is sent as it
 * is: its recorded stream is long already).  The deltas are the
 * "content_block_delta" events (Anthropic) or else every event but the
 * first and the last (Gemini, whose every event is a complete response
 * carrying the new text).
 *
 * -p PACED_PORT: connections accepted on that port get SSE answers in two
 * writes: the headers and the first event at once, the rest DELAY_MS
 * milliseconds later (-d, 5 by default).  A real provider sends the first
 * event alone, as soon as it has it; this is what the time to first byte
 * of bench/ttfb.c measures.
 *
 * Requests must carry Content-Length when they have a body (no chunked
 * request bodies); pipelined requests are answered in order.  This is a
 * load-test fixture, not a general HTTP server.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#define IN_SIZE      (1024 * 1024)   /* a batch of spans fits */
#define MAX_FDS      65536
#define MAX_EVENTS   4096


typedef struct {
    char          *data;
    size_t         len;
    size_t         first;       /* headers and the first SSE chunk */
} resp_t;


typedef struct {
    resp_t         json;
    resp_t         sse;
} provider_t;


typedef struct conn_s  conn_t;

struct conn_s {
    char           in[IN_SIZE];
    size_t         in_len;
    const char    *out;         /* pending output (static data) */
    size_t         out_len;
    const char    *rest;        /* paced: written when "due" comes */
    size_t         rest_len;
    uint64_t       due;         /* ms, CLOCK_MONOTONIC */
    conn_t        *next;        /* in the list of waiting connections */
    int            fd;
    int            paced;
    int            close_after;
    int            want_out;
    char           stats[256];
};


enum {
    OPENAI = 0,
    ANTHROPIC,
    GEMINI,
    NPROVIDERS
};


static conn_t         *conns[MAX_FDS];
static conn_t         *waiting;
static provider_t      providers[NPROVIDERS];
static unsigned long   n_connections, n_requests;
static int             min_events;
static uint64_t        delay_ms = 5;

static const char  resp_otlp[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 2\r\n"
    "\r\n"
    "{}";

static const char  resp_404[] =
    "HTTP/1.1 404 Not Found\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 21\r\n"
    "\r\n"
    "{\"error\":\"not found\"}";

/*
 * headers of the kind each provider sends (api.openai.com and
 * api.anthropic.com behind Cloudflare; the Gemini ones as recorded in
 * google-gemini/exchange-text-live.json, without the gzip)
 */

static const char  openai_headers[] =
    "Date: Thu, 26 Sep 2024 10:22:48 GMT\r\n"
    "Connection: keep-alive\r\n"
    "access-control-expose-headers: X-Request-ID\r\n"
    "openai-organization: user-bench\r\n"
    "openai-processing-ms: 312\r\n"
    "openai-version: 2020-10-01\r\n"
    "strict-transport-security: max-age=31536000; includeSubDomains; "
        "preload\r\n"
    "x-ratelimit-limit-requests: 10000\r\n"
    "x-ratelimit-limit-tokens: 30000000\r\n"
    "x-ratelimit-remaining-requests: 9999\r\n"
    "x-ratelimit-remaining-tokens: 29999976\r\n"
    "x-ratelimit-reset-requests: 6ms\r\n"
    "x-ratelimit-reset-tokens: 0s\r\n"
    "x-request-id: req_5b8f0b6c2a8e4f0e9d7c6b5a4f3e2d1c\r\n"
    "CF-Cache-Status: DYNAMIC\r\n"
    "Server: cloudflare\r\n"
    "CF-RAY: 8c8d4e5f6a7b8c9d-AMS\r\n"
    "alt-svc: h3=\":443\"; ma=86400\r\n";

static const char  anthropic_headers[] =
    "Date: Thu, 26 Sep 2024 10:22:48 GMT\r\n"
    "Connection: keep-alive\r\n"
    "anthropic-ratelimit-input-tokens-limit: 400000\r\n"
    "anthropic-ratelimit-input-tokens-remaining: 400000\r\n"
    "anthropic-ratelimit-input-tokens-reset: 2024-09-26T10:22:48Z\r\n"
    "anthropic-ratelimit-output-tokens-limit: 80000\r\n"
    "anthropic-ratelimit-output-tokens-remaining: 80000\r\n"
    "anthropic-ratelimit-output-tokens-reset: 2024-09-26T10:22:48Z\r\n"
    "anthropic-ratelimit-requests-limit: 4000\r\n"
    "anthropic-ratelimit-requests-remaining: 3999\r\n"
    "anthropic-ratelimit-requests-reset: 2024-09-26T10:22:48Z\r\n"
    "anthropic-ratelimit-tokens-limit: 480000\r\n"
    "anthropic-ratelimit-tokens-remaining: 480000\r\n"
    "anthropic-ratelimit-tokens-reset: 2024-09-26T10:22:48Z\r\n"
    "request-id: req_011CUbench5b8f0b6c2a8e4f0e9d7c\r\n"
    "strict-transport-security: max-age=31536000; includeSubDomains; "
        "preload\r\n"
    "anthropic-organization-id: 4b1f5e0c-bench-4e5f-9a7b-8c9d0e1f2a3b\r\n"
    "via: 1.1 google\r\n"
    "CF-Cache-Status: DYNAMIC\r\n"
    "X-Robots-Tag: none\r\n"
    "Server: cloudflare\r\n"
    "CF-RAY: 8c8d4e5f6a7b8c9d-AMS\r\n";

static const char  gemini_headers[] =
    "Date: Wed, 08 Jul 2026 12:10:59 GMT\r\n"
    "Connection: keep-alive\r\n"
    "vary: Origin, X-Origin, Referer\r\n"
    "server: scaffolding on HTTPServer2\r\n"
    "server-timing: gfet4t7; dur=533\r\n"
    "x-content-type-options: nosniff\r\n"
    "x-frame-options: SAMEORIGIN\r\n"
    "x-gemini-service-tier: standard\r\n"
    "x-xss-protection: 0\r\n"
    "alt-svc: h3=\":443\"; ma=2592000,h3-29=\":443\"; ma=2592000\r\n";


static uint64_t
now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static char *
read_file(const char *name, size_t *len)
{
    int          fd;
    char        *p;
    ssize_t      n;
    struct stat  st;

    fd = open(name, O_RDONLY);
    if (fd == -1 || fstat(fd, &st) == -1) {
        perror(name);
        exit(1);
    }

    p = malloc(st.st_size + 1);
    if (p == NULL) {
        exit(1);
    }

    n = read(fd, p, st.st_size);
    if (n != st.st_size) {
        perror(name);
        exit(1);
    }

    close(fd);
    *len = n;
    return p;
}


static void
build_json(resp_t *r, const char *file, const char *headers,
    const char *ctype)
{
    char    *body;
    size_t   len, n;

    body = read_file(file, &len);

    r->data = malloc(len + 4096);
    if (r->data == NULL) {
        exit(1);
    }

    n = sprintf(r->data,
                "HTTP/1.1 200 OK\r\n"
                "Content-Type: %s\r\n"
                "Content-Length: %zu\r\n"
                "%s\r\n", ctype, len, headers);
    memcpy(r->data + n, body, len);
    r->len = n + len;
    r->first = r->len;
    free(body);
}


/* the end of the SSE event that starts at p: after its blank line */

static char *
event_end(char *p, char *last)
{
    char  *lf, *crlf;

    lf = memmem(p, last - p, "\n\n", 2);
    crlf = memmem(p, last - p, "\r\n\r\n", 4);

    if (crlf && (lf == NULL || crlf < lf)) {
        return crlf + 4;
    }

    return lf ? lf + 2 : last;
}


static void
build_sse(resp_t *r, const char *file, const char *headers,
    const char *ctype, int lengthen)
{
    char    *body, *p, *last, *start[MAX_EVENTS], *end[MAX_EVENTS];
    size_t   len, off, size;
    int      i, n, d0, d1, out;

    body = read_file(file, &len);

    /* the events */

    n = 0;
    p = body;
    last = body + len;

    while (p < last) {
        if (n == MAX_EVENTS) {
            fprintf(stderr, "%s: more than %d events\n", file, MAX_EVENTS);
            exit(1);
        }

        start[n] = p;
        p = event_end(p, last);
        end[n++] = p;
    }

    /* the deltas to repeat: events d0 to d1 */

    d0 = -1;
    d1 = -1;

    for (i = 0; i < n; i++) {
        if (end[i] - start[i] > 26
            && memcmp(start[i], "event: content_block_delta", 26) == 0)
        {
            if (d0 == -1) {
                d0 = i;
            }

            d1 = i;
        }
    }

    if (d0 == -1 && n >= 3) {
        d0 = 1;
        d1 = n - 2;
    }

    out = n;
    size = len;

    if (lengthen && n < min_events && d0 != -1) {
        out = min_events;
        size = (end[n - 1] - start[0])
               + (min_events - n + 1) * (end[d1] - start[d0]);
    }

    r->data = malloc(size * 2 + 32 * out + 4096);
    if (r->data == NULL) {
        exit(1);
    }

    off = sprintf(r->data,
                  "HTTP/1.1 200 OK\r\n"
                  "Content-Type: %s\r\n"
                  "Transfer-Encoding: chunked\r\n"
                  "Cache-Control: no-cache, must-revalidate\r\n"
                  "%s\r\n", ctype, headers);

    /* one chunk per event; the deltas repeated until there are "out" */

    i = 0;

    while (out) {
        off += sprintf(r->data + off, "%zx\r\n",
                       (size_t) (end[i] - start[i]));
        memcpy(r->data + off, start[i], end[i] - start[i]);
        off += end[i] - start[i];
        memcpy(r->data + off, "\r\n", 2);
        off += 2;

        if (r->first == 0) {
            r->first = off;
        }

        out--;

        /* after a delta: the events after the deltas when only they are
         * left to send, else the next delta, the first after the last */

        if (d0 != -1 && i >= d0 && i <= d1 && out == n - 1 - d1) {
            i = d1 + 1;

        } else if (i == d1) {
            i = d0;

        } else {
            i++;
        }
    }

    memcpy(r->data + off, "0\r\n\r\n", 5);
    r->len = off + 5;
    free(body);
}


static void
set_events(int epfd, conn_t *c, int out)
{
    struct epoll_event  ev;

    if (c->want_out == out) {
        return;
    }

    c->want_out = out;

    ev.events = out ? EPOLLOUT : EPOLLIN;
    ev.data.fd = c->fd;
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}


static void
close_conn(int epfd, int fd)
{
    conn_t  **cp;

    for (cp = &waiting; *cp; cp = &(*cp)->next) {
        if (*cp == conns[fd]) {
            *cp = conns[fd]->next;
            break;
        }
    }

    epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    free(conns[fd]);
    conns[fd] = NULL;
}


/* case-insensitive search of "\r\nname:" in the header block; the value */

static const char *
header(const char *h, size_t len, const char *name)
{
    size_t       nl;
    const char  *p, *last;

    nl = strlen(name);
    last = h + len;

    for (p = h; p + nl + 3 < last; p++) {
        if (p[0] == '\r' && p[1] == '\n'
            && strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':')
        {
            p += 3 + nl;
            while (p < last && (*p == ' ' || *p == '\t')) {
                p++;
            }
            return p;
        }
    }

    return NULL;
}


/* "stream": true anywhere in the body (the mock does not parse JSON) */

static int
wants_stream(const char *b, size_t len)
{
    const char  *p, *last;

    last = b + len;

    for (p = b; p < last; p++) {
        p = memmem(p, last - p, "\"stream\"", 8);
        if (p == NULL) {
            return 0;
        }

        p += 8;
        while (p < last && (*p == ' ' || *p == '\t' || *p == '\r'
                            || *p == '\n' || *p == ':'))
        {
            p++;
        }

        if (last - p >= 4 && memcmp(p, "true", 4) == 0) {
            return 1;
        }
    }

    return 0;
}


static void
answer(conn_t *c, resp_t *r)
{
    n_requests++;

    if (r->data == NULL) {
        c->out = resp_404;
        c->out_len = sizeof(resp_404) - 1;
        return;
    }

    c->out = r->data;
    c->out_len = r->len;

    if (c->paced && r->first < r->len) {
        c->out_len = r->first;
        c->rest = r->data + r->first;
        c->rest_len = r->len - r->first;
    }
}


/* answers the first complete request in the buffer; 1 ok, 0 wait, -1 close */

static int
process(conn_t *c)
{
    char        *end, *eol, body[128];
    size_t       hlen, clen, total, blen;
    const char  *v;
    provider_t  *pr;

    if (c->in_len == 0) {
        return 0;
    }

    end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (end == NULL) {
        return c->in_len == IN_SIZE ? -1 : 0;
    }

    hlen = end + 4 - c->in;

    clen = 0;
    v = header(c->in, hlen, "content-length");
    if (v) {
        clen = strtoul(v, NULL, 10);
    }

    if (header(c->in, hlen, "transfer-encoding")) {
        return -1;
    }

    total = hlen + clen;
    if (total > IN_SIZE) {
        return -1;
    }

    if (c->in_len < total) {
        return 0;
    }

    v = header(c->in, hlen, "connection");
    c->close_after = (v && strncasecmp(v, "close", 5) == 0);

    eol = memchr(c->in, '\r', hlen);

    if (strncmp(c->in, "POST /v1/chat/completions ", 26) == 0) {
        pr = &providers[OPENAI];
        answer(c, wants_stream(c->in + hlen, clen) ? &pr->sse : &pr->json);

    } else if (strncmp(c->in, "POST /v1/messages ", 18) == 0) {
        pr = &providers[ANTHROPIC];
        answer(c, wants_stream(c->in + hlen, clen) ? &pr->sse : &pr->json);

    } else if (strncmp(c->in, "POST /v1beta/models/", 20) == 0) {
        pr = &providers[GEMINI];
        answer(c, memmem(c->in, eol - c->in, ":streamGenerateContent", 22)
                  ? &pr->sse : &pr->json);

    } else if (strncmp(c->in, "POST /v1/traces ", 16) == 0) {
        c->out = resp_otlp;
        c->out_len = sizeof(resp_otlp) - 1;

    } else if (strncmp(c->in, "GET /stats ", 11) == 0) {
        blen = sprintf(body, "{\"connections\":%lu,\"requests\":%lu}\n",
                       n_connections, n_requests);
        c->out = c->stats;
        c->out_len = sprintf(c->stats,
                             "HTTP/1.1 200 OK\r\n"
                             "Content-Type: application/json\r\n"
                             "Content-Length: %zu\r\n\r\n%s",
                             blen, body);

    } else {
        c->out = resp_404;
        c->out_len = sizeof(resp_404) - 1;
    }

    memmove(c->in, c->in + total, c->in_len - total);
    c->in_len -= total;

    return 1;
}


/* writes what is pending; 1 done, 0 would block, -1 error */

static int
flush_out(conn_t *c)
{
    ssize_t  n;

    while (c->out_len) {
        n = write(c->fd, c->out, c->out_len);

        if (n == -1) {
            if (errno == EAGAIN || errno == EINTR) {
                return 0;
            }
            return -1;
        }

        c->out += n;
        c->out_len -= n;
    }

    return 1;
}


/* writes and answers as far as possible; 0 ok, -1 close */

static int
progress(int epfd, conn_t *c)
{
    int  rc;

    for ( ;; ) {

        if (c->out_len) {
            rc = flush_out(c);

            if (rc == -1) {
                return -1;
            }

            if (rc == 0) {
                set_events(epfd, c, 1);
                return 0;
            }

            if (c->rest_len) {
                /* paced: the rest of the answer waits for its time */
                c->due = now_ms() + delay_ms;
                c->next = waiting;
                waiting = c;
                set_events(epfd, c, 0);
                return 0;
            }

            if (c->close_after) {
                return -1;
            }
        }

        if (c->rest_len) {
            return 0;
        }

        rc = process(c);

        if (rc <= 0) {
            set_events(epfd, c, 0);
            return rc;
        }
    }
}


static int
handle(int epfd, int fd, uint32_t events)
{
    ssize_t   n;
    conn_t   *c;

    c = conns[fd];

    if (events & (EPOLLERR | EPOLLHUP)) {
        return -1;
    }

    if ((events & EPOLLIN) && c->in_len < IN_SIZE) {
        n = read(fd, c->in + c->in_len, IN_SIZE - c->in_len);

        if (n == 0) {
            return -1;
        }

        if (n == -1) {
            return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
        }

        c->in_len += n;
    }

    return progress(epfd, c);
}


/* the rest of the paced answers whose time has come */

static void
expire(int epfd)
{
    int        fd;
    conn_t   **cp, *c;
    uint64_t   now;

    now = now_ms();

    for (cp = &waiting; *cp; /* void */) {
        c = *cp;

        if (c->due > now) {
            cp = &c->next;
            continue;
        }

        *cp = c->next;

        c->out = c->rest;
        c->out_len = c->rest_len;
        c->rest_len = 0;

        fd = c->fd;

        if (progress(epfd, c) == -1) {
            close_conn(epfd, fd);
        }
    }
}


static int
next_timeout(void)
{
    conn_t    *c;
    uint64_t   now, due;

    if (waiting == NULL) {
        return -1;
    }

    due = waiting->due;

    for (c = waiting->next; c; c = c->next) {
        if (c->due < due) {
            due = c->due;
        }
    }

    now = now_ms();

    return due > now ? (int) (due - now) : 0;
}


static int
listen_on(int epfd, int port)
{
    int                  ls, one;
    struct epoll_event   ev;
    struct sockaddr_in   sin;

    ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    if (bind(ls, (struct sockaddr *) &sin, sizeof(sin)) == -1
        || listen(ls, 4096) == -1)
    {
        perror("bind/listen");
        exit(1);
    }

    ev.events = EPOLLIN;
    ev.data.fd = ls;
    epoll_ctl(epfd, EPOLL_CTL_ADD, ls, &ev);

    return ls;
}


static void
accept_all(int epfd, int ls, int paced)
{
    int                  fd, one;
    struct epoll_event   ev;

    one = 1;

    for ( ;; ) {
        fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
        if (fd == -1) {
            return;
        }

        if (fd >= MAX_FDS) {
            close(fd);
            continue;
        }

        conns[fd] = calloc(1, sizeof(conn_t));
        if (conns[fd] == NULL) {
            close(fd);
            continue;
        }

        conns[fd]->fd = fd;
        conns[fd]->paced = paced;

        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

        n_connections++;

        ev.events = EPOLLIN;
        ev.data.fd = fd;
        epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    }
}


static void
usage(const char *name)
{
    fprintf(stderr, "usage: %s [-e EVENTS] [-p PACED_PORT] [-d DELAY_MS] "
            "PORT OPENAI_JSON OPENAI_SSE\n"
            "       [ANTHROPIC_JSON ANTHROPIC_SSE GEMINI_JSON GEMINI_SSE]\n",
            name);
    exit(2);
}


int
main(int argc, char **argv)
{
    int                  ls, pls, fd, epfd, i, n, opt, paced_port;
    const char          *name;
    struct epoll_event   events[256];

    name = argv[0];
    paced_port = 0;

    while ((opt = getopt(argc, argv, "e:p:d:")) != -1) {
        switch (opt) {
        case 'e':
            min_events = atoi(optarg);
            break;
        case 'p':
            paced_port = atoi(optarg);
            break;
        case 'd':
            delay_ms = strtoul(optarg, NULL, 10);
            break;
        default:
            usage(name);
        }
    }

    argc -= optind;
    argv += optind;

    if (argc != 3 && argc != 7) {
        usage(name);
    }

    if (min_events >= MAX_EVENTS) {
        min_events = MAX_EVENTS - 1;
    }

    signal(SIGPIPE, SIG_IGN);

    build_json(&providers[OPENAI].json, argv[1], openai_headers,
               "application/json");
    build_sse(&providers[OPENAI].sse, argv[2], openai_headers,
              "text/event-stream; charset=utf-8", 0);

    if (argc == 7) {
        build_json(&providers[ANTHROPIC].json, argv[3], anthropic_headers,
                   "application/json");
        build_sse(&providers[ANTHROPIC].sse, argv[4], anthropic_headers,
                  "text/event-stream; charset=utf-8", 1);
        build_json(&providers[GEMINI].json, argv[5], gemini_headers,
                   "application/json; charset=UTF-8");
        build_sse(&providers[GEMINI].sse, argv[6], gemini_headers,
                  "text/event-stream", 1);
    }

    epfd = epoll_create1(0);

    ls = listen_on(epfd, atoi(argv[0]));
    pls = paced_port ? listen_on(epfd, paced_port) : -1;

    for ( ;; ) {
        n = epoll_wait(epfd, events, 256, next_timeout());

        for (i = 0; i < n; i++) {
            fd = events[i].data.fd;

            if (fd == ls || fd == pls) {
                accept_all(epfd, fd, fd == pls);
                continue;
            }

            if (conns[fd] && handle(epfd, fd, events[i].events) == -1) {
                close_conn(epfd, fd);
            }
        }

        if (waiting) {
            expire(epfd);
        }
    }
}
