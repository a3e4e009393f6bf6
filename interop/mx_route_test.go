//go:build interop

package interop

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/dane"
	mtasts "github.com/smtpsecure/smtpsecure/mta_sts"
)

// hostVerifier returns the DANE verifier for h as the RFC 7672 procedure
// gives it through Unbound, for mail to the domain d, or the error for a
// host without usable TLSA records.
func (l *mxLab) hostVerifier(ctx context.Context, h *mxHost, d *mxDomain) (*dane.Verifier, error) {
	r := l.resolver()
	mx, err := r.LookupMX(ctx, d.name)
	if err != nil {
		return nil, err
	}
	ips, err := r.LookupIP(ctx, h.name)
	if err != nil {
		return nil, err
	}
	ht, err := r.LookupHostTLSA(ctx, ips, 25)
	if err != nil {
		return nil, err
	}
	return ht.Verifier(dane.NextHopNames(mx)...)
}

// domainOf returns the first domain whose MX hosts include h.
func (l *mxLab) domainOf(h *mxHost) *mxDomain {
	for _, d := range l.domains {
		if slices.Contains(d.mx, h.name) {
			return d
		}
	}
	return nil
}

// testMXLabCertificates: the chain each MX host presents after STARTTLS,
// judged by the rules that apply to it: the DANE verifier from its TLSA
// records (match, mismatch, no usable record), and for the hosts in the
// unsigned zone the MTA-STS certificate check.
//
// STD-53, STD-73, STD-74, STD-75, STD-78
func testMXLabCertificates(t *testing.T, l *mxLab) {
	for _, h := range l.hosts {
		t.Run(h.name, func(t *testing.T) {
			t.Parallel()
			ctx := mxContext(t)
			chain, err := chainOf(ctx, h)
			if err != nil {
				t.Fatal(err)
			}
			// Every MX host has its own lab-CA certificate for its name.
			leaf := chain[0]
			if !slices.Equal(leaf.DNSNames, []string{h.name}) || len(chain) != 2 {
				t.Errorf("%s presents %d certificates, the first for %q; want leaf + CA, the leaf for [%s]", h.name, len(chain), leaf.DNSNames, h.name)
			}
			opts := x509.VerifyOptions{DNSName: h.name, Roots: l.caPool, Intermediates: x509.NewCertPool()}
			if _, err := leaf.Verify(opts); err != nil {
				t.Errorf("%s's certificate does not verify under the lab CA: %v", h.name, err)
			}
			d := l.domainOf(h)
			v, verr := l.hostVerifier(ctx, h, d)
			switch h.key {
			case "MX_DANE":
				if verr != nil {
					t.Fatalf("verifier for %s: %v", h.name, verr)
				}
				m, err := v.Verify(chain)
				if err != nil {
					t.Fatalf("DANE verification of %s: %v", h.name, err)
				}
				if m.Record.Usage != dane.DANEEE || m.Depth != 0 || m.Record.String() != h.tlsa[0] {
					t.Errorf("DANE match at %s = %v at depth %d, want DANE-EE %s on the leaf", h.name, m.Record, m.Depth, h.tlsa[0])
				}
			case "MX_DANE_BAD":
				if verr != nil {
					t.Fatalf("verifier for %s: %v", h.name, verr)
				}
				_, err := v.Verify(chain)
				var ve *dane.VerifyError
				if !errors.As(err, &ve) || !errors.Is(err, dane.ErrNoMatch) || ve.ReportResultType() != "validation-failure" {
					t.Errorf("DANE verification of %s = %v, want a *VerifyError for ErrNoMatch (validation-failure)", h.name, err)
				}
			case "MX_PKIX":
				// TLS required, no authentication: there is no verifier.
				if !errors.Is(verr, dane.ErrDANERequired) {
					t.Errorf("verifier for %s = %v, want ErrDANERequired (only unusable records)", h.name, verr)
				}
			default:
				if !errors.Is(verr, dane.ErrDANERequired) {
					t.Errorf("verifier for %s (unsigned zone) = %v, want ErrDANERequired (no DANE)", h.name, verr)
				}
				if err := mtasts.VerifyMXCertificate(h.name, chain, l.caPool, time.Now()); err != nil {
					t.Errorf("MTA-STS check of %s's certificate: %v", h.name, err)
				}
				other := l.host(l.domain("STS_ENFORCE_DOMAIN").mx[0])
				if other == h {
					other = l.host(l.domain("NO_POLICY_DOMAIN").mx[0])
				}
				err := mtasts.VerifyMXCertificate(other.name, chain, l.caPool, time.Now())
				var ce *mtasts.CertificateError
				if !errors.As(err, &ce) || ce.ReportResultType() != "certificate-host-mismatch" {
					t.Errorf("MTA-STS check of %s's certificate for %s = %v, want certificate-host-mismatch", h.name, other.name, err)
				}
			}
		})
	}
}

// testMXLabRoutes: for each domain the lab expects mail to be delivered to,
// a reference client (net/smtp) that authenticates the expected MX host the
// expected way delivers a message, and it arrives in the domain's Maildir,
// received by that host over TLS. For the failover domain the first MX is
// refused by DANE first. The refused domain gets nothing here: its only MX is
// not in its enforce policy (checked by the MTA-STS test).
func testMXLabRoutes(t *testing.T, l *mxLab) {
	for _, d := range l.domains {
		if !d.expect.delivered {
			continue
		}
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			ctx := mxContext(t)
			h := l.host(d.expect.host)
			for _, first := range d.mx {
				if first == h.name {
					break
				}
				// An MX before the expected one must fail its DANE check.
				fh := l.host(first)
				v, err := l.hostVerifier(ctx, fh, d)
				if err != nil {
					t.Fatalf("verifier for %s: %v", fh.name, err)
				}
				if s, err := dialMX(ctx, fh, v.TLSConfig(nil)); err == nil {
					s.close()
					t.Fatalf("%s, MX before %s for %s, passed DANE verification", fh.name, h.name, d.name)
				} else if !errors.Is(err, dane.ErrNoMatch) {
					t.Errorf("STARTTLS with %s under DANE: %v, want ErrNoMatch", fh.name, err)
				}
			}
			var cfg *tls.Config
			switch d.expect.tls {
			case "dane-ee":
				v, err := l.hostVerifier(ctx, h, d)
				if err != nil {
					t.Fatalf("verifier for %s: %v", h.name, err)
				}
				cfg = v.TLSConfig(&tls.Config{MinVersion: tls.VersionTLS12})
			case "webpki":
				cfg = &tls.Config{ServerName: h.name, RootCAs: l.caPool, MinVersion: tls.VersionTLS12}
			case "tls":
				cfg = &tls.Config{ServerName: h.name, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
			default:
				t.Fatalf("%s_EXPECT: unknown TLS authentication %q", d.key, d.expect.tls)
			}
			rcpt := "postmaster@" + d.name
			if d.key == "REPORTS_DOMAIN" {
				rcpt = l.tlsrptAddress
			}
			id, msg := mxMessage(t, "sender@client.interop.smtpsecure.test", rcpt)
			s, err := dialMX(ctx, h, cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = s.send("sender@client.interop.smtpsecure.test", rcpt, msg)
			s.close()
			if err != nil {
				t.Fatalf("delivery to %s at %s: %v", rcpt, h.name, err)
			}
			md := &maildir{dir: d.maildir}
			var files []string
			poll(t, fmt.Sprintf("<%s> in %s", id, d.maildir), mxCaseTimeout/2, func() (bool, error) {
				var err error
				files, err = md.find(id)
				return len(files) > 0, err
			})
			b, err := os.ReadFile(files[0])
			if err != nil {
				t.Fatal(err)
			}
			dl, err := parseDelivery(files[0], b)
			if err != nil {
				t.Fatal(err)
			}
			// RFC 3848 and RFC 6531 protocol types: ESMTPS, UTF8SMTPS (net/smtp
			// asks for SMTPUTF8 where it is offered).
			by := "by " + h.name + " (Postfix) with "
			if !strings.Contains(dl.received, by+"ESMTPS ") && !strings.Contains(dl.received, by+"UTF8SMTPS ") || !strings.EqualFold(dl.deliveredTo, rcpt) {
				t.Errorf("%s: delivered to %s, received as %q; want by %s over TLS, for %s", files[0], dl.deliveredTo, dl.received, h.name, rcpt)
			}
		})
	}
}
