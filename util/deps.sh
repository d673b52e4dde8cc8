#!/bin/sh
# Copyright (C) ngx_ai_gateway contributors

# Installs the Debian packages ngx_ai_gateway needs, by what for:
#
#   sh util/deps.sh run [test] [deb]
#
#   run    building the module and running it (make, make run, make demo)
#   test   the test toolchain: Perl test modules, valgrind, clang for the
#          fuzzers, wrk, Redis, OpenSSL, Prometheus and promtool,
#          Chromium for the dashboard's browser test (make test,
#          test-valgrind, unit, fuzz); Node.js 20 is checked for,
#          not installed
#   deb    the packaging tools (make deb)
#
# Idempotent and quiet when everything is there.

set -e

PKGS=
[ $# -gt 0 ] || set -- run

for what in "$@"; do
    case $what in
    run)
        PKGS="$PKGS
            gcc make libc6-dev
            nginx nginx-dev
            libssl-dev libpcre2-dev zlib1g-dev libyajl-dev libhiredis-dev
            ca-certificates curl"
        ;;
    test)
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
            dpkg-dev debhelper fakeroot lintian"
        ;;
    *)
        echo "deps: unknown group \"$what\", use run, test or deb" >&2
        exit 1
        ;;
    esac
done

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

    SUDO=
    if [ "$(id -u)" != 0 ]; then
        SUDO=sudo
    fi

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

# the test mocks, the SDK tests and "make demo" run on Node.js 20 (Debian
# 12's is 18): it is not installed from here; "make run" does not need it
case " $* " in
*" test "*)
    if ! command -v node >/dev/null 2>&1; then
        echo "deps: warning: node 20 or newer is needed by the tests"
    fi
    ;;
esac
