package smtptest_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"
	"net/smtp"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/smtptest"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

// A server with a throwaway CA that offers STARTTLS and, only inside TLS,
// AUTH PLAIN; a client (here net/smtp) sends one message; the test then
// reads what crossed the wire in the clear and what the server received.
func Example() {
	ca, err := testpki.NewCA("example root")
	if err != nil {
		log.Fatal(err)
	}
	leaf, err := ca.Issue(testpki.LeafOptions{DNSNames: []string{smtptest.DefaultHostname}})
	if err != nil {
		log.Fatal(err)
	}
	srv := &smtptest.Server{
		TLSConfig:     leaf.ServerConfig(),
		Extensions:    []string{"8BITMIME"},
		TLSExtensions: []string{"8BITMIME", "AUTH PLAIN"},
		Users:         map[string]string{"alice": "secret"},
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	c, err := smtp.Dial(srv.Addr())
	if err != nil {
		log.Fatal(err)
	}
	if err := c.StartTLS(&tls.Config{RootCAs: ca.Pool(), ServerName: smtptest.DefaultHostname}); err != nil {
		log.Fatal(err)
	}
	if err := c.Auth(smtp.PlainAuth("", "alice", "secret", "127.0.0.1")); err != nil {
		log.Fatal(err)
	}
	if err := c.Mail("alice@example.com"); err != nil {
		log.Fatal(err)
	}
	if err := c.Rcpt("bob@example.net"); err != nil {
		log.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprint(w, "Subject: hello\n\n.signature\n")
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		log.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.WaitSessions(ctx, 1); err != nil {
		log.Fatal(err)
	}
	sess := srv.Sessions()[0]
	fmt.Printf("in the clear: %q\n", sess.Plaintext())
	fmt.Println("commands:", sess.Verbs())
	m := srv.Messages()[0]
	fmt.Println("from", m.From, "to", m.To, "user", m.AuthUser, "tls", m.TLS)
	fmt.Printf("data: %q\n", m.Data)
	// Output:
	// in the clear: "EHLO localhost\r\nSTARTTLS\r\n"
	// commands: [EHLO STARTTLS EHLO AUTH MAIL RCPT DATA QUIT]
	// from alice@example.com to [bob@example.net] user alice tls true
	// data: "Subject: hello\r\n\r\n.signature\r\n"
}

// A hook makes the server refuse STARTTLS, as an attacker or a broken
// server would; a client that requires TLS must stop there.
func ExampleServer_hook() {
	ca, err := testpki.NewCA("example root")
	if err != nil {
		log.Fatal(err)
	}
	leaf, err := ca.Issue(testpki.LeafOptions{DNSNames: []string{smtptest.DefaultHostname}})
	if err != nil {
		log.Fatal(err)
	}
	srv := &smtptest.Server{
		TLSConfig:  leaf.ServerConfig(),
		Extensions: []string{"ENHANCEDSTATUSCODES"},
		Hook: func(c *smtptest.Conn, cmd smtptest.Command) (string, bool) {
			if cmd.Verb == "STARTTLS" {
				return "454 4.7.0 TLS not available due to temporary reason", true
			}
			return "", false // default handling
		},
	}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	c, err := smtp.Dial(srv.Addr())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	err = c.StartTLS(&tls.Config{RootCAs: ca.Pool(), ServerName: smtptest.DefaultHostname})
	fmt.Println("STARTTLS:", err)
	// Output:
	// STARTTLS: 454 "4.7.0 TLS not available due to temporary reason"
}
