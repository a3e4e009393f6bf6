package smtpsecure

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/smtpsecure/smtpsecure/internal/smtptest"
)

// benchMessage is a typical 4 KiB notification mail.
var benchMessage = []byte("From: app@test.example\r\nTo: user@test.example\r\nSubject: Your report\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n\r\n" + strings.Repeat("A line of text for the report body, like most mail has.\r\n", 70))

// sinkServer starts the allocation-light benchmark server, so that the
// figures are the client's.
func sinkServer(b *testing.B) *smtptest.Sink {
	_, leaf := pki(b)
	s := &smtptest.Sink{TLSConfig: leaf.ServerConfig()}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkSend measures messages per second and allocations per message
// on one verified TLS session over loopback (issue 2 §11). The server is a
// sink that offers PIPELINING and CHUNKING; the data goes in one BDAT
// chunk, pipelined with the envelope: one round trip per message.
func BenchmarkSend(b *testing.B) {
	for _, size := range []int{1, 64} {
		b.Run(fmt.Sprintf("%dKiB", size*len(benchMessage)>>10), func(b *testing.B) {
			msg := bytes.Repeat(benchMessage, size)
			s := sinkServer(b)
			c, err := dialerFor(b, s).Dial(ctxT(b))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			env := &Envelope{From: "app@test.example", To: []string{"user@test.example"}}
			ctx := ctxT(b)
			r := bytes.NewReader(msg)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r.Reset(msg)
				if _, err := c.Send(ctx, env, r); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkDialSend measures a whole connection per message: TCP, TLS
// handshake, EHLO twice, AUTH, one message, QUIT.
func BenchmarkDialSend(b *testing.B) {
	s := sinkServer(b)
	d := dialerFor(b, s)
	d.Auth = PlainAuth("", "alice", "secret")
	ctx := ctxT(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := sendMail(ctx, d, "app@test.example", []string{"user@test.example"}, bytes.NewReader(benchMessage)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
