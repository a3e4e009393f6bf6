package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/smtpsecure/smtpsecure/internal/mxworld"
	internalsmtptest "github.com/smtpsecure/smtpsecure/internal/smtptest"
	"github.com/smtpsecure/smtpsecure/tlsrpt"
)

// The script commands that look at what deliver did in the MX world: the
// messages an MX host accepted, their DKIM signatures, and the TLS-RPT
// results a --tlsrpt-store directory holds.

// cmdMXMessages prints the messages an MX host of the world accepted whose
// data contains a marker (the world is shared by all scripts), as
// smtpmessages does.
func cmdMXMessages(ts *testscript.TestScript, neg bool, args []string, w *mxworld.World) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: mxmessages HOST MARKER")
	}
	out := ts.Stdout()
	for i, m := range mxMessages(ts, w, args[0], args[1]) {
		var params []string
		for k, v := range m.MailParams {
			params = append(params, k+"="+v)
		}
		for i, rp := range m.RcptParams {
			for k, v := range rp {
				params = append(params, fmt.Sprintf("rcpt%d:%s=%s", i+1, k, v))
			}
		}
		slices.Sort(params)
		fmt.Fprintf(out, "message %d\nfrom: %s\nto: %s\ntls: %v\nparams: %s\n--\n%s\n", i+1, m.From, strings.Join(m.To, " "), m.TLS,
			strings.Join(params, " "), strings.ReplaceAll(string(m.Data), "\r\n", "\n"))
	}
}

// worldMessage is a message an MX host of the world accepted.
type worldMessage = internalsmtptest.Message

// mxMessages returns the messages an MX host of the world accepted whose
// data contains marker.
func mxMessages(ts *testscript.TestScript, w *mxworld.World, host, marker string) []*worldMessage {
	srv := w.MX(host)
	if srv == nil {
		ts.Fatalf("no MX host %q in the world", host)
	}
	var out []*worldMessage
	for _, m := range srv.Messages() {
		if strings.Contains(string(m.Data), marker) {
			out = append(out, m)
		}
	}
	return out
}

// cmdMXDKIM verifies the DKIM signatures of the messages an MX host of the
// world accepted whose data contains a marker, as the receiver would, with
// go-msgauth's verifier and the public key of a private key file published
// at SELECTOR._domainkey.DOMAIN, and prints one line per signature:
//
//	mxdkim mx.dane-ee.example MARKER example.org sel key.pem
//	dkim: pass d=example.org s=sel a=ed25519-sha256 h=From:Subject:…
func cmdMXDKIM(ts *testscript.TestScript, neg bool, args []string, w *mxworld.World) {
	if neg || len(args) != 5 {
		ts.Fatalf("usage: mxdkim HOST MARKER DOMAIN SELECTOR KEYFILE")
	}
	pemData, err := os.ReadFile(ts.MkAbs(args[4]))
	ts.Check(err)
	key, err := parseDKIMKey(pemData)
	ts.Check(err)
	record := "v=DKIM1; k=rsa; p="
	if _, ok := key.Public().(ed25519.PublicKey); ok {
		record = "v=DKIM1; k=ed25519; p="
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	ts.Check(err)
	if epk, ok := key.Public().(ed25519.PublicKey); ok {
		pub = epk
	}
	record += base64.StdEncoding.EncodeToString(pub)
	msgs := mxMessages(ts, w, args[0], args[1])
	if len(msgs) == 0 {
		ts.Fatalf("%s accepted no message with %q", args[0], args[1])
	}
	for _, m := range msgs {
		vs, err := dkim.VerifyWithOptions(bytes.NewReader(m.Data), &dkim.VerifyOptions{
			LookupTXT: func(name string) ([]string, error) {
				if name != args[3]+"._domainkey."+args[2] {
					return nil, fmt.Errorf("no TXT record at %s", name)
				}
				return []string{record}, nil
			},
		})
		ts.Check(err)
		if len(vs) == 0 {
			fmt.Fprintln(ts.Stdout(), "dkim: none")
		}
		for _, v := range vs {
			verdict := "pass"
			if v.Err != nil {
				verdict = "fail (" + v.Err.Error() + ")"
			}
			alg := ""
			if sig, _, ok := strings.Cut(string(m.Data), "\r\n\r\n"); ok {
				if i := strings.Index(sig, "a="); i >= 0 {
					alg, _, _ = strings.Cut(sig[i+2:], ";")
				}
			}
			fmt.Fprintf(ts.Stdout(), "dkim: %s d=%s s=%s a=%s h=%s\n", verdict, v.Domain, args[3], alg, strings.Join(v.HeaderKeys, ":"))
		}
	}
}

// cmdTLSRPTStore prints what a tlsrpt.FileStore directory holds, one line
// per policy domain and policy, without the day:
//
//	dane-ee.example tlsa successful=1 failed=0
//	dane-mismatch.example tlsa successful=0 failed=1 validation-failure=1
func cmdTLSRPTStore(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: tlsrptstore DIR")
	}
	store, err := tlsrpt.NewFileStore(ts.MkAbs(args[0]))
	ts.Check(err)
	ctx := context.Background()
	keys, err := store.Keys(ctx)
	ts.Check(err)
	var lines []string
	for _, k := range keys {
		agg, err := store.Load(ctx, k)
		ts.Check(err)
		for _, p := range agg.Policies {
			line := fmt.Sprintf("%s %s successful=%d failed=%d", k.Domain, p.Policy.Type, p.Summary.TotalSuccessfulSessionCount, p.Summary.TotalFailureSessionCount)
			for _, fd := range p.FailureDetails {
				line += fmt.Sprintf(" %s=%d", fd.ResultType, fd.FailedSessionCount)
			}
			lines = append(lines, line)
		}
	}
	slices.Sort(lines)
	for _, l := range lines {
		fmt.Fprintln(ts.Stdout(), l)
	}
}
