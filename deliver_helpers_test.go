package smtpsecure

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/internal/dnstest"
	"github.com/smtpsecure/smtpsecure/internal/mxworld"
	"github.com/smtpsecure/smtpsecure/internal/smtptest"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
	"github.com/smtpsecure/smtpsecure/tlsrpt"
)

// deliverTimeout bounds one Deliver call in tests: far above what a
// delivery in the in-process world takes, so that a loaded machine never
// trips it; it only stops a test that hangs.
const deliverTimeout = 2 * time.Minute

// worldDeliverer returns a Deliverer set up with the four knobs of the
// world, and nothing else but a fixed EHLO name (so that no test depends on
// the machine's host name) and the recorder.
func worldDeliverer(w *mxworld.World, rec TLSReportRecorder) *Deliverer {
	return &Deliverer{
		Resolver:       &dane.Resolver{Servers: []string{w.ResolverAddr()}, Timeout: 10 * time.Second},
		RootCAs:        w.RootCAs(),
		MTASTSCacheDir: w.MTASTSCacheDir(),
		DialContext:    w.DialContext,
		LocalName:      "sender.example",
		TLSReports:     rec,
	}
}

// memRecorder keeps every TLS-RPT result it is given. Unlike a
// tlsrpt.Recorder it keeps those recorded under tlsrpt.WithReportDelivery
// too, so that a test sees whether Deliver gave it any.
type memRecorder struct {
	mu  sync.Mutex
	all []tlsrpt.Result
}

func (m *memRecorder) Record(ctx context.Context, r tlsrpt.Result) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.all = append(m.all, r)
	return nil
}

// forDomain returns the results recorded for a policy domain.
func (m *memRecorder) forDomain(domain string) []tlsrpt.Result {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []tlsrpt.Result
	for _, r := range m.all {
		if r.Policy.Domain == domain {
			out = append(out, r)
		}
	}
	return out
}

// failureTypes returns the sorted result types of the failures in rs.
func failureTypes(rs []tlsrpt.Result) []string {
	var out []string
	for _, r := range rs {
		if r.ResultType != "" {
			out = append(out, r.ResultType)
		}
	}
	slices.Sort(out)
	return out
}

// testMessage returns a message with a Message-ID no other test uses.
func testMessage(t testing.TB, to ...string) (id string, msg *bytes.Reader) {
	id = fmt.Sprintf("%s.%d@sender.example", strings.NewReplacer("/", ".", " ", "_").Replace(t.Name()), msgSeq.Add(1))
	body := fmt.Sprintf("From: <a@sender.example>\r\nTo: %s\r\nSubject: test\r\nMessage-ID: <%s>\r\n\r\nHello.\r\n",
		strings.Join(to, ", "), id)
	return id, bytes.NewReader([]byte(body))
}

var msgSeq atomic.Int64

// deliver calls d.Deliver with a bounded context and fails the test on a
// call error.
func deliver(t *testing.T, d *Deliverer, env *Envelope, msg MessageSource) []RecipientResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deliverTimeout)
	defer cancel()
	res, err := d.Deliver(ctx, env, msg)
	if err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if len(res) != len(env.To) {
		t.Fatalf("Deliver returned %d results for %d recipients", len(res), len(env.To))
	}
	return res
}

// receivedBy returns the MX hosts of the world whose server accepted the
// message with Message-ID id, and how many copies each got.
func receivedBy(w *mxworld.World, id string) map[string]int {
	out := map[string]int{}
	for _, h := range w.Hosts() {
		for _, m := range w.MX(h).Messages() {
			if bytes.Contains(m.Data, []byte("Message-ID: <"+id+">")) {
				out[h]++
			}
		}
	}
	return out
}

// authName is how mxworld's Expect names a ServerAuth.
func authName(a ServerAuth) string {
	switch a {
	case ServerAuthDANEEE:
		return "dane-ee"
	case ServerAuthDANETA:
		return "dane-ta"
	case ServerAuthWebPKI:
		return "webpki"
	}
	return "none"
}

// miniWorld is one recipient domain, mini.example, without any published
// policy, whose MX hosts a test scripts with hooks: for the behaviours the
// shared world (mxworld) does not have. Each host is an in-process server
// with a certificate from the world's CA, reached through the dial hook at
// the address DNS gives it.
type miniWorld struct {
	dns     *dnstest.Server
	ca      *testpki.CA
	servers map[string]*smtptest.Server // by host name
	addrs   map[netip.Addr]string       // address -> listener
}

// miniHost is an MX host of mini.example, by preference order.
type miniHost struct {
	name string // under mini.example
	hook func(*smtptest.Conn, smtptest.Command) (string, bool)
	// ext are the EHLO extensions before and after STARTTLS; nil means
	// miniExtensions.
	ext []string
}

var miniExtensions = []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SIZE 10485760"}

func newMiniWorld(t *testing.T, hosts ...miniHost) *miniWorld {
	t.Helper()
	ca, err := testpki.NewCA("mini world CA")
	if err != nil {
		t.Fatal(err)
	}
	w := &miniWorld{dns: dnstest.New(t), ca: ca, servers: map[string]*smtptest.Server{}, addrs: map[netip.Addr]string{}}
	w.dns.SetZone("mini.example", dnstest.Rule{Mode: dnstest.Insecure})
	for i, h := range hosts {
		leaf, err := ca.Issue(testpki.LeafOptions{DNSNames: []string{h.name}})
		if err != nil {
			t.Fatal(err)
		}
		ext := h.ext
		if ext == nil {
			ext = miniExtensions
		}
		srv := &smtptest.Server{Hostname: h.name, TLSConfig: leaf.ServerConfig(), Extensions: ext, TLSExtensions: ext, Hook: h.hook}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		addr := netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)})
		w.dns.MustAdd(fmt.Sprintf("mini.example. MX %d %s.", 10*(i+1), h.name), fmt.Sprintf("%s. A %s", h.name, addr))
		w.servers[h.name] = srv
		w.addrs[addr] = srv.Addr()
	}
	return w
}

// dial maps port 25 of the hosts' addresses to their servers.
func (w *miniWorld) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || ap.Port() != 25 || w.addrs[ap.Addr()] == "" {
		return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", w.addrs[ap.Addr()])
}

func (w *miniWorld) deliverer(rec TLSReportRecorder) *Deliverer {
	return &Deliverer{
		Resolver:    &dane.Resolver{Servers: []string{w.dns.Addr}, Timeout: 10 * time.Second},
		RootCAs:     w.ca.Pool(),
		DialContext: w.dial,
		LocalName:   "sender.example",
		TLSReports:  rec,
	}
}

// messages returns the messages host accepted.
func (w *miniWorld) messages(host string) []*smtptest.Message { return w.servers[host].Messages() }

// sessions returns the number of connections host accepted.
func (w *miniWorld) sessions(host string) int { return len(w.servers[host].Sessions()) }

// countingReaderAt counts the octets read from a message.
type countingReaderAt struct {
	r *bytes.Reader
	n atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingReaderAt) Size() int64 { return c.r.Size() }
