package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/smtpsecure/smtpsecure/internal/mxworld"
	"github.com/smtpsecure/smtpsecure/internal/signedzone"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
	"github.com/smtpsecure/smtpsecure/smtptest"
)

// The script tests run the command as a program: testscript.Main makes the
// test binary answer to the names smtpsecure, sendmail and msmtp, and the
// scripts in testdata/script run it against servers this process starts:
// smtptest submission servers (one set per script) and the in-process MX
// world of package mxworld (one for all scripts). The world's MX hosts have
// documentation addresses (192.0.2.x); the command, in its own process,
// reaches them through worldProxy, a loopback relay that this process
// connects with the world's dial hook.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"smtpsecure": mainForTest,
		"sendmail":   mainForTest,
		"msmtp":      mainForTest,
	})
}

// mainForTest is main with the test's dial hook: connections go through
// the relay named by SMTPSECURE_TEST_WORLD_PROXY, when set.
func mainForTest() {
	c := &cli{
		args:     os.Args,
		stdin:    os.Stdin,
		stdout:   os.Stdout,
		stderr:   os.Stderr,
		getenv:   os.Getenv,
		now:      time.Now,
		terminal: os.Getenv("SMTPSECURE_TEST_TERMINAL") == "1",
	}
	if p := os.Getenv("SMTPSECURE_TEST_WORLD_PROXY"); p != "" {
		c.dial = proxyDialer(p)
	}
	os.Exit(c.run(context.Background()))
}

// proxyDialer connects through the test's relay: it sends the address it
// wants on one line and gets "OK" or "ERR reason" back.
func proxyDialer(proxy string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", proxy)
		if err != nil {
			return nil, err
		}
		if dl, ok := ctx.Deadline(); ok {
			conn.SetDeadline(dl)
		}
		fmt.Fprintf(conn, "%s\n", addr)
		var line []byte
		b := make([]byte, 1)
		for len(line) < 512 {
			if _, err := conn.Read(b); err != nil {
				conn.Close()
				return nil, &net.OpError{Op: "dial", Net: network, Err: err}
			}
			if b[0] == '\n' {
				break
			}
			line = append(line, b[0])
		}
		conn.SetDeadline(time.Time{})
		if msg, bad := strings.CutPrefix(string(line), "ERR "); bad {
			conn.Close()
			return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New(msg)}
		}
		return conn, nil
	}
}

// worldProxy relays connections from the command to the world.
func worldProxy(t *testing.T, w *mxworld.World) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go relay(ctx, w, c)
		}
	}()
	return ln.Addr().String()
}

func relay(ctx context.Context, w *mxworld.World, c net.Conn) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	addr, err := bufio.NewReaderSize(c, 512).ReadString('\n')
	if err != nil {
		return
	}
	c.SetReadDeadline(time.Time{})
	up, err := w.DialContext(ctx, "tcp", strings.TrimSpace(addr))
	if err != nil {
		fmt.Fprintf(c, "ERR %v\n", errors.Unwrap(err))
		return
	}
	defer up.Close()
	fmt.Fprintf(c, "OK\n")
	done := make(chan struct{}, 2)
	go func() { copyConn(up, c); done <- struct{}{} }()
	go func() { copyConn(c, up); done <- struct{}{} }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func copyConn(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			return
		}
	}
}

// submissionServers are the smtptest servers of one script.
type submissionServers map[string]*smtptest.Server

const serversKey = "submission servers"

// startSubmissionServers starts, for one script: "starttls" (STARTTLS,
// AUTH for alice/secret), "implicit" (implicit TLS, the same users) and
// "notls" (no STARTTLS, AUTH offered in plaintext as bait), all with a
// certificate for localhost and 127.0.0.1 from a CA written to $WORK/ca.pem.
// Every server refuses refused@example.net (550 5.1.1) and later@example.net
// (450 4.2.1).
func startSubmissionServers(e *testscript.Env) error {
	ca, err := testpki.NewCA("smtpsecure script CA")
	if err != nil {
		return err
	}
	other, err := testpki.NewCA("another CA")
	if err != nil {
		return err
	}
	leaf, err := ca.Issue(testpki.LeafOptions{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{"ca.pem": ca.PEM(), "other-ca.pem": other.PEM()} {
		if err := os.WriteFile(filepath.Join(e.WorkDir, name), data, 0o644); err != nil {
			return err
		}
	}
	servers := submissionServers{}
	for _, name := range []string{"starttls", "implicit", "notls"} {
		s := smtptest.NewUnstartedServer()
		s.TLS = leaf.ServerConfig()
		s.Users = map[string]string{"alice@example.org": "secret", "bob@example.org": "pässword"}
		s.AuthMechanisms = []string{"PLAIN", "LOGIN", "SCRAM-SHA-256"}
		s.Respond = refuseTestRecipients
		switch name {
		case "implicit":
			s.StartTLS()
		case "notls":
			s.DisableSTARTTLS = true
			s.Start()
		default:
			s.Start()
		}
		e.Defer(s.Close)
		servers[name] = s
		e.Setenv(strings.ToUpper(name)+"_PORT", strconv.Itoa(s.Port()))
	}
	e.Values[serversKey] = servers
	return nil
}

func refuseTestRecipients(c smtptest.Command) smtptest.Response {
	switch {
	case c.Verb == "RCPT" && c.Address == "refused@example.net":
		return smtptest.Response{Code: 550, Enhanced: "5.1.1", Text: "No such user"}
	case c.Verb == "RCPT" && c.Address == "later@example.net":
		return smtptest.Response{Code: 450, Enhanced: "4.2.1", Text: "Mailbox busy, try later"}
	}
	return smtptest.Response{}
}

func TestScripts(t *testing.T) {
	w := mxworld.New(t)
	// TLS-RPT records the world's table does not describe: a valid one,
	// and two v=TLSRPTv1 records, which RFC 8460 §3 makes no record.
	for _, rr := range []string{
		`_smtp._tls.dane-ee.example. 300 IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@dane-ee.example"`,
		`_smtp._tls.sts-testing.example. 300 IN TXT "v=TLSRPTv1; rua=mailto:a@sts-testing.example"`,
		`_smtp._tls.sts-testing.example. 300 IN TXT "v=TLSRPTv1; rua=mailto:b@sts-testing.example"`,
	} {
		if err := w.AddRecord(rr); err != nil {
			t.Fatal(err)
		}
	}
	proxy := worldProxy(t, w)
	signedResolver, anchors := signedWorld(t)
	worldCA := filepath.Join(t.TempDir(), "world-ca.pem")
	if err := os.WriteFile(worldCA, w.RootCAsPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Setup: func(e *testscript.Env) error {
			e.Setenv("WORLD_RESOLVER", w.ResolverAddr())
			e.Setenv("WORLD_CA", worldCA)
			e.Setenv("SMTPSECURE_TEST_WORLD_PROXY", proxy)
			e.Setenv("SIGNED_RESOLVER", signedResolver)
			e.Setenv("SIGNED_ANCHORS", anchors)
			return startSubmissionServers(e)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode":      cmdExitCode,
			"expand":        cmdExpand,
			"smtpmessages":  cmdSMTPMessages,
			"smtpplaintext": cmdSMTPPlaintext,
			"mxmessages": func(ts *testscript.TestScript, neg bool, args []string) {
				cmdMXMessages(ts, neg, args, w)
			},
			"mxdkim": func(ts *testscript.TestScript, neg bool, args []string) {
				cmdMXDKIM(ts, neg, args, w)
			},
			"tlsrptstore": cmdTLSRPTStore,
		},
	})
}

// signedWorld serves DNSSEC-signed zones under a test root from a
// resolver that does not validate, for --dnssec-validate: signed.example
// has an MX host with a TLSA record, and its address is one nothing
// listens on. It returns the resolver's address and a file with the test
// root's DS record, the trust anchor.
func signedWorld(t *testing.T) (string, string) {
	root := signedzone.NewZone(".", signedzone.MustKey(".", dns.ECDSAP256SHA256))
	ex := signedzone.NewZone("example.", signedzone.MustKey("example.", dns.ED25519))
	ex.MustAdd(
		"signed.example. MX 10 mx.signed.example.",
		"mx.signed.example. A 192.0.2.250",
		"_25._tcp.mx.signed.example. TLSA 3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6",
	)
	root.Delegate(ex, dns.SHA256)
	srv := signedzone.New(t, root, ex)
	var b strings.Builder
	for _, rr := range root.DS(dns.SHA256) {
		b.WriteString(rr.String() + "\n")
	}
	file := filepath.Join(t.TempDir(), "anchors")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return srv.Addr, file
}

// cmdExpand replaces $NAME and ${NAME} in files with the script's
// environment, so that configuration files can name the servers' ports.
func cmdExpand(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: expand FILE...")
	}
	for _, f := range args {
		name := ts.MkAbs(f)
		data, err := os.ReadFile(name)
		ts.Check(err)
		fi, err := os.Stat(name)
		ts.Check(err)
		ts.Check(os.WriteFile(name, []byte(os.Expand(string(data), ts.Getenv)), fi.Mode().Perm()))
	}
}

// cmdExitCode runs a program and checks its exit code:
//
//	exitcode 77 smtpsecure send …
//
// Its standard output and error are then checked with stdout and stderr.
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode CODE program [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: %v", err)
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exitcode: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("exit code %d, want %d", got, want)
	}
}

func servers(ts *testscript.TestScript, name string) *smtptest.Server {
	s := ts.Value(serversKey).(submissionServers)[name]
	if s == nil {
		ts.Fatalf("no server %q: starttls, implicit or notls", name)
	}
	return s
}

// cmdSMTPMessages prints what a submission server accepted, one block per
// message: envelope, TLS, AUTH, MAIL parameters, then the data with LF line
// ends.
func cmdSMTPMessages(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: smtpmessages starttls|implicit|notls")
	}
	printMessages(ts, servers(ts, args[0]).Messages())
}

func printMessages(ts *testscript.TestScript, msgs []*smtptest.Message) {
	out := ts.Stdout()
	for i, m := range msgs {
		fmt.Fprintf(out, "message %d\nfrom: %s\nto: %s\n", i+1, m.From, strings.Join(m.To, " "))
		if m.TLS != nil {
			fmt.Fprintf(out, "tls: yes sni=%s\n", m.TLS.ServerName)
		} else {
			fmt.Fprintf(out, "tls: no\n")
		}
		if m.AuthUser != "" {
			fmt.Fprintf(out, "auth: %s %s\n", m.AuthMechanism, m.AuthUser)
		}
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
		fmt.Fprintf(out, "params: %s\nehlo: %s\n--\n%s\n", strings.Join(params, " "), m.HelloName, strings.ReplaceAll(string(m.Data), "\r\n", "\n"))
	}
}

// cmdSMTPPlaintext prints every byte clients sent a submission server
// before TLS, in all sessions: what anyone on the path could read.
func cmdSMTPPlaintext(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: smtpplaintext starttls|implicit|notls")
	}
	for _, s := range servers(ts, args[0]).Sessions() {
		<-s.Done()
		ts.Stdout().Write(s.Plaintext())
	}
}
