package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"switchboard/smsgw/smpp"
	"switchboard/smsgw/smsc"
)

// selfSigned makes a certificate for name and writes it as a PEM CA file.
func selfSigned(t *testing.T, name string) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	path := filepath.Join(t.TempDir(), "ca.pem")
	must(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, path
}

// TestSMPPOverTLS: with [smpp] tls, the bind is made over TLS, trusting
// tls_ca and checking tls_server_name; a wrong name never binds.
func TestSMPPOverTLS(t *testing.T) {
	cert, ca := selfSigned(t, "smsc.test")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	must(t, err)
	sim := smsc.NewServer(smsc.Config{Logger: zerolog.New(zerolog.NewTestWriter(t))})
	go sim.Serve(ln)
	t.Cleanup(func() { sim.Close() })

	bind := func(serverName string) error {
		tc, err := tlsConfig(SMPPConfig{Addr: ln.Addr().String(), TLS: true, TLSCA: ca, TLSServer: serverName})
		if err != nil {
			return err
		}
		c := smpp.NewClient(smpp.Config{Addr: ln.Addr().String(), TLS: tc, SystemID: "sb", ReconnectMin: 50 * time.Millisecond,
			Logger: zerolog.New(zerolog.NewTestWriter(t))})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { c.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
		defer wcancel()
		return c.WaitBound(wctx)
	}
	if err := bind("smsc.test"); err != nil {
		t.Fatalf("bind over TLS: %v", err)
	}
	if err := bind("other.test"); err == nil {
		t.Fatal("bound although the certificate is for another name")
	}
	// Without tls_server_name the host of addr is checked: 127.0.0.1 is not in the certificate.
	if err := bind(""); err == nil {
		t.Fatal("bound although the certificate does not name the address")
	}
	if _, err := tlsConfig(SMPPConfig{Addr: "127.0.0.1:1", TLSCA: filepath.Join(t.TempDir(), "missing.pem")}); err == nil {
		t.Fatal("a missing CA file was accepted")
	}
}
