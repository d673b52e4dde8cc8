#!/usr/bin/env bash
# Copyright (C) ngx_ai_gateway contributors

#
# bench/run.sh: throughput of the gateway's pass-through against a plain
# nginx proxy_pass to the same mock provider, for JSON and SSE answers.
# See bench/README.md.
#
#   bench/run.sh                     defaults: 2 rounds of 10 s runs
#   DURATION=30 ROUNDS=3 bench/run.sh
#
# Environment (defaults in brackets):
#   DURATION     seconds of each measured run [10]
#   WARMUP       seconds of warmup before each measured run [2]
#   CONNECTIONS  wrk connections [32]
#   THREADS      wrk threads [1]
#   ROUNDS       measured runs per scenario; the best one is reported [2]
#   BUFFERED     1: also measure JSON through proxy_pass with
#                proxy_buffering on, once, as a reference row [1]
#   PIN          1: nginx on CPU 0, wrk and the mock on CPU 1 [1 if there
#                are 2 or more CPUs and taskset exists]
#   NGINX_BIN    nginx binary [/usr/sbin/nginx]
#   MODULE       the module [build/ngx_http_ai_gateway_module.so]
#   KEEP_TMP     1: keep the temporary directory (configs, logs)
#   CACHE        1: also measure cache hits, from the shared memory zone
#                and from Redis, against nginx's "return 200" of the same
#                body [1]
#
# Speed is a measurement here, not a test: the script exits 0 whatever the
# ratio, and non-zero only when something does not work.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-2}
BUFFERED=${BUFFERED:-1}
NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
MODULE=${MODULE:-$ROOT/build/ngx_http_ai_gateway_module.so}
KEEP_TMP=${KEEP_TMP:-0}
CACHE=${CACHE:-1}
TARGET=0.90
CACHE_TARGET=0.80

RESULTS=$BENCH/results
OUT=$RESULTS/latest.txt

BODY='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'
BODY_STREAM=${BODY%\}}',"stream":true}'

GW_PATH=/v1/acct/bench/openai/v1/chat/completions
UP_PATH=/v1/chat/completions

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

[ -x "$NGINX_BIN" ] || die "no nginx at $NGINX_BIN (set NGINX_BIN)"

if [ ! -f "$MODULE" ]; then
    log "building the module"
    make -C "$ROOT" >&2 || die "the module does not build"
fi

FIXTURES=
for d in "$ROOT/t/fixtures/openai-chat" /work/shared/fixtures/openai-chat; do
    if [ -f "$d/text.gpt-4o.json" ] && [ -f "$d/stream-text-usage.sse" ]; then
        FIXTURES=$d
        break
    fi
done

[ -n "$FIXTURES" ] || die "no openai-chat fixtures found"

JSON_FIXTURE=$FIXTURES/text.gpt-4o.json
SSE_FIXTURE=$FIXTURES/stream-text-usage.sse

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


# --- temporary directory, cleanup ------------------------------------------

TMP=$(mktemp -d "${TMPDIR:-/tmp}/aigw-bench.XXXXXX")
MOCK_PID=
NGINX_PID=
REDIS_PID=

cleanup() {
    local rc=$?

    set +e

    if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill -QUIT "$NGINX_PID"
        for _ in $(seq 50); do
            kill -0 "$NGINX_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$NGINX_PID" 2>/dev/null
    fi

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

PORTS=()
p=$((eph_low - 10000 + RANDOM % 9000))
while [ ${#PORTS[@]} -lt 8 ]; do
    if port_free $p; then
        PORTS+=($p)
    fi
    p=$((p + 1))
done

MOCK_PORT=${PORTS[0]}
PLAIN_PORT=${PORTS[1]}
PLAINBUF_PORT=${PORTS[2]}
GW_PORT=${PORTS[3]}
RETURN_PORT=${PORTS[4]}
SHM_PORT=${PORTS[5]}
REDIS_GW_PORT=${PORTS[6]}
REDIS_PORT=${PORTS[7]}

wait_port() {
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}


# a private copy of the module: a rebuild during the run (make copies the
# new .so over the old one) would crash the running workers

cp "$MODULE" "$TMP/ngx_http_ai_gateway_module.so"

MODULE_ID="$(sha256sum "$TMP/ngx_http_ai_gateway_module.so" | cut -c1-12)"
MODULE_ID+=", built $(date -u -r "$MODULE" '+%Y-%m-%d %H:%M UTC')"
if GIT_HEAD=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null); then
    MODULE_ID+=", tree $GIT_HEAD"
    if [ -n "$(git -C "$ROOT" status --porcelain -- ngx_ai_gateway config \
               2>/dev/null)" ]; then
        MODULE_ID+=" + local changes"
    fi
fi


# --- the mock provider -----------------------------------------------------

cc -O2 -Wall -o "$TMP/mock" "$BENCH/mock.c" || die "bench/mock.c does not build"

"${PIN_LOAD[@]}" "$TMP/mock" "$MOCK_PORT" "$JSON_FIXTURE" "$SSE_FIXTURE" \
    2>"$TMP/mock.log" &
MOCK_PID=$!

wait_port "$MOCK_PORT" || die "the mock does not listen on $MOCK_PORT"

# the Redis of the cache-hit runs, on the load side's CPU

REDIS=0
if [ "$CACHE" = 1 ] && command -v redis-server >/dev/null; then
    "${PIN_LOAD[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
        --save '' --appendonly no --daemonize no \
        >"$TMP/redis.log" 2>&1 &
    REDIS_PID=$!
    wait_port "$REDIS_PORT" || die "redis-server does not listen"
    REDIS=1
fi


# --- nginx: plain proxy_pass and the gateway, one worker --------------------

# the cache-hit servers: (c) nginx's "return 200" of the JSON answer, with
# the provider's Content-Type; (d) the gateway answering from its shared
# memory zone; (e) from Redis

cache_servers() {
    [ "$CACHE" = 1 ] || return 0

    local body
    body=$(sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g" "$JSON_FIXTURE")

    cat <<END

    ai_gateway_cache_zone benchcache:64m;

    server {
        listen 127.0.0.1:$RETURN_PORT;

        location /v1/ {
            default_type application/json;
            return 200 '$body\n';
        }
    }

    server {
        listen 127.0.0.1:$SHM_PORT;

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
        listen 127.0.0.1:$REDIS_GW_PORT;

        location /v1/ {
            ai_gateway bench;
            ai_gateway_provider openai http://mock;
            ai_gateway_cache_redis 127.0.0.1:$REDIS_PORT prefix=bench:;
            ai_gateway_cache_ttl 1h;
        }
    }
END
}

mkdir -p "$TMP/nginx/logs"

cat > "$TMP/nginx/nginx.conf" <<EOF
load_module $TMP/ngx_http_ai_gateway_module.so;

worker_processes 1;
error_log logs/error.log error;
pid logs/nginx.pid;

events {
    worker_connections 4096;
}

http {
    access_log off;

    upstream mock {
        server 127.0.0.1:$MOCK_PORT;
        keepalive 32;
    }

    # (a) plain proxy_pass, unbuffered like the gateway; 16k is the
    # gateway's buffer size (ai_gateway_buffer_size)
    server {
        listen 127.0.0.1:$PLAIN_PORT;

        location / {
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_buffer_size 16k;
            proxy_buffers 4 16k;    # unused, nginx checks the sizes
        }
    }

    # (a') reference: plain proxy_pass with nginx's default buffering
    server {
        listen 127.0.0.1:$PLAINBUF_PORT;

        location / {
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering on;
        }
    }

    # (b) the gateway's pass-through to the same upstream{} block
    server {
        listen 127.0.0.1:$GW_PORT;

        location /v1/ {
            ai_gateway bench;
            ai_gateway_provider openai http://mock;
        }
    }
$(cache_servers)
}
EOF

"$NGINX_BIN" -p "$TMP/nginx/" -c "$TMP/nginx/nginx.conf" -t \
    >"$TMP/nginx-t.log" 2>&1 \
    || { cat "$TMP/nginx-t.log" >&2; die "nginx -t failed"; }

"${PIN_SUT[@]}" "$NGINX_BIN" -p "$TMP/nginx/" -c "$TMP/nginx/nginx.conf" \
    -g "daemon off;" 2>>"$TMP/nginx/logs/stderr.log" &
NGINX_PID=$!

CACHE_PORTS=
if [ "$CACHE" = 1 ]; then
    CACHE_PORTS="$RETURN_PORT $SHM_PORT"
    if [ "$REDIS" = 1 ]; then
        CACHE_PORTS+=" $REDIS_GW_PORT"
    fi
fi

for port in $PLAIN_PORT $PLAINBUF_PORT $GW_PORT $CACHE_PORTS; do
    wait_port $port || die "nginx does not listen on $port"
done

WORKER_PID=
for _ in $(seq 50); do
    WORKER_PID=$(pgrep -P "$NGINX_PID" | head -1 || true)
    [ -n "$WORKER_PID" ] && break
    sleep 0.05
done

[ -n "$WORKER_PID" ] || die "no nginx worker process"

log "nginx worker pid $WORKER_PID (to profile it: perf top -p $WORKER_PID)"

NGINX_VERSION=$("$NGINX_BIN" -v 2>&1 | sed 's|.*nginx/||')


# --- correctness, once -----------------------------------------------------

# check NAME URL BODY FIXTURE CONTENT-TYPE [HEADER...]
check() {
    local name=$1 url=$2 body=$3 fixture=$4 ctype=$5 code h
    shift 5

    code=$(curl -sS -o "$TMP/check.body" -D "$TMP/check.headers" \
                -w '%{http_code}' -X POST \
                -H 'Authorization: Bearer sk-test' \
                -H 'Content-Type: application/json' \
                --data-binary "$body" "$url") \
        || die "check $name: curl failed"

    [ "$code" = 200 ] || { cat "$TMP/check.headers" "$TMP/check.body" >&2;
                           die "check $name: status $code, not 200"; }

    cmp -s "$TMP/check.body" "$fixture" \
        || die "check $name: the body differs from $fixture"

    grep -qi "^content-type: $ctype" "$TMP/check.headers" \
        || die "check $name: no \"Content-Type: $ctype\""

    for h in "$@"; do
        grep -qi "^$h" "$TMP/check.headers" \
            || die "check $name: no \"$h\" response header"
    done
}

mock_stats() {
    curl -sS "http://127.0.0.1:$MOCK_PORT/stats" \
        | sed 's/[^0-9]\{1,\}/ /g; s/^ //'
}

PLAIN_URL=http://127.0.0.1:$PLAIN_PORT$UP_PATH
PLAINBUF_URL=http://127.0.0.1:$PLAINBUF_PORT$UP_PATH
GW_URL=http://127.0.0.1:$GW_PORT$GW_PATH

# the mock itself: one chunk per SSE event
events=$(grep -c '^data:' "$SSE_FIXTURE")
chunks=$(curl -sS --raw -X POST --data-binary "$BODY_STREAM" \
              "http://127.0.0.1:$MOCK_PORT$UP_PATH" \
         | grep -c $'^[0-9a-f]\\+\r$' || true)
[ "$chunks" = $((events + 1)) ] \
    || die "the mock sent $chunks chunks for $events SSE events"

check "json plain" "$PLAIN_URL" "$BODY" "$JSON_FIXTURE" application/json
check "json plain buffered" "$PLAINBUF_URL" "$BODY" "$JSON_FIXTURE" \
      application/json
check "json gateway" "$GW_URL" "$BODY" "$JSON_FIXTURE" application/json \
      "cf-aig-log-id: " "cf-aig-event-id: "
check "sse plain" "$PLAIN_URL" "$BODY_STREAM" "$SSE_FIXTURE" \
      text/event-stream "transfer-encoding: chunked"
check "sse gateway" "$GW_URL" "$BODY_STREAM" "$SSE_FIXTURE" \
      text/event-stream "transfer-encoding: chunked" "cf-aig-log-id: "

RETURN_URL=http://127.0.0.1:$RETURN_PORT$GW_PATH
SHM_URL=http://127.0.0.1:$SHM_PORT$GW_PATH
REDIS_URL=http://127.0.0.1:$REDIS_GW_PORT$GW_PATH

if [ "$CACHE" = 1 ]; then
    check "json return 200" "$RETURN_URL" "$BODY" "$JSON_FIXTURE" \
          application/json
    # the first request fills the cache, the second is a hit
    check "json shm miss" "$SHM_URL" "$BODY" "$JSON_FIXTURE" \
          application/json "cf-aig-cache-status: MISS"
    check "json shm hit" "$SHM_URL" "$BODY" "$JSON_FIXTURE" \
          application/json "cf-aig-cache-status: HIT"

    if [ "$REDIS" = 1 ]; then
        check "json redis miss" "$REDIS_URL" "$BODY" "$JSON_FIXTURE" \
              application/json "cf-aig-cache-status: MISS"
        sleep 0.2
        check "json redis hit" "$REDIS_URL" "$BODY" "$JSON_FIXTURE" \
              application/json "cf-aig-cache-status: HIT"
    fi
fi

log "correctness checks passed (JSON ${#BODY} -> $(wc -c < "$JSON_FIXTURE")" \
    "bytes, SSE $events events -> $(wc -c < "$SSE_FIXTURE") bytes)"


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

# snapshot FILE: CPU counters of the two cores, of the nginx worker, of the
# mock and of wrk, and the mock's counters
snapshot() {
    kill -0 "$WORKER_PID" 2>/dev/null \
        || die "the nginx worker is gone (crashed?), see $TMP/nginx/logs"
    {
        grep '^cpu[01] ' /proc/stat
        echo "worker $(awk '{ print $14 + $15 }' "/proc/$WORKER_PID/stat")"
        echo "mock $(awk '{ print $14 + $15 }' "/proc/$MOCK_PID/stat")"
        printf 'wrk '
        children_cpu
        echo "upstream $(mock_stats)"
    } > "$1"
}

declare -A R

# fields of R[key.round]:
#   1 req/s  2 p50 us  3 p99 us  4 requests  5 nginx worker CPU %
#   6 nginx worker CPU us per request  7 CPU0 busy %  8 CPU1 busy %
#   9 wrk + mock CPU %  10 socket errors  11 non-2xx  12 requests per
#   upstream connection  13 bytes per response  14 mock CPU us per request

# measure KEY URL STREAM ROUND
measure() {
    local key=$1 url=$2 stream=$3 round=$4 line

    BENCH_STREAM=$stream "${PIN_LOAD[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" \
        -d"${WARMUP}s" -s "$BENCH/wrk.lua" "$url" >/dev/null

    snapshot "$TMP/snap0"

    BENCH_STREAM=$stream "${PIN_LOAD[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" \
        -d"${DURATION}s" --timeout 5s -s "$BENCH/wrk.lua" "$url" \
        > "$TMP/wrk.out" 2>&1 || { cat "$TMP/wrk.out" >&2; die "wrk failed"; }

    snapshot "$TMP/snap1"

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

            printf "%s %s %s %s %.0f %.1f %.0f %.0f %.0f %d %d %.0f %.0f %.1f\n",
                v["rps"], v["p50_us"], v["p99_us"], v["requests"],
                100 * w / d, 1e6 * w / n,
                (c0 > 0 ? 100 * (b["cpu0.busy"] - a["cpu0.busy"]) / c0 : 0),
                (c1 > 0 ? 100 * (b["cpu1.busy"] - a["cpu1.busy"]) / c1 : 0),
                100 * ((b["mock"] - a["mock"]) / hz + b["wrk"] - a["wrk"]) / d,
                v["connect_err"] + v["read_err"] + v["write_err"] \
                    + v["timeout_err"], v["status_err"],
                (conns > 0 ? reqs / conns : reqs), v["bytes"] / n,
                1e6 * (b["mock"] - a["mock"]) / hz / n
        }')

    log "$(echo "${R[$key.$round]}" | awk -v k="$key" -v r="$round" '{
        printf "%-20s round %d: %7.0f req/s  p50 %.2fms  p99 %.2fms" \
               "  nginx %d%% %.1fus/req  CPU0 %d%%  CPU1 %d%% (wrk+mock %d%%," \
               " mock %.1fus/req)  errors %d/%d",
               k, r, $1, $2 / 1000, $3 / 1000, $5, $6, $7, $8, $9, $14,
               $10, $11 }')"
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

RUNS=$((ROUNDS * 4 + (BUFFERED == 1 ? 1 : 0)
        + (CACHE == 1 ? ROUNDS * (2 + REDIS) : 0)))
log "measuring: $RUNS runs of ${WARMUP}+${DURATION} s" \
    "(about $((RUNS * (WARMUP + DURATION) + 5)) s)"

for round in $(seq "$ROUNDS"); do
    for kind in json sse; do
        stream=0
        [ $kind = sse ] && stream=1

        # plain first in odd rounds, gateway first in even ones
        if [ $((round % 2)) = 1 ]; then
            measure $kind.plain "$PLAIN_URL" $stream "$round"
            measure $kind.gateway "$GW_URL" $stream "$round"
        else
            measure $kind.gateway "$GW_URL" $stream "$round"
            measure $kind.plain "$PLAIN_URL" $stream "$round"
        fi
    done

    if [ "$BUFFERED" = 1 ] && [ "$round" = 1 ]; then
        measure json.plain_buffered "$PLAINBUF_URL" 0 1
    fi

    if [ "$CACHE" = 1 ]; then
        # return 200 first in odd rounds, the cache first in even ones
        if [ $((round % 2)) = 1 ]; then
            measure cache.return "$RETURN_URL" 0 "$round"
            measure cache.shm "$SHM_URL" 0 "$round"
            if [ "$REDIS" = 1 ]; then
                measure cache.redis "$REDIS_URL" 0 "$round"
            fi
        else
            if [ "$REDIS" = 1 ]; then
                measure cache.redis "$REDIS_URL" 0 "$round"
            fi
            measure cache.shm "$SHM_URL" 0 "$round"
            measure cache.return "$RETURN_URL" 0 "$round"
        fi
    fi
done


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
    local rps p50 p99 reqs ncpu _cost c0 c1 load serr sterr upc bpr

    read -r rps p50 p99 reqs ncpu _cost c0 c1 load serr sterr upc bpr _ \
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

    printf '%-5s %-26s %7.0f %7.2fms %7.2fms %7.1fus %5s%% %4s%% %4s%%' \
        "$kind" "$label" "$rps" \
        "$(awk -v u="$p50" 'BEGIN { print u / 1000 }')" \
        "$(awk -v u="$p99" 'BEGIN { print u / 1000 }')" "$(cost "$key")" \
        "$ncpu" "$c0" "$c1"
    printf ' %6s %6s  %s\n' "$upc" "$bpr" "$note"
}

ratio_row() {
    local kind=$1 g p r cr verdict
    local gk=${2:-$kind.gateway} pk=${3:-$kind.plain}
    local label=${4:-ratio gateway/plain req/s} target=${5:-$TARGET}

    g=$(best "$gk")
    p=$(best "$pk")
    r=$(awk -v g="${g%% *}" -v p="${p%% *}" 'BEGIN { printf "%.3f", g / p }')
    cr=$(awk -v g="$(cost "$gk")" -v p="$(cost "$pk")" \
             'BEGIN { printf "%.3f", p / g }')

    if [ "$target" = - ]; then
        printf '%-5s %-26s %7s  (no target); by CPU per request: %s\n' \
            "$kind" "$label" "$r" "$cr"
        return
    fi

    if awk -v r="$r" -v t="$target" 'BEGIN { exit !(r < t) }'; then
        verdict="below target"
    else
        verdict="ok"
    fi

    printf '%-5s %-26s %7s  %s (target >= %s); by CPU per request: %s\n' \
        "$kind" "$label" "$r" "$verdict" "$target" "$cr"
}

rounds_line() {
    local key=$1 label=$2
    printf '  %-26s' "$label"
    rounds_of "$key" \
        | awk '{ printf " %7.0f (%5.1fus)", $1, $6 } END { print "" }'
}

paired_line() {
    local kind=$1 r out=
    for r in $(seq "$ROUNDS"); do
        out+=$(awk -v g="${R[$kind.gateway.$r]%% *}" \
                   -v p="${R[$kind.plain.$r]%% *}" \
                   'BEGIN { printf " %7.3f          ", g / p }')
    done
    printf '  %-26s%s\n' "$kind ratio" "${out%"${out##*[! ]}"}"
}

report() {
    echo "ngx_ai_gateway pass-through benchmark," \
         "$(date -u '+%Y-%m-%d %H:%M UTC'), nginx $NGINX_VERSION"
    echo "$NCPU CPUs ($(sed -n 's/^model name.*: //p' /proc/cpuinfo \
                        | head -1)); $PLACEMENT"
    echo "wrk: $CONNECTIONS connections, $THREADS thread(s), ${DURATION} s" \
         "per run after ${WARMUP} s warmup; best of $ROUNDS round(s)," \
         "plain/gateway order alternated"
    echo "module: sha256 $MODULE_ID"
    echo "machine ${IDLE_BUSY}% busy before the start (other processes)"
    echo "upstream: bench/mock.c, keepalive 32;" \
         "JSON $(wc -c < "$JSON_FIXTURE") B (Content-Length)," \
         "SSE $events events $(wc -c < "$SSE_FIXTURE") B" \
         "(chunked, a chunk per event)"
    echo
    printf '%-5s %-26s %7s %9s %9s %9s %6s %5s %5s %6s %6s\n' \
        "" "" "req/s" "p50" "p99" "CPU/req" "nginx" "CPU0" "CPU1" \
        "up r/c" "B/resp"

    row json "plain proxy_pass" json.plain
    row json "gateway" json.gateway
    ratio_row json
    row sse "plain proxy_pass" sse.plain
    row sse "gateway" sse.gateway
    ratio_row sse

    if [ "$BUFFERED" = 1 ]; then
        row json "plain, proxy_buffering on" json.plain_buffered
    fi

    if [ "$CACHE" = 1 ]; then
        row hit "nginx return 200" cache.return
        row hit "gateway cache, shm" cache.shm
        ratio_row hit cache.shm cache.return "ratio shm hit/return" \
                  "$CACHE_TARGET"
        if [ "$REDIS" = 1 ]; then
            row hit "gateway cache, Redis" cache.redis
            ratio_row hit cache.redis cache.return \
                      "ratio Redis hit/return" "-"
        fi
    fi

    echo
    echo "every round, req/s (nginx CPU per request):"
    rounds_line json.plain "json plain"
    rounds_line json.gateway "json gateway"
    paired_line json
    rounds_line sse.plain "sse plain"
    rounds_line sse.gateway "sse gateway"
    paired_line sse
    if [ "$CACHE" = 1 ]; then
        rounds_line cache.return "hit return 200"
        rounds_line cache.shm "hit shm"
        if [ "$REDIS" = 1 ]; then
            rounds_line cache.redis "hit Redis"
        fi
    fi
    echo
    if [ "$NOISY" = 1 ]; then
        echo "NOISY: other processes used the CPUs during some of the runs" \
             "reported above; rerun on a quiet machine"
    fi
    echo "the mock used $(best json.plain | awk '{ print $14 }')us (JSON)" \
         "and $(best sse.plain | awk '{ print $14 }')us (SSE) of CPU per" \
         "request, against the nginx CPU/req above"
    echo
    echo "req/s, p50, p99: wrk, the round with the best req/s."
    echo "CPU/req: CPU time of the nginx worker per request (lowest of the" \
         "rounds); nginx: its CPU use in % of one core;"
    echo "CPU0, CPU1: busy % of each core, all processes; up r/c: requests" \
         "per upstream connection; B/resp: bytes per response."
}

errlog=$(grep -c . "$TMP/nginx/logs/error.log" 2>/dev/null || true)

mkdir -p "$RESULTS"
{
    report
    if [ "${errlog:-0}" -gt 0 ]; then
        echo
        echo "nginx error.log has $errlog line(s), the first ones:"
        head -5 "$TMP/nginx/logs/error.log"
    fi
} > "$OUT"

echo >&2
cat "$OUT"

echo "(saved to ${OUT#"$ROOT"/})"

if [ "$ERRORS" = 1 ]; then
    log "some runs had errors, see the table"
fi

exit 0
