package certs

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"
)

func TestSelfSignedIsAValidPairForItsNames(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	certPEM, keyPEM, err := SelfSigned([]string{"a.example.com", "*.b.example.com", "127.0.0.1"}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("not a matching pair: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a.example.com", "x.b.example.com", "127.0.0.1"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("certificate does not cover %s: %v", name, err)
		}
	}
	if err := leaf.VerifyHostname("c.example.com"); err == nil {
		t.Errorf("certificate covers c.example.com, which it was not made for")
	}
	if !leaf.NotAfter.Equal(now.Add(time.Hour)) {
		t.Errorf("NotAfter = %v, want %v", leaf.NotAfter, now.Add(time.Hour))
	}
	if _, _, err := SelfSigned(nil, now, time.Hour); err == nil {
		t.Errorf("no names: want an error")
	}
}
