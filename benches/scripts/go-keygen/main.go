// go-keygen: Go's RSA key generation alone, N keys one after another in one process, as the
// kubeadm-equivalent peer (../kubeadm-peer) makes them; prints the mean time per key. Used by
// docs/performance.md ("RSA-2048: the target sits at what two cores allow") to read off the
// ceiling of the Go ÷ kubepki ratio for RSA trees.
//
//	go build -o /tmp/go-keygen . && /tmp/go-keygen 96 2048
package main

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"os"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: go-keygen N BITS")
		os.Exit(2)
	}
	n, err1 := strconv.Atoi(os.Args[1])
	bits, err2 := strconv.Atoi(os.Args[2])
	if err1 != nil || err2 != nil || n < 1 {
		fmt.Fprintln(os.Stderr, "usage: go-keygen N BITS")
		os.Exit(2)
	}
	t := time.Now()
	for i := 0; i < n; i++ {
		if _, err := rsa.GenerateKey(rand.Reader, bits); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	fmt.Printf("%d keys of %d bits: %.1f ms per key\n", n, bits, float64(time.Since(t).Microseconds())/1000/float64(n))
}
