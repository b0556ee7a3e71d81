// Writes certificates and a request made by Go's crypto/x509 (CreateCertificate,
// CreateCertificateRequest) from the Ed25519 and P-256 keys in tests/data/keys. Ed25519
// signatures are deterministic, so kubepki, given the same keys, serial, window, names and
// extensions, must write the same bytes (crates/kubepki-ca/tests/go_certs.rs).
//
// usage: cd tests/data/go-certs && go run . (Debian's golang-go; standard library only)
package main

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"time"
)

func key(file string) any {
	b, err := os.ReadFile("../keys/" + file)
	if err != nil {
		panic(err)
	}
	block, _ := pem.Decode(b)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		panic(err)
	}
	return k
}

func write(file string, der []byte, err error) {
	if err != nil {
		panic(err)
	}
	if err := os.WriteFile(file, der, 0o644); err != nil {
		panic(err)
	}
}

func main() {
	caKey := key("ed25519-pkcs8.key").(crypto.Signer)
	leafKey := key("p256-pkcs8.key").(crypto.Signer)
	at := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return t
	}

	// kubeadm's CA profile (pkiutil.NewSelfSignedCACert): the SKI Go derives (SHA-1).
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(0x2a),
		Subject:               pkix.Name{CommonName: "kubernetes"},
		DNSNames:              []string{"kubernetes"},
		NotBefore:             at("2026-01-01T00:00:00Z"),
		NotAfter:              at("2060-01-01T00:00:00Z"),
		KeyUsage:              x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(nil, ca, ca, caKey.Public(), caKey)
	write("ca.der", caDER, err)
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		panic(err)
	}

	// A leaf with every name kind kubepki writes, a multi-valued O with a '*', a serial with
	// its high bit set, and a NotAfter in 2050 (GeneralizedTime) after a NotBefore in 2049.
	uri, _ := url.Parse("spiffe://cluster.local/ns/default/sa/jane")
	leaf := &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes([]byte{0x80, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07}),
		Subject: pkix.Name{
			CommonName:         "jane",
			Organization:       []string{"system:masters", "dev", "a*b", "Ölmühle"},
			OrganizationalUnit: []string{"ops"},
			Country:            []string{"DE"},
			Province:           []string{"Berlin"},
			Locality:           []string{"Berlin_Mitte"},
		},
		DNSNames:              []string{"jane.example.com", "*.jane.example.com"},
		EmailAddresses:        []string{"jane@example.com"},
		IPAddresses:           []net.IP{net.ParseIP("10.96.0.1").To4(), net.ParseIP("fd00::1")},
		URIs:                  []*url.URL{uri},
		NotBefore:             at("2049-12-31T23:55:00Z"),
		NotAfter:              at("2050-12-31T23:59:59Z"),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	leafDER, err := x509.CreateCertificate(nil, leaf, caCert, leafKey.Public(), caKey)
	write("leaf.der", leafDER, err)

	// A request: subject and SANs (Go puts them into one extensionRequest attribute).
	req := &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: "system:node:n1", Organization: []string{"system:nodes"}},
		DNSNames:    []string{"n1.example.com"},
		IPAddresses: []net.IP{net.ParseIP("192.168.1.10").To4()},
	}
	reqDER, err := x509.CreateCertificateRequest(nil, req, caKey)
	write("request.der", reqDER, err)
}
