#!/usr/bin/env python3
"""Writes the hostile-name corpus next to this script (issue 22).

Names that try to make a terminal show something else than what the file says: ESC sequences
(colour, `ESC[8m` hiding what follows, an OSC title ending in BEL), carriage return, newline
(a line that looks like kubepki's own), backspace, NUL, DEL, the C1 CSI U+009B, bidirectional
overrides and isolates, invalid UTF-8 in a UTF8String and a 64 KB name.

  csr--<case>.csr         PKCS#10 requests. The `openssl` cases are made by `openssl req -new
                          -subj` (with -utf8 for the non-ASCII ones) and -addext for SANs, as a
                          requester would; the `der` cases (NUL, invalid UTF-8, 64 KB, SANs
                          with a newline, which OpenSSL's -subj/-addext cannot express) are
                          assembled by hand and signed with Python's `cryptography`. Every
                          request is checked with `openssl req -verify`.
  cert--<case>.crt        a certificate with the same subject and SANs for each request, issued
                          by a throwaway CA (hand-assembled TBSCertificate, the subject DER copied
                          byte for byte from the request), checked with `openssl verify`.
  corpus-ca.crt           that CA (its key is not kept).
  manifest--<case>.yaml   CertificateSigningRequest manifests: `spec.request` holding each
                          request (signer kube-apiserver-client), and hostile values in
                          `metadata.name`, `spec.signerName` and `spec.usages`.
  config--<case>.yaml     kubeadm configs with a hostile node name, apiServer.certSANs entry,
                          controlPlaneEndpoint or clusterName.
  kubeconfig--client-certificate-path.conf
                          a kubeconfig whose user names its certificate and key by hostile paths.

The outputs are committed; tests never run this script.

usage: python3 tests/data/hostile/names/make.py
"""
import base64, datetime, os, subprocess, tempfile

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

HERE = os.path.dirname(os.path.abspath(__file__))
ESC, BEL = b"\x1b", b"\x07"


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
    return tlv(0x31, b"".join(sorted(elems)))


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


OID = {"C": "2.5.4.6", "L": "2.5.4.7", "O": "2.5.4.10", "OU": "2.5.4.11", "CN": "2.5.4.3"}
OID_EXT_REQ = "1.2.840.113549.1.9.14"
OID_SAN = "2.5.29.17"
OID_ECDSA_SHA256 = "1.2.840.10045.4.3.2"


def name(*rdns):
    """A Name of (type, bytes) pairs, each value a UTF8String (bytes as given, valid or not)."""
    return seq(*(set_of(seq(oid(OID[t]), tlv(0x0C, v))) for t, v in rdns))


def san_ext(dns=(), uris=(), emails=()):
    names = ([tlv(0x82, d) for d in dns] + [tlv(0x81, e) for e in emails]
             + [tlv(0x86, u) for u in uris])
    return seq(oid(OID_SAN), tlv(0x04, seq(*names)))


def spki(key):
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def sign(key, tbs):
    return seq(tbs, seq(oid(OID_ECDSA_SHA256)),
               tlv(0x03, b"\x00" + key.sign(tbs, ec.ECDSA(hashes.SHA256()))))


def der_csr(key, subject, exts):
    attrs = [seq(oid(OID_EXT_REQ), set_of(seq(*exts)))] if exts else []
    info = seq(tlv(0x02, b"\x00"), subject, spki(key), tlv(0xA0, b"".join(attrs)))
    return sign(key, info)


def utc(t):
    return tlv(0x17, t.strftime("%y%m%d%H%M%SZ").encode())


def der_cert(ca_key, ca_name, serial, subject_der, subject_key_spki, exts):
    now = datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc)
    tbs = seq(tlv(0xA0, tlv(0x02, b"\x02")), tlv(0x02, bytes([serial])),  # serial < 128
              seq(oid(OID_ECDSA_SHA256)), ca_name,
              seq(utc(now), utc(now + datetime.timedelta(days=3650))),
              subject_der, subject_key_spki,
              *([tlv(0xA3, seq(*exts))] if exts else []))
    return sign(ca_key, tbs)


def pem(label, der):
    b = base64.b64encode(der).decode()
    body = "\n".join(b[i:i + 64] for i in range(0, len(b), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


def der_of(pem_text):
    lines = [l for l in pem_text.strip().splitlines() if not l.startswith("-----")]
    return base64.b64decode("".join(lines))


def w(file, data):
    with open(os.path.join(HERE, file), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# --- the names ------------------------------------------------------------------------------
# (case, how, subject as (type, bytes) pairs, SAN dict)
CASES = [
    ("esc-colour", "openssl", [("CN", b"evil" + ESC + b"[31mRED" + ESC + b"[0m")], {}),
    ("esc-hide", "openssl",
     [("L", b"Berlin" + ESC + b"[8m"), ("O", b"system:masters"), ("CN", b"jane")], {}),
    ("osc-title", "openssl", [("CN", ESC + b"]0;kubepki: all good" + BEL + b"jane")], {}),
    ("carriage-return", "openssl", [("CN", b"system:masters\rjane")], {}),
    ("newline", "openssl", [("CN", b"jane\nInjected: line")], {}),
    ("backspace", "openssl", [("CN", b"system:masters" + b"\x08" * 14 + b"jane")], {}),
    ("del", "openssl", [("CN", b"jane\x7fadmin")], {}),
    ("c1-csi", "openssl", [("CN", "\u009b31mjane".encode())], {}),
    ("bidi-override", "openssl", [("CN", "jane\u202esretsam:metsys".encode())], {}),
    ("bidi-isolate", "openssl",
     [("O", "\u2067system:masters\u2069".encode()), ("CN", b"jane")], {}),
    ("san-esc", "openssl", [("CN", b"n1")],
     {"dns": [b"evil" + ESC + b"[31m.example"], "uris": [b"https://a.example/" + ESC + b"[8m"]}),
    ("nul", "der", [("CN", b"jane\x00system:masters")], {}),
    ("invalid-utf8", "der", [("CN", b"jane\xff\xfe\xc0\x80" + ESC + b"[31m")], {}),
    ("64k", "der", [("CN", ((b"x" + ESC + b"[8m\nInjected: ") * 4200)[:65536])], {}),
    ("san-newline", "der", [("CN", b"n1")],
     {"dns": [b"n1.example\nInjected: line"], "emails": [b"a\x7f@example.com"],
      "uris": [b"https://a.example/" + ESC + b"]0;t" + BEL]}),
]


def openssl_subj(rdns):
    """-subj syntax; the values here hold no '/', '+', '=' or '\\'."""
    return b"".join(b"/" + t.encode() + b"=" + v for t, v in rdns)


def openssl_san(sans):
    items = ([b"DNS:" + d for d in sans.get("dns", [])]
             + [b"URI:" + u for u in sans.get("uris", [])])
    return b"subjectAltName=" + b",".join(items)


with tempfile.TemporaryDirectory() as tmp:
    key = ec.generate_private_key(ec.SECP256R1())
    key_path = os.path.join(tmp, "requester.key")
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name(("CN", b"hostile-names corpus CA"))
    ca_cert = der_cert(ca_key, ca_name, 1, ca_name, spki(ca_key),
                       [seq(oid("2.5.29.19"), tlv(0x01, b"\xff"), tlv(0x04, seq(tlv(0x01, b"\xff"))))])
    w("corpus-ca.crt", pem("CERTIFICATE", ca_cert))
    requests = {}
    for serial, (case, how, rdns, sans) in enumerate(CASES, start=2):
        out = os.path.join(HERE, f"csr--{case}.csr")
        if how == "openssl":
            cmd = [b"openssl", b"req", b"-new", b"-key", key_path.encode(), b"-utf8",
                   b"-subj", openssl_subj(rdns), b"-out", out.encode()]
            if sans:
                cmd += [b"-addext", openssl_san(sans)]
            subprocess.run(cmd, check=True, capture_output=True)
            with open(out) as f:
                text = f.read()
        else:
            exts = [san_ext(**sans)] if sans else []
            text = pem("CERTIFICATE REQUEST", der_csr(key, name(*rdns), exts))
            w(f"csr--{case}.csr", text)
        # OpenSSL refuses to load a UTF8String that is not UTF-8 at all, so that one request
        # and its certificate are checked with `cryptography` over the DER instead.
        openssl_reads = case != "invalid-utf8"
        if openssl_reads:
            subprocess.run(["openssl", "req", "-in", out, "-verify", "-noout"], check=True,
                           capture_output=True)
        requests[case] = text
        # The certificate: the request's subject DER, byte for byte, and its SANs.
        info = der_of(text)
        # CertificationRequest -> CertificationRequestInfo -> version, subject, spki
        def children(d):
            i, out_ = 0, []
            while i < len(d):
                tag, l = d[i], d[i + 1]
                h = 2
                if l & 0x80:
                    n = l & 0x7F
                    l = int.from_bytes(d[i + 2:i + 2 + n], "big")
                    h = 2 + n
                out_.append(d[i:i + h + l])
                i += h + l
            return out_
        def body(t):
            l = t[1]
            return t[2 + (l & 0x7F if l & 0x80 else 0):]
        cri = children(body(info))[0]
        version, subject_der, subject_spki = children(body(cri))[:3]
        exts = [san_ext(**sans)] if sans else []
        cert = der_cert(ca_key, ca_name, serial, subject_der, subject_spki, exts)
        w(f"cert--{case}.crt", pem("CERTIFICATE", cert))
        if openssl_reads:
            subprocess.run(["openssl", "verify", "-CAfile", os.path.join(HERE, "corpus-ca.crt"),
                            "-partial_chain", os.path.join(HERE, f"cert--{case}.crt")],
                           check=True, capture_output=True)
        else:
            for der, signer in ((info, key), (cert, ca_key)):
                tbs, _alg, sig = children(body(der))
                signer.public_key().verify(body(sig)[1:], tbs, ec.ECDSA(hashes.SHA256()))


def yaml_dq(b):
    """A YAML double-quoted scalar holding the bytes' text, controls as YAML escapes."""
    out = []
    for c in b.decode():
        o = ord(c)
        if c == '"' or c == "\\":
            out.append("\\" + c)
        elif o < 0x20 or 0x7F <= o <= 0x9F or 0x2028 <= o <= 0x202E or 0x2066 <= o <= 0x2069:
            out.append(f"\\u{o:04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def manifest(name_, request, signer=b"kubernetes.io/kube-apiserver-client",
             usages=(b"digital signature", b"client auth")):
    req = base64.b64encode(request.encode()).decode()
    return ("apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\n"
            f"metadata:\n  name: {yaml_dq(name_)}\n"
            f"spec:\n  request: {req}\n  signerName: {yaml_dq(signer)}\n"
            "  expirationSeconds: 86400\n  usages:\n"
            + "".join(f"  - {yaml_dq(u)}\n" for u in usages))


for case, text in requests.items():
    w(f"manifest--{case}.yaml", manifest(b"hostile-" + case.encode(), text))
clean = requests["san-esc"]
w("manifest--name.yaml", manifest(b"n1" + ESC + b"[31m\nInjected: line", clean))
w("manifest--signer-name.yaml",
  manifest(b"n1", clean, signer=b"kubernetes.io/kube-apiserver-client" + ESC + b"[8m"))
w("manifest--usage.yaml",
  manifest(b"n1", clean, usages=(b"digital signature", "client auth\u202e".encode())))


def config(init_extra="", cluster_extra=""):
    return ("apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n"
            "localAPIEndpoint:\n  advertiseAddress: 192.0.2.10\n" + init_extra
            + "---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n"
            + cluster_extra)


hostile = yaml_dq(b"cp1" + ESC + b"[31m\nInjected: line")
w("config--node-name.yaml", config(init_extra=f"nodeRegistration:\n  name: {hostile}\n"))
w("config--cert-sans.yaml", config(
    cluster_extra="apiServer:\n  certSANs:\n  - ok.example\n  - "
    + yaml_dq("evil\u202eelpmaxe.".encode()) + "\n"))
w("config--endpoint.yaml", config(
    cluster_extra="controlPlaneEndpoint: " + yaml_dq(b"cp" + ESC + b"[8m.example:6443") + "\n"))
w("config--cluster-name.yaml", config(
    cluster_extra="clusterName: " + yaml_dq(b"prod\r\x08\x7f") + "\n"))

path = yaml_dq(b"/nonexistent/" + ESC + b"[31mclient\nInjected: line.crt")
keypath = yaml_dq("/nonexistent/client\u202eyek.crt".encode())
w("kubeconfig--client-certificate-path.conf",
  "apiVersion: v1\nkind: Config\nclusters:\n- name: kubernetes\n  cluster:\n"
  "    server: https://192.0.2.10:6443\n    certificate-authority: ca.crt\n"
  "contexts:\n- name: kubernetes-admin@kubernetes\n  context:\n    cluster: kubernetes\n"
  "    user: kubernetes-admin\ncurrent-context: kubernetes-admin@kubernetes\n"
  f"users:\n- name: kubernetes-admin\n  user:\n    client-certificate: {path}\n"
  f"    client-key: {keypath}\n")
