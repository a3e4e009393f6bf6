package smtpsecure

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/smtpsecure/smtpsecure/internal/mxworld"
	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
	"github.com/smtpsecure/smtpsecure/policy"
)

// mailCommands returns the MAIL commands host received, with whether each
// came over TLS.
func mailCommands(w *mxworld.World, host string) (lines []string, allTLS bool) {
	allTLS = true
	for _, s := range w.MX(host).Sessions() {
		for _, c := range s.Commands() {
			if c.Verb == "MAIL" {
				lines = append(lines, c.Line)
				allTLS = allTLS && c.TLS
			}
		}
	}
	return lines, allTLS
}

// REQUIRETLS (RFC 8689): only to hosts the plan allows for it (a
// DNSSEC-validated MX lookup or an MTA-STS policy in mode enforce, and an
// authenticated certificate) that advertise REQUIRETLS after STARTTLS, with
// the REQUIRETLS parameter; otherwise a permanent failure with 5.7.30, and
// never a weaker session.
//
// STD-91, STD-92, STD-93.
func TestDeliverRequireTLS(t *testing.T) {
	w := mxworld.New(t)
	d := worldDeliverer(w, &memRecorder{})
	// The header field must not loosen a REQUIRETLS message (STD-94).
	d.InsecureHonorTLSRequiredNo = true
	tests := []struct {
		domain, host string
		outcome      Outcome
		auth         ServerAuth
		contacted    bool // the host saw a connection
		cause        func(error) bool
	}{
		{"requiretls.example", "mx.requiretls.example", OutcomeDelivered, ServerAuthDANEEE, true, nil},
		{"sts-enforce.example", "mx.sts-enforce.example", OutcomeDelivered, ServerAuthWebPKI, true, nil},
		// DANE-authenticated, but REQUIRETLS is not advertised: nothing of
		// the transaction is sent (STD-91).
		{"dane-ee.example", "mx.dane-ee.example", OutcomePermanent, ServerAuthDANEEE, true, func(err error) bool {
			var xe *ExtensionError
			return errors.As(err, &xe) && xe.Extension == "REQUIRETLS"
		}},
		// REQUIRETLS advertised, but the host was found through DNS nothing
		// authenticates and its certificate is not checked: not even tried
		// (STD-92).
		{"nopolicy.example", "mx.nopolicy.example", OutcomePermanent, ServerAuthNone, false, func(err error) bool {
			return errors.Is(err, ErrRequireTLS)
		}},
		// Allowed, but authentication fails: temporary, as without
		// REQUIRETLS, and never weaker.
		{"dane-mismatch.example", "mx.dane-mismatch.example", OutcomeTemporary, ServerAuthNone, true, func(err error) bool {
			return errors.Is(err, ErrDowngrade)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			rcpt := "u@" + tt.domain
			msg := bytes.NewReader([]byte("TLS-Required: No\r\nSubject: x\r\n\r\nsecret\r\n"))
			res := deliver(t, d, &Envelope{From: "s@sender.example", To: []string{rcpt}, MailOptions: MailOptions{RequireTLS: true}}, msg)
			r := res[0]
			if r.Outcome != tt.outcome || r.Outcome == OutcomeDelivered && (r.ServerAuth != tt.auth || r.Host != tt.host) {
				t.Fatalf("%s at %s (%s), err %v; want %s at %s (%s)", r.Outcome, r.Host, r.ServerAuth, r.Err, tt.outcome, tt.host, tt.auth)
			}
			lines, allTLS := mailCommands(w, tt.host)
			switch {
			case r.Outcome == OutcomeDelivered:
				if len(lines) != 1 || !strings.HasSuffix(lines[0], " REQUIRETLS") || !allTLS {
					t.Errorf("MAIL commands %q (all over TLS: %v), want one with REQUIRETLS, over TLS", lines, allTLS)
				}
			case len(lines) != 0:
				t.Errorf("MAIL commands %q, want none", lines)
			}
			if got := len(w.MX(tt.host).Sessions()) > 0; got != tt.contacted {
				t.Errorf("%s contacted: %v, want %v", tt.host, got, tt.contacted)
			}
			if tt.cause != nil {
				var de *DeliveryError
				if !tt.cause(r.Err) || !errors.As(r.Err, &de) {
					t.Errorf("error %v, not the expected cause", r.Err)
				}
				if r.Outcome == OutcomePermanent && de.Status != CodeRequireTLSUnsupported {
					t.Errorf("status %s, want 5.7.30", de.Status)
				}
			}
		})
	}
}

// "TLS-Required: No" (RFC 8689 §4.2.2), honoured only with
// InsecureHonorTLSRequiredNo: TLS is still required, but a failure of DANE
// or MTA-STS authentication no longer stops the delivery; the failure is
// reported all the same. Without the option, or without the header field,
// nothing changes.
//
// STD-94.
func TestDeliverTLSRequiredNo(t *testing.T) {
	w := mxworld.New(t)
	rec := &memRecorder{}
	honour := worldDeliverer(w, rec)
	honour.InsecureHonorTLSRequiredNo = true
	strict := worldDeliverer(w, rec)
	withHeader := func(t *testing.T, to string) *bytes.Reader {
		_, m := testMessage(t, to)
		b := make([]byte, m.Size())
		m.ReadAt(b, 0)
		return bytes.NewReader(append([]byte("TLS-Required:  no \r\n"), b...))
	}
	tests := []struct {
		name    string
		d       *Deliverer
		domain  string
		header  bool
		outcome Outcome
		auth    ServerAuth
		report  string // the failure recorded for the session, "" for success
	}{
		{"DANE mismatch delivered", honour, "dane-mismatch.example", true, OutcomeDelivered, ServerAuthNone, rfc8460.ValidationFailure},
		{"untrusted under enforce delivered", honour, "sts-untrusted.example", true, OutcomeDelivered, ServerAuthNone, rfc8460.CertificateNotTrusted},
		{"DANE match still authenticated", honour, "dane-ee.example", true, OutcomeDelivered, ServerAuthDANEEE, ""},
		{"no STARTTLS still refused", honour, "dane-nostarttls.example", true, OutcomeTemporary, ServerAuthNone, rfc8460.STARTTLSNotSupported},
		{"not honoured by default", strict, "dane-mismatch.example", true, OutcomeTemporary, ServerAuthNone, rfc8460.ValidationFailure},
		{"no header field", honour, "dane-mismatch.example", false, OutcomeTemporary, ServerAuthNone, rfc8460.ValidationFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcpt := "u@" + tt.domain
			var msg MessageSource
			if tt.header {
				msg = withHeader(t, rcpt)
			} else {
				_, msg = testMessage(t, rcpt)
			}
			res := deliver(t, tt.d, &Envelope{From: "s@sender.example", To: []string{rcpt}}, msg)
			r := res[0]
			if r.Outcome != tt.outcome || r.ServerAuth != tt.auth || r.Outcome == OutcomeDelivered && !r.TLS {
				t.Fatalf("%s (%s, TLS %v), err %v; want %s (%s)", r.Outcome, r.ServerAuth, r.TLS, r.Err, tt.outcome, tt.auth)
			}
			last := r.Attempts[len(r.Attempts)-1].Report
			if last == nil || last.ResultType != tt.report {
				t.Errorf("session report %+v, want result type %q", last, tt.report)
			}
		})
	}
	if l := w.Leaks(); len(l) != 0 {
		t.Errorf("plaintext: %q", l)
	}
}

// tlsRequiredNo reads exactly one header field, in any case, and nothing
// in the body.
func TestTLSRequiredNoHeader(t *testing.T) {
	for in, want := range map[string]bool{
		"TLS-Required: No\r\n\r\nbody":                   true,
		"tls-required:no\r\nSubject: x\r\n\r\n":          true,
		"Subject: x\r\nTLS-Required: NO \r\n\r\n":        true,
		"TLS-Required: Yes\r\n\r\n":                      false,
		"TLS-Required: No\r\nTLS-Required: No\r\n\r\n":   false,
		"Subject: x\r\n\r\nTLS-Required: No\r\n":         false,
		"TLS-Required: No":                               false, // no end of header
		"TLS-Required: No, really\r\n\r\n":               false,
		"Subject: " + strings.Repeat("x", maxHeaderScan): false,
	} {
		if got := tlsRequiredNo(strings.NewReader(in)); got != want {
			t.Errorf("tlsRequiredNo(%.40q) = %v, want %v", in, got, want)
		}
	}
}

// Local rules sit above the published policy: a verify rule with names
// other than the MX host's (Web PKI against a list of names, nothing
// skipped), encrypt (loosens DANE), and the insecure-… levels, the only way
// to plaintext.
func TestDeliverLocalRules(t *testing.T) {
	w := mxworld.New(t)
	rec := &memRecorder{}
	rules, err := policy.ParseRules(strings.NewReader(`
unsigned-host.example verify other.example wrong-name.example
sts-wildcard.example verify other.example
sts-untrusted.example verify mx.sts-untrusted.example other.example
dane-mismatch.example encrypt
nopolicy-nostarttls.example insecure-opportunistic
nopolicy.example insecure-plaintext
`))
	if err != nil {
		t.Fatal(err)
	}
	d := worldDeliverer(w, rec)
	d.Rules = rules
	tests := []struct {
		domain  string
		outcome Outcome
		auth    ServerAuth
		tls     bool
		cause   DowngradeReason
	}{
		{"unsigned-host.example", OutcomeDelivered, ServerAuthWebPKI, true, 0},
		{"sts-wildcard.example", OutcomeTemporary, ServerAuthNone, true, ReasonCertificateHostMismatch},
		{"sts-untrusted.example", OutcomeTemporary, ServerAuthNone, true, ReasonCertificateUntrusted},
		{"dane-mismatch.example", OutcomeDelivered, ServerAuthNone, true, 0},
		{"nopolicy-nostarttls.example", OutcomeDelivered, ServerAuthNone, false, 0},
		{"nopolicy.example", OutcomeDelivered, ServerAuthNone, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			rcpt := "u@" + tt.domain
			_, msg := testMessage(t, rcpt)
			r := deliver(t, d, &Envelope{From: "s@sender.example", To: []string{rcpt}}, msg)[0]
			if r.Outcome != tt.outcome || r.ServerAuth != tt.auth || r.Outcome == OutcomeDelivered && r.TLS != tt.tls {
				t.Fatalf("%s (%s, TLS %v), err %v; want %s (%s, TLS %v)", r.Outcome, r.ServerAuth, r.TLS, r.Err, tt.outcome, tt.auth, tt.tls)
			}
			if r.Outcome == OutcomeDelivered && r.Source != policy.SourceLocal {
				t.Errorf("decided by %s, want the local rule", r.Source)
			}
			var dg *DowngradeError
			if tt.cause != 0 && (!errors.As(r.Err, &dg) || dg.Reason != tt.cause) {
				t.Errorf("error %v, want a *DowngradeError (%s)", r.Err, tt.cause)
			}
		})
	}
	// Plaintext reached exactly the two hosts whose rules say insecure-….
	var hosts []string
	for _, l := range w.Leaks() {
		h, _, _ := strings.Cut(l, ":")
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	slices.Sort(hosts)
	if !slices.Equal(hosts, []string{"mx.nopolicy-nostarttls.example", "mx.nopolicy.example"}) {
		t.Errorf("plaintext reached %q", hosts)
	}
	// The opportunistic session without STARTTLS is reported as such; a
	// local rule that does not follow the domain's policy reports nothing.
	if got := failureTypes(rec.forDomain("nopolicy-nostarttls.example")); !slices.Equal(got, []string{rfc8460.STARTTLSNotSupported}) {
		t.Errorf("reported %q for the opportunistic session", got)
	}
	for _, dom := range []string{"nopolicy.example", "unsigned-host.example", "dane-mismatch.example"} {
		if got := rec.forDomain(dom); len(got) != 0 {
			t.Errorf("%s: reported %+v under a local rule", dom, got)
		}
	}
}

// DialHost dials one host of a plan under its requirement, for a caller
// such as a posture check, and refuses what the plan does not allow.
func TestDialHost(t *testing.T) {
	w := mxworld.New(t)
	rec := &memRecorder{}
	d := worldDeliverer(w, rec)
	ctx, cancel := context.WithTimeout(context.Background(), deliverTimeout)
	defer cancel()
	plan := func(domain string) *policy.Plan {
		pl, err := d.Planner().Plan(ctx, domain)
		if err != nil {
			t.Fatal(err)
		}
		return pl
	}

	ee := plan("dane-ee.example").Usable()[0]
	for _, a := range ee.Addrs { // IPv4 and IPv6
		c, err := d.DialHost(ctx, ee, a)
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		if c.ServerAuth() != ServerAuthDANEEE || c.DANEMatch() == nil {
			t.Errorf("%s: ServerAuth %s", a, c.ServerAuth())
		}
		if err := c.Quit(ctx); err != nil {
			t.Error(err)
		}
	}
	if n := len(rec.forDomain("dane-ee.example")); n != 2 {
		t.Errorf("%d TLS-RPT results for two sessions", n)
	}

	bad := plan("dane-mismatch.example").Usable()[0]
	_, err := d.DialHost(ctx, bad, bad.Addrs[0])
	var dg *DowngradeError
	if !errors.As(err, &dg) || dg.Reason != ReasonDANE || dg.ReportResultType() != rfc8460.ValidationFailure {
		t.Errorf("DialHost to a DANE mismatch: %v", err)
	}

	notListed := plan("sts-notinpolicy.example").Host("mx1.sts-notinpolicy.example")
	if _, err := d.DialHost(ctx, notListed, ee.Addrs[0]); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("DialHost to an excluded host: %v", err)
	}
	if _, err := d.DialHost(ctx, ee, bad.Addrs[0]); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("DialHost to an address not the host's: %v", err)
	}
	if len(w.MX("mx1.sts-notinpolicy.example").Sessions()) != 0 {
		t.Error("the excluded host was contacted")
	}
}
