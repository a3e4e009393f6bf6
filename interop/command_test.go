//go:build interop

package interop

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/smtpsecure/smtpsecure/tlsrpt"
)

// TestCommand runs the smtpsecure command against the lab: check on each
// MX delivery domain (Postfix MX hosts on port 25 with TLSA records, nginx
// MTA-STS policy hosts, Unbound), once with the validating Unbound's AD bit
// and once validating DNSSEC in the command through the non-validating
// Unbound; policy; deliver to several of those domains at once; and send
// through the Postfix submission listener.
func TestCommand(t *testing.T) {
	if os.Getenv("SMTPSECURE_LAB_DIR") == "" {
		t.Skip("SMTPSECURE_LAB_DIR is not set, so there is no interop lab: run " +
			"`SMTPSECURE_LAB_PORT_OFFSET=2000 scripts/interop run -- go test -tags interop -count=1 -run Command ./interop/...` as root")
	}
	var env envReader
	resolver := env.get("RESOLVER_ADDR")
	plainResolver := env.get("NONVALIDATING_RESOLVER_ADDR")
	anchor := env.get("TRUST_ANCHOR_DS")
	ca := env.get("CA_FILE")
	dom := map[string]string{}
	for _, n := range []string{"DANE_DOMAIN", "FAILOVER_DOMAIN", "UNUSABLE_TLSA_DOMAIN", "STS_ENFORCE_DOMAIN", "STS_MISMATCH_DOMAIN", "STS_TESTING_DOMAIN", "NO_POLICY_DOMAIN"} {
		dom[n] = env.get(n)
	}
	submission := env.get("STARTTLS_ADDR")
	if len(env.missing) > 0 {
		t.Fatalf("the lab lacks %s", strings.Join(env.missing, ", "))
	}
	bin := buildCommand(t)
	check := func(domain string, extra ...string) []string {
		return append(append([]string{"check", "--resolver", resolver, "--ca-file", ca}, extra...), domain)
	}
	cases := []struct {
		name  string
		args  []string
		stdin string
		exit  int
		want  []string // regular expressions, each matching a line of standard output
	}{
		{"check/DANE", check(dom["DANE_DOMAIN"]), "", 0, []string{
			`^DNSSEC: taken from the AD bit of the trusted validating resolver`,
			`^  ok +the MX records are DNSSEC-signed$`,
			`^  ok +DANE: 1 usable TLSA record at _25\._tcp\.mx1\.dane\.test\.example: 3 1 1 [0-9a-f]{64}$`,
			`^  ok +127\.\d+\.\d+\.\d+: STARTTLS: TLS 1\.3`,
			`^  ok +127\.\d+\.\d+\.\d+: TLSA 3 1 1 [0-9a-f]{64} matches the certificate chain \(depth 0\)$`,
		}},
		{"check/DANEInLibrary", []string{"check", "--dnssec-validate", "--trust-anchor", anchor, "--resolver", plainResolver, "--ca-file", ca, dom["DANE_DOMAIN"]}, "", 0, []string{
			`^DNSSEC: validated by smtpsecure itself, from the trust anchors`,
			`^  ok +the MX records are DNSSEC-signed$`,
			`^  ok +127\.\d+\.\d+\.\d+: TLSA 3 1 1 [0-9a-f]{64} matches`,
		}},
		{"check/Failover", check(dom["FAILOVER_DOMAIN"]), "", 1, []string{
			`^mx-bad\.dane\.test\.example \(MX 10\)$`,
			`^  error +127\.\d+\.\d+\.\d+: no usable TLSA record matches the server's certificate chain \(validation-failure\)$`,
			`^  ok +reports go to mailto:tlsrpt@reports\.dane\.test\.example$`,
		}},
		{"check/UnusableTLSA", check(dom["UNUSABLE_TLSA_DOMAIN"]), "", 0, []string{
			`^  warning +the TLSA records at _25\._tcp\.mx-pkix\.dane\.test\.example are all unusable for SMTP`,
			`^  ok +127\.\d+\.\d+\.\d+: valid under the Web PKI for mx-pkix\.dane\.test\.example$`,
		}},
		{"check/STSEnforce", check(dom["STS_ENFORCE_DOMAIN"]), "", 0, []string{
			`^  ok +policy in mode enforce \(id \w+, fetched\), mx: mx1\.sts\.test\.example$`,
			`^  warning +max_age is 86400 seconds \(1 day\)$`,
			`^  ok +127\.\d+\.\d+\.\d+: passes the MTA-STS policy`,
		}},
		{"check/STSMismatch", check(dom["STS_MISMATCH_DOMAIN"]), "", 1, []string{
			`^  error +the MX host mx2\.sts\.test\.example is not listed in the policy$`,
			`^  error +not used for delivery: `,
		}},
		{"check/STSTesting", check(dom["STS_TESTING_DOMAIN"]), "", 0, []string{
			`^  warning +the MTA-STS policy is in mode testing`,
			`^  warning +127\.\d+\.\d+\.\d+: would fail the MTA-STS policy in mode enforce: the host is not listed`,
		}},
		{"check/NoPolicy", check(dom["NO_POLICY_DOMAIN"]), "", 0, []string{
			`^  warning +no MTA-STS policy`,
			`^  ok +127\.\d+\.\d+\.\d+: STARTTLS`,
		}},
		{"check/JSON", check(dom["DANE_DOMAIN"], "--json"), "", 0, []string{
			`^  "verdict": "(ok|warning)",$`,
			`"source": "trusted-resolver"`,
			`"matched": true`,
		}},
		{"policy", []string{"policy", "--resolver", resolver, "--ca-file", ca, dom["FAILOVER_DOMAIN"]}, "", 0, []string{
			`^  1\. mx-bad\.dane\.test\.example \(preference 10\)`,
			`^  2\. mx1\.dane\.test\.example \(preference 20\)`,
		}},
		{"deliver", []string{"deliver", "--resolver", resolver, "--ca-file", ca, "--domain", "client.interop.smtpsecure.test", "-f", "sender@client.interop.smtpsecure.test",
			"postmaster@" + dom["DANE_DOMAIN"], "postmaster@" + dom["FAILOVER_DOMAIN"], "postmaster@" + dom["STS_ENFORCE_DOMAIN"], "postmaster@" + dom["NO_POLICY_DOMAIN"], "postmaster@" + dom["STS_MISMATCH_DOMAIN"]},
			"Subject: smtpsecure deliver in the interop lab\n\nHello.\n", 77, []string{
				`^postmaster@dane\.test\.example: delivered to mx1\.dane\.test\.example \[127\.\d+\.\d+\.\d+\]$`,
				`^  tls:   authenticated by DANE-EE \(TLSA 3 1 1 [0-9a-f]{64}\)$`,
				`^postmaster@failover\.dane\.test\.example: delivered to mx1\.dane\.test\.example `,
				`^postmaster@enforce\.sts\.test\.example: delivered to mx1\.sts\.test\.example `,
				`^  tls:   authenticated by the Web PKI$`,
				`^  rule:  mta-sts-enforce: `,
				`^postmaster@nopolicy\.sts\.test\.example: delivered to mx2\.sts\.test\.example `,
				`^  tls:   encrypted, server not authenticated$`,
				`^postmaster@mismatch\.sts\.test\.example: not delivered, permanent failure \(5\.7\.0\), exit 77$`,
			}},
		{"send", []string{"send", "--host", strings.Split(submission, ":")[0], "--port", submission[strings.LastIndex(submission, ":")+1:],
			"--tls-trust-file", ca, "--tls-host-override", env.get("MX_HOST"), "--auth=on", "--user", "alice@test.example", "--password-env", "LAB_PASSWORD",
			"--from", "alice@test.example", "--json", "command@" + dom["DANE_DOMAIN"]},
			"Subject: smtpsecure send in the interop lab\n\nHello.\n", 0, []string{
				`"status": "sent"`,
				`"verified": true`,
				`"status": "delivered"`,
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, tc.args...)
			cmd.Env = append(os.Environ(), "LAB_PASSWORD=secret")
			cmd.Stdin = strings.NewReader(tc.stdin)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			t.Logf("smtpsecure %s\n%s%s", strings.Join(tc.args, " "), stdout.String(), stderr.String())
			if code != tc.exit {
				t.Errorf("exit code %d, want %d", code, tc.exit)
			}
			for _, w := range tc.want {
				if !regexp.MustCompile("(?m)" + w).Match(stdout.Bytes()) {
					t.Errorf("no line of the output matches %s", w)
				}
			}
		})
	}
}

// TestCommandDeliver runs smtpsecure deliver --json to every MX domain of
// the lab (Postfix MX hosts on port 25 with TLSA records, nginx MTA-STS
// policy hosts, Unbound), DKIM-signed with an Ed25519 key: the outcome and
// the exit code each domain's _EXPECT calls for, the host that took the
// message and how it was authenticated, the message in the domain's
// Maildir with a signature that verifies over what Postfix stored, and the
// TLS-RPT results in a --tlsrpt-store directory (the failover domain's
// first MX fails DANE).
func TestCommandDeliver(t *testing.T) {
	l := loadMXLab(t)
	var env envReader
	ca := env.get("CA_FILE")
	if len(env.missing) > 0 {
		t.Fatalf("the lab lacks %s", strings.Join(env.missing, ", "))
	}
	bin := buildCommand(t)
	dir := t.TempDir()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "dkim.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	record := "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
	store := filepath.Join(dir, "tlsrpt")
	dc := &deliverCase{lab: l, bin: bin, ca: ca, dir: dir, keyFile: keyFile, record: record, store: store}
	t.Run("domains", func(t *testing.T) {
		for _, dom := range l.domains {
			t.Run(dom.name, func(t *testing.T) {
				t.Parallel()
				dc.run(t, dom)
			})
		}
	})
	t.Run("tlsrpt-store", func(t *testing.T) {
		// After the domains' parallel subtests: what the runs recorded.
		fs, err := tlsrpt.NewFileStore(store)
		if err != nil {
			t.Fatal(err)
		}
		failover := l.domain("FAILOVER_DOMAIN").name
		agg, err := fs.Load(context.Background(), tlsrpt.Key{Domain: failover, Day: tlsrpt.DayOf(time.Now())})
		if err != nil {
			t.Fatal(err)
		}
		var ok, failed int64
		for _, p := range agg.Policies {
			ok += p.Summary.TotalSuccessfulSessionCount
			failed += p.Summary.TotalFailureSessionCount
		}
		if ok != 1 || failed != 1 {
			t.Errorf("%s: %d successful and %d failed sessions recorded, want 1 and 1", failover, ok, failed)
		}
	})
}

// deliverCase is what TestCommandDeliver's runs share.
type deliverCase struct {
	lab                                  *mxLab
	bin, ca, dir, keyFile, record, store string
}

// run delivers to one domain of the lab with the command and checks the
// outcome, the Maildir and the DKIM signature.
func (dc *deliverCase) run(t *testing.T, dom *mxDomain) {
	const from = "sender@client.interop.smtpsecure.test"
	auth := map[string]string{"dane-ee": "DANE-EE", "webpki": "Web PKI", "tls": "none"}
	ctx := mxContext(t)
	rcpt := "postmaster@" + dom.name
	maildir := dom.maildir
	if dom.key == "REPORTS_DOMAIN" {
		rcpt, maildir = dc.lab.tlsrptAddress, dc.lab.tlsrptMaildir
	}
	id := uniqueID(t)
	msg := fmt.Sprintf("From: <%s>\nTo: <%s>\nSubject: smtpsecure deliver %s\nMessage-ID: <%s>\n\nThrough the command.\n", from, rcpt, t.Name(), id)
	cmd := exec.CommandContext(ctx, dc.bin, "deliver", "--json", "--resolver", dc.lab.resolverAddr, "--ca-file", dc.ca,
		"--mta-sts-cache", filepath.Join(dc.dir, "sts-"+dom.key), "--tlsrpt-store", dc.store, "--domain", "client.interop.smtpsecure.test",
		"--dkim-domain", "client.interop.smtpsecure.test", "--dkim-selector", "lab", "--dkim-key", dc.keyFile, "-f", from, rcpt)
	cmd.Stdin = strings.NewReader(msg)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("smtpsecure deliver … %s\n%s%s", rcpt, stdout.String(), stderr.String())
	var rep struct {
		Status     string `json:"status"`
		ExitCode   int    `json:"exit_code"`
		Recipients []struct {
			Outcome    string `json:"outcome"`
			MX         string `json:"mx"`
			TLS        bool   `json:"tls"`
			ServerAuth string `json:"server_auth"`
			Rule       string `json:"rule"`
		} `json:"recipients"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil || len(rep.Recipients) != 1 {
		t.Fatalf("the JSON report does not parse: %v", err)
	}
	r := rep.Recipients[0]
	if !dom.expect.delivered {
		// The only MX is not in the MTA-STS policy in mode enforce:
		// security could not be had, for good.
		if code != 77 || rep.ExitCode != 77 || r.Outcome != "permanent" || r.MX != "" {
			t.Fatalf("exit %d, outcome %s at %q; want exit 77, permanent, no host tried", code, r.Outcome, r.MX)
		}
		return
	}
	if code != 0 || rep.Status != "delivered" || r.MX != dom.expect.host || !r.TLS || r.ServerAuth != auth[dom.expect.tls] {
		t.Fatalf("exit %d, %s by %s (TLS %v, %s); want delivered by %s over TLS, %s",
			code, r.Outcome, r.MX, r.TLS, r.ServerAuth, dom.expect.host, auth[dom.expect.tls])
	}
	dl := waitMaildir(t, maildir, id)
	if !strings.Contains(dl.received, "by "+dom.expect.host) {
		t.Errorf("received by %q, want %s", dl.received, dom.expect.host)
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(dl.content), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if name != "lab._domainkey.client.interop.smtpsecure.test" {
				return nil, fmt.Errorf("no TXT record at %s", name)
			}
			return []string{dc.record}, nil
		},
	})
	if err != nil || len(vs) != 1 || vs[0].Err != nil {
		t.Errorf("DKIM verification of the stored message: %v %+v", err, vs)
	}
}

// buildCommand builds the smtpsecure command into a temporary directory.
func buildCommand(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "smtpsecure")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/smtpsecure/smtpsecure/smtpsecure").CombinedOutput()
	if err != nil {
		t.Fatalf("building the command: %v\n%s", err, out)
	}
	return bin
}
