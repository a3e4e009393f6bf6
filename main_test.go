package smtpsecure

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestMain makes the test CA a system root (through SSL_CERT_FILE, which
// crypto/x509 reads on first use), so that SendMail, which has no TLS
// options, can be tested against the in-process server as it is used.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "smtpsecure-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := initPKI(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ca := testCA
	file := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(file, ca.PEM(), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	os.Setenv("SSL_CERT_FILE", file)
	os.Setenv("SSL_CERT_DIR", dir)
	return m.Run()
}
