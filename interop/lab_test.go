//go:build interop

package interop

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure"
)

// TestMain runs the package-level SendMail in a child process when asked to
// (see sendmail_test.go), and the tests otherwise.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(sendMailChild())
	}
	os.Exit(m.Run())
}

// TestInterop runs every interop test against the lab named by the
// SMTPSECURE_LAB_* variables. The groups and their cases run in parallel;
// each case finds its own message and its own session.
func TestInterop(t *testing.T) {
	l := loadLab(t)
	groups := []struct {
		name string
		run  func(*testing.T, *lab)
	}{
		{"Submission", testSubmission},
		{"Refusal", testRefusal},
		{"DNS", testDNS},
		{"DANE", testDANE},
		{"Cyrus", testCyrus},
		{"SendMail", testSendMail},
		{"Swaks", testSwaks},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			g.run(t, l)
		})
	}
}

// Time limits. Delivery and logging are asynchronous in Postfix; these are
// deadlines for polling, not waits.
const (
	deliveryTimeout = 20 * time.Second
	logTimeout      = 10 * time.Second
	pollInterval    = 25 * time.Millisecond
	caseTimeout     = 20 * time.Second
)

// user is a lab account.
type user struct{ name, pass string }

// target is one SMTP listener of the lab.
type target struct {
	listener string // its name in Postfix's log: postfix/<listener>/smtpd
	addr     string // host:port to connect to
	implicit bool   // implicit TLS (465-style)
}

func (tg target) port() int {
	_, p, _ := net.SplitHostPort(tg.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// lab is the running lab, as its variables describe it.
type lab struct {
	dir         string
	caFile      string
	caPool      *x509.CertPool
	mxHost      string
	wrongName   string
	serverNames []string
	ipv6        bool

	starttls, starttls6, implicit, implicit6 target
	cyrus, notls, wrongname                  target

	dovecotMechs, cyrusMechs []string
	alice, bob               user
	mailDomains              []string
	relayDomain              string

	maildir *maildir
	maillog string

	resolverAddr, nsdAddr                                         string
	zone, bogusZone, bogusHost, insecureZone, insecureHost        string
	daneEE, daneTA, daneEEBad, daneTABad, noTLSA, cname, cnameOwn string
	nullMX                                                        string
	serverSPKI, caSPKI, caCert, unusedSPKI                        string
	smtpPorts, tlsaPorts                                          []int
	listenerByPort                                                map[int]string // port → listener name
}

var (
	labOnce sync.Once
	theLab  *lab
	labErr  error
)

// loadLab returns the lab, skipping the test when there is none.
func loadLab(t *testing.T) *lab {
	t.Helper()
	if os.Getenv("SMTPSECURE_LAB_DIR") == "" {
		t.Skip("SMTPSECURE_LAB_DIR is not set, so there is no interop lab: run " +
			"`scripts/interop run --check -- go test -tags interop -count=1 -v ./interop/...` as root " +
			"(or bring a lab up with `scripts/interop up DIR` and eval \"$(scripts/interop env DIR)\")")
	}
	labOnce.Do(func() { theLab, labErr = readLab() })
	if labErr != nil {
		t.Fatalf("the interop lab is unusable: %v", labErr)
	}
	return theLab
}

// envReader reads SMTPSECURE_LAB_* variables and collects the missing ones.
type envReader struct{ missing []string }

func (e *envReader) get(name string) string {
	v := os.Getenv("SMTPSECURE_LAB_" + name)
	if v == "" {
		e.missing = append(e.missing, "SMTPSECURE_LAB_"+name)
	}
	return v
}

func (e *envReader) ports(name string) []int {
	var out []int
	for _, f := range strings.Fields(e.get(name)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			e.missing = append(e.missing, "SMTPSECURE_LAB_"+name+" (not a list of ports)")
			return nil
		}
		out = append(out, n)
	}
	return out
}

func readLab() (*lab, error) {
	var e envReader
	l := &lab{
		dir:          e.get("DIR"),
		caFile:       e.get("CA_FILE"),
		mxHost:       e.get("MX_HOST"),
		wrongName:    e.get("WRONG_NAME"),
		serverNames:  strings.Fields(e.get("SERVER_NAMES")),
		ipv6:         e.get("IPV6") == "1",
		starttls:     target{listener: "starttls", addr: e.get("STARTTLS_ADDR")},
		implicit:     target{listener: "implicit", addr: e.get("IMPLICIT_ADDR"), implicit: true},
		cyrus:        target{listener: "cyrus", addr: e.get("CYRUS_ADDR")},
		notls:        target{listener: "notls", addr: e.get("NOTLS_ADDR")},
		wrongname:    target{listener: "wrongname", addr: e.get("WRONGNAME_ADDR")},
		dovecotMechs: strings.Fields(e.get("DOVECOT_MECHS")),
		cyrusMechs:   strings.Fields(e.get("CYRUS_MECHS")),
		alice:        user{e.get("ALICE_USER"), e.get("ALICE_PASS")},
		bob:          user{e.get("BOB_USER"), e.get("BOB_PASS")},
		mailDomains:  strings.Fields(e.get("MAIL_DOMAINS")),
		relayDomain:  e.get("RELAY_DOMAIN"),
		maildir:      &maildir{dir: e.get("MAILDIR")},
		maillog:      e.get("MAILLOG"),
		resolverAddr: e.get("RESOLVER_ADDR"),
		nsdAddr:      e.get("NSD_ADDR"),
		zone:         e.get("ZONE"),
		bogusZone:    e.get("BOGUS_ZONE"),
		bogusHost:    e.get("BOGUS_HOST"),
		insecureZone: e.get("INSECURE_ZONE"),
		insecureHost: e.get("INSECURE_HOST"),
		daneEE:       e.get("DANE_EE_HOST"),
		daneTA:       e.get("DANE_TA_HOST"),
		daneEEBad:    e.get("DANE_EE_BAD_HOST"),
		daneTABad:    e.get("DANE_TA_BAD_HOST"),
		noTLSA:       e.get("NO_TLSA_HOST"),
		cname:        e.get("CNAME_HOST"),
		cnameOwn:     e.get("CNAME_OWN_TLSA_HOST"),
		nullMX:       e.get("NULL_MX_DOMAIN"),
		serverSPKI:   e.get("SERVER_SPKI_SHA256"),
		caSPKI:       e.get("CA_SPKI_SHA256"),
		caCert:       e.get("CA_CERT_SHA256"),
		unusedSPKI:   e.get("UNUSED_SPKI_SHA256"),
		smtpPorts:    e.ports("SMTP_PORTS"),
		tlsaPorts:    e.ports("TLSA_PORTS"),
	}
	if l.ipv6 {
		l.starttls6 = target{listener: "starttls", addr: e.get("STARTTLS_ADDR6")}
		l.implicit6 = target{listener: "implicit", addr: e.get("IMPLICIT_ADDR6"), implicit: true}
	}
	if len(e.missing) > 0 {
		return nil, fmt.Errorf("SMTPSECURE_LAB_DIR is set but these variables are not: %s (eval \"$(scripts/interop env DIR)\" sets them all)",
			strings.Join(e.missing, ", "))
	}
	pem, err := os.ReadFile(l.caFile)
	if err != nil {
		return nil, fmt.Errorf("reading the lab CA: %w", err)
	}
	l.caPool = x509.NewCertPool()
	if !l.caPool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", l.caFile)
	}
	// Postfix makes the Maildir at the first delivery.
	if _, err := os.ReadDir(filepath.Join(l.maildir.dir, "new")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("the Maildir must be readable (its files belong to nobody, mode 600: run the tests as root): %w", err)
	}
	f, err := os.Open(l.maillog)
	if err != nil {
		return nil, fmt.Errorf("Postfix's log must be readable: %w", err)
	}
	f.Close()
	l.listenerByPort = map[int]string{}
	for _, tg := range []target{l.starttls, l.implicit, l.cyrus, l.notls, l.wrongname} {
		l.listenerByPort[tg.port()] = tg.listener
	}
	return l, nil
}

// targetFor returns the listener on port, connected to at ip.
func (l *lab) targetFor(ip string, port int) target {
	name := l.listenerByPort[port]
	return target{listener: name, addr: net.JoinHostPort(ip, strconv.Itoa(port)), implicit: name == "implicit"}
}

// ---------------------------------------------------------------------------
// Connections: every Dialer connects through a tap that records the local
// port (to find the session in Postfix's log) and what went over the wire
// in each direction, up to a limit.

const tapLimit = 64 << 10

type tap struct {
	net.Conn
	mu      sync.Mutex
	out, in []byte

	// past is closed the first time a deadline in the past is set: the
	// client interrupting its own I/O, as it does when its context ends.
	past     chan struct{}
	pastOnce sync.Once

	// onRead, when set, sees what each Read returned, before the client
	// does.
	onRead func([]byte)
}

func (c *tap) notePast(t time.Time) {
	if !t.IsZero() && t.Before(time.Now()) {
		c.pastOnce.Do(func() { close(c.past) })
	}
}

func (c *tap) SetDeadline(t time.Time) error {
	err := c.Conn.SetDeadline(t)
	c.notePast(t)
	return err
}

func (c *tap) SetReadDeadline(t time.Time) error {
	err := c.Conn.SetReadDeadline(t)
	c.notePast(t)
	return err
}

func (c *tap) SetWriteDeadline(t time.Time) error {
	err := c.Conn.SetWriteDeadline(t)
	c.notePast(t)
	return err
}

func (c *tap) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.out = appendLimited(c.out, p)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *tap) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.in = appendLimited(c.in, p[:n])
	hook := c.onRead
	c.mu.Unlock()
	if hook != nil {
		hook(p[:n])
	}
	return n, err
}

// setOnRead installs a hook that sees what each later Read returns.
func (c *tap) setOnRead(f func([]byte)) {
	c.mu.Lock()
	c.onRead = f
	c.mu.Unlock()
}

func appendLimited(b, p []byte) []byte {
	if room := tapLimit - len(b); room > 0 {
		b = append(b, p[:min(len(p), room)]...)
	}
	return b
}

// sent returns the first octets the client wrote; received those it read.
func (c *tap) sent() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.out)
}

func (c *tap) received() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.in)
}

// taps makes the connections of one Dialer, always to addr (the lab's
// listener, or the address DNS gave), whatever host name the Dialer uses.
type taps struct {
	addr  string
	mu    sync.Mutex
	conns []*tap
}

func (ts *taps) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, ts.addr)
	if err != nil {
		return nil, err
	}
	tc := &tap{Conn: c, past: make(chan struct{})}
	ts.mu.Lock()
	ts.conns = append(ts.conns, tc)
	ts.mu.Unlock()
	return tc, nil
}

// only returns the one connection the Dialer made.
func (ts *taps) only(t *testing.T) *tap {
	t.Helper()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.conns) != 1 {
		t.Fatalf("the Dialer made %d connections to %s, want 1", len(ts.conns), ts.addr)
	}
	return ts.conns[0]
}

// dialer returns a Dialer for the listener tg that names the server host
// (the name verified and sent as SNI), trusts the lab CA, logs to the test
// on failure, and connects through a tap.
func (l *lab) dialer(t *testing.T, tg target, host string) (*smtpsecure.Dialer, *taps) {
	t.Helper()
	ts := &taps{addr: tg.addr}
	d := &smtpsecure.Dialer{
		Host:           host,
		Port:           tg.port(),
		TLSConfig:      &tls.Config{RootCAs: l.caPool},
		DialContext:    ts.dial,
		Logger:         testLogger(t),
		ConnectTimeout: 5 * time.Second,
		CommandTimeout: 10 * time.Second,
		DataTimeout:    30 * time.Second,
	}
	if tg.implicit {
		d.Security = smtpsecure.SecurityImplicitTLS
	}
	return d, ts
}

// testLogger returns a debug logger whose records are shown only when the
// test fails, so that a passing run stays quiet.
func testLogger(t *testing.T) *slog.Logger {
	b := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("client log:\n%s", b.String())
		}
	})
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// lockedBuffer is a bounded buffer that several goroutines may write.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() > 256<<10 {
		return len(p), nil
	}
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// caseContext returns the context of one case: it ends with the case, and
// after caseTimeout at the latest.
func caseContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	t.Cleanup(cancel)
	return ctx
}

// clientHelloSNI finds the client's first TLS ClientHello in what it wrote
// (after "STARTTLS\r\n" when there is one) and returns the host name of its
// server_name extension, "" when it has none. ok is false when no
// ClientHello was found.
func clientHelloSNI(b []byte) (name string, ok bool) {
	if i := bytes.Index(b, []byte("STARTTLS\r\n")); i >= 0 {
		b = b[i+len("STARTTLS\r\n"):]
	}
	// TLS record: type 22 (handshake), version, length; then the handshake
	// header: type 1 (ClientHello), 3-octet length.
	if len(b) < 9 || b[0] != 22 || b[5] != 1 {
		return "", false
	}
	rec := int(b[3])<<8 | int(b[4])
	if len(b) < 5+rec {
		return "", false
	}
	p := b[9 : 5+rec]
	skip := func(n int) bool {
		if len(p) < n {
			return false
		}
		p = p[n:]
		return true
	}
	vec := func(lenBytes int) bool {
		if len(p) < lenBytes {
			return false
		}
		n := 0
		for i := range lenBytes {
			n = n<<8 | int(p[i])
		}
		return skip(lenBytes + n)
	}
	if !skip(2+32) || !vec(1) || !vec(2) || !vec(1) {
		return "", false
	}
	if len(p) < 2 {
		return "", true // no extensions
	}
	p = p[2:]
	for len(p) >= 4 {
		typ, n := int(p[0])<<8|int(p[1]), int(p[2])<<8|int(p[3])
		if len(p) < 4+n {
			return "", false
		}
		data := p[4 : 4+n]
		p = p[4+n:]
		if typ != 0 { // server_name
			continue
		}
		// ServerNameList: 2-octet length, then (type, 2-octet length, name).
		if len(data) < 5 || data[2] != 0 {
			return "", false
		}
		m := int(data[3])<<8 | int(data[4])
		if len(data) < 5+m {
			return "", false
		}
		return string(data[5 : 5+m]), true
	}
	return "", true
}

// ---------------------------------------------------------------------------
// Messages

// message is a message to send, with a Message-ID no other test uses.
type message struct {
	id        string
	from      string
	to        []string
	raw       []byte
	plaintext bool // sent without TLS (only with Dialer.InsecurePlaintext)
}

func uniqueID(t *testing.T) string {
	var r [8]byte
	rand.Read(r[:])
	slug := strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			return c
		}
		return '-'
	}, t.Name())
	return slug + "." + hex.EncodeToString(r[:]) + "@interop.smtpsecure.test"
}

// newMessage returns a message with a header (CRLF line ends) and body.
func newMessage(t *testing.T, from string, to []string, body []byte) *message {
	m := &message{id: uniqueID(t), from: from, to: to}
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: <%s>\r\n", from)
	fmt.Fprintf(&b, "To: %s\r\n", strings.Join(to, ", "))
	fmt.Fprintf(&b, "Subject: smtpsecure interop %s\r\n", t.Name())
	fmt.Fprintf(&b, "Date: %s\r\n", time.Now().UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s>\r\n", m.id)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	b.Write(body)
	m.raw = b.Bytes()
	return m
}

// lfOnly turns every line ending (CRLF, a lone CR, a lone LF) into LF and
// ends non-empty content with one: what the library sends as CRLF and
// Postfix stores as LF.
func lfOnly(b []byte) []byte {
	out := make([]byte, 0, len(b)+1)
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '\r':
			if i+1 < len(b) && b[i+1] == '\n' {
				i++
			}
			out = append(out, '\n')
		default:
			out = append(out, c)
		}
	}
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return out
}

// ---------------------------------------------------------------------------
// The Maildir

// maildir indexes the delivered files by Message-ID. Postfix writes a file
// in tmp/ and renames it into new/, so a file in new/ is complete.
type maildir struct {
	dir string
	mu  sync.Mutex
	ids map[string]string // file name in new/ → Message-ID without <>
}

// headerLimit bounds what is read of a file to find its Message-ID.
const headerLimit = 64 << 10

// find returns the files in new/ whose Message-ID is id.
func (m *maildir) find(id string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ids == nil {
		m.ids = map[string]string{}
	}
	dir := filepath.Join(m.dir, "new")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // nothing delivered yet
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		name := e.Name()
		mid, ok := m.ids[name]
		if !ok {
			if mid, err = readMessageID(filepath.Join(dir, name)); err != nil {
				return nil, err
			}
			m.ids[name] = mid
		}
		if mid == id {
			out = append(out, filepath.Join(dir, name))
		}
	}
	slices.Sort(out)
	return out, nil
}

func readMessageID(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head, err := io.ReadAll(io.LimitReader(f, headerLimit))
	if err != nil {
		return "", err
	}
	if i := bytes.Index(head, []byte("\n\n")); i >= 0 {
		head = head[:i]
	}
	for _, line := range strings.Split(string(head), "\n") {
		if name, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(name, "Message-ID") {
			return strings.Trim(strings.TrimSpace(v), "<>"), nil
		}
	}
	return "", nil
}

// delivery is one delivered file, split into the fields Postfix prepends
// and the message as it arrived.
type delivery struct {
	file                                string
	returnPath, originalTo, deliveredTo string
	received                            string // unfolded
	content                             []byte
}

// parseDelivery splits a Maildir file: exactly Return-Path, X-Original-To,
// Delivered-To and one folded Received field, then the message as sent.
func parseDelivery(file string, b []byte) (*delivery, error) {
	d := &delivery{file: file}
	field := func(name string) (string, error) {
		i := bytes.IndexByte(b, '\n')
		if i < 0 || !bytes.HasPrefix(b, []byte(name+": ")) {
			return "", fmt.Errorf("%s: expected the %s field Postfix prepends, found %q", file, name, firstLine(b))
		}
		v := string(b[len(name)+2 : i])
		b = b[i+1:]
		for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
			j := bytes.IndexByte(b, '\n')
			if j < 0 {
				return "", fmt.Errorf("%s: unterminated %s field", file, name)
			}
			v += " " + strings.TrimSpace(string(b[:j]))
			b = b[j+1:]
		}
		return v, nil
	}
	var err error
	if d.returnPath, err = field("Return-Path"); err != nil {
		return nil, err
	}
	if d.originalTo, err = field("X-Original-To"); err != nil {
		return nil, err
	}
	if d.deliveredTo, err = field("Delivered-To"); err != nil {
		return nil, err
	}
	if d.received, err = field("Received"); err != nil {
		return nil, err
	}
	d.content = b
	return d, nil
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) > 80 {
		b = b[:80]
	}
	return string(b)
}

// waitDelivered polls the Maildir until msg arrived once for each of its
// recipients, and checks every copy: the envelope sender, the recipient,
// and the content byte for byte (after CRLF normalisation).
func (l *lab) waitDelivered(t *testing.T, msg *message) []*delivery {
	t.Helper()
	var files []string
	poll(t, "message <"+msg.id+"> in the Maildir", deliveryTimeout, func() (bool, error) {
		var err error
		files, err = l.maildir.find(msg.id)
		return len(files) >= len(msg.to), err
	})
	if len(files) != len(msg.to) {
		t.Fatalf("message <%s> was delivered %d times, want once per recipient (%d): %v", msg.id, len(files), len(msg.to), files)
	}
	want := lfOnly(msg.raw)
	var out []*delivery
	var rcpts []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d, err := parseDelivery(f, b)
		if err != nil {
			t.Fatal(err)
		}
		if d.returnPath != "<"+msg.from+">" {
			t.Errorf("%s: Return-Path %s, want <%s>", f, d.returnPath, msg.from)
		}
		if d.originalTo != d.deliveredTo {
			t.Errorf("%s: X-Original-To %s but Delivered-To %s", f, d.originalTo, d.deliveredTo)
		}
		// RFC 3848 and RFC 6531 protocol types: ESMTPS(A), UTF8SMTPS(A).
		tlsRecorded := strings.Contains(d.received, "with ESMTPS") || strings.Contains(d.received, "with UTF8SMTPS")
		if tlsRecorded == msg.plaintext {
			t.Errorf("%s: the Received field says TLS %v, want %v: %s", f, tlsRecorded, !msg.plaintext, d.received)
		}
		if !bytes.Equal(d.content, want) {
			t.Errorf("%s: the delivered message differs from the one sent: %s", f, firstDifference(d.content, want))
		}
		rcpts = append(rcpts, strings.ToLower(d.deliveredTo))
		out = append(out, d)
	}
	wantRcpts := make([]string, len(msg.to))
	for i, r := range msg.to {
		wantRcpts[i] = strings.ToLower(r)
	}
	slices.Sort(rcpts)
	slices.Sort(wantRcpts)
	if !slices.Equal(rcpts, wantRcpts) {
		t.Errorf("delivered to %v, want %v", rcpts, wantRcpts)
	}
	return out
}

// firstDifference describes where got and want first differ, briefly.
func firstDifference(got, want []byte) string {
	n := min(len(got), len(want))
	i := 0
	for i < n && got[i] == want[i] {
		i++
	}
	from := max(0, i-20)
	return fmt.Sprintf("lengths %d and %d (want), first difference at offset %d: got %q, want %q",
		len(got), len(want), i, got[from:min(len(got), i+40)], want[from:min(len(want), i+40)])
}

// ---------------------------------------------------------------------------
// Postfix's log

// session is one smtpd session as Postfix logged it.
type session struct {
	listener string
	pid      string
	lines    []string          // this process's lines from connect to disconnect
	counts   map[string]string // command counts of the disconnect line: "ehlo" → "2", "auth" → "0/1"
	queueIDs []string          // queue files the session created
}

func (s *session) String() string { return strings.Join(s.lines, "\n") }

// logSize returns the current size of the log: sessions that start later
// are logged after it.
func (l *lab) logSize(t *testing.T) int64 {
	t.Helper()
	fi, err := os.Stat(l.maillog)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// waitSession polls Postfix's log, from offset on, for the session of the
// client connection c on listener, until its disconnect line is there.
func (l *lab) waitSession(t *testing.T, listener string, c *tap, offset int64) *session {
	t.Helper()
	la := c.LocalAddr().(*net.TCPAddr)
	peer := "[" + la.IP.String() + "]:" + strconv.Itoa(la.Port)
	var s *session
	poll(t, "the "+listener+" session from "+peer+" in "+l.maillog, logTimeout, func() (bool, error) {
		f, err := os.Open(l.maillog)
		if err != nil {
			return false, err
		}
		defer f.Close()
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			return false, err
		}
		b, err := io.ReadAll(f)
		if err != nil {
			return false, err
		}
		s = findSession(string(b), listener, peer)
		return s != nil && s.counts != nil, nil
	})
	return s
}

// findSession finds, in log text, the session of the client at peer
// ("[ip]:port") on listener: the "connect from" line, then every line of the
// same process up to its "disconnect from" line.
func findSession(text, listener, peer string) *session {
	prog := "postfix/" + listener + "/smtpd["
	var s *session
	for _, line := range strings.Split(text, "\n") {
		i := strings.Index(line, prog)
		if i < 0 {
			continue
		}
		rest := line[i+len(prog):]
		pid, msg, ok := strings.Cut(rest, "]: ")
		if !ok {
			continue
		}
		if s == nil {
			if strings.HasPrefix(msg, "connect from ") && strings.HasSuffix(msg, peer) {
				s = &session{listener: listener, pid: pid, lines: []string{line}}
			}
			continue
		}
		if pid != s.pid {
			continue
		}
		s.lines = append(s.lines, line)
		// "QUEUEID: client=unknown[127.0.0.1]:34060, sasl_method=PLAIN, ..."
		if id, rest, ok := strings.Cut(msg, ": client="); ok {
			if client, _, _ := strings.Cut(rest, ", "); strings.HasSuffix(client, peer) {
				s.queueIDs = append(s.queueIDs, id)
			}
		}
		if strings.HasPrefix(msg, "disconnect from ") {
			if j := strings.Index(msg, peer+" "); j >= 0 {
				s.counts = map[string]string{}
				for _, f := range strings.Fields(msg[j+len(peer):]) {
					if k, v, ok := strings.Cut(f, "="); ok {
						s.counts[k] = v
					}
				}
				return s
			}
		}
	}
	return s
}

// expectCounts checks the session's command counts: every key in want
// must have that value ("" means the command must not appear).
func expectCounts(t *testing.T, s *session, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := s.counts[k]; got != v {
			t.Errorf("Postfix counted %s=%q in this session, want %q; the session:\n%s", k, got, v, s)
		}
	}
}

// poll calls fn until it reports done, fails, or the timeout passes.
func poll(t *testing.T, what string, timeout time.Duration, fn func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, err := fn()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not there after %v", what, timeout)
		}
		time.Sleep(pollInterval)
	}
}

// ---------------------------------------------------------------------------
// Errors

// downgrade returns err as a *DowngradeError, failing the test otherwise.
func downgrade(t *testing.T, err error) *smtpsecure.DowngradeError {
	t.Helper()
	var dg *smtpsecure.DowngradeError
	if !errors.As(err, &dg) {
		t.Fatalf("error %v (%T), want a *smtpsecure.DowngradeError", err, err)
	}
	if !errors.Is(err, smtpsecure.ErrDowngrade) {
		t.Errorf("errors.Is(err, ErrDowngrade) is false for %v", err)
	}
	return dg
}
