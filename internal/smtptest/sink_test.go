package smtptest

import (
	"crypto/tls"
	"net/smtp"
	"testing"

	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

func TestSinkAcceptsMessages(t *testing.T) {
	ca, _ := testpki.NewCA("sink CA")
	leaf, _ := ca.Issue(testpki.LeafOptions{DNSNames: []string{"localhost"}})
	s := &Sink{TLSConfig: leaf.ServerConfig()}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.StartTLS(&tls.Config{ServerName: "localhost", RootCAs: ca.Pool()}); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(smtp.PlainAuth("", "u", "p", "127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := c.Mail("a@example.com"); err != nil {
			t.Fatal(err)
		}
		if err := c.Rcpt("b@example.com"); err != nil {
			t.Fatal(err)
		}
		w, err := c.Data()
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("Subject: x\r\n\r\n.dot\r\nbody\r\n"))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	c.Quit()
	if n := s.Messages(); n != 3 {
		t.Fatalf("%d messages", n)
	}
}

func TestSinkParseBDAT(t *testing.T) {
	for _, tc := range []struct {
		line     string
		n        int
		last, ok bool
	}{
		{"BDAT 10\r\n", 10, false, true},
		{"BDAT 0 LAST\r\n", 0, true, true},
		{"bdat 5 last\r\n", 5, true, true},
		{"BDAT\r\n", 0, false, false},
		{"BDAT x\r\n", 0, false, false},
		{"BDAT 5 FIRST\r\n", 0, false, false},
		{"BDAT 99999999999999\r\n", 0, false, false},
	} {
		n, last, ok := sinkParseBDAT([]byte(tc.line))
		if n != tc.n || last != tc.last || ok != tc.ok {
			t.Errorf("%q = %d %v %v", tc.line, n, last, ok)
		}
	}
}
