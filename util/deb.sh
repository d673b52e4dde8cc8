#!/bin/sh
# Copyright (C) ngx_ai_gateway contributors

# make deb: builds libnginx-mod-http-ai-gateway_VERSION_ARCH.deb in
# build/deb/ from a copy of the tree (the work tree itself stays as it is),
# then runs lintian on it, which must report no error.
#
#   sh util/deb.sh VERSION
#
# debian/changelog is written here, for VERSION-1 (VERSION is the one of
# ngx_http_ai_gateway_version.h): the project's own history is
# CHANGELOG.md, installed as the upstream changelog.

set -e

cd "$(dirname "$0")/.."

version=$1
[ -n "$version" ] || { echo "usage: util/deb.sh VERSION" >&2; exit 1; }

pkg=libnginx-mod-http-ai-gateway
out=$PWD/build/deb
src=$out/$pkg-$version

rm -rf "$out"
mkdir -p "$src"

# the sources: what git knows (tracked or not ignored), or, outside a git
# checkout, the tree less what builds and tests leave
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard \
        | xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' _ \
        | tar -c --null -T - -f - | tar -x -C "$src" -f -
else
    tar -c --exclude=./build --exclude=./.git --exclude='./t/servroot*' \
        --exclude=node_modules -f - . | tar -x -C "$src" -f -
fi

date=$(date -R ${SOURCE_DATE_EPOCH:+-d @$SOURCE_DATE_EPOCH})
maint=$(sed -n 's/^Maintainer: //p' debian/control)

# Debian revision 1: the packaging of this version, as it is
cat > "$src/debian/changelog" <<END
$pkg ($version-1) unstable; urgency=medium

  * ngx_ai_gateway $version: see changelog.gz beside this file.

 -- $maint  $date
END

(cd "$src" && dpkg-buildpackage -b -us -uc) > "$out/build.log" 2>&1 || {
    tail -40 "$out/build.log"
    echo "deb: dpkg-buildpackage failed, see $out/build.log" >&2
    exit 1
}

deb=$(ls "$out"/${pkg}_"$version"-1_*.deb)

echo
dpkg-deb --info "$deb" | sed -n '/Package:/,/Description:/p'
dpkg-deb --contents "$deb" | awk '{ print "    " $NF }' | grep -v '/$'
echo

# errors fail the build; warnings are shown
rc=0
lintian --fail-on error "$deb" > "$out/lintian.log" 2>&1 || rc=$?
grep -v '^running with root' "$out/lintian.log" || true
[ $rc = 0 ] || { echo "deb: lintian found errors" >&2; exit 1; }

echo "deb: $deb"
