package smtpsecure

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/smtpsecure/smtpsecure/internal/smtptest"
)

// Issue 11 §4: Dialer.Send puts QUIT in the group that ends the message
// when the server offers PIPELINING (RFC 2920 §3.1), and the outcome is
// always the reply to the message, never QUIT's: every order in which the
// server can answer, refuse or go away. STD-13, STD-23, STD-24, STD-25.
func TestDialerSendPipelinesQuit(t *testing.T) {
	type want struct {
		ok        bool
		code      int  // the *SMTPError's code, or 0
		uncertain bool // an *UncertainDeliveryError
		refused   bool // a *RecipientsError
		protocol  bool // a *ProtocolError
		delivered int  // copies the server accepted
	}
	delivered := want{ok: true, delivered: 1}
	cases := []struct {
		name string
		// hooks answer commands (and EOD) in the server's place.
		hooks map[string]func(c *smtptest.Conn) string
		want  want
		// noPipelining, if set, is the outcome when QUIT is not pipelined.
		noPipelining *want
		// quitLast: the session ends with the client's QUIT, and nothing
		// follows it.
		quitLast bool
	}{
		{name: "250 then 221", want: delivered, quitLast: true},
		{name: "250, QUIT answered with 500", hooks: map[string]func(*smtptest.Conn) string{
			"QUIT": func(*smtptest.Conn) string { return "500 5.5.1 what?" },
		}, want: delivered, quitLast: true},
		{name: "250, hang-up at QUIT", hooks: map[string]func(*smtptest.Conn) string{
			"QUIT": func(c *smtptest.Conn) string { c.Close(); return "" },
		}, want: delivered, quitLast: true},
		{name: "250, reset at QUIT", hooks: map[string]func(*smtptest.Conn) string{
			"QUIT": func(c *smtptest.Conn) string { c.Reset(); return "" },
		}, want: delivered, quitLast: true},
		{name: "550 to the message", hooks: map[string]func(*smtptest.Conn) string{
			"EOD": func(*smtptest.Conn) string { return "550 5.6.0 content refused" },
		}, want: want{code: 550}, quitLast: true},
		{name: "451 to the message", hooks: map[string]func(*smtptest.Conn) string{
			"EOD": func(*smtptest.Conn) string { return "451 4.3.0 queue trouble" },
		}, want: want{code: 451}, quitLast: true},
		{name: "421 to the message", hooks: map[string]func(*smtptest.Conn) string{
			"EOD": func(*smtptest.Conn) string { return "421 4.3.2 shutting down" },
		}, want: want{code: 421}},
		{name: "hang-up before the final reply", hooks: map[string]func(*smtptest.Conn) string{
			"EOD": func(c *smtptest.Conn) string { c.Close(); return "" },
		}, want: want{uncertain: true}},
		{name: "reset before the final reply", hooks: map[string]func(*smtptest.Conn) string{
			"EOD": func(c *smtptest.Conn) string { c.Reset(); return "" },
		}, want: want{uncertain: true}},
		// Behind a pipelined QUIT, a 221 may be QUIT's reply in the place of
		// the message's: nobody can tell whether the message was taken (and
		// this server did take it). Without QUIT sent, it is a protocol
		// violation.
		{name: "221 where the final reply is due", hooks: map[string]func(*smtptest.Conn) string{
			"EOD": func(*smtptest.Conn) string { return "221 2.0.0 bye" },
		}, want: want{uncertain: true, delivered: 1}, noPipelining: &want{protocol: true, delivered: 1}},
		{name: "recipient refused", hooks: map[string]func(*smtptest.Conn) string{
			"RCPT": func(*smtptest.Conn) string { return "550 5.1.1 no such user" },
		}, want: want{refused: true}, quitLast: true},
		{name: "MAIL refused", hooks: map[string]func(*smtptest.Conn) string{
			"MAIL": func(*smtptest.Conn) string { return "550 5.7.1 sender refused" },
		}, want: want{code: 550}, quitLast: true},
	}
	for _, exts := range []struct {
		name       string
		list       []string
		pipelining bool
	}{
		{"CHUNKING", []string{"PIPELINING", "CHUNKING", "8BITMIME", "ENHANCEDSTATUSCODES"}, true},
		{"DATA", []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"}, true},
		{"CHUNKING without PIPELINING", []string{"CHUNKING", "8BITMIME", "ENHANCEDSTATUSCODES"}, false},
		{"DATA without PIPELINING", []string{"8BITMIME", "ENHANCEDSTATUSCODES"}, false},
	} {
		for _, tc := range cases {
			t.Run(exts.name+"/"+tc.name, func(t *testing.T) {
				var mu sync.Mutex
				var atEnd []byte // what the client had sent inside TLS when the message ended
				srv := newServer(t, func(s *smtptest.Server) {
					s.Extensions, s.TLSExtensions = exts.list, exts.list
					s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
						if cmd.Verb == "EOD" {
							mu.Lock()
							atEnd = c.Session().Encrypted()
							mu.Unlock()
						}
						if h := tc.hooks[cmd.Verb]; h != nil {
							return h(c), true
						}
						return "", false
					}
				})
				msg := poolMsg(1)
				res, err := dialerFor(t, srv).Send(ctxT(t), poolEnv(), strings.NewReader(msg))
				w := tc.want
				if !exts.pipelining && tc.noPipelining != nil {
					w = *tc.noPipelining
				}
				var se *SMTPError
				var pe *ProtocolError
				var ue *UncertainDeliveryError
				var re *RecipientsError
				switch {
				case w.ok:
					if err != nil || res == nil || len(res.Accepted) != 1 {
						t.Fatalf("Send = %+v, %v; want the message accepted", res, err)
					}
				case w.uncertain:
					if !errors.As(err, &ue) || !slices.Equal(ue.Recipients, []string{"b@test.example"}) {
						t.Fatalf("Send: %v, want an *UncertainDeliveryError naming the recipient", err)
					}
				case w.refused:
					if !errors.As(err, &re) || errors.As(err, &ue) {
						t.Fatalf("Send: %v, want a *RecipientsError", err)
					}
				case w.protocol:
					if !errors.As(err, &pe) || errors.As(err, &ue) {
						t.Fatalf("Send: %v, want a *ProtocolError", err)
					}
				default:
					if !errors.As(err, &se) || se.Code != w.code || errors.As(err, &ue) {
						t.Fatalf("Send: %v, want the server's %d", err, w.code)
					}
				}
				if !w.ok && res != nil {
					t.Errorf("result %+v with an error", res)
				}
				if got := subjects(srv)["m1"]; got != w.delivered {
					t.Errorf("the server took the message %d times, want %d", got, w.delivered)
				}
				if err := srv.WaitSessions(ctxT(t), 1); err != nil {
					t.Fatal(err)
				}
				verbs := srv.Sessions()[0].Verbs()
				if slices.Contains(verbs, "RSET") {
					t.Errorf("commands %q: RSET on a session that ends", verbs)
				}
				if n := strings.Count(strings.Join(verbs, " "), "QUIT"); n > 1 || tc.quitLast && (n != 1 || verbs[len(verbs)-1] != "QUIT") {
					t.Errorf("commands %q, want one QUIT, last", verbs)
				}
				mu.Lock()
				pipelined := bytes.HasSuffix(atEnd, []byte("QUIT\r\n"))
				mu.Unlock()
				if atEnd != nil && pipelined != exts.pipelining {
					t.Errorf("QUIT sent with the end of the message: %v, want %v (PIPELINING offered: %v)", pipelined, exts.pipelining, exts.pipelining)
				}
			})
		}
	}
}

// A message longer than one BDAT chunk, and one longer than the encoder's
// buffer with DATA: QUIT follows the last chunk, or the end marker, and the
// message arrives whole.
func TestDialerSendPipelinesQuitLongMessage(t *testing.T) {
	body := strings.Repeat("a line of the message body, long enough to fill chunks\r\n", 3000) // about 170 KiB
	for _, exts := range [][]string{{"PIPELINING", "CHUNKING"}, {"PIPELINING"}} {
		t.Run(fmt.Sprint(exts), func(t *testing.T) {
			srv := newServer(t, func(s *smtptest.Server) {
				s.Extensions, s.TLSExtensions = exts, exts
				s.Logf = nil
			})
			msg := poolMsg(7) + body
			if _, err := dialerFor(t, srv).Send(ctxT(t), poolEnv(), strings.NewReader(msg)); err != nil {
				t.Fatal(err)
			}
			if m := srv.Messages(); len(m) != 1 || string(m[0].Data) != msg {
				t.Fatalf("%d messages, the first not the one sent", len(m))
			}
			if err := srv.WaitSessions(ctxT(t), 1); err != nil {
				t.Fatal(err)
			}
			s := srv.Sessions()[0]
			if verbs := s.Verbs(); verbs[len(verbs)-1] != "QUIT" || s.Err() != nil {
				t.Errorf("commands %q, ended with %v; want QUIT last and a clean end", verbs, s.Err())
			}
		})
	}
}
