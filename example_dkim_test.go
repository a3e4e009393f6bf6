package smtpsecure_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/smtpsecure/smtpsecure"
	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/smtptest"
)

// Deliver a DKIM-signed message straight to the recipient's MX host: set
// Deliverer.Signer to a DKIMSigner with the sending domain, the selector
// and the private key. The message is signed once, before the first
// session. The receiver looks the public key up at
// mail._domainkey.example.org and checks the signature, as the end of the
// example does with go-msgauth's verifier. As in the Deliverer.Deliver
// example, the MX host is a server from package smtptest, found through a
// DNS server on loopback and reached through a dial hook.
func ExampleDKIMSigner() {
	pub, key, err := ed25519.GenerateKey(rand.Reader) // or load an RSA key of 2048 bits
	if err != nil {
		log.Fatal(err)
	}
	// What example.org publishes in DNS for receivers to verify with.
	record := "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)

	mx := smtptest.NewUnstartedServer()
	mx.Hostname = "mx.example.net"
	mx.Start()
	defer mx.Close()
	tlsa, err := dane.NewTLSA(mx.Certificate(), dane.DANEEE, dane.SelectorSPKI, dane.MatchSHA256)
	if err != nil {
		log.Fatal(err)
	}
	resolver, stop := startResolver(
		"example.net. MX 10 mx.example.net.",
		"mx.example.net. A 192.0.2.10",
		"_25._tcp.mx.example.net. TLSA "+tlsa.String(),
	)
	defer stop()

	d := &smtpsecure.Deliverer{
		Resolver: &dane.Resolver{Servers: []string{resolver}},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var nd net.Dialer
			return nd.DialContext(ctx, network, mx.Addr()) // 192.0.2.10:25 in this example
		},
		LocalName: "mail.example.org",
		Signer:    &smtpsecure.DKIMSigner{Domain: "example.org", Selector: "mail", Key: key},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := &smtpsecure.Envelope{From: "me@example.org", To: []string{"you@example.net"}}
	msg := "From: me@example.org\r\nTo: you@example.net\r\nSubject: signed\r\n\r\nHi.\r\n"
	results, err := d.Deliver(ctx, env, strings.NewReader(msg))
	if err != nil {
		log.Fatal(err) // a *smtpsecure.SignError if the message could not be signed
	}
	fmt.Printf("%s: %s by %s\n", results[0].Recipient, results[0].Outcome, results[0].Host)

	// The receiver's check.
	received := mx.Messages()[0].Data
	verifications, err := dkim.VerifyWithOptions(bytes.NewReader(received), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if name != "mail._domainkey.example.org" {
				return nil, fmt.Errorf("no TXT record at %s in this example", name)
			}
			return []string{record}, nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, v := range verifications {
		fmt.Printf("DKIM signature of %s: verified=%v\n", v.Domain, v.Err == nil)
	}
	// Output:
	// you@example.net: delivered by mx.example.net
	// DKIM signature of example.org: verified=true
}
