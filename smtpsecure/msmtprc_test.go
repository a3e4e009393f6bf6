package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// loadTestConfig parses a file of testdata/msmtprc.
func loadTestConfig(t *testing.T, name string) *msmtprc {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "msmtprc", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rc, err := parseMsmtprc(f, name)
	if err != nil {
		t.Fatalf("parsing %s: %v", name, err)
	}
	return rc
}

// TestMsmtprcRealWorld reads configurations written the way msmtp users
// write them (comments, tabs, CRLF, quotes, defaults, inheritance, the
// msmtp 1.2 form without an account line) and checks what each account
// resolves to.
func TestMsmtprcRealWorld(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	tests := []struct {
		file, account string
		insecure      insecureFlags
		want          func(t *testing.T, c *submitConfig)
		wantErr       string
	}{
		{file: "gmail", account: "default", want: func(t *testing.T, c *submitConfig) {
			check(t, "host", c.Host, "smtp.gmail.com")
			check(t, "port", c.Port, 587)
			check(t, "implicit TLS", c.ImplicitTLS, false)
			check(t, "auth", c.Auth, "on")
			check(t, "user", c.User, "jane.doe@gmail.com")
			check(t, "password kind", c.Password.kind, secretEval)
			// The quotes around the whole argument go; the ~ inside a
			// command is the shell's business, not expanded here.
			check(t, "passwordeval", c.Password.value, "gpg --quiet --for-your-eyes-only --no-tty --decrypt ~/.msmtp-gmail.gpg")
			check(t, "trust file", c.TrustFile, "/etc/ssl/certs/ca-certificates.crt")
			check(t, "logfile", c.Logfile, filepath.Join(home, ".msmtp.log"))
			check(t, "from", c.From, "jane.doe@gmail.com")
		}},
		{file: "home-and-work", account: "default", want: func(t *testing.T, c *submitConfig) {
			check(t, "host", c.Host, "smtp.fastmail.com")
			check(t, "port", c.Port, 465)
			check(t, "implicit TLS", c.ImplicitTLS, true)
			check(t, "passwordeval", c.Password.value, "pass show mail/fastmail")
		}},
		{file: "home-and-work", account: "work", want: func(t *testing.T, c *submitConfig) {
			check(t, "port from defaults", c.Port, 587)
			check(t, "implicit TLS", c.ImplicitTLS, false)
			check(t, "domain", c.LocalName, "laptop.corp.example")
			check(t, "auth", c.Auth, "plain")
			check(t, "quoted user with a blank", c.User, "Joe Smith")
			check(t, "dsn_notify", c.DSNNotify, "failure,delay")
			check(t, "dsn_return", c.DSNReturn, "headers")
			check(t, "timeout", c.Timeout, 30*time.Second)
			check(t, "date header", c.SetDateHeader, "auto")
		}},
		{file: "home-and-work", account: "work-bulk", want: func(t *testing.T, c *submitConfig) {
			check(t, "inherited host", c.Host, "mail.corp.example")
			check(t, "inherited user", c.User, "Joe Smith")
			check(t, "own from", c.From, "newsletter@corp.example")
			check(t, "own date header", c.SetDateHeader, "off")
		}},
		{file: "legacy", account: "default", want: func(t *testing.T, c *submitConfig) {
			check(t, "host", c.Host, "mail.isp.example")
			check(t, "msmtp's default port", c.Port, 25)
			check(t, "auth", c.Auth, "")
		}},
		{file: "relay", account: "localhost", wantErr: "relay:5: tls off would send the message, and any password, in plaintext; refused. Turn TLS on, or pass --insecure-plaintext to allow it"},
		{file: "relay", account: "localhost", insecure: insecureFlags{Plaintext: true}, want: func(t *testing.T, c *submitConfig) {
			check(t, "plaintext", c.Plaintext, true)
			check(t, "port", c.Port, 25)
		}},
		{file: "relay", account: "router", wantErr: "relay:12: tls_certcheck off would accept any certificate, so anyone on the path could read the message and the password; refused. Name the server's CA with tls_trust_file, or pass --insecure-skip-verify to allow it"},
		{file: "relay", account: "router", insecure: insecureFlags{SkipVerify: true}, want: func(t *testing.T, c *submitConfig) {
			check(t, "skip verify", c.SkipVerify, true)
		}},
		{file: "relay", account: "router", insecure: insecureFlags{Plaintext: true}, wantErr: "--insecure-skip-verify"},
		{file: "relay", account: "pinned", wantErr: "relay:17: tls_fingerprint is not supported: certificate pinning is not supported; put the server's certificate or its CA in a file and name it with tls_trust_file"},
		{file: "system", account: "default", wantErr: "system:7: aliases is not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.file+"/"+tc.account, func(t *testing.T) {
			rc := loadTestConfig(t, tc.file)
			acc := rc.account(tc.account)
			if acc == nil {
				t.Fatalf("no account %q", tc.account)
			}
			c, err := resolveAccount(acc.Name, rc.File, acc.Settings, tc.insecure)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				if exitCode(err) != exitConfig {
					t.Errorf("exit code %d, want %d", exitCode(err), exitConfig)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.want(t, c)
		})
	}
}

// TestMsmtprcPasswordKeepsHash: a "#" after an argument is part of it, as
// in msmtp, so passwords may contain it.
func TestMsmtprcPasswordKeepsHash(t *testing.T) {
	rc := loadTestConfig(t, "system")
	acc := rc.account("mailgun")
	got, _ := acc.get("password")
	if want := "s3cr#t with spaces # all of it is the password"; got != want {
		t.Errorf("password %q, want %q", got, want)
	}
	if got, _ := acc.get("syslog"); got != "LOG_MAIL" {
		t.Errorf("defaults not applied: syslog %q", got)
	}
}

// TestMsmtprcAccountForFrom picks the account for -f as msmtp does, with
// msmtp 1.8's patterns.
func TestMsmtprcAccountForFrom(t *testing.T) {
	rc := loadTestConfig(t, "home-and-work")
	for from, want := range map[string]string{
		"joe@fastmail.example":     "home",
		"JOE@FASTMAIL.EXAMPLE":     "home",
		"anyone@corp.example":      "work",
		"newsletter@corp.example":  "work", // the first match wins, as in msmtp
		"nobody@elsewhere.example": "",
	} {
		got := ""
		if a := rc.accountForFrom(from); a != nil {
			got = a.Name
		}
		if got != want {
			t.Errorf("accountForFrom(%q) = %q, want %q", from, got, want)
		}
	}
}

func TestMsmtprcSyntaxErrors(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"unknown command", "account a\nhots smtp.example.org\n", `x:2: unknown command "hots"`},
		{"duplicate account", "account a\nhost h\naccount a\n", `x:3: account "a" is already defined`},
		{"inherit undefined", "account a : b\n", `x:1: account "a" inherits from "b", which is not defined above it`},
		{"inherit later", "account a : b\naccount b\n", `inherits from "b"`},
		{"empty inherit", "account a\naccount b : a,\n", "empty name"},
		{"comma in name", "account a,b\n", "must not contain colons, commas or blanks"},
		{"no name", "account\n", "account needs a name"},
		{"defaults with argument", "defaults now\n", "x:1: defaults takes no argument"},
		{"long line", "host " + strings.Repeat("a", maxConfigLine) + "\n", "x:1: line longer than 4096 characters"},
		{"NUL", "host a\x00b\n", "NUL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseMsmtprc(strings.NewReader(tc.text), "x")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if !errors.Is(err, errConfigSyntax) {
				t.Errorf("error does not match errConfigSyntax")
			}
		})
	}
}

// TestMsmtprcDefaultsApplyForward: defaults set after an account do not
// change it, and a later defaults section adds to the earlier one.
func TestMsmtprcDefaultsApplyForward(t *testing.T) {
	rc, err := parseMsmtprc(strings.NewReader("defaults\nport 587\naccount a\nhost a\ndefaults\ntls_starttls off\naccount b\nhost b\n"), "x")
	if err != nil {
		t.Fatal(err)
	}
	a, b := rc.account("a"), rc.account("b")
	if _, ok := a.get("tls_starttls"); ok {
		t.Error("a later defaults section changed an earlier account")
	}
	if v, _ := b.get("port"); v != "587" {
		t.Errorf("b port %q, want the first defaults' 587", v)
	}
	if v, _ := b.get("tls_starttls"); v != "off" {
		t.Errorf("b tls_starttls %q, want off", v)
	}
}

func check[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}
