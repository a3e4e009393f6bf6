package smtptest_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net/smtp"
	"strings"

	"github.com/smtpsecure/smtpsecure"
	"github.com/smtpsecure/smtpsecure/smtptest"
)

// A test starts a server, sends to it with the Dialer it hands out, and
// reads what arrived and how. In a test, t.Cleanup(srv.Close) replaces the
// defer.
func Example() {
	srv := smtptest.NewUnstartedServer()
	srv.Users = map[string]string{"me@example.com": "secret"}
	srv.Start()
	defer srv.Close()

	d := srv.Dialer() // points at srv and trusts its throwaway CA
	d.Auth = smtpsecure.PasswordAuth("me@example.com", "secret")
	msg := "From: me@example.com\r\nTo: you@example.net\r\nSubject: hello\r\n\r\nHi!\r\n"
	env := &smtpsecure.Envelope{From: "me@example.com", To: []string{"you@example.net"}}
	if _, err := d.Send(context.Background(), env, strings.NewReader(msg)); err != nil {
		log.Fatal(err)
	}

	m := srv.Messages()[0]
	fmt.Println("from:", m.From, "to:", m.To)
	fmt.Println("subject:", m.Header.Get("Subject"))
	fmt.Println("over:", tls.VersionName(m.TLS.Version), "as", m.AuthUser)
	fmt.Printf("sent in the clear: %q\n", m.Session.Plaintext())
	// Output:
	// from: me@example.com to: [you@example.net]
	// subject: hello
	// over: TLS 1.3 as me@example.com
	// sent in the clear: "EHLO localhost\r\nSTARTTLS\r\n"
}

// A server that offers no STARTTLS is what a man in the middle who strips it
// makes any server look like. The client must refuse with a DowngradeError;
// the recording proves that nothing else left in the clear.
func ExampleServer_downgrade() {
	srv := smtptest.NewUnstartedServer()
	srv.Users = map[string]string{"me@example.com": "secret"}
	srv.DisableSTARTTLS = true
	srv.Start()
	defer srv.Close()

	d := srv.Dialer()
	d.Auth = smtpsecure.PasswordAuth("me@example.com", "secret")
	env := &smtpsecure.Envelope{From: "me@example.com", To: []string{"you@example.net"}}
	_, err := d.Send(context.Background(), env, strings.NewReader("Subject: hi\r\n\r\nHi!\r\n"))

	var dg *smtpsecure.DowngradeError
	if errors.As(err, &dg) {
		fmt.Println("refused:", dg.Reason, "/", dg.ReportResultType())
	}
	sessions, err := srv.WaitSessions(context.Background(), 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("sent in the clear: %q\n", sessions[0].Plaintext())
	// Output:
	// refused: server did not offer STARTTLS / starttls-not-supported
	// sent in the clear: "EHLO localhost\r\nQUIT\r\n"
}

// Respond makes the server refuse one recipient; the message still goes to
// the others, and the refusal is typed.
func ExampleServer_respond() {
	srv := smtptest.NewUnstartedServer()
	srv.Respond = func(c smtptest.Command) smtptest.Response {
		if c.Verb == "RCPT" && c.Address == "nobody@example.net" {
			return smtptest.Response{Code: 550, Enhanced: "5.1.1", Text: "No such user"}
		}
		return smtptest.Response{} // the server's own answer
	}
	srv.Start()
	defer srv.Close()

	env := &smtpsecure.Envelope{From: "me@example.com", To: []string{"you@example.net", "nobody@example.net"}}
	res, err := srv.Dialer().Send(context.Background(), env, strings.NewReader("Subject: hi\r\n\r\nHi!\r\n"))
	if err != nil {
		fmt.Println("not delivered:", err)
		return
	}
	// A partial delivery is a result: the refused recipients are listed.
	for _, r := range res.Rejected {
		fmt.Println("refused:", r.Recipient, r.Err.Code, r.Err.Enhanced)
	}
	fmt.Println("accepted:", res.Accepted)
	fmt.Println("delivered to:", srv.Messages()[0].To)
	// Output:
	// refused: nobody@example.net 550 5.1.1
	// accepted: [you@example.net]
	// delivered to: [you@example.net]
}

// A server that hangs up after the message and before its final reply
// leaves the client unable to know whether the message was delivered.
func ExampleResponse_hangUp() {
	srv := smtptest.NewUnstartedServer()
	srv.Respond = func(c smtptest.Command) smtptest.Response {
		if c.Verb == smtptest.EndOfData {
			return smtptest.Response{HangUp: true}
		}
		return smtptest.Response{}
	}
	srv.Start()
	defer srv.Close()

	env := &smtpsecure.Envelope{From: "me@example.com", To: []string{"you@example.net"}}
	_, err := srv.Dialer().Send(context.Background(), env, strings.NewReader("Subject: hi\r\n\r\nHi!\r\n"))
	fmt.Println("uncertain:", errors.Is(err, smtpsecure.ErrDeliveryUncertain))
	fmt.Println("messages accepted:", len(srv.Messages()))
	// Output:
	// uncertain: true
	// messages accepted: 0
}

// Code that sends in the background is waited for, not slept on.
func ExampleServer_WaitMessages() {
	srv := smtptest.NewServer()
	defer srv.Close()

	sent := make(chan error, 1)
	go func() { // the code under test
		env := &smtpsecure.Envelope{From: "me@example.com", To: []string{"you@example.net"}}
		_, err := srv.Dialer().Send(context.Background(), env, strings.NewReader("Subject: report\r\n\r\nDone.\r\n"))
		sent <- err
	}()

	msgs, err := srv.WaitMessages(context.Background(), 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(msgs[0].Header.Get("Subject"))
	if err := <-sent; err != nil {
		log.Fatal(err)
	}
	// Output:
	// report
}

// An implicit-TLS server, as on port 465: nothing at all crosses the
// network in the clear.
func ExampleNewTLSServer() {
	srv := smtptest.NewTLSServer()
	defer srv.Close()

	d := srv.Dialer()
	fmt.Println("security:", d.Security)
	env := &smtpsecure.Envelope{From: "me@example.com", To: []string{"you@example.net"}}
	if _, err := d.Send(context.Background(), env, strings.NewReader("Subject: hi\r\n\r\nHi!\r\n")); err != nil {
		log.Fatal(err)
	}
	fmt.Println("plaintext:", srv.Messages()[0].Session.Plaintext() == nil)
	// Output:
	// security: implicit TLS
	// plaintext: true
}

// notifier is code under test that sends with the drop-in
// smtpsecure.SendMail through a variable.
type notifier struct {
	addr     string
	auth     smtp.Auth
	sendMail func(addr string, a smtp.Auth, from string, to []string, msg []byte) error
}

func (n *notifier) notify(to, text string) error {
	return n.sendMail(n.addr, n.auth, "alerts@example.com", []string{to}, []byte("Subject: alert\r\n\r\n"+text+"\r\n"))
}

// The drop-in smtpsecure.SendMail trusts only the system's roots; a test
// gives the code Server.SendMail in its place, which trusts the server's CA.
func ExampleServer_SendMail() {
	srv := smtptest.NewUnstartedServer()
	srv.Users = map[string]string{"alerts": "secret"}
	srv.Start()
	defer srv.Close()

	n := &notifier{
		addr:     srv.Addr(), // in production: "smtp.example.com:587"
		auth:     smtp.PlainAuth("", "alerts", "secret", "127.0.0.1"),
		sendMail: srv.SendMail, // in production: smtpsecure.SendMail
	}
	if err := n.notify("ops@example.net", "disk full"); err != nil {
		log.Fatal(err)
	}
	m := srv.Messages()[0]
	fmt.Println(m.To, m.AuthUser, strings.TrimSpace(string(m.Body)))
	// Output:
	// [ops@example.net] alerts disk full
}
