package tlsrpt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/idn"
	"github.com/smtpsecure/smtpsecure/internal/txtrecord"
)

// TXTResolver looks up TXT records. *net.Resolver satisfies it, and so does
// the dane package's DNSSEC-aware resolver.
//
// LookupTXT must return one string per TXT record, with the record's
// character-strings joined without separators, as net.Resolver does. A
// name that does not exist or has no TXT records must give an error e for
// which errors.As(e, &dnsErr) finds a *net.DNSError with IsNotFound set; any
// other error is a failed lookup, which is not the same as "no record".
type TXTResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// Record is a parsed _smtp._tls TXT record (RFC 8460 §3): where a policy
// domain wants its reports.
type Record struct {
	// RUAs are the reporting URIs of all rua fields, in order. Each is a
	// syntactically valid URI (RFC 3986); mailto: URIs name exactly one
	// address and https: URIs a host. URIs of other schemes are kept here
	// but no report is sent to them (RFC 8460 §3 supports only mailto and
	// https).
	RUAs []string
	// Extensions holds the other fields in the order they appear; RFC 8460
	// §3 says to ignore them.
	Extensions []Extension
}

// Extension is a field of a TXT record that this package does not
// interpret.
type Extension struct {
	// Key is the field name.
	Key string
	// Value is the field value.
	Value string
}

// String returns the record in its canonical form.
func (r *Record) String() string {
	var b strings.Builder
	b.WriteString("v=TLSRPTv1; rua=")
	b.WriteString(strings.Join(r.RUAs, ","))
	for _, e := range r.Extensions {
		b.WriteString("; ")
		b.WriteString(e.Key)
		b.WriteString("=")
		b.WriteString(e.Value)
	}
	return b.String()
}

// maxRecordLen bounds what ParseRecord reads; real records are well under
// 500 octets.
const maxRecordLen = 4096

// recordVersion starts every TLS-RPT record.
const recordVersion = "v=TLSRPTv1"

// ParseRecord parses the text of an _smtp._tls TXT record by the grammar of
// RFC 8460 §3:
//
//	tlsrpt-record    = "v=TLSRPTv1" 1*(field-delim tlsrpt-field) [field-delim]
//	field-delim      = *WSP ";" *WSP
//	tlsrpt-field     = tlsrpt-rua / tlsrpt-extension
//	tlsrpt-rua       = "rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
//	tlsrpt-extension = tlsrpt-ext-name "=" tlsrpt-ext-value
//	tlsrpt-ext-name  = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
//	tlsrpt-ext-value = 1*(%x21-3A / %x3C / %x3E-7E)
//
// The version and field names are case-sensitive; at least one rua field is
// required and there may be several; trailing white space is allowed, a
// second trailing ";" is not. Each URI must be an RFC 3986 URI with commas
// and "!" percent-encoded, a mailto: URI must name exactly one address and
// an https: URI a host. Errors are *SyntaxError values matching
// ErrRecordSyntax.
func ParseRecord(txt string) (*Record, error) {
	fail := func(format string, args ...any) (*Record, error) {
		return nil, &SyntaxError{Record: clip(txt), Msg: fmt.Sprintf(format, args...)}
	}
	if len(txt) > maxRecordLen {
		return fail("longer than %d octets", maxRecordLen)
	}
	if !strings.HasPrefix(txt, recordVersion) {
		return fail("does not start with %q", recordVersion)
	}
	s := txt[len(recordVersion):]
	rec := &Record{}
	nfields := 0
	for {
		s = txtrecord.TrimWSP(s)
		if s == "" {
			break
		}
		if s[0] != ';' {
			if nfields == 0 {
				return fail("%q is not followed by \";\"", recordVersion)
			}
			return fail("unexpected %q after a field (fields are separated by \";\")", clip(s))
		}
		s = txtrecord.TrimWSP(s[1:])
		if s == "" {
			break // one optional trailing delimiter
		}
		if s[0] == ';' {
			return fail("empty field between two \";\"")
		}
		var err error
		if strings.HasPrefix(s, "rua=") {
			var uris []string
			uris, s, err = parseRUAs(s[len("rua="):])
			if err != nil {
				return fail("%v", err)
			}
			rec.RUAs = append(rec.RUAs, uris...)
		} else {
			var ext Extension
			ext, s, err = parseExtension(s)
			if err != nil {
				return fail("%v", err)
			}
			rec.Extensions = append(rec.Extensions, ext)
		}
		nfields++
	}
	if len(rec.RUAs) == 0 {
		return fail("no rua field")
	}
	return rec, nil
}

// parseRUAs parses tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri) and returns the
// URIs and the rest of the record.
func parseRUAs(s string) (uris []string, rest string, err error) {
	for {
		end := strings.IndexAny(s, " \t,;")
		if end < 0 {
			end = len(s)
		}
		u := s[:end]
		if u == "" {
			return nil, "", errors.New("empty reporting URI")
		}
		if err := checkRUA(u); err != nil {
			return nil, "", err
		}
		uris = append(uris, u)
		s = s[end:]
		t := txtrecord.TrimWSP(s)
		if t == "" || t[0] != ',' {
			return uris, s, nil
		}
		s = txtrecord.TrimWSP(t[1:])
	}
}

// parseExtension parses tlsrpt-ext-name "=" tlsrpt-ext-value and returns it
// and the rest of the record.
func parseExtension(s string) (Extension, string, error) {
	end := strings.IndexAny(s, " \t;")
	if end < 0 {
		end = len(s)
	}
	field := s[:end]
	name, value, ok := strings.Cut(field, "=")
	if !ok {
		return Extension{}, "", fmt.Errorf("field %q has no \"=\"", clip(field))
	}
	if !txtrecord.ValidExtName(name) {
		return Extension{}, "", fmt.Errorf("invalid field name %q", clip(name))
	}
	if !txtrecord.ValidExtValue(value) {
		return Extension{}, "", fmt.Errorf("invalid value %q for field %q", clip(value), name)
	}
	return Extension{Key: name, Value: value}, s[end:], nil
}

// RecordName returns the DNS name of the TXT record of a policy domain,
// "_smtp._tls.<domain>." in A-labels, as an absolute name so that no
// resolver search list applies. The domain may be given in U-labels.
func RecordName(domain string) (string, error) {
	d, err := canonicalDomain(domain)
	if err != nil {
		return "", err
	}
	return "_smtp._tls." + d + ".", nil
}

// canonicalDomain returns a policy domain in lower-case A-labels without a
// trailing dot, or an error matching ErrInvalidDomain.
func canonicalDomain(domain string) (string, error) {
	d, err := idn.ToASCII(domain)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidDomain, err)
	}
	return d, nil
}

// LookupTimeout bounds a TXT lookup, whatever the resolver's own timeouts.
const LookupTimeout = 30 * time.Second

// LookupRecord looks up the _smtp._tls TXT record of a policy domain (RFC
// 8460 §3), keeps the records that start with v=TLSRPTv1 and parses the one
// that remains. A nil resolver means net.DefaultResolver.
//
// The error is an *Error that matches ErrNoRecord when there is no such
// record, ErrMultipleRecords when there is more than one, ErrRecordSyntax
// when the one record is invalid, ErrDNS when the lookup failed (within
// LookupTimeout and ctx) and ErrInvalidDomain when domain is not a host
// name. Only ErrDNS is worth retrying: in the other cases the domain does
// not ask for reports.
func LookupRecord(ctx context.Context, r TXTResolver, domain string) (*Record, error) {
	d, err := canonicalDomain(domain)
	if err != nil {
		return nil, &Error{Op: "lookup", Domain: clip(domain), Err: err}
	}
	name := "_smtp._tls." + d + "."
	if r == nil {
		r = net.DefaultResolver
	}
	lctx, cancel := context.WithTimeout(ctx, LookupTimeout)
	defer cancel()
	txts, err := r.LookupTXT(lctx, name)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return nil, &Error{Op: "lookup", Domain: d, Name: name, Err: newKindError("no TXT record", err, ErrNoRecord)}
		}
		if cerr := lctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			err = errors.Join(err, cerr)
		}
		return nil, &Error{Op: "lookup", Domain: d, Name: name, Err: newKindError("TXT lookup failed; retry later", err, ErrDNS)}
	}
	var recs []string
	for _, t := range txts {
		if txtrecord.HasVersion(t, recordVersion) {
			recs = append(recs, t)
		}
	}
	switch len(recs) {
	case 0:
		return nil, &Error{Op: "lookup", Domain: d, Name: name, Err: newKindError("no TXT record starts with v=TLSRPTv1", nil, ErrNoRecord)}
	case 1:
	default:
		return nil, &Error{Op: "lookup", Domain: d, Name: name, Err: newKindError(fmt.Sprintf("%d TXT records start with v=TLSRPTv1, the domain must publish exactly one", len(recs)), nil, ErrMultipleRecords)}
	}
	rec, err := ParseRecord(recs[0])
	if err != nil {
		return nil, &Error{Op: "lookup", Domain: d, Name: name, Err: err}
	}
	return rec, nil
}
