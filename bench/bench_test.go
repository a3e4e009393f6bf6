package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"
	"net/smtp"

	"github.com/smtpsecure/smtpsecure"
	"github.com/smtpsecure/smtpsecure/internal/smtptest"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

// message is a typical 4 KiB notification mail with a few dot lines.
var message = []byte("From: app@example.test\r\nTo: user@example.test\r\nSubject: Your report\r\n\r\n" +
	strings.Repeat("A line of text for the report body, like most mail has.\r\n.and one starting with a dot\r\n", 40))

type fixture struct {
	sink *smtptest.Sink
	tls  *tls.Config // client config trusting the sink's CA, ServerName localhost
}

func newFixture(b *testing.B) *fixture {
	ca, err := testpki.NewCA("bench CA")
	if err != nil {
		b.Fatal(err)
	}
	leaf, err := ca.Issue(testpki.LeafOptions{DNSNames: []string{"localhost"}})
	if err != nil {
		b.Fatal(err)
	}
	s := &smtptest.Sink{TLSConfig: leaf.ServerConfig()}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return &fixture{sink: s, tls: &tls.Config{ServerName: "localhost", RootCAs: ca.Pool()}}
}

func (f *fixture) check(b *testing.B) {
	if got := f.sink.Messages(); got < int64(b.N) {
		b.Fatalf("sink got %d messages, want %d", got, b.N)
	}
}

func report(b *testing.B) {
	b.SetBytes(int64(len(message)))
	b.ReportAllocs()
}

// BenchmarkSession sends b.N messages over one STARTTLS session: what an
// application sending a batch, or a pooled connection, does.
func BenchmarkSession(b *testing.B) {
	b.Run("smtpsecure", func(b *testing.B) {
		f := newFixture(b)
		d := &smtpsecure.Dialer{Host: "localhost", Port: f.sink.Port(), TLSConfig: f.tls}
		ctx := context.Background()
		c, err := d.Dial(ctx)
		if err != nil {
			b.Fatal(err)
		}
		env := &smtpsecure.Envelope{From: "app@example.test", To: []string{"user@example.test"}}
		r := bytes.NewReader(message)
		report(b)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			r.Reset(message)
			if _, err := c.Send(ctx, env, r); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		c.Quit(ctx)
		f.check(b)
	})
	b.Run("net-smtp", func(b *testing.B) {
		f := newFixture(b)
		c, err := smtp.Dial(f.sink.Addr())
		if err != nil {
			b.Fatal(err)
		}
		if err := c.StartTLS(f.tls); err != nil {
			b.Fatal(err)
		}
		report(b)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := c.Mail("app@example.test"); err != nil {
				b.Fatal(err)
			}
			if err := c.Rcpt("user@example.test"); err != nil {
				b.Fatal(err)
			}
			w, err := c.Data()
			if err != nil {
				b.Fatal(err)
			}
			if _, err := w.Write(message); err != nil {
				b.Fatal(err)
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		c.Quit()
		f.check(b)
	})
	b.Run("go-smtp", func(b *testing.B) {
		f := newFixture(b)
		c, err := gosmtp.DialStartTLS(f.sink.Addr(), f.tls)
		if err != nil {
			b.Fatal(err)
		}
		r := bytes.NewReader(message)
		report(b)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			r.Reset(message)
			if err := c.SendMail("app@example.test", []string{"user@example.test"}, r); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		c.Quit()
		f.check(b)
	})
}

// BenchmarkConnection opens a new STARTTLS connection for every message,
// as net/smtp.SendMail and its drop-in do.
func BenchmarkConnection(b *testing.B) {
	b.Run("smtpsecure", func(b *testing.B) {
		f := newFixture(b)
		d := &smtpsecure.Dialer{Host: "localhost", Port: f.sink.Port(), TLSConfig: f.tls}
		ctx := context.Background()
		report(b)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := d.Send(ctx, &smtpsecure.Envelope{From: "app@example.test", To: []string{"user@example.test"}}, bytes.NewReader(message)); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		f.check(b)
	})
	b.Run("net-smtp", func(b *testing.B) {
		f := newFixture(b)
		report(b)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			c, err := smtp.Dial(f.sink.Addr())
			if err != nil {
				b.Fatal(err)
			}
			if err := c.StartTLS(f.tls); err != nil {
				b.Fatal(err)
			}
			if err := c.Mail("app@example.test"); err != nil {
				b.Fatal(err)
			}
			if err := c.Rcpt("user@example.test"); err != nil {
				b.Fatal(err)
			}
			w, err := c.Data()
			if err != nil {
				b.Fatal(err)
			}
			w.Write(message)
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			c.Quit()
		}
		b.StopTimer()
		f.check(b)
	})
	b.Run("go-smtp", func(b *testing.B) {
		f := newFixture(b)
		report(b)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			c, err := gosmtp.DialStartTLS(f.sink.Addr(), f.tls)
			if err != nil {
				b.Fatal(err)
			}
			if err := c.SendMail("app@example.test", []string{"user@example.test"}, bytes.NewReader(message)); err != nil {
				b.Fatal(err)
			}
			c.Quit()
		}
		b.StopTimer()
		f.check(b)
	})
}
