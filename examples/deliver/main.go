// Command deliver shows MX delivery with smtpsecure.Deliver, offline.
//
// It builds a small world on loopback, with only public packages: three
// SMTP servers from package smtptest as the MX hosts of three recipient
// domains, and a DNS server (github.com/miekg/dns) that answers as a
// validating resolver would, setting the AD bit for the zones it says are
// DNSSEC-signed. A dial hook takes each connection for an address DNS gives
// (192.0.2.x, port 25) to the matching server.
//
//   - dane.example publishes a DANE TLSA record for its MX host: the message
//     goes over TLS authenticated by DANE-EE.
//   - plain.example publishes nothing: the message still goes over TLS, but
//     the certificate of a host found through unsigned DNS proves nothing,
//     so it is not checked (RFC 7672 §1.3).
//   - stripped.example's MX host offers no STARTTLS, which is what a man in
//     the middle who strips it makes any host look like: nothing is sent,
//     and the recipient is a temporary failure to try again later.
//   - nomail.example publishes a null MX (RFC 7505): a permanent failure,
//     without a connection.
//
// It prints each recipient's result and the TLS-RPT result of each
// session, as a program that sends TLS reports would record them.
//
//	go run ./examples/deliver
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/smtpsecure/smtpsecure"
	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/smtptest"
	"github.com/smtpsecure/smtpsecure/tlsrpt"
)

const message = "From: me@example.org\r\n" +
	"To: alice@dane.example, bob@plain.example, carol@stripped.example, dave@nomail.example\r\n" +
	"Subject: hello from smtpsecure\r\n" +
	"\r\n" +
	"Delivered straight to your MX host.\r\n"

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	// The MX hosts: test servers with certificates from a throwaway CA.
	daneMX := startMX("mx.dane.example", false)
	defer daneMX.Close()
	plainMX := startMX("mx.plain.example", false)
	defer plainMX.Close()
	strippedMX := startMX("mx.stripped.example", true)
	defer strippedMX.Close()

	// DNS: MX and address records, the TLSA record of mx.dane.example (the
	// SHA-256 digest of its public key: DANE-EE, "3 1 1"), and a null MX.
	tlsa, err := dane.NewTLSA(daneMX.Certificate(), dane.DANEEE, dane.SelectorSPKI, dane.MatchSHA256)
	if err != nil {
		return err
	}
	resolver, stopDNS, err := startResolver([]string{"dane.example", "nomail.example"},
		"dane.example. MX 10 mx.dane.example.",
		"mx.dane.example. A 192.0.2.1",
		"_25._tcp.mx.dane.example. TLSA "+tlsa.String(),
		"plain.example. MX 10 mx.plain.example.",
		"mx.plain.example. A 192.0.2.2",
		"stripped.example. MX 10 mx.stripped.example.",
		"mx.stripped.example. A 192.0.2.3",
		"nomail.example. MX 0 .",
	)
	if err != nil {
		return err
	}
	defer stopDNS()

	reports := &keepReports{}

	// The dial hook: where each address of the world really is.
	routes := map[string]string{
		"192.0.2.1:25": daneMX.Addr(),
		"192.0.2.2:25": plainMX.Addr(),
		"192.0.2.3:25": strippedMX.Addr(),
	}
	d := &smtpsecure.Deliverer{
		Resolver: &dane.Resolver{Servers: []string{resolver}}, // on loopback: its AD bit is trusted
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			target, ok := routes[addr]
			if !ok {
				return nil, fmt.Errorf("no route to %s in this world", addr)
			}
			var nd net.Dialer
			return nd.DialContext(ctx, network, target)
		},
		LocalName:  "mail.example.org", // by default, the host's FQDN
		TLSReports: reports,            // a *tlsrpt.Recorder in a real program
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := &smtpsecure.Envelope{
		From: "me@example.org",
		To:   []string{"alice@dane.example", "bob@plain.example", "carol@stripped.example", "dave@nomail.example"},
	}
	results, err := d.Deliver(ctx, env, strings.NewReader(message))
	if err != nil {
		return err // an invalid envelope or configuration: nothing was tried
	}

	for _, r := range results {
		switch r.Outcome {
		case smtpsecure.OutcomeDelivered:
			how := "over TLS authenticated by " + r.ServerAuth.String()
			if r.ServerAuth == smtpsecure.ServerAuthNone {
				how = "over TLS, the server not authenticated"
			}
			fmt.Printf("%s: delivered by %s %s (rule: %s)\n", r.Recipient, r.Host, how, r.Source)
		default:
			var de *smtpsecure.DeliveryError
			errors.As(r.Err, &de)
			fmt.Printf("%s: %s failure, status %s\n    %v\n", r.Recipient, r.Outcome, de.Status, r.Err)
			var dg *smtpsecure.DowngradeError
			if errors.As(r.Err, &dg) {
				fmt.Printf("    RFC 8460 result type: %s\n", dg.ReportResultType())
			}
		}
	}

	// What the host without STARTTLS got in the clear: EHLO and QUIT, never
	// an address or a byte of the message.
	fmt.Println()
	for i, s := range strippedMX.Sessions() {
		fmt.Printf("mx.stripped.example, session %d, sent in the clear: %q\n", i+1, s.Plaintext())
	}

	// The TLS-RPT result of each session, by domain.
	fmt.Println()
	reports.print()
	return nil
}

// startMX starts a test SMTP server named name, offering STARTTLS unless
// noTLS is set.
func startMX(name string, noTLS bool) *smtptest.Server {
	srv := smtptest.NewUnstartedServer()
	srv.Hostname = name
	srv.DisableSTARTTLS = noTLS
	srv.Start()
	return srv
}

// keepReports keeps each TLS-RPT result Deliver records (one per session
// that reached STARTTLS, under the policy the session was made under),
// to print them. Deliver records from one goroutine per domain.
type keepReports struct {
	mu  sync.Mutex
	all []tlsrpt.Result
}

func (k *keepReports) Record(ctx context.Context, r tlsrpt.Result) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.all = append(k.all, r)
	return nil
}

func (k *keepReports) print() {
	k.mu.Lock()
	defer k.mu.Unlock()
	sort.Slice(k.all, func(i, j int) bool { return k.all[i].Policy.Domain < k.all[j].Policy.Domain })
	for _, r := range k.all {
		result := r.ResultType
		if result == "" {
			result = "success"
		}
		fmt.Printf("TLS-RPT: %-16s policy %-15s MX %-20s %s\n", r.Policy.Domain, r.Policy.Type, r.ReceivingMXHostname, result)
	}
}

// startResolver serves records on a loopback UDP port as a validating
// resolver would: answers in the signed zones carry the AD bit (DNSSEC
// validated), others do not (unsigned), and names it does not have do not
// exist. It returns its address and a function that stops it.
func startResolver(signed []string, records ...string) (string, func(), error) {
	data := map[string][]dns.RR{}
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			return "", nil, err
		}
		name := strings.ToLower(rr.Header().Name)
		data[name] = append(data[name], rr)
	}
	isSigned := func(name string) bool {
		for _, z := range signed {
			if name == z+"." || strings.HasSuffix(name, "."+z+".") {
				return true
			}
		}
		return false
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		name := strings.ToLower(q.Question[0].Name)
		m := new(dns.Msg)
		m.SetReply(q)
		m.RecursionAvailable = true
		m.AuthenticatedData = isSigned(name)
		rrs, exists := data[name]
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
	return pc.LocalAddr().String(), func() { srv.Shutdown() }, nil
}
