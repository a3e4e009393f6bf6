package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// FuzzParseMsmtprc: any configuration file either fails with a syntax
// error or gives accounts whose names and settings are well formed, and
// resolving any of them never panics.
func FuzzParseMsmtprc(f *testing.F) {
	for _, s := range []string{
		"defaults\ntls on\naccount a\nhost h\nport 587\naccount default : a\n",
		"account a\nhost \"h \"\npassword \"#x\"\n",
		"host legacy\r\nfrom me@example.org\r\n",
		"account a : b\n",
		"account x,y\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		rc, err := parseMsmtprc(strings.NewReader(text), "fuzz")
		if err != nil {
			return
		}
		for _, a := range rc.Accounts {
			if a.Name == "" || strings.ContainsAny(a.Name, ":, \t") {
				t.Fatalf("account name %q", a.Name)
			}
			for k := range a.Settings {
				if !slices.Contains(knownKeys, k) {
					t.Fatalf("unknown key %q kept", k)
				}
			}
			resolveAccount(a.Name, rc.File, a.Settings, insecureFlags{Plaintext: true, SkipVerify: true})
		}
	})
}

// FuzzReadMessage: whatever arrives on standard input, the message sent
// has CRLF line ends only, and reading it again gives the same message.
func FuzzReadMessage(f *testing.F) {
	for _, s := range []string{
		"Subject: x\n\nbody\n",
		"To: a@example.net\r\nBcc: b@example.net\r\n\r\n.\r\n",
		"no header\n.\nafter\n",
		"A: b\n c\n\rx\n",
		"\n\n\n",
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, in []byte, ignoreDots bool) {
		m, err := readMessage(bytes.NewReader(in), ignoreDots)
		if err != nil {
			return
		}
		out := m.bytes()
		for i, c := range out {
			if c == '\n' && (i == 0 || out[i-1] != '\r') {
				t.Fatalf("bare LF at %d in %q", i, out)
			}
		}
		again, err := readMessage(bytes.NewReader(out), true)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.bytes(), out) {
			t.Fatalf("not stable:\n%q\n%q", out, again.bytes())
		}
		m.headerRecipients()
	})
}
