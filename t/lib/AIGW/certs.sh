#!/bin/sh
# Copyright (C) ngx_ai_gateway contributors

# Generate the TLS material used by the e2e tests (idempotent, EC P-256, ~10 y).
#
#   t/lib/AIGW/certs.sh [OUT_DIR]        (default: <repo>/t/.certs)
#
# Produces in OUT_DIR:
#   ca.crt ca.key                test CA (nginx *_ssl_trusted_certificate -> ca.crt)
#   server.crt server.key        leaf signed by the test CA, SANs below
#   bad-ca.crt bad-ca.key        an unrelated CA
#   bad.crt bad.key              leaf with the same SANs, signed by bad-ca
#   ca-bundle-with-test-ca.crt   copy of ca.crt
#   sa.key                       RSA key of the test Google service account
# Nothing is regenerated when every file already exists. Callers running in
# parallel should hold a lock (AIGW::Mock flocks OUT_DIR/.lock); when flock(1)
# exists this script takes the same lock itself.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-"$here/../../.certs"}
mkdir -p "$out"
out=$(cd "$out" && pwd)

files="ca.crt ca.key server.crt server.key bad-ca.crt bad-ca.key bad.crt bad.key ca-bundle-with-test-ca.crt sa.key"
complete() {
    for f in $files; do [ -s "$out/$f" ] || return 1; done
    return 0
}
complete && exit 0

# Take the lock unless the caller already holds it (AIGW_CERTS_LOCKED=1).
if [ "${AIGW_CERTS_LOCKED:-}" != 1 ] && command -v flock >/dev/null 2>&1; then
    AIGW_CERTS_LOCKED=1 exec flock "$out/.lock" sh "$0" "$out"
fi
complete && exit 0

command -v openssl >/dev/null 2>&1 || { echo "certs.sh: openssl not found" >&2; exit 1; }

tmp=$(mktemp -d "$out/.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

SANS="DNS:localhost,IP:127.0.0.1,DNS:api.openai.com,DNS:api.anthropic.com,\
DNS:*.openai.azure.com,DNS:inference.baseten.co,DNS:*.api.baseten.co,\
DNS:*.us-east-1.amazonaws.com,DNS:*.us-west-2.amazonaws.com,DNS:*.eu-central-1.amazonaws.com,\
DNS:api.cartesia.ai,DNS:api.cerebras.ai,DNS:api.cohere.ai,DNS:api.cohere.com,\
DNS:api.deepgram.com,DNS:api.deepseek.com,DNS:api.elevenlabs.io,DNS:fal.run,DNS:*.fal.run,\
DNS:fal.ai,DNS:*.fal.ai,DNS:*.googleapis.com,DNS:generativelanguage.googleapis.com,\
DNS:aiplatform.googleapis.com,DNS:api.x.ai,DNS:api.groq.com,DNS:api-inference.huggingface.co,\
DNS:router.huggingface.co,DNS:api.ideogram.ai,DNS:api.mistral.ai,DNS:openrouter.ai,\
DNS:api.parallel.ai,DNS:api.perplexity.ai,DNS:api.replicate.com,DNS:api.cloudflare.com,\
DNS:api.fireworks.ai,DNS:custom.example.com"

cat > "$tmp/ca.ext" <<EXT
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
EXT
cat > "$tmp/leaf.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
subjectAltName=$SANS
EXT

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
serial() { printf '0x%s' "$(openssl rand -hex 12)"; }

# make_ca NAME CN
make_ca() {
    key "$tmp/$1.key"
    openssl req -new -key "$tmp/$1.key" -subj "/O=AIGW tests/CN=$2" -out "$tmp/$1.csr"
    openssl x509 -req -in "$tmp/$1.csr" -signkey "$tmp/$1.key" -days 3650 \
        -set_serial "$(serial)" -extfile "$tmp/ca.ext" -out "$tmp/$1.crt" 2>/dev/null
}
# make_leaf NAME CA
make_leaf() {
    key "$tmp/$1.key"
    openssl req -new -key "$tmp/$1.key" -subj "/O=AIGW tests/CN=localhost" -out "$tmp/$1.csr"
    openssl x509 -req -in "$tmp/$1.csr" -CA "$tmp/$2.crt" -CAkey "$tmp/$2.key" -days 3650 \
        -set_serial "$(serial)" -extfile "$tmp/leaf.ext" -out "$tmp/$1.crt" 2>/dev/null
}

make_ca ca "AIGW Test CA"
make_leaf server ca
make_ca bad-ca "AIGW Untrusted CA"
make_leaf bad bad-ca
cp "$tmp/ca.crt" "$tmp/ca-bundle-with-test-ca.crt"
# a Google service-account key: RSA 2048, PKCS#8 as in Google's JSON keys
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/sa.key" 2>/dev/null
chmod 600 "$tmp"/*.key
chmod 644 "$tmp"/*.crt

# Publish: the cert files first, ca.crt's bundle copy last (complete() needs all).
for f in sa.key ca.key ca.crt server.key server.crt bad-ca.key bad-ca.crt bad.key bad.crt ca-bundle-with-test-ca.crt; do
    mv -f "$tmp/$f" "$out/$f"
done
