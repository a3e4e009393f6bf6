package smtpsecure

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/smtpsecure/smtpsecure/internal/mxworld"
	"github.com/smtpsecure/smtpsecure/internal/smtptest"
	"github.com/smtpsecure/smtpsecure/policy"
)

// answer returns a hook that answers verb (and, for RCPT, only the
// recipient addr) with reply.
func answer(verb, addr, reply string) func(*smtptest.Conn, smtptest.Command) (string, bool) {
	return func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
		if cmd.Verb == verb && (addr == "" || strings.Contains(cmd.Arg, "<"+addr+">")) {
			return reply, true
		}
		return "", false
	}
}

// What each reply of the first MX host does to the recipients: which are
// settled there, which go on to the second host, and whether the second
// host is contacted at all. One transaction per session carries every
// recipient of the domain.
func TestDeliverFailover(t *testing.T) {
	const a, b = "a@mini.example", "b@mini.example"
	tests := []struct {
		name     string
		hook     func(*smtptest.Conn, smtptest.Command) (string, bool)
		outcomes [2]Outcome // of a and b
		mx1, mx2 []string   // recipients each host took
		mx2Used  bool
		check    func(*testing.T, []RecipientResult)
	}{
		{name: "all accepted", outcomes: [2]Outcome{OutcomeDelivered, OutcomeDelivered}, mx1: []string{a, b}},
		// A 550 for one of two recipients: the other is delivered, the first
		// ends there (RFC 5321 §4.2.5), and mx2 is never asked.
		{name: "550 for one recipient", hook: answer("RCPT", b, "550 5.1.1 no such user"),
			outcomes: [2]Outcome{OutcomeDelivered, OutcomePermanent}, mx1: []string{a},
			check: func(t *testing.T, res []RecipientResult) {
				if r := res[1]; r.Code != 550 || r.Enhanced != (EnhancedCode{5, 1, 1}) || r.Host != "mx1.mini.example" || !r.TLS {
					t.Errorf("refused recipient: %+v", r)
				}
			}},
		{name: "450 for one recipient", hook: answer("RCPT", b, "450 4.2.1 mailbox busy"),
			outcomes: [2]Outcome{OutcomeDelivered, OutcomeDelivered}, mx1: []string{a}, mx2: []string{b}, mx2Used: true},
		{name: "421 greeting", hook: answer("CONNECT", "", "421 4.3.2 busy"),
			outcomes: [2]Outcome{OutcomeDelivered, OutcomeDelivered}, mx2: []string{a, b}, mx2Used: true},
		{name: "451 to MAIL", hook: answer("MAIL", "", "451 4.3.0 later"),
			outcomes: [2]Outcome{OutcomeDelivered, OutcomeDelivered}, mx2: []string{a, b}, mx2Used: true},
		{name: "550 to MAIL", hook: answer("MAIL", "", "550 5.7.1 sender refused"),
			outcomes: [2]Outcome{OutcomePermanent, OutcomePermanent}},
		{name: "451 after the data", hook: answer("EOD", "", "451 4.3.0 try again"),
			outcomes: [2]Outcome{OutcomeDelivered, OutcomeDelivered}, mx2: []string{a, b}, mx2Used: true},
		{name: "554 after the data", hook: answer("EOD", "", "554 5.6.0 content refused"),
			outcomes: [2]Outcome{OutcomePermanent, OutcomePermanent},
			check: func(t *testing.T, res []RecipientResult) {
				var se *SMTPError
				if !errors.As(res[0].Err, &se) || se.Code != 554 || res[0].Enhanced != (EnhancedCode{5, 6, 0}) {
					t.Errorf("error %v, want the 554", res[0].Err)
				}
			}},
		{name: "550 to one recipient, 554 after the data", hook: func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			if cmd.Verb == "RCPT" && strings.Contains(cmd.Arg, b) {
				return "550 5.1.1 no such user", true
			}
			return answer("EOD", "", "554 5.6.0 content refused")(c, cmd)
		}, outcomes: [2]Outcome{OutcomePermanent, OutcomePermanent}},
		// The connection is lost after the message: the recipients may have
		// it, so no other host is tried (no duplicates).
		{name: "hang-up after the data", hook: func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			if cmd.Verb == "EOD" {
				c.Close()
				return "", true
			}
			return "", false
		}, outcomes: [2]Outcome{OutcomeTemporary, OutcomeTemporary},
			check: func(t *testing.T, res []RecipientResult) {
				var ue *UncertainDeliveryError
				if !errors.As(res[0].Err, &ue) || !errors.Is(res[0].Err, ErrDeliveryUncertain) || !slices.Equal(ue.Recipients, []string{a, b}) {
					t.Errorf("error %v, want an *UncertainDeliveryError naming both recipients", res[0].Err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newMiniWorld(t, miniHost{name: "mx1.mini.example", hook: tt.hook}, miniHost{name: "mx2.mini.example"})
			d := w.deliverer(nil)
			_, msg := testMessage(t, a, b)
			res := deliver(t, d, &Envelope{From: "s@sender.example", To: []string{a, b}}, msg)
			for i, r := range res {
				if r.Outcome != tt.outcomes[i] {
					t.Errorf("%s: %s (%v), want %s", r.Recipient, r.Outcome, r.Err, tt.outcomes[i])
				}
				if (r.Outcome == OutcomeDelivered) != (r.Err == nil) {
					t.Errorf("%s: outcome %s with error %v", r.Recipient, r.Outcome, r.Err)
				}
			}
			for host, want := range map[string][]string{"mx1.mini.example": tt.mx1, "mx2.mini.example": tt.mx2} {
				var got []string
				for _, m := range w.messages(host) {
					if len(m.To) == 0 {
						t.Errorf("%s: a message without recipients", host)
					}
					got = append(got, m.To...)
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s took the message for %q, want %q", host, got, want)
				}
			}
			if got := w.messages("mx1.mini.example"); len(got) > 1 {
				t.Errorf("mx1 took %d transactions, want at most one", len(got))
			}
			if used := w.sessions("mx2.mini.example") > 0; used != tt.mx2Used {
				t.Errorf("mx2 contacted: %v, want %v", used, tt.mx2Used)
			}
			if tt.check != nil {
				tt.check(t, res)
			}
		})
	}
}

// The message is read from its source once to be measured, then once per
// session that sends it, and never otherwise: a session that fails before
// the data reads nothing.
func TestDeliverReadsPerAttempt(t *testing.T) {
	tests := []struct {
		name  string
		hook  func(*smtptest.Conn, smtptest.Command) (string, bool)
		reads int64 // in message sizes
	}{
		{"one session", nil, 2},
		{"greeting refused, second host", answer("CONNECT", "", "421 4.3.2 busy"), 2},
		{"data refused, second host", answer("EOD", "", "451 4.3.0 try again"), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newMiniWorld(t, miniHost{name: "mx1.mini.example", hook: tt.hook}, miniHost{name: "mx2.mini.example"})
			_, m := testMessage(t, "a@mini.example")
			body := make([]byte, m.Size())
			m.ReadAt(body, 0)
			body = append(body, bytes.Repeat([]byte("A line of the body.\r\n"), 5000)...)
			src := &countingReaderAt{r: bytes.NewReader(body)}
			res := deliver(t, w.deliverer(nil), &Envelope{From: "s@sender.example", To: []string{"a@mini.example"}}, src)
			if res[0].Outcome != OutcomeDelivered {
				t.Fatalf("%s: %v", res[0].Outcome, res[0].Err)
			}
			if got, want := src.n.Load(), tt.reads*src.Size(); got != want {
				t.Errorf("read %d octets, want %d (%d times the message)", got, want, tt.reads)
			}
		})
	}
}

// Recipients in several domains: one plan and one transaction per domain,
// each recipient's own outcome, results in the order given, a recipient
// given twice delivered once.
func TestDeliverMultiDomain(t *testing.T) {
	w := mxworld.New(t)
	rec := &memRecorder{}
	d := worldDeliverer(w, rec)
	to := []string{
		"a@dane-ee.example", "b@sts-enforce.example", "c@dane-ee.example", "d@nullmx.example",
		"e@rcpt550.example", "a@dane-ee.example", "f@nopolicy.example", "g@bücher.example",
	}
	id, msg := testMessage(t, to...)
	res := deliver(t, d, &Envelope{From: "s@sender.example", To: to}, msg)
	want := []struct {
		outcome Outcome
		host    string
		auth    ServerAuth
	}{
		{OutcomeDelivered, "mx.dane-ee.example", ServerAuthDANEEE},
		{OutcomeDelivered, "mx.sts-enforce.example", ServerAuthWebPKI},
		{OutcomeDelivered, "mx.dane-ee.example", ServerAuthDANEEE},
		{OutcomePermanent, "", ServerAuthNone},
		{OutcomePermanent, "mx1.rcpt550.example", ServerAuthNone},
		{OutcomeDelivered, "mx.dane-ee.example", ServerAuthDANEEE},
		{OutcomeDelivered, "mx.nopolicy.example", ServerAuthNone},
		{OutcomeDelivered, "mx.xn--bcher-kva.example", ServerAuthWebPKI},
	}
	for i, r := range res {
		if r.Recipient != to[i] || r.Outcome != want[i].outcome || r.Host != want[i].host || r.ServerAuth != want[i].auth {
			t.Errorf("result %d: %s %s at %q (%s), err %v; want %s %s at %q (%s)",
				i, r.Recipient, r.Outcome, r.Host, r.ServerAuth, r.Err, to[i], want[i].outcome, want[i].host, want[i].auth)
		}
	}
	if res[0].Plan != res[2].Plan || res[0].Plan == res[1].Plan {
		t.Error("recipients of one domain do not share one plan, or two domains share one")
	}
	msgs := w.MX("mx.dane-ee.example").Messages()
	if len(msgs) != 1 || !slices.Equal(msgs[0].To, []string{"a@dane-ee.example", "c@dane-ee.example"}) {
		t.Errorf("mx.dane-ee.example got %d messages, the first for %v; want one transaction for a and c", len(msgs), msgs[0].To)
	}
	if got := receivedBy(w, id); len(got) != 4 {
		t.Errorf("received by %v, want 4 hosts", got)
	}
	if msgs := w.MX("mx.xn--bcher-kva.example").Messages(); len(msgs) != 1 || msgs[0].To[0] != "g@xn--bcher-kva.example" {
		t.Errorf("the IDN domain's host got %+v, want the address in A-labels", msgs)
	}
}

// Envelopes Deliver refuses before anything is sent.
func TestDeliverInvalidCall(t *testing.T) {
	d := &Deliverer{LocalName: "sender.example"}
	msg := strings.NewReader("Subject: x\r\n\r\n")
	ctx := context.Background()
	for name, tc := range map[string]struct {
		env *Envelope
		msg MessageSource
		is  error
	}{
		"no recipients":  {&Envelope{From: "a@example.com"}, msg, ErrInvalidOptions},
		"bad recipient":  {&Envelope{To: []string{"a@example.com>\r\nRCPT TO:<b@example.com"}}, msg, ErrInvalidAddress},
		"all or nothing": {&Envelope{To: []string{"a@example.com"}, AllOrNothing: true}, msg, ErrInvalidOptions},
		"nil message":    {&Envelope{To: []string{"a@example.com"}}, nil, ErrInvalidOptions},
		"nil envelope":   {nil, msg, ErrInvalidOptions},
		"bad local name": {&Envelope{To: []string{"a@example.com"}}, msg, ErrInvalidOptions},
		"negative size":  {&Envelope{To: []string{"a@example.com"}, MailOptions: MailOptions{Size: -1}}, msg, ErrInvalidOptions},
	} {
		t.Run(name, func(t *testing.T) {
			dd := d
			if name == "bad local name" {
				dd = &Deliverer{LocalName: "bad name!"}
			}
			res, err := dd.Deliver(ctx, tc.env, tc.msg)
			if !errors.Is(err, tc.is) || res != nil {
				t.Errorf("Deliver = %v, %v; want an error matching %v", res, err, tc.is)
			}
		})
	}
}

// A Deliverer whose configuration is invalid sends nothing and says why.
func TestDeliverInvalidConfig(t *testing.T) {
	msg := strings.NewReader("Subject: x\r\n\r\n")
	env := &Envelope{To: []string{"a@example.com"}}
	bad := &policy.Rules{Domains: []policy.Rule{{Domain: "example.com", Level: policy.Level(99)}}}
	if _, err := (&Deliverer{Rules: bad, LocalName: "sender.example"}).Deliver(context.Background(), env, msg); !errors.Is(err, policy.ErrRulesSyntax) {
		t.Errorf("invalid rules: %v", err)
	}
	file := t.TempDir() + "/file"
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Deliverer{MTASTSCacheDir: file, LocalName: "sender.example"}).Deliver(context.Background(), env, msg); err == nil {
		t.Error("an MTA-STS cache directory that is a file was accepted")
	}
}

// Each session attempt and each recipient's outcome is logged, with the
// TLS-RPT result of the session.
func TestDeliverLogs(t *testing.T) {
	w := newMiniWorld(t, miniHost{name: "mx1.mini.example", hook: answer("CONNECT", "", "421 4.3.2 busy")}, miniHost{name: "mx2.mini.example"})
	var buf lockedLog
	d := w.deliverer(&memRecorder{})
	d.Logger = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	_, msg := testMessage(t, "a@mini.example")
	if r := deliver(t, d, &Envelope{To: []string{"a@mini.example"}}, msg)[0]; r.Outcome != OutcomeDelivered {
		t.Fatal(r.Err)
	}
	var sessions, outcomes []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		switch rec["msg"] {
		case "smtp MX session":
			sessions = append(sessions, rec)
		case "smtp delivery":
			outcomes = append(outcomes, rec)
		}
	}
	if len(sessions) != 2 || sessions[0]["mx"] != "mx1.mini.example" || sessions[0]["error"] == nil ||
		sessions[1]["tlsrpt_result"] != "success" || sessions[1]["tlsrpt_policy"] != "no-policy-found" || sessions[1]["receiving_mx_helo"] != "mx2.mini.example" {
		t.Errorf("session records %v", sessions)
	}
	if len(outcomes) != 1 || outcomes[0]["outcome"] != "delivered" || outcomes[0]["mx"] != "mx2.mini.example" {
		t.Errorf("outcome records %v", outcomes)
	}
}

// lockedLog is a log destination for several goroutines.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
