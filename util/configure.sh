#!/bin/bash
# Copyright (C) ngx_ai_gateway contributors

# Configures an nginx source tree for building the module as a dynamic
# module:  util/configure.sh <nginx source> <build dir> <module dir>
#
# Debian's nginx-dev tree carries the configure flags of Debian's nginx
# (conf_flags), which --with-compat needs for the module to load there.

set -e

src=$1
build=$2
module=$3

rm -rf "$build/nginx"
mkdir -p "$build"
cp -r "$src" "$build/nginx"
cd "$build/nginx"

flags=(--with-compat --with-http_ssl_module --with-threads)

if [ -f conf_flags ]; then
    . ./conf_flags
    flags=("${NGX_CONF_FLAGS[@]}")
fi

conf=./configure
[ -x "$conf" ] || conf=./auto/configure

"$conf" "${flags[@]}" \
    --with-cc-opt="$CC_OPT" --with-ld-opt="$LD_OPT" \
    --add-dynamic-module="$module" > "$build/configure.log" 2>&1 || {
    tail -30 "$build/configure.log"
    exit 1
}
