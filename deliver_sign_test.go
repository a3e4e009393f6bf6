package smtpsecure

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/smtpsecure/smtpsecure/internal/mxworld"
	"github.com/smtpsecure/smtpsecure/internal/smtptest"
)

// countingSigner counts the calls of the signer it wraps.
type countingSigner struct {
	s     MessageSigner
	calls atomic.Int32
}

func (c *countingSigner) Sign(ctx context.Context, msg io.Reader) ([]byte, error) {
	c.calls.Add(1)
	return c.s.Sign(ctx, msg)
}

// Deliverer.Signer signs once per call, before the first session: the MX
// hosts of two domains get the same signed octets, which verify as their
// receivers check DKIM (RSA and Ed25519), with the exact size declared
// with SIZE; a message with LF line ends and dot lines is signed as it
// goes on the wire.
func TestDeliverSigned(t *testing.T) {
	w := mxworld.New(t)
	for _, k := range testDKIMKeys(t) {
		t.Run(k.name, func(t *testing.T) {
			d := worldDeliverer(w, nil)
			cs := &countingSigner{s: &DKIMSigner{Domain: "sender.example", Selector: "mx", Key: k.key}}
			d.Signer = cs
			id, _ := testMessage(t)
			msg := "From: <a@sender.example>\nTo: x@dane-ee.example, y@sts-enforce.example\nSubject: signed\nMessage-ID: <" + id + ">\n\n.\nsigned body\n..\n"
			to := []string{"x@dane-ee.example", "y@sts-enforce.example"}
			res := deliver(t, d, &Envelope{From: "a@sender.example", To: to}, strings.NewReader(msg))
			for _, r := range res {
				if r.Outcome != OutcomeDelivered {
					t.Fatalf("%s: %s: %v", r.Recipient, r.Outcome, r.Err)
				}
			}
			if n := cs.calls.Load(); n != 1 {
				t.Errorf("signed %d times, want once", n)
			}
			var datas [][]byte
			for _, host := range []string{"mx.dane-ee.example", "mx.sts-enforce.example"} {
				for _, m := range w.MX(host).Messages() {
					if !bytes.Contains(m.Data, []byte(id)) {
						continue
					}
					datas = append(datas, m.Data)
					if size := m.MailParams["SIZE"]; size != strconv.Itoa(len(m.Data)) {
						t.Errorf("%s: SIZE=%s for %d octets", host, size, len(m.Data))
					}
					v := verifyDKIM(t, m.Data, "sender.example", "mx", k.record)
					if v.Err != nil {
						t.Errorf("%s: DKIM verification failed: %v", host, v.Err)
					}
				}
			}
			if len(datas) != 2 || !bytes.Equal(datas[0], datas[1]) {
				t.Fatalf("received %d copies, want the same octets at both hosts", len(datas))
			}
			if !bytes.HasPrefix(datas[0], []byte("DKIM-Signature: ")) || !bytes.Contains(datas[0], []byte("\r\n.\r\nsigned body\r\n..\r\n")) {
				t.Errorf("received %q", datas[0])
			}
		})
	}
}

// A host that refuses the message after the data and the next host that
// takes it get the same signed octets: the message is signed once, not
// per attempt.
func TestDeliverSignedFailover(t *testing.T) {
	var mu sync.Mutex
	var refused []byte
	mw := newMiniWorld(t,
		miniHost{name: "mx1.mini.example", hook: func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			if cmd.Verb == "EOD" {
				mu.Lock()
				defer mu.Unlock()
				refused = append([]byte(nil), c.PendingMessage().Data...)
				return "451 4.3.0 try another host", true
			}
			return "", false
		}},
		miniHost{name: "mx2.mini.example"},
	)
	k := testDKIMKeys(t)[1]
	d := mw.deliverer(nil)
	d.Signer = &DKIMSigner{Domain: "sender.example", Selector: "mx", Key: k.key}
	_, msg := testMessage(t, "u@mini.example")
	res := deliver(t, d, &Envelope{From: "a@sender.example", To: []string{"u@mini.example"}}, msg)
	if res[0].Outcome != OutcomeDelivered || res[0].Host != "mx2.mini.example" {
		t.Fatalf("%s by %s: %v", res[0].Outcome, res[0].Host, res[0].Err)
	}
	got := mw.messages("mx2.mini.example")
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || refused == nil || !bytes.Equal(got[0].Data, refused) {
		t.Fatalf("mx1 was sent %q, mx2 got %d messages", refused, len(got))
	}
	if v := verifyDKIM(t, got[0].Data, "sender.example", "mx", k.record); v.Err != nil {
		t.Errorf("DKIM verification failed: %v", v.Err)
	}
}

// A message the Signer does not sign is not sent anywhere: Deliver returns
// a *SignError (for a failing signer, a context that ended while signing)
// or refuses a BINARYMIME message, before any session.
func TestDeliverSignFailure(t *testing.T) {
	mw := newMiniWorld(t, miniHost{name: "mx.mini.example"})
	boom := errors.New("HSM offline")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name  string
		ctx   context.Context
		s     MessageSigner
		body  BodyType
		match error
	}{
		{"signer fails", context.Background(), &fieldSigner{err: boom}, "", boom},
		{"signer returns no field", context.Background(), &fieldSigner{fields: []byte("oops\r\n")}, "", ErrSign},
		{"DKIM key missing", context.Background(), &DKIMSigner{Domain: "sender.example", Selector: "mx"}, "", ErrInvalidOptions},
		{"context ended", canceled, &fieldSigner{fields: []byte("X: 1\r\n")}, "", context.Canceled},
		{"BINARYMIME", context.Background(), &fieldSigner{fields: []byte("X: 1\r\n")}, BodyBinaryMIME, ErrInvalidOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mw.deliverer(nil)
			d.Signer = tt.s
			_, msg := testMessage(t, "u@mini.example")
			env := &Envelope{From: "a@sender.example", To: []string{"u@mini.example"}}
			env.Body = tt.body
			res, err := d.Deliver(tt.ctx, env, msg)
			if res != nil || !errors.Is(err, tt.match) {
				t.Fatalf("Deliver = %v, %v; want an error matching %v", res, err, tt.match)
			}
			var se *SignError
			if tt.body == "" && !errors.As(err, &se) {
				t.Errorf("error %T, want a *SignError", err)
			}
		})
	}
	if n := mw.sessions("mx.mini.example"); n != 0 {
		t.Errorf("the MX host saw %d sessions, want none", n)
	}
}

// MailTLSReport signs a report with Deliverer.Signer, as RFC 8460 §5.3
// asks.
func TestMailTLSReportSigned(t *testing.T) {
	mw := newMiniWorld(t, miniHost{name: "mx.mini.example"})
	k := testDKIMKeys(t)[0]
	d := mw.deliverer(nil)
	d.Signer = &DKIMSigner{Domain: "sender.example", Selector: "reports", Key: k.key}
	report := "From: reports@sender.example\r\nSubject: Report Domain: mini.example\r\nTLS-Report-Domain: mini.example\r\n\r\nreport\r\n"
	if err := d.MailTLSReport(ctxT(t), "reports@sender.example", []string{"tlsrpt@mini.example"}, strings.NewReader(report)); err != nil {
		t.Fatal(err)
	}
	got := mw.messages("mx.mini.example")
	if len(got) != 1 {
		t.Fatalf("%d messages", len(got))
	}
	if v := verifyDKIM(t, got[0].Data, "sender.example", "reports", k.record); v.Err != nil {
		t.Errorf("the report's DKIM signature does not verify: %v", v.Err)
	}
}
