package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/smtp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	gomail "github.com/wneessen/go-mail"

	"github.com/smtpsecure/smtpsecure"
)

const from = "app@example.test"

// body is the body of a typical 10 KiB notification, with a few lines
// that start with a dot.
var body = strings.Repeat("A line of text for the report body, like most mail has.\r\n.and one starting with a dot\r\n", 120)

// message is the whole 10 KiB message, header and body.
var message = []byte("From: app@example.test\r\nTo: user@example.test\r\nSubject: Your report\r\n\r\n" + body)

// recipients returns n recipients.
func recipients(n int) []string {
	to := make([]string, n)
	for i := range to {
		to[i] = fmt.Sprintf("user%d@example.test", i)
	}
	return to
}

// sessionRTT is the round-trip time the proxy emulates for counting round
// trips: long enough that every turn of the conversation is seen as one,
// short enough for a quick run.
const sessionRTT = 2 * time.Millisecond

// A peer is a client to compare. session opens one session to addr and
// returns a function that sends one message over it; conn sends one message
// over a new connection.
type peer struct {
	name    string
	session func(b *testing.B, addr string, to []string) func() error
	conn    func(addr string, to []string) error
}

func port(b *testing.B, addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, err := strconv.Atoi(p)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

var peers = []peer{
	{
		name: "smtpsecure",
		session: func(b *testing.B, addr string, to []string) func() error {
			d := &smtpsecure.Dialer{Host: "127.0.0.1", Port: port(b, addr), TLSConfig: tlsConfig()}
			ctx := context.Background()
			c, err := d.Dial(ctx)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { c.Quit(ctx) })
			env := &smtpsecure.Envelope{From: from, To: to}
			r := bytes.NewReader(message)
			return func() error {
				r.Reset(message)
				_, err := c.Send(ctx, env, r)
				return err
			}
		},
	},
	{
		name: "net-smtp",
		session: func(b *testing.B, addr string, to []string) func() error {
			c, err := smtp.Dial(addr)
			if err != nil {
				b.Fatal(err)
			}
			if err := c.StartTLS(tlsConfig()); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { c.Quit() })
			return func() error {
				if err := c.Mail(from); err != nil {
					return err
				}
				for _, rcpt := range to {
					if err := c.Rcpt(rcpt); err != nil {
						return err
					}
				}
				w, err := c.Data()
				if err != nil {
					return err
				}
				if _, err := w.Write(message); err != nil {
					return err
				}
				return w.Close()
			}
		},
	},
	{
		name: "go-smtp",
		session: func(b *testing.B, addr string, to []string) func() error {
			c, err := gosmtp.DialStartTLS(addr, tlsConfig())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { c.Quit() })
			r := bytes.NewReader(message)
			return func() error {
				r.Reset(message)
				return c.SendMail(from, to, r)
			}
		},
		conn: func(addr string, to []string) error {
			c, err := gosmtp.DialStartTLS(addr, tlsConfig())
			if err != nil {
				return err
			}
			if err := c.SendMail(from, to, bytes.NewReader(message)); err != nil {
				c.Close()
				return err
			}
			return c.Quit()
		},
	},
	{
		name: "go-mail",
		session: func(b *testing.B, addr string, to []string) func() error {
			c := goMailClient(b, addr)
			if err := c.DialWithContext(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { c.Close() })
			m := goMailMsg(b, to)
			return func() error { return c.Send(m) }
		},
	},
}

func goMailClient(b *testing.B, addr string) *gomail.Client {
	c, err := gomail.NewClient("127.0.0.1", gomail.WithPort(port(b, addr)), gomail.WithTLSPolicy(gomail.TLSMandatory), gomail.WithTLSConfig(tlsConfig()))
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// goMailMsg is the message for go-mail, which composes messages itself:
// the same header and body, sent as 8-bit, so that it need not encode it.
func goMailMsg(b *testing.B, to []string) *gomail.Msg {
	m := gomail.NewMsg(gomail.WithEncoding(gomail.NoEncoding))
	if err := m.From(from); err != nil {
		b.Fatal(err)
	}
	if err := m.To(to...); err != nil {
		b.Fatal(err)
	}
	m.Subject("Your report")
	m.SetBodyString(gomail.TypeTextPlain, body)
	return m
}

// connPeers send over a new connection per message, as the drop-in
// SendMail functions do.
func connPeers(b *testing.B) []peer {
	return []peer{
		{name: "smtpsecure-Dialer.Send", conn: func(addr string, to []string) error {
			d := &smtpsecure.Dialer{Host: "127.0.0.1", Port: port(b, addr), TLSConfig: tlsConfig()}
			_, err := d.Send(context.Background(), &smtpsecure.Envelope{From: from, To: to}, bytes.NewReader(message))
			return err
		}},
		{name: "smtpsecure-SendMail", conn: func(addr string, to []string) error {
			return smtpsecure.SendMail(addr, nil, from, to, message)
		}},
		{name: "net-smtp-SendMail", conn: func(addr string, to []string) error {
			return smtp.SendMail(addr, nil, from, to, message)
		}},
		{name: "go-smtp", conn: peers[2].conn},
		{name: "go-mail", conn: func(addr string, to []string) error {
			c := goMailClient(b, addr)
			return c.DialAndSend(goMailMsg(b, to))
		}},
	}
}

// sessionCases are the reused-session cases: each peer with 1 and 5
// recipients, and smtpsecure also against a server without CHUNKING.
type sessionCase struct {
	name string
	p    peer
	addr string
	to   []string
}

func sessionCases() []sessionCase {
	var cases []sessionCase
	for _, n := range []int{1, 5} {
		for _, p := range peers {
			cases = append(cases, sessionCase{fmt.Sprintf("%s/%drcpt", p.name, n), p, sinks.Chunking, recipients(n)})
			if p.name == "smtpsecure" {
				cases = append(cases, sessionCase{fmt.Sprintf("%s-DATA/%drcpt", p.name, n), p, sinks.Data, recipients(n)})
			}
		}
	}
	return cases
}

// BenchmarkSession sends over one reused STARTTLS session, straight to
// the server: CPU time and allocations per message.
func BenchmarkSession(b *testing.B) {
	for _, tc := range sessionCases() {
		b.Run(tc.name, func(b *testing.B) {
			send := tc.p.session(b, tc.addr, tc.to)
			m := start(b, nil)
			for i := 0; i < b.N; i++ {
				if err := send(); err != nil {
					b.Fatal(err)
				}
			}
			m.stop()
		})
	}
}

// BenchmarkSessionRoundTrips sends over one reused session through the
// proxy: round trips per message, measured.
func BenchmarkSessionRoundTrips(b *testing.B) {
	for _, tc := range sessionCases() {
		b.Run(tc.name, func(b *testing.B) {
			px := withProxy(b, tc.addr, sessionRTT)
			send := tc.p.session(b, px.Addr(), tc.to)
			m := start(b, px)
			for i := 0; i < b.N; i++ {
				if err := send(); err != nil {
					b.Fatal(err)
				}
			}
			m.stop()
		})
	}
}

// BenchmarkConnection opens a new connection for every message (TCP,
// STARTTLS, the message, QUIT), straight to the server: CPU time and
// allocations per message.
func BenchmarkConnection(b *testing.B) {
	for _, p := range connPeers(b) {
		b.Run(p.name, func(b *testing.B) {
			to := recipients(1)
			m := start(b, nil)
			for i := 0; i < b.N; i++ {
				if err := p.conn(sinks.Chunking, to); err != nil {
					b.Fatal(err)
				}
			}
			m.stop()
		})
	}
}

// BenchmarkConnectionRoundTrips is BenchmarkConnection through the proxy:
// round trips per message, measured.
func BenchmarkConnectionRoundTrips(b *testing.B) {
	for _, p := range connPeers(b) {
		b.Run(p.name, func(b *testing.B) {
			px := withProxy(b, sinks.Chunking, sessionRTT)
			to := recipients(1)
			m := start(b, px)
			for i := 0; i < b.N; i++ {
				if err := p.conn(px.Addr(), to); err != nil {
					b.Fatal(err)
				}
			}
			m.stop()
		})
	}
}

// poolRTT is the round-trip time of the pool throughput benchmark: a
// provider in another region.
const poolRTT = 20 * time.Millisecond

// BenchmarkPool sends from many goroutines through a Pool of 1 and of 8
// sessions, to a server 20 ms away: messages per second grow with the
// sessions until the client is CPU-bound.
func BenchmarkPool(b *testing.B) {
	for _, n := range []int{1, 8} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			px := withProxy(b, sinks.Chunking, poolRTT)
			p := &smtpsecure.Pool{
				Dialer:      &smtpsecure.Dialer{Host: "127.0.0.1", Port: px.Port(), TLSConfig: tlsConfig()},
				MaxSessions: n,
				MaxMessages: 1 << 30,
			}
			ctx := context.Background()
			b.Cleanup(func() { p.Close(ctx) })
			env := &smtpsecure.Envelope{From: from, To: recipients(1)}
			send := func() {
				if _, err := p.Send(ctx, env, bytes.NewReader(message)); err != nil {
					b.Error(err)
				}
			}
			// Every session dialled before the clock starts.
			var wg sync.WaitGroup
			for i := 0; i < 2*n; i++ {
				wg.Add(1)
				go func() { defer wg.Done(); send() }()
			}
			wg.Wait()
			m := start(b, px)
			var next atomic.Int64
			for w := 0; w < 4*n; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						send()
					}
				}()
			}
			wg.Wait()
			m.stop()
		})
	}
}
