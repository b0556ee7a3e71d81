#!/usr/bin/env python3
"""Writes the odd-but-valid admin.conf corpus `certs renew admin.conf` is tested on
(tests/kubeconfig_corpus.rs), and `expected.tsv`: per file `renew`, or `refuse` and a fragment of
the reason. Run it from anywhere: `python3 make.py`; it rewrites every `*.conf.in` here.

The files are templates: the test fills the markers from a tree it has just made.
  @CA@ @CERT@ @KEY@         the tree's CA and admin.conf's certificate and key (base64), where
                            they must stay as they are
  @CUR_CERT@ @CUR_KEY@      the same values where the current user holds them: replaced by the
                            new certificate and key
  @STALE_CA@                another CA's certificate (front-proxy-ca), which must stay
  @CUR_STALE_CA@            the same as the current cluster's CA data: replaced by ca.crt
  @CUR_KEY_BLOCK:N@         the key as the lines of a literal block scalar indented N spaces;
                            becomes the new key on one line
  @CUR_CERT_BLOCK:N@        the same for the certificate
  @CUR_CERT_DQ:N@           the certificate inside a double-quoted string, continued over lines
                            indented N spaces with `\\`; becomes the new certificate on one line
  @DIR@                     the folder of admin.conf
Files the templates reference: admin-client.crt, admin-client.key, admin-client.pem (certificate
and key), written by the test with the old credentials, and admin-client-link.key, a symbolic link
to admin-client.key.
"""

import os

HERE = os.path.dirname(os.path.abspath(__file__))

CLUSTER = """\
clusters:
- cluster:
    certificate-authority-data: @CA@
    server: https://192.0.2.10:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: kubernetes-admin
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
kind: Config
preferences: {}
"""

BACKUP = """\
- name: admin-backup
  user:
    client-certificate-data: @CERT@
    client-key-data: @KEY@
"""

CASES = []


def case(name, verdict, text, fragment=""):
    CASES.append((name, verdict, fragment, text))


case("kubeadm", "renew", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: kubernetes-admin
  user:
    client-certificate-data: @CUR_CERT@
    client-key-data: @CUR_KEY@
""")

case("comment-and-backup", "renew", "apiVersion: v1\n" + CLUSTER + "users:\n" + BACKUP + """\
- name: kubernetes-admin
  user:
    client-certificate-data: @CUR_CERT@ # renewed by kubepki
    client-key-data: @CUR_KEY@   # keep secret
""")

case("flow-user", "renew", "apiVersion: v1\n" + CLUSTER + "users:\n" + BACKUP + """\
- name: kubernetes-admin
  user: {client-certificate-data: @CUR_CERT@, client-key-data: @CUR_KEY@}
""")

case("quoted-keys", "renew", "apiVersion: v1\n" + CLUSTER + "users:\n" + BACKUP + """\
- "name": "kubernetes-admin"
  'user':
    "client-certificate-data": "@CUR_CERT@"
    'client-key-data': '@CUR_KEY@'
""")

case("password-multiline", "renew", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: kubernetes-admin
  user:
    client-certificate-data: @CUR_CERT@
    client-key-data: @CUR_KEY@
- name: legacy
  user:
    username: legacy
    password: "first line
      client-key-data: @KEY@
      client-certificate-data: @CERT@
      last line"
""")

case("block-scalar-copy", "renew", "apiVersion: v1\n" + CLUSTER + """\
extensions:
- name: notes
  extension:
    text: |
      client-certificate-data: @CERT@
      client-key-data: @KEY@
users:
- name: kubernetes-admin
  user:
    client-certificate-data: @CUR_CERT@
    client-key-data: @CUR_KEY@
""")

case("exec-env-copy", "renew", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: plugin
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: /usr/local/bin/helper
      env:
      - name: KEY
        value: @KEY@
      - name: CERT
        value: @CERT@
      interactiveMode: Never
- name: kubernetes-admin
  user:
    client-certificate-data: @CUR_CERT@
    client-key-data: @CUR_KEY@
""")

case("empty-key-data", "renew", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: other
  user:
    client-certificate-data: @CERT@
    client-key-data: ''
- name: kubernetes-admin
  user:
    client-certificate-data: @CUR_CERT@
    client-key-data: ''
    client-key: admin-client.key
""")

case("key-file", "renew", "apiVersion: v1\n" + CLUSTER + "users:\n" + BACKUP + """\
- name: kubernetes-admin
  user:
    client-certificate-data: @CUR_CERT@
    client-key: admin-client.key
""")

case("cert-and-key-files", "renew", "apiVersion: v1\n" + CLUSTER + "users:\n" + BACKUP + """\
- name: kubernetes-admin
  user:
    client-certificate: admin-client.crt
    client-key: admin-client.key
""")

case("combined-pem", "renew", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: kubernetes-admin
  user:
    client-certificate: ./admin-client.pem
    client-key: ./admin-client.pem
""")

case("absolute-key-file", "renew", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: kubernetes-admin
  user:
    client-certificate-data: @CUR_CERT@
    client-key: @DIR@/admin-client.key
""")

case("stale-ca", "renew", """\
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: @STALE_CA@
    server: https://old.example:6443
  name: old
- cluster:
    certificate-authority-data: @CUR_STALE_CA@
    server: https://192.0.2.10:6443
  name: kubernetes
contexts:
- context:
    cluster: old
    user: kubernetes-admin
  name: old
- context:
    cluster: kubernetes
    user: kubernetes-admin
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
kind: Config
preferences: {}
users:
- name: kubernetes-admin
  user:
    client-certificate-data: @CUR_CERT@
    client-key-data: @CUR_KEY@
""")

case("json", "renew", """\
{
  "apiVersion": "v1",
  "kind": "Config",
  "clusters": [
    {"name": "kubernetes", "cluster": {"server": "https://192.0.2.10:6443", "certificate-authority-data": "@CA@"}}
  ],
  "contexts": [
    {"name": "kubernetes-admin@kubernetes", "context": {"cluster": "kubernetes", "user": "kubernetes-admin"}}
  ],
  "current-context": "kubernetes-admin@kubernetes",
  "users": [
    {"name": "admin-backup", "user": {"client-certificate-data": "@CERT@", "client-key-data": "@KEY@"}},
    {
      "name": "kubernetes-admin",
      "user": {
        "client-certificate-data": "@CUR_CERT@",
        "client-key-data": "@CUR_KEY@"
      }
    }
  ]
}
""")

case("json-one-line", "renew",
     '{"apiVersion":"v1","kind":"Config","clusters":[{"name":"kubernetes","cluster":'
     '{"server":"https://192.0.2.10:6443","certificate-authority-data":"@CA@"}}],'
     '"contexts":[{"name":"kubernetes-admin@kubernetes","context":{"cluster":"kubernetes",'
     '"user":"kubernetes-admin"}}],"current-context":"kubernetes-admin@kubernetes","users":'
     '[{"name":"kubernetes-admin","user":{"client-certificate-data":"@CUR_CERT@",'
     '"client-key-data":"@CUR_KEY@"}},{"name":"copy","user":{"client-key-data":"@KEY@"}}]}')

case("block-scalar-key", "renew", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: kubernetes-admin
  user:
    client-certificate-data: @CUR_CERT@
    client-key-data: |
      @CUR_KEY_BLOCK:6@
- name: next
  user:
    token: abc
""")

# Block scalars of each kind followed by another key of the same user: the content is replaced
# by one line, the header, the blank lines and the following key stay as they were.
case("block-literal-sibling", "renew", "apiVersion: v1\n" + CLUSTER + "users:\n" + BACKUP + """\
- name: kubernetes-admin
  user:
    client-certificate-data: |
      @CUR_CERT_BLOCK:6@
    client-key-data: @CUR_KEY@
""")

case("block-literal-strip-sibling", "renew", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: kubernetes-admin
  user:
    client-key-data: |-   # the key
      @CUR_KEY_BLOCK:6@

    # the certificate
    client-certificate-data: @CUR_CERT@
    username: admin
""")

case("block-keep-sibling", "renew", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: kubernetes-admin
  user:
    client-key-data: |+
      @CUR_KEY_BLOCK:6@


    client-certificate-data: |2
      @CUR_CERT_BLOCK:6@
    username: admin
""")

case("block-folded-sibling", "renew", "apiVersion: v1\n" + CLUSTER + "users:\n" + BACKUP + """\
- name: kubernetes-admin
  user:
    client-certificate-data: >
      @CUR_CERT@
    client-key-data: >
        @CUR_KEY@
    username: admin
""")

case("block-folded-strip-sibling", "renew", ("apiVersion: v1\n" + CLUSTER + """\
users:
- name: kubernetes-admin
  user:
    client-key-data: >-
      @CUR_KEY@

    client-certificate-data: !!str >-
      @CUR_CERT@
    username: admin
""").replace("\n", "\r\n"))

case("dq-continued-cert", "renew", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: kubernetes-admin
  user:
    client-certificate-data: "@CUR_CERT_DQ:6@"
    client-key-data: @CUR_KEY@
""")

case("crlf", "renew", ("apiVersion: v1\n" + CLUSTER + "users:\n" + BACKUP + """\
- name: kubernetes-admin
  user:
    client-certificate-data: @CUR_CERT@
    client-key-data: @CUR_KEY@
""").replace("\n", "\r\n"))

case("tagged", "renew", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: kubernetes-admin
  user:
    client-certificate-data: !!str @CUR_CERT@
    client-key-data: !!str '@CUR_KEY@'
""")

case("unusual-order", "renew", """\
# hand-written
---
current-context: kubernetes-admin@kubernetes   # the one in use
users:
  - user:
      client-key-data:   @CUR_KEY@
      client-certificate-data:
        @CUR_CERT@
    name: kubernetes-admin
  - {name: copy, user: {client-key-data: "@KEY@", client-certificate-data: '@CERT@'}}
contexts:
  - name: kubernetes-admin@kubernetes
    context: {user: kubernetes-admin, cluster: kubernetes, namespace: dev}
clusters:
  - name: kubernetes
    cluster:
      server: https://192.0.2.10:6443
      certificate-authority-data: @CA@
      tls-server-name: kubernetes
preferences:
  colors: true
apiVersion: v1
kind: Config
...
""")

case("flow-document", "renew", """\
{apiVersion: v1, kind: Config,
 clusters: [{name: kubernetes, cluster: {server: "https://192.0.2.10:6443",
   certificate-authority-data: @CA@}}],
 contexts: [{name: kubernetes-admin@kubernetes, context: {cluster: kubernetes, user: kubernetes-admin}}],
 current-context: kubernetes-admin@kubernetes,
 users: [
   {name: admin-backup, user: {client-certificate-data: @CERT@, client-key-data: @KEY@}},
   {name: kubernetes-admin, user: {client-certificate-data: @CUR_CERT@,
     client-key-data: @CUR_KEY@}}]}
""")

case("anchor-unshared", "renew", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: kubernetes-admin
  user: &admin
    client-certificate-data: &cert @CUR_CERT@
    client-key-data: @CUR_KEY@
""")

case("comment-before-value", "renew", "apiVersion: v1\n" + CLUSTER + "users:\n" + BACKUP + """\
- name: kubernetes-admin
  user:
    client-certificate-data: # the certificate
      @CUR_CERT@
    client-key-data:   # the key
      @CUR_KEY@
""")

case("null-data-with-files", "renew", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: kubernetes-admin
  user:
    client-certificate-data: ~
    client-certificate: admin-client.crt
    client-key-data: null
    client-key: admin-client.key
""")

case("alias-key", "refuse", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: admin-backup
  user:
    client-certificate-data: @CERT@
    client-key-data: &key @KEY@
- name: kubernetes-admin
  user:
    client-certificate-data: @CERT@
    client-key-data: *key
""", "alias")

case("anchor-shared", "refuse", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: kubernetes-admin
  user:
    client-certificate-data: @CERT@
    client-key-data: &key @KEY@
- name: admin-backup
  user:
    client-certificate-data: @CERT@
    client-key-data: *key
""", "other parts of the file would change too")

case("merge-user", "refuse", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: admin-backup
  user: &creds
    client-certificate-data: @CERT@
    client-key-data: @KEY@
- name: kubernetes-admin
  user:
    <<: *creds
""", "uses a YAML merge key (<<) at line 22 column 5")

# Checked with kubectl v1.32.4 (`kubectl config view --raw --kubeconfig F`): a `<<` (plain or
# `!!merge`) after a user's client-certificate-data replaces it, one before it does not, a quoted
# "<<" is an ignored key; a *-data value with a space, or a folded or multi-line plain scalar, is
# "illegal base64 data"; CR/LF inside (a literal block) and non-zero trailing bits are accepted,
# missing padding is not.
#
# YAML merge keys (<<) are refused wherever they are: go-yaml v2 (kubectl) applies a mapping's
# keys and merges in the order they are written, so a merge after the explicit keys overrides
# them for kubectl, while kubepki's parser lets the explicit keys win.
SUPER = """\
- name: super-admin
  user: &super
    client-certificate-data: @CERT@
    client-key-data: @KEY@
"""

case("merge-after", "refuse", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: kubernetes-admin
  user:
    client-certificate-data: @CERT@
    client-key-data: @KEY@
    <<: {client-certificate-data: @CERT@, client-key-data: @KEY@}
""", "uses a YAML merge key (<<) at line 20 column 5")

case("merge-aliased", "refuse", "apiVersion: v1\n" + CLUSTER + "users:\n" + SUPER + """\
- name: kubernetes-admin
  user:
    client-certificate-data: @CERT@
    client-key-data: @KEY@
    <<: *super
""", "uses a YAML merge key (<<) at line 24 column 5")

case("merge-list", "refuse", "apiVersion: v1\n" + CLUSTER + "users:\n" + SUPER + BACKUP.replace(
    "  user:", "  user: &backup") + """\
- name: kubernetes-admin
  user:
    client-certificate-data: @CERT@
    client-key-data: @KEY@
    <<: [*super, *backup]
""", "uses a YAML merge key (<<) at line 28 column 5")

case("merge-tagged", "refuse", "apiVersion: v1\n" + CLUSTER + "users:\n" + SUPER + """\
- name: kubernetes-admin
  user: {client-certificate-data: @CERT@, client-key-data: @KEY@, !!merge <<: *super}
""", "uses a YAML merge key (<<) at line 21")

case("merge-cluster", "refuse", "apiVersion: v1\n" + CLUSTER.replace(
    "    server: https://192.0.2.10:6443\n",
    "    server: https://192.0.2.10:6443\n    <<: {server: https://evil.example:6443}\n") + """\
users:
- name: kubernetes-admin
  user:
    client-certificate-data: @CERT@
    client-key-data: @KEY@
""", "uses a YAML merge key (<<) at line 6 column 5")

case("merge-context", "refuse", """\
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: @CA@
    server: https://192.0.2.10:6443
  name: kubernetes
contexts:
- context: &other
    cluster: kubernetes
    user: super-admin
  name: other
- context:
    cluster: kubernetes
    user: kubernetes-admin
    <<: *other
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
kind: Config
users:
""" + SUPER + """\
- name: kubernetes-admin
  user:
    client-certificate-data: @CERT@
    client-key-data: @KEY@
""", "uses a YAML merge key (<<) at line 15 column 5")

# Base64 as client-go decodes it (Go's StdEncoding skips only \r and \n): a space or a tab
# inside a *-data value, or a folded scalar whose line breaks became spaces, is refused.
case("space-in-key-data", "refuse", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: kubernetes-admin
  user:
    client-certificate-data: @CERT@
    client-key-data: "LS0t @KEY@"
""", "client-key-data is not valid base64: it holds a space")

case("tab-in-cert-data", "refuse", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: kubernetes-admin
  user:
    client-certificate-data: "LS0t\\t@CERT@"
    client-key-data: @KEY@
""", "client-certificate-data is not valid base64: it holds a tab")

case("folded-multiline-key", "refuse", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: kubernetes-admin
  user:
    client-certificate-data: @CERT@
    client-key-data: >
      @CUR_KEY_BLOCK:6@
""", "client-key-data is not valid base64: it holds a space")

case("plain-multiline-cert", "refuse", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: kubernetes-admin
  user:
    client-certificate-data: @CUR_CERT_BLOCK:6@
    client-key-data: @KEY@
""", "client-certificate-data is not valid base64: it holds a space")

case("token-user", "refuse", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: kubernetes-admin
  user:
    token: abcdef.0123456789abcdef
- name: admin-backup
  user:
    client-certificate-data: @CERT@
    client-key-data: @KEY@
""", "authenticates with a token")

case("both-data-and-file", "refuse", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: kubernetes-admin
  user:
    client-certificate: admin-client.crt
    client-certificate-data: @CERT@
    client-key-data: @KEY@
""", "sets both client-certificate-data and client-certificate")

case("duplicate-user", "refuse", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: kubernetes-admin
  user:
    client-certificate-data: @CERT@
    client-key-data: @KEY@
- name: kubernetes-admin
  user:
    client-certificate-data: @CERT@
    client-key-data: @KEY@
""", "2 user entries are named")

case("no-key", "refuse", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: kubernetes-admin
  user:
    client-certificate-data: @CERT@
""", "has no client key")

case("missing-key-file", "refuse", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: kubernetes-admin
  user:
    client-certificate-data: @CERT@
    client-key: nope.key
""", "nope.key")

case("key-file-in-tree", "refuse", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: kubernetes-admin
  user:
    client-certificate-data: @CERT@
    client-key: pki/apiserver.key
""", "a file of the tree")


case("symlink-key-file", "refuse", "apiVersion: v1\n" + CLUSTER + """\
users:
- name: kubernetes-admin
  user:
    client-certificate-data: @CERT@
    client-key: admin-client-link.key
""", "is a symbolic link")

case("duplicate-context", "refuse", """\
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: @CA@
    server: https://192.0.2.10:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: admin-backup
  name: kubernetes-admin@kubernetes
- context:
    cluster: kubernetes
    user: kubernetes-admin
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
kind: Config
users:
""" + BACKUP + """\
- name: kubernetes-admin
  user:
    client-certificate-data: @CERT@
    client-key-data: @KEY@
""", "2 context entries are named")

case("no-current-context", "refuse", "apiVersion: v1\n" + CLUSTER.replace(
    "current-context: kubernetes-admin@kubernetes", "current-context: elsewhere") + """\
users:
- name: kubernetes-admin
  user:
    client-certificate-data: @CERT@
    client-key-data: @KEY@
""", "current-context \"elsewhere\" is not among its contexts")

def main():
    for f in os.listdir(HERE):
        if f.endswith(".conf.in"):
            os.remove(os.path.join(HERE, f))
    lines = []
    for name, verdict, fragment, text in CASES:
        with open(os.path.join(HERE, name + ".conf.in"), "w", newline="") as f:
            f.write(text)
        lines.append("\t".join(x for x in (name, verdict, fragment) if x))
    with open(os.path.join(HERE, "expected.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
