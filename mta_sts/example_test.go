package mtasts_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"

	mtasts "github.com/smtpsecure/smtpsecure/mta_sts"
)

func ExampleParsePolicy() {
	body := "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmx: *.backup.example.net\r\nmax_age: 604800\r\n"
	p, err := mtasts.ParsePolicy([]byte(body))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("mode:", p.Mode)
	fmt.Println("max_age:", p.MaxAge)
	for _, host := range []string{"mx1.example.com", "MX1.Example.COM.", "b1.backup.example.net", "backup.example.net", "evil.example"} {
		fmt.Printf("%-22s %v\n", host, p.Match(host))
	}
	// Output:
	// mode: enforce
	// max_age: 168h0m0s
	// mx1.example.com        true
	// MX1.Example.COM.       true
	// b1.backup.example.net  true
	// backup.example.net     false
	// evil.example           false
}

func ExampleParsePolicy_invalid() {
	_, err := mtasts.ParsePolicy([]byte("version: STSv1\nmode: enforce\nmax_age: 86400\n"))
	fmt.Println(err)
	fmt.Println(mtasts.ResultType(err))
	// Output:
	// invalid MTA-STS policy: no mx field in mode enforce
	// sts-policy-invalid
}

func ExampleParseRecord() {
	rec, err := mtasts.ParseRecord("v=STSv1; id=20240131T120000")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rec.ID)
	_, err = mtasts.ParseRecord("v=STSv1; id=20240131;;")
	fmt.Println(err)
	// Output:
	// 20240131T120000
	// invalid MTA-STS TXT record: empty field between two ";" (only one trailing ";" is allowed)
}

func ExamplePolicyURL() {
	u, _ := mtasts.PolicyURL("Bücher.example")
	fmt.Println(u)
	// Output: https://mta-sts.xn--bcher-kva.example/.well-known/mta-sts.txt
}

// noRecords is a TXTResolver for which no name exists.
type noRecords struct{}

func (noRecords) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// Get is called once per recipient domain during MX delivery.
func ExampleClient_Get() {
	c := &mtasts.Client{Resolver: noRecords{}} // nil Resolver: net.DefaultResolver
	res, err := c.Get(context.Background(), "example.org")
	if err != nil {
		log.Fatal(err) // not a host name, or the context ended
	}
	switch {
	case res.Enforced():
		fmt.Println("deliver only to MX hosts matching", res.Policy.MX)
	case res.Policy == nil:
		fmt.Printf("no MTA-STS policy (%s), failure to report: %q\n", res.PolicyType(), res.ReportResultType())
	}
	// Output: no MTA-STS policy (no-policy-found), failure to report: ""
}

// A long-running sender keeps policies in a directory and renews them in
// the background.
func ExampleClient_Refresh() {
	store, err := mtasts.NewFileStore(filepath.Join(os.TempDir(), "mta-sts-cache"))
	if err != nil {
		log.Fatal(err)
	}
	c := &mtasts.Client{Store: store}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go c.Refresh(ctx)

	res, err := c.Get(ctx, "example.com")
	if err != nil {
		log.Fatal(err)
	}
	for _, host := range []string{"mx1.example.com", "mx2.example.com"} {
		if res.Enforced() && !res.Policy.Match(host) {
			continue // never deliver to an MX host the policy does not list
		}
		// Require STARTTLS and a certificate valid for host
		// (VerifyMXCertificate gives the RFC 8460 result type).
		fmt.Println("try", host)
	}
}
