package smtpsecure_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"strings"
	"time"

	"github.com/smtpsecure/smtpsecure"
	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/smtptest"
)

// Deliver two messages to a domain through an MXPool: the second goes over
// the session of the first, which DANE authenticated, with no new
// connection, STARTTLS or handshake. The world is the one of
// ExampleDeliverer_Deliver: a test server as the MX host, its TLSA record
// served by a resolver on loopback, and a dial hook.
func ExampleMXPool() {
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

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool := &smtpsecure.MXPool{IdleTimeout: 30 * time.Second} // the zero value keeps idle sessions for 2 s
	defer pool.Close(ctx)
	d := &smtpsecure.Deliverer{
		Pool:     pool,
		Resolver: &dane.Resolver{Servers: []string{resolver}},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var nd net.Dialer
			return nd.DialContext(ctx, network, mx.Addr()) // 192.0.2.10:25
		},
		LocalName: "mail.example.org",
	}
	env := &smtpsecure.Envelope{From: "me@example.org", To: []string{"you@example.net"}}
	for i := 1; i <= 2; i++ {
		results, err := d.Deliver(ctx, env, strings.NewReader(fmt.Sprintf("Subject: %d\r\n\r\nHi.\r\n", i)))
		if err != nil {
			log.Fatal(err)
		}
		r := results[0]
		last := r.Attempts[len(r.Attempts)-1]
		fmt.Printf("message %d: %s, %s, reused session: %v\n", i, r.Outcome, r.ServerAuth, last.Reused)
	}
	fmt.Println("connections:", len(mx.Sessions()))
	// Output:
	// message 1: delivered, DANE-EE, reused session: false
	// message 2: delivered, DANE-EE, reused session: true
	// connections: 1
}
