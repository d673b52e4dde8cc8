#!/bin/sh
# Copyright (C) ngx_ai_gateway contributors

# The package's CI step: builds libnginx-mod-http-ai-gateway (make deb,
# lintian), installs it into the machine's nginx, and proves it there:
#
#   1. an nginx of its own (its own configuration, pid and logs, on
#      127.0.0.1:DEB_CI_PORT, 2501 by default) starts without the module;
#   2. the package is installed: the module in /usr/lib/nginx/modules/,
#      enabled through /etc/nginx/modules-enabled/;
#   3. the package's example gateway (examples/ai-gateway.conf, from
#      /usr/share/doc/) is added, openai and google-ai-studio pointed at
#      the mock provider (t/mock/provider.js --demo 1, on DEB_CI_PORT + 1),
#      and nginx reloaded: the module is loaded by the reload;
#   4. one request through the gateway is answered by the mock; the
#      version is in the error log; the price table is found where the
#      package puts it (the request has a cost); a key in a query string
#      is not in the access log;
#   5. nginx is stopped and the package purged.
#
# Whatever happens, it leaves no nginx running or configured, and the
# package removed.  Run as root (dpkg).

set -e

cd "$(dirname "$0")/.."

pkg=libnginx-mod-http-ai-gateway
port=${DEB_CI_PORT:-2501}
mport=$((port + 1))
gport=$((port + 2))
nginx=/usr/sbin/nginx
enabled=/etc/nginx/modules-enabled/50-mod-http-ai-gateway.conf
so=/usr/lib/nginx/modules/ngx_http_ai_gateway_module.so
examples=/usr/share/doc/$pkg/examples

version=$(make -s version)

make deb

deb=$(ls "$PWD"/build/deb/${pkg}_"$version"-1_*.deb)

tmp=$(mktemp -d /tmp/aigw-deb-ci.XXXXXX)
chmod 755 "$tmp"
mock=

cleanup() {
    rc=$?
    set +e
    if [ -f "$tmp/nginx.pid" ]; then
        "$nginx" -c "$tmp/nginx.conf" -s quit 2>/dev/null
        for i in $(seq 50); do
            [ -f "$tmp/nginx.pid" ] || break
            sleep 0.1
        done
        [ -f "$tmp/nginx.pid" ] && kill -9 "$(cat "$tmp/nginx.pid")" 2>/dev/null
    fi
    [ -z "$mock" ] || kill "$mock" 2>/dev/null
    if dpkg-query -W -f '${Status}' $pkg 2>/dev/null | grep -q installed; then
        dpkg -P $pkg >/dev/null
    fi
    if [ $rc != 0 ]; then
        echo "deb-ci: failed; nginx's error log:"
        cat "$tmp/error.log" 2>/dev/null | tail -20
    fi
    rm -rf "$tmp"
    exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
    echo "deb-ci: FAILED: $*" >&2
    exit 1
}

# 1. nginx of its own, without the module

mkdir -p "$tmp/conf.d"

cat > "$tmp/nginx.conf" <<END
pid        $tmp/nginx.pid;
error_log  $tmp/error.log notice;

include  /etc/nginx/modules-enabled/*.conf;

events {
    worker_connections  64;
}

http {
    access_log             $tmp/access.log;
    client_body_temp_path  $tmp/client_body_temp;
    proxy_temp_path        $tmp/proxy_temp;
    fastcgi_temp_path      $tmp/fastcgi_temp;
    uwsgi_temp_path        $tmp/uwsgi_temp;
    scgi_temp_path         $tmp/scgi_temp;

    include  $tmp/conf.d/*.conf;

    server {
        listen  127.0.0.1:$port;
        location = /health {
            return 200 "ok\n";
        }
    }
}
END

"$nginx" -c "$tmp/nginx.conf"
curl -sf "http://127.0.0.1:$port/health" >/dev/null || fail "nginx did not start"
echo "deb-ci: nginx on 127.0.0.1:$port, without the module"

: > "$tmp/mock.out"
node t/mock/provider.js --demo 1 --port "$mport" \
    > "$tmp/mock.out" 2> "$tmp/mock.log" < /dev/null &
mock=$!

# 2. the package

dpkg -i "$deb" >/dev/null || fail "dpkg -i $deb"

[ -f "$so" ] || fail "no $so"
[ -L "$enabled" ] || fail "no $enabled"
grep -q 'load_module modules/ngx_http_ai_gateway_module.so;' "$enabled" \
    || fail "$enabled does not load the module"
echo "deb-ci: installed $(basename "$deb"); $enabled -> $(readlink "$enabled")"

# 3. the example gateway, its providers at the mock; a reload

[ -f "$examples/ai-gateway.conf" ] || fail "no $examples/ai-gateway.conf"

sed -e "s/127\.0\.0\.1:8080/127.0.0.1:$gport/" \
    -e "s|/var/log/nginx/ai-gateway.log|$tmp/ai-gateway.log|" \
    "$examples/ai-gateway.conf" > "$tmp/conf.d/ai-gateway.conf"

cat > "$tmp/conf.d/mock.conf" <<END
ai_gateway_provider  openai            http://127.0.0.1:$mport;
ai_gateway_provider  google-ai-studio  http://127.0.0.1:$mport;
END

for i in $(seq 50); do
    grep -q MOCK_READY "$tmp/mock.out" && break
    sleep 0.1
done
grep -q MOCK_READY "$tmp/mock.out" || fail "the mock provider did not start"

"$nginx" -t -q -c "$tmp/nginx.conf" || fail "nginx -t"
"$nginx" -c "$tmp/nginx.conf" -s reload

for i in $(seq 50); do
    curl -s -o /dev/null "http://127.0.0.1:$gport/" && break
    sleep 0.1
done

# 4. through the gateway to the mock

gw=http://127.0.0.1:$gport/v1/ACCOUNT/default

out=$(curl -sS "$gw/openai/chat/completions" \
      -H 'Content-Type: application/json' \
      -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}')
echo "$out" | grep -q '\[mock\]' || fail "no answer from the mock: $out"
echo "deb-ci: $gw/openai/chat/completions answered by the mock"

[ -f /usr/share/$pkg/prices.json ] || fail "no /usr/share/$pkg/prices.json"

out=$(curl -sS "$gw/google-ai-studio/v1beta/models/gemini-2.5-flash:generateContent?key=SECRET-KEY-IN-QUERY" \
      -H 'Content-Type: application/json' \
      -d '{"contents":[{"role":"user","parts":[{"text":"Hi"}]}]}')
echo "$out" | grep -q '\[mock\]' || fail "no Gemini answer from the mock: $out"

grep -q "ai_gateway: ngx_ai_gateway/$version" "$tmp/error.log" \
    || fail "no version in the error log"

sleep 0.2
grep -q 'provider=google-ai-studio' "$tmp/ai-gateway.log" \
    || fail "no access log line"
grep 'provider=openai' "$tmp/ai-gateway.log" | grep -q 'cost=0\.[0-9]' \
    || fail "no cost in the access log: the price table was not read"
if grep -q 'SECRET-KEY-IN-QUERY' "$tmp/ai-gateway.log"; then
    fail "the query string's key is in the access log"
fi
echo "deb-ci: version $version logged; a cost; no key in the access log"

out=$(curl -sS "http://127.0.0.1:$gport/metrics")
echo "$out" | grep -q '^ai_gateway_requests_total{.*gateway="default"' \
    || fail "no request counted in /metrics: $out"
for f in index.html app.js app.css; do
    [ -f /usr/share/$pkg/dashboard/$f ] \
        || fail "no /usr/share/$pkg/dashboard/$f"
done
echo "deb-ci: the example's /metrics counts the requests; the dashboard's files"

# 5. stopped, removed

"$nginx" -c "$tmp/nginx.conf" -s quit
for i in $(seq 50); do
    [ -f "$tmp/nginx.pid" ] || break
    sleep 0.1
done
[ ! -f "$tmp/nginx.pid" ] || fail "nginx did not stop"

dpkg -P $pkg >/dev/null
[ ! -e "$so" ] || fail "$so left after purge"
[ ! -e "$enabled" ] || fail "$enabled left after purge"
[ ! -e "$enabled.removed" ] || fail "$enabled.removed left after purge"
echo "deb-ci: package purged, nginx stopped"

echo "deb-ci: 1 passed, 0 failed"
