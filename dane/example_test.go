package dane_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log"
	"math/big"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/smtpsecure/smtpsecure/dane"
)

// selfSigned makes a key and a self-signed certificate for name, as a mail
// server operator might use with a DANE-EE record.
func selfSigned(name string) *x509.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		log.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		log.Fatal(err)
	}
	return cert
}

// A server's operator publishes a DANE-EE record for its certificate; a
// client holding that record (from a DNSSEC-validated lookup, see
// Resolver.LookupHostTLSA) authenticates the chain the server presents. A
// DANE-EE(3) record matches the key itself: the certificate's names and
// dates are not checked, so a self-signed certificate is fine.
func Example() {
	cert := selfSigned("mx.example.com")
	record, err := dane.NewTLSA(cert, dane.DANEEE, dane.SelectorSPKI, dane.MatchSHA256)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("publish: _25._tcp.mx.example.com. IN TLSA", record.Usage, record.Selector, record.MatchingType, "<digest>")

	v, err := dane.NewVerifier([]dane.TLSA{record}, "mx.example.com")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("SNI:", v.ServerName())
	m, err := v.Verify([]*x509.Certificate{cert})
	if err != nil {
		log.Fatal(err) // a downgrade or a misconfiguration: do not deliver
	}
	fmt.Println("authenticated by", m.Record.Usage, m.Record.Selector, m.Record.MatchingType)

	// Another key does not match: a *VerifyError with its RFC 8460 result type.
	_, err = v.Verify([]*x509.Certificate{selfSigned("mx.example.com")})
	var ve *dane.VerifyError
	if errors.As(err, &ve) {
		fmt.Println("other key:", errors.Is(err, dane.ErrNoMatch), ve.ReportResultType())
	}
	// Output:
	// publish: _25._tcp.mx.example.com. IN TLSA DANE-EE(3) SPKI(1) SHA2-256(1) <digest>
	// SNI: mx.example.com
	// authenticated by DANE-EE(3) SPKI(1) SHA2-256(1)
	// other key: true validation-failure
}

// The RFC 7672 procedure for one MX host: its addresses, then its TLSA
// records, each with its DNSSEC status, and the decision they make. The
// Resolver asks a validating resolver on the same host (its AD bit is
// trusted on loopback), or validates itself with a Validator.
func ExampleResolver_LookupHostTLSA() {
	r := &dane.Resolver{Servers: []string{"127.0.0.1:53"}}
	ctx := context.Background()

	mx, err := r.LookupMX(ctx, "example.com")
	if err != nil {
		log.Fatal(err) // defer the delivery: a failed lookup is never "no MX"
	}
	for _, h := range mx.MX {
		addrs, err := r.LookupIP(ctx, h.Host)
		if err != nil {
			continue // this host is unusable: try the next one
		}
		host, err := r.LookupHostTLSA(ctx, addrs, 25)
		if err != nil {
			continue // TLSA lookup failed or bogus: never "no DANE"
		}
		switch host.Decision {
		case dane.DANERequired:
			v, _ := host.Verifier(dane.NextHopNames(mx)...)
			fmt.Println(h.Host, "DANE, SNI", v.ServerName()) // use it as smtpsecure.Dialer.DANE
		case dane.TLSRequired:
			fmt.Println(h.Host, "TLS required, not authenticated")
		case dane.NoDANE:
			fmt.Println(h.Host, "no DANE: other policies apply")
		}
	}
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
	record, _ := dane.NewTLSA(selfSigned("mx.example.com"), dane.DANEEE, dane.SelectorSPKI, dane.MatchSHA256)
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
