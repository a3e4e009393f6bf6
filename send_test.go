package smtpsecure

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/smtpsecure/smtpsecure/internal/smtptest"
)

// writeCalls counts the client's writes on the connection.
type writeCalls struct {
	net.Conn
	n atomic.Int32
}

func (c *writeCalls) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(p)
}

// Issue 9 §7: with one recipient, AllOrNothing means what the default
// means, and the message goes in the same single round trip (MAIL, RCPT
// and the data in one write); with several, the envelope's replies are
// awaited first.
func TestAllOrNothingRoundTrips(t *testing.T) {
	for _, exts := range [][]string{{"PIPELINING", "CHUNKING"}, {"PIPELINING"}} {
		s := newServer(t, func(s *smtptest.Server) { s.TLSExtensions = exts })
		d := dialerFor(t, s)
		var wc *writeCalls
		d.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			var nd net.Dialer
			conn, err := nd.DialContext(ctx, network, s.Addr())
			wc = &writeCalls{Conn: conn}
			return wc, err
		}
		c, err := d.Dial(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		writes := func(to ...string) int32 {
			before := wc.n.Load()
			res, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: to, AllOrNothing: true}, strings.NewReader(testMsg))
			if err != nil || len(res.Accepted) != len(to) {
				t.Fatalf("%v: Send = %+v, %v", exts, res, err)
			}
			return wc.n.Load() - before
		}
		// One write with CHUNKING; with DATA the body follows the 354.
		want := int32(1)
		if len(exts) == 1 {
			want = 2
		}
		if n := writes("b@test.example"); n != want {
			t.Errorf("%v: one recipient took %d writes, want %d", exts, n, want)
		}
		if n := writes("b@test.example", "c@test.example"); n <= want {
			t.Errorf("%v: two recipients, all or nothing, took %d writes: the data went before the replies", exts, n)
		}
		c.Quit(ctxT(t))
	}
}

// An uncertain delivery names the recipients that may have the message.
func TestUncertainDeliveryNamesRecipients(t *testing.T) {
	s := newServer(t, func(s *smtptest.Server) {
		s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			switch {
			case cmd.Verb == "RCPT" && strings.Contains(cmd.Arg, "unknown"):
				return "550 5.1.1 no such user\r\n", true
			case cmd.Verb == "EOD":
				c.Close()
				return "", true
			}
			return "", false
		}
	})
	c := dial(t, s)
	res, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"b@test.example", "unknown@test.example", "c@test.example"}}, strings.NewReader(testMsg))
	var ue *UncertainDeliveryError
	if !errors.As(err, &ue) || res != nil || strings.Join(ue.Recipients, ",") != "b@test.example,c@test.example" {
		t.Fatalf("Send = %+v, %v", res, err)
	}
}
