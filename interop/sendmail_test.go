//go:build interop

package interop

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smtpsecure/smtpsecure"
)

// The package-level SendMail verifies against the system roots, which Go
// loads once per process, from SSL_CERT_FILE and SSL_CERT_DIR when they are
// set. So each call runs in a child process (this test binary again, told
// by childEnv what to do) with an environment chosen for it: that is the
// only way to be sure which roots it sees, whatever ran before it.
const childEnv = "SMTPSECURE_INTEROP_SENDMAIL_CHILD"

// childJob is what the child is asked to do.
type childJob struct {
	Addr       string   `json:"addr"`
	User       string   `json:"user,omitempty"`
	Pass       string   `json:"pass,omitempty"`
	From       string   `json:"from"`
	To         []string `json:"to"`
	MsgFile    string   `json:"msgFile"`
	ResultFile string   `json:"resultFile"`
}

// childResult is what the child found.
type childResult struct {
	Err              string `json:"err,omitempty"`
	Downgrade        bool   `json:"downgrade,omitempty"`
	Reason           int    `json:"reason,omitempty"`
	ResultType       string `json:"resultType,omitempty"`
	UnknownAuthority bool   `json:"unknownAuthority,omitempty"`
	Recipients       bool   `json:"recipients,omitempty"`
}

// sendMailChild is the child's whole life: one SendMail, its outcome
// written to the result file. It returns the exit status.
func sendMailChild() int {
	var job childJob
	if err := json.Unmarshal([]byte(os.Getenv(childEnv)), &job); err != nil {
		fmt.Fprintln(os.Stderr, "interop child:", err)
		return 2
	}
	msg, err := os.ReadFile(job.MsgFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop child:", err)
		return 2
	}
	var a smtp.Auth
	if job.User != "" {
		host, _, _ := net.SplitHostPort(job.Addr)
		a = smtp.PlainAuth("", job.User, job.Pass, host)
	}
	var res childResult
	if err := smtpsecure.SendMail(job.Addr, a, job.From, job.To, msg); err != nil {
		res.Err = err.Error()
		var dg *smtpsecure.DowngradeError
		if errors.As(err, &dg) {
			res.Downgrade, res.Reason, res.ResultType = true, int(dg.Reason), dg.ReportResultType()
		}
		var ua x509.UnknownAuthorityError
		res.UnknownAuthority = errors.As(err, &ua)
		var re *smtpsecure.RecipientsError
		if errors.As(err, &re) {
			res.Recipients = true
		}
	}
	b, _ := json.Marshal(res)
	if err := os.WriteFile(job.ResultFile, b, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "interop child:", err)
		return 2
	}
	return 0
}

// runSendMailChild runs SendMail in a child process whose system roots are
// the lab CA alone (trustLab) or the machine's own.
func (l *lab) runSendMailChild(t *testing.T, trustLab bool, job childJob, msg *message) childResult {
	t.Helper()
	dir := t.TempDir()
	job.MsgFile = filepath.Join(dir, "message")
	job.ResultFile = filepath.Join(dir, "result.json")
	if err := os.WriteFile(job.MsgFile, msg.raw, 0o600); err != nil {
		t.Fatal(err)
	}
	spec, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SSL_CERT_FILE=") && !strings.HasPrefix(kv, "SSL_CERT_DIR=") && !strings.HasPrefix(kv, childEnv+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, childEnv+"="+string(spec))
	if trustLab {
		empty := filepath.Join(dir, "no-certs")
		if err := os.Mkdir(empty, 0o700); err != nil {
			t.Fatal(err)
		}
		env = append(env, "SSL_CERT_FILE="+l.caFile, "SSL_CERT_DIR="+empty)
	}
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the SendMail child failed: %v\n%s", err, out)
	}
	b, err := os.ReadFile(job.ResultFile)
	if err != nil {
		t.Fatalf("the SendMail child left no result: %v\n%s", err, out)
	}
	var res childResult
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// testSendMail: net/smtp's SendMail signature, with net/smtp's PlainAuth,
// against the lab. With the system roots, which do not hold the lab CA, it
// refuses (certificate-not-trusted) before AUTH; with SSL_CERT_FILE naming
// the lab CA it delivers; a refused recipient stops the whole message, as
// in net/smtp.
//
// STD-2, STD-10, STD-11, STD-16, STD-87, STD-97
func testSendMail(t *testing.T, l *lab) {
	_, port, err := net.SplitHostPort(l.starttls.addr)
	if err != nil {
		t.Fatal(err)
	}
	// The certificate names 127.0.0.1, and an address needs no resolver.
	addr := net.JoinHostPort("127.0.0.1", port)

	t.Run("SystemRoots", func(t *testing.T) {
		t.Parallel()
		msg := newMessage(t, l.alice.name, []string{"sendmail-untrusted@" + l.relayDomain}, []byte("must never be sent\r\n"))
		res := l.runSendMailChild(t, false, childJob{Addr: addr, User: l.alice.name, Pass: l.alice.pass, From: msg.from, To: msg.to}, msg)
		if !res.Downgrade || smtpsecure.DowngradeReason(res.Reason) != smtpsecure.ReasonCertificateUntrusted ||
			res.ResultType != "certificate-not-trusted" || !res.UnknownAuthority {
			t.Errorf("SendMail with the system roots: %+v; want a DowngradeError, certificate-not-trusted, x509.UnknownAuthorityError", res)
		}
	})
	t.Run("LabCA/Delivered", func(t *testing.T) {
		t.Parallel()
		msg := newMessage(t, l.alice.name, []string{"sendmail1@" + l.relayDomain, "sendmail2@" + l.zone}, []byte("Sent with the net/smtp signature.\r\n"))
		res := l.runSendMailChild(t, true, childJob{Addr: addr, User: l.alice.name, Pass: l.alice.pass, From: msg.from, To: msg.to}, msg)
		if res.Err != "" {
			t.Fatalf("SendMail with SSL_CERT_FILE=%s: %s", l.caFile, res.Err)
		}
		l.waitDelivered(t, msg)
	})
	t.Run("LabCA/UTF-8Password", func(t *testing.T) {
		t.Parallel()
		msg := newMessage(t, l.bob.name, []string{"sendmail-bob@" + l.relayDomain}, []byte("Sent with the net/smtp signature.\r\n"))
		res := l.runSendMailChild(t, true, childJob{Addr: addr, User: l.bob.name, Pass: l.bob.pass, From: msg.from, To: msg.to}, msg)
		if res.Err != "" {
			t.Fatalf("SendMail with SSL_CERT_FILE=%s: %s", l.caFile, res.Err)
		}
		l.waitDelivered(t, msg)
	})
	if l.ipv6 {
		t.Run("LabCA/IPv6", func(t *testing.T) {
			t.Parallel()
			_, port6, _ := net.SplitHostPort(l.starttls6.addr)
			msg := newMessage(t, l.alice.name, []string{"sendmail-ipv6@" + l.relayDomain}, []byte("Sent over IPv6 with the net/smtp signature.\r\n"))
			res := l.runSendMailChild(t, true, childJob{Addr: net.JoinHostPort("::1", port6), User: l.alice.name, Pass: l.alice.pass, From: msg.from, To: msg.to}, msg)
			if res.Err != "" {
				t.Fatalf("SendMail to [::1]: %s", res.Err)
			}
			l.waitDelivered(t, msg)
		})
	}
	t.Run("LabCA/RecipientRefused", func(t *testing.T) {
		t.Parallel()
		// Without AUTH the relay recipient is refused, and like net/smtp
		// SendMail sends the message to nobody.
		msg := newMessage(t, "sender@"+l.zone, []string{"sendmail-ok@" + l.zone, "sendmail-denied@" + l.relayDomain}, []byte("must not be delivered\r\n"))
		res := l.runSendMailChild(t, true, childJob{Addr: addr, From: msg.from, To: msg.to}, msg)
		if !res.Recipients {
			t.Errorf("SendMail with a refused recipient: %+v; want a RecipientsError with nothing delivered", res)
		}
	})
}
