#!/usr/bin/env bash
# Copyright (C) ngx_ai_gateway contributors

#
# bench/run.sh: throughput and CPU per request of the gateway against a
# plain nginx proxy_pass to the same mock provider: pass-through JSON and
# SSE, the Unified API (/compat) translating Anthropic and Gemini answers
# (JSON and streamed) against proxy_pass of the provider's native answer,
# cache hits against "return 200"; the time to first byte of streams; the
# price of usage accounting and request logs (the same gateway with
# accounting off, with a log store, and with metrics in shared memory);
# and, with MODULE_BEFORE, the same
# for an older build of the module in the same run.  See bench/README.md.
#
#   bench/run.sh                     defaults: 2 rounds of 10 s runs
#   MODULE_BEFORE=/path/old.so ROUNDS=5 DURATION=5 WARMUP=1 bench/run.sh
#
# Environment (defaults in brackets):
#   DURATION       seconds of each measured run [10]
#   WARMUP         seconds of warmup before each measured run [2]
#   CONNECTIONS    wrk connections [32]
#   THREADS        wrk threads [1]
#   ROUNDS         measured runs per scenario; the best one is reported [2]
#   BUFFERED       1: also measure JSON through proxy_pass with
#                  proxy_buffering on, once, as a reference row [1]
#   CACHE          1: also measure cache hits, from the shared memory zone
#                  and from Redis, against nginx's "return 200" of the same
#                  body [1]
#   COMPAT         1: also measure the Unified API, Anthropic and Gemini,
#                  JSON and streamed [1]
#   STREAM_EVENTS  the Anthropic and Gemini streams are lengthened to this
#                  many events by repeating their recorded deltas [34]
#   TTFB           1: also measure the time to first byte of the streams [1]
#   OBSERVE        1: also measure pass-through and /compat Anthropic with
#                  ai_gateway_usage off ("off"), with a request log in
#                  a shared memory zone, payloads kept ("log"), with
#                  the metrics zone on ("metrics"), in nginx "a"; and
#                  with OpenTelemetry traces exported to the mock
#                  ("otel") [1]
#   TTFB_N         sequential requests per TTFB measurement [200]
#   TTFB_DELAY     ms between the first event and the rest of a paced
#                  stream [5]
#   MODULE_BEFORE  another build of the module (the "before" of a change):
#                  every gateway scenario is also measured with it, in a
#                  second nginx, in the same rounds [none]
#   PROFILE        1: after the rounds, record the worker with perf during
#                  the /compat streams and print the top 20 symbols [0]
#   PROFILE_KINDS  the gateway scenarios PROFILE records [a-sse g-sse]
#   PROFILE_ARGS   more perf record arguments, e.g. "--call-graph dwarf"
#   PIN            1: nginx on CPU 0, wrk and the mock on CPU 1 [1 if there
#                  are 2 or more CPUs and taskset exists]
#   NGINX_BIN      nginx binary [/usr/sbin/nginx]
#   MODULE         the module [build/ngx_http_ai_gateway_module.so]
#   KEEP_TMP       1: keep the temporary directory (configs, logs)
#
# Speed is a measurement here, not a test: the script exits 0 whatever the
# ratios, and non-zero only when something does not work.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-2}
BUFFERED=${BUFFERED:-1}
CACHE=${CACHE:-1}
COMPAT=${COMPAT:-1}
OBSERVE=${OBSERVE:-1}
STREAM_EVENTS=${STREAM_EVENTS:-34}
TTFB=${TTFB:-1}
TTFB_N=${TTFB_N:-200}
TTFB_DELAY=${TTFB_DELAY:-5}
MODULE_BEFORE=${MODULE_BEFORE:-}
PROFILE=${PROFILE:-0}
read -r -a PROFILE_KINDS <<< "${PROFILE_KINDS:-a-sse g-sse}"
NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
MODULE=${MODULE:-$ROOT/build/ngx_http_ai_gateway_module.so}
KEEP_TMP=${KEEP_TMP:-0}
LIMITS=${LIMITS:-1}
TARGET=0.90
CACHE_TARGET=0.80

RESULTS=$BENCH/results
OUT=$RESULTS/latest.txt

# the requests: OpenAI's chat completion, to the gateway's pass-through and
# to the provider; the same through the Unified API for Anthropic and
# Gemini, and to these providers their native request, as the gateway
# translates it

BODY='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'
# the recorded stream has a usage chunk: the client asks for it, so that the
# gateway relays the stream as it is (a client that does not ask gets
# include_usage added and the chunk left out: docs/usage.md)
BODY_STREAM=${BODY%\}}',"stream":true,"stream_options":{"include_usage":true}}'

A_BODY='{"model":"anthropic/claude-sonnet-4-5","messages":[{"role":"user",'
A_BODY+='"content":"hi"}]}'
A_BODY_STREAM=${A_BODY%\}}',"stream":true}'
A_NATIVE='{"model":"claude-sonnet-4-5","max_tokens":4096,"messages":'
A_NATIVE+='[{"role":"user","content":"hi"}]}'
A_NATIVE_STREAM=${A_NATIVE%\}}',"stream":true}'

G_BODY='{"model":"google-ai-studio/gemini-2.0-flash","messages":'
G_BODY+='[{"role":"user","content":"hi"}]}'
G_BODY_STREAM=${G_BODY%\}}',"stream":true}'
G_NATIVE='{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}'

GW_PATH=/v1/acct/bench/openai/v1/chat/completions
COMPAT_PATH=/v1/acct/bench/compat/chat/completions
UP_PATH=/v1/chat/completions
A_PATH=/v1/messages
G_PATH=/v1beta/models/gemini-2.0-flash:generateContent
G_PATH_STREAM='/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse'

OPENAI_HDRS='Authorization: Bearer sk-test'
A_HDRS=$'x-api-key: sk-test\nanthropic-version: 2023-06-01'
G_HDRS='x-goog-api-key: sk-test'

die() {
    echo "bench: $*" >&2
    exit 1
}

log() {
    echo "bench: $*" >&2
}


# --- prerequisites ---------------------------------------------------------

for tool in wrk curl cc awk; do
    command -v $tool >/dev/null || die "$tool is not installed"
done

if [ "$CACHE" = 1 ] && ! command -v redis-server >/dev/null; then
    log "no redis-server: cache hits from Redis are not measured"
fi

if [ "$PROFILE" = 1 ]; then
    command -v perf >/dev/null \
        || die "PROFILE=1 needs perf (Debian: apt-get install linux-perf)"
    [ "$COMPAT" = 1 ] || die "PROFILE=1 profiles the /compat streams:" \
                             "it needs COMPAT=1"
fi

[ -x "$NGINX_BIN" ] || die "no nginx at $NGINX_BIN (set NGINX_BIN)"

if [ ! -f "$MODULE" ]; then
    log "building the module"
    make -C "$ROOT" >&2 || die "the module does not build"
fi

if [ -n "$MODULE_BEFORE" ] && [ ! -f "$MODULE_BEFORE" ]; then
    die "MODULE_BEFORE: no file $MODULE_BEFORE"
fi

FIXTURES=
for d in "$ROOT/t/fixtures" /work/shared/fixtures; do
    if [ -f "$d/openai-chat/text.gpt-4o.json" ] \
       && [ -f "$d/openai-chat/stream-text-usage.sse" ] \
       && [ -f "$d/anthropic/text.json" ] \
       && [ -f "$d/anthropic/stream-text.sse" ] \
       && [ -f "$d/google-gemini/text.json" ] \
       && [ -f "$d/google-gemini/stream-text.sse" ]
    then
        FIXTURES=$d
        break
    fi
done

[ -n "$FIXTURES" ] || die "no fixtures found (t/fixtures/)"

JSON_FIXTURE=$FIXTURES/openai-chat/text.gpt-4o.json
SSE_FIXTURE=$FIXTURES/openai-chat/stream-text-usage.sse
A_JSON_FIXTURE=$FIXTURES/anthropic/text.json
A_SSE_FIXTURE=$FIXTURES/anthropic/stream-text.sse
G_JSON_FIXTURE=$FIXTURES/google-gemini/text.json
G_SSE_FIXTURE=$FIXTURES/google-gemini/stream-text.sse

NCPU=$(nproc)

if [ -z "${PIN:-}" ]; then
    if [ "$NCPU" -ge 2 ] && command -v taskset >/dev/null; then
        PIN=1
    else
        PIN=0
    fi
fi

if [ "$PIN" = 1 ]; then
    PIN_SUT=(taskset -c 0)
    PIN_LOAD=(taskset -c 1)
    PLACEMENT="nginx (1 worker) on CPU 0; wrk and mock on CPU 1"
else
    PIN_SUT=()
    PIN_LOAD=()
    PLACEMENT="not pinned ($NCPU CPUs)"
fi

# the nginx instances: "a" runs the module under test and the plain
# locations, "b" the MODULE_BEFORE build (one nginx cannot load two
# builds of one module)

WHO=(a)
if [ -n "$MODULE_BEFORE" ]; then
    WHO+=(b)
fi


# --- temporary directory, cleanup ------------------------------------------

TMP=$(mktemp -d "${TMPDIR:-/tmp}/aigw-bench.XXXXXX")
MOCK_PID=
REDIS_PID=
declare -A NGINX_PID=() WORKER=()

cleanup() {
    local rc=$? who pid

    set +e

    for who in "${!NGINX_PID[@]}"; do
        pid=${NGINX_PID[$who]}
        if kill -0 "$pid" 2>/dev/null; then
            kill -QUIT "$pid"
            for _ in $(seq 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -KILL "$pid" 2>/dev/null
        fi
    done

    if [ -n "$MOCK_PID" ] && kill -0 "$MOCK_PID" 2>/dev/null; then
        kill "$MOCK_PID"
    fi

    if [ -n "$REDIS_PID" ] && kill -0 "$REDIS_PID" 2>/dev/null; then
        kill "$REDIS_PID"
    fi

    wait 2>/dev/null

    if [ "$KEEP_TMP" = 1 ] || [ $rc -ne 0 ]; then
        echo "bench: temporary files kept in $TMP" >&2
    else
        rm -rf "$TMP"
    fi

    exit $rc
}

trap cleanup EXIT
trap 'exit 130' INT TERM


# --- ports -----------------------------------------------------------------

# a port is free when no socket uses it, listening or connected; ports are
# taken below the ephemeral range so that client connections do not hold them

port_free() {
    if command -v ss >/dev/null; then
        [ -z "$(ss -Htan "sport = :$1" 2>/dev/null)" ]
    else
        ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

read -r eph_low _ < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null \
    || eph_low=32768
[ "$eph_low" -gt 12000 ] || eph_low=32768

PORT_NAMES=(mock mock_paced redis
            a.plain a.plainbuf a.plain_paced a.return
            a.gw a.gw_paced a.shm a.redis a.off a.log a.metrics
            a.lshm a.lredis a.otel
            b.gw b.gw_paced b.shm b.redis)

declare -A P=()
p=$((eph_low - 10000 + RANDOM % 9000))
for name in "${PORT_NAMES[@]}"; do
    until port_free $p; do
        p=$((p + 1))
    done
    P[$name]=$p
    p=$((p + 1))
done

wait_port() {
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}


# private copies of the modules: a rebuild during the run (make copies the
# new .so over the old one) would crash the running workers

# module_id FILE ORIGINAL: sha256, date, and the git tree of the original
module_id() {
    local id dir head

    id="sha256 $(sha256sum "$1" | cut -c1-12)"
    id+=", built $(date -u -r "$2" '+%Y-%m-%d %H:%M UTC')"

    dir=$(dirname "$2")
    [ "$(basename "$dir")" = build ] && dir=$(dirname "$dir")

    if head=$(git -C "$dir" rev-parse --short HEAD 2>/dev/null); then
        id+=", tree $head"
        if [ -n "$(git -C "$dir" status --porcelain -- ngx_ai_gateway config \
                   2>/dev/null)" ]; then
            id+=" + local changes"
        fi
    fi

    echo "$id"
}

mkdir -p "$TMP/a" "$TMP/b"

# the gateway token of the limits scenarios, its digest in a token file
BENCH_TOKEN=bench-token-0123456789
printf 'sha256:%s  bench-client\n' \
    "$(printf %s "$BENCH_TOKEN" | sha256sum | cut -d' ' -f1)" > "$TMP/tokens"

cp "$MODULE" "$TMP/a/ngx_http_ai_gateway_module.so"
MODULE_ID=$(module_id "$TMP/a/ngx_http_ai_gateway_module.so" "$MODULE")

if [ -n "$MODULE_BEFORE" ]; then
    cp "$MODULE_BEFORE" "$TMP/b/ngx_http_ai_gateway_module.so"
    BEFORE_ID=$(module_id "$TMP/b/ngx_http_ai_gateway_module.so" \
                          "$MODULE_BEFORE")
fi


# --- the mock provider, the TTFB client ------------------------------------

cc -O2 -Wall -o "$TMP/mock" "$BENCH/mock.c" \
    || die "bench/mock.c does not build"
cc -O2 -Wall -o "$TMP/ttfb" "$BENCH/ttfb.c" \
    || die "bench/ttfb.c does not build"

"${PIN_LOAD[@]}" "$TMP/mock" -e "$STREAM_EVENTS" -p "${P[mock_paced]}" \
    -d "$TTFB_DELAY" "${P[mock]}" "$JSON_FIXTURE" "$SSE_FIXTURE" \
    "$A_JSON_FIXTURE" "$A_SSE_FIXTURE" "$G_JSON_FIXTURE" "$G_SSE_FIXTURE" \
    2>"$TMP/mock.log" &
MOCK_PID=$!

wait_port "${P[mock]}" || die "the mock does not listen on ${P[mock]}"
wait_port "${P[mock_paced]}" \
    || die "the mock does not listen on ${P[mock_paced]}"

# the Redis of the cache-hit runs, on the load side's CPU

REDIS=0
if [ "$CACHE" = 1 ] && command -v redis-server >/dev/null; then
    "${PIN_LOAD[@]}" redis-server --port "${P[redis]}" --bind 127.0.0.1 \
        --save '' --appendonly no --daemonize no \
        >"$TMP/redis.log" 2>&1 &
    REDIS_PID=$!
    wait_port "${P[redis]}" || die "redis-server does not listen"
    REDIS=1
fi


# --- nginx: plain proxy_pass and the gateway, one worker --------------------

# the plain servers, in nginx "a" only: (a) proxy_pass unbuffered like the
# gateway, 16k being the gateway's buffer size (ai_gateway_buffer_size);
# (a') with nginx's default buffering; (a") (a) to the paced mock; (c)
# nginx's "return 200" of the JSON answer, with the provider's Content-Type

plain_servers() {
    local body

    [ "$1" = a ] || return 0

    cat <<END

    server {
        listen 127.0.0.1:${P[a.plain]};

        location / {
            proxy_pass http://mock;
            include $BENCH/plain-proxy.conf;
        }
    }

    server {
        listen 127.0.0.1:${P[a.plainbuf]};

        location / {
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering on;
        }
    }

    server {
        listen 127.0.0.1:${P[a.plain_paced]};

        location / {
            proxy_pass http://mock_paced;
            include $BENCH/plain-proxy.conf;
        }
    }
END

    [ "$CACHE" = 1 ] || return 0

    body=$(sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g" "$JSON_FIXTURE")

    cat <<END

    server {
        listen 127.0.0.1:${P[a.return]};

        location /v1/ {
            default_type application/json;
            return 200 '$body\n';
        }
    }
END
}

# the gateway servers, the same in both nginx instances and written with
# directives that both builds know: (b) the gateway, pass-through and
# /compat, to the same upstream{} blocks as the plain servers; (b") the
# same to the paced mock; (d) the cache from shared memory, (e) from Redis
# (a key prefix per instance: the two builds may store entries
# differently)

gateway_servers() {
    local who=$1 pool

    # the pass-through with a request limit that never refuses, checked
    # in shared memory and in Redis (the module under test only)

    if [ "$LIMITS" = 1 ] && [ "$who" = a ]; then
        cat <<END

    ai_gateway_limit_zone benchlimits:16m;

    server {
        listen 127.0.0.1:${P[a.lshm]};

        location /v1/ {
            ai_gateway bench;
            ai_gateway_provider openai http://mock;
            ai_gateway_auth_token_file $TMP/tokens;
            ai_gateway_limit zone=benchlimits requests=1000000000
                             interval=1h technique=fixed
                             key=\$ai_gateway_client;
        }
    }
END

        if [ "$REDIS" = 1 ]; then
            cat <<END

    ai_gateway_redis benchlimits 127.0.0.1:${P[redis]};

    server {
        listen 127.0.0.1:${P[a.lredis]};

        location /v1/ {
            ai_gateway bench;
            ai_gateway_provider openai http://mock;
            ai_gateway_auth_token_file $TMP/tokens;
            ai_gateway_limit redis=benchlimits requests=1000000000
                             interval=1h technique=fixed
                             key=\$ai_gateway_client;
        }
    }
END
        fi
    fi

    for pool in mock mock_paced; do
        cat <<END

    server {
        listen 127.0.0.1:${P[$who.gw${pool#mock}]};

        location /v1/ {
            ai_gateway bench;
            ai_gateway_provider openai http://$pool;
            ai_gateway_provider anthropic http://$pool;
            ai_gateway_provider google-ai-studio http://$pool;
        }
    }
END
    done

    if [ "$OBSERVE" = 1 ] && [ "$who" = a ]; then
        cat <<END

    ai_gateway_log_zone benchlog:64m;

    server {
        listen 127.0.0.1:${P[a.off]};

        location /v1/ {
            ai_gateway bench;
            ai_gateway_provider openai http://mock;
            ai_gateway_provider anthropic http://mock;
            ai_gateway_usage off;
        }
    }

    server {
        listen 127.0.0.1:${P[a.log]};

        location /v1/ {
            ai_gateway bench;
            ai_gateway_provider openai http://mock;
            ai_gateway_provider anthropic http://mock;
            ai_gateway_logs benchlog;
            ai_gateway_logs_max 100000;
            ai_gateway_logs_strategy delete_oldest;
        }
    }

    ai_gateway_metrics_zone benchmetrics:4m;

    server {
        listen 127.0.0.1:${P[a.metrics]};

        location /v1/ {
            ai_gateway bench;
            ai_gateway_provider openai http://mock;
            ai_gateway_provider anthropic http://mock;
            ai_gateway_metrics benchmetrics;
        }

        location = /metrics {
            ai_gateway_metrics_endpoint;
        }
    }
END
    fi

    if [ "$OBSERVE" = 1 ] && [ "$who" = a ]; then
        # spans in batches of 8, to a POST the mock answers with 200
        cat <<END

    server {
        listen 127.0.0.1:${P[a.otel]};

        location /v1/ {
            ai_gateway bench;
            ai_gateway_provider openai http://mock;
            ai_gateway_provider anthropic http://mock;
            ai_gateway_otel_exporter http://127.0.0.1:${P[mock]}/v1/traces
                batch=8 flush=1s;
        }
    }
END
    fi

    [ "$CACHE" = 1 ] || return 0

    cat <<END

    ai_gateway_cache_zone benchcache:64m;

    server {
        listen 127.0.0.1:${P[$who.shm]};

        location /v1/ {
            ai_gateway bench;
            ai_gateway_provider openai http://mock;
            ai_gateway_cache benchcache;
            ai_gateway_cache_ttl 1h;
        }
    }
END

    [ "$REDIS" = 1 ] || return 0

    cat <<END

    server {
        listen 127.0.0.1:${P[$who.redis]};

        location /v1/ {
            ai_gateway bench;
            ai_gateway_provider openai http://mock;
            ai_gateway_cache_redis 127.0.0.1:${P[redis]} prefix=bench-$who:;
            ai_gateway_cache_ttl 1h;
        }
    }
END
}

nginx_conf() {
    local who=$1

    cat <<END
load_module $TMP/$who/ngx_http_ai_gateway_module.so;

worker_processes 1;
error_log logs/error.log error;
pid logs/nginx.pid;

events {
    worker_connections 4096;
}

http {
    access_log off;

    upstream mock {
        server 127.0.0.1:${P[mock]};
        keepalive 32;
    }

    upstream mock_paced {
        server 127.0.0.1:${P[mock_paced]};
        keepalive 8;
    }
$(plain_servers "$who")
$(gateway_servers "$who")
}
END
}

for who in "${WHO[@]}"; do
    mkdir -p "$TMP/$who/logs"
    nginx_conf "$who" > "$TMP/$who/nginx.conf"

    "$NGINX_BIN" -p "$TMP/$who/" -c "$TMP/$who/nginx.conf" -t \
        >"$TMP/$who/nginx-t.log" 2>&1 \
        || { cat "$TMP/$who/nginx-t.log" >&2;
             die "nginx -t failed with the module of nginx \"$who\""; }

    "${PIN_SUT[@]}" "$NGINX_BIN" -p "$TMP/$who/" -c "$TMP/$who/nginx.conf" \
        -g "daemon off;" 2>>"$TMP/$who/logs/stderr.log" &
    NGINX_PID[$who]=$!
done

for name in "${PORT_NAMES[@]}"; do
    case $name in
    mock*|redis) continue ;;
    b.*) [ -n "$MODULE_BEFORE" ] || continue ;;
    esac
    case $name in
    *.return|*.shm) [ "$CACHE" = 1 ] || continue ;;
    *.redis) [ "$REDIS" = 1 ] || continue ;;
    a.off|a.log|a.metrics) [ "$OBSERVE" = 1 ] || continue ;;
    a.otel) [ "$OBSERVE" = 1 ] || continue ;;
    *.lshm) [ "$LIMITS" = 1 ] || continue ;;
    *.lredis) [ "$LIMITS" = 1 ] && [ "$REDIS" = 1 ] || continue ;;
    esac
    wait_port "${P[$name]}" || die "nginx does not listen on ${P[$name]}"
done

for who in "${WHO[@]}"; do
    for _ in $(seq 50); do
        WORKER[$who]=$(pgrep -P "${NGINX_PID[$who]}" | head -1 || true)
        [ -n "${WORKER[$who]}" ] && break
        sleep 0.05
    done

    [ -n "${WORKER[$who]}" ] || die "no nginx worker process ($who)"
done

log "nginx worker pid ${WORKER[a]} (to profile it: perf top -p ${WORKER[a]})"
if [ -n "$MODULE_BEFORE" ]; then
    log "nginx worker pid ${WORKER[b]} with MODULE_BEFORE"
fi

NGINX_VERSION=$("$NGINX_BIN" -v 2>&1 | sed 's|.*nginx/||')


# --- the scenarios ---------------------------------------------------------

# A scenario (KIND) is measured in variants: "plain" (proxy_pass or return
# 200, nginx a), "gateway" (nginx a) and "before" (nginx b).  For each
# KIND.VARIANT: URL, body and request headers; TPORT and TPATH: the same
# to the paced mock, for the time to first byte ("direct": the paced mock
# itself).

declare -A URL=() BODYOF=() HDRS=() TPORT=() TPATH=() REF=() VARIANTS=()
declare -A EXPECT=() CTYPE=() LABEL=() GOAL=()
KINDS=()
TTFB_KINDS=()

# scenario KIND PLAIN_PATH PLAIN_BODY PLAIN_HEADERS GATEWAY_PATH GATEWAY_BODY
#          CONTENT_TYPE EXPECT TARGET
scenario() {
    local kind=$1 ppath=$2 pbody=$3 phdrs=$4 gpath=$5 gbody=$6 v

    KINDS+=("$kind")
    CTYPE[$kind]=$7
    EXPECT[$kind]=$8
    GOAL[$kind]=$9
    REF[$kind]=$kind.plain

    URL[$kind.plain]=http://127.0.0.1:${P[a.plain]}$ppath
    BODYOF[$kind.plain]=$pbody
    HDRS[$kind.plain]=$phdrs
    TPORT[$kind.plain]=${P[a.plain_paced]}
    TPATH[$kind.plain]=$ppath

    URL[$kind.direct]=http://127.0.0.1:${P[mock]}$ppath
    BODYOF[$kind.direct]=$pbody
    HDRS[$kind.direct]=$phdrs
    TPORT[$kind.direct]=${P[mock_paced]}
    TPATH[$kind.direct]=$ppath

    VARIANTS[$kind]="plain gateway"

    for v in gateway before; do
        local who=a
        [ $v = before ] && who=b

        URL[$kind.$v]=http://127.0.0.1:${P[$who.gw]}$gpath
        BODYOF[$kind.$v]=$gbody
        HDRS[$kind.$v]=$OPENAI_HDRS
        TPORT[$kind.$v]=${P[$who.gw_paced]}
        TPATH[$kind.$v]=$gpath
    done

    if [ -n "$MODULE_BEFORE" ]; then
        VARIANTS[$kind]+=" before"
    fi
}

scenario json "$UP_PATH" "$BODY" "$OPENAI_HDRS" \
         "$GW_PATH" "$BODY" application/json same "$TARGET"
LABEL[json]="plain proxy_pass|gateway"

scenario sse "$UP_PATH" "$BODY_STREAM" "$OPENAI_HDRS" \
         "$GW_PATH" "$BODY_STREAM" text/event-stream same "$TARGET"
LABEL[sse]="plain proxy_pass|gateway"
TTFB_KINDS+=(sse)

if [ "$COMPAT" = 1 ]; then
    scenario a-json "$A_PATH" "$A_NATIVE" "$A_HDRS" \
             "$COMPAT_PATH" "$A_BODY" application/json compat-json -
    scenario a-sse "$A_PATH" "$A_NATIVE_STREAM" "$A_HDRS" \
             "$COMPAT_PATH" "$A_BODY_STREAM" text/event-stream compat-sse -
    scenario g-json "$G_PATH" "$G_NATIVE" "$G_HDRS" \
             "$COMPAT_PATH" "$G_BODY" application/json compat-json -
    scenario g-sse "$G_PATH_STREAM" "$G_NATIVE" "$G_HDRS" \
             "$COMPAT_PATH" "$G_BODY_STREAM" text/event-stream compat-sse -

    for kind in a-json a-sse g-json g-sse; do
        LABEL[$kind]="proxy_pass, native answer|gateway /compat"
    done
    TTFB_KINDS+=(a-sse g-sse)
fi

if [ "$CACHE" = 1 ]; then
    scenario hit "$GW_PATH" "$BODY" "$OPENAI_HDRS" \
             "$GW_PATH" "$BODY" application/json same "$CACHE_TARGET"
    URL[hit.plain]=http://127.0.0.1:${P[a.return]}$GW_PATH
    URL[hit.gateway]=http://127.0.0.1:${P[a.shm]}$GW_PATH
    URL[hit.before]=http://127.0.0.1:${P[b.shm]}$GW_PATH
    LABEL[hit]="nginx return 200|cache hit, shm"

    if [ "$REDIS" = 1 ]; then
        scenario redis "$GW_PATH" "$BODY" "$OPENAI_HDRS" \
                 "$GW_PATH" "$BODY" application/json same -
        URL[redis.gateway]=http://127.0.0.1:${P[a.redis]}$GW_PATH
        URL[redis.before]=http://127.0.0.1:${P[b.redis]}$GW_PATH
        VARIANTS[redis]=${VARIANTS[redis]#plain }
        REF[redis]=hit.plain
        LABEL[redis]="|cache hit, Redis"
    fi
fi

# accounting off, a request log, metrics: the same requests to nginx "a"'s
# other gateway servers (not measured for the time to first byte)

OBSERVE_KINDS=()
if [ "$OBSERVE" = 1 ]; then
    OBSERVE_KINDS=(json sse)
    [ "$COMPAT" = 1 ] && OBSERVE_KINDS+=(a-json a-sse)

    for kind in "${OBSERVE_KINDS[@]}"; do
        for v in off log metrics; do
            URL[$kind.$v]=${URL[$kind.gateway]/:${P[a.gw]}\//:${P[a.$v]}\/}
            BODYOF[$kind.$v]=${BODYOF[$kind.gateway]}
            HDRS[$kind.$v]=${HDRS[$kind.gateway]}
        done
        VARIANTS[$kind]+=" off log metrics"
    done

    for kind in "${OBSERVE_KINDS[@]}"; do
        URL[$kind.otel]=${URL[$kind.gateway]/:${P[a.gw]}\//:${P[a.otel]}\/}
        BODYOF[$kind.otel]=${BODYOF[$kind.gateway]}
        HDRS[$kind.otel]=${HDRS[$kind.gateway]}
        VARIANTS[$kind]+=" otel"
    done
fi

# the variants of KIND measured for the time to first byte
ttfb_variants() {
    local v
    for v in direct ${VARIANTS[$1]}; do
        [ -n "${TPORT[$1.$v]:-}" ] && echo "$v"
    done
}

# a gateway token checked and a request limit keyed by its name, per
# request, against the same pass-through without them (json gateway); the
# module under test only

if [ "$LIMITS" = 1 ]; then
    scenario limits "$UP_PATH" "$BODY" "$OPENAI_HDRS" \
             "$GW_PATH" "$BODY" application/json same -
    URL[limits.gateway]=http://127.0.0.1:${P[a.lshm]}$GW_PATH
    HDRS[limits.gateway]=$OPENAI_HDRS$'\n'
    HDRS[limits.gateway]+="cf-aig-authorization: Bearer $BENCH_TOKEN"
    VARIANTS[limits]=gateway
    REF[limits]=json.gateway
    LABEL[limits]="|json, auth + limit, shm"

    if [ "$REDIS" = 1 ]; then
        scenario limits-redis "$UP_PATH" "$BODY" "$OPENAI_HDRS" \
                 "$GW_PATH" "$BODY" application/json same -
        URL[limits-redis.gateway]=http://127.0.0.1:${P[a.lredis]}$GW_PATH
        HDRS[limits-redis.gateway]=${HDRS[limits.gateway]}
        VARIANTS[limits-redis]=gateway
        REF[limits-redis]=json.gateway
        LABEL[limits-redis]="|json, auth + limit, Redis"
    fi
fi

URL[json.plain_buffered]=http://127.0.0.1:${P[a.plainbuf]}$UP_PATH
BODYOF[json.plain_buffered]=$BODY
HDRS[json.plain_buffered]=$OPENAI_HDRS


# --- correctness, once -----------------------------------------------------

# post KEY [CURL_ARGS...]: KEY's request with curl, the body on stdout
post() {
    local key=$1 h
    local -a args=(-H 'Content-Type: application/json')
    shift

    while IFS= read -r h; do
        [ -n "$h" ] && args+=(-H "$h")
    done <<< "${HDRS[$key]}"

    curl -sS -X POST "${args[@]}" "$@" --data-binary "${BODYOF[$key]}" \
        "${URL[$key]}"
}

# the provider's answers, as the mock sends them
for kind in "${KINDS[@]}"; do
    [ "$kind" = hit ] || [ "$kind" = redis ] && continue
    post "$kind.direct" > "$TMP/native.$kind" \
        || die "the mock does not answer $kind"
done

# the mock itself: one chunk per SSE event, the streams as long as asked
for kind in "${TTFB_KINDS[@]}"; do

    events=$(grep -c '^data:' "$TMP/native.$kind" || true)
    chunks=$(post "$kind.direct" --raw \
             | grep -c $'^[0-9a-f]\\+\r$' || true)
    [ "$chunks" = $((events + 1)) ] \
        || die "the mock sent $chunks chunks for $events SSE events ($kind)"
    [ "$events" -ge "$STREAM_EVENTS" ] || [ "$kind" = sse ] \
        || die "the mock's $kind stream has $events events," \
               "not $STREAM_EVENTS"
done

# the text of the provider's answer, JSON-escaped: every non-empty "text"
# field (Anthropic and Gemini name it so in answers and stream events)
native_texts() {
    grep -o '"text": *"\([^"\\]\|\\.\)\{1,\}"' "$1" \
        | sed 's/^"text": *"//; s/"$//'
}

# check KEY [HEADER...]: a 200 with the right Content-Type, and
#   same:         exactly the provider's answer
#   compat-json:  a chat.completion whose content is the provider's text
#   compat-sse:   chat.completion.chunk events, a content delta for each
#                 text delta of the provider, then "data: [DONE]"
check() {
    local key=$1 kind=${1%.*} code h expect n m
    shift

    expect=${EXPECT[$kind]}
    [ "${key##*.}" = plain ] && expect=same

    code=$(post "$key" -o "$TMP/check.body" -D "$TMP/check.headers" \
                -w '%{http_code}') \
        || die "check $key: curl failed"

    [ "$code" = 200 ] || { cat "$TMP/check.headers" "$TMP/check.body" >&2;
                           die "check $key: status $code, not 200"; }

    case $expect in
    same)
        if [ "$kind" = hit ] || [ "$kind" = redis ]; then
            cmp -s "$TMP/check.body" "$JSON_FIXTURE" \
                || die "check $key: the body differs from $JSON_FIXTURE"
        else
            cmp -s "$TMP/check.body" "$TMP/native.$kind" \
                || die "check $key: the body differs from the provider's"
        fi
        ;;

    compat-json)
        grep -q '"object":"chat.completion"' "$TMP/check.body" \
            || die "check $key: not a chat.completion"
        grep -qF "\"content\":\"$(native_texts "$TMP/native.$kind" \
                                   | tr -d '\n')\"" "$TMP/check.body" \
            || die "check $key: not the provider's text"
        ;;

    compat-sse)
        n=$(native_texts "$TMP/native.$kind" | wc -l)
        m=$(grep -c '"object":"chat.completion.chunk".*"content":"[^"]' \
                 "$TMP/check.body" || true)
        [ "$n" = "$m" ] \
            || die "check $key: $m content chunks for $n text events"
        [ "$(grep . "$TMP/check.body" | tail -1)" = "data: [DONE]" ] \
            || die "check $key: the stream does not end with [DONE]"
        ;;
    esac

    grep -qi "^content-type: ${CTYPE[$kind]}" "$TMP/check.headers" \
        || die "check $key: no \"Content-Type: ${CTYPE[$kind]}\""

    if [ "${CTYPE[$kind]}" = text/event-stream ]; then
        set -- "$@" "transfer-encoding: chunked"
    fi

    for h in "$@"; do
        grep -qi "^$h" "$TMP/check.headers" \
            || die "check $key: no \"$h\" response header"
    done
}

mock_stats() {
    curl -sS "http://127.0.0.1:${P[mock]}/stats" \
        | sed 's/[^0-9]\{1,\}/ /g; s/^ //'
}

for kind in json sse a-json a-sse g-json g-sse; do
    [ -n "${REF[$kind]:-}" ] || continue

    check "$kind.plain"
    for v in ${VARIANTS[$kind]#plain}; do
        check "$kind.$v" "cf-aig-log-id: " "cf-aig-event-id: "
    done
done

check json.plain_buffered

for kind in limits limits-redis; do
    [ -n "${REF[$kind]:-}" ] || continue
    check "$kind.gateway" "cf-aig-log-id: "
done

if [ "$CACHE" = 1 ]; then
    check hit.plain
    # the first request fills the cache, the second is a hit
    for v in ${VARIANTS[hit]#plain}; do
        check "hit.$v" "cf-aig-cache-status: MISS"
        check "hit.$v" "cf-aig-cache-status: HIT"
    done

    if [ "$REDIS" = 1 ]; then
        for v in ${VARIANTS[redis]}; do
            check "redis.$v" "cf-aig-cache-status: MISS"
            sleep 0.2
            check "redis.$v" "cf-aig-cache-status: HIT"
        done
    fi
fi

log "correctness checks passed"


# --- measurement -----------------------------------------------------------

CLK_TCK=$(getconf CLK_TCK)

# CPU seconds used by the waited-for children of this shell (wrk); "times"
# must run in this shell, not in a $(...) subshell
children_cpu() {
    times > "$TMP/times"
    awk 'NR == 2 {
        n = split($0, t, " "); s = 0;
        for (i = 1; i <= n; i++) {
            split(t[i], ms, "m"); sub("s", "", ms[2]); s += ms[1] * 60 + ms[2]
        }
        print s }' "$TMP/times"
}

# snapshot FILE WORKER: CPU counters of the two cores, of the nginx worker,
# of the mock, of Redis and of wrk, and the mock's counters
snapshot() {
    local who

    for who in "${WHO[@]}"; do
        kill -0 "${WORKER[$who]}" 2>/dev/null \
            || die "the nginx worker ($who) is gone (crashed?)," \
                   "see $TMP/$who/logs"
    done

    {
        grep '^cpu[01] ' /proc/stat
        echo "worker $(awk '{ print $14 + $15 }' "/proc/$2/stat")"
        echo "mock $(awk '{ print $14 + $15 }' "/proc/$MOCK_PID/stat")"
        if [ -n "$REDIS_PID" ]; then
            echo "redis $(awk '{ print $14 + $15 }' "/proc/$REDIS_PID/stat")"
        fi
        printf 'wrk '
        children_cpu
        echo "upstream $(mock_stats)"
    } > "$1"
}

# wrk_run KEY SECONDS [ARGS...]: wrk with KEY's request
wrk_run() {
    local key=$1 seconds=$2
    shift 2

    BENCH_BODY=${BODYOF[$key]} BENCH_HEADERS=${HDRS[$key]} \
        "${PIN_LOAD[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${seconds}s" \
        -s "$BENCH/wrk.lua" "$@" "${URL[$key]}"
}

declare -A R=() T=()

# fields of R[key.round]:
#   1 req/s  2 p50 us  3 p99 us  4 requests  5 nginx worker CPU %
#   6 nginx worker CPU us per request  7 CPU0 busy %  8 CPU1 busy %
#   9 wrk + mock + Redis CPU %  10 socket errors  11 non-2xx  12 requests per
#   upstream connection  13 bytes per response  14 mock CPU us per request

# measure KEY ROUND
measure() {
    local key=$1 round=$2 worker=${WORKER[a]} line

    [ "${key##*.}" = before ] && worker=${WORKER[b]}

    wrk_run "$key" "$WARMUP" >/dev/null

    snapshot "$TMP/snap0" "$worker"

    wrk_run "$key" "$DURATION" --timeout 5s > "$TMP/wrk.out" 2>&1 \
        || { cat "$TMP/wrk.out" >&2; die "wrk failed"; }

    snapshot "$TMP/snap1" "$worker"

    line=$(grep '^BENCH ' "$TMP/wrk.out") \
        || { cat "$TMP/wrk.out" >&2; die "no summary from wrk"; }

    R[$key.$round]=$(echo "$line" | awk -v hz="$CLK_TCK" \
                                        -v s0="$TMP/snap0" -v s1="$TMP/snap1" '
        function load(file, a,    l, f, n, i, busy) {
            while ((getline l < file) > 0) {
                n = split(l, f, " ")
                if (f[1] ~ /^cpu/) {
                    # user nice system idle iowait irq softirq steal
                    busy = 0
                    for (i = 2; i <= 9 && i <= n; i++) {
                        if (i != 5 && i != 6) busy += f[i]
                    }
                    a[f[1] ".busy"] = busy
                    a[f[1] ".all"] = busy + f[5] + f[6]
                } else {
                    a[f[1]] = f[2]
                    a[f[1] ".2"] = f[3]
                }
            }
            close(file)
        }
        {
            for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            load(s0, a); load(s1, b)

            d = v["duration_us"] / 1e6
            n = v["requests"] > 0 ? v["requests"] : 1
            w = (b["worker"] - a["worker"]) / hz
            c0 = b["cpu0.all"] - a["cpu0.all"]
            c1 = b["cpu1.all"] - a["cpu1.all"]
            conns = b["upstream"] - a["upstream"]
            reqs = b["upstream.2"] - a["upstream.2"]

            printf "%s %s %s %s %.0f %.1f %.0f %.0f " \
                   "%.0f %d %d %.0f %.0f %.1f\n",
                v["rps"], v["p50_us"], v["p99_us"], v["requests"],
                100 * w / d, 1e6 * w / n,
                (c0 > 0 ? 100 * (b["cpu0.busy"] - a["cpu0.busy"]) / c0 : 0),
                (c1 > 0 ? 100 * (b["cpu1.busy"] - a["cpu1.busy"]) / c1 : 0),
                100 * ((b["mock"] - a["mock"] + b["redis"] - a["redis"]) / hz \
                       + b["wrk"] - a["wrk"]) / d,
                v["connect_err"] + v["read_err"] + v["write_err"] \
                    + v["timeout_err"], v["status_err"],
                (conns > 0 ? reqs / conns : reqs), v["bytes"] / n,
                1e6 * (b["mock"] - a["mock"]) / hz / n
        }')

    log "$(echo "${R[$key.$round]}" | awk -v k="$key" -v r="$round" '{
        printf "%-20s round %d: %7.0f req/s  p50 %.2fms  p99 %.2fms" \
               "  nginx %d%% %.1fus/req  CPU0 %d%%  CPU1 %d%% (load %d%%," \
               " mock %.1fus/req)  errors %d/%d",
               k, r, $1, $2 / 1000, $3 / 1000, $5, $6, $7, $8, $9, $14,
               $10, $11 }')"
}

# ttfb KEY ROUND: T[key.round] = p50 p90 min total_p50 (us)
ttfb() {
    local key=$1 round=$2 h line
    local -a args=(-n "$TTFB_N" -w 10 -H 'Content-Type: application/json')

    while IFS= read -r h; do
        [ -n "$h" ] && args+=(-H "$h")
    done <<< "${HDRS[$key]}"

    line=$("${PIN_LOAD[@]}" "$TMP/ttfb" "${args[@]}" "${TPORT[$key]}" \
               "${TPATH[$key]}" "${BODYOF[$key]}") \
        || die "ttfb $key failed"

    T[$key.$round]=$(echo "$line" | awk '{
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        print v["p50_us"], v["p90_us"], v["min_us"], v["total_p50_us"] }')

    log "$(echo "${T[$key.$round]}" | awk -v k="ttfb $key" -v r="$round" '{
        printf "%-20s round %d: time to first byte p50 %.1fus p90 %.1fus",
               k, r, $1, $2 }')"
}

# order ROUND ITEM...: the items rotated by (ROUND - 1) / 2 and, in even
# rounds, reversed, so that no variant always runs first or last (with
# two: ab ba ba ab...; with three, six rounds run every order)
order() {
    local round=$1 i n k
    shift
    local -a items=("$@") out=()

    n=${#items[@]}
    k=$(((round - 1) / 2))

    for ((i = 0; i < n; i++)); do
        out+=("${items[$(((i + k) % n))]}")
    done

    if [ $((round % 2)) = 0 ]; then
        for ((i = n - 1; i >= 0; i--)); do
            echo "${out[$i]}"
        done
    else
        printf '%s\n' "${out[@]}"
    fi
}

# the machine should be quiet: other load makes the numbers noisy
busy_before() {
    awk '/^cpu / { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6 }' \
        /proc/stat
}

read -r b0 t0 < <(busy_before)
sleep 1
read -r b1 t1 < <(busy_before)
IDLE_BUSY=$(( t1 > t0 ? 100 * (b1 - b0) / (t1 - t0) : 0 ))

if [ "$IDLE_BUSY" -ge 10 ]; then
    log "warning: the machine is ${IDLE_BUSY}% busy before the benchmark" \
        "starts; the numbers will be noisy"
fi

RUNS=0
for kind in "${KINDS[@]}"; do
    RUNS=$((RUNS + ROUNDS * $(wc -w <<< "${VARIANTS[$kind]}")))
done
RUNS=$((RUNS + (BUFFERED == 1 ? 1 : 0) + (PROFILE == 1 ? ${#PROFILE_KINDS[@]} : 0)))

TTFB_RUNS=0
if [ "$TTFB" = 1 ]; then
    TTFB_RUNS=$((${#TTFB_KINDS[@]} * ROUNDS * (${#WHO[@]} + 2)))
fi

log "measuring: $RUNS runs of ${WARMUP}+${DURATION} s and $TTFB_RUNS" \
    "time-to-first-byte runs (about" \
    "$((RUNS * (WARMUP + DURATION) + TTFB_RUNS * (TTFB_N + 10)
        * (TTFB_DELAY + 1) / 1000 + 5)) s)"

for round in $(seq "$ROUNDS"); do
    for kind in "${KINDS[@]}"; do
        # shellcheck disable=SC2086
        for v in $(order "$round" ${VARIANTS[$kind]}); do
            measure "$kind.$v" "$round"
        done
    done

    if [ "$BUFFERED" = 1 ] && [ "$round" = 1 ]; then
        measure json.plain_buffered 1
    fi

    if [ "$TTFB" = 1 ]; then
        for kind in "${TTFB_KINDS[@]}"; do
            # shellcheck disable=SC2086
            for v in $(order "$round" $(ttfb_variants "$kind")); do
                ttfb "$kind.$v" "$round"
            done
        done
    fi
done


# --- profile ---------------------------------------------------------------

# the worker of nginx "a" under perf during PROFILE_KINDS, after the
# measured rounds so that perf does not slow them down

if [ "$PROFILE" = 1 ]; then
    for kind in "${PROFILE_KINDS[@]}"; do
        wrk_run "$kind.gateway" $((WARMUP + DURATION + 1)) \
            > "$TMP/wrk.profile" 2>&1 &
        wrk_pid=$!
        sleep "$WARMUP"

        # shellcheck disable=SC2086
        perf record -F 999 ${PROFILE_ARGS:-} -p "${WORKER[a]}" \
            -o "$TMP/perf.$kind.data" \
            -- sleep "$DURATION" > "$TMP/perf.$kind.log" 2>&1 \
            || { cat "$TMP/perf.$kind.log" >&2; die "perf record failed"; }

        wait $wrk_pid || die "wrk failed during the profile"

        perf report -i "$TMP/perf.$kind.data" --stdio \
            -F overhead,dso,sym 2>/dev/null \
            | grep -E '^ +[0-9]' | head -20 > "$TMP/profile.$kind" \
            || true

        log "profile of the $kind gateway run recorded"
    done
fi


# --- report ----------------------------------------------------------------

# the fields of every round of KEY, a round a line
rounds_of() {
    local r
    for r in $(seq "$ROUNDS"); do
        [ -n "${R[$1.$r]:-}" ] && echo "${R[$1.$r]}"
    done
}

# best KEY: the round with the highest req/s
best() {
    rounds_of "$1" | sort -k1,1gr | head -1
}

# cost KEY: the lowest nginx CPU per request over the rounds
cost() {
    rounds_of "$1" | awk 'NR == 1 || $6 < m { m = $6 } END { print m }'
}

ERRORS=0
NOISY=0

row() {
    local kind=$1 label=$2 key=$3 note=
    local rps p50 p99 _reqs ncpu _cost c0 c1 load serr sterr upc bpr

    read -r rps p50 p99 _reqs ncpu _cost c0 c1 load serr sterr upc bpr _ \
        <<< "$(best "$key")"

    read -r serr sterr <<< "$(rounds_of "$key" \
                          | awk '{ s += $10; h += $11 } END { print s, h }')"

    if [ "$serr" != 0 ] || [ "$sterr" != 0 ]; then
        note="ERRORS (all rounds): $serr socket, $sterr non-2xx"
        ERRORS=1
    elif [ "$ncpu" -ge 90 ]; then
        note="nginx-bound"
    elif [ "$PIN" = 1 ] && [ "$c1" -ge 90 ]; then
        note="CPU1 (wrk+mock) saturated"
    else
        note="nginx not saturated"
    fi

    if [ "$PIN" = 1 ] \
       && { [ $((c0 - ncpu)) -ge 10 ] || [ $((c1 - load)) -ge 10 ]; }
    then
        note="$note; other load: CPU0 $((c0 - ncpu))%, CPU1 $((c1 - load))%"
        NOISY=1
    fi

    printf '%-6s %-26s %7.0f %7.2fms %7.2fms %7.1fus %5s%% %4s%% %4s%%' \
        "$kind" "$label" "$rps" \
        "$(awk -v u="$p50" 'BEGIN { print u / 1000 }')" \
        "$(awk -v u="$p99" 'BEGIN { print u / 1000 }')" "$(cost "$key")" \
        "$ncpu" "$c0" "$c1"
    printf ' %6s %6s  %s\n' "$upc" "$bpr" "$note"
}

# ratio_row KIND KEY REF_KEY LABEL TARGET ("-": none)
ratio_row() {
    local kind=$1 gk=$2 pk=$3 label=$4 target=$5 g p r cr verdict

    g=$(best "$gk")
    p=$(best "$pk")
    r=$(awk -v g="${g%% *}" -v p="${p%% *}" 'BEGIN { printf "%.3f", g / p }')
    cr=$(awk -v g="$(cost "$gk")" -v p="$(cost "$pk")" \
             'BEGIN { printf "%.3f", p / g }')

    if [ "$target" = - ]; then
        printf '%-6s %-26s %7s  (no target); by CPU per request: %s\n' \
            "$kind" "$label" "$r" "$cr"
        return
    fi

    if awk -v r="$r" -v t="$target" 'BEGIN { exit !(r < t) }'; then
        verdict="below target"
    else
        verdict="ok"
    fi

    printf '%-6s %-26s %7s  %s (target >= %s); by CPU per request: %s\n' \
        "$kind" "$label" "$r" "$verdict" "$target" "$cr"
}

rounds_line() {
    local key=$1 label=$2
    printf '  %-26s' "$label"
    rounds_of "$key" \
        | awk '{ printf " %7.0f (%5.1fus)", $1, $6 } END { print "" }'
}

# paired_line LABEL KEY REF_KEY: the req/s ratio of each round
paired_line() {
    local label=$1 gk=$2 pk=$3 r ratios=
    for r in $(seq "$ROUNDS"); do
        ratios+=$(awk -v g="${R[$gk.$r]%% *}" -v p="${R[$pk.$r]%% *}" \
                   'BEGIN { printf " %7.3f          ", g / p }')
    done
    printf '  %-26s%s\n' "$label" "${ratios%"${ratios##*[! ]}"}"
}

# events FILE: the SSE events of a stream
events() {
    grep -c '^data:' "$1" || true
}

report() {
    local kind plabel glabel target
    local -A m=()

    echo "ngx_ai_gateway benchmark," \
         "$(date -u '+%Y-%m-%d %H:%M UTC'), nginx $NGINX_VERSION"
    echo "$NCPU CPUs ($(sed -n 's/^model name.*: //p' /proc/cpuinfo \
                        | head -1)); $PLACEMENT"
    echo "wrk: $CONNECTIONS connections, $THREADS thread(s), ${DURATION} s" \
         "per run after ${WARMUP} s warmup; best of $ROUNDS round(s)," \
         "order of the variants rotated"
    echo "module (gateway): $MODULE_ID"
    if [ -n "$MODULE_BEFORE" ]; then
        echo "module (before):  $BEFORE_ID,"
        echo "                  in a second nginx, same configuration," \
             "worker also on CPU 0 (idle while the other runs)"
    fi
    echo "machine ${IDLE_BUSY}% busy before the start (other processes)"
    echo "upstream: bench/mock.c, keepalive 32; OpenAI JSON" \
         "$(wc -c < "$TMP/native.json") B (Content-Length)," \
         "SSE $(events "$TMP/native.sse") events" \
         "$(wc -c < "$TMP/native.sse") B (chunked, a chunk per event)"
    if [ "$COMPAT" = 1 ]; then
        echo "          Anthropic JSON $(wc -c < "$TMP/native.a-json") B," \
             "SSE $(events "$TMP/native.a-sse") events" \
             "$(wc -c < "$TMP/native.a-sse") B; Gemini JSON" \
             "$(wc -c < "$TMP/native.g-json") B, SSE" \
             "$(events "$TMP/native.g-sse") events" \
             "$(wc -c < "$TMP/native.g-sse") B"
    fi
    echo
    printf '%-6s %-26s %7s %9s %9s %9s %6s %5s %5s %6s %6s\n' \
        "" "" "req/s" "p50" "p99" "CPU/req" "nginx" "CPU0" "CPU1" \
        "up r/c" "B/resp"

    for kind in "${KINDS[@]}"; do
        plabel=${LABEL[$kind]%%|*}
        glabel=${LABEL[$kind]#*|}
        target=${GOAL[$kind]}

        if [ "${REF[$kind]}" = "$kind.plain" ]; then
            row "$kind" "$plabel" "$kind.plain"
        fi

        row "$kind" "$glabel" "$kind.gateway"

        if [[ " ${VARIANTS[$kind]} " == *" before "* ]]; then
            row "$kind" "$glabel, before" "$kind.before"
        fi

        ratio_row "$kind" "$kind.gateway" "${REF[$kind]}" \
                  "ratio gateway/plain req/s" "$target"

        if [[ " ${VARIANTS[$kind]} " == *" before "* ]]; then
            ratio_row "$kind" "$kind.before" "${REF[$kind]}" \
                      "ratio before/plain req/s" "$target"
            ratio_row "$kind" "$kind.gateway" "$kind.before" \
                      "ratio gateway/before" -
        fi

        if [[ " ${VARIANTS[$kind]} " = *" log "* ]]; then
            row "$kind" "$glabel, usage off" "$kind.off"
            row "$kind" "$glabel, request log" "$kind.log"
            ratio_row "$kind" "$kind.off" "${REF[$kind]}" \
                      "ratio usage off/plain" -
            ratio_row "$kind" "$kind.log" "${REF[$kind]}" \
                      "ratio request log/plain" -
            ratio_row "$kind" "$kind.log" "$kind.off" \
                      "ratio request log/off" -
            printf '%-6s %-26s %+7.1fus CPU/req; accounting alone: %+.1fus\n' \
                "$kind" "request log + accounting" \
                "$(awk -v a="$(cost "$kind.log")" -v b="$(cost "$kind.off")" \
                       'BEGIN { print a - b }')" \
                "$(awk -v a="$(cost "$kind.gateway")" \
                       -v b="$(cost "$kind.off")" 'BEGIN { print a - b }')"
        fi

        if [[ " ${VARIANTS[$kind]} " = *" metrics "* ]]; then
            row "$kind" "$glabel, metrics" "$kind.metrics"
            ratio_row "$kind" "$kind.metrics" "$kind.gateway" \
                      "ratio metrics/metrics off" -
            printf '%-6s %-26s %+7.1fus CPU/req\n' \
                "$kind" "metrics" \
                "$(awk -v a="$(cost "$kind.metrics")" \
                       -v b="$(cost "$kind.gateway")" \
                       'BEGIN { print a - b }')"
        fi

        if [[ " ${VARIANTS[$kind]} " = *" otel "* ]]; then
            row "$kind" "$glabel, OTel traces" "$kind.otel"
            ratio_row "$kind" "$kind.otel" "$kind.gateway" \
                      "ratio OTel traces/gateway" -
            printf '%-6s %-26s %+7.1fus CPU/req\n' "$kind" "a span exported" \
                "$(awk -v a="$(cost "$kind.otel")" \
                       -v b="$(cost "$kind.gateway")" 'BEGIN { print a - b }')"
        fi

        if [ "$kind" = json ] && [ "$BUFFERED" = 1 ]; then
            row json "plain, proxy_buffering on" json.plain_buffered
        fi
    done

    if [ "$TTFB" = 1 ]; then
        echo
        echo "time to first body byte, p50 of $TTFB_N sequential requests" \
             "on one connection (bench/ttfb.c),"
        echo "lowest of the rounds; the provider sends the headers and the" \
             "first event, the rest ${TTFB_DELAY} ms later:"
        printf '%-6s %11s %9s %9s' "" "mock direct" "plain" "gateway"
        if [ -n "$MODULE_BEFORE" ]; then
            printf ' %9s' "before"
        fi
        printf ' %14s' "gateway-plain"
        if [ -n "$MODULE_BEFORE" ]; then
            printf ' %13s' "before-plain"
        fi
        echo

        for kind in "${TTFB_KINDS[@]}"; do
            m=()
            for v in $(ttfb_variants "$kind"); do
                m[$v]=$(for r in $(seq "$ROUNDS"); do
                            echo "${T[$kind.$v.$r]%% *}"
                        done | sort -g | head -1)
            done

            printf '%-6s %9.1fus %7.1fus %7.1fus' "$kind" \
                "${m[direct]}" "${m[plain]}" "${m[gateway]}"
            if [ -n "$MODULE_BEFORE" ]; then
                printf ' %7.1fus' "${m[before]}"
            fi
            printf ' %+12.1fus' \
                "$(awk -v g="${m[gateway]}" -v p="${m[plain]}" \
                       'BEGIN { print g - p }')"
            if [ -n "$MODULE_BEFORE" ]; then
                printf ' %+11.1fus' \
                    "$(awk -v g="${m[before]}" -v p="${m[plain]}" \
                           'BEGIN { print g - p }')"
            fi
            echo
        done
    fi

    echo
    echo "every round, req/s (nginx CPU per request):"
    for kind in "${KINDS[@]}"; do
        for v in ${VARIANTS[$kind]}; do
            rounds_line "$kind.$v" "$kind $v"
        done
        paired_line "$kind gateway/plain" "$kind.gateway" "${REF[$kind]}"
        if [[ " ${VARIANTS[$kind]} " == *" before "* ]]; then
            paired_line "$kind gateway/before" "$kind.gateway" \
                        "$kind.before"
        fi
    done

    if [ "$TTFB" = 1 ]; then
        echo
        echo "every round, time to first byte p50 (us):"
        for kind in "${TTFB_KINDS[@]}"; do
            for v in $(ttfb_variants "$kind"); do
                printf '  %-26s' "$kind $v"
                for r in $(seq "$ROUNDS"); do
                    printf ' %7.1f' "${T[$kind.$v.$r]%% *}"
                done
                echo
            done
        done
    fi

    echo
    if [ "$NOISY" = 1 ]; then
        echo "NOISY: other processes used the CPUs during some of the runs" \
             "reported above; rerun on a quiet machine"
    fi
    printf 'the mock used, per request:'
    for kind in "${KINDS[@]}"; do
        [ "${REF[$kind]}" = "$kind.plain" ] || continue
        [ "$kind" = hit ] && continue
        printf ' %s %sus' "$kind" "$(best "$kind.plain" | awk '{ print $14 }')"
    done
    echo " of CPU, against the nginx CPU/req above"
    echo
    echo "req/s, p50, p99: wrk, the round with the best req/s."
    echo "CPU/req: CPU time of the nginx worker per request (lowest of the" \
         "rounds); nginx: its CPU use in % of one core;"
    echo "CPU0, CPU1: busy % of each core, all processes; up r/c: requests" \
         "per upstream connection; B/resp: bytes per response."
    echo "a-: Anthropic, g-: Gemini, through /compat (gateway) and their" \
         "native answers through proxy_pass (plain)."

    if [ "$PROFILE" = 1 ]; then
        for kind in "${PROFILE_KINDS[@]}"; do
            echo
            echo "profile: the nginx worker during $kind gateway" \
                 "(perf, ${DURATION} s, top 20 by self time):"
            cat "$TMP/profile.$kind"
        done
    fi
}

mkdir -p "$RESULTS"
{
    report

    for who in "${WHO[@]}"; do
        errlog=$(grep -c . "$TMP/$who/logs/error.log" 2>/dev/null || true)
        if [ "${errlog:-0}" -gt 0 ]; then
            echo
            echo "nginx \"$who\" error.log has $errlog line(s), the first ones:"
            head -5 "$TMP/$who/logs/error.log"
        fi
    done
} > "$OUT"

echo >&2
cat "$OUT"

echo "(saved to ${OUT#"$ROOT"/})"

if [ "$ERRORS" = 1 ]; then
    log "some runs had errors, see the table"
fi

exit 0
