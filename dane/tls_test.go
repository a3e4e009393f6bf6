package dane

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

// tlsServer accepts one TLS connection on loopback with leaf's certificate
// and reports the SNI the client sent.
func tlsServer(t *testing.T, leaf *testpki.Leaf) (addr string, sni func() string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var got string
	cfg := leaf.ServerConfig()
	cfg.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		mu.Lock()
		got = h.ServerName
		mu.Unlock()
		return nil, nil
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := tls.Server(c, cfg)
				tc.SetDeadline(time.Now().Add(5 * time.Second))
				if tc.Handshake() == nil {
					tc.Write([]byte("220 ok\r\n"))
				}
			}()
		}
	}()
	return ln.Addr().String(), func() string { mu.Lock(); defer mu.Unlock(); return got }
}

// STD-83: the client sends the TLSA base domain as SNI; the verifier
// replaces Web PKI verification in a real handshake.
func TestTLSHandshake(t *testing.T) {
	p := newPKI(t)
	leaf := p.leaf(t, testpki.LeafOptions{DNSNames: []string{"mx.hoster.example"}})
	chain := parseChain(t, leaf.Chain...)
	addr, sni := tlsServer(t, leaf)

	dial := func(v *Verifier, base *tls.Config) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d := tls.Dialer{Config: v.TLSConfig(base)}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		return nil
	}

	// DANE-EE: passes although no CA is trusted by the client.
	v, err := NewVerifier([]TLSA{rec(t, chain[0], DANEEE, SelectorSPKI, MatchSHA256)}, "mx.hoster.example", "alias.example.com")
	if err != nil {
		t.Fatal(err)
	}
	base := &tls.Config{ServerName: "ignored.example", MinVersion: tls.VersionTLS12}
	if err := dial(v, base); err != nil {
		t.Fatalf("DANE-EE handshake: %v", err)
	}
	if sni() != "mx.hoster.example" {
		t.Errorf("SNI %q, want the TLSA base domain", sni())
	}
	if base.ServerName != "ignored.example" || base.InsecureSkipVerify || base.VerifyConnection != nil {
		t.Error("TLSConfig modified the caller's configuration")
	}

	// DANE-TA: passes with the intermediate as trust anchor.
	v, err = NewVerifier([]TLSA{rec(t, p.inter.Cert, DANETA, SelectorCert, MatchSHA256)}, "mx.hoster.example")
	if err != nil {
		t.Fatal(err)
	}
	if err := dial(v, nil); err != nil {
		t.Fatalf("DANE-TA handshake: %v", err)
	}

	// A record for another key: the handshake fails with a *VerifyError.
	other, err := testpki.SelfSigned(testpki.LeafOptions{DNSNames: []string{"mx.hoster.example"}})
	if err != nil {
		t.Fatal(err)
	}
	v, err = NewVerifier([]TLSA{rec(t, other.Cert, DANEEE, SelectorSPKI, MatchSHA256)}, "mx.hoster.example")
	if err != nil {
		t.Fatal(err)
	}
	err = dial(v, nil)
	var ve *VerifyError
	if !errors.As(err, &ve) || !errors.Is(err, ErrNoMatch) || ve.ReportResultType() != rfc8460.ValidationFailure {
		t.Errorf("mismatch: err = %v", err)
	}

	// The caller's own VerifyConnection still runs after DANE.
	v, _ = NewVerifier([]TLSA{rec(t, chain[0], DANEEE, SelectorSPKI, MatchSHA256)}, "mx.hoster.example")
	called := false
	errOwn := errors.New("own check")
	err = dial(v, &tls.Config{VerifyConnection: func(tls.ConnectionState) error { called = true; return errOwn }})
	if !called || !errors.Is(err, errOwn) {
		t.Errorf("own VerifyConnection: called %v, err %v", called, err)
	}
}
