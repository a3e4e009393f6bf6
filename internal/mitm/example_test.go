package mitm_test

import (
	"fmt"
	"log"
	"net/smtp"

	"github.com/smtpsecure/smtpsecure/internal/mitm"
	"github.com/smtpsecure/smtpsecure/internal/smtptest"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

// An attacker strips STARTTLS from the EHLO reply. A client that requires
// TLS must see that STARTTLS is missing and stop; net/smtp's Extension shows
// what such a client sees, and ClientPlaintext what the attacker read.
func Example() {
	ca, err := testpki.NewCA("example root")
	if err != nil {
		log.Fatal(err)
	}
	leaf, err := ca.Issue(testpki.LeafOptions{DNSNames: []string{smtptest.DefaultHostname}})
	if err != nil {
		log.Fatal(err)
	}
	srv := &smtptest.Server{TLSConfig: leaf.ServerConfig(), Extensions: []string{"8BITMIME"}}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	p := &mitm.Proxy{Upstream: srv.Addr(), StripSTARTTLS: true}
	if err := p.Start(); err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	c, err := smtp.Dial(p.Addr())
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Hello("client.example"); err != nil {
		log.Fatal(err)
	}
	starttls, _ := c.Extension("STARTTLS")
	eightbit, _ := c.Extension("8BITMIME")
	fmt.Println("STARTTLS offered:", starttls)
	fmt.Println("8BITMIME offered:", eightbit)
	c.Quit()
	fmt.Printf("the attacker read: %q\n", p.ClientPlaintext())
	// Output:
	// STARTTLS offered: false
	// 8BITMIME offered: true
	// the attacker read: "EHLO client.example\r\nQUIT\r\n"
}
