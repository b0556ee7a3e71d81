// Command kubeadm-peer is the kubeadm-equivalent baseline of benches/compare.sh: it writes the
// kubeadm certificate tree (3 CAs, 7 leaves, sa.key/sa.pub, 5 kubeconfigs = 16 keys) the way
// kubeadm does, with Go's standard library only: crypto/rsa or crypto/ecdsa keys and
// x509.CreateCertificate, one after another, each file written with os.WriteFile and never
// fsynced. The same subjects, usages, SANs and file modes as `kubepki init` and
// benches/scripts/openssl-tree.sh; not byte-identical to kubeadm's output, only the same work.
//
// usage: kubeadm-peer OUT_DIR [rsa2048|rsa3072|ecdsa-p256]
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

const (
	node = "cp1"
	adv  = "192.0.2.10"
)

var alg = "rsa2048"

func die(err error) {
	fmt.Fprintln(os.Stderr, "kubeadm-peer:", err)
	os.Exit(1)
}

// newKey makes one private key, as kubeadm's pkiutil.NewPrivateKey does.
func newKey() crypto.Signer {
	var (
		k   crypto.Signer
		err error
	)
	switch alg {
	case "rsa2048":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "rsa3072":
		k, err = rsa.GenerateKey(rand.Reader, 3072)
	case "ecdsa-p256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		err = fmt.Errorf("unknown algorithm %q (rsa2048, rsa3072, ecdsa-p256)", alg)
	}
	if err != nil {
		die(err)
	}
	return k
}

func keyPEM(k crypto.Signer) []byte {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			die(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	}
	die(fmt.Errorf("unsupported key"))
	return nil
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).SetInt64(math.MaxInt64-1))
	if err != nil {
		die(err)
	}
	return n.Add(n, big.NewInt(1))
}

func write(path string, data []byte, mode os.FileMode) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		die(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		die(err)
	}
}

type ca struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
}

// newCA is kubeadm's pkiutil.NewCertificateAuthority: a key and a self-signed certificate.
func newCA(pki, name, cn string) *ca {
	key := newKey()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		DNSNames:              []string{cn},
		NotBefore:             now.Add(-5 * time.Minute).UTC(),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour).UTC(),
		KeyUsage:              x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		die(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		die(err)
	}
	p := certPEM(der)
	write(filepath.Join(pki, name+".crt"), p, 0o644)
	write(filepath.Join(pki, name+".key"), keyPEM(key), 0o600)
	return &ca{cert, key, p}
}

type leafSpec struct {
	cn  string
	org []string
	eku []x509.ExtKeyUsage
	dns []string
	ips []net.IP
}

// sign is kubeadm's pkiutil.NewCertAndKey: a new key and a certificate signed by the CA.
func sign(c *ca, s leafSpec) ([]byte, crypto.Signer) {
	key := newKey()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: s.cn, Organization: s.org},
		DNSNames:              s.dns,
		IPAddresses:           s.ips,
		NotBefore:             now.Add(-5 * time.Minute).UTC(),
		NotAfter:              now.Add(365 * 24 * time.Hour).UTC(),
		KeyUsage:              x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           s.eku,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, key.Public(), c.key)
	if err != nil {
		die(err)
	}
	return der, key
}

func leaf(pki, name string, c *ca, s leafSpec) {
	der, key := sign(c, s)
	write(filepath.Join(pki, name+".crt"), certPEM(der), 0o644)
	write(filepath.Join(pki, name+".key"), keyPEM(key), 0o600)
}

func kubeconfig(out, file string, c *ca, cn string, org []string, server string) {
	der, key := sign(c, leafSpec{cn: cn, org: org, eku: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	b64 := base64.StdEncoding.EncodeToString
	yaml := fmt.Sprintf(`apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: %s
    server: %s
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: %s
  name: %s@kubernetes
current-context: %s@kubernetes
kind: Config
preferences: {}
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
`, b64(c.pem), server, cn, cn, cn, cn, b64(certPEM(der)), b64(keyPEM(key)))
	write(filepath.Join(out, file), []byte(yaml), 0o600)
}

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fmt.Fprintln(os.Stderr, "usage: kubeadm-peer OUT_DIR [rsa2048|rsa3072|ecdsa-p256]")
		os.Exit(2)
	}
	out := os.Args[1]
	if len(os.Args) == 3 {
		alg = os.Args[2]
	}
	pki := filepath.Join(out, "pki")
	server, client := x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth
	ip := net.ParseIP

	k8s := newCA(pki, "ca", "kubernetes")
	leaf(pki, "apiserver", k8s, leafSpec{
		cn:  "kube-apiserver",
		eku: []x509.ExtKeyUsage{server},
		dns: []string{node, "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		ips: []net.IP{ip("10.96.0.1"), ip(adv)},
	})
	leaf(pki, "apiserver-kubelet-client", k8s, leafSpec{
		// No O in kubeadm 1.37 (and 1.33.12+, 1.34.8+, 1.35.5+, 1.36.1+): #138957.
		cn: "kube-apiserver-kubelet-client", eku: []x509.ExtKeyUsage{client},
	})
	fp := newCA(pki, "front-proxy-ca", "front-proxy-ca")
	leaf(pki, "front-proxy-client", fp, leafSpec{cn: "front-proxy-client", eku: []x509.ExtKeyUsage{client}})
	etcd := newCA(pki, "etcd/ca", "etcd-ca")
	etcdSAN := leafSpec{
		cn:  node,
		eku: []x509.ExtKeyUsage{server, client},
		dns: []string{node, "localhost"},
		ips: []net.IP{ip(adv), ip("127.0.0.1"), ip("::1")},
	}
	leaf(pki, "etcd/server", etcd, etcdSAN)
	leaf(pki, "etcd/peer", etcd, etcdSAN)
	leaf(pki, "etcd/healthcheck-client", etcd, leafSpec{cn: "kube-etcd-healthcheck-client", eku: []x509.ExtKeyUsage{client}})
	leaf(pki, "apiserver-etcd-client", etcd, leafSpec{cn: "kube-apiserver-etcd-client", eku: []x509.ExtKeyUsage{client}})

	sa := newKey()
	pub, err := x509.MarshalPKIXPublicKey(sa.Public())
	if err != nil {
		die(err)
	}
	write(filepath.Join(pki, "sa.key"), keyPEM(sa), 0o600)
	write(filepath.Join(pki, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600)

	url := "https://" + adv + ":6443"
	kubeconfig(out, "admin.conf", k8s, "kubernetes-admin", []string{"kubeadm:cluster-admins"}, url)
	kubeconfig(out, "super-admin.conf", k8s, "kubernetes-super-admin", []string{"system:masters"}, url)
	kubeconfig(out, "kubelet.conf", k8s, "system:node:"+node, []string{"system:nodes"}, url)
	kubeconfig(out, "controller-manager.conf", k8s, "system:kube-controller-manager", nil, url)
	kubeconfig(out, "scheduler.conf", k8s, "system:kube-scheduler", nil, url)
}
