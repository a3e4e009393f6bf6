package bench

import (
	"bytes"
	"context"
	"crypto/x509"
	"net"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure"
	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/internal/dnstest"
)

// The recipient domain of the MX delivery benchmarks: a DNSSEC-signed zone
// whose MX host publishes a DANE-EE TLSA record.
const (
	mxDomain = "example.test"
	mxHost   = "mx.example.test"
	mxAddr   = "192.0.2.25"
)

// mxResolver starts, in the child, the DNS server of mxDomain.
func mxResolver(cert *x509.Certificate) (*dnstest.Server, error) {
	tlsa, err := dane.NewTLSA(cert, dane.DANEEE, dane.SelectorSPKI, dane.MatchSHA256)
	if err != nil {
		return nil, err
	}
	srv, err := dnstest.Start()
	if err != nil {
		return nil, err
	}
	srv.SetZone(mxDomain, dnstest.Rule{Mode: dnstest.Secure})
	err = srv.Add(
		mxDomain+". 300 IN MX 10 "+mxHost+".",
		mxHost+". 300 IN A "+mxAddr,
		"_25._tcp."+mxHost+". 300 IN TLSA "+tlsa.String(),
	)
	if err != nil {
		srv.Close()
		return nil, err
	}
	return srv, nil
}

// mxDeliverer returns a Deliverer for mxDomain whose connections to the MX
// host go to target, with or without an MXPool (closed when b ends).
func mxDeliverer(b *testing.B, target string, pooled bool) *smtpsecure.Deliverer {
	d := &smtpsecure.Deliverer{
		Resolver: &dane.Resolver{Servers: []string{sinks.Resolver}},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != net.JoinHostPort(mxAddr, "25") {
				return nil, &net.OpError{Op: "dial", Net: network}
			}
			var nd net.Dialer
			return nd.DialContext(ctx, network, target)
		},
		LocalName: "bench.example.org",
	}
	if pooled {
		p := &smtpsecure.MXPool{IdleTimeout: time.Minute}
		d.Pool = p
		b.Cleanup(func() { p.Close(context.Background()) })
	}
	return d
}

// deliverOnce delivers the message to one recipient of mxDomain.
func deliverOnce(b *testing.B, d *smtpsecure.Deliverer) {
	env := &smtpsecure.Envelope{From: from, To: []string{"user@" + mxDomain}}
	res, err := d.Deliver(context.Background(), env, bytes.NewReader(message))
	if err != nil {
		b.Fatal(err)
	}
	if r := res[0]; r.Outcome != smtpsecure.OutcomeDelivered || r.ServerAuth != smtpsecure.ServerAuthDANEEE {
		b.Fatalf("%s (%s): %v", r.Outcome, r.ServerAuth, r.Err)
	}
}

// BenchmarkDeliver delivers to a DANE domain's MX host, one message per
// Deliver call, with a new session per message and with an MXPool,
// straight to the server: CPU time and allocations per message, the plan
// (DNS lookups of MX, address, TLSA and MTA-STS records) included.
func BenchmarkDeliver(b *testing.B) {
	for _, pooled := range []bool{false, true} {
		b.Run(map[bool]string{false: "new-session", true: "MXPool"}[pooled], func(b *testing.B) {
			d := mxDeliverer(b, sinks.MX, pooled)
			deliverOnce(b, d) // the pool's session made before the clock starts
			m := start(b, nil)
			for i := 0; i < b.N; i++ {
				deliverOnce(b, d)
			}
			m.stop()
		})
	}
}

// BenchmarkDeliverRoundTrips is BenchmarkDeliver through the proxy: SMTP
// round trips per message, measured (DNS lookups do not go through it).
func BenchmarkDeliverRoundTrips(b *testing.B) {
	for _, pooled := range []bool{false, true} {
		b.Run(map[bool]string{false: "new-session", true: "MXPool"}[pooled], func(b *testing.B) {
			px := withProxy(b, sinks.MX, sessionRTT)
			d := mxDeliverer(b, px.Addr(), pooled)
			deliverOnce(b, d)
			m := start(b, px)
			for i := 0; i < b.N; i++ {
				deliverOnce(b, d)
			}
			m.stop()
		})
	}
}
