#!/bin/sh
# Copyright (C) ngx_ai_gateway contributors

# make demo, make demo-try: the gateway in front of the local mock provider
# (t/mock/provider.js --demo 1), with no provider key and no network.
#
#   sh util/demo.sh serve   the mock and nginx until Ctrl-C
#   sh util/demo.sh try     a demo of its own: requests with curl and with
#                           the OpenAI SDK, each answer checked to be the
#                           mock's; then both are stopped
#
# DEMO_PORT (8080) and DEMO_MOCK_PORT (9001) choose the ports; NGINX_BIN
# and MODULE the nginx and the module (build/).

set -e

cd "$(dirname "$0")/.."

mode=${1:-serve}
nginx=${NGINX_BIN:-/usr/sbin/nginx}
module=${MODULE:-$PWD/build/ngx_http_ai_gateway_module.so}
port=${DEMO_PORT:-8080}
mport=${DEMO_MOCK_PORT:-9001}
dir=$PWD/build/demo
gw=http://127.0.0.1:$port/v1/ACCOUNT/default

command -v node >/dev/null 2>&1 || {
    echo "demo: the mock provider needs Node.js 20 or newer" >&2
    exit 1
}

mkdir -p "$dir/logs"
sed -e "s/127\.0\.0\.1:8080/127.0.0.1:$port/" \
    -e "s/127\.0\.0\.1:9001/127.0.0.1:$mport/" \
    examples/demo.conf > "$dir/nginx.conf"

mock=
stop() {
    if [ -f "$dir/nginx.pid" ]; then
        kill -QUIT "$(cat "$dir/nginx.pid")" 2>/dev/null || true
        for i in 1 2 3 4 5 6 7 8 9 10; do
            [ -f "$dir/nginx.pid" ] || break
            sleep 0.2
        done
    fi
    [ -z "$mock" ] || kill "$mock" 2>/dev/null || true
}
trap stop EXIT
trap 'exit 130' INT TERM

: > "$dir/mock.out"
node t/mock/provider.js --demo 1 --port "$mport" \
    > "$dir/mock.out" 2> "$dir/logs/mock.log" < /dev/null &
mock=$!

for i in $(seq 50); do
    grep -q MOCK_READY "$dir/mock.out" && break
    kill -0 $mock 2>/dev/null || break
    sleep 0.1
done

grep -q MOCK_READY "$dir/mock.out" || {
    echo "demo: the mock provider did not start on 127.0.0.1:$mport:" >&2
    cat "$dir/logs/mock.log" >&2
    exit 1
}

if [ "$mode" = serve ]; then
    cat <<END

ai gateway demo: the gateway "default" in front of a mock provider on
127.0.0.1:$mport (no key, no network; answers say they are the mock's)

    GW=$gw

    \$GW/openai/chat/completions
    \$GW/anthropic/v1/messages
    \$GW/compat/chat/completions  (models openai/..., anthropic/...,
                                  google-ai-studio/...)

e.g.

    curl \$GW/openai/chat/completions \\
      -H 'Content-Type: application/json' \\
      -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}'

make demo-try tries them all with curl and the OpenAI SDK (on other
ports, DEMO_PORT=8090 DEMO_MOCK_PORT=9091 make demo-try, while this one
runs).  Logs: build/demo/logs/.  Ctrl-C stops it.

END
    "$nginx" -p "$dir/" -c "$dir/nginx.conf" \
        -g "load_module $module; daemon off; pid $dir/nginx.pid;"
    exit 0
fi

[ "$mode" = try ] || { echo "usage: util/demo.sh serve|try" >&2; exit 1; }

"$nginx" -p "$dir/" -c "$dir/nginx.conf" \
    -g "load_module $module; pid $dir/nginx.pid;"

for i in $(seq 50); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && break
    sleep 0.1
done

fail=0

# one request: its command shown, its answer shown and checked
try() {
    what=$1
    shift
    echo "== $what"
    printf '$ curl'
    for a; do
        case $a in
        *[!A-Za-z0-9_./:=-]*) printf " '%s'" "$a" ;;
        *)                    printf ' %s' "$a" ;;
        esac
    done | sed "s|$gw|\$GW|g"
    echo
    out=$(curl -sS -i "$@" 2>&1) || true
    echo "$out" | tr -d '\r' \
        | grep -i -E '^(HTTP/|content-type|cf-aig-|x-mock-provider)|mock' \
        | head -12 | cut -c1-160
    if echo "$out" | grep -q '\[mock\]'; then
        echo "ok: the mock's answer"
    else
        echo "FAILED: no answer from the mock"
        fail=1
    fi
    echo
}

json='Content-Type: application/json'

echo "GW=$gw"
echo

try "OpenAI, provider-native" $gw/openai/chat/completions -H "$json" \
    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}'

try "OpenAI, streamed" -N $gw/openai/chat/completions -H "$json" \
    -d '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Count to 3"}]}'

try "Anthropic, provider-native" $gw/anthropic/v1/messages -H "$json" \
    -H 'anthropic-version: 2023-06-01' \
    -d '{"model":"claude-sonnet-4-6","max_tokens":64,"messages":[{"role":"user","content":"Hi"}]}'

try "Unified API, Anthropic translated" $gw/compat/chat/completions \
    -H "$json" \
    -d '{"model":"anthropic/claude-sonnet-4-6","messages":[{"role":"user","content":"Hi"}]}'

try "Unified API, Gemini translated" $gw/compat/chat/completions \
    -H "$json" \
    -d '{"model":"google-ai-studio/gemini-2.5-flash","messages":[{"role":"user","content":"Hi"}]}'

try "the cache: the same request again with cf-aig-cache-ttl, twice" \
    $gw/openai/chat/completions -H "$json" -H 'cf-aig-cache-ttl: 60' \
    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Cache me"}]}'
try "... the second one a HIT" \
    $gw/openai/chat/completions -H "$json" -H 'cf-aig-cache-ttl: 60' \
    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Cache me"}]}'

echo "== the OpenAI SDK (npm openai), baseURL $gw/openai"
echo "\$ node t/sdk/demo.mjs $gw"
if out=$(node t/sdk/demo.mjs "$gw" 2>&1) \
   && echo "$out" | grep -q '\[mock\]'
then
    echo "$out"
    echo "ok: the mock's answer, through the SDK"
else
    echo "$out"
    echo "FAILED: the OpenAI SDK got no answer from the mock"
    fail=1
fi
echo

if [ $fail = 0 ]; then
    echo "demo: 8 passed, 0 failed"
else
    echo "demo: some requests failed; logs in build/demo/logs/"
    exit 1
fi
