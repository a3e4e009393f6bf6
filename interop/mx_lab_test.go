//go:build interop

package interop

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/dane"
	mtasts "github.com/smtpsecure/smtpsecure/mta_sts"
)

// TestMXLab pins the MX-delivery part of the lab (scripts/interop-mx.bash):
// the DNS data of every new domain and MX host as the library's dane
// resolver sees it through Unbound, the non-validating resolver, the MTA-STS
// policies as an mtasts.Client fetches them from nginx, the certificate
// chains the MX hosts present against their TLSA records and policies, and
// each domain's expected route into its Maildir. The delivery interop tests
// rely on this data; when one of these tests fails, the lab changed, not the
// library.
func TestMXLab(t *testing.T) {
	l := loadMXLab(t)
	groups := []struct {
		name string
		run  func(*testing.T, *mxLab)
	}{
		{"DNS", testMXLabDNS},
		{"NonValidatingResolver", testMXLabNonValidating},
		{"MTA-STS", testMXLabMTASTS},
		{"Certificates", testMXLabCertificates},
		{"Routes", testMXLabRoutes},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			g.run(t, l)
		})
	}
}

// mxCaseTimeout bounds one case. It is generous: the machine may be loaded,
// and Postfix delivers asynchronously.
const mxCaseTimeout = 60 * time.Second

// mxHost is one MX host of the lab: Postfix on port 25 of an address of its
// own, with a certificate for its name from the lab CA.
type mxHost struct {
	key      string   // the variable stem, such as MX_DANE
	name     string   // the host name
	addr     string   // ip:25
	listener string   // its name in Postfix's log: postfix/<listener>/smtpd
	tlsa     []string // its _25._tcp TLSA records in presentation form, sorted
	zone     string   // the zone it is in
}

// mxPolicy is the MTA-STS policy a domain publishes.
type mxPolicy struct {
	host string // mta-sts.<domain>
	addr string // ip:443 of the policy host
	mode mtasts.Mode
	mx   []string // the policy's mx patterns
	file string   // the policy as served
}

// mxExpect is a domain's expected delivery outcome.
type mxExpect struct {
	delivered bool
	host      string // the MX host that takes the message
	tls       string // how TLS is authenticated there: dane-ee, webpki, or tls (not authenticated)
}

// mxDomain is one recipient domain of the MX part.
type mxDomain struct {
	key     string // the variable stem, such as FAILOVER_DOMAIN
	name    string
	zone    string
	mx      []string // the MX hosts, preferences 10, 20, ...
	maildir string
	expect  mxExpect
	policy  *mxPolicy // nil without MTA-STS
	tlsrpt  string    // the _smtp._tls rua, "" without a TLS-RPT record
}

// mxLab is the MX part of the running lab, as its variables describe it.
type mxLab struct {
	caPool                       *x509.CertPool
	resolverAddr, nvResolver     string
	zone, daneZone, stsZone      string
	unusedSPKI                   string
	hosts                        []*mxHost
	domains                      []*mxDomain
	policyID                     string
	maxAge                       time.Duration
	tlsrptAddress, tlsrptMaildir string
}

func (l *mxLab) host(name string) *mxHost {
	for _, h := range l.hosts {
		if h.name == name {
			return h
		}
	}
	return nil
}

func (l *mxLab) domain(key string) *mxDomain {
	for _, d := range l.domains {
		if d.key == key {
			return d
		}
	}
	return nil
}

// secure reports whether zone is the signed zone of the MX part.
func (l *mxLab) secure(zone string) bool { return zone == l.daneZone }

// resolver returns the library's resolver pointed at the validating Unbound.
func (l *mxLab) resolver() *dane.Resolver {
	return &dane.Resolver{Servers: []string{l.resolverAddr}}
}

// loadMXLab returns the lab's MX part, skipping the test when there is no
// lab at all.
func loadMXLab(t *testing.T) *mxLab {
	t.Helper()
	if os.Getenv("SMTPSECURE_LAB_DIR") == "" {
		t.Skip("SMTPSECURE_LAB_DIR is not set, so there is no interop lab: run " +
			"`scripts/interop run --check -- go test -tags interop -count=1 -v ./interop/...` as root")
	}
	l, err := readMXLab()
	if err != nil {
		t.Fatalf("the interop lab's MX part is unusable: %v", err)
	}
	return l
}

// mxEnv reads SMTPSECURE_LAB_* variables and collects the missing ones.
type mxEnv struct{ missing []string }

func (e *mxEnv) get(name string) string {
	v, ok := os.LookupEnv("SMTPSECURE_LAB_" + name)
	if !ok || v == "" {
		e.missing = append(e.missing, "SMTPSECURE_LAB_"+name)
	}
	return v
}

// optional reads a variable that may be empty (but must be set).
func (e *mxEnv) optional(name string) string {
	v, ok := os.LookupEnv("SMTPSECURE_LAB_" + name)
	if !ok {
		e.missing = append(e.missing, "SMTPSECURE_LAB_"+name)
	}
	return v
}

// The variable stems of the MX hosts and domains, as scripts/README.md lists them.
var (
	mxHostKeys   = []string{"MX_DANE", "MX_DANE_BAD", "MX_PKIX", "MX_STS", "MX_STS_OTHER"}
	mxDomainKeys = []string{"DANE_DOMAIN", "FAILOVER_DOMAIN", "UNUSABLE_TLSA_DOMAIN", "REPORTS_DOMAIN",
		"STS_ENFORCE_DOMAIN", "STS_MISMATCH_DOMAIN", "STS_TESTING_DOMAIN", "NO_POLICY_DOMAIN"}
)

func readMXLab() (*mxLab, error) {
	var e mxEnv
	l := &mxLab{
		resolverAddr:  e.get("RESOLVER_ADDR"),
		nvResolver:    e.get("NONVALIDATING_RESOLVER_ADDR"),
		zone:          e.get("ZONE"),
		daneZone:      e.get("DANE_ZONE"),
		stsZone:       e.get("STS_ZONE"),
		unusedSPKI:    e.get("UNUSED_SPKI_SHA256"),
		policyID:      e.get("STS_POLICY_ID"),
		tlsrptAddress: e.get("TLSRPT_ADDRESS"),
		tlsrptMaildir: e.get("TLSRPT_MAILDIR"),
	}
	zoneOf := func(name string) string {
		if name == l.daneZone || strings.HasSuffix(name, "."+l.daneZone) {
			return l.daneZone
		}
		return l.stsZone
	}
	maxAge, err := strconv.Atoi(e.get("STS_MAX_AGE"))
	if err != nil {
		return nil, fmt.Errorf("SMTPSECURE_LAB_STS_MAX_AGE: %w", err)
	}
	l.maxAge = time.Duration(maxAge) * time.Second
	for _, k := range mxHostKeys {
		h := &mxHost{key: k, name: e.get(k + "_HOST"), addr: e.get(k + "_ADDR"), listener: e.get(k + "_LISTENER")}
		for _, r := range strings.Split(e.optional(k+"_TLSA"), ";") {
			if r = strings.TrimSpace(r); r != "" {
				h.tlsa = append(h.tlsa, r)
			}
		}
		slices.Sort(h.tlsa)
		h.zone = zoneOf(h.name)
		l.hosts = append(l.hosts, h)
	}
	tlsrpt := strings.Fields(e.get("TLSRPT_DOMAINS"))
	rua := e.get("TLSRPT_RUA")
	for _, k := range mxDomainKeys {
		d := &mxDomain{key: k, name: e.get(k), mx: strings.Fields(e.get(k + "_MX")), maildir: e.get(k + "_MAILDIR")}
		d.zone = zoneOf(d.name)
		exp := strings.Fields(e.get(k + "_EXPECT"))
		switch {
		case len(exp) == 3 && exp[0] == "delivered":
			d.expect = mxExpect{delivered: true, host: exp[1], tls: exp[2]}
		case len(exp) == 3 && exp[0] == "refused":
		default:
			return nil, fmt.Errorf("SMTPSECURE_LAB_%s_EXPECT = %q: want \"delivered HOST TLS\" or \"refused - -\"", k, exp)
		}
		if slices.Contains(tlsrpt, d.name) {
			d.tlsrpt = rua
		}
		if _, ok := os.LookupEnv("SMTPSECURE_LAB_" + k + "_POLICY_HOST"); ok {
			d.policy = &mxPolicy{
				host: e.get(k + "_POLICY_HOST"),
				addr: e.get(k + "_POLICY_ADDR"),
				mode: mtasts.Mode(e.get(k + "_POLICY_MODE")),
				mx:   strings.Fields(e.get(k + "_POLICY_MX")),
				file: e.get(k + "_POLICY_FILE"),
			}
		}
		l.domains = append(l.domains, d)
	}
	caFile := e.get("CA_FILE")
	if len(e.missing) > 0 {
		return nil, fmt.Errorf("SMTPSECURE_LAB_DIR is set but these variables are not: %s (a lab made by an older scripts/interop? bring it up again)",
			strings.Join(e.missing, ", "))
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading the lab CA: %w", err)
	}
	l.caPool = x509.NewCertPool()
	if !l.caPool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	for _, d := range l.domains {
		for _, h := range append(slices.Clone(d.mx), d.expect.host) {
			if h != "" && l.host(h) == nil {
				return nil, fmt.Errorf("domain %s names MX host %s, which is not among the lab's MX hosts", d.name, h)
			}
		}
	}
	return l, nil
}

// mxContext returns the context of one case.
func mxContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), mxCaseTimeout)
	t.Cleanup(cancel)
	return ctx
}

// ---------------------------------------------------------------------------
// SMTP sessions with a reference client (net/smtp), not the library's.

// mxSession is an SMTP session to an MX host, after EHLO and STARTTLS.
type mxSession struct {
	c     *smtp.Client
	conn  net.Conn
	state tls.ConnectionState
	stop  func() bool
}

// dialMX connects to the MX host h, says EHLO and starts TLS with cfg. The
// connection's deadline is the context's, and ending the context closes it.
// On a failed handshake the error is returned and the session is closed.
func dialMX(ctx context.Context, h *mxHost, cfg *tls.Config) (*mxSession, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", h.addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s (%s): %w", h.name, h.addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	s := &mxSession{conn: conn, stop: context.AfterFunc(ctx, func() { conn.Close() })}
	fail := func(err error) (*mxSession, error) {
		s.close()
		return nil, err
	}
	if s.c, err = smtp.NewClient(conn, h.name); err != nil {
		return fail(fmt.Errorf("greeting of %s: %w", h.name, err))
	}
	if err := s.c.Hello("client.interop.smtpsecure.test"); err != nil {
		return fail(fmt.Errorf("EHLO to %s: %w", h.name, err))
	}
	if ok, _ := s.c.Extension("STARTTLS"); !ok {
		return fail(fmt.Errorf("%s does not offer STARTTLS", h.name))
	}
	if err := s.c.StartTLS(cfg); err != nil {
		return fail(fmt.Errorf("STARTTLS with %s: %w", h.name, err))
	}
	var ok bool
	if s.state, ok = s.c.TLSConnectionState(); !ok {
		return fail(fmt.Errorf("no TLS state after STARTTLS with %s", h.name))
	}
	return s, nil
}

// send sends msg from sender to rcpt in the session.
func (s *mxSession) send(from, rcpt string, msg []byte) error {
	if err := s.c.Mail(from); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	if err := s.c.Rcpt(rcpt); err != nil {
		return fmt.Errorf("RCPT TO:<%s>: %w", rcpt, err)
	}
	w, err := s.c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("writing the message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("end of DATA: %w", err)
	}
	return nil
}

// close ends the session with QUIT (best effort) and closes the connection.
func (s *mxSession) close() {
	if s.c != nil {
		s.c.Quit()
	}
	s.stop()
	s.conn.Close()
}

// chainOf returns the certificate chain h presents after STARTTLS, taken
// without verifying it (the caller verifies it by the rules at hand).
func chainOf(ctx context.Context, h *mxHost) ([]*x509.Certificate, error) {
	s, err := dialMX(ctx, h, &tls.Config{ServerName: h.name, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, err
	}
	defer s.close()
	if len(s.state.PeerCertificates) == 0 {
		return nil, errors.New(h.name + " presented no certificate")
	}
	return s.state.PeerCertificates, nil
}

// mxMessage returns a message with a Message-ID no other test uses.
func mxMessage(t *testing.T, from, to string) (id string, raw []byte) {
	id = uniqueID(t)
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: <%s>\r\nTo: <%s>\r\nSubject: smtpsecure interop %s\r\n", from, to, t.Name())
	fmt.Fprintf(&b, "Date: %s\r\nMessage-ID: <%s>\r\n\r\nMX lab route check.\r\n", time.Now().UTC().Format(time.RFC1123Z), id)
	return id, b.Bytes()
}
