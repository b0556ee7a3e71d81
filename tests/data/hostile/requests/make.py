#!/usr/bin/env python3
"""Writes the hostile request corpus next to this script (issue 15, defects 2, 3 and 6;
issue 14, item 7).

Every request here is validly self-signed (the script checks each with `openssl req -verify`),
so the only thing that can refuse it is the rule under test. The DER is assembled by hand and
signed with Python's `cryptography` (an implementation independent of kubepki), because no
ordinary tool writes these shapes. The outputs are committed; tests never run this script.

  csr--two-extension-request-values.csr      one extensionRequest attribute, two values: the
                                             first (what OpenSSL and Go show) asks for
                                             DNS:n1.example, the second for
                                             DNS:kubernetes.default.svc, IP:10.96.0.1
  csr--two-extension-request-attributes.csr  the same two SAN sets in two attributes
  csr--duplicate-extension.csr               one value holding subjectAltName twice
  csr--two-challenge-passwords.csr           a good request plus two challengePassword
                                             attributes (ignored, as Go ignores them: signed)
  csr--header-in-body-then-second-block.pem  block A (n1.example) with "Comment: x" inside its
                                             body, then block B (the evil SANs): Go's
                                             pem.Decode returns B, a reader skipping the line A
  manifest--*.yaml / *.json                  CertificateSigningRequest manifests: spec.request
                                             holding the above, denied / failed / issued ones,
                                             one with requester fields, bad expirationSeconds

usage: python3 tests/data/hostile/requests/make.py
"""
import base64, datetime, json, os, subprocess, tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HERE = os.path.dirname(os.path.abspath(__file__))


# --- a minimal DER writer -------------------------------------------------------------------
def tlv(tag, content):
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + length + content


def seq(*parts):
    return tlv(0x30, b"".join(parts))


def set_of(*elems):
    return tlv(0x31, b"".join(sorted(elems)))  # DER: a SET OF is sorted by encoding


def oid(dotted):
    arcs = [int(a) for a in dotted.split(".")]
    body = bytes([40 * arcs[0] + arcs[1]])
    for a in arcs[2:]:
        chunk = [a & 0x7F]
        a >>= 7
        while a:
            chunk.append(0x80 | (a & 0x7F))
            a >>= 7
        body += bytes(reversed(chunk))
    return tlv(0x06, body)


def printable(s):
    return tlv(0x13, s.encode())


OID_CN, OID_O = "2.5.4.3", "2.5.4.10"
OID_EXT_REQ = "1.2.840.113549.1.9.14"
OID_CHALLENGE = "1.2.840.113549.1.9.7"
OID_SAN = "2.5.29.17"
OID_ECDSA_SHA256 = "1.2.840.10045.4.3.2"


def name(*rdns):
    return seq(*(set_of(seq(oid(t), printable(v))) for t, v in rdns))


def san(dns=(), ips=()):
    names = [tlv(0x82, d.encode()) for d in dns] + [tlv(0x87, bytes(ip)) for ip in ips]
    return seq(oid(OID_SAN), tlv(0x04, seq(*names)))


def ext_req_attr(*values):
    """An extensionRequest attribute whose values are the given Extensions SEQUENCEs."""
    return seq(oid(OID_EXT_REQ), set_of(*values))


def csr(key, subject, attributes):
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    info = seq(tlv(0x02, b"\x00"), subject, spki, tlv(0xA0, b"".join(sorted(attributes))))
    sig = key.sign(info, ec.ECDSA(hashes.SHA256()))
    return seq(info, seq(oid(OID_ECDSA_SHA256)), tlv(0x03, b"\x00" + sig))


def pem(label, der):
    b = base64.b64encode(der).decode()
    body = "\n".join(b[i:i + 64] for i in range(0, len(b), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


def w(file, text):
    with open(os.path.join(HERE, file), "w") as f:
        f.write(text)


def manifest(name_, request_pem, signer, usages, extra_spec="", status="", expiration="86400"):
    req = base64.b64encode(request_pem.encode()).decode()
    exp = f"  expirationSeconds: {expiration}\n" if expiration is not None else ""
    text = (
        "apiVersion: certificates.k8s.io/v1\n"
        "kind: CertificateSigningRequest\n"
        f"metadata:\n  name: {name_}\n"
        f"spec:\n  request: {req}\n  signerName: {signer}\n{exp}"
        "  usages:\n" + "".join(f"  - {u}\n" for u in usages) + extra_spec + status
    )
    return text


def verify(path):
    subprocess.run(["openssl", "req", "-in", path, "-verify", "-noout"], check=True,
                   capture_output=True)


key = ec.generate_private_key(ec.SECP256R1())
node = name((OID_O, "system:nodes"), (OID_CN, "system:node:n1"))
shown = seq(san(dns=["n1.example"]))
evil = seq(san(dns=["kubernetes.default.svc"], ips=[[10, 96, 0, 1]]))
SERVING = "kubernetes.io/kubelet-serving"
SERVING_USAGES = ["digital signature", "server auth"]

# defect 15.2: which extensionRequest counts
two_values = pem("CERTIFICATE REQUEST", csr(key, node, [ext_req_attr(shown, evil)]))
w("csr--two-extension-request-values.csr", two_values)
two_attrs = pem("CERTIFICATE REQUEST", csr(key, node, [ext_req_attr(shown), ext_req_attr(evil)]))
w("csr--two-extension-request-attributes.csr", two_attrs)
dup = seq(san(dns=["n1.example"]), san(dns=["kubernetes.default.svc"]))
w("csr--duplicate-extension.csr", pem("CERTIFICATE REQUEST", csr(key, node, [ext_req_attr(dup)])))
challenge = [seq(oid(OID_CHALLENGE), set_of(printable(p))) for p in ("one", "two")]
w("csr--two-challenge-passwords.csr",
  pem("CERTIFICATE REQUEST", csr(key, node, [ext_req_attr(shown)] + challenge)))
w("manifest--two-extension-request-values.yaml",
  manifest("n1-serving", two_values, SERVING, SERVING_USAGES))
w("manifest--two-extension-request-attributes.yaml",
  manifest("n1-serving", two_attrs, SERVING, SERVING_USAGES))

# defect 15.3: a header line inside block A, then block B
a = pem("CERTIFICATE REQUEST", csr(key, node, [ext_req_attr(shown)])).split("\n")
a.insert(2, "Comment: x")
b = pem("CERTIFICATE REQUEST", csr(key, node, [ext_req_attr(evil)]))
trick = "\n".join(a) + b
w("csr--header-in-body-then-second-block.pem", trick)
w("manifest--header-in-body-then-second-block.yaml",
  manifest("n1-serving", trick, SERVING, SERVING_USAGES))
clean_a = pem("CERTIFICATE REQUEST", csr(key, node, [ext_req_attr(shown)]))
w("manifest--two-blocks.yaml", manifest("n1-serving", clean_a + b, SERVING, SERVING_USAGES))

# defect 15.6: status and requester fields
jane = pem("CERTIFICATE REQUEST", csr(key, name((OID_O, "dev"), (OID_CN, "jane")), []))
CLIENT = "kubernetes.io/kube-apiserver-client"
CLIENT_USAGES = ["digital signature", "client auth"]
cond = lambda kind, reason: (
    "status:\n  conditions:\n"
    f"  - type: {kind}\n    status: \"True\"\n    reason: {reason}\n"
    "    message: set by a reviewer\n    lastUpdateTime: \"2026-01-01T00:00:00Z\"\n"
)
w("manifest--denied.yaml", manifest("jane", jane, CLIENT, CLIENT_USAGES,
                                     status=cond("Denied", "NotOurUser")))
w("manifest--failed.yaml", manifest("jane", jane, CLIENT, CLIENT_USAGES,
                                     status=cond("Failed", "SignerValidationFailure")))
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jane")]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone")]))
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256()))
issued_b64 = base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode()
w("manifest--issued.yaml", manifest("jane", jane, CLIENT, CLIENT_USAGES,
                                     status=cond("Approved", "AutoApproved")
                                     + f"  certificate: {issued_b64}\n"))
w("manifest--requester-fields.yaml", manifest(
    "jane", jane, CLIENT, CLIENT_USAGES,
    extra_spec=("  username: kubernetes-admin\n  uid: 0a1b2c3d\n"
                "  groups:\n  - system:masters\n  - system:authenticated\n"
                "  extra:\n    scopes:\n    - cluster-admin\n")))

# issue 14, item 7: expirationSeconds of the wrong type or out of int32
w("manifest--expiration-seconds-string.yaml",
  manifest("jane", jane, CLIENT, CLIENT_USAGES, expiration='"600"'))
w("manifest--expiration-seconds-above-int32.yaml",
  manifest("jane", jane, CLIENT, CLIENT_USAGES, expiration="2147483648"))
w("manifest--expiration-seconds-string.json", json.dumps({
    "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
    "metadata": {"name": "jane"},
    "spec": {"request": base64.b64encode(jane.encode()).decode(), "signerName": CLIENT,
             "expirationSeconds": "600", "usages": CLIENT_USAGES}}, indent=2) + "\n")

# Every request is validly signed: only the rule under test may refuse it.
with tempfile.TemporaryDirectory() as tmp:
    for i, text in enumerate([two_values, two_attrs, clean_a, b, jane]):
        p = os.path.join(tmp, f"{i}.csr")
        with open(p, "w") as f:
            f.write(text)
        verify(p)
for f in ("csr--duplicate-extension.csr", "csr--two-challenge-passwords.csr"):
    verify(os.path.join(HERE, f))
