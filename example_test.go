package smtpsecure_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net/smtp"
	"os"
	"strings"
	"time"

	"github.com/smtpsecure/smtpsecure"
	"github.com/smtpsecure/smtpsecure/smtptest"
)

// Submission to a provider: required STARTTLS on 587 (implicit TLS if Port
// were 465), the certificate verified, then the strongest password
// mechanism the server offers. A nil error means the message was accepted
// for at least one recipient; the result lists any the server refused.
func ExampleDialer_Send() {
	d := &smtpsecure.Dialer{
		Host: "smtp.example.com",
		Auth: smtpsecure.PasswordAuth("me@example.com", os.Getenv("SMTP_PASSWORD")),
	}
	msg := strings.NewReader("From: me@example.com\r\nTo: you@example.net\r\nSubject: hi\r\n\r\nHello.\r\n")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := d.Send(ctx, &smtpsecure.Envelope{From: "me@example.com", To: []string{"you@example.net"}}, msg)
	if err != nil {
		log.Fatal(err) // delivered to nobody
	}
	for _, r := range res.Rejected {
		log.Printf("%s refused: %v", r.Recipient, r.Err)
	}
}

// Migrating from net/smtp is a change of import: same signature, same
// Auth values, but TLS is required and verified.
func ExampleSendMail() {
	auth := smtp.PlainAuth("", "me@example.com", os.Getenv("SMTP_PASSWORD"), "smtp.example.com")
	err := smtpsecure.SendMail("smtp.example.com:587", auth, "me@example.com", []string{"you@example.net"},
		[]byte("Subject: hi\r\n\r\nHello.\r\n"))
	if err != nil {
		log.Fatal(err)
	}
}

// One session, many messages; refused recipients are listed in the result
// while the others get the message.
func ExampleClient_Send() {
	d := &smtpsecure.Dialer{Host: "smtp.example.com", Auth: smtpsecure.PasswordAuth("me@example.com", os.Getenv("SMTP_PASSWORD"))}
	ctx := context.Background()
	c, err := d.Dial(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Quit(ctx)
	for _, to := range []string{"a@example.net", "b@example.net"} {
		env := &smtpsecure.Envelope{From: "me@example.com", To: []string{to}, Notify: smtpsecure.NotifyFailure}
		res, err := c.Send(ctx, env, strings.NewReader("Subject: report\r\n\r\n...\r\n"))
		var rejected *smtpsecure.RecipientsError
		switch {
		case errors.As(err, &rejected): // every recipient refused: sent to nobody
			for _, r := range rejected.Rejected {
				log.Printf("%s refused: %v", r.Recipient, r.Err)
			}
		case err != nil:
			log.Fatal(err)
		default:
			log.Printf("queued: %s", res.Reply)
		}
	}
}

// A server that does not offer STARTTLS (here, a test server from package
// smtptest, which is what a man in the middle who strips STARTTLS makes any
// server look like) gets nothing but EHLO and QUIT, and the caller gets a
// typed error with the RFC 8460 result type for a TLS report.
func ExampleDowngradeError() {
	srv := smtptest.NewUnstartedServer()
	srv.DisableSTARTTLS = true
	srv.Start()
	defer srv.Close()

	d := srv.Dialer() // points at srv and trusts its test CA
	d.Auth = smtpsecure.PlainAuth("", "me", "secret")
	env := &smtpsecure.Envelope{From: "me@example.com", To: []string{"you@example.net"}}
	_, err := d.Send(context.Background(), env, strings.NewReader("Subject: hi\r\n\r\n"))

	var dg *smtpsecure.DowngradeError
	if errors.As(err, &dg) {
		fmt.Println("reason:", dg.Reason)
		fmt.Println("TLS-RPT result type:", dg.ReportResultType())
		fmt.Println("errors.Is ErrDowngrade:", errors.Is(err, smtpsecure.ErrDowngrade))
	}
	fmt.Println("messages delivered:", len(srv.Messages()))
	// Output:
	// reason: server did not offer STARTTLS
	// TLS-RPT result type: starttls-not-supported
	// errors.Is ErrDowngrade: true
	// messages delivered: 0
}

// Testing code that sends mail: a recording server with a throwaway CA, a
// Dialer that trusts it, and what arrived.
func ExampleDialer_Send_test() {
	srv := smtptest.NewUnstartedServer()
	srv.Users = map[string]string{"me@example.com": "secret"} // AUTH inside TLS only
	srv.Start()
	defer srv.Close()

	d := srv.Dialer()
	d.Auth = smtpsecure.PasswordAuth("me@example.com", "secret")
	env := &smtpsecure.Envelope{From: "me@example.com", To: []string{"you@example.net"}}
	res, err := d.Send(context.Background(), env, strings.NewReader("Subject: hi\r\n\r\nHello.\r\n"))
	if err != nil {
		log.Fatal(err)
	}
	m := srv.Messages()[0]
	fmt.Println("accepted:", res.Accepted)
	fmt.Println("subject:", m.Header.Get("Subject"))
	fmt.Println("over TLS:", m.TLS != nil, "as", m.AuthUser)
	// Output:
	// accepted: [you@example.net]
	// subject: hi
	// over TLS: true as me@example.com
}

// Authentication with an OAuth 2.0 access token: OAUTHBEARER where offered,
// else XOAUTH2 (Gmail, Microsoft 365).
func ExampleOAuthBearerAuth() {
	d := &smtpsecure.Dialer{
		Host: "smtp.gmail.com",
		Port: 465,
		Auth: smtpsecure.OAuthBearerAuth("me@gmail.com", smtpsecure.StaticToken(os.Getenv("ACCESS_TOKEN"))),
	}
	env := &smtpsecure.Envelope{From: "me@gmail.com", To: []string{"you@example.net"}}
	if _, err := d.Send(context.Background(), env, strings.NewReader("Subject: hi\r\n\r\n")); err != nil {
		var ae *smtpsecure.AuthError
		if errors.As(err, &ae) {
			log.Fatalf("token refused: %v", ae)
		}
		log.Fatal(err)
	}
}

// VerifyConnection runs after the certificate has been verified, as in
// crypto/tls: here it also pins the server's certificate. Its error is a
// DowngradeError with ReasonPolicy. (DANE authentication, which replaces the
// Web PKI check, is Dialer.DANE.)
func ExampleDialer_VerifyConnection() {
	pinned := os.Getenv("PINNED_CERT_SHA256")
	d := &smtpsecure.Dialer{
		Host: "mx.example.org",
		Port: 25,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if fmt.Sprintf("%x", sha256.Sum256(cs.PeerCertificates[0].Raw)) != pinned {
				return errors.New("certificate does not match the pin")
			}
			return nil
		},
	}
	_ = d
}
