#!/usr/bin/env python3
"""Writes key-ids.txt: for test keys of tests/data/keys, the two SubjectKeyIdentifier methods Go's
x509.CreateCertificate uses for a CA (and so kubeadm: SHA-1 up to 1.34, truncated SHA-256 from
1.35; docs/compatibility.md, "Key identifiers"), computed with Python's `cryptography` and
hashlib, independently of kubepki. Both hash the subjectPublicKey BIT STRING contents; the SHA-1
value is checked against cryptography's own RFC 5280 method 1. The output is committed; tests
never run this script. Usage: python3 tests/data/key-ids/make.py
"""
import hashlib
import pathlib

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

here = pathlib.Path(__file__).resolve().parent
lines = []
for name in ["p256-pkcs8.key", "p384-pkcs8.key", "rsa2048-pkcs8.key"]:
    key = serialization.load_pem_private_key((here.parent / "keys" / name).read_bytes(), None)
    pub = key.public_key()
    if isinstance(pub, ec.EllipticCurvePublicKey):
        bits = pub.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    elif isinstance(pub, rsa.RSAPublicKey):
        bits = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    else:
        raise SystemExit(f"{name}: unexpected key type")
    sha1 = hashlib.sha1(bits).digest()
    assert sha1 == x509.SubjectKeyIdentifier.from_public_key(pub).digest, name
    sha256 = hashlib.sha256(bits).digest()[:20]
    lines.append(f"{name} {sha1.hex()} {sha256.hex()}")
(here / "key-ids.txt").write_text("# key file, SHA-1 key id, truncated SHA-256 key id (make.py)\n" + "\n".join(lines) + "\n")
