//go:build interop

package interop

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"math/rand/v2"
	"net"
	"net/smtp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/smtpsecure/smtpsecure"
)

// sendMode says how a case hands the message to the Client.
type sendMode int

const (
	// viaSend uses Client.Send: pipelined envelope and BDAT, since every
	// lab listener offers PIPELINING and CHUNKING.
	viaSend sendMode = iota
	// viaSendByteReader is viaSend with a reader that returns one octet
	// per Read, so every CR and LF arrives in a Write of its own.
	viaSendByteReader
	// viaData uses Client.Mail, Rcpt and Data: DATA with dot-stuffing,
	// written in small pieces of odd sizes.
	viaData
)

// submission is one message submitted to a lab listener.
type submission struct {
	name string
	tg   target
	host string // Dialer.Host: the name verified and sent as SNI
	user *user  // authenticate as this user, with auth
	auth func(u user) smtpsecure.Auth
	mech string // the mechanism the session must have used
	to   []string
	body []byte
	mode sendMode

	// prepare, when set, changes the Dialer before it dials (DANE).
	prepare func(*smtpsecure.Dialer)
	// sni is the server_name the ClientHello must carry, when it is not
	// host.
	sni string
	// dane says that the server must be authenticated by DANE, not by the
	// Web PKI.
	dane bool
}

// testSubmission covers item 2's submission cases: required STARTTLS and
// implicit TLS, IPv4 and IPv6, AUTH PLAIN and LOGIN with an ASCII and a
// UTF-8 password, one and many recipients, a 10 MiB message, and a body of
// lone dots and bare line ends, each delivered byte for byte.
//
// STD-1, STD-4, STD-5, STD-6, STD-8, STD-10, STD-11, STD-12, STD-14,
// STD-15, STD-16, STD-17, STD-25, STD-28, STD-29, STD-32
func testSubmission(t *testing.T, l *lab) {
	plain := func(u user) smtpsecure.Auth { return smtpsecure.PlainAuth("", u.name, u.pass) }
	login := func(u user) smtpsecure.Auth { return smtpsecure.LoginAuth(u.name, u.pass) }
	password := func(u user) smtpsecure.Auth { return smtpsecure.PasswordAuth(u.name, u.pass) }
	relay := func(local ...string) []string {
		out := make([]string, len(local))
		for i, s := range local {
			out[i] = s + "@" + l.relayDomain
		}
		return out
	}
	local := func(prefix string, domains []string) []string {
		out := make([]string, len(domains))
		for i, d := range domains {
			out[i] = prefix + strconv.Itoa(i) + "@" + d
		}
		return out
	}
	small := []byte("Hello from smtpsecure's interop tests.\r\nUTF-8 in the body: päss w0rd, ☃, Grüße.\r\n")
	torture := tortureBody()
	big := bigBody(10 << 20)

	cases := []submission{
		{name: "STARTTLS/PLAIN/ASCII", tg: l.starttls, user: &l.alice, auth: plain, mech: "PLAIN", to: relay("plain-ascii"), body: small},
		{name: "STARTTLS/PLAIN/UTF-8", tg: l.starttls, user: &l.bob, auth: plain, mech: "PLAIN", to: relay("plain-utf8"), body: small},
		{name: "STARTTLS/LOGIN/ASCII", tg: l.starttls, user: &l.alice, auth: login, mech: "LOGIN", to: relay("login-ascii"), body: small},
		{name: "STARTTLS/LOGIN/UTF-8", tg: l.starttls, user: &l.bob, auth: login, mech: "LOGIN", to: relay("login-utf8"), body: small},
		{name: "Implicit/PLAIN/ASCII", tg: l.implicit, user: &l.alice, auth: plain, mech: "PLAIN", to: relay("plain-ascii"), body: small},
		{name: "Implicit/PLAIN/UTF-8", tg: l.implicit, user: &l.bob, auth: plain, mech: "PLAIN", to: relay("plain-utf8"), body: small},
		{name: "Implicit/LOGIN/ASCII", tg: l.implicit, user: &l.alice, auth: login, mech: "LOGIN", to: relay("login-ascii"), body: small},
		{name: "Implicit/LOGIN/UTF-8", tg: l.implicit, user: &l.bob, auth: login, mech: "LOGIN", to: relay("login-utf8"), body: small},
		{name: "STARTTLS/PasswordAuth", tg: l.starttls, user: &l.bob, auth: password, mech: "PLAIN", to: relay("password"), body: small},
		// net/smtp's PlainAuth is given the host as written, and Dialer.Host
		// carries the port (issue 9 §3).
		{name: "STARTTLS/NetSMTPAuth/HostWithPort", tg: l.starttls, user: &l.alice, auth: func(u user) smtpsecure.Auth {
			return smtpsecure.NetSMTPAuth(smtp.PlainAuth("", u.name, u.pass, l.mxHost))
		}, mech: "PLAIN", to: relay("netsmtp-host-port"), body: small, prepare: func(d *smtpsecure.Dialer) {
			d.Host, d.Port = net.JoinHostPort(d.Host, strconv.Itoa(d.Port)), 0
		}},
		{name: "STARTTLS/NoAuth/MX-style", tg: l.starttls, to: []string{"postmaster@" + l.zone}, body: small},
		{name: "STARTTLS/IPLiteralHost", tg: l.starttls, host: "127.0.0.1", user: &l.alice, auth: plain, mech: "PLAIN", to: relay("ip-literal"), body: small},
		{name: "STARTTLS/ManyRecipients", tg: l.starttls, user: &l.alice, auth: plain, mech: "PLAIN", body: small,
			to: append(relay("many1", "many2", "many3"), local("many", l.mailDomains)...)},
		{name: "Implicit/ManyRecipients/DATA", tg: l.implicit, user: &l.bob, auth: login, mech: "LOGIN", body: small, mode: viaData,
			to: append(relay("many1", "many2"), "many3@"+l.zone, "many4@"+l.daneTA)},
		{name: "STARTTLS/SMTPUTF8", tg: l.starttls, user: &l.bob, auth: plain, mech: "PLAIN", body: small,
			to: []string{"grüße@" + l.zone, "日本語@" + l.relayDomain}},
		{name: "STARTTLS/LoneDots/BDAT", tg: l.starttls, user: &l.alice, auth: plain, mech: "PLAIN", to: relay("dots-bdat"), body: torture, mode: viaSendByteReader},
		{name: "STARTTLS/LoneDots/DATA", tg: l.starttls, user: &l.bob, auth: login, mech: "LOGIN", to: relay("dots-data"), body: torture, mode: viaData},
		{name: "Implicit/LoneDots/BDAT", tg: l.implicit, user: &l.bob, auth: plain, mech: "PLAIN", to: relay("dots-bdat"), body: torture, mode: viaSend},
		{name: "STARTTLS/10MiB/BDAT", tg: l.starttls, user: &l.alice, auth: plain, mech: "PLAIN", to: relay("big-bdat"), body: big},
		{name: "Implicit/10MiB/DATA", tg: l.implicit, user: &l.bob, auth: login, mech: "LOGIN", to: relay("big-data"), body: big, mode: viaData},
	}
	if l.ipv6 {
		cases = append(cases,
			submission{name: "STARTTLS/IPv6", tg: l.starttls6, user: &l.alice, auth: plain, mech: "PLAIN", to: relay("ipv6"), body: small},
			submission{name: "Implicit/IPv6", tg: l.implicit6, user: &l.bob, auth: login, mech: "LOGIN", to: relay("ipv6"), body: small},
			submission{name: "STARTTLS/IPv6LiteralHost", tg: l.starttls6, host: "::1", user: &l.bob, auth: plain, mech: "PLAIN", to: relay("ipv6-literal"), body: small},
		)
	} else {
		t.Log("the lab has no IPv6 (SMTPSECURE_LAB_IPV6=0): the IPv6 cases are left out")
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l.submit(t, tc)
		})
	}
	t.Run("RcptNilOptions", func(t *testing.T) { t.Parallel(); testRcptNilOptions(t, l) })
}

// testRcptNilOptions: Client.Rcpt with nil options, as Client.Mail
// accepts, must send a plain RCPT TO.
func testRcptNilOptions(t *testing.T, l *lab) {
	ctx := caseContext(t)
	d, _ := l.dialer(t, l.starttls, l.mxHost)
	msg := newMessage(t, "sender@"+l.zone, []string{"nil-options@" + l.zone}, []byte("RCPT with nil options\r\n"))
	c, err := d.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail(ctx, msg.from, nil); err != nil {
		t.Fatalf("Mail with nil options: %v", err)
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("Rcpt with nil options panicked: %v", r)
			}
		}()
		if err := c.Rcpt(ctx, msg.to[0], nil); err != nil {
			t.Fatalf("Rcpt with nil options: %v", err)
		}
	}()
	w, err := c.Data(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(msg.raw); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(ctx); err != nil {
		t.Error(err)
	}
	l.waitDelivered(t, msg)
}

// submit sends tc's message and checks the session as the client saw it,
// as Postfix logged it, and the delivered copies.
func (l *lab) submit(t *testing.T, tc submission) {
	ctx := caseContext(t)
	host := tc.host
	if host == "" {
		host = l.mxHost
	}
	if !tc.dane && host != l.wrongName && !slices.Contains(l.serverNames, host) {
		t.Fatalf("the lab's certificate does not name %s (SMTPSECURE_LAB_SERVER_NAMES=%q)", host, strings.Join(l.serverNames, " "))
	}
	d, ts := l.dialer(t, tc.tg, host)
	from := "sender@" + l.zone
	if tc.user != nil {
		d.Auth = tc.auth(*tc.user)
		from = tc.user.name
	}
	if tc.prepare != nil {
		tc.prepare(d)
	}
	msg := newMessage(t, from, tc.to, tc.body)
	offset := l.logSize(t)

	c, err := d.Dial(ctx)
	if err != nil {
		t.Fatalf("Dial %s (%s): %v", tc.tg.addr, host, err)
	}
	checkSecured(t, c)
	if tc.dane {
		if !c.ServerAuth().DANE() || c.DANEMatch() == nil {
			t.Errorf("ServerAuth() = %v, DANEMatch() = %v; want DANE", c.ServerAuth(), c.DANEMatch())
		}
	} else if c.ServerAuth() != smtpsecure.ServerAuthWebPKI {
		t.Errorf("ServerAuth() = %v, want Web PKI", c.ServerAuth())
	}
	if got := c.AuthMechanism(); got != tc.mech {
		t.Errorf("AuthMechanism() = %q, want %q", got, tc.mech)
	}
	wantMechs := l.dovecotMechs
	if tc.tg.listener == l.cyrus.listener {
		wantMechs = l.cyrusMechs
	}
	if ok, param := c.Extension("AUTH"); !ok || !slices.Equal(strings.Fields(strings.ToUpper(param)), wantMechs) {
		t.Errorf("AUTH after TLS = %v %q, want the lab's %v", ok, param, wantMechs)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("the capabilities after TLS list STARTTLS: they must come from the EHLO sent after TLS")
	}

	switch tc.mode {
	case viaSend, viaSendByteReader:
		var r io.Reader = bytes.NewReader(msg.raw)
		if tc.mode == viaSendByteReader {
			r = iotest.OneByteReader(r)
		}
		res, err := c.Send(ctx, &smtpsecure.Envelope{From: from, To: tc.to}, r)
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		if !slices.Equal(res.Accepted, tc.to) || len(res.Rejected) != 0 {
			t.Errorf("Send accepted %v and rejected %v, want all of %v accepted", res.Accepted, res.Rejected, tc.to)
		}
	case viaData:
		if err := sendWithData(ctx, c, msg); err != nil {
			t.Fatalf("Mail/Rcpt/Data: %v", err)
		}
	}
	if err := c.Quit(ctx); err != nil {
		t.Errorf("Quit: %v", err)
	}

	conn := ts.only(t)
	if tc.sni != "" {
		checkSNI(t, conn, tc.sni)
	} else {
		checkSNI(t, conn, host)
	}
	s := l.waitSession(t, tc.tg.listener, conn, offset)
	want := map[string]string{
		"ehlo":     "2",
		"starttls": "1",
		"auth":     "",
		"mail":     "1",
		"rcpt":     strconv.Itoa(len(tc.to)),
		"quit":     "1",
	}
	if tc.tg.implicit {
		// STD-6: no STARTTLS inside implicit TLS, and one EHLO.
		want["ehlo"], want["starttls"] = "1", ""
	}
	if tc.user != nil {
		want["auth"] = "1"
	}
	if tc.mode == viaData {
		want["data"], want["bdat"] = "1", ""
	} else {
		// STD-28, STD-29: BDAT only, every chunk accepted, no DATA.
		want["data"] = ""
		if b := s.counts["bdat"]; b == "" || strings.Contains(b, "/") {
			t.Errorf("Postfix counted bdat=%q, want every BDAT accepted; the session:\n%s", b, s)
		}
	}
	expectCounts(t, s, want)
	if len(s.queueIDs) != 1 {
		t.Errorf("the session queued %d messages, want 1; the session:\n%s", len(s.queueIDs), s)
	}
	l.waitDelivered(t, msg)
}

// checkSecured checks that the session is verified TLS 1.2 or later.
func checkSecured(t *testing.T, c *smtpsecure.Client) {
	t.Helper()
	cs, ok := c.TLSConnectionState()
	if !ok || !c.Verified() {
		t.Fatalf("session not verified TLS: TLS %v, verified %v", ok, c.Verified())
	}
	if cs.Version < tls.VersionTLS12 { // STD-12
		t.Errorf("negotiated %s, want TLS 1.2 or later", tls.VersionName(cs.Version))
	}
}

// checkSNI checks the server_name of the ClientHello on the wire: host as
// A-labels, none for an IP address (STD-14).
func checkSNI(t *testing.T, conn *tap, host string) {
	t.Helper()
	got, ok := clientHelloSNI(conn.sent())
	if !ok {
		t.Fatalf("no ClientHello found in what the client sent: %q", firstLine(conn.sent()))
	}
	want := host
	if net.ParseIP(host) != nil {
		want = ""
	}
	if got != want {
		t.Errorf("the ClientHello's server_name is %q, want %q", got, want)
	}
}

// sendWithData sends msg with MAIL, RCPT, DATA, writing the content in
// pieces of 1 to 64 octets so that CR, LF and dots fall on every boundary.
func sendWithData(ctx context.Context, c *smtpsecure.Client, msg *message) error {
	if err := c.Mail(ctx, msg.from, nil); err != nil {
		return err
	}
	for _, r := range msg.to {
		if err := c.Rcpt(ctx, r, &smtpsecure.RcptOptions{}); err != nil {
			return err
		}
	}
	w, err := c.Data(ctx)
	if err != nil {
		return err
	}
	b := msg.raw
	if len(b) > 1<<20 {
		// Large messages go in large writes; the encoder's boundaries are
		// exercised by the small ones.
		if _, err := w.Write(b); err != nil {
			return err
		}
		return w.Close()
	}
	sizes := []int{1, 2, 3, 5, 7, 11, 13, 64}
	for i := 0; len(b) > 0; i++ {
		n := min(sizes[i%len(sizes)], len(b))
		if _, err := w.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return w.Close()
}

// tortureBody is full of lines that end the data if they are not
// dot-stuffed, of bare LFs and lone CRs, and of SMTP smuggling attempts.
// It ends with a lone dot and no line ending.
func tortureBody() []byte {
	parts := []string{
		".\r\n", ".\n", "\n.\n", "\r\n.\r\n", "\n.\r\n", "\r\n.\n", "..\r\n", "...\n", ". \r\n", ".\t\n",
		".hidden line\n", "bare\nline\nfeeds\n", "lone\rcarriage\rreturns\r", "\r\r\n", "\n\n\n",
		".\r\n.\r\n", "\n.\nMAIL FROM:<smuggled@example.org>\nRCPT TO:<victim@example.org>\nDATA\n",
		"\r\n.\r\nQUIT\r\n", "UTF-8: ☃ é ü 日本\n", "trailing spaces   \n", "\t.\tindented dot\r\n",
	}
	var b bytes.Buffer
	b.WriteString("Lone dots, bare line feeds and other line ends.\r\n")
	for i := range 300 {
		b.WriteString(parts[i%len(parts)])
	}
	b.WriteString(".")
	return b.Bytes()
}

// bigBody returns n octets of text lines of 76 characters, one in seven
// starting with a dot, the same for every run.
func bigBody(n int) []byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/ .,;:-"
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 0, n)
	for line := 0; len(b) < n; line++ {
		l := min(76, n-len(b)-2)
		if l <= 0 {
			break
		}
		start := len(b)
		for range l {
			b = append(b, alphabet[r.IntN(len(alphabet))])
		}
		if line%7 == 0 {
			b[start] = '.'
		}
		b = append(b, '\r', '\n')
	}
	for len(b) < n {
		b = append(b, '\n')
	}
	return b
}
