package smtpsecure

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/smtpsecure/smtpsecure/internal/smtptest"
)

// Issue 9 §6: a server's refusal matches ErrRefused.
func TestSMTPErrorMatchesErrRefused(t *testing.T) {
	s := newServer(t, func(s *smtptest.Server) {
		s.Hook = func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			if cmd.Verb == "MAIL" {
				return "550 5.7.1 not from you\r\n", true
			}
			return "", false
		}
	})
	c := dial(t, s)
	_, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"b@test.example"}}, strings.NewReader(testMsg))
	var se *SMTPError
	if !errors.As(err, &se) || !errors.Is(err, ErrRefused) {
		t.Fatalf("err = %v", err)
	}
}

// Issue 9 §6: a failing message reader gives a *MessageError that wraps
// the reader's error and ErrMessageRead, and says that nothing was
// delivered.
func TestMessageReadErrorTyped(t *testing.T) {
	for setName, exts := range extensionSets {
		t.Run(setName, func(t *testing.T) {
			s := newServer(t, func(s *smtptest.Server) { s.TLSExtensions = exts })
			c := dial(t, s)
			boom := errors.New("disk on fire")
			r := io.MultiReader(strings.NewReader(strings.Repeat("x", 100<<10)), errReader{boom})
			_, err := c.Send(ctxT(t), &Envelope{From: "a@test.example", To: []string{"b@test.example"}}, r)
			var me *MessageError
			if !errors.As(err, &me) || !errors.Is(err, ErrMessageRead) || !errors.Is(err, boom) || me.Err != boom {
				t.Fatalf("err = %v (%T)", err, err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "smtpsecure: ") || !strings.Contains(msg, "nothing was delivered") {
				t.Errorf("message %q", msg)
			}
			s.Close()
			if len(s.Messages()) != 0 {
				t.Fatal("a truncated message was delivered")
			}
		})
	}
}

// Issue 9 §6: names that are not valid host names (bad IDNA) in Host,
// LocalName or TLSConfig.ServerName are the caller's options, refused
// before dialling.
func TestInvalidNamesAreInvalidOptions(t *testing.T) {
	cases := map[string]Dialer{
		"Host":                 {Host: "xn--zz.example"},
		"Host empty label":     {Host: "a..example"},
		"LocalName":            {Host: testHost, LocalName: "xn--zz.example"},
		"TLSConfig.ServerName": {Host: testHost, TLSConfig: &tls.Config{ServerName: "bad_name!.example"}},
	}
	for name, d := range cases {
		t.Run(name, func(t *testing.T) {
			dialled := false
			d.DialContext = func(context.Context, string, string) (net.Conn, error) {
				dialled = true
				return nil, errors.New("must not dial")
			}
			if _, err := d.Dial(ctxT(t)); !errors.Is(err, ErrInvalidOptions) || dialled {
				t.Fatalf("err = %v, dialled = %v", err, dialled)
			}
		})
	}
}
