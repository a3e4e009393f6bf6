//go:build interop

package interop

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/smtpsecure/smtpsecure"
	"github.com/smtpsecure/smtpsecure/dane"
)

// daneCase is one session authenticated by DANE alone: the Dialer trusts no
// CA, and the dane Verifier built from Unbound's answers decides.
type daneCase struct {
	name   string
	domain string // the recipient domain whose MX is looked up; "" to start at host
	host   string // the host, when domain is ""
	port   int
	ipv6   bool // connect to the host's IPv6 address instead of its IPv4 one
	user   *user
	auth   func(user) smtpsecure.Auth
	mech   string

	// For a failing case: the downgrade reason, the dane sentinel behind
	// it (nil when the failure is not DANE's), and the RFC 8460 result type.
	reason     smtpsecure.DowngradeReason
	sentinel   error
	resultType string
}

// testDANE runs full sessions with Dialer.DANE set to the dane verifier,
// against the real Postfix certificate: DANE-EE and DANE-TA succeed and
// deliver (also with AUTH, also through CNAMEs; the Client reports DANE as
// how the server was authenticated), and every mismatch fails with a
// DowngradeError whose cause is the dane error.
//
// STD-2, STD-10, STD-14, STD-74, STD-75, STD-78, STD-79, STD-80, STD-81,
// STD-83, STD-87, STD-97
func testDANE(t *testing.T, l *lab) {
	plain := func(u user) smtpsecure.Auth { return smtpsecure.PlainAuth("", u.name, u.pass) }
	login := func(u user) smtpsecure.Auth { return smtpsecure.LoginAuth(u.name, u.pass) }
	scram := func(u user) smtpsecure.Auth { return smtpsecure.ScramAuth(u.name, u.pass) }
	starttls, implicit, cyrus := l.starttls.port(), l.implicit.port(), l.cyrus.port()
	cases := []daneCase{
		{name: "DANE-EE/STARTTLS", domain: l.zone, port: starttls},
		{name: "DANE-EE/Implicit/AUTH", domain: l.zone, port: implicit, user: &l.alice, auth: plain, mech: "PLAIN"},
		{name: "DANE-TA/STARTTLS/AUTH", domain: l.daneTA, port: starttls, user: &l.alice, auth: plain, mech: "PLAIN"},
		{name: "DANE-TA/Implicit/AUTH", domain: l.daneTA, port: implicit, user: &l.bob, auth: login, mech: "LOGIN"},
		{name: "DANE-TA/Cyrus/SCRAM", domain: l.daneTA, port: cyrus, user: &l.bob, auth: scram, mech: "SCRAM-SHA-256"},
		{name: "CNAME/TLSAAtTarget", host: l.cname, port: starttls},
		{name: "CNAME/TLSAAtAlias", host: l.cnameOwn, port: starttls, user: &l.bob, auth: plain, mech: "PLAIN"},

		{name: "DANE-EE/NoMatch/STARTTLS", domain: l.daneEEBad, port: starttls,
			reason: smtpsecure.ReasonDANE, sentinel: dane.ErrNoMatch, resultType: "validation-failure"},
		{name: "DANE-EE/NoMatch/Implicit", domain: l.daneEEBad, port: implicit,
			reason: smtpsecure.ReasonDANE, sentinel: dane.ErrNoMatch, resultType: "validation-failure"},
		{name: "DANE-TA/NoMatch/STARTTLS", domain: l.daneTABad, port: starttls,
			reason: smtpsecure.ReasonDANE, sentinel: dane.ErrNoMatch, resultType: "validation-failure"},
		{name: "DANE-EE/OtherKey", domain: l.zone, port: l.wrongname.port(),
			reason: smtpsecure.ReasonDANE, sentinel: dane.ErrNoMatch, resultType: "validation-failure"},
		{name: "DANE-TA/OtherName", domain: l.daneTA, port: l.wrongname.port(),
			reason: smtpsecure.ReasonDANE, sentinel: dane.ErrNameMismatch, resultType: "certificate-host-mismatch"},
		{name: "NoSTARTTLS", domain: l.zone, port: l.notls.port(),
			reason: smtpsecure.ReasonSTARTTLSNotOffered, resultType: "starttls-not-supported"},
	}
	if l.ipv6 {
		cases = append(cases, daneCase{name: "DANE-EE/IPv6", domain: l.zone, port: starttls, ipv6: true})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l.daneSession(t, tc)
		})
	}
}

func (l *lab) daneSession(t *testing.T, tc daneCase) {
	ctx := caseContext(t)
	h, addrs, nextHop := l.lookupHostForDANE(ctx, t, tc.domain, tc.host, tc.port)
	v, err := h.Verifier(nextHop...)
	if err != nil {
		t.Fatalf("Verifier: %v", err)
	}
	var ip netip.Addr
	for _, a := range addrs.Addrs {
		if a.Is6() == tc.ipv6 {
			ip = a
			break
		}
	}
	if !ip.IsValid() {
		t.Fatalf("%s has no address of the wanted family: %v", h.Host, addrs.Addrs)
	}
	tg := l.targetFor(ip.String(), tc.port)
	// DANE alone authenticates the server: no CA is trusted, and SNI is
	// the TLSA base domain.
	prepare := func(d *smtpsecure.Dialer) {
		d.TLSConfig = nil
		d.DANE = v
	}

	if tc.reason == 0 {
		to := []string{"dane@" + l.zone}
		if tc.user != nil {
			to = []string{"dane@" + l.relayDomain}
		}
		l.submit(t, submission{
			tg: tg, host: h.Host, user: tc.user, auth: tc.auth, mech: tc.mech, to: to,
			body:    []byte("Authenticated by DANE against " + h.Owner + ".\r\n"),
			prepare: prepare, sni: v.ServerName(), dane: true,
		})
		return
	}

	d, ts := l.dialer(t, tg, h.Host)
	prepare(d)
	d.Auth = smtpsecure.PlainAuth("", l.alice.name, l.alice.pass)
	msg := newMessage(t, l.alice.name, []string{"dane-refused@" + l.relayDomain}, []byte("must never be sent\r\n"))
	offset := l.logSize(t)
	_, err = d.Send(ctx, &smtpsecure.Envelope{From: msg.from, To: msg.to}, bytes.NewReader(msg.raw))
	dg := downgrade(t, err)
	if dg.Reason != tc.reason {
		t.Errorf("Reason = %v, want %v (%v)", dg.Reason, tc.reason, err)
	}
	if got := dg.ReportResultType(); got != tc.resultType {
		t.Errorf("DowngradeError.ReportResultType() = %q, want %q (%v)", got, tc.resultType, err)
	}
	if tc.sentinel != nil {
		var ve *dane.VerifyError
		if !errors.As(err, &ve) {
			t.Fatalf("the *dane.VerifyError is not reachable with errors.As from %v", err)
		}
		if !errors.Is(err, tc.sentinel) {
			t.Errorf("errors.Is(err, %v) is false for %v", tc.sentinel, err)
		}
		if got := ve.ReportResultType(); got != tc.resultType {
			t.Errorf("VerifyError.ReportResultType() = %q, want %q", got, tc.resultType)
		}
		if ve.Host != v.ServerName() || ve.Owner != h.Owner || len(ve.Records) == 0 {
			t.Errorf("VerifyError names host %q, owner %q, %d records; want %s, %s and the records", ve.Host, ve.Owner, len(ve.Records), v.ServerName(), h.Owner)
		}
	}
	conn := ts.only(t)
	want := map[string]string{"auth": "", "mail": "", "rcpt": ""}
	if tg.implicit {
		want["ehlo"] = ""
	} else {
		want["ehlo"] = "1" // no EHLO after a failed handshake
	}
	if tc.reason != smtpsecure.ReasonSTARTTLSNotOffered {
		checkSNI(t, conn, v.ServerName())
	}
	s := l.waitSession(t, tg.listener, conn, offset)
	expectCounts(t, s, want)
}
