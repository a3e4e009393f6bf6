package smtptest_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure"
	"github.com/smtpsecure/smtpsecure/smtptest"
)

// at returns a Respond function that answers r to the first command with
// verb (and, when addr is set, that address) and keeps the default otherwise.
func at(verb, addr string, r smtptest.Response) func(smtptest.Command) smtptest.Response {
	return func(c smtptest.Command) smtptest.Response {
		if c.Verb == verb && (addr == "" || c.Address == addr) {
			return r
		}
		return smtptest.Response{}
	}
}

// Each Response the server can be told to give, and what the library makes
// of it.
func TestRespond(t *testing.T) {
	type result struct {
		res  *smtpsecure.SendResult
		err  error
		srv  *smtptest.Server
		sess *smtptest.Session
	}
	smtpErr := func(t *testing.T, err error, code int) *smtpsecure.SMTPError {
		t.Helper()
		var se *smtpsecure.SMTPError
		if !errors.As(err, &se) || se.Code != code {
			t.Fatalf("err = %v, want an SMTPError %d", err, code)
		}
		return se
	}
	noMessages := func(t *testing.T, r result) {
		t.Helper()
		if n := len(r.srv.Messages()); n != 0 {
			t.Errorf("%d messages recorded, want none", n)
		}
	}
	cases := []struct {
		name    string
		ext     []string // nil: the defaults
		respond func(smtptest.Command) smtptest.Response
		to      []string
		check   func(*testing.T, result)
	}{
		{
			name:    "one recipient refused",
			respond: at("RCPT", "nobody@example.net", smtptest.Response{Code: 550, Enhanced: "5.1.1", Text: "No such user"}),
			to:      []string{"you@example.net", "nobody@example.net"},
			check: func(t *testing.T, r result) {
				// A partial delivery is a result, not an error.
				if r.err != nil || len(r.res.Rejected) != 1 || r.res.Rejected[0].Recipient != "nobody@example.net" ||
					!reflect.DeepEqual(r.res.Accepted, []string{"you@example.net"}) {
					t.Fatalf("err = %v, result %+v; want nobody@ refused and the message delivered to the other", r.err, r.res)
				}
				if e := r.res.Rejected[0].Err; e.Code != 550 || e.Enhanced != (smtpsecure.EnhancedCode{Class: 5, Subject: 1, Detail: 1}) || e.Message() != "No such user" {
					t.Errorf("refusal %+v", e)
				}
				if m := r.srv.Messages(); len(m) != 1 || !reflect.DeepEqual(m[0].To, []string{"you@example.net"}) {
					t.Errorf("messages %v", m)
				}
			},
		},
		{
			name:    "every recipient refused for now",
			respond: at("RCPT", "", smtptest.Response{Code: 452, Enhanced: "4.2.2", Text: "Mailbox full"}),
			to:      []string{"you@example.net"},
			check: func(t *testing.T, r result) {
				var re *smtpsecure.RecipientsError
				if !errors.As(r.err, &re) || !re.Temporary() {
					t.Fatalf("err = %v, want a temporary refusal of every recipient", r.err)
				}
				noMessages(t, r)
			},
		},
		{
			name:    "sender refused",
			respond: at("MAIL", "me@example.com", smtptest.Response{Code: 553, Enhanced: "5.7.1", Text: "Sender not allowed"}),
			check: func(t *testing.T, r result) {
				se := smtpErr(t, r.err, 553)
				if !se.Enhanced.Security() {
					t.Errorf("enhanced code %v", se.Enhanced)
				}
				noMessages(t, r)
			},
		},
		{
			name:    "DATA refused",
			ext:     []string{"ENHANCEDSTATUSCODES"}, // no CHUNKING, no PIPELINING
			respond: at("DATA", "", smtptest.Response{Code: 554, Enhanced: "5.5.1", Text: "No thanks"}),
			check:   func(t *testing.T, r result) { smtpErr(t, r.err, 554); noMessages(t, r) },
		},
		{
			name:    "message refused at the end of data",
			respond: at(smtptest.EndOfData, "", smtptest.Response{Code: 554, Enhanced: "5.7.1", Text: "Spam"}),
			check:   func(t *testing.T, r result) { smtpErr(t, r.err, 554); noMessages(t, r) },
		},
		{
			name:    "message accepted with a queue ID",
			respond: at(smtptest.EndOfData, "", smtptest.Response{Code: 250, Enhanced: "2.0.0", Text: "Ok: queued as 4F2A"}),
			check: func(t *testing.T, r result) {
				if r.err != nil || !strings.Contains(r.res.Reply, "queued as 4F2A") || len(r.srv.Messages()) != 1 {
					t.Fatalf("err %v, reply %q, %d messages", r.err, r.res.Reply, len(r.srv.Messages()))
				}
			},
		},
		{
			name:    "421 at MAIL ends the session",
			respond: at("MAIL", "", smtptest.Response{Code: 421, Enhanced: "4.3.2", Text: "Shutting down"}),
			check: func(t *testing.T, r result) {
				smtpErr(t, r.err, 421)
				if !errors.Is(r.sess.Err(), smtptest.ErrHungUp) {
					t.Errorf("session Err %v, want ErrHungUp", r.sess.Err())
				}
				noMessages(t, r)
			},
		},
		{
			name:    "421 instead of the greeting",
			respond: at(smtptest.Connect, "", smtptest.Response{Code: 421, Text: "Too busy"}),
			check:   func(t *testing.T, r result) { smtpErr(t, r.err, 421) },
		},
		{
			name:    "hang-up before the final reply",
			respond: at(smtptest.EndOfData, "", smtptest.Response{HangUp: true}),
			check: func(t *testing.T, r result) {
				if !errors.Is(r.err, smtpsecure.ErrDeliveryUncertain) {
					t.Fatalf("err = %v, want an uncertain delivery", r.err)
				}
				if !errors.Is(r.sess.Err(), smtptest.ErrHungUp) {
					t.Errorf("session Err %v", r.sess.Err())
				}
				noMessages(t, r)
			},
		},
		{
			name:    "hang-up instead of the greeting",
			respond: at(smtptest.Connect, "", smtptest.Response{HangUp: true}),
			check: func(t *testing.T, r result) {
				var ce *smtpsecure.ConnError
				if !errors.As(r.err, &ce) {
					t.Fatalf("err = %v, want a ConnError", r.err)
				}
			},
		},
		{
			name:    "hang-up after a refusal",
			respond: at("RCPT", "", smtptest.Response{Code: 554, Text: "Go away", HangUp: true}),
			check: func(t *testing.T, r result) {
				if r.err == nil || errors.Is(r.err, smtpsecure.ErrDeliveryUncertain) {
					t.Fatalf("err = %v, want a failure that is not uncertain", r.err)
				}
				noMessages(t, r)
			},
		},
		{
			name:    "STARTTLS refused",
			respond: at("STARTTLS", "", smtptest.Response{Code: 454, Enhanced: "4.7.0", Text: "TLS not available"}),
			check: func(t *testing.T, r result) {
				var dg *smtpsecure.DowngradeError
				if !errors.As(r.err, &dg) || dg.Reason != smtpsecure.ReasonSTARTTLSRefused {
					t.Fatalf("err = %v, want STARTTLS refused", r.err)
				}
				assertNothingLeaked(t, r.sess)
			},
		},
		{
			name:    "multi-line reply",
			respond: at("MAIL", "", smtptest.Response{Code: 550, Enhanced: "5.7.1", Text: "Rejected\nsee https://example.com/why"}),
			check: func(t *testing.T, r result) {
				se := smtpErr(t, r.err, 550)
				if len(se.Lines) != 2 || se.Message() != "Rejected see https://example.com/why" {
					t.Errorf("lines %q, message %q", se.Lines, se.Message())
				}
			},
		},
		{
			name:    "no enhanced code without ENHANCEDSTATUSCODES",
			ext:     []string{"PIPELINING"},
			respond: at("MAIL", "", smtptest.Response{Code: 550, Enhanced: "5.7.1", Text: "Rejected"}),
			check: func(t *testing.T, r result) {
				se := smtpErr(t, r.err, 550)
				if se.Enhanced != (smtpsecure.EnhancedCode{}) || se.Lines[0] != "Rejected" {
					t.Errorf("reply %+v: want no enhanced code", se)
				}
			},
		},
		{
			name:    "a 2xx Response to RCPT is a mistake",
			respond: at("RCPT", "", smtptest.Response{Code: 250, Text: "OK"}),
			check: func(t *testing.T, r result) {
				var re *smtpsecure.RecipientsError
				if !errors.As(r.err, &re) || re.Rejected[0].Err.Code != 451 || !strings.Contains(re.Rejected[0].Err.Message(), "2xx at EndOfData") {
					t.Fatalf("err = %v, want 451 explaining the mistake", r.err)
				}
			},
		},
		{
			name:    "text without a code is a mistake",
			respond: at("MAIL", "", smtptest.Response{Text: "no"}),
			check:   func(t *testing.T, r result) { smtpErr(t, r.err, 451) },
		},
		{
			name:    "a short delay, then the default answer",
			respond: at("MAIL", "", smtptest.Response{Delay: time.Millisecond}),
			check: func(t *testing.T, r result) {
				if r.err != nil || len(r.srv.Messages()) != 1 {
					t.Fatalf("err %v", r.err)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, false, func(s *smtptest.Server) {
				if tc.ext != nil {
					s.Extensions = tc.ext
				}
				s.Respond = tc.respond
			})
			to := tc.to
			if to == nil {
				to = []string{"you@example.net"}
			}
			res, err := send(t, srv.Dialer(), to...)
			sess := waitSessions(t, srv, 1)[0]
			tc.check(t, result{res: res, err: err, srv: srv, sess: sess})
		})
	}
}

// Respond sees each command once, parsed, with its session; EndOfData
// carries the message.
func TestRespondSees(t *testing.T) {
	var seen []smtptest.Command
	srv := startServer(t, false, func(s *smtptest.Server) {
		s.Users = map[string]string{"alice": "secret"}
		s.Respond = func(c smtptest.Command) smtptest.Response {
			seen = append(seen, c) // sessions run one at a time here
			return smtptest.Response{}
		}
	})
	d := srv.Dialer()
	d.Auth = smtpsecure.PlainAuth("", "alice", "secret")
	if _, err := send(t, d, "you@example.net"); err != nil {
		t.Fatal(err)
	}
	sess := waitSessions(t, srv, 1)[0]
	var verbs []string
	for _, c := range seen {
		verbs = append(verbs, c.Verb)
		if c.Session != sess {
			t.Errorf("%s: session %p, want %p", c.Verb, c.Session, sess)
		}
		switch c.Verb {
		case "MAIL":
			if c.Address != "me@example.com" || !c.TLS {
				t.Errorf("MAIL: %+v", c)
			}
		case "RCPT":
			if c.Address != "you@example.net" {
				t.Errorf("RCPT: %+v", c)
			}
		case "AUTH":
			if c.Arg != "PLAIN" {
				t.Errorf("AUTH argument %q: the initial response must not be shown", c.Arg)
			}
		case smtptest.EndOfData:
			if c.Message == nil || string(c.Message.Data) != testMessage || c.Message.AuthUser != "alice" {
				t.Errorf("EndOfData message %+v", c.Message)
			}
		}
	}
	want := []string{smtptest.Connect, "EHLO", "STARTTLS", "EHLO", "AUTH", "MAIL", "RCPT", "BDAT", smtptest.EndOfData, "QUIT"}
	if !reflect.DeepEqual(verbs, want) {
		t.Errorf("Respond saw %v, want %v", verbs, want)
	}
	var recorded []string
	for _, c := range sess.Commands() {
		recorded = append(recorded, c.Verb)
	}
	if !reflect.DeepEqual(recorded, []string{"EHLO", "STARTTLS", "EHLO", "AUTH", "MAIL", "RCPT", "BDAT", "QUIT"}) {
		t.Errorf("Session.Commands %v", recorded)
	}
}

// A Delay ends at once when the server is closed: no test waits for it.
func TestDelayEndsOnClose(t *testing.T) {
	reached := make(chan struct{})
	srv := smtptest.NewUnstartedServer()
	srv.Respond = func(c smtptest.Command) smtptest.Response {
		if c.Verb == "MAIL" {
			close(reached)
			return smtptest.Response{Delay: time.Hour}
		}
		return smtptest.Response{}
	}
	srv.Start()
	errc := make(chan error, 1)
	go func() {
		_, err := send(t, srv.Dialer(), "you@example.net")
		errc <- err
	}()
	<-reached
	srv.Close() // returns only once the delayed session has ended
	if err := <-errc; err == nil {
		t.Fatal("the send succeeded through a closed server")
	}
	if err := srv.Sessions()[0].Err(); !errors.Is(err, smtptest.ErrServerClosed) {
		t.Errorf("session Err %v, want ErrServerClosed", err)
	}
}
