package mtasts

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

// vectorsDir returns the shared MTA-STS vectors directory, or skips the test
// when the checkout does not have it.
func vectorsDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join("..", "..", "shared", "vectors", "mtasts")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("shared test vectors not found at %s (they are outside the repository; CI has them): %v", dir, err)
	}
	return dir
}

// readVectorJSON decodes a vector file into v.
func readVectorJSON(t testing.TB, rel string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(vectorsDir(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

// fakeResolver is an in-memory TXTResolver with CNAMEs and SERVFAILs, which
// records the names it was asked for.
type fakeResolver struct {
	mu       sync.Mutex
	txt      map[string][]string // absolute lower-case name -> records
	cname    map[string]string
	servfail map[string]bool
	queries  []string
}

func newFakeResolver() *fakeResolver {
	return &fakeResolver{txt: map[string][]string{}, cname: map[string]string{}, servfail: map[string]bool{}}
}

func fqdn(name string) string {
	name = strings.ToLower(name)
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

// setTXT sets (or, with no records, removes) the TXT records of name.
func (r *fakeResolver) setTXT(name string, recs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(recs) == 0 {
		delete(r.txt, fqdn(name))
		return
	}
	r.txt[fqdn(name)] = recs
}

func (r *fakeResolver) setServfail(name string, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.servfail[fqdn(name)] = on
}

func (r *fakeResolver) queried() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.queries...)
}

func (r *fakeResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queries = append(r.queries, name)
	if err := ctx.Err(); err != nil {
		return nil, &net.DNSError{Err: err.Error(), Name: name}
	}
	n := fqdn(name)
	for hops := 0; hops < 8; hops++ {
		if r.servfail[n] {
			return nil, &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
		}
		if recs, ok := r.txt[n]; ok {
			return append([]string(nil), recs...), nil
		}
		t, ok := r.cname[n]
		if !ok {
			break
		}
		n = fqdn(t)
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// policyServer is an in-process HTTPS server that serves MTA-STS policies
// for several policy hosts, each with its own certificate and handler.
type policyServer struct {
	t   testing.TB
	ca  *testpki.CA
	srv *httptest.Server

	mu       sync.Mutex
	hosts    map[string]*policyHost
	requests map[string]int
	sni      []string
	headers  []http.Header
}

type policyHost struct {
	cert    *tls.Certificate
	handler http.HandlerFunc
}

func newPolicyServer(t testing.TB) *policyServer {
	t.Helper()
	ca, err := testpki.NewCA("mtasts test root")
	if err != nil {
		t.Fatal(err)
	}
	ps := &policyServer{t: t, ca: ca, hosts: map[string]*policyHost{}, requests: map[string]int{}}
	fallback := ps.issue(testpki.LeafOptions{DNSNames: []string{"fallback.invalid"}})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(ps.serve))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			ps.mu.Lock()
			defer ps.mu.Unlock()
			ps.sni = append(ps.sni, hello.ServerName)
			if h, ok := ps.hosts[hello.ServerName]; ok && h.cert != nil {
				return h.cert, nil
			}
			return fallback, nil
		},
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ps.srv = srv
	return ps
}

// issue returns a certificate from the server's CA.
func (ps *policyServer) issue(o testpki.LeafOptions) *tls.Certificate {
	ps.t.Helper()
	leaf, err := ps.ca.Issue(o)
	if err != nil {
		ps.t.Fatal(err)
	}
	c := leaf.TLSCertificate()
	return &c
}

// certFor returns a valid certificate for host.
func (ps *policyServer) certFor(host string) *tls.Certificate {
	return ps.issue(testpki.LeafOptions{DNSNames: []string{host}})
}

// handle registers host with a certificate (nil: a valid one for host) and
// a handler.
func (ps *policyServer) handle(host string, cert *tls.Certificate, h http.HandlerFunc) {
	if cert == nil {
		cert = ps.certFor(host)
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.hosts[host] = &policyHost{cert: cert, handler: h}
}

// servePolicy registers host serving body as text/plain with status 200.
func (ps *policyServer) servePolicy(host, body string) {
	ps.handle(host, nil, textHandler(http.StatusOK, "text/plain", body))
}

func textHandler(status int, ctype, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ctype != "" {
			w.Header().Set("Content-Type", ctype)
		} else {
			w.Header()["Content-Type"] = nil // suppress sniffing
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func (ps *policyServer) serve(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	ps.mu.Lock()
	ps.requests[host+r.URL.Path]++
	ps.headers = append(ps.headers, r.Header.Clone())
	h, ok := ps.hosts[host]
	ps.mu.Unlock()
	if !ok || h.handler == nil {
		http.NotFound(w, r)
		return
	}
	h.handler(w, r)
}

// count returns how many requests reached host's policy URL.
func (ps *policyServer) count(host string) int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.requests[host+"/.well-known/mta-sts.txt"]
}

func (ps *policyServer) snis() []string {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return append([]string(nil), ps.sni...)
}

// dial connects every registered host name to the server and fails like
// DNS for any other name.
func (ps *policyServer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ps.mu.Lock()
	_, ok := ps.hosts[host]
	ps.mu.Unlock()
	if !ok {
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}}
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", ps.srv.Listener.Addr().String())
}

// client returns a Client wired to the server and resolver r.
func (ps *policyServer) client(r TXTResolver) *Client {
	return &Client{Resolver: r, RootCAs: ps.ca.Pool(), DialContext: ps.dial, FetchTimeout: 10 * time.Second}
}

// fakeClock is a settable clock for Client.Time.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logBuffer collects slog records for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

const goodPolicy = "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n"
