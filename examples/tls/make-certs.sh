#!/usr/bin/env bash
# Test certificates for examples/gatehouse.mtls.yaml — NOT for production. openssl only.
#
#   bash examples/tls/make-certs.sh           # creates what is missing (or expiring) in examples/tls/out/
#   bash examples/tls/make-certs.sh --force   # throws everything away and starts again
#
# Writes into examples/tls/out/ (git-ignored):
#   ca.crt, ca.key           a throw-away test CA ("Gatehouse Example Test CA"), 10 years
#   server.crt, server.key   the gateway: CN=localhost, SAN DNS:localhost, IP:127.0.0.1, IP:::1; serverAuth; 1 year
#   client.crt, client.key   an agent: CN=agent-1, O=Gatehouse Example, SAN URI:spiffe://gatehouse.test/agent-1; clientAuth; 1 year
# Keys are EC P-256, unencrypted, mode 0600; the folder is 0700.
#
# Idempotent: existing files are kept. A certificate that is missing, expires within a day, no longer
# verifies against ca.crt or does not match its key is issued again (with a new key); a missing or expiring
# CA means everything is issued again.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/out"

if [[ "${1:-}" == "--force" ]]; then
  rm -rf -- "$out"
elif [[ $# -gt 0 ]]; then
  echo "usage: $0 [--force]" >&2
  exit 2
fi

umask 077
mkdir -p -- "$out"
chmod 700 -- "$out"
tmp="$(mktemp -d "$out/.tmp.XXXXXX")"
trap 'rm -rf -- "$tmp"' EXIT

ec_key=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
serial() { echo "0x$(openssl rand -hex 16)"; }

# usable NAME: the certificate exists, is valid for at least another day, chains to ca.crt and matches its key.
usable() {
  [[ -s "$out/$1.crt" && -s "$out/$1.key" ]] &&
    openssl x509 -in "$out/$1.crt" -noout -checkend 86400 >/dev/null 2>&1 &&
    openssl verify -CAfile "$out/ca.crt" "$out/$1.crt" >/dev/null 2>&1 &&
    [[ "$(openssl x509 -in "$out/$1.crt" -noout -pubkey 2>/dev/null)" == "$(openssl pkey -in "$out/$1.key" -pubout 2>/dev/null)" ]]
}

made=()

if ! [[ -s "$out/ca.crt" && -s "$out/ca.key" ]] || ! openssl x509 -in "$out/ca.crt" -noout -checkend 86400 >/dev/null 2>&1; then
  openssl req -x509 "${ec_key[@]}" -keyout "$tmp/ca.key" -out "$tmp/ca.crt" \
    -subj "/CN=Gatehouse Example Test CA" -days 3650 -set_serial "$(serial)" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" 2>/dev/null
  mv -f -- "$tmp/ca.key" "$out/ca.key"
  mv -f -- "$tmp/ca.crt" "$out/ca.crt"
  # Everything the old CA issued is now worthless.
  rm -f -- "$out/server.crt" "$out/server.key" "$out/client.crt" "$out/client.key"
  made+=(ca)
fi

# issue NAME SUBJECT EXTENSIONS...: a key and a certificate signed by the test CA.
issue() {
  local name="$1" subject="$2"
  shift 2
  usable "$name" && return 0
  openssl req "${ec_key[@]}" -keyout "$tmp/$name.key" -out "$tmp/$name.csr" -subj "$subject" 2>/dev/null
  printf '%s\n' "$@" >"$tmp/$name.ext"
  openssl x509 -req -in "$tmp/$name.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
    -set_serial "$(serial)" -days 365 -out "$tmp/$name.crt" -extfile "$tmp/$name.ext" 2>/dev/null
  mv -f -- "$tmp/$name.key" "$out/$name.key"
  mv -f -- "$tmp/$name.crt" "$out/$name.crt"
  made+=("$name")
}

issue server "/CN=localhost" \
  "basicConstraints=critical,CA:FALSE" \
  "keyUsage=critical,digitalSignature" \
  "extendedKeyUsage=serverAuth" \
  "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
  "authorityKeyIdentifier=keyid"

issue client "/O=Gatehouse Example/CN=agent-1" \
  "basicConstraints=critical,CA:FALSE" \
  "keyUsage=critical,digitalSignature" \
  "extendedKeyUsage=clientAuth" \
  "subjectAltName=URI:spiffe://gatehouse.test/agent-1" \
  "authorityKeyIdentifier=keyid"

chmod 600 -- "$out"/*.key
chmod 644 -- "$out"/*.crt

if [[ ${#made[@]} -eq 0 ]]; then
  echo "examples/tls: certificates in $out are up to date"
else
  echo "examples/tls: made ${made[*]} in $out"
fi
