package dnstest_test

import (
	"fmt"
	"log"

	"github.com/miekg/dns"

	"github.com/smtpsecure/smtpsecure/internal/dnstest"
)

// A server that answers for a signed zone, with one name whose validation
// fails.
func Example() {
	srv, err := dnstest.Start()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	srv.MustAdd(
		"example.org. MX 10 mx.example.org.",
		"mx.example.org. A 192.0.2.1",
		"broken.example.org. A 192.0.2.2",
	)
	srv.SetZone("example.org", dnstest.Rule{Mode: dnstest.Secure})
	srv.SetName("broken.example.org", dnstest.Rule{Mode: dnstest.Bogus})

	for _, name := range []string{"mx.example.org.", "broken.example.org."} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		m.SetEdns0(1232, true)
		r, err := dns.Exchange(m, srv.Addr)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s %s AD=%v answers=%d\n", name, dns.RcodeToString[r.Rcode], r.AuthenticatedData, len(r.Answer))
	}
	fmt.Println("queries:", srv.Count("", dns.TypeA))
	// Output:
	// mx.example.org. NOERROR AD=true answers=1
	// broken.example.org. SERVFAIL AD=false answers=0
	// queries: 2
}
