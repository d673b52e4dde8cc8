/*
 * bench/mock.c: a canned OpenAI chat-completions provider for bench/run.sh.
 *
 *   mock PORT JSON_BODY_FILE SSE_BODY_FILE
 *
 * One thread, epoll, keepalive, no allocation per request: the responses
 * are built once at startup and written with one write() each.
 *
 *   POST /v1/chat/completions, body with "stream": true
 *       200 text/event-stream, Transfer-Encoding: chunked, one chunk per
 *       SSE event (split after every blank line), like a real provider
 *   POST /v1/chat/completions, any other body
 *       200 application/json with Content-Length, the JSON file's bytes
 *   GET /stats
 *       {"connections":N,"requests":N}: connections accepted and chat
 *       requests answered so far (the bench checks upstream keepalive)
 *   anything else
 *       404
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>


#define IN_SIZE   65536
#define MAX_FDS   65536


typedef struct {
    char          in[IN_SIZE];
    size_t        in_len;
    const char   *out;          /* pending output (static data) */
    size_t        out_len;
    int           close_after;
    char          stats[256];
} conn_t;


static conn_t         *conns[MAX_FDS];
static char           *resp_json, *resp_sse;
static size_t          resp_json_len, resp_sse_len;
static unsigned long   n_connections, n_requests;

static const char  resp_404[] =
    "HTTP/1.1 404 Not Found\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 21\r\n"
    "\r\n"
    "{\"error\":\"not found\"}";

/* headers of the kind api.openai.com sends, so that both proxies parse a
 * realistic header block */

static const char  common_headers[] =
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
build_responses(const char *json_file, const char *sse_file)
{
    char    *body, *p, *last, *e;
    size_t   len, n, off;

    body = read_file(json_file, &len);

    resp_json = malloc(len + 4096);
    n = sprintf(resp_json,
                "HTTP/1.1 200 OK\r\n"
                "Content-Type: application/json\r\n"
                "Content-Length: %zu\r\n"
                "%s\r\n", len, common_headers);
    memcpy(resp_json + n, body, len);
    resp_json_len = n + len;
    free(body);

    body = read_file(sse_file, &len);

    resp_sse = malloc(len * 2 + 4096);
    off = sprintf(resp_sse,
                  "HTTP/1.1 200 OK\r\n"
                  "Content-Type: text/event-stream; charset=utf-8\r\n"
                  "Transfer-Encoding: chunked\r\n"
                  "Cache-Control: no-cache, must-revalidate\r\n"
                  "%s\r\n", common_headers);

    /* one chunk per event: split after every "\n\n" */

    p = body;
    last = body + len;

    while (p < last) {
        e = memmem(p, last - p, "\n\n", 2);
        e = e ? e + 2 : last;

        off += sprintf(resp_sse + off, "%zx\r\n", (size_t) (e - p));
        memcpy(resp_sse + off, p, e - p);
        off += e - p;
        memcpy(resp_sse + off, "\r\n", 2);
        off += 2;

        p = e;
    }

    memcpy(resp_sse + off, "0\r\n\r\n", 5);
    resp_sse_len = off + 5;
    free(body);
}


static void
close_conn(int epfd, int fd)
{
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


/* answers the complete requests in the buffer; 0 ok, -1 close */

static int
process(conn_t *c)
{
    char        *end, body[128];
    size_t       hlen, clen, total, blen;
    const char  *v;

    while (c->out_len == 0 && c->in_len) {

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

        if (strncmp(c->in, "POST /v1/chat/completions ", 26) == 0) {
            n_requests++;

            if (wants_stream(c->in + hlen, clen)) {
                c->out = resp_sse;
                c->out_len = resp_sse_len;

            } else {
                c->out = resp_json;
                c->out_len = resp_json_len;
            }

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

    return 0;
}


/* writes what is pending; 1 done, 0 would block, -1 error */

static int
flush_out(conn_t *c, int fd)
{
    ssize_t  n;

    while (c->out_len) {
        n = write(fd, c->out, c->out_len);

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


static int
handle(int epfd, int fd, uint32_t events)
{
    int                  rc;
    ssize_t              n;
    conn_t              *c;
    struct epoll_event   ev;

    c = conns[fd];

    if (events & (EPOLLERR | EPOLLHUP)) {
        return -1;
    }

    if (c->out_len) {
        rc = flush_out(c, fd);
        if (rc <= 0) {
            return rc;
        }

        if (c->close_after) {
            return -1;
        }

        ev.events = EPOLLIN;
        ev.data.fd = fd;
        epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
    }

    if (events & EPOLLIN) {
        n = read(fd, c->in + c->in_len, IN_SIZE - c->in_len);

        if (n == 0) {
            return -1;
        }

        if (n == -1) {
            return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
        }

        c->in_len += n;
    }

    for ( ;; ) {
        rc = process(c);
        if (rc <= 0) {
            return rc;
        }

        rc = flush_out(c, fd);
        if (rc == -1) {
            return -1;
        }

        if (rc == 0) {
            ev.events = EPOLLOUT;
            ev.data.fd = fd;
            epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
            return 0;
        }

        if (c->close_after) {
            return -1;
        }
    }
}


int
main(int argc, char **argv)
{
    int                  ls, fd, epfd, i, n, one;
    struct epoll_event   ev, events[256];
    struct sockaddr_in   sin;

    if (argc != 4) {
        fprintf(stderr, "usage: %s PORT JSON_BODY_FILE SSE_BODY_FILE\n",
                argv[0]);
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);

    build_responses(argv[2], argv[3]);

    ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(atoi(argv[1]));
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    if (bind(ls, (struct sockaddr *) &sin, sizeof(sin)) == -1
        || listen(ls, 4096) == -1)
    {
        perror("bind/listen");
        return 1;
    }

    epfd = epoll_create1(0);
    ev.events = EPOLLIN;
    ev.data.fd = ls;
    epoll_ctl(epfd, EPOLL_CTL_ADD, ls, &ev);

    for ( ;; ) {
        n = epoll_wait(epfd, events, 256, -1);

        for (i = 0; i < n; i++) {
            fd = events[i].data.fd;

            if (fd == ls) {
                for ( ;; ) {
                    fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
                    if (fd == -1) {
                        break;
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

                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
                               sizeof(one));

                    n_connections++;

                    ev.events = EPOLLIN;
                    ev.data.fd = fd;
                    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
                }

                continue;
            }

            if (conns[fd] && handle(epfd, fd, events[i].events) == -1) {
                close_conn(epfd, fd);
            }
        }
    }
}
