package mtasts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

// STD-44, STD-45, STD-46, STD-47: each fetch rule against an in-process
// HTTPS server with a test CA.
func TestFetchPolicyRules(t *testing.T) {
	ps := newPolicyServer(t)
	other, err := testpki.NewCA("untrusted root")
	if err != nil {
		t.Fatal(err)
	}
	untrusted, err := other.Issue(testpki.LeafOptions{DNSNames: []string{"mta-sts.untrusted.example"}})
	if err != nil {
		t.Fatal(err)
	}
	untrustedCert := untrusted.TLSCertificate()

	ps.servePolicy("mta-sts.ok.example", goodPolicy)
	ps.handle("mta-sts.params.example", nil, textHandler(200, "TEXT/Plain; charset=utf-8", goodPolicy))
	ps.handle("mta-sts.redirect.example", nil, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://mta-sts.ok.example/.well-known/mta-sts.txt", http.StatusMovedPermanently)
	})
	ps.handle("mta-sts.found.example", nil, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	ps.handle("mta-sts.notfound.example", nil, textHandler(404, "text/plain", goodPolicy))
	ps.handle("mta-sts.error.example", nil, textHandler(500, "text/plain", goodPolicy))
	ps.handle("mta-sts.nocontent.example", nil, textHandler(204, "text/plain", ""))
	ps.handle("mta-sts.notmodified.example", nil, textHandler(304, "", ""))
	ps.handle("mta-sts.html.example", nil, textHandler(200, "text/html", goodPolicy))
	ps.handle("mta-sts.notype.example", nil, textHandler(200, "", goodPolicy))
	ps.handle("mta-sts.plainplus.example", nil, textHandler(200, "text/plain+xml", goodPolicy))
	ps.handle("mta-sts.big.example", nil, textHandler(200, "text/plain", goodPolicy+"x: "+strings.Repeat("a", MaxPolicySize)))
	ps.handle("mta-sts.bigchunked.example", nil, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, goodPolicy)
		w.(http.Flusher).Flush() // no Content-Length: chunked
		for i := 0; i < 2*MaxPolicySize/1024; i++ {
			if _, err := io.WriteString(w, "x: "+strings.Repeat("a", 1020)+"\n"); err != nil {
				return
			}
		}
	})
	ps.handle("mta-sts.exact.example", nil, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		body := goodPolicy + "x: "
		body += strings.Repeat("a", MaxPolicySize-len(body)-1) + "\n"
		io.WriteString(w, body)
	})
	ps.handle("mta-sts.invalid.example", nil, textHandler(200, "text/plain", "version: STSv1\nmode: enforce\nmax_age: 1\n"))
	ps.handle("mta-sts.wrongname.example", ps.certFor("mta-sts.other.example"), textHandler(200, "text/plain", goodPolicy))
	ps.handle("mta-sts.domainonly.example", ps.certFor("domainonly.example"), textHandler(200, "text/plain", goodPolicy))
	ps.handle("mta-sts.expired.example", ps.issue(testpki.LeafOptions{
		DNSNames:  []string{"mta-sts.expired.example"},
		NotBefore: time.Now().Add(-48 * time.Hour),
		NotAfter:  time.Now().Add(-24 * time.Hour),
	}), textHandler(200, "text/plain", goodPolicy))
	ps.handle("mta-sts.untrusted.example", &untrustedCert, textHandler(200, "text/plain", goodPolicy))
	ps.handle("mta-sts.wildcard.example", ps.certFor("*.wildcard.example"), textHandler(200, "text/plain", goodPolicy))
	ps.handle("mta-sts.clientauth.example", ps.issue(testpki.LeafOptions{
		DNSNames:    []string{"mta-sts.clientauth.example"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}), textHandler(200, "text/plain", goodPolicy))

	tests := []struct {
		domain string
		want   []error // nil = success
		rt     string
	}{
		{"ok.example", nil, ""},
		{"OK.Example.", nil, ""},
		{"params.example", nil, ""},
		{"exact.example", nil, ""},
		{"wildcard.example", nil, ""},
		{"redirect.example", []error{ErrFetch, ErrRedirect, ErrHTTPStatus}, rfc8460.STSPolicyFetchError},
		{"found.example", []error{ErrFetch, ErrRedirect}, rfc8460.STSPolicyFetchError},
		{"notfound.example", []error{ErrFetch, ErrPolicyNotFound}, rfc8460.STSPolicyFetchError},
		{"error.example", []error{ErrFetch, ErrHTTPStatus}, rfc8460.STSPolicyFetchError},
		{"nocontent.example", []error{ErrFetch, ErrHTTPStatus}, rfc8460.STSPolicyFetchError},
		{"notmodified.example", []error{ErrFetch, ErrHTTPStatus}, rfc8460.STSPolicyFetchError},
		{"html.example", []error{ErrFetch, ErrContentType}, rfc8460.STSPolicyFetchError},
		{"notype.example", []error{ErrFetch, ErrContentType}, rfc8460.STSPolicyFetchError},
		{"plainplus.example", []error{ErrFetch, ErrContentType}, rfc8460.STSPolicyFetchError},
		{"big.example", []error{ErrPolicyTooLarge, ErrPolicyInvalid}, rfc8460.STSPolicyInvalid},
		{"bigchunked.example", []error{ErrPolicyTooLarge, ErrPolicyInvalid}, rfc8460.STSPolicyInvalid},
		{"invalid.example", []error{ErrPolicyInvalid}, rfc8460.STSPolicyInvalid},
		{"wrongname.example", []error{ErrFetch, ErrWebPKI}, rfc8460.STSWebPKIInvalid},
		{"domainonly.example", []error{ErrFetch, ErrWebPKI}, rfc8460.STSWebPKIInvalid},
		{"expired.example", []error{ErrFetch, ErrWebPKI}, rfc8460.STSWebPKIInvalid},
		{"untrusted.example", []error{ErrFetch, ErrWebPKI}, rfc8460.STSWebPKIInvalid},
		{"clientauth.example", []error{ErrFetch, ErrWebPKI}, rfc8460.STSWebPKIInvalid},
		{"nosuchhost.example", []error{ErrFetch, ErrPolicyNotFound}, rfc8460.STSPolicyFetchError},
		{"[192.0.2.1]", []error{ErrInvalidDomain}, ""},
	}
	c := ps.client(nil)
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			p, err := c.FetchPolicy(context.Background(), tt.domain)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("FetchPolicy: %v", err)
				}
				if p.Mode != ModeEnforce || !p.Match("mx.example.com") {
					t.Errorf("unexpected policy %+v", p)
				}
				return
			}
			if err == nil {
				t.Fatalf("FetchPolicy = %+v, want an error", p)
			}
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("error %v does not match %v", err, w)
				}
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not *Error", err)
			}
			if e.ReportResultType() != tt.rt {
				t.Errorf("result type %q, want %q (%v)", e.ReportResultType(), tt.rt, err)
			}
			if tt.rt != "" && !strings.Contains(err.Error(), "https://mta-sts.") {
				t.Errorf("message %q does not name the URL", err)
			}
		})
	}
	// STD-45: the redirect targets were never requested.
	if n := ps.count("mta-sts.ok.example"); n != 2 {
		t.Errorf("ok.example fetched %d times, want 2 (the redirect must not be followed)", n)
	}
	// STD-44: SNI was the policy host, in A-labels, lower case.
	for _, sni := range ps.snis() {
		if !strings.HasPrefix(sni, "mta-sts.") || strings.ToLower(sni) != sni {
			t.Errorf("SNI %q", sni)
		}
	}
}

// STD-44, STD-95: a U-label domain is fetched from its A-label policy host,
// which is also the SNI name.
func TestFetchPolicyIDN(t *testing.T) {
	ps := newPolicyServer(t)
	ps.servePolicy("mta-sts.xn--mller-kva.example", goodPolicy)
	c := ps.client(nil)
	if _, err := c.FetchPolicy(context.Background(), "Müller.example"); err != nil {
		t.Fatal(err)
	}
	if got := ps.snis(); len(got) != 1 || got[0] != "mta-sts.xn--mller-kva.example" {
		t.Errorf("SNI %q", got)
	}
	if u, _ := PolicyURL("müller.example"); u != "https://mta-sts.xn--mller-kva.example/.well-known/mta-sts.txt" {
		t.Errorf("PolicyURL = %q", u)
	}
}

// STD-45: no HTTP cache: every fetch reaches the server, unconditionally.
func TestFetchPolicyNoHTTPCache(t *testing.T) {
	ps := newPolicyServer(t)
	ps.handle("mta-sts.cache.example", nil, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.Header().Set("Expires", time.Now().Add(24*time.Hour).UTC().Format(http.TimeFormat))
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Last-Modified", time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat))
		io.WriteString(w, goodPolicy)
	})
	c := ps.client(nil)
	for i := 0; i < 3; i++ {
		if _, err := c.FetchPolicy(context.Background(), "cache.example"); err != nil {
			t.Fatal(err)
		}
	}
	if n := ps.count("mta-sts.cache.example"); n != 3 {
		t.Errorf("server saw %d requests, want 3", n)
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, h := range ps.headers {
		for _, k := range []string{"If-None-Match", "If-Modified-Since"} {
			if h.Get(k) != "" {
				t.Errorf("conditional request header %s sent", k)
			}
		}
	}
}

// STD-47: a body that stalls is cut off by the fetch timeout; a cancelled
// context interrupts the fetch.
func TestFetchPolicySlowBody(t *testing.T) {
	ps := newPolicyServer(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	stall := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "version: STSv1\n")
		w.(http.Flusher).Flush()
		// Wait for the test's end, not for the request's context: net/http
		// can end that before the client gives up, and the test would then
		// see the body cut short instead of its own timeout.
		<-release
		panic(http.ErrAbortHandler) // never finish the body
	}
	ps.handle("mta-sts.slow.example", nil, stall)
	c := ps.client(nil)
	c.FetchTimeout = 100 * time.Millisecond
	_, err := c.FetchPolicy(context.Background(), "slow.example")
	if !errors.Is(err, ErrFetch) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow body: %v", err)
	}
	if ResultType(err) != rfc8460.STSPolicyFetchError {
		t.Errorf("slow body result type %q", ResultType(err))
	}

	c2 := ps.client(nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once the request has reached the server.
		for ps.count("mta-sts.slow.example") < 2 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err = c2.FetchPolicy(ctx, "slow.example")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled fetch: %v", err)
	}
}

// A server that never answers the headers is cut off too.
func TestFetchPolicySlowHeaders(t *testing.T) {
	ps := newPolicyServer(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	ps.handle("mta-sts.mute.example", nil, func(w http.ResponseWriter, r *http.Request) {
		// Never answer, not even with the implicit 200 of a handler that
		// returns when net/http ends the request's context early.
		<-release
		panic(http.ErrAbortHandler)
	})
	c := ps.client(nil)
	c.FetchTimeout = 100 * time.Millisecond
	_, err := c.FetchPolicy(context.Background(), "mute.example")
	if !errors.Is(err, ErrFetch) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("mute server: %v", err)
	}
}

// STD-44: the policy fetch uses TLS 1.2 or later.
func TestFetchPolicyTLSVersion(t *testing.T) {
	ps := newPolicyServer(t)
	ps.servePolicy("mta-sts.old.example", goodPolicy)
	ps.srv.TLS.MaxVersion = tls.VersionTLS11
	ps.srv.TLS.MinVersion = tls.VersionTLS10
	c := ps.client(nil)
	_, err := c.FetchPolicy(context.Background(), "old.example")
	if !errors.Is(err, ErrFetch) {
		t.Errorf("TLS 1.1 server: %v", err)
	}
}

// A caller-supplied Transport is used, but redirects are still not followed
// and the certificate is still checked against RootCAs when the Transport
// does not verify it.
func TestFetchPolicyCallerTransport(t *testing.T) {
	ps := newPolicyServer(t)
	ps.servePolicy("mta-sts.ok.example", goodPolicy)
	ps.handle("mta-sts.wrongname.example", ps.certFor("www.example"), textHandler(200, "text/plain", goodPolicy))
	ps.handle("mta-sts.redirect.example", nil, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://mta-sts.ok.example/.well-known/mta-sts.txt", http.StatusTemporaryRedirect)
	})
	used := 0
	insecure := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			used++
			return ps.dial(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}
	t.Cleanup(insecure.CloseIdleConnections)
	c := &Client{RootCAs: ps.ca.Pool(), Transport: insecure}
	if _, err := c.FetchPolicy(context.Background(), "ok.example"); err != nil {
		t.Fatalf("ok: %v", err)
	}
	if used == 0 {
		t.Error("caller's Transport not used")
	}
	if _, err := c.FetchPolicy(context.Background(), "wrongname.example"); !errors.Is(err, ErrWebPKI) {
		t.Errorf("insecure transport, wrong name: %v", err)
	}
	if _, err := c.FetchPolicy(context.Background(), "redirect.example"); !errors.Is(err, ErrRedirect) {
		t.Errorf("redirect through caller's transport: %v", err)
	}
	// Without RootCAs the post-hoc check uses the system roots, which do
	// not know the test CA.
	c2 := &Client{Transport: insecure}
	if _, err := c2.FetchPolicy(context.Background(), "ok.example"); !errors.Is(err, ErrWebPKI) {
		t.Errorf("unverified chain accepted: %v", err)
	}
	// A verifying caller transport with its own roots is trusted for the
	// chain; the name is checked again.
	verifying := &http.Transport{DialContext: ps.dial, TLSClientConfig: &tls.Config{RootCAs: ps.ca.Pool()}}
	t.Cleanup(verifying.CloseIdleConnections)
	c3 := &Client{Transport: verifying}
	if _, err := c3.FetchPolicy(context.Background(), "ok.example"); err != nil {
		t.Errorf("verifying transport: %v", err)
	}
}

// A transport that answers without TLS is refused.
func TestFetchPolicyPlainTransport(t *testing.T) {
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{
			StatusCode: 200, Status: "200 OK",
			Header:  http.Header{"Content-Type": {"text/plain"}},
			Body:    io.NopCloser(strings.NewReader(goodPolicy)),
			Request: r,
		}, nil
	})
	c := &Client{Transport: rt}
	_, err := c.FetchPolicy(context.Background(), "example.com")
	if !errors.Is(err, ErrWebPKI) {
		t.Errorf("plain response: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestIsPlainText(t *testing.T) {
	for ct, want := range map[string]bool{
		"text/plain":                  true,
		"Text/Plain":                  true,
		"text/plain; charset=utf-8":   true,
		"text/plain;charset=us-ascii": true,
		"text/plain; foo":             true, // a broken parameter does not change the type
		"":                            false,
		"text/html":                   false,
		"text/plain2":                 false,
		"text/plain+json":             false,
		"application/octet-stream":    false,
		"text":                        false,
	} {
		if got := isPlainText(ct); got != want {
			t.Errorf("isPlainText(%q) = %v, want %v", ct, got, want)
		}
	}
}
