package mtasts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/idn"
)

// DefaultFetchTimeout bounds a whole policy fetch, from the TCP connection to
// the last byte of the body (RFC 8461 §3.3 recommends 60 seconds).
const DefaultFetchTimeout = 60 * time.Second

// userAgent is sent with every policy request.
const userAgent = "smtpsecure-mtasts/1 (+https://github.com/smtpsecure/smtpsecure)"

// PolicyHost returns the host name the policy of domain is fetched from,
// "mta-sts.<domain>" in A-labels. It is also the SNI name and the name the
// certificate must be valid for.
func PolicyHost(domain string) (string, error) {
	d, err := idn.ToASCII(domain)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidDomain, err)
	}
	h := "mta-sts." + d
	if _, err := idn.ToASCII(h); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidDomain, err)
	}
	return h, nil
}

// PolicyURL returns https://mta-sts.<domain>/.well-known/mta-sts.txt.
func PolicyURL(domain string) (string, error) {
	h, err := PolicyHost(domain)
	if err != nil {
		return "", err
	}
	u := url.URL{Scheme: "https", Host: h, Path: "/.well-known/mta-sts.txt"}
	return u.String(), nil
}

// FetchPolicy fetches and parses the policy of domain from
// https://mta-sts.<domain>/.well-known/mta-sts.txt (RFC 8461 §3.3):
//
//   - the connection is made with c.DialContext or c.Transport, TLS 1.2 or
//     later, SNI mta-sts.<domain>, and the certificate must chain to
//     c.RootCAs (the system roots if nil), be unexpired and be valid for
//     mta-sts.<domain>; this is checked again on the response even when the
//     caller supplied the Transport;
//   - only status 200 is accepted and redirects are never followed;
//   - no HTTP cache is consulted or filled, no conditional request is made;
//   - the Content-Type must be text/plain (parameters allowed);
//   - the body may be at most MaxPolicySize octets;
//   - the whole fetch is bounded by c.FetchTimeout and by ctx.
//
// It does not look at the TXT record or the cache; Get does that. Errors are
// *Error values matching ErrFetch (with ErrWebPKI, ErrPolicyNotFound,
// ErrHTTPStatus, ErrRedirect or ErrContentType) or ErrPolicyInvalid.
func (c *Client) FetchPolicy(ctx context.Context, domain string) (*Policy, error) {
	host, err := PolicyHost(domain)
	if err != nil {
		return nil, &Error{Op: "fetch", Domain: domain, Err: err}
	}
	d := host[len("mta-sts."):]
	u := "https://" + host + "/.well-known/mta-sts.txt"
	p, err := c.fetch(ctx, host, u)
	if err != nil {
		return nil, &Error{Op: "fetch", Domain: d, Name: u, Err: err}
	}
	return p, nil
}

func (c *Client) fetchTimeout() time.Duration {
	if c.FetchTimeout > 0 {
		return c.FetchTimeout
	}
	return DefaultFetchTimeout
}

// httpClient returns the client for policy fetches: the caller's Transport
// or one built from DialContext and RootCAs, never following redirects and
// without a cookie jar.
func (c *Client) httpClient() *http.Client {
	c.transportOnce.Do(func() {
		rt := c.Transport
		if rt == nil {
			dial := c.DialContext
			if dial == nil {
				dial = (&net.Dialer{Timeout: 30 * time.Second}).DialContext
			}
			rt = &http.Transport{
				Proxy:       nil,
				DialContext: dial,
				TLSClientConfig: &tls.Config{
					RootCAs:    c.RootCAs,
					MinVersion: tls.VersionTLS12,
				},
				TLSHandshakeTimeout:    15 * time.Second,
				DisableKeepAlives:      true,
				ResponseHeaderTimeout:  30 * time.Second,
				MaxResponseHeaderBytes: 16 << 10,
			}
		}
		c.http = &http.Client{
			Transport: rt,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	})
	return c.http
}

func (c *Client) fetch(ctx context.Context, host, u string) (*Policy, error) {
	ctx, cancel := context.WithTimeout(ctx, c.fetchTimeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, newKindError("building the request", err, ErrFetch)
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "text/plain")
	// Ask any intermediary not to answer from a cache; this client has
	// none (RFC 8461 §3.3).
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, classifyTransportError(ctx, err)
	}
	defer resp.Body.Close()

	if err := c.checkTLS(resp.TLS, host); err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusNotFound:
		return nil, newKindError("HTTP 404 Not Found: the domain publishes an MTA-STS TXT record but no policy", nil, ErrFetch, ErrPolicyNotFound, ErrHTTPStatus)
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		loc := resp.Header.Get("Location")
		return nil, newKindError(fmt.Sprintf("HTTP %s to %q: redirects are not followed for MTA-STS", resp.Status, clip(loc)), nil, ErrFetch, ErrRedirect, ErrHTTPStatus)
	default:
		return nil, newKindError("HTTP "+resp.Status+": only 200 is accepted", nil, ErrFetch, ErrHTTPStatus)
	}
	ct := resp.Header.Get("Content-Type")
	if !isPlainText(ct) {
		return nil, newKindError(fmt.Sprintf("Content-Type %q is not text/plain", clip(ct)), nil, ErrFetch, ErrContentType)
	}
	if resp.ContentLength > MaxPolicySize {
		return nil, newKindError("Content-Length "+strconv.FormatInt(resp.ContentLength, 10)+" is over the 64 KiB limit", nil, ErrPolicyTooLarge, ErrPolicyInvalid)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxPolicySize+1))
	if err == nil {
		// A body that ended as the deadline passed may be cut short.
		err = ctx.Err()
	}
	if err != nil {
		return nil, classifyTransportError(ctx, err)
	}
	if len(body) > MaxPolicySize {
		return nil, newKindError("body is over the 64 KiB limit", nil, ErrPolicyTooLarge, ErrPolicyInvalid)
	}
	return ParsePolicy(body)
}

// checkTLS verifies that the response came over TLS with SNI host and a
// certificate valid for host. When the transport already verified the chain
// (VerifiedChains is set) only the name is checked again; otherwise, as with
// a caller's transport that skips verification, the whole chain is verified
// against c.RootCAs.
func (c *Client) checkTLS(cs *tls.ConnectionState, host string) error {
	if cs == nil {
		return newKindError("the response did not come over TLS", nil, ErrFetch, ErrWebPKI)
	}
	if len(cs.PeerCertificates) == 0 {
		return newKindError("the policy host sent no certificate", nil, ErrFetch, ErrWebPKI)
	}
	if cs.Version < tls.VersionTLS12 {
		return newKindError("TLS version below 1.2", nil, ErrFetch, ErrWebPKI)
	}
	if cs.ServerName != "" && cs.ServerName != host {
		return newKindError(fmt.Sprintf("SNI was %q, not %q", cs.ServerName, host), nil, ErrFetch, ErrWebPKI)
	}
	leaf := cs.PeerCertificates[0]
	if len(cs.VerifiedChains) > 0 {
		if err := leaf.VerifyHostname(host); err != nil {
			return newKindError("certificate not valid for the policy host", err, ErrFetch, ErrWebPKI)
		}
		return nil
	}
	inter := x509.NewCertPool()
	for _, ic := range cs.PeerCertificates[1:] {
		inter.AddCert(ic)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		DNSName:       host,
		Roots:         c.RootCAs,
		Intermediates: inter,
		CurrentTime:   c.now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return newKindError("certificate of the policy host failed Web PKI validation", err, ErrFetch, ErrWebPKI)
	}
	return nil
}

// classifyTransportError maps an error from the HTTP client: certificate
// problems to ErrWebPKI, a policy host that does not exist to
// ErrPolicyNotFound, everything else (including the timeout and a
// cancelled ctx) to ErrFetch.
func classifyTransportError(ctx context.Context, err error) error {
	var (
		certErr    *tls.CertificateVerificationError
		hostErr    x509.HostnameError
		authErr    x509.UnknownAuthorityError
		invalidErr x509.CertificateInvalidError
		dnsErr     *net.DNSError
	)
	switch {
	case errors.As(err, &certErr), errors.As(err, &hostErr), errors.As(err, &authErr), errors.As(err, &invalidErr):
		return newKindError("certificate of the policy host failed Web PKI validation", err, ErrFetch, ErrWebPKI)
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return newKindError("the policy host does not exist", err, ErrFetch, ErrPolicyNotFound)
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		err = errors.Join(err, cerr)
	}
	return newKindError("could not retrieve the policy", err, ErrFetch)
}

// isPlainText reports whether a Content-Type value is text/plain, in any
// case, with or without parameters.
func isPlainText(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
		return false
	}
	return mt == "text/plain"
}
