#!/usr/bin/env python3
"""Writes the malformed-input corpus next to this script.

Each file is named ROLE--WHAT.EXT: ROLE says where the file is fed (cert, key, csr, manifest,
kubeconfig, config, or any = everywhere) and WHAT what is wrong with it. The valid material the
broken files start from is made with the OpenSSL CLI. The 20 MB file is not committed: the test
(crates/kubepki-cli/tests/malformed.rs) writes it at run time.

usage: python3 tests/data/malformed/make.py
"""
import base64, os, subprocess, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def sh(*args, data=None):
    return subprocess.run(args, input=data, capture_output=True, check=True).stdout


def pem(label, der, crlf=False):
    b = base64.encodebytes(der).decode().replace("\n", "")
    lines = [b[i:i + 64] for i in range(0, len(b), 64)]
    nl = "\r\n" if crlf else "\n"
    return (f"-----BEGIN {label}-----{nl}" + nl.join(lines) + f"{nl}-----END {label}-----{nl}").encode()


def unpem(text):
    body = b"".join(l for l in text.splitlines() if not l.startswith(b"-----"))
    return base64.b64decode(body)


def w(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


tmp = tempfile.mkdtemp()
key = os.path.join(tmp, "k.pem")
sh("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
key_pem = open(key, "rb").read()
cert_pem = sh("openssl", "req", "-x509", "-new", "-key", key, "-subj", "/CN=kubernetes", "-days", "1")
csr_pem = sh("openssl", "req", "-new", "-key", key, "-subj", "/O=dev/CN=jane")
cert_der, key_der, csr_der = unpem(cert_pem), unpem(key_pem), unpem(csr_pem)
rsa1024 = sh("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024")
k1 = sh("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1")
dsa_params = sh("openssl", "genpkey", "-genparam", "-algorithm", "DSA", "-pkeyopt", "dsa_paramgen_bits:1024")
pf = os.path.join(tmp, "dsa.params")
open(pf, "wb").write(dsa_params)
dsa = sh("openssl", "genpkey", "-paramfile", pf)
enc = sh("openssl", "pkcs8", "-topk8", "-in", key, "-passout", "pass:x", "-v2", "aes-256-cbc")
legacy = sh("openssl", "ec", "-in", key, "-aes256", "-passout", "pass:x")
pub = sh("openssl", "pkey", "-in", key, "-pubout")
deep = b"\x30\x82\x4e\x20" + b"\x30\x80" * 10000  # SEQUENCEs nested 10000 deep (BER lengths)


def flip(der, at, bit=0x01):
    b = bytearray(der)
    b[at] ^= bit
    return bytes(b)


# Certificates.
w("cert--truncated.pem", cert_pem[: len(cert_pem) // 2])
w("cert--wrong-label-csr.pem", pem("CERTIFICATE REQUEST", cert_der))
w("cert--key-under-cert-label.pem", pem("CERTIFICATE", key_der))
w("cert--base64-garbage.pem", "-----BEGIN CERTIFICATE-----\nMIIB!!!not*base64@@@\n-----END CERTIFICATE-----\n")
w("cert--der-length-overflow.pem", pem("CERTIFICATE", b"\x30\x84\xff\xff\xff\xff" + cert_der[4:]))
w("cert--der-length-overflow.der", b"\x30\x88\xff\xff\xff\xff\xff\xff\xff\xff" + cert_der[4:])
w("cert--der-deep-nesting.pem", pem("CERTIFICATE", deep))
w("cert--der-deep-nesting.der", deep)
w("cert--trailing-data.der", cert_der + b"\x00trailing garbage")
w("cert--bitflip-outer-tag.pem", pem("CERTIFICATE", flip(cert_der, 0, 0x02)))
w("cert--bitflip-tbs-length.pem", pem("CERTIFICATE", flip(cert_der, 6, 0x40)))
w("cert--empty-pem-body.pem", "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
w("cert--no-end-line.pem", cert_pem.replace(b"-----END CERTIFICATE-----\n", b""))
w("cert--header-only.pem", "-----BEGIN CERTIFICATE-----\n")
w("cert--crlf-truncated.pem", pem("CERTIFICATE", cert_der, crlf=True)[:300])
w("cert--indefinite-length.der", b"\x30\x80" + cert_der[4:] + b"\x00\x00")
w("cert--csr-instead.pem", csr_pem)
w("cert--mismatched-labels.pem", cert_pem.replace(b"END CERTIFICATE", b"END X509 CRL"))
# Private keys.
w("key--truncated.pem", key_pem[: len(key_pem) // 2])
w("key--cert-instead.pem", cert_pem)
w("key--csr-instead.pem", csr_pem)
w("key--encrypted-pkcs8.pem", enc)
w("key--legacy-encrypted.pem", legacy)
w("key--rsa-1024.pem", rsa1024)
w("key--base64-garbage.pem", "-----BEGIN EC PRIVATE KEY-----\n%%%%%%%%\n-----END EC PRIVATE KEY-----\n")
w("key--bitflip-outer-tag.pem", pem("PRIVATE KEY", flip(key_der, 0, 0x04)))
w("key--secp256k1.pem", k1)
w("key--dsa.pem", dsa)
w("key--public-key-only.pem", pub)
w("key--der-deep-nesting.pem", pem("PRIVATE KEY", deep))
w("key--pkcs8-under-rsa-label.pem", pem("RSA PRIVATE KEY", key_der))
# CSRs.
w("csr--truncated.pem", csr_pem[: len(csr_pem) // 2])
tampered = bytearray(csr_der)
at = bytes(tampered).find(b"jane")
tampered[at] = ord("J")
w("csr--bad-signature.pem", pem("CERTIFICATE REQUEST", bytes(tampered)))
w("csr--cert-instead.pem", pem("CERTIFICATE REQUEST", cert_der))
w("csr--base64-garbage.pem", "-----BEGIN CERTIFICATE REQUEST-----\n~~~~\n-----END CERTIFICATE REQUEST-----\n")
w("csr--trailing-data.pem", pem("CERTIFICATE REQUEST", csr_der + b"\x05\x00"))
w("csr--der-deep-nesting.pem", pem("CERTIFICATE REQUEST", deep))
# CertificateSigningRequest manifests.
req = base64.b64encode(csr_pem).decode()
head = "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  name: jane\n"
good_spec = f"spec:\n  request: {req}\n  signerName: kubernetes.io/kube-apiserver-client\n  usages:\n  - client auth\n"
bomb = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
for i in "bcdefghij":
    prev = chr(ord(i) - 1)
    bomb += f"{i}: &{i} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
w("manifest--yaml-bomb.yaml", bomb)
w("manifest--wrong-types.yaml", head + f"spec:\n  request: {req}\n  signerName: [a, b]\n  usages: 5\n")
w("manifest--bad-base64-request.yaml", head + "spec:\n  request: '%%%not base64%%%'\n  signerName: kubernetes.io/kube-apiserver-client\n  usages: [client auth]\n")
w("manifest--kind-pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n" + good_spec)
w("manifest--deep-nesting.json", "[" * 20000 + "]" * 20000)
w("manifest--request-is-cert.yaml", head + good_spec.replace(req, base64.b64encode(cert_pem).decode()))
w("manifest--missing-spec.yaml", head)
w("manifest--utf16.yaml", (head + good_spec).encode("utf-16"))
w("manifest--expiration-string.yaml", head + good_spec + "  expirationSeconds: tomorrow\n")
w("manifest--unknown-usage.yaml", head + good_spec.replace("client auth", "root access"))
# Kubeconfigs.
w("kubeconfig--not-yaml.conf", "{ this is: [not yaml\n")
kc = ("apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: https://192.0.2.10:6443\n"
      "  name: kubernetes\ncontexts:\n- context:\n    cluster: kubernetes\n    user: kubernetes-admin\n"
      "  name: kubernetes-admin@kubernetes\ncurrent-context: {cur}\nkind: Config\npreferences: {{}}\nusers:\n"
      "- name: kubernetes-admin\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n")
b64 = lambda b: base64.b64encode(b).decode()
w("kubeconfig--bad-base64.conf", kc.format(ca="***", cur="kubernetes-admin@kubernetes", cert=b64(cert_pem), key=b64(key_pem)))
w("kubeconfig--no-current-context.conf", kc.format(ca=b64(cert_pem), cur="nobody@nowhere", cert=b64(cert_pem), key=b64(key_pem)))
w("kubeconfig--cert-data-is-garbage.conf", kc.format(ca=b64(cert_pem), cur="kubernetes-admin@kubernetes", cert=b64(b"garbage"), key=b64(key_pem)))
w("kubeconfig--wrong-types.conf", "apiVersion: v1\nkind: Config\nclusters: 7\nusers: {a: b}\ncurrent-context: [x]\n")
w("kubeconfig--yaml-bomb.conf", bomb + "kind: Config\n")
w("kubeconfig--kind-pod.conf", "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n")
# Complex keys nested 60 deep (`? ? ? ...`), the shape the kubeconfig fuzzer found overflowing a
# debug build's 2 MiB thread stack when the YAML nesting cap was 64.
w("kubeconfig--nested-complex-keys.conf", "apiVersion: v1\nkind: Config\nextensions-of-mine:\n  " + "? " * 60 + "x\n")
# kubeadm config files.
w("config--yaml-bomb.yaml", "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n" + bomb)
w("config--wrong-types.yaml", "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking: [1, 2]\n")
w("config--not-kubeadm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
w("config--v1beta2.yaml", "apiVersion: kubeadm.k8s.io/v1beta2\nkind: ClusterConfiguration\n")
w("config--deep-nesting.yaml", "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nx: " + "[" * 5000 + "]" * 5000 + "\n")
w("config--tab-indent.yaml", "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n\tbindPort: 6443\n")
w("config--bad-cidr.yaml", "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking:\n  serviceSubnet: 10.96.0.0/99\n")
w("config--port-string.yaml", "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  bindPort: six\n")
w("config--duplicate-keys.yaml", "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nclusterName: a\nclusterName: b\n")
# Garbage everywhere.
w("any--empty", b"")
w("any--nul-bytes.bin", b"\x00" * 4096)
w("any--utf16-bom.txt", "-----BEGIN CERTIFICATE-----\n".encode("utf-16"))
w("any--random-binary.bin", bytes((i * 7919 + 13) % 251 for i in range(8192)))
w("any--only-whitespace.txt", " \n\t\r\n  \n")
w("any--crlf-garbage.txt", "line one\r\nline two\r\n-----\r\n")
w("any--very-long-line.txt", "A" * 200_000)
print(len([f for f in os.listdir(HERE) if "--" in f]), "files")
