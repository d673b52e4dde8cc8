#!/bin/sh
# Copyright (C) ngx_ai_gateway contributors

# nginx code style checks on the C sources (the module's, the unit tests',
# the fuzz targets', the bench's): 80 columns, no tabs,
# no trailing spaces, no "//" comments; and no call circle between files
# (util/layers.py).

cd "$(dirname "$0")/.." || exit 1

fail=0
for f in ngx_ai_gateway/*.c ngx_ai_gateway/*.h t/unit/*.c t/unit/*.h \
         fuzz/*.c fuzz/*.h bench/*.c; do
    awk -v f="$f" '
        length($0) > 80      { printf "%s:%d: over 80 columns\n", f, NR; bad = 1 }
        /\t/                 { printf "%s:%d: tab\n", f, NR; bad = 1 }
        / +$/                { printf "%s:%d: trailing space\n", f, NR; bad = 1 }
        /^[^"]*\/\//         { printf "%s:%d: // comment\n", f, NR; bad = 1 }
        END                  { exit bad }
    ' "$f" || fail=1
done

python3 util/layers.py || fail=1

[ $fail = 0 ] && echo "style: ok"
exit $fail
