#!/usr/bin/env bash
# Regenerates the key test vectors in tests/data/keys with OpenSSL (an independent
# implementation). The outputs are committed; tests never run this script.
# Usage: bash tests/data/make-vectors.sh
set -euo pipefail
cd "$(dirname "$0")/keys"
umask 077
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa2048-pkcs8.key
openssl pkey -in rsa2048-pkcs8.key -traditional -out rsa2048-pkcs1.key
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 | openssl pkey -traditional -out rsa1024-pkcs1.key
openssl ecparam -name prime256v1 -genkey -out p256-with-params.key        # EC PARAMETERS + EC PRIVATE KEY
openssl pkey -in p256-with-params.key -out p256-pkcs8.key
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384-pkcs8.key
openssl pkey -in p384-pkcs8.key -traditional -out p384-sec1.key
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-521 -out p521-pkcs8.key
openssl genpkey -algorithm ED25519 -out ed25519-pkcs8.key
openssl genpkey -algorithm ED448 -out ed448-pkcs8.key
openssl pkcs8 -topk8 -in rsa2048-pkcs8.key -v2 aes-256-cbc -passout pass:secret -out rsa2048-encrypted-pkcs8.key
openssl rsa -in rsa2048-pkcs1.key -aes128 -passout pass:secret -traditional -out rsa2048-legacy-encrypted.key 2>/dev/null
openssl pkey -in rsa2048-pkcs8.key -outform DER -out rsa2048-pkcs8.der
openssl pkey -in rsa2048-pkcs8.key -pubout -out rsa2048.pub
head -c 300 rsa2048-pkcs1.key > rsa2048-truncated.key
openssl req -x509 -new -key p256-pkcs8.key -subj /CN=not-a-key -days 1 -out cert-not-a-key.crt

# CSRs made by OpenSSL (tests/data/csr).
cd ../csr
openssl req -new -key ../keys/rsa2048-pkcs8.key -subj "/O=dev/O=ops/CN=jane" \
  -addext "subjectAltName=DNS:jane.example.com,IP:10.0.0.5,IP:2001:db8::1,email:jane@example.com,URI:spiffe://cluster/jane" \
  -addext "keyUsage=critical,digitalSignature" -addext "extendedKeyUsage=clientAuth" -out openssl-jane.csr
openssl req -new -key ../keys/p256-pkcs8.key -subj "/CN=plain" -out openssl-p256-plain.csr
# The same CSR with one bit of the signature flipped.
python3 - <<'PY'
import base64
lines = open("openssl-p256-plain.csr").read().split("\n")
der = bytearray(base64.b64decode("".join(l for l in lines if not l.startswith("-----"))))
der[-5] ^= 0x01
b64 = base64.b64encode(bytes(der)).decode()
body = "\n".join(b64[i:i+64] for i in range(0, len(b64), 64))
open("tampered-signature.csr", "w").write("-----BEGIN CERTIFICATE REQUEST-----\n" + body + "\n-----END CERTIFICATE REQUEST-----\n")
PY
