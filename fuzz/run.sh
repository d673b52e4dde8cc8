#!/bin/sh
# Copyright (C) ngx_ai_gateway contributors

# Builds the libFuzzer targets of the Unified API translators and of the
# cache entry decoder, and runs each for SECONDS (default 20) on a seed
# corpus made from the recorded fixtures (the translators) or from real
# entries (fuzz/seeds/cache_entry/): sh fuzz/run.sh [SECONDS]
#
#   request    an OpenAI request to both native requests
#   response   a native response to a chat.completion
#   error      a native error body to an OpenAI error object
#   stream     a native SSE body, fed whole and split at points taken
#              from the input: the same chunks both ways
#   embed      an OpenAI embeddings request to Gemini's, or a Gemini
#              embeddings response to the list, float and base64 alike
#   steps      a Universal Endpoint body: what is accepted can be written
#              into a provider request as it is
#   cache_entry  a cache entry as read back from the zone or Redis: what
#              the decoder accepts is safe to send, and reads back the same
#              once written again
#   json       the module's JSON (yajl on the pools) against yajl_tree and
#              yajl_gen on malloc(): the same trees, texts and refusals
#   usage      the meter on JSON, SSE and AWS event-stream answers, whole
#              and split: the same counts, model and bytes kept; the
#              request side (include_usage, cf-aig-metadata,
#              cf-aig-custom-cost, a price file): JSON out, stable
#   log_record a log record as read back from a store: what the decoder
#              accepts reads back the same, its JSON is written, filters
#              and sort keys take it
#   query      a Logs API query string: arguments and filters (JSON or the
#              SDKs' encoding) accepted within bounds, or refused with a
#              message
#
# Crashes are left in build/fuzz/ (crash-*); the exit status is not 0.
# NGINX_BUILD: the configured nginx tree (default build/nginx); CC: clang.

set -e

cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${1:-20}
CC=${CC:-clang}
OUT=build/fuzz

. t/unit/env.sh

if ! command -v "$CC" >/dev/null; then
    echo "fuzz/run.sh: no $CC (apt-get install clang libclang-rt-14-dev)" >&2
    exit 1
fi

mkdir -p "$OUT"

TARGETS="request response error stream embed steps cache_entry json usage
         log_record query"

for t in $TARGETS; do
    # shellcheck disable=SC2086
    $CC -g -O1 -fsanitize=fuzzer,address,undefined \
        -fno-sanitize-recover=undefined -Wno-unused-parameter \
        $INCS $SRCS "fuzz/fuzz_$t.c" -o "$OUT/fuzz_$t" -lyajl -lm
done


# seed corpora from the fixtures (and the unit cases)

seed() {    # seed DIR NAME PREFIX FILE (PREFIX: octal escapes)
    # shellcheck disable=SC2059
    { printf "$3"; cat "$4"; } > "$OUT/seeds/$1/$2"
}

rm -rf "$OUT/seeds"
mkdir -p "$OUT/seeds/request" "$OUT/seeds/response" "$OUT/seeds/error" \
         "$OUT/seeds/stream" "$OUT/seeds/embed" "$OUT/seeds/steps" \
         "$OUT/seeds/json" "$OUT/seeds/usage"

# texts for the parsers (first byte even), calls for the generators (odd)

for f in t/fixtures/*/*.json t/unit/cases/request/*.json; do
    seed json "$(basename "$(dirname "$f")")-$(basename "$f")" '\000' "$f"
done

seed json calls '\001' t/unit/cases/request/everything.json

for f in t/unit/cases/steps/*.json; do
    seed steps "$(basename "$f")" "" "$f"
done

# entries the gateway stored in Redis for recorded provider answers (JSON
# and SSE, provider routes and the Unified API)

cp -R fuzz/seeds/cache_entry "$OUT/seeds/cache_entry"

# log records as the stores hold them, and Logs API queries

cp -R fuzz/seeds/log_record "$OUT/seeds/log_record"
cp -R fuzz/seeds/query "$OUT/seeds/query"

for f in t/unit/cases/request/*.json t/fixtures/openai-chat/request-*.json; do
    seed request "$(basename "$f")" "" "$f"
done

for f in t/fixtures/anthropic/*.json t/unit/cases/response/anthropic-*.json
do
    seed response "a-$(basename "$f")" '\000' "$f"
done

for f in t/fixtures/google-gemini/*.json \
         t/unit/cases/response/gemini-*.json
do
    seed response "g-$(basename "$f")" '\001' "$f"
done

for f in t/fixtures/anthropic/error-*.json t/unit/cases/error/*.in.*; do
    seed error "a-$(basename "$f")" '\000\001\220' "$f"
done

for f in t/fixtures/google-gemini/error-*.json t/unit/cases/error/*.in.*; do
    seed error "g-$(basename "$f")" '\001\001\255' "$f"
done

for f in t/fixtures/anthropic/*.sse t/unit/cases/stream/anthropic-*.in.sse
do
    seed stream "a-$(basename "$f")" '\006\007' "$f"
    seed stream "a0-$(basename "$f")" '\002\001' "$f"
done

for f in t/fixtures/google-gemini/*.sse t/unit/cases/stream/gemini-*.in.sse
do
    seed stream "g-$(basename "$f")" '\007\011' "$f"
    seed stream "g0-$(basename "$f")" '\003\001' "$f"
done

for f in t/unit/cases/embed-request/*.json \
         t/fixtures/openai-embeddings/request-*.json
do
    seed embed "q-$(basename "$f")" '\000' "$f"
done

for f in t/unit/cases/response/gemini-embed*.in.json; do
    seed embed "r-$(basename "$f")" '\001' "$f"
done

# the meter: every recorded answer in its framing (bit 2: strip, bit 3:
# complete); the request side: request bodies, metadata, custom costs, the
# price table

for f in t/fixtures/*/*.json; do
    seed usage "j-$(basename "$(dirname "$f")")-$(basename "$f")" \
         '\010\005' "$f"
done

for f in t/fixtures/*/*.sse; do
    seed usage "s-$(basename "$(dirname "$f")")-$(basename "$f")" \
         '\015\011' "$f"
done

for f in t/fixtures/bedrock/*.eventstream.bin; do
    seed usage "e-$(basename "$f")" '\012\003' "$f"
done

for f in t/fixtures/*/request-*.json; do
    seed usage "r-$(basename "$(dirname "$f")")-$(basename "$f")" \
         '\003\001' "$f"
done

printf '\023\001{"team":"AI","user":12345,"test":true,"a":1,"b":2,"c":3}' \
    > "$OUT/seeds/usage/metadata"
printf '\043\001{"per_token_in":0.000001,"per_token_out":2e-6}' \
    > "$OUT/seeds/usage/custom"
seed usage prices '\063\001' prices.json

fail=0

for t in $TARGETS; do
    mkdir -p "$OUT/corpus/$t"

    echo "fuzz/run.sh: fuzz_$t for ${SECONDS_PER_TARGET}s"

    case $t in
        cache_entry) dict=fuzz/cache_entry.dict ;;
        usage)       dict=fuzz/usage.dict ;;
        log_record)  dict=fuzz/log_record.dict ;;
        query)       dict=fuzz/query.dict ;;
        *)           dict=fuzz/translators.dict ;;
    esac

    if ! ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
         "$OUT/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" \
             -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
             -dict="$dict" \
             -print_final_stats=1 -artifact_prefix="$OUT/crash-$t-" \
             "$OUT/corpus/$t" "$OUT/seeds/$t" \
             > "$OUT/fuzz_$t.log" 2>&1
    then
        fail=1
        echo "fuzz/run.sh: fuzz_$t FAILED, see $OUT/fuzz_$t.log"
        tail -40 "$OUT/fuzz_$t.log"
    fi

    grep -E "^stat::number_of_executed_units|^#[0-9]+.*DONE" \
         "$OUT/fuzz_$t.log" | tail -2 || true
done

exit $fail
