#!/usr/bin/env bash
# Copyright (C) ngx_ai_gateway contributors
#
# bench/callgrind.sh: instructions per request, the gateway against plain
# proxy_pass, counted by valgrind's callgrind in the nginx worker.
#
#   bench/callgrind.sh [KIND...]        KIND: json sse a-json a-sse g-json
#                                       g-sse hit redis [default: a-json
#                                       a-sse g-json g-sse]
#
# Where bench/run.sh measures requests per second (noisy on a shared
# machine), this counts the user-space instructions (Ir) the worker spends
# per request: deterministic to a fraction of a percent, so that a change
# of a few percent shows.  "hit" and "redis" are cache hits of the
# pass-through JSON, from the shared memory zone and from Redis (a
# redis-server of the script's own), against nginx's "return 200" of the
# same body.  For each KIND it runs N keepalive requests
# through the plain path and through the gateway, with the instrumentation
# switched on only around them, and prints Ir per request and the
# difference; with TOP=n, the n functions that cost the most in the
# gateway's run (inclusive of nothing: self cost), per request.
#
#   N          requests per measurement [200]
#   EVENTS     events of the Anthropic and Gemini streams [34]
#   TOP        functions to list per gateway run [0]
#   MODULE     the module [build/ngx_http_ai_gateway_module.so]
#   NGINX_BIN  [/usr/sbin/nginx]
#   KEEP_TMP   1: keep the temporary directory (callgrind.out.* files)
#
# Needs valgrind (callgrind_control, callgrind_annotate), curl and a C
# compiler.  Kernel time (the system calls) is not counted: bench/run.sh's
# CPU per request is the complete figure.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=$ROOT/bench
N=${N:-200}
EVENTS=${EVENTS:-34}
TOP=${TOP:-0}
MODULE=${MODULE:-$ROOT/build/ngx_http_ai_gateway_module.so}
NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
KEEP_TMP=${KEEP_TMP:-0}

die() { echo "callgrind: $*" >&2; exit 1; }

for t in valgrind callgrind_control callgrind_annotate curl cc; do
    command -v "$t" >/dev/null || die "needs $t"
done
[ -f "$MODULE" ] || die "no module at $MODULE (make)"
[ -x "$NGINX_BIN" ] || die "no nginx at $NGINX_BIN"

[ $# -gt 0 ] || set -- a-json a-sse g-json g-sse

F=$ROOT/t/fixtures
[ -f "$F/anthropic/stream-text.sse" ] || F=/work/shared/fixtures

TMP=$(mktemp -d /tmp/aig-callgrind.XXXXXX)
PIDS=()

cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    [ "$KEEP_TMP" = 1 ] || rm -rf "$TMP"
}
trap cleanup EXIT

# distinct free ports, held together while they are picked

free_ports() {
    python3 -c 'import socket
s = [socket.socket() for i in range(7)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))'
}

wait_port() {
    local i
    for i in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

read -r MOCK_PORT PLAIN_PORT GW_PORT RETURN_PORT SHM_PORT REDIS_GW_PORT \
    REDIS_PORT <<< "$(free_ports)"

REDIS_CONF=
if command -v redis-server >/dev/null; then
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
        --appendonly no > "$TMP/redis.log" 2>&1 &
    PIDS+=($!)
    wait_port "$REDIS_PORT" || die "redis-server does not start"
    REDIS_CONF="
    server {
        listen 127.0.0.1:$REDIS_GW_PORT;

        location /v1/ {
            ai_gateway bench;
            ai_gateway_provider openai http://mock;
            ai_gateway_cache_redis 127.0.0.1:$REDIS_PORT;
            ai_gateway_cache_ttl 1h;
        }
    }"
fi

BODY=$(sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g" \
           "$F/openai-chat/text.gpt-4o.json")

cc -O2 -Wall -o "$TMP/mock" "$BENCH/mock.c" || die "bench/mock.c"
"$TMP/mock" -e "$EVENTS" "$MOCK_PORT" \
    "$F/openai-chat/text.gpt-4o.json" "$F/openai-chat/stream-text-usage.sse" \
    "$F/anthropic/text.json" "$F/anthropic/stream-text.sse" \
    "$F/google-gemini/text.json" "$F/google-gemini/stream-text.sse" \
    2>"$TMP/mock.log" &
PIDS+=($!)
wait_port "$MOCK_PORT" || die "the mock does not start"

cp "$MODULE" "$TMP/module.so"
mkdir -p "$TMP/logs"
cat > "$TMP/nginx.conf" <<END
load_module $TMP/module.so;
master_process off;
daemon off;
worker_processes 1;
error_log $TMP/logs/error.log error;
pid $TMP/nginx.pid;

events {
    worker_connections 1024;
}

http {
    access_log off;

    upstream mock {
        server 127.0.0.1:$MOCK_PORT;
        keepalive 32;
    }

    server {
        listen 127.0.0.1:$PLAIN_PORT;

        location / {
            proxy_pass http://mock;
            include $BENCH/plain-proxy.conf;
        }
    }

    server {
        listen 127.0.0.1:$GW_PORT;

        location /v1/ {
            ai_gateway bench;
            ai_gateway_provider openai http://mock;
            ai_gateway_provider anthropic http://mock;
            ai_gateway_provider google-ai-studio http://mock;
        }
    }

    server {
        listen 127.0.0.1:$RETURN_PORT;

        location /v1/ {
            default_type application/json;
            return 200 '$BODY\n';
        }
    }

    ai_gateway_cache_zone benchcache:16m;

    server {
        listen 127.0.0.1:$SHM_PORT;

        location /v1/ {
            ai_gateway bench;
            ai_gateway_provider openai http://mock;
            ai_gateway_cache benchcache;
            ai_gateway_cache_ttl 1h;
        }
    }
$REDIS_CONF
}
END

valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$TMP/callgrind.out.%p" \
    "$NGINX_BIN" -p "$TMP/" -c "$TMP/nginx.conf" 2>"$TMP/valgrind.log" &
VG=$!
PIDS+=($VG)
wait_port "$GW_PORT" || die "nginx does not start under callgrind"

A='{"model":"anthropic/claude-sonnet-4-5","messages":[{"role":"user",'
A+='"content":"hi"}]}'
AN='{"model":"claude-sonnet-4-5","max_tokens":4096,"messages":'
AN+='[{"role":"user","content":"hi"}]}'
G='{"model":"google-ai-studio/gemini-2.0-flash","messages":'
G+='[{"role":"user","content":"hi"}]}'
GN='{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}'
O='{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
S=',"stream":true}'
C=/v1/acct/bench/compat/chat/completions
OP=/v1/acct/bench/openai/v1/chat/completions
GS='/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse'

# KIND -> plain path, plain body, gateway path, gateway body (and ports)

request() {
    case $1 in
    json)   echo "/v1/chat/completions|$O|$OP|$O" ;;
    sse)    echo "/v1/chat/completions|${O%\}}$S|$OP|${O%\}}$S" ;;
    a-json) echo "/v1/messages|$AN|$C|$A" ;;
    a-sse)  echo "/v1/messages|${AN%\}}$S|$C|${A%\}}$S" ;;
    g-json) echo "/v1beta/models/gemini-2.0-flash:generateContent|$GN|$C|$G";;
    g-sse)  echo "$GS|$GN|$C|${G%\}}$S" ;;
    hit)    echo "$OP|$O|$OP|$O|$RETURN_PORT|$SHM_PORT" ;;
    redis)  [ -n "$REDIS_CONF" ] || die "redis: no redis-server"
            echo "$OP|$O|$OP|$O|$RETURN_PORT|$REDIS_GW_PORT" ;;
    *)      die "unknown kind $1" ;;
    esac
}

# run PORT PATH BODY: N requests on one keepalive connection

run() {
    local i
    : > "$TMP/curl.cfg"
    for i in $(seq "$N"); do
        {
            [ "$i" -gt 1 ] && echo next
            echo "url = \"http://127.0.0.1:$1$2\""
            echo 'header = "Content-Type: application/json"'
            echo 'header = "Authorization: Bearer sk-bench"'
            echo 'header = "x-api-key: sk-bench"'
            echo "data-binary = \"$(printf '%s' "$3" | sed 's/"/\\"/g')\""
            echo 'output = "/dev/null"'
            echo 'write-out = "%{http_code}\n"'
        } >> "$TMP/curl.cfg"
    done
    curl -s -K "$TMP/curl.cfg" > "$TMP/codes"
    [ "$(grep -c '^200$' "$TMP/codes")" = "$N" ] \
        || die "not every request answered 200: $(sort "$TMP/codes" | uniq -c)"
}

# measure NAME PORT PATH BODY: Ir per request, and the dump's file

measure() {
    local f before after
    run "$2" "$3" "$4"                      # warm: connections, pools
    callgrind_control -z "$VG" >/dev/null 2>&1
    callgrind_control -i on "$VG" >/dev/null 2>&1
    run "$2" "$3" "$4"
    callgrind_control -i off "$VG" >/dev/null 2>&1
    callgrind_control -d "$1" "$VG" >/dev/null 2>&1
    f=$(ls -t "$TMP"/callgrind.out.*.* | head -n 1)
    mv "$f" "$TMP/$1.out"
    callgrind_annotate "$TMP/$1.out" > "$TMP/$1.txt" 2>/dev/null
    awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }' \
        "$TMP/$1.txt"
}

printf '%-8s %12s %12s %12s %7s\n' kind plain gateway added ratio
for kind in "$@"; do
    IFS='|' read -r pp pb gp gb rp gwp <<< "$(request "$kind")"
    plain=$(measure "$kind.plain" "${rp:-$PLAIN_PORT}" "$pp" "$pb")
    gw=$(measure "$kind.gateway" "${gwp:-$GW_PORT}" "$gp" "$gb")
    awk -v k="$kind" -v p="$plain" -v g="$gw" -v n="$N" 'BEGIN {
        printf "%-8s %12.0f %12.0f %12.0f %7.2f\n",
               k, p / n, g / n, (g - p) / n, p / g }'
    if [ "$TOP" -gt 0 ]; then
        awk -v n="$N" -v top="$TOP" '
                /^-+$/ { dash++; next }
                dash >= 3 && NF >= 2 && $1 ~ /^[0-9,]+$/ {
                    v = $1; gsub(",", "", v)
                    $1 = ""; if ($2 ~ /^\(/) $2 = ""
                    printf "    %9.0f %s\n", v / n, $0
                    if (++c >= top) exit
                }' "$TMP/$kind.gateway.txt"
    fi
done
echo "(user-space instructions per request in the nginx worker, $N" \
     "requests each; ratio: plain/gateway)"
