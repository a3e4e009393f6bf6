package tlsrpt

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// DefaultPostTimeout bounds a whole HTTPS POST of a report, from the TCP
// connection to the end of the response.
const DefaultPostTimeout = 60 * time.Second

// maxResponseBody bounds how much of a collector's response is read.
const maxResponseBody = 64 << 10

// userAgent is sent with every report.
const userAgent = "smtpsecure-tlsrpt/1 (+https://github.com/smtpsecure/smtpsecure)"

// HTTPPoster posts reports to https: reporting URIs (RFC 8460 §5.4). Its
// zero value is ready to use: TLS 1.2 or later, a certificate verified
// against the system roots and valid for the URI's host, no proxy, no
// redirects followed, no cookies, and each POST bounded by
// DefaultPostTimeout. It is safe for concurrent use once in use; do not
// change its fields then.
type HTTPPoster struct {
	// RootCAs verifies the collector's certificate; nil means the system
	// roots.
	RootCAs *x509.CertPool
	// DialContext makes the TCP connections; nil means a net.Dialer.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Timeout bounds one POST; zero means DefaultPostTimeout.
	Timeout time.Duration

	once   sync.Once
	client *http.Client
}

func (p *HTTPPoster) httpClient() *http.Client {
	p.once.Do(func() {
		dial := p.DialContext
		if dial == nil {
			dial = (&net.Dialer{Timeout: 30 * time.Second}).DialContext
		}
		p.client = &http.Client{
			Transport: &http.Transport{
				Proxy:       nil,
				DialContext: dial,
				TLSClientConfig: &tls.Config{
					RootCAs:    p.RootCAs,
					MinVersion: tls.VersionTLS12,
				},
				ForceAttemptHTTP2:      true,
				TLSHandshakeTimeout:    15 * time.Second,
				ResponseHeaderTimeout:  30 * time.Second,
				MaxResponseHeaderBytes: 16 << 10,
				DisableKeepAlives:      true,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	})
	return p.client
}

// Post sends a gzip-compressed report (Report.Gzip) to an https: reporting
// URI with Content-Type application/tlsrpt+gzip. Any 2xx status is success
// (RFC 8460 §5.4). The request is made under WithReportDelivery(ctx).
//
// Errors are *Error values (Op "post") matching ErrSend, and also
// ErrUnsupportedURI (not an https: URI), ErrWebPKI (certificate
// verification failed), ErrHTTPStatus or ErrRedirect. The URI in errors has
// any password removed.
func (p *HTTPPoster) Post(ctx context.Context, uri string, gz []byte) error {
	d, err := parseDestination(uri)
	if err == nil && d.kind != "https" {
		err = newKindError("not an https: URI", nil, ErrSend, ErrUnsupportedURI)
	}
	if err != nil {
		return &Error{Op: "post", Name: clip(redactURI(uri)), Err: err}
	}
	if err := p.post(ctx, d, gz); err != nil {
		return &Error{Op: "post", Name: d.display, Err: err}
	}
	return nil
}

func (p *HTTPPoster) post(ctx context.Context, d destination, gz []byte) error {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultPostTimeout
	}
	ctx, cancel := context.WithTimeout(WithReportDelivery(ctx), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url.String(), bytes.NewReader(gz))
	if err != nil {
		return newKindError("building the request", err, ErrSend)
	}
	req.Header.Set("Content-Type", "application/tlsrpt+gzip")
	req.Header.Set("User-Agent", userAgent)
	resp, err := p.httpClient().Do(req)
	if err != nil {
		return classifyPostError(ctx, err)
	}
	defer resp.Body.Close()
	// Read a bounded part of the body, so that the collector sees a clean
	// end of the exchange; what it says is not used.
	_, rerr := io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if rerr != nil && ctx.Err() != nil {
			return newKindError("reading the response", errors.Join(rerr, ctx.Err()), ErrSend)
		}
		return nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return newKindError(fmt.Sprintf("HTTP %s to %q: redirects are not followed", resp.Status, clip(resp.Header.Get("Location"))), nil, ErrSend, ErrHTTPStatus, ErrRedirect)
	default:
		return newKindError("HTTP "+resp.Status+": the collector did not accept the report", nil, ErrSend, ErrHTTPStatus)
	}
}

// classifyPostError maps an error of the HTTP client: certificate problems
// to ErrWebPKI, everything else (including the timeout and a cancelled ctx)
// to ErrSend.
func classifyPostError(ctx context.Context, err error) error {
	var (
		certErr    *tls.CertificateVerificationError
		hostErr    x509.HostnameError
		authErr    x509.UnknownAuthorityError
		invalidErr x509.CertificateInvalidError
	)
	if errors.As(err, &certErr) || errors.As(err, &hostErr) || errors.As(err, &authErr) || errors.As(err, &invalidErr) {
		return newKindError("the collector's certificate failed verification", err, ErrSend, ErrWebPKI)
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		err = errors.Join(err, cerr)
	}
	return newKindError("could not post the report", err, ErrSend)
}
