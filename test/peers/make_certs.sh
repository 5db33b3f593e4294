#!/bin/sh
# make_certs.sh DIR -- test PKI for tether's TLS tests (openssl CLI, EC P-256, 30 days).
#
# Creates in DIR:
#   ca.pem, ca.key          self-signed CA (CA:TRUE, keyCertSign, cRLSign)
#   server.pem, server.key  leaf signed by the CA, SAN DNS:localhost + IP:127.0.0.1,
#                           CA:FALSE, digitalSignature, extendedKeyUsage serverAuth
#   client.pem, client.key  leaf signed by the CA, extendedKeyUsage clientAuth
#   other-ca.pem            an unrelated self-signed CA (for negative tests)
#
# Quiet unless it fails (then prints openssl's output and exits non-zero).
# Idempotent: if DIR already holds a complete set that verifies and is valid
# for at least another day, nothing is changed. Otherwise everything is
# regenerated in a scratch directory and moved into place.
set -eu

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
DIR=$1
mkdir -p "$DIR"

valid_set() {
  for f in ca.pem ca.key server.pem server.key client.pem client.key other-ca.pem; do
    [ -s "$DIR/$f" ] || return 1
  done
  openssl x509 -noout -checkend 86400 -in "$DIR/server.pem" &&
  openssl x509 -noout -checkend 86400 -in "$DIR/client.pem" &&
  openssl verify -CAfile "$DIR/ca.pem" -purpose sslserver \
      -verify_hostname localhost -verify_ip 127.0.0.1 "$DIR/server.pem" &&
  openssl verify -CAfile "$DIR/ca.pem" -purpose sslclient "$DIR/client.pem"
}
valid_set >/dev/null 2>&1 && exit 0

TMP=$(mktemp -d "$DIR/.make_certs.XXXXXX")
LOG=$TMP/log
trap 'rm -rf "$TMP"' EXIT
fail() { echo "make_certs.sh: $1 failed:" >&2; cat "$LOG" >&2; exit 1; }

cat >"$TMP/ext.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
EOF

key() {  # key NAME
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
      -out "$TMP/$1.key" >>"$LOG" 2>&1 || fail "key $1"
}
ca() {  # ca NAME CN
  key "$1"
  openssl req -new -x509 -days 30 -key "$TMP/$1.key" -subj "/CN=$2" \
      -config "$TMP/ext.cnf" -extensions ca -out "$TMP/$1.pem" >>"$LOG" 2>&1 || fail "CA $1"
}
leaf() {  # leaf NAME CN EXTSECTION
  key "$1"
  openssl req -new -key "$TMP/$1.key" -subj "/CN=$2" -config "$TMP/ext.cnf" \
      -out "$TMP/$1.csr" >>"$LOG" 2>&1 || fail "CSR $1"
  openssl x509 -req -days 30 -in "$TMP/$1.csr" -CA "$TMP/ca.pem" -CAkey "$TMP/ca.key" \
      -set_serial "0x$(openssl rand -hex 16)" -extfile "$TMP/ext.cnf" -extensions "$3" \
      -out "$TMP/$1.pem" >>"$LOG" 2>&1 || fail "sign $1"
}

ca ca "tether test CA"
ca other-ca "tether unrelated test CA"
leaf server localhost server
leaf client "tether test client" client

OLD_DIR=$DIR; DIR=$TMP
valid_set >>"$LOG" 2>&1 || fail "verification of the new certificates"
DIR=$OLD_DIR

for f in ca.key ca.pem server.key server.pem client.key client.pem other-ca.pem; do
  mv -f "$TMP/$f" "$DIR/$f"
done
