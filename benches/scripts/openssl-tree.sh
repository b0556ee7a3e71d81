#!/usr/bin/env bash
# Baseline for benches/compare.sh: writes the kubeadm tree (3 CAs, 7 leaves, sa.key/sa.pub,
# 5 kubeconfigs = 16 keys) with the OpenSSL command line, one step after the other, as a shell
# installer without kubeadm would. Same subjects, usages, SANs and file modes as `kubepki init`.
#
# usage: openssl-tree.sh OUT_DIR [rsa2048|rsa3072|rsa4096|p256]
set -euo pipefail
out=$1
alg=${2:-rsa3072}
node=cp1
adv=192.0.2.10
pki=$out/pki
umask 077
mkdir -p "$pki/etcd"

genkey() {
    case $alg in
    rsa*) openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:${alg#rsa}" -out "$1" 2>/dev/null ;;
    p256) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -pkeyopt ec_param_enc:named_curve -out "$1" ;;
    esac
}

ca() { # name cn
    genkey "$pki/$1.key"
    openssl req -x509 -new -key "$pki/$1.key" -subj "/CN=$2" -days 3650 -sha256 \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign" \
        -addext "subjectAltName=DNS:$2" -out "$pki/$1.crt"
    chmod 0644 "$pki/$1.crt"
}

leaf() { # name ca subject eku [san]
    local name=$1 signer=$2 subj=$3 eku=$4 san=${5:-}
    local ext
    ext=$(mktemp)
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$eku"
        echo "authorityKeyIdentifier=keyid"
        echo "subjectKeyIdentifier=none"
        [ -n "$san" ] && echo "subjectAltName=$san"
    } >"$ext"
    genkey "$pki/$name.key"
    openssl req -new -key "$pki/$name.key" -subj "$subj" |
        openssl x509 -req -CA "$pki/$signer.crt" -CAkey "$pki/$signer.key" -days 365 -sha256 \
            -set_serial "0x$(openssl rand -hex 8 | sed 's/^./1/')" -extfile "$ext" \
            -out "$pki/$name.crt" 2>/dev/null
    chmod 0644 "$pki/$name.crt"
    rm -f "$ext"
}

kubeconfig() { # file cn org server
    local file=$1 cn=$2 org=$3 server=$4 subj="/CN=$2"
    [ -n "$org" ] && subj="/O=$org/CN=$cn"
    leaf "kc-$file" ca "$subj" clientAuth
    cat >"$out/$file" <<KC
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
    server: $server
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: $cn
  name: $cn@kubernetes
current-context: $cn@kubernetes
kind: Config
preferences: {}
users:
- name: $cn
  user:
    client-certificate-data: $(base64 -w0 <"$pki/kc-$file.crt")
    client-key-data: $(base64 -w0 <"$pki/kc-$file.key")
KC
    rm -f "$pki/kc-$file.crt" "$pki/kc-$file.key"
}

ca ca kubernetes
leaf apiserver ca /CN=kube-apiserver serverAuth \
    "DNS:$node,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1,IP:$adv"
# No O from 1.33.12/1.34.8/1.35.5/1.36.1 and in 1.37, kubepki's default (docs/compatibility.md §1.6).
leaf apiserver-kubelet-client ca "/CN=kube-apiserver-kubelet-client" clientAuth
ca front-proxy-ca front-proxy-ca
leaf front-proxy-client front-proxy-ca /CN=front-proxy-client clientAuth
ca etcd/ca etcd-ca
etcd_san="DNS:$node,DNS:localhost,IP:$adv,IP:127.0.0.1,IP:::1"
leaf etcd/server etcd/ca "/CN=$node" serverAuth,clientAuth "$etcd_san"
leaf etcd/peer etcd/ca "/CN=$node" serverAuth,clientAuth "$etcd_san"
leaf etcd/healthcheck-client etcd/ca /CN=kube-etcd-healthcheck-client clientAuth
leaf apiserver-etcd-client etcd/ca /CN=kube-apiserver-etcd-client clientAuth
genkey "$pki/sa.key"
openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
server=https://$adv:6443
kubeconfig admin.conf kubernetes-admin kubeadm:cluster-admins "$server"
kubeconfig super-admin.conf kubernetes-super-admin system:masters "$server"
kubeconfig kubelet.conf "system:node:$node" system:nodes "$server"
kubeconfig controller-manager.conf system:kube-controller-manager "" "$server"
kubeconfig scheduler.conf system:kube-scheduler "" "$server"
