package smtpsecure

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/smtpsecure/smtpsecure/internal/dnstest"
	"github.com/smtpsecure/smtpsecure/internal/smtptest"
)

// Cancelling the context at any phase of a delivery (the DNS lookups, the
// greeting, EHLO, the TLS handshake, the envelope, the data, the wait for
// the final reply) makes Deliver return at once, far sooner than any of
// its own timeouts (5 and 10 minutes), with the recipient temporary and an
// error matching context.Canceled; the connection is closed and no other
// host is tried.
func TestDeliverCancel(t *testing.T) {
	// stall returns a hook that, at the command matched, tells the test and
	// then answers nothing until the client hangs up.
	stall := func(match func(smtptest.Command) bool, before string) func(chan<- struct{}) func(*smtptest.Conn, smtptest.Command) (string, bool) {
		return func(reached chan<- struct{}) func(*smtptest.Conn, smtptest.Command) (string, bool) {
			return func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
				if !match(cmd) {
					return "", false
				}
				if before != "" {
					c.Write(before)
				}
				reached <- struct{}{}
				c.Stall(context.Background())
				return "", true
			}
		}
	}
	verb := func(v string, tls bool) func(smtptest.Command) bool {
		return func(c smtptest.Command) bool { return c.Verb == v && c.TLS == tls }
	}
	phases := []struct {
		name string
		hook func(chan<- struct{}) func(*smtptest.Conn, smtptest.Command) (string, bool)
	}{
		{"DNS", nil},
		{"greeting", stall(verb("CONNECT", false), "")},
		{"EHLO", stall(verb("EHLO", false), "")},
		{"TLS handshake", stall(verb("STARTTLS", false), "220 2.0.0 go ahead\r\n")},
		{"EHLO inside TLS", stall(verb("EHLO", true), "")},
		{"MAIL", stall(verb("MAIL", true), "")},
		{"RCPT", stall(verb("RCPT", true), "")},
		{"DATA", stall(verb("DATA", true), "354 go ahead\r\n")},
		{"final reply", stall(verb("EOD", true), "")},
	}
	for _, ph := range phases {
		t.Run(ph.name, func(t *testing.T) {
			t.Parallel()
			reached := make(chan struct{}, 1)
			var hook func(*smtptest.Conn, smtptest.Command) (string, bool)
			if ph.hook != nil {
				hook = ph.hook(reached)
			}
			// Without PIPELINING, each command waits for its reply.
			ext := []string{"8BITMIME", "ENHANCEDSTATUSCODES"}
			w := newMiniWorld(t, miniHost{name: "mx1.mini.example", hook: hook, ext: ext}, miniHost{name: "mx2.mini.example", ext: ext})
			if ph.hook == nil {
				w.dns.SetName("mini.example", dnstest.Rule{Mode: dnstest.Drop})
			}
			d := w.deliverer(nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			type outcome struct {
				res []RecipientResult
				err error
			}
			done := make(chan outcome, 1)
			_, msg := testMessage(t, "a@mini.example")
			go func() {
				res, err := d.Deliver(ctx, &Envelope{From: "s@sender.example", To: []string{"a@mini.example"}}, msg)
				done <- outcome{res, err}
			}()
			if ph.hook == nil {
				waitFor(t, "the MX query", func() bool { return w.dns.Count("mini.example.", dns.TypeMX) > 0 })
			} else {
				select {
				case <-reached:
				case o := <-done:
					t.Fatalf("Deliver returned before the phase was reached: %+v %v", o.res, o.err)
				case <-time.After(deliverTimeout):
					t.Fatal("the phase was never reached")
				}
			}
			cancel()
			var o outcome
			select {
			case o = <-done:
			case <-time.After(deliverTimeout):
				t.Fatal("Deliver did not return after its context was cancelled")
			}
			if o.err != nil || len(o.res) != 1 {
				t.Fatalf("Deliver = %+v, %v", o.res, o.err)
			}
			r := o.res[0]
			var de *DeliveryError
			if r.Outcome != OutcomeTemporary || !errors.Is(r.Err, context.Canceled) || !errors.As(r.Err, &de) || !de.Temporary {
				t.Errorf("%s, err %v; want temporary, matching context.Canceled", r.Outcome, r.Err)
			}
			if len(w.messages("mx1.mini.example")) != 0 {
				t.Error("the message was delivered")
			}
			if n := w.sessions("mx2.mini.example"); n != 0 {
				t.Errorf("the second host was contacted %d times after the cancellation", n)
			}
			// The connection was closed: the server's session ends.
			for _, s := range w.servers["mx1.mini.example"].Sessions() {
				select {
				case <-s.Done():
				case <-time.After(deliverTimeout):
					t.Error("the session to mx1 is still open")
				}
			}
		})
	}
}

// waitFor polls cond until it holds, for at most deliverTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(deliverTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
