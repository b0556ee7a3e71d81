// Writes the DER Names Go's crypto/x509/pkix and encoding/asn1 make for subjects with '*'
// (PrintableString only when every character is in its set, which has no '*': Go writes
// UTF8String then), next to ones that stay PrintableString. kubepki's Subject::to_der must
// give the same bytes (crates/kubepki-csr/tests/go_names.rs).
//
// usage: cd tests/data/go-names && go run . (Debian's golang-go; standard library only)
package main

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"os"
)

func write(file string, n pkix.Name) {
	der, err := asn1.Marshal(n.ToRDNSequence())
	if err != nil {
		panic(err)
	}
	if err := os.WriteFile(file, der, 0o644); err != nil {
		panic(err)
	}
}

func main() {
	write("wildcard-cn.der", pkix.Name{CommonName: "*.example.com"})
	write("star-org.der", pkix.Name{CommonName: "jane", Organization: []string{"a*b", "dev"}})
	write("star-ou.der", pkix.Name{CommonName: "svc", OrganizationalUnit: []string{"*"}, Country: []string{"DE"}})
	write("printable.der", pkix.Name{CommonName: "kube-apiserver", Organization: []string{"system:masters"}})
}
