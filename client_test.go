package smtpsecure

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/smtptest"
)

func dial(t *testing.T, s *smtptest.Server) *Client {
	t.Helper()
	c, err := dialerFor(t, s).Dial(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// extensionSets covers DATA and BDAT, with and without PIPELINING.
var extensionSets = map[string][]string{
	"DATA":            {"8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "DSN"},
	"DATA pipelined":  {"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "DSN"},
	"BDAT":            {"CHUNKING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "DSN"},
	"BDAT pipelined":  {"PIPELINING", "CHUNKING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "DSN"},
	"pipelined 7-bit": {"PIPELINING"},
}

// STD-27, STD-28, STD-29: the message arrives as sent, CRLF-normalised,
// whatever the transfer.
func TestSendEveryTransfer(t *testing.T) {
	bodies := map[string]string{
		"plain":      testMsg,
		"bare LF":    "Subject: x\n\nline 1\nline 2\n",
		"no final":   "Subject: x\r\n\r\nno line break at the end",
		"empty":      "",
		"dot lines":  ".\r\n..\r\n.x\r\n. \r\nend\r\n",
		"long":       strings.Repeat("0123456789abcdef", 20000) + "\r\n",
		"many lines": strings.Repeat("a line of text\r\n.dotted\r\n", 10000),
	}
	for setName, exts := range extensionSets {
		for bodyName, body := range bodies {
			t.Run(setName+"/"+bodyName, func(t *testing.T) {
				s := newServer(t, func(s *smtptest.Server) { s.TLSExtensions = exts })
				c := dial(t, s)
				res, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"b@test.example", "c@test.example"}}, strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Accepted) != 2 || len(res.Rejected) != 0 || res.Reply == "" {
					t.Fatalf("result %+v", res)
				}
				c.Quit(ctxT(t))
				msgs := s.Messages()
				if len(msgs) != 1 {
					t.Fatalf("%d messages", len(msgs))
				}
				if want := normalise(body); string(msgs[0].Data) != want {
					t.Fatalf("data differs: got %d octets, want %d", len(msgs[0].Data), len(want))
				}
				usedBDAT := msgs[0].Chunks > 0
				if usedBDAT != strings.HasPrefix(setName, "BDAT") {
					t.Errorf("BDAT used = %v", usedBDAT)
				}
			})
		}
	}
}

// normalise is what the server must receive for body: CRLF line endings,
// ending in CRLF unless empty.
func normalise(body string) string {
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '\r':
			b.WriteString("\r\n")
			if i+1 < len(body) && body[i+1] == '\n' {
				i++
			}
		case '\n':
			b.WriteString("\r\n")
		default:
			b.WriteByte(body[i])
		}
	}
	out := b.String()
	if out != "" && !strings.HasSuffix(out, "\r\n") {
		out += "\r\n"
	}
	return out
}

// Issue 2 §8: no content can end the data early (SMTP smuggling), and the
// body arrives intact.
func TestSmugglingBodyArrivesIntact(t *testing.T) {
	body := "Subject: smuggle\r\n\r\n" +
		"a\n.\nMAIL FROM:<evil@x>\n" +
		"b\r\n.\nRCPT TO:<victim@x>\r\n" +
		"c\n.\r\nDATA\r\n" +
		"d\r.\rQUIT\r\n" +
		".\r\n" +
		"e\r\n.\r\n.\r\nend\r\n"
	for setName, exts := range extensionSets {
		t.Run(setName, func(t *testing.T) {
			s := newServer(t, func(s *smtptest.Server) { s.TLSExtensions = exts })
			c := dial(t, s)
			if _, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"b@test.example"}}, strings.NewReader(body)); err != nil {
				t.Fatal(err)
			}
			c.Quit(ctxT(t))
			msgs := s.Messages()
			if len(msgs) != 1 || string(msgs[0].Data) != normalise(body) {
				t.Fatalf("messages %d, data %q", len(msgs), msgs[0].Data)
			}
			for _, cmd := range s.Sessions()[0].Commands() {
				if strings.Contains(cmd.Arg, "evil") || strings.Contains(cmd.Arg, "victim") {
					t.Fatalf("smuggled command %q", cmd.Line)
				}
			}
		})
	}
}

// STD-25, STD-27: refused recipients are reported one by one, the message
// goes to the others; with no recipient left nothing is sent.
func TestPartialAcceptance(t *testing.T) {
	reject := func(s *smtptest.Server) {
		s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			switch {
			case cmd.Verb == "RCPT" && strings.Contains(cmd.Arg, "unknown"):
				return "550 5.1.1 no such user\r\n", true
			case cmd.Verb == "RCPT" && strings.Contains(cmd.Arg, "full"):
				return "452 4.2.2 mailbox full\r\n", true
			}
			return "", false
		}
	}
	for setName, exts := range extensionSets {
		t.Run(setName, func(t *testing.T) {
			s := newServer(t, func(s *smtptest.Server) { s.TLSExtensions = exts; reject(s) })
			c := dial(t, s)
			to := []string{"b@test.example", "unknown@test.example", "c@test.example", "full@test.example"}
			// A partial delivery is a result, not an error (issue 9 §7).
			res, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: to}, strings.NewReader(testMsg))
			if err != nil || len(res.Rejected) != 2 {
				t.Fatalf("Send = %+v, %v", res, err)
			}
			wantEnh := EnhancedCode{}
			if slices.Contains(exts, "ENHANCEDSTATUSCODES") {
				wantEnh = EnhancedCode{5, 1, 1}
			}
			if res.Rejected[0].Recipient != "unknown@test.example" || res.Rejected[0].Err.Code != 550 || res.Rejected[0].Err.Temporary() ||
				res.Rejected[0].Err.Enhanced != wantEnh || !res.Rejected[1].Err.Temporary() {
				t.Errorf("rejections %v / %v", res.Rejected[0], res.Rejected[1])
			}
			if strings.Join(res.Accepted, ",") != "b@test.example,c@test.example" {
				t.Errorf("accepted %v", res.Accepted)
			}
			// All refused: nothing is sent, and the session goes on.
			var re *RecipientsError
			res, err = c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"unknown@test.example"}}, strings.NewReader(testMsg))
			if !errors.As(err, &re) || !errors.Is(err, ErrRecipientsRejected) || res != nil || len(re.Rejected) != 1 || re.Temporary() {
				t.Fatalf("err = %v", err)
			}
			// All or nothing: one refusal stops the message.
			_, err = c.Send(ctxT(t), &Envelope{From: "a@test.example", To: to, AllOrNothing: true}, strings.NewReader(testMsg))
			if !errors.As(err, &re) || len(re.Rejected) != 2 {
				t.Fatalf("all-or-nothing err = %v", err)
			}
			if _, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"d@test.example"}}, strings.NewReader(testMsg)); err != nil {
				t.Fatalf("session unusable after refusals: %v", err)
			}
			c.Quit(ctxT(t))
			msgs := s.Messages()
			if len(msgs) != 2 || strings.Join(msgs[0].To, ",") != "b@test.example,c@test.example" || msgs[1].To[0] != "d@test.example" {
				t.Fatalf("messages: %d", len(msgs))
			}
		})
	}
}

// A server that answers 354 to a pipelined DATA although every RCPT failed
// gets an empty message (RFC 2920 §3.1), not the body.
func TestPipelinedDATAWithoutRecipients(t *testing.T) {
	s := newServer(t, func(s *smtptest.Server) {
		s.TLSExtensions = []string{"PIPELINING"}
		s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			switch cmd.Verb {
			case "RCPT":
				return "550 no\r\n", true
			case "DATA":
				return "354 go on anyway\r\n", true
			case "EOD":
				return "554 no valid recipients\r\n", true
			}
			return "", false
		}
	})
	c := dial(t, s)
	_, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"b@test.example"}}, strings.NewReader("secret body\r\n"))
	var re *RecipientsError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v", err)
	}
	c.Quit(ctxT(t))
	s.WaitSessions(ctxT(t), 1)
	if bytes.Contains(s.Sessions()[0].Encrypted(), []byte("secret body")) {
		t.Fatal("body sent with no accepted recipient")
	}
}

// STD-26: thousands of pipelined recipients do not deadlock, and the
// server's recipient limit (452 4.5.3 after 1000) comes back as temporary
// refusals of the rest, with the message delivered to the first 1000.
func TestManyRecipientsPipelined(t *testing.T) {
	for _, exts := range [][]string{{"PIPELINING", "ENHANCEDSTATUSCODES"}, {"PIPELINING", "CHUNKING", "ENHANCEDSTATUSCODES"}} {
		s := newServer(t, func(s *smtptest.Server) { s.TLSExtensions = exts; s.Logf = nil })
		c := dial(t, s)
		to := make([]string, 5000)
		for i := range to {
			to[i] = fmt.Sprintf("recipient-with-a-rather-long-local-part-%05d@test.example", i)
		}
		res, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: to}, strings.NewReader(testMsg))
		if err != nil {
			t.Fatalf("err = %v", err)
		}
		if len(res.Accepted) != smtptest.MaxRecipients || len(res.Rejected) != len(to)-smtptest.MaxRecipients {
			t.Fatalf("accepted %d, rejected %d", len(res.Accepted), len(res.Rejected))
		}
		if r := res.Rejected[0]; r.Recipient != to[smtptest.MaxRecipients] || r.Err.Enhanced != (EnhancedCode{4, 5, 3}) {
			t.Fatalf("first refusal %v", r)
		}
		c.Quit(ctxT(t))
		if m := s.Messages(); len(m) != 1 || len(m[0].To) != smtptest.MaxRecipients {
			t.Fatal("message not delivered to the accepted recipients")
		}
	}
}

func TestManyMessagesOneSession(t *testing.T) {
	s := newServer(t, nil)
	c := dial(t, s)
	for i := 0; i < 20; i++ {
		body := fmt.Sprintf("Subject: %d\r\n\r\nmessage %d\r\n", i, i)
		if _, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"b@test.example"}}, strings.NewReader(body)); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if err := c.Noop(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Messages()); n != 20 {
		t.Fatalf("%d messages", n)
	}
	if len(s.Sessions()) != 1 {
		t.Fatal("more than one session")
	}
}

// STD-31..33, STD-91, STD-22-adjacent parameters: MAIL and RCPT carry what
// the options ask for, and a missing extension is a typed error before
// anything is sent.
func TestMailParameters(t *testing.T) {
	s := newServer(t, func(s *smtptest.Server) {
		s.TLSExtensions = append([]string{"REQUIRETLS", "BINARYMIME"}, stdExtensions...)
	})
	c := dial(t, s)
	env := &Envelope{
		From: "a@test.example",
		To:   []string{"b@test.example", "c@test.example"},
		MailOptions: MailOptions{
			RequireTLS: true, Return: ReturnHeaders, EnvelopeID: "id+1=2",
		},
		Notify:             NotifyFailure | NotifyDelay,
		OriginalRecipients: map[string]string{"c@test.example": "orig@test.example"},
	}
	if _, err := c.Send(ctxT(t), env, strings.NewReader(testMsg)); err != nil {
		t.Fatal(err)
	}
	// UTF-8 local part: SMTPUTF8 is declared automatically (STD-32).
	if _, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"jörg@test.example"}}, strings.NewReader(testMsg)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"b@test.example"}, MailOptions: MailOptions{Body: BodyBinaryMIME}}, strings.NewReader("\x00\x01binary\n")); err != nil {
		t.Fatal(err)
	}
	c.Quit(ctxT(t))
	m := s.Messages()
	if len(m) != 3 {
		t.Fatalf("%d messages", len(m))
	}
	p := m[0].MailParams
	if p["SIZE"] != fmt.Sprint(len(testMsg)) || p["BODY"] != "8BITMIME" || p["REQUIRETLS"] != "" || p["RET"] != "HDRS" || p["ENVID"] != "id+2B1+3D2" {
		t.Errorf("MAIL parameters %v", p)
	}
	if _, ok := p["REQUIRETLS"]; !ok {
		t.Error("REQUIRETLS missing")
	}
	if m[0].RcptParams[0]["NOTIFY"] != "FAILURE,DELAY" || m[0].RcptParams[1]["ORCPT"] != "rfc822;orig@test.example" {
		t.Errorf("RCPT parameters %v", m[0].RcptParams)
	}
	if _, ok := m[1].MailParams["SMTPUTF8"]; !ok || m[1].To[0] != "jörg@test.example" {
		t.Errorf("UTF-8 message %v %v", m[1].MailParams, m[1].To)
	}
	if m[2].MailParams["BODY"] != "BINARYMIME" || string(m[2].Data) != "\x00\x01binary\n" || m[2].Chunks == 0 {
		t.Errorf("binary message %v %q", m[2].MailParams, m[2].Data)
	}
}

// STD-32, STD-91, STD-31: what the server lacks is never replaced by
// something else.
func TestMissingExtensions(t *testing.T) {
	cases := []struct {
		name string
		env  Envelope
		body string
		ext  string
		code EnhancedCode
	}{
		{"SMTPUTF8 address", Envelope{To: []string{"jörg@test.example"}}, testMsg, "SMTPUTF8", CodeNonASCIIAddresses},
		{"SMTPUTF8 option", Envelope{MailOptions: MailOptions{SMTPUTF8: true}}, testMsg, "SMTPUTF8", CodeNonASCIIAddresses},
		{"REQUIRETLS", Envelope{MailOptions: MailOptions{RequireTLS: true}}, testMsg, "REQUIRETLS", CodeRequireTLSUnsupported},
		{"8BITMIME option", Envelope{MailOptions: MailOptions{Body: Body8BitMIME}}, testMsg, "8BITMIME", CodeConversionRequired},
		{"BINARYMIME", Envelope{MailOptions: MailOptions{Body: BodyBinaryMIME}}, testMsg, "BINARYMIME", CodeConversionRequired},
		{"DSN notify", Envelope{Notify: NotifySuccess}, testMsg, "DSN", EnhancedCode{5, 5, 4}},
		{"DSN ret", Envelope{MailOptions: MailOptions{Return: ReturnFull}}, testMsg, "DSN", EnhancedCode{5, 5, 4}},
		{"8-bit body", Envelope{}, "Subject: x\r\n\r\ngrüße\r\n", "8BITMIME", CodeConversionRequired},
		{"8-bit body late", Envelope{}, "Subject: x\r\n\r\n" + strings.Repeat("ascii\r\n", 30000) + "ß\r\n", "8BITMIME", CodeConversionRequired},
	}
	for _, pipelined := range []bool{false, true} {
		for _, chunking := range []bool{false, true} {
			for _, tc := range cases {
				name := fmt.Sprintf("%s/pipelining=%v/chunking=%v", tc.name, pipelined, chunking)
				t.Run(name, func(t *testing.T) {
					exts := []string{"ENHANCEDSTATUSCODES"}
					if pipelined {
						exts = append(exts, "PIPELINING")
					}
					if chunking {
						exts = append(exts, "CHUNKING")
					}
					s := newServer(t, func(s *smtptest.Server) { s.TLSExtensions = exts })
					c := dial(t, s)
					env := tc.env
					env.From = "a@test.example"
					if env.To == nil {
						env.To = []string{"b@test.example"}
					}
					_, err := c.Send(ctxT(t), &env, strings.NewReader(tc.body))
					var xe *ExtensionError
					if !errors.As(err, &xe) || xe.Extension != tc.ext || !errors.Is(err, ErrExtensionMissing) || xe.EnhancedCode() != tc.code {
						t.Fatalf("err = %v, want ExtensionError for %s", err, tc.ext)
					}
					c.Close()
					s.Close()
					if len(s.Messages()) != 0 {
						t.Fatal("a message was delivered")
					}
					if !strings.HasPrefix(tc.name, "8-bit body") {
						for _, cmd := range s.Sessions()[0].Commands() {
							if cmd.Verb == "MAIL" {
								t.Fatalf("MAIL sent: %q", cmd.Line)
							}
						}
					}
				})
			}
		}
	}
}

func TestSizeLimit(t *testing.T) {
	s := newServer(t, func(s *smtptest.Server) { s.TLSExtensions = []string{"SIZE 1000", "PIPELINING"} })
	c := dial(t, s)
	_, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"b@test.example"}}, bytes.NewReader(make([]byte, 2000)))
	if !errors.Is(err, ErrMessageTooLarge) || !strings.Contains(err.Error(), "1000") {
		t.Fatalf("err = %v", err)
	}
	if _, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"b@test.example"}}, strings.NewReader(testMsg)); err != nil {
		t.Fatal(err)
	}
}

// Issue 2 §8: bad envelope addresses are refused before anything is sent,
// before even connecting.
func TestBadAddressesRefusedBeforeDialling(t *testing.T) {
	dialled := false
	d := &Dialer{Host: testHost, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialled = true
		return nil, errors.New("must not dial")
	}}
	for _, bad := range []string{
		"a@b.example>\r\nRCPT TO:<victim@x.example",
		"a@b.example\nDATA",
		"a@b.example\x00",
		"<a@b.example>",
		"a@b.example> SIZE=1",
		"no-at-sign",
		"",
		"a@",
		"a b@example.com",
	} {
		envs := []*Envelope{{From: "ok@test.example", To: []string{bad}}}
		if bad != "" { // "" is the null reverse-path, valid as From
			envs = append(envs, &Envelope{From: bad, To: []string{"ok@test.example"}})
		}
		for _, env := range envs {
			err := sendMail(ctxT(t), d, env.From, env.To, strings.NewReader(testMsg))
			var ae *AddressError
			if !errors.As(err, &ae) || !errors.Is(err, ErrInvalidAddress) {
				t.Errorf("%q: err = %v", bad, err)
			}
		}
	}
	if dialled {
		t.Fatal("dialled despite a bad address")
	}
	if err := sendMail(ctxT(t), d, "a@test.example", nil, strings.NewReader(testMsg)); err == nil || dialled {
		t.Fatal("no recipients accepted")
	}
}

// STD-35..37: the SMTPError carries code, enhanced code (only with
// ENHANCEDSTATUSCODES, and only when its class agrees), lines and command.
func TestSMTPErrorFields(t *testing.T) {
	cases := []struct {
		exts     []string
		reply    string
		enhanced EnhancedCode
		temp     bool
	}{
		{[]string{"ENHANCEDSTATUSCODES"}, "550-5.7.1 first\r\n550 5.7.1 second\r\n", EnhancedCode{5, 7, 1}, false},
		{[]string{"ENHANCEDSTATUSCODES"}, "451 4.3.0 try later\r\n", EnhancedCode{4, 3, 0}, true},
		{[]string{"ENHANCEDSTATUSCODES"}, "550 4.7.1 class mismatch\r\n", EnhancedCode{}, false},
		{[]string{"8BITMIME"}, "550 5.7.1 not offered\r\n", EnhancedCode{}, false},
	}
	for _, tc := range cases {
		s := newServer(t, func(s *smtptest.Server) {
			s.TLSExtensions = tc.exts
			s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
				if cmd.Verb == "MAIL" {
					return tc.reply, true
				}
				return "", false
			}
		})
		c := dial(t, s)
		_, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"b@test.example"}}, strings.NewReader(testMsg))
		var se *SMTPError
		if !errors.As(err, &se) {
			t.Fatalf("err = %v", err)
		}
		if se.Enhanced != tc.enhanced || se.Temporary() != tc.temp || se.Host == "" || !strings.HasPrefix(se.Command, "MAIL FROM:<a@test.example>") {
			t.Errorf("%q: %+v", tc.reply, se)
		}
		if !strings.Contains(err.Error(), se.Host) {
			t.Errorf("error does not name the host: %v", err)
		}
	}
}

// STD-30: a refused chunk ends the transaction; replies to chunks already
// in flight are drained, and the session sends the next message.
func TestBDATChunkRefused(t *testing.T) {
	for _, exts := range [][]string{{"CHUNKING", "PIPELINING"}, {"CHUNKING"}} {
		t.Run(strings.Join(exts, "+"), func(t *testing.T) {
			s := newServer(t, func(s *smtptest.Server) {
				s.TLSExtensions = exts
				s.Logf = nil
				chunks := 0
				s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
					switch cmd.Verb {
					case "RSET", "MAIL":
						chunks = 0
					case "BDAT":
						chunks++
						switch {
						case chunks == 2:
							return "552 5.3.4 message too big\r\n", true
						case chunks > 2:
							return "503 5.5.1 transaction failed\r\n", true
						}
					}
					return "", false
				}
			})
			c := dial(t, s)
			big := strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 20000)
			_, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"b@test.example"}}, strings.NewReader(big))
			var se *SMTPError
			if !errors.As(err, &se) || se.Code != 552 {
				t.Fatalf("err = %v", err)
			}
			if _, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"b@test.example"}}, strings.NewReader(testMsg)); err != nil {
				t.Fatalf("next message: %v", err)
			}
			c.Quit(ctxT(t))
			if m := s.Messages(); len(m) != 1 || string(m[0].Data) != testMsg {
				t.Fatalf("%d messages", len(m))
			}
			if !slices.Contains(exts, "PIPELINING") {
				// Without PIPELINING no chunk follows the refused one.
				n := 0
				for _, cmd := range s.Sessions()[0].Commands() {
					if cmd.Verb == "BDAT" {
						n++
					}
				}
				if n != 3 { // two for the big message, one for the small
					t.Errorf("%d BDAT commands", n)
				}
			}
		})
	}
}

// Issue 3 §3: a connection closed after the end of data, before the reply,
// gives its own error.
func TestUncertainDelivery(t *testing.T) {
	for setName, exts := range extensionSets {
		t.Run(setName, func(t *testing.T) {
			s := newServer(t, func(s *smtptest.Server) {
				s.TLSExtensions = exts
				s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
					if cmd.Verb == "EOD" {
						c.Close()
						return "", true
					}
					return "", false
				}
			})
			c := dial(t, s)
			_, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"b@test.example"}}, strings.NewReader(testMsg))
			var ue *UncertainDeliveryError
			if !errors.As(err, &ue) || !errors.Is(err, ErrDeliveryUncertain) {
				t.Fatalf("err = %v", err)
			}
			// The session is over; the next message was not sent, so its
			// error is no uncertain delivery (TestDeadClientAfterUncertainDelivery).
			if _, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"b@test.example"}}, strings.NewReader(testMsg)); !errors.Is(err, ErrClientClosed) || errors.Is(err, ErrDeliveryUncertain) {
				t.Fatalf("session not closed: %v", err)
			}
		})
	}
}

// A failing reader ends the session without the end-of-data marker.
func TestReaderErrorDeliversNothing(t *testing.T) {
	for setName, exts := range extensionSets {
		t.Run(setName, func(t *testing.T) {
			s := newServer(t, func(s *smtptest.Server) { s.TLSExtensions = exts })
			c := dial(t, s)
			boom := errors.New("disk on fire")
			r := io.MultiReader(strings.NewReader(strings.Repeat("x", 100<<10)), errReader{boom})
			_, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"b@test.example"}}, r)
			if !errors.Is(err, boom) {
				t.Fatalf("err = %v", err)
			}
			s.Close()
			if len(s.Messages()) != 0 {
				t.Fatal("a truncated message was delivered")
			}
		})
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// Issue 2 §7, issue 3 §3: cancelling the context interrupts a blocked read
// at once, and no goroutine is left behind. The Dialer's timeouts are an
// hour: only the cancellation can end the read within the test's bound.
func TestContextCancelInterrupts(t *testing.T) {
	before := runtime.NumGoroutine()
	stalled := make(chan struct{}, 1)
	s := newServer(t, func(s *smtptest.Server) {
		s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			if cmd.Verb == "EOD" {
				stalled <- struct{}{}
				c.Stall(context.Background())
				return "", true
			}
			return "", false
		}
	})
	d := dialerFor(t, s)
	d.CommandTimeout, d.DataTimeout = time.Hour, time.Hour
	c, err := d.Dial(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Send(ctx, &Envelope{From: "a@test.example", To: []string{"b@test.example"}}, strings.NewReader(testMsg))
		done <- err
	}()
	<-stalled // the client is waiting for the final reply
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(settleBound):
		t.Fatal("Send did not return after cancel")
	}
	s.Close()
	settleGoroutines(t, before)
}

// A command whose reply never comes costs one CommandTimeout.
func TestCommandTimeout(t *testing.T) {
	s := newServer(t, func(s *smtptest.Server) {
		s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			if cmd.Verb == "NOOP" {
				c.Stall(context.Background())
				return "", true
			}
			return "", false
		}
	})
	d := dialerFor(t, s)
	d.CommandTimeout = stallTimeout
	c, err := d.Dial(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	err = c.Noop(ctxT(t))
	var ce *ConnError
	if !errors.As(err, &ce) || !ce.Timeout() || !errors.Is(err, ErrTimeout) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if el := time.Since(start); el < stallTimeout || el > stallTimeout+settleBound {
		t.Errorf("timeout took %v, want about %v", el, stallTimeout)
	}
}

func TestOversizedReplies(t *testing.T) {
	for name, reply := range map[string]string{
		"endless line": "250-" + strings.Repeat("x", 1<<20),
		"many lines":   strings.Repeat("250-x\r\n", 100000) + "250 ok\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			s := newServer(t, func(s *smtptest.Server) {
				s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
					if cmd.Verb == "EHLO" && cmd.TLS {
						return reply, true
					}
					return "", false
				}
			})
			_, err := dialerFor(t, s).Dial(ctxT(t))
			var pe *ProtocolError
			if !errors.As(err, &pe) || !errors.Is(err, ErrProtocol) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

// Logs show the session but never the credentials.
func TestLogsRedactCredentials(t *testing.T) {
	s := newServer(t, nil)
	var buf bytes.Buffer
	d := dialerFor(t, s)
	d.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, a := range []Auth{PlainAuth("", "alice", "secret"), LoginAuth("alice", "secret")} {
		d.Auth = a
		if err := sendMail(ctxT(t), d, "a@test.example", []string{"b@test.example"}, strings.NewReader(testMsg)); err != nil {
			t.Fatal(err)
		}
	}
	logs := buf.String()
	for _, secret := range []string{"secret", "c2VjcmV0", "AGFsaWNlAHNlY3JldA==", "YWxpY2U="} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains %q", secret)
		}
	}
	for _, want := range []string{"STARTTLS", "AUTH PLAIN [redacted]", "RCPT TO:<b@test.example>", "TLS established"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}
