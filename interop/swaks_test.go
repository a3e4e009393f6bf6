//go:build interop

package interop

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smtpsecure/smtpsecure"
)

// testSwaks cross-checks the lab and this package's reading of the Maildir
// with a reference client: swaks submits a message of lone dots and bare
// line feeds through the same Postfix listener, with STARTTLS and AUTH
// PLAIN (the UTF-8 password), and the library submits the same message.
// Both must arrive unchanged, and identical but for their Message-ID. (The
// lab's own swaks checks run before the tests with `scripts/interop run
// --check`; this one runs whether or not they did.)
func testSwaks(t *testing.T, l *lab) {
	swaks, err := exec.LookPath("swaks")
	if err != nil {
		t.Skip("swaks is not on PATH (scripts/interop install installs it); the lab's swaks checks still run with `scripts/interop run --check`")
	}
	ctx := caseContext(t)

	// swaks ends the data with CRLF "." CRLF after whatever it was given,
	// so its copy gets no final line break (it would add an empty line)
	// and no lone CR (swaks leaves those alone). It also replaces %TOKENS%:
	// there are none.
	var body bytes.Buffer
	for i := range 40 {
		body.WriteString([]string{".\n", "..\n", "\n.\n", ". x\n", ".hidden\n", "bare\nline feeds\n", "UTF-8 ☃\n", "\r\n.\r\n"}[i%8])
	}
	body.WriteString("the end")
	to := []string{"swaks@" + l.relayDomain}
	bySwaks := newMessage(t, l.bob.name, to, body.Bytes())
	byUs := newMessage(t, l.bob.name, to, body.Bytes())
	byUs.raw = bytes.Replace(bySwaks.raw, []byte(bySwaks.id), []byte(byUs.id), 1)

	file := filepath.Join(t.TempDir(), "message.eml")
	if err := os.WriteFile(file, bySwaks.raw, 0o600); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, caseTimeout/2)
	defer cancel()
	cmd := exec.CommandContext(sctx, swaks,
		"--server", l.starttls.addr,
		"--tls", "--tls-verify", "--tls-ca-path", l.caFile,
		"--auth", "PLAIN", "--auth-user", l.bob.name, "--auth-password", l.bob.pass,
		"--from", bySwaks.from, "--to", strings.Join(to, ","),
		"--data", "@"+file,
		"--timeout", "10",
	)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("swaks failed: %v\n%s", err, out)
	}

	d, _ := l.dialer(t, l.starttls, l.mxHost)
	d.Auth = smtpsecure.PlainAuth("", l.bob.name, l.bob.pass)
	if _, err := d.Send(ctx, &smtpsecure.Envelope{From: byUs.from, To: byUs.to}, bytes.NewReader(byUs.raw)); err != nil {
		t.Fatalf("SendMail: %v", err)
	}

	fromSwaks := l.waitDelivered(t, bySwaks)[0]
	fromUs := l.waitDelivered(t, byUs)[0]
	if !strings.Contains(fromSwaks.received, "with ESMTPSA") || !strings.Contains(fromUs.received, "with ESMTPSA") {
		t.Errorf("Received fields do not both record an authenticated TLS session:\n%s\n%s", fromSwaks.received, fromUs.received)
	}
	same := bytes.Replace(fromSwaks.content, []byte(bySwaks.id), []byte(byUs.id), 1)
	if !bytes.Equal(same, fromUs.content) {
		t.Errorf("swaks's copy and ours differ: %s", firstDifference(fromUs.content, same))
	}
}
