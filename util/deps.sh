#!/bin/sh
# Copyright (C) ngx_ai_gateway contributors

# Installs the Debian packages that building, running and testing
# ngx_ai_gateway need.  Idempotent and quiet when everything is there.

set -e

PKGS="
    gcc make libc6-dev
    nginx nginx-dev
    libssl-dev libpcre2-dev zlib1g-dev libyajl-dev libhiredis-dev
    ca-certificates openssl curl
    redis-server
    perl libtest-base-perl libtext-diff-perl liblist-moreutils-perl
    libipc-run-perl libwww-perl
    valgrind wrk
    clang libclang-rt-14-dev
"

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

# the test mocks and SDK tests run on Node.js 20 (Debian 12's is 18): it
# is not installed from here; "make run" does not need it
if ! command -v node >/dev/null 2>&1; then
    echo "deps: warning: node 20 or newer is needed by the tests"
fi
