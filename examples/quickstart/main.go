// Command quickstart shows smtpsecure's promise in one run, offline.
//
// It starts a test SMTP server on loopback (package smtptest: a throwaway
// certificate authority, a certificate for localhost) and sends a message
// over verified STARTTLS with authentication. Then it sends to a server that
// does not offer STARTTLS, which is what a man in the middle who strips
// STARTTLS makes any server look like, and prints the typed error the
// library returns instead of sending in the clear, with what that server
// received in the clear.
//
//	go run ./examples/quickstart
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/smtpsecure/smtpsecure"
	"github.com/smtpsecure/smtpsecure/smtptest"
)

const (
	user     = "me@example.test"
	password = "correct horse battery staple"
	message  = "From: me@example.test\r\n" +
		"To: you@example.test\r\n" +
		"Subject: hello from smtpsecure\r\n" +
		"\r\n" +
		"This message travelled over verified TLS.\r\n"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := &smtpsecure.Envelope{From: user, To: []string{"you@example.test"}}

	// 1. A submission server: STARTTLS, and AUTH only inside TLS.
	srv := smtptest.NewUnstartedServer()
	srv.Users = map[string]string{user: password}
	srv.Start()
	defer srv.Close()

	d := srv.Dialer() // localhost at the server's port, trusting its test CA
	d.Auth = smtpsecure.PasswordAuth(user, password)
	res, err := d.Send(ctx, env, strings.NewReader(message))
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	got := srv.Messages()[0]
	fmt.Println("1. A server that offers STARTTLS")
	fmt.Printf("   delivered to:      %v (%s)\n", res.Accepted, res.Reply)
	fmt.Printf("   over:              %s, certificate verified for %q\n", tls.VersionName(got.TLS.Version), got.TLS.ServerName)
	fmt.Printf("   authenticated:     %s with %s\n", got.AuthUser, got.AuthMechanism)
	fmt.Printf("   sent in the clear: %q\n\n", got.Session.Plaintext())

	// 2. A server that does not offer STARTTLS. A client that fell back to
	// plaintext would now send the password and the message in the clear.
	stripped := smtptest.NewUnstartedServer()
	stripped.Users = map[string]string{user: password}
	stripped.DisableSTARTTLS = true
	stripped.Start()
	defer stripped.Close()

	d = stripped.Dialer()
	d.Auth = smtpsecure.PasswordAuth(user, password)
	_, err = d.Send(ctx, env, strings.NewReader(message))
	var dg *smtpsecure.DowngradeError
	if !errors.As(err, &dg) {
		return fmt.Errorf("expected a DowngradeError, got %v", err)
	}
	sessions, err := stripped.WaitSessions(ctx, 1) // everything the client sent is recorded
	if err != nil {
		return err
	}
	clear := sessions[0].Plaintext()
	fmt.Println("2. A server without STARTTLS (or a STARTTLS-stripping attacker)")
	fmt.Printf("   error:             %v\n", dg)
	fmt.Printf("   reason:            %v\n", dg.Reason)
	fmt.Printf("   TLS-RPT:           %s\n", dg.ReportResultType())
	fmt.Printf("   sent in the clear: %q\n\n", clear)

	for _, secret := range []string{"AUTH", "MAIL", "RCPT", "Subject"} {
		if bytes.Contains(clear, []byte(secret)) {
			return fmt.Errorf("%s was sent in the clear", secret)
		}
	}
	if len(stripped.Messages()) != 0 {
		return errors.New("the server without STARTTLS received a message")
	}
	fmt.Println("The password, the envelope and the message never left in plaintext.")
	return nil
}
