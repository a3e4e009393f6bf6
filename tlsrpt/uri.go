package tlsrpt

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/smtpsecure/smtpsecure/internal/address"
	"github.com/smtpsecure/smtpsecure/internal/idn"
	"github.com/smtpsecure/smtpsecure/internal/txtrecord"
)

// checkRUA checks one tlsrpt-uri of a TXT record: an RFC 3986 URI in which
// commas and "!" are percent-encoded (RFC 8460 §3), and, for the two schemes
// reports are sent to, one that a report can be sent to. Its messages never
// show a password the URI holds.
func checkRUA(s string) error {
	shown := clip(redactURI(s))
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || !validScheme(scheme) {
		return fmt.Errorf("reporting URI %q has no scheme", shown)
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		switch {
		case c == '%':
			if i+2 >= len(rest) || !isHex(rest[i+1]) || !isHex(rest[i+2]) {
				return fmt.Errorf("reporting URI %q has a bad percent-encoding", shown)
			}
			i += 2
		case c == '!':
			return fmt.Errorf("reporting URI %q has an unencoded \"!\" (RFC 8460 §3: write %%21)", shown)
		case !isURIChar(c):
			return fmt.Errorf("reporting URI %q has the character %q, which a URI cannot hold", shown, c)
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		// The *url.Error would repeat the URI with its password.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("reporting URI %q is not a URI: %w", shown, err)
	}
	switch strings.ToLower(scheme) {
	case "mailto":
		_, err = mailtoAddress(u)
	case "https":
		err = checkHTTPS(u)
	}
	return err
}

// validScheme checks ALPHA *(ALPHA / DIGIT / "+" / "-" / ".").
func validScheme(s string) bool {
	if s == "" || !txtrecord.IsAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !txtrecord.IsAlpha(c) && !txtrecord.IsDigit(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return txtrecord.IsDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// isURIChar reports whether c may appear unencoded in an RFC 3986 URI after
// the scheme: unreserved, sub-delims and gen-delims. "%" is handled by the
// caller; "," and ";" end a URI in a TXT record before they get here.
func isURIChar(c byte) bool {
	if txtrecord.IsAlpha(c) || txtrecord.IsDigit(c) {
		return true
	}
	return strings.IndexByte("-._~"+"$&'()*+,;="+":/?#[]@", c) >= 0
}

// mailtoAddress returns the one address of a mailto: URI (RFC 6068), with
// its percent-encoding removed. Header fields after "?" are ignored.
func mailtoAddress(u *url.URL) (string, error) {
	if u.Opaque == "" {
		return "", fmt.Errorf("mailto: URI %q names no address", clip(u.String()))
	}
	a, err := url.PathUnescape(u.Opaque)
	if err != nil {
		return "", fmt.Errorf("mailto: URI %q: %w", clip(u.String()), err)
	}
	if _, err := address.Parse(a); err != nil {
		return "", fmt.Errorf("mailto: URI %q does not name exactly one address: %w", clip(u.String()), err)
	}
	return a, nil
}

// checkHTTPS checks that an https: URI names a host a report can be posted
// to: a DNS name (A-labels or U-labels) or an IP address.
func checkHTTPS(u *url.URL) error {
	if u.Opaque != "" || u.Host == "" {
		return fmt.Errorf("https: URI %q names no host", clip(u.Redacted()))
	}
	h := u.Hostname()
	if _, err := netip.ParseAddr(h); err == nil {
		return nil
	}
	if _, err := idn.ToASCII(h); err != nil {
		return fmt.Errorf("https: URI %q has an invalid host: %w", clip(u.Redacted()), err)
	}
	return nil
}

// A destination is a reporting URI ready to send to.
type destination struct {
	// kind is "mailto" or "https".
	kind string
	// addr is the mail address of a mailto: URI.
	addr string
	// url is the URL of an https: URI.
	url *url.URL
	// display is the URI for messages, without any password.
	display string
}

// parseDestination turns a reporting URI into a destination, or an error
// matching ErrUnsupportedURI when no report can be sent to it.
func parseDestination(uri string) (destination, error) {
	if err := checkRUA(uri); err != nil {
		return destination{}, newKindError("unusable reporting URI", err, ErrSend, ErrUnsupportedURI)
	}
	u, _ := url.Parse(uri) // checked by checkRUA
	d := destination{kind: strings.ToLower(u.Scheme), url: u, display: u.Redacted()}
	switch d.kind {
	case "mailto":
		d.addr, _ = mailtoAddress(u)
	case "https":
	default:
		return destination{}, newKindError(fmt.Sprintf("reporting URI scheme %q is not supported (only mailto: and https:)", clip(u.Scheme)), nil, ErrSend, ErrUnsupportedURI)
	}
	return d, nil
}

// redactURI returns uri for a message, with any password removed.
func redactURI(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		if scheme, _, ok := strings.Cut(uri, ":"); ok && validScheme(scheme) {
			return scheme + ":…"
		}
		return "(invalid URI)"
	}
	return u.Redacted()
}
