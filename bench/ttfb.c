
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/*
 * bench/ttfb.c: time to first body byte over sequential requests on one
 * keepalive connection, for bench/run.sh.
 *
 *   ttfb [-n N] [-w WARMUP] [-H "name: value"]... PORT PATH BODY
 *
 * Sends WARMUP (10) requests that are not counted, then N (200), each
 * "POST PATH" to 127.0.0.1:PORT with BODY and the -H headers, one at a
 * time on one connection (a new one only if the server closes it).  For
 * each request it takes the time from just before the request is written
 * to the read() that returns the first byte after the response header
 * (for a chunked answer, the first chunk-size line, which nginx writes
 * together with the chunk), and the time to the end of the response.
 * Every answer must be a 200 with a Content-Length or chunked body.
 *
 * It prints one line:
 *
 *   TTFB n=N p50_us=F p90_us=F min_us=F total_p50_us=F bytes=N
 *        connections=N
 *
 * The client does a write() and blocking read()s, the same on every path,
 * so what it adds is the same for the gateway and for plain proxy_pass;
 * run.sh reports differences.  The rest of the answer is read in the same
 * way: with a provider that paces its stream (mock.c -p), the total is
 * mostly the pacing delay.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>


#define BUF_SIZE     (4 * 1024 * 1024)
#define MAX_HEADERS  16


static char  buf[BUF_SIZE];


static double
now_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}


static void
fail(const char *msg)
{
    fprintf(stderr, "ttfb: %s\n", msg);
    exit(1);
}


static int
connect_to(int port)
{
    int                 fd, one;
    struct sockaddr_in  sin;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd == -1) {
        fail("socket() failed");
    }

    one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    if (connect(fd, (struct sockaddr *) &sin, sizeof(sin)) == -1) {
        fail("connect() failed");
    }

    return fd;
}


/* case-insensitive "\r\nname:" in the header block; the value or NULL */

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


/*
 * the end of the chunked body in buf[0..len) whose next chunk starts at
 * *pos, or 0 while it is incomplete; *pos moves on over complete chunks
 */

static size_t
chunked_end(size_t *pos, size_t len)
{
    char    *eol, *end;
    size_t   size;

    for ( ;; ) {
        eol = memmem(buf + *pos, len - *pos, "\r\n", 2);
        if (eol == NULL) {
            return 0;
        }

        size = strtoul(buf + *pos, &end, 16);
        if (end == buf + *pos) {
            fail("bad chunk size");
        }

        if (size == 0) {
            /* no trailers: "0\r\n\r\n" */
            if ((size_t) (eol + 4 - buf) > len) {
                return 0;
            }

            return eol + 4 - buf;
        }

        if ((size_t) (eol + 2 - buf) + size + 2 > len) {
            return 0;
        }

        *pos = eol + 2 - buf + size + 2;
    }
}


static int
cmp_double(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}


int
main(int argc, char **argv)
{
    int          fd, port, n, warmup, opt, i, nh, conns, chunked;
    char        *req, *hend;
    size_t       len, rlen, hlen, blen, end, pos, bytes;
    double       t0, t1, t2, *ttfb, *total;
    ssize_t      k, w;
    const char  *path, *body, *v, *h[MAX_HEADERS];

    n = 200;
    warmup = 10;
    nh = 0;

    while ((opt = getopt(argc, argv, "n:w:H:")) != -1) {
        switch (opt) {
        case 'n':
            n = atoi(optarg);
            break;
        case 'w':
            warmup = atoi(optarg);
            break;
        case 'H':
            if (nh == MAX_HEADERS) {
                fail("too many -H");
            }
            h[nh++] = optarg;
            break;
        default:
            fail("usage: ttfb [-n N] [-w WARMUP] [-H header]... "
                 "PORT PATH BODY");
        }
    }

    if (argc - optind != 3 || n < 1) {
        fail("usage: ttfb [-n N] [-w WARMUP] [-H header]... PORT PATH BODY");
    }

    port = atoi(argv[optind]);
    path = argv[optind + 1];
    body = argv[optind + 2];

    /* the request */

    blen = strlen(body);
    rlen = strlen(path) + blen + 256;
    for (i = 0; i < nh; i++) {
        rlen += strlen(h[i]) + 2;
    }

    req = malloc(rlen);
    ttfb = malloc(n * sizeof(double));
    total = malloc(n * sizeof(double));
    if (req == NULL || ttfb == NULL || total == NULL) {
        fail("no memory");
    }

    len = sprintf(req, "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n",
                  path, port);
    for (i = 0; i < nh; i++) {
        len += sprintf(req + len, "%s\r\n", h[i]);
    }
    len += sprintf(req + len, "Content-Length: %zu\r\n\r\n%s", blen, body);

    fd = -1;
    conns = 0;
    bytes = 0;

    for (i = -warmup; i < n; i++) {

        if (fd == -1) {
            fd = connect_to(port);
            conns++;
        }

        t0 = now_us();
        t1 = 0;

        for (pos = 0; pos < len; pos += w) {
            w = write(fd, req + pos, len - pos);
            if (w <= 0) {
                fail("write() failed");
            }
        }

        /* the response */

        rlen = 0;
        hlen = 0;
        end = 0;
        pos = 0;
        chunked = 0;

        for ( ;; ) {
            if (rlen == BUF_SIZE) {
                fail("the response is too large");
            }

            k = read(fd, buf + rlen, BUF_SIZE - rlen);

            if (k == -1 && errno == EINTR) {
                continue;
            }

            if (k <= 0) {
                fail("the connection was closed in a response");
            }

            rlen += k;

            if (hlen == 0) {
                hend = memmem(buf, rlen, "\r\n\r\n", 4);
                if (hend == NULL) {
                    continue;
                }

                hlen = hend + 4 - buf;

                if (strncmp(buf, "HTTP/1.1 200 ", 13) != 0) {
                    fwrite(buf, 1, rlen, stderr);
                    fail("the status is not 200");
                }

                v = header(buf, hlen, "content-length");
                if (v) {
                    end = hlen + strtoul(v, NULL, 10);

                } else if (header(buf, hlen, "transfer-encoding")) {
                    chunked = 1;
                    pos = hlen;

                } else {
                    fail("no Content-Length and not chunked");
                }
            }

            if (t1 == 0 && rlen > hlen) {
                t1 = now_us();
            }

            if (chunked) {
                end = chunked_end(&pos, rlen);
                if (end == 0) {
                    continue;
                }
            }

            if (rlen >= end) {
                break;
            }
        }

        if (rlen > end) {
            fail("more bytes than the response");
        }

        t2 = now_us();

        v = header(buf, hlen, "connection");
        if (v && strncasecmp(v, "close", 5) == 0) {
            close(fd);
            fd = -1;
        }

        if (i >= 0) {
            ttfb[i] = (t1 ? t1 : t2) - t0;
            total[i] = t2 - t0;
            bytes += rlen;
        }
    }

    qsort(ttfb, n, sizeof(double), cmp_double);
    qsort(total, n, sizeof(double), cmp_double);

    printf("TTFB n=%d p50_us=%.1f p90_us=%.1f min_us=%.1f total_p50_us=%.1f"
           " bytes=%zu connections=%d\n",
           n, ttfb[n / 2], ttfb[n * 9 / 10], ttfb[0], total[n / 2],
           bytes / n, conns);

    return 0;
}
