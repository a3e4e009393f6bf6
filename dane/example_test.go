package dane_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/internal/dnstest"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

// This example runs the whole DANE procedure for mail to example.com
// against an in-process validating resolver: MX lookup, address lookup,
// TLSA lookup and decision, then verification of the server's certificate.
// In production the Resolver points at a validating resolver on the same
// host, such as Unbound on 127.0.0.1:53.
func Example() {
	// The mail server's certificate, and the TLSA record its operator
	// publishes for it: DANE-EE(3) SPKI(1) SHA2-256(1).
	leaf, err := testpki.SelfSigned(testpki.LeafOptions{DNSNames: []string{"mx.example.com"}})
	if err != nil {
		log.Fatal(err)
	}
	record, err := dane.NewTLSA(leaf.Cert, dane.DANEEE, dane.SelectorSPKI, dane.MatchSHA256)
	if err != nil {
		log.Fatal(err)
	}

	// A validating resolver that found the zone example.com signed.
	srv, err := dnstest.Start()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	srv.MustAdd(
		"example.com. MX 10 mx.example.com.",
		"mx.example.com. A 192.0.2.25",
		"_25._tcp.mx.example.com. TLSA "+record.String(),
	)
	srv.SetZone("example.com", dnstest.Rule{Mode: dnstest.Secure})

	ctx := context.Background()
	r := &dane.Resolver{Servers: []string{srv.Addr}} // a loopback upstream: its AD bit is trusted

	mx, err := r.LookupMX(ctx, "example.com")
	if err != nil {
		log.Fatal(err) // defer the delivery: a failed lookup is never "no MX"
	}
	fmt.Printf("MX of %s (%v): %s\n", mx.Name, mx.Status, mx.MX[0].Host)

	addrs, err := r.LookupIP(ctx, mx.MX[0].Host)
	if err != nil {
		log.Fatal(err)
	}
	host, err := r.LookupHostTLSA(ctx, addrs, 25)
	if err != nil {
		log.Fatal(err) // host unusable: try the next MX host or defer
	}
	fmt.Printf("%s: %v, TLSA base domain %s\n", host.Host, host.Decision, host.BaseDomain)

	v, err := host.Verifier(dane.NextHopNames(mx)...)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("SNI:", v.ServerName())

	// A TLS client would use v.TLSConfig(base), or v.VerifyConnection as
	// its hook. Here the chain the server would send is checked directly.
	m, err := v.Verify([]*x509.Certificate{leaf.Cert})
	if err != nil {
		log.Fatal(err) // a downgrade or a misconfiguration: do not deliver
	}
	fmt.Println("authenticated by", m.Record.Usage, m.Record.Selector, m.Record.MatchingType)

	// Output:
	// MX of example.com (secure): mx.example.com
	// mx.example.com: DANE authentication required, TLSA base domain mx.example.com
	// SNI: mx.example.com
	// authenticated by DANE-EE(3) SPKI(1) SHA2-256(1)
}

// A Resolver for production use: a validating resolver on the same host.
// A remote validating resolver is trusted only when listed in
// TrustedServers, a statement that the network path to it is secure.
func ExampleResolver() {
	r := &dane.Resolver{
		Servers:        []string{"127.0.0.1:53", "10.0.0.53"},
		TrustedServers: []string{"10.0.0.53"}, // reached over a private, authenticated link
	}
	_ = r
}

// Classifying records as an SMTP client does (RFC 7672 §3.1.3).
func ExampleParseTLSA() {
	for _, s := range []string{
		"_25._tcp.mx.example.com. IN TLSA 3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6",
		"2 0 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6",
		"1 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6",
		"3 1 1 0c72ac70",
	} {
		r, err := dane.ParseTLSA(s)
		if err != nil {
			log.Fatal(err)
		}
		if r.Usable() {
			fmt.Printf("%v %v %v: usable\n", r.Usage, r.Selector, r.MatchingType)
		} else {
			fmt.Printf("%v %v %v: unusable: %s\n", r.Usage, r.Selector, r.MatchingType, r.UnusableReason())
		}
	}
	// Output:
	// DANE-EE(3) SPKI(1) SHA2-256(1): usable
	// DANE-TA(2) Cert(0) SHA2-256(1): usable
	// PKIX-EE(1) SPKI(1) SHA2-256(1): unusable: usage PKIX-EE(1) is not used for SMTP (RFC 7672 §3.1.3)
	// DANE-EE(3) SPKI(1) SHA2-256(1): unusable: SHA2-256(1) data is 4 octets, not 32
}

// A verifier's TLS configuration replaces Web PKI verification with DANE
// and sends the TLSA base domain in SNI; the caller's configuration is
// copied, not changed.
func ExampleVerifier_TLSConfig() {
	leaf, err := testpki.SelfSigned(testpki.LeafOptions{DNSNames: []string{"mx.example.com"}})
	if err != nil {
		log.Fatal(err)
	}
	record, _ := dane.NewTLSA(leaf.Cert, dane.DANEEE, dane.SelectorSPKI, dane.MatchSHA256)
	v, err := dane.NewVerifier([]dane.TLSA{record}, "mx.example.com")
	if err != nil {
		log.Fatal(err)
	}
	base := &tls.Config{MinVersion: tls.VersionTLS12}
	cfg := v.TLSConfig(base)
	fmt.Println(cfg.ServerName, cfg.InsecureSkipVerify, base.InsecureSkipVerify)
	// Output: mx.example.com true false
}

// Validating mode: the Resolver checks DNSSEC signatures itself, from the
// root zone's built-in trust anchors, through whatever resolvers
// /etc/resolv.conf names, validating or not. Share the Validator: it
// caches what it validated.
func ExampleValidator() {
	v := &dane.Validator{} // the root trust anchors, the default cache size
	r := &dane.Resolver{Validator: v}

	ctx := context.Background()
	mx, err := r.LookupMX(ctx, "example.com")
	if err != nil {
		log.Print(err) // bogus or failed: defer the delivery
		return
	}
	fmt.Println(mx.Status) // secure when the chain from the root validates
}

// The built-in trust anchors are the DS records of the root zone's
// key-signing keys.
func ExampleRootTrustAnchors() {
	for _, rr := range dane.RootTrustAnchors() {
		fmt.Println(rr.(*dns.DS).KeyTag)
	}
	// Output:
	// 20326
	// 38696
}

// Reading IANA's root-anchors.xml (RFC 7958) instead of relying on the
// built-in anchors, for example after a root key rollover.
func ExampleParseTrustAnchorsXML() {
	file := `<?xml version="1.0" encoding="UTF-8"?>
<TrustAnchor id="380DC50D-484E-40D0-A3AE-68F2B18F61C7" source="http://data.iana.org/root-anchors/root-anchors.xml">
<Zone>.</Zone>
<KeyDigest id="Klajeyz" validFrom="2017-02-02T00:00:00+00:00">
<KeyTag>20326</KeyTag>
<Algorithm>8</Algorithm>
<DigestType>2</DigestType>
<Digest>E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D</Digest>
</KeyDigest>
</TrustAnchor>`
	anchors, err := dane.ParseTrustAnchorsXML(strings.NewReader(file), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		log.Fatal(err)
	}
	r := &dane.Resolver{Validator: &dane.Validator{TrustAnchors: anchors}}
	_ = r
	fmt.Println(anchors[0])
	// Output: .	172800	IN	DS	20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D
}
