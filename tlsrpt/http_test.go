package tlsrpt

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// collector is an in-process HTTPS report collector.
type collector struct {
	srv     *httptest.Server
	mu      sync.Mutex
	reports []*Report
	types   []string
	status  int // answer; 0 means 200
}

func newCollector(t *testing.T) *collector {
	c := &collector{}
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(c.serve))
	c.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes fail on purpose
	c.srv.StartTLS()
	t.Cleanup(c.srv.Close)
	return c
}

func (c *collector) serve(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	status := c.status
	c.mu.Unlock()
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	rep, err := ParseReport(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if status != 0 {
		w.WriteHeader(status)
	}
	if status >= 300 {
		return // not accepted
	}
	c.mu.Lock()
	c.reports = append(c.reports, rep)
	c.types = append(c.types, r.Header.Get("Content-Type"))
	c.mu.Unlock()
}

func (c *collector) received() ([]*Report, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Report(nil), c.reports...), append([]string(nil), c.types...)
}

func (c *collector) setStatus(s int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status = s
}

func (c *collector) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.srv.Certificate())
	return p
}

func testGzip(t *testing.T) []byte {
	t.Helper()
	rep, err := testSubmitter.Build(testAggregate(), "abc123")
	if err != nil {
		t.Fatal(err)
	}
	gz, err := rep.Gzip()
	if err != nil {
		t.Fatal(err)
	}
	return gz
}

// STD-89: the report is posted as application/tlsrpt+gzip over verified
// TLS; any 2xx is success; the request is marked as a report delivery.
func TestHTTPPosterPosts(t *testing.T) {
	c := newCollector(t)
	var marked bool
	var mu sync.Mutex
	p := &HTTPPoster{
		RootCAs: c.pool(),
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			mu.Lock()
			marked = IsReportDelivery(ctx)
			mu.Unlock()
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	for _, status := range []int{200, 201, 202, 204} {
		c.setStatus(status)
		if err := p.Post(context.Background(), c.srv.URL+"/v1/tlsrpt", testGzip(t)); err != nil {
			t.Fatalf("status %d: %v", status, err)
		}
	}
	reps, types := c.received()
	if len(reps) != 4 {
		t.Fatalf("collector got %d reports", len(reps))
	}
	for _, ct := range types {
		if ct != "application/tlsrpt+gzip" {
			t.Errorf("Content-Type %q", ct)
		}
	}
	checkCounts(t, reps[0], []wantCounts{
		{domain: "example.com", policyType: "sts", mxHosts: []string{"*.example.com"}, summary: Summary{10, 3}, details: []int64{1, 2}},
		{domain: "example.com", policyType: "tlsa", mxHosts: []string{"mx1.example.com"}, summary: Summary{7, 0}},
	})
	mu.Lock()
	defer mu.Unlock()
	if !marked {
		t.Error("the connection was not made under WithReportDelivery")
	}
}

func TestHTTPPosterFailures(t *testing.T) {
	c := newCollector(t)
	var followed bool
	target := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { followed = true }))
	defer target.Close()
	redirect := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	pool := c.pool()
	pool.AddCert(redirect.Certificate())
	pool.AddCert(target.Certificate())
	p := &HTTPPoster{RootCAs: pool}
	ctx := context.Background()
	gz := testGzip(t)

	c.setStatus(http.StatusInternalServerError)
	err := p.Post(ctx, c.srv.URL, gz)
	if !errors.Is(err, ErrHTTPStatus) || !errors.Is(err, ErrSend) || !strings.Contains(err.Error(), "500") {
		t.Errorf("500: %v", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Op != "post" || e.Name != c.srv.URL {
		t.Errorf("500: not an *Error naming the URI: %#v", err)
	}

	err = p.Post(ctx, redirect.URL, gz)
	if !errors.Is(err, ErrRedirect) || !errors.Is(err, ErrHTTPStatus) || followed {
		t.Errorf("redirect: %v (followed: %v)", err, followed)
	}

	// The system roots do not trust the test server.
	err = (&HTTPPoster{}).Post(ctx, c.srv.URL, gz)
	if !errors.Is(err, ErrWebPKI) || !errors.Is(err, ErrSend) {
		t.Errorf("untrusted certificate: %v", err)
	}
	// The certificate is for 127.0.0.1 and example.com, not for this name.
	wrongName := &HTTPPoster{RootCAs: pool, DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, c.srv.Listener.Addr().String())
	}}
	if err := wrongName.Post(ctx, "https://collector.other.example/r", gz); !errors.Is(err, ErrWebPKI) {
		t.Errorf("wrong name: %v", err)
	}

	for _, uri := range []string{"http://127.0.0.1/r", "mailto:a@example.com", "ftp://x.example/", "no scheme", "https://"} {
		if err := p.Post(ctx, uri, gz); !errors.Is(err, ErrUnsupportedURI) || !errors.Is(err, ErrSend) {
			t.Errorf("%q: %v, want ErrUnsupportedURI", uri, err)
		}
	}

	// A password in the URI never appears in an error.
	c.setStatus(http.StatusForbidden)
	withPass := strings.Replace(c.srv.URL, "https://", "https://user:s3cret@", 1)
	if err := p.Post(ctx, withPass, gz); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error shows the password: %v", err)
	}
	if err := p.Post(ctx, "https://user:s3cret@bad host/", gz); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error shows the password: %v", err)
	}
}

// A POST ends with ctx and with Timeout, whatever the collector does.
func TestHTTPPosterBounded(t *testing.T) {
	entered := make(chan struct{}, 1)
	stop := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case entered <- struct{}{}:
		default:
		}
		// Never answers: not even when the request's context ends, which
		// net/http can signal before the client gives up, and after which
		// a handler that returned would send an implicit 200.
		<-stop
		panic(http.ErrAbortHandler)
	}))
	defer srv.Close()
	defer close(stop) // before srv.Close, which waits for the handlers
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	gz := testGzip(t)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&HTTPPoster{RootCAs: pool}).Post(ctx, srv.URL, gz) }()
	<-entered
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || !errors.Is(err, ErrSend) {
		t.Errorf("cancelled: %v", err)
	}

	err := (&HTTPPoster{RootCAs: pool, Timeout: 50 * time.Millisecond}).Post(context.Background(), srv.URL, gz)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrSend) {
		t.Errorf("timeout: %v", err)
	}
}

// A collector that answers with a huge body is read only so far.
func TestHTTPPosterBoundedResponse(t *testing.T) {
	var wrote int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat([]byte("x"), 32<<10)
		for i := 0; i < 1024; i++ { // 32 MiB if the client read it all
			n, err := w.Write(chunk)
			wrote += int64(n)
			if err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	if err := (&HTTPPoster{RootCAs: pool}).Post(context.Background(), srv.URL, testGzip(t)); err != nil {
		t.Fatal(err)
	}
	srv.Close() // waits for the handler
	if wrote >= 32<<20 {
		t.Errorf("the client read the whole %d-octet response", wrote)
	}
}
