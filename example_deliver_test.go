package smtpsecure_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/smtpsecure/smtpsecure"
	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/smtptest"
)

// Deliver a message straight to the MX host of the recipient's domain,
// which publishes a DANE TLSA record for it. Everything runs offline: the
// MX host is a server from package smtptest, a DNS server on loopback
// answers as a validating resolver would (with the AD bit), and a dial hook
// takes the connection for the address DNS gives (192.0.2.10, port 25) to
// the test server. Resolver and DialContext are two of the four fields that
// point a Deliverer at such a world; RootCAs and MTASTSCacheDir are the
// others.
func ExampleDeliverer_Deliver() {
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
			if addr != "192.0.2.10:25" {
				return nil, fmt.Errorf("no route to %s in this example", addr)
			}
			var nd net.Dialer
			return nd.DialContext(ctx, network, mx.Addr())
		},
		LocalName: "mail.example.org",
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := &smtpsecure.Envelope{From: "me@example.org", To: []string{"you@example.net"}}
	results, err := d.Deliver(ctx, env, strings.NewReader("Subject: hello\r\n\r\nHi.\r\n"))
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range results {
		fmt.Printf("%s: %s by %s, TLS authenticated by %s (rule: %s)\n", r.Recipient, r.Outcome, r.Host, r.ServerAuth, r.Source)
	}
	// Output:
	// you@example.net: delivered by mx.example.net, TLS authenticated by DANE-EE (rule: dane)
}

// startResolver serves records on a loopback UDP port, as a validating
// resolver would: every answer is DNSSEC-validated (the AD bit), names it
// does not have do not exist. It returns the address and a function that
// stops it.
func startResolver(records ...string) (addr string, stop func()) {
	data := map[string][]dns.RR{}
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			log.Fatal(err)
		}
		name := strings.ToLower(rr.Header().Name)
		data[name] = append(data[name], rr)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.RecursionAvailable = true
		m.AuthenticatedData = true // validated, as a resolver on loopback says
		rrs, exists := data[strings.ToLower(q.Question[0].Name)]
		for _, rr := range rrs {
			if rr.Header().Rrtype == q.Question[0].Qtype {
				m.Answer = append(m.Answer, rr)
			}
		}
		if !exists {
			m.Rcode = dns.RcodeNameError
		}
		if opt := q.IsEdns0(); opt != nil {
			m.SetEdns0(1232, opt.Do())
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	return pc.LocalAddr().String(), func() { srv.Shutdown() }
}
