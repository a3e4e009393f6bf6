package smtpsecure

import (
	"errors"
	"net/smtp"
	"strings"
	"testing"

	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
	"github.com/smtpsecure/smtpsecure/internal/smtptest"
)

// The drop-in keeps net/smtp's signature...
var _ func(string, smtp.Auth, string, []string, []byte) error = SendMail

// ...and delivers over verified STARTTLS, with net/smtp's Auth values.
func TestSendMailDropIn(t *testing.T) {
	s := newServer(t, nil)
	err := SendMail(s.Addr(), smtp.PlainAuth("", "alice", "secret", "127.0.0.1"), "a@test.example", []string{"b@test.example"}, []byte(testMsg))
	if err != nil {
		t.Fatal(err)
	}
	m := s.Messages()
	if len(m) != 1 || !m[0].TLS || m[0].AuthUser != "alice" || string(m[0].Data) != testMsg {
		t.Fatalf("messages %+v", m)
	}
	assertNothingInPlaintext(t, s.Sessions()[0].Plaintext())
}

// Where net/smtp.SendMail would go on in plaintext, the drop-in refuses.
func TestSendMailRefusesPlaintext(t *testing.T) {
	s := newServer(t, func(s *smtptest.Server) { s.TLSConfig = nil })
	err := SendMail(s.Addr(), smtp.PlainAuth("", "alice", "secret", "127.0.0.1"), "a@test.example", []string{"b@test.example"}, []byte(testMsg))
	var dg *DowngradeError
	if !errors.As(err, &dg) || dg.ReportResultType() != rfc8460.STARTTLSNotSupported {
		t.Fatalf("err = %v", err)
	}
	s.Close()
	assertNothingInPlaintext(t, s.Sessions()[0].Plaintext())
}

// Like net/smtp, one refused recipient means nobody gets the message.
func TestSendMailAllOrNothing(t *testing.T) {
	s := newServer(t, func(s *smtptest.Server) {
		s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			if cmd.Verb == "RCPT" && strings.Contains(cmd.Arg, "bad") {
				return "550 5.1.1 unknown\r\n", true
			}
			return "", false
		}
	})
	err := SendMail(s.Addr(), nil, "a@test.example", []string{"b@test.example", "bad@test.example"}, []byte(testMsg))
	var re *RecipientsError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v", err)
	}
	if len(s.Messages()) != 0 {
		t.Fatal("message sent")
	}
}

func TestSendMailBadInput(t *testing.T) {
	for _, addr := range []string{"no-port", "host:", "host:99999"} {
		if err := SendMail(addr, nil, "a@test.example", []string{"b@test.example"}, nil); err == nil {
			t.Errorf("%q accepted", addr)
		}
	}
	if err := SendMail("127.0.0.1:1", nil, "a@test.example\r\nRCPT TO:<x@y>", []string{"b@test.example"}, nil); !errors.Is(err, ErrInvalidAddress) {
		t.Errorf("CRLF in from: %v", err)
	}
}
