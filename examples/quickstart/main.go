// Command quickstart shows smtpsecure's promise in one run, offline.
//
// It starts an SMTP server on loopback with a throwaway certificate
// authority, sends a message to it over verified STARTTLS with
// authentication, then sends the same message through a man-in-the-middle
// that strips STARTTLS from the server's EHLO reply, and prints the typed
// error that the library returns instead of sending in the clear.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"strings"
	"time"

	"github.com/smtpsecure/smtpsecure"
	"github.com/smtpsecure/smtpsecure/internal/mitm"
	"github.com/smtpsecure/smtpsecure/internal/smtptest"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

const message = "From: me@example.test\r\n" +
	"To: you@example.test\r\n" +
	"Subject: hello from smtpsecure\r\n" +
	"\r\n" +
	"This message travelled over verified TLS.\r\n"

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A server for "localhost" with a certificate from a private CA.
	ca, err := testpki.NewCA("quickstart CA")
	if err != nil {
		return err
	}
	leaf, err := ca.Issue(testpki.LeafOptions{DNSNames: []string{"localhost"}})
	if err != nil {
		return err
	}
	srv := &smtptest.Server{
		Hostname:   "localhost",
		TLSConfig:  leaf.ServerConfig(),
		Extensions: []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "CHUNKING", "AUTH PLAIN LOGIN"},
		Users:      map[string]string{"me@example.test": "correct horse battery staple"},
	}
	if err := srv.Start(); err != nil {
		return err
	}
	defer srv.Close()
	fmt.Printf("SMTP server listening on %s (STARTTLS, certificate for localhost)\n\n", srv.Addr())

	// 1. The secure way: required STARTTLS, verified certificate, then AUTH.
	d := &smtpsecure.Dialer{
		Host:      "localhost",
		Port:      srv.Port(),
		TLSConfig: &tls.Config{RootCAs: ca.Pool()}, // trust the private CA; system roots otherwise
		Auth:      smtpsecure.PasswordAuth("me@example.test", "correct horse battery staple"),
	}
	c, err := d.Dial(ctx)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	state, _ := c.TLSConnectionState()
	res, err := c.Send(ctx, &smtpsecure.Envelope{From: "me@example.test", To: []string{"you@example.test"}}, strings.NewReader(message))
	if err != nil {
		c.Close()
		return fmt.Errorf("send: %w", err)
	}
	fmt.Println("1. Direct connection")
	fmt.Printf("   TLS:       %s, certificate verified for %q: %v\n", tls.VersionName(state.Version), state.ServerName, c.Verified())
	fmt.Printf("   AUTH:      %s\n", c.AuthMechanism())
	fmt.Printf("   delivered: to %v, server said %q\n\n", res.Accepted, res.Reply)
	if err := c.Quit(ctx); err != nil {
		return err
	}

	// 2. An attacker between us and the server removes STARTTLS from the
	// server's EHLO reply. A client that falls back to plaintext would now
	// send the password and the message in the clear.
	proxy := &mitm.Proxy{Upstream: srv.Addr(), StripSTARTTLS: true}
	if err := proxy.Start(); err != nil {
		return err
	}
	defer proxy.Close()
	d.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var nd net.Dialer
		return nd.DialContext(ctx, network, proxy.Addr())
	}
	_, err = d.Send(ctx, &smtpsecure.Envelope{From: "me@example.test", To: []string{"you@example.test"}}, strings.NewReader(message))
	fmt.Println("2. Through a STARTTLS-stripping man-in-the-middle")
	var dg *smtpsecure.DowngradeError
	if !errors.As(err, &dg) {
		return fmt.Errorf("expected a DowngradeError, got %v", err)
	}
	fmt.Printf("   error:       %v\n", err)
	fmt.Printf("   reason:      %v\n", dg.Reason)
	fmt.Printf("   TLS-RPT:     %s\n", dg.ReportResultType())
	fmt.Printf("   sent in the clear: %q\n", proxy.ClientPlaintext())
	fmt.Println()
	fmt.Println("The password, the envelope and the message never left in plaintext.")
	if len(srv.Messages()) != 1 {
		fmt.Fprintln(os.Stderr, "unexpected: the server got a second message")
		os.Exit(1)
	}
	return nil
}
