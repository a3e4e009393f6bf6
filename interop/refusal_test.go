//go:build interop

package interop

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure"
)

// testRefusal covers what must fail, and how: no STARTTLS (with AUTH
// offered in the clear as bait), implicit TLS against a plaintext server, a
// certificate for another name, an untrusted chain, wrong passwords,
// recipients the server refuses, REQUIRETLS without server support, and a
// context cancelled in the middle of a message or just after it.
func testRefusal(t *testing.T, l *lab) {
	t.Run("NoSTARTTLS", func(t *testing.T) { t.Parallel(); testNoSTARTTLS(t, l) })
	t.Run("ImplicitTLSToPlaintext", func(t *testing.T) { t.Parallel(); testImplicitToPlaintext(t, l) })
	t.Run("WrongName", func(t *testing.T) { t.Parallel(); testWrongName(t, l) })
	t.Run("WrongNameListenerWithItsName", func(t *testing.T) { t.Parallel(); testWrongNameListenerWithItsName(t, l) })
	t.Run("UntrustedChain", func(t *testing.T) { t.Parallel(); testUntrustedChain(t, l) })
	t.Run("WrongPassword", func(t *testing.T) { t.Parallel(); testWrongPassword(t, l) })
	t.Run("RelayDenied", func(t *testing.T) { t.Parallel(); testRelayDenied(t, l) })
	t.Run("SomeRecipientsRefused", func(t *testing.T) { t.Parallel(); testSomeRecipientsRefused(t, l) })
	t.Run("SecondAUTH", func(t *testing.T) { t.Parallel(); testSecondAuth(t, l) })
	t.Run("RequireTLSUnsupported", func(t *testing.T) { t.Parallel(); testRequireTLSUnsupported(t, l) })
	t.Run("CancelDuringData", func(t *testing.T) { t.Parallel(); testCancelDuringData(t, l) })
	t.Run("CancelAfterFinalReply", func(t *testing.T) { t.Parallel(); testCancelAfterFinalReply(t, l) })
}

// testNoSTARTTLS: the listener offers no STARTTLS but AUTH PLAIN LOGIN in
// the clear. The client must give a DowngradeError and send nothing but
// EHLO and QUIT: no AUTH, no MAIL.
//
// STD-1, STD-2, STD-10, STD-15, STD-16, STD-87, STD-97
func testNoSTARTTLS(t *testing.T, l *lab) {
	ctx := caseContext(t)
	d, ts := l.dialer(t, l.notls, l.mxHost)
	d.Auth = smtpsecure.PlainAuth("", l.alice.name, l.alice.pass)
	msg := newMessage(t, l.alice.name, []string{"bait@" + l.relayDomain}, []byte("must never be sent\r\n"))
	offset := l.logSize(t)

	_, err := d.Send(ctx, &smtpsecure.Envelope{From: msg.from, To: msg.to}, bytes.NewReader(msg.raw))
	dg := downgrade(t, err)
	if dg.Reason != smtpsecure.ReasonSTARTTLSNotOffered {
		t.Errorf("Reason = %v, want %v", dg.Reason, smtpsecure.ReasonSTARTTLSNotOffered)
	}
	if got := dg.ReportResultType(); got != "starttls-not-supported" {
		t.Errorf("ReportResultType() = %q, want starttls-not-supported", got)
	}

	conn := ts.only(t)
	// The bait was there: the server offered AUTH in the clear.
	if in := string(conn.received()); !strings.Contains(in, "AUTH PLAIN LOGIN") || strings.Contains(in, "STARTTLS") {
		t.Fatalf("the notls listener did not offer AUTH without STARTTLS; it said:\n%s", in)
	}
	if out := string(conn.sent()); out != "EHLO localhost\r\nQUIT\r\n" {
		t.Errorf("the client sent %q in the clear, want only EHLO and QUIT", out)
	}
	s := l.waitSession(t, l.notls.listener, conn, offset)
	expectCounts(t, s, map[string]string{"ehlo": "1", "quit": "1", "commands": "2", "auth": "", "mail": "", "rcpt": ""})
	if len(s.counts) != 3 {
		t.Errorf("Postfix counted %v, want only ehlo=1 quit=1 commands=2; the session:\n%s", s.counts, s)
	}
}

// testImplicitToPlaintext: implicit TLS to a server that speaks plaintext
// fails in the handshake and never falls back to cleartext SMTP.
//
// STD-9
func testImplicitToPlaintext(t *testing.T, l *lab) {
	ctx := caseContext(t)
	tg := l.notls
	tg.implicit = true
	d, ts := l.dialer(t, tg, l.mxHost)
	d.Auth = smtpsecure.PlainAuth("", l.alice.name, l.alice.pass)
	offset := l.logSize(t)

	_, err := d.Dial(ctx)
	dg := downgrade(t, err)
	if dg.Reason != smtpsecure.ReasonHandshakeFailed {
		t.Errorf("Reason = %v, want %v (%v)", dg.Reason, smtpsecure.ReasonHandshakeFailed, err)
	}
	conn := ts.only(t)
	out := conn.sent()
	if len(out) == 0 || out[0] != 22 {
		t.Errorf("the client's first octets are %q, want a TLS handshake record", firstLine(out))
	}
	for _, cmd := range []string{"EHLO", "HELO", "AUTH", "MAIL", "QUIT"} {
		if bytes.Contains(out, []byte(cmd+" ")) || bytes.Contains(out, []byte(cmd+"\r\n")) {
			t.Errorf("the client sent %s in the clear after the handshake failed", cmd)
		}
	}
	s := l.waitSession(t, tg.listener, conn, offset)
	expectCounts(t, s, map[string]string{"ehlo": "", "helo": "", "auth": "", "mail": ""})
}

// testWrongName: STARTTLS works but the certificate names another host.
// The error is a host mismatch, and neither AUTH nor MAIL is sent.
//
// STD-10, STD-11, STD-14, STD-16, STD-87, STD-97
func testWrongName(t *testing.T, l *lab) {
	ctx := caseContext(t)
	d, ts := l.dialer(t, l.wrongname, l.mxHost)
	d.Auth = smtpsecure.PlainAuth("", l.alice.name, l.alice.pass)
	msg := newMessage(t, l.alice.name, []string{"wrongname@" + l.relayDomain}, []byte("must never be sent\r\n"))
	offset := l.logSize(t)

	_, err := d.Send(ctx, &smtpsecure.Envelope{From: msg.from, To: msg.to}, bytes.NewReader(msg.raw))
	dg := downgrade(t, err)
	if dg.Reason != smtpsecure.ReasonCertificateHostMismatch {
		t.Errorf("Reason = %v, want %v (%v)", dg.Reason, smtpsecure.ReasonCertificateHostMismatch, err)
	}
	if got := dg.ReportResultType(); got != "certificate-host-mismatch" {
		t.Errorf("ReportResultType() = %q, want certificate-host-mismatch", got)
	}
	var hostErr x509.HostnameError
	if !errors.As(err, &hostErr) {
		t.Errorf("the x509.HostnameError is not reachable with errors.As from %v", err)
	} else if hostErr.Host != l.mxHost {
		t.Errorf("HostnameError.Host = %q, want %q", hostErr.Host, l.mxHost)
	}
	conn := ts.only(t)
	checkSNI(t, conn, l.mxHost)
	s := l.waitSession(t, l.wrongname.listener, conn, offset)
	expectCounts(t, s, map[string]string{"ehlo": "1", "auth": "", "mail": "", "rcpt": ""})
}

// testWrongNameListenerWithItsName is the control for testWrongName: the
// same listener, named as its certificate names it, delivers. So the
// failure above is the name check and nothing else.
func testWrongNameListenerWithItsName(t *testing.T, l *lab) {
	l.submit(t, submission{tg: l.wrongname, host: l.wrongName, to: []string{"wrongname-control@" + l.zone},
		body: []byte("The certificate names other.test.example.\r\n")})
}

// testUntrustedChain: without the lab CA among the roots, the chain is
// not trusted (the system roots do not know the lab CA), over implicit
// TLS, and the credentials are not sent.
//
// STD-9, STD-10, STD-87, STD-97
func testUntrustedChain(t *testing.T, l *lab) {
	ctx := caseContext(t)
	d, ts := l.dialer(t, l.implicit, l.mxHost)
	d.TLSConfig = nil // the system roots
	d.Auth = smtpsecure.PlainAuth("", l.alice.name, l.alice.pass)
	offset := l.logSize(t)

	_, err := d.Dial(ctx)
	dg := downgrade(t, err)
	if dg.Reason != smtpsecure.ReasonCertificateUntrusted {
		t.Errorf("Reason = %v, want %v (%v)", dg.Reason, smtpsecure.ReasonCertificateUntrusted, err)
	}
	if got := dg.ReportResultType(); got != "certificate-not-trusted" {
		t.Errorf("ReportResultType() = %q, want certificate-not-trusted", got)
	}
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("the x509.UnknownAuthorityError is not reachable with errors.As from %v", err)
	}
	s := l.waitSession(t, l.implicit.listener, ts.only(t), offset)
	expectCounts(t, s, map[string]string{"ehlo": "", "auth": "", "mail": ""})
}

// testWrongPassword: a wrong password is a typed authentication error that
// carries the server's 535 5.7.8.
//
// STD-21, STD-35, STD-36, STD-38
func testWrongPassword(t *testing.T, l *lab) {
	cases := []struct {
		name string
		tg   target
		auth smtpsecure.Auth
		mech string
	}{
		{"STARTTLS/PLAIN", l.starttls, smtpsecure.PlainAuth("", l.alice.name, l.alice.pass+"x"), "PLAIN"},
		{"STARTTLS/LOGIN", l.starttls, smtpsecure.LoginAuth(l.bob.name, strings.ToUpper(l.bob.pass)), "LOGIN"},
		{"Implicit/PLAIN", l.implicit, smtpsecure.PlainAuth("", l.bob.name, "pass w0rd"), "PLAIN"},
		{"Implicit/LOGIN", l.implicit, smtpsecure.LoginAuth(l.alice.name, ""), "LOGIN"},
		{"STARTTLS/UnknownUser", l.starttls, smtpsecure.PlainAuth("", "nobody@"+l.zone, l.alice.pass), "PLAIN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := caseContext(t)
			d, ts := l.dialer(t, tc.tg, l.mxHost)
			d.Auth = tc.auth
			offset := l.logSize(t)
			_, err := d.Dial(ctx)
			checkAuthFailed(t, err, tc.mech)
			s := l.waitSession(t, tc.tg.listener, ts.only(t), offset)
			expectCounts(t, s, map[string]string{"auth": "0/1", "mail": ""})
		})
	}
}

// checkAuthFailed checks that err is an *AuthError for mech, matching
// ErrAuthFailed, with the server's 535 5.7.8.
func checkAuthFailed(t *testing.T, err error, mech string) {
	t.Helper()
	var ae *smtpsecure.AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T), want a *smtpsecure.AuthError", err, err)
	}
	if !errors.Is(err, smtpsecure.ErrAuthFailed) {
		t.Errorf("errors.Is(err, ErrAuthFailed) is false for %v", err)
	}
	if ae.Mechanism != mech {
		t.Errorf("AuthError.Mechanism = %q, want %q", ae.Mechanism, mech)
	}
	var se *smtpsecure.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("the server's reply is not reachable with errors.As from %v", err)
	}
	if se.Code != 535 || se.Enhanced != smtpsecure.CodeAuthInvalid || !se.Enhanced.Security() || !se.Permanent() {
		t.Errorf("server reply %d %v (%s), want 535 5.7.8", se.Code, se.Enhanced, se.Message())
	}
}

// testRelayDenied: without AUTH the relay domain is refused (554 5.7.1).
// No content goes out, nothing is queued, and the session is still usable
// for a recipient the server accepts.
//
// STD-25, STD-27, STD-30, STD-35
func testRelayDenied(t *testing.T, l *lab) {
	ctx := caseContext(t)
	d, ts := l.dialer(t, l.starttls, l.mxHost)
	from := "sender@" + l.zone
	denied := newMessage(t, from, []string{"denied@" + l.relayDomain}, []byte("must not be delivered\r\n"))
	offset := l.logSize(t)

	c, err := d.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Send(ctx, &smtpsecure.Envelope{From: from, To: denied.to}, bytes.NewReader(denied.raw))
	var re *smtpsecure.RecipientsError
	if !errors.As(err, &re) || !errors.Is(err, smtpsecure.ErrRecipientsRejected) {
		t.Fatalf("Send: %v (%T), want a *RecipientsError", err, err)
	}
	if len(re.Rejected) != 1 || re.Temporary() {
		t.Fatalf("RecipientsError = %+v, want one permanent refusal and nothing delivered", re)
	}
	if r := re.Rejected[0]; r.Recipient != denied.to[0] || r.Err.Code != 554 || r.Err.Enhanced != (smtpsecure.EnhancedCode{Class: 5, Subject: 7, Detail: 1}) {
		t.Errorf("refusal of %s: %d %v, want 554 5.7.1", r.Recipient, r.Err.Code, r.Err.Enhanced)
	}
	if res != nil {
		t.Errorf("SendResult = %+v, want none: the message went to nobody", res)
	}

	// The same session goes on.
	ok := newMessage(t, from, []string{"after-denied@" + l.zone}, []byte("sent after a refused transaction\r\n"))
	if _, err := c.Send(ctx, &smtpsecure.Envelope{From: from, To: ok.to}, bytes.NewReader(ok.raw)); err != nil {
		t.Fatalf("Send after the refused transaction: %v", err)
	}
	if err := c.Quit(ctx); err != nil {
		t.Error(err)
	}
	s := l.waitSession(t, l.starttls.listener, ts.only(t), offset)
	// The first BDAT, pipelined with the envelope, was refused; the client
	// reset the transaction and sent no more BDAT for it (STD-30).
	expectCounts(t, s, map[string]string{"mail": "2", "rcpt": "1/2", "bdat": "1/2", "rset": "1", "quit": "1"})
	if len(s.queueIDs) != 1 {
		t.Errorf("the session queued %d messages, want 1 (only the second); the session:\n%s", len(s.queueIDs), s)
	}
	l.waitDelivered(t, ok)
	if files, err := l.maildir.find(denied.id); err != nil || len(files) != 0 {
		t.Errorf("the refused message is in the Maildir: %v %v", files, err)
	}
}

// testSomeRecipientsRefused: one accepted and one refused recipient. With
// AllOrNothing nothing is sent (a *RecipientsError); without it the
// accepted one gets the message, which is no error: the result lists the
// refused one.
//
// STD-25, STD-27
func testSomeRecipientsRefused(t *testing.T, l *lab) {
	for _, allOrNothing := range []bool{true, false} {
		name := "Partial"
		if allOrNothing {
			name = "AllOrNothing"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := caseContext(t)
			d, ts := l.dialer(t, l.starttls, l.mxHost)
			from := "sender@" + l.zone
			accepted, refused := "partial-ok@"+l.zone, "partial-denied@"+l.relayDomain
			msg := newMessage(t, from, []string{accepted, refused}, []byte("to one of two recipients\r\n"))
			offset := l.logSize(t)

			c, err := d.Dial(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			res, err := c.Send(ctx, &smtpsecure.Envelope{From: from, To: msg.to, AllOrNothing: allOrNothing}, bytes.NewReader(msg.raw))
			if allOrNothing {
				var re *smtpsecure.RecipientsError
				if !errors.As(err, &re) || res != nil {
					t.Fatalf("Send: %+v, %v (%T), want a *RecipientsError", res, err, err)
				}
				if len(re.Rejected) != 1 || re.Rejected[0].Recipient != refused {
					t.Errorf("RecipientsError: rejected %v; want %s", re.Rejected, refused)
				}
			} else {
				if err != nil {
					t.Fatalf("Send: %v, want the partial delivery as a result", err)
				}
				if !slices.Equal(res.Accepted, []string{accepted}) || len(res.Rejected) != 1 || res.Rejected[0].Recipient != refused {
					t.Errorf("result: accepted %v, rejected %v; want [%s], [%s]", res.Accepted, res.Rejected, accepted, refused)
				}
			}
			if err := c.Quit(ctx); err != nil {
				t.Error(err)
			}
			s := l.waitSession(t, l.starttls.listener, ts.only(t), offset)
			if allOrNothing {
				// The envelope was answered before any content went out,
				// and the transaction was reset.
				expectCounts(t, s, map[string]string{"rcpt": "1/2", "bdat": "", "data": "", "rset": "1"})
				return
			}
			expectCounts(t, s, map[string]string{"rcpt": "1/2"})
			msg.to = []string{accepted}
			l.waitDelivered(t, msg)
		})
	}
}

// testSecondAuth: a second AUTH in an authenticated session is refused by
// the client without a word to the server.
//
// STD-18
func testSecondAuth(t *testing.T, l *lab) {
	ctx := caseContext(t)
	d, ts := l.dialer(t, l.starttls, l.mxHost)
	d.Auth = smtpsecure.PlainAuth("", l.alice.name, l.alice.pass)
	offset := l.logSize(t)
	c, err := d.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var ae *smtpsecure.AuthError
	if err := c.Auth(ctx, smtpsecure.PlainAuth("", l.bob.name, l.bob.pass)); !errors.As(err, &ae) {
		t.Errorf("a second Auth gave %v, want an *AuthError", err)
	}
	if err := c.Quit(ctx); err != nil {
		t.Error(err)
	}
	s := l.waitSession(t, l.starttls.listener, ts.only(t), offset)
	expectCounts(t, s, map[string]string{"auth": "1", "quit": "1"})
}

// testRequireTLSUnsupported: Postfix has no REQUIRETLS, so a message that
// asks for it is refused by the client with a typed error (5.7.30) before
// MAIL is sent.
//
// STD-91, STD-93
func testRequireTLSUnsupported(t *testing.T, l *lab) {
	ctx := caseContext(t)
	d, ts := l.dialer(t, l.starttls, l.mxHost)
	msg := newMessage(t, "sender@"+l.zone, []string{"requiretls@" + l.zone}, []byte("must not be sent without REQUIRETLS\r\n"))
	offset := l.logSize(t)
	c, err := d.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Send(ctx, &smtpsecure.Envelope{From: msg.from, To: msg.to, MailOptions: smtpsecure.MailOptions{RequireTLS: true}}, bytes.NewReader(msg.raw))
	var ee *smtpsecure.ExtensionError
	if !errors.As(err, &ee) || !errors.Is(err, smtpsecure.ErrExtensionMissing) {
		t.Fatalf("Send with RequireTLS: %v (%T), want an *ExtensionError", err, err)
	}
	if ee.Extension != "REQUIRETLS" || ee.EnhancedCode() != smtpsecure.CodeRequireTLSUnsupported {
		t.Errorf("ExtensionError for %s, code %v; want REQUIRETLS, 5.7.30", ee.Extension, ee.EnhancedCode())
	}
	if err := c.Quit(ctx); err != nil {
		t.Error(err)
	}
	s := l.waitSession(t, l.starttls.listener, ts.only(t), offset)
	expectCounts(t, s, map[string]string{"mail": "", "rcpt": "", "quit": "1"})
}

// cancelAfter reads from r and, once n octets were read, cancels the
// context and waits until the client has reacted by setting a past
// deadline on its connection: from then on every write must fail.
type cancelAfter struct {
	r      io.Reader
	n      int
	read   int
	cancel context.CancelFunc
	conn   *tap
	err    error // set when the client never reacted
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += n
	if c.read >= c.n && c.cancel != nil {
		c.cancel()
		c.cancel = nil
		select {
		case <-c.conn.past:
		case <-time.After(logTimeout):
			c.err = errors.New("the client set no past deadline on its connection after the context was cancelled")
		}
	}
	return n, err
}

// testCancelDuringData: cancelling the context in the middle of a 10 MiB
// message interrupts the transfer: Send fails with context.Canceled, reads
// no further than it must, and Postfix loses the connection in the middle
// of BDAT, so the message is not delivered. The cancellation lands between
// two writes, after the client's context.AfterFunc has put the deadline in
// the past: the next write must not set a fresh deadline over it.
func testCancelDuringData(t *testing.T, l *lab) {
	ctx := caseContext(t)
	d, ts := l.dialer(t, l.starttls, l.mxHost)
	d.Auth = smtpsecure.PlainAuth("", l.alice.name, l.alice.pass)
	msg := newMessage(t, l.alice.name, []string{"cancelled@" + l.relayDomain}, bigBody(10<<20))
	offset := l.logSize(t)
	c, err := d.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	conn := ts.only(t)
	sendCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &cancelAfter{r: bytes.NewReader(msg.raw), n: 1 << 20, cancel: cancel, conn: conn}
	_, err = c.Send(sendCtx, &smtpsecure.Envelope{From: msg.from, To: msg.to}, r)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Send with a cancelled context: %v (%T), want an error matching context.Canceled", err, err)
	}
	if r.read >= len(msg.raw) {
		t.Errorf("the whole message (%d octets) was read although the context was cancelled at %d", r.read, r.n)
	}
	if err := c.Noop(ctx); err == nil {
		t.Error("the session is still usable after a cancelled Send")
	}
	s := l.waitSession(t, l.starttls.listener, conn, offset)
	expectCounts(t, s, map[string]string{"quit": ""})
	if !strings.Contains(s.String(), "lost connection after BDAT") {
		t.Errorf("Postfix did not lose the connection in the middle of BDAT, so it may have taken the message; the session:\n%s", s)
	}
}

// testCancelAfterFinalReply: the context ends after the server's final
// "250 ... queued" reply has arrived and before Send returns. The message
// was accepted, so Send must say so: an error here makes the caller send
// it again. The session is plaintext (Dialer.InsecurePlaintext, to the
// notls listener) so that the tap can see the reply and cancel at exactly
// that point; the TLS path runs the same code.
func testCancelAfterFinalReply(t *testing.T, l *lab) {
	ctx := caseContext(t)
	d, ts := l.dialer(t, l.notls, l.mxHost)
	d.InsecurePlaintext = true
	msg := newMessage(t, "sender@"+l.zone, []string{"cancel-after-reply@" + l.zone}, []byte("accepted, then cancelled\r\n"))
	msg.plaintext = true
	c, err := d.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	conn := ts.only(t)
	sendCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var reacted error
	conn.setOnRead(func(b []byte) {
		if !bytes.Contains(b, []byte(" queued as ")) {
			return
		}
		cancel()
		select {
		case <-conn.past:
		case <-time.After(logTimeout):
			reacted = errors.New("the client set no past deadline on its connection after the context was cancelled")
		}
	})
	res, err := c.Send(sendCtx, &smtpsecure.Envelope{From: msg.from, To: msg.to}, bytes.NewReader(msg.raw))
	if reacted != nil {
		t.Fatal(reacted)
	}
	l.waitDelivered(t, msg)
	if err != nil {
		t.Errorf("Postfix accepted the message, but Send returned %v (%T): the caller will send it again", err, err)
	}
	if res == nil || len(res.Accepted) != 1 {
		t.Errorf("SendResult = %+v, want the recipient accepted", res)
	}
}
