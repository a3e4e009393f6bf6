//go:build interop

package interop

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestCommand runs the smtpsecure command against the lab: check on each
// MX delivery domain (Postfix MX hosts on port 25 with TLSA records, nginx
// MTA-STS policy hosts, Unbound), once with the validating Unbound's AD bit
// and once validating DNSSEC in the command through the non-validating
// Unbound; policy; and send through the Postfix submission listener.
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
