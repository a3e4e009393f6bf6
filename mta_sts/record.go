package mtasts

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
// character-strings already joined without separators (RFC 8461 §3.1), as
// net.Resolver does. A name that does not exist or has no TXT records must
// give an error e for which errors.As(e, &dnsErr) finds a *net.DNSError with
// IsNotFound set; any other error is taken as a failed lookup, which is not
// the same as "no record".
type TXTResolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// Record is a parsed _mta-sts TXT record (RFC 8461 §3.1).
type Record struct {
	// ID identifies the policy instance; a new ID means a new policy.
	ID string
	// Extensions holds the other fields in the order they appear.
	Extensions []Extension
}

// Extension is a field of a TXT record or a policy that this package does
// not interpret.
type Extension struct {
	Key, Value string
}

// String returns the record in its canonical form.
func (r *Record) String() string {
	var b strings.Builder
	b.WriteString("v=STSv1; id=")
	b.WriteString(r.ID)
	for _, e := range r.Extensions {
		b.WriteString("; ")
		b.WriteString(e.Key)
		b.WriteString("=")
		b.WriteString(e.Value)
	}
	b.WriteString(";")
	return b.String()
}

// maxRecordLen bounds what ParseRecord reads; real records are well under
// 100 octets.
const maxRecordLen = 4096

// ParseRecord parses the text of an _mta-sts TXT record by the grammar of
// RFC 8461 §3.1:
//
//	v=STSv1 1*(*WSP ";" *WSP field) [*WSP ";" *WSP]
//
// where v=STSv1 comes first, exactly one field is id=1*32(ALPHA/DIGIT) and
// the others are extensions name=value with a name of at most 32
// characters. Only one trailing ";" is allowed: "v=STSv1; id=1;;" is
// invalid. Errors are *SyntaxError values matching ErrRecordSyntax.
func ParseRecord(txt string) (*Record, error) {
	fail := func(format string, args ...any) (*Record, error) {
		return nil, &SyntaxError{What: whatRecord, Msg: fmt.Sprintf(format, args...)}
	}
	if len(txt) > maxRecordLen {
		return fail("longer than %d octets", maxRecordLen)
	}
	const version = "v=STSv1"
	if !strings.HasPrefix(txt, version) {
		return fail("does not start with %q", version)
	}
	s := txt[len(version):]
	rec := &Record{}
	haveID := false
	nfields := 0
	for {
		s = txtrecord.TrimWSP(s)
		if s == "" {
			break
		}
		if s[0] != ';' {
			if nfields == 0 {
				return fail("version %q is not followed by \";\"", version+s)
			}
			return fail("fields must be separated by \";\" at %q", s)
		}
		s = txtrecord.TrimWSP(s[1:])
		if s == "" {
			break // one optional trailing delimiter
		}
		if s[0] == ';' {
			return fail("empty field between two \";\" (only one trailing \";\" is allowed)")
		}
		// A field: name "=" value, ending at WSP, ";" or the end.
		end := strings.IndexAny(s, " \t;")
		if end < 0 {
			end = len(s)
		}
		field := s[:end]
		s = s[end:]
		name, value, ok := strings.Cut(field, "=")
		if !ok {
			return fail("field %q has no \"=\"", field)
		}
		if !txtrecord.ValidExtName(name) {
			return fail("invalid field name %q", name)
		}
		if name == "id" {
			if haveID {
				return fail("more than one id field")
			}
			if !validID(value) {
				return fail("id %q is not 1 to 32 letters and digits", value)
			}
			rec.ID = value
			haveID = true
		} else {
			if !txtrecord.ValidExtValue(value) {
				return fail("invalid value %q for field %q", value, name)
			}
			rec.Extensions = append(rec.Extensions, Extension{Key: name, Value: value})
		}
		nfields++
	}
	if !haveID {
		return fail("no id field")
	}
	return rec, nil
}

// validID checks 1*32(ALPHA / DIGIT).
func validID(s string) bool {
	if len(s) < 1 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !txtrecord.IsAlpha(s[i]) && !txtrecord.IsDigit(s[i]) {
			return false
		}
	}
	return true
}

// RecordName returns the DNS name of the TXT record for a policy domain, as
// an absolute name with a trailing dot so that no resolver search list is
// applied. The domain may be given in U-labels or A-labels.
func RecordName(domain string) (string, error) {
	d, err := idn.ToASCII(domain)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidDomain, err)
	}
	return "_mta-sts." + d + ".", nil
}

// LookupTimeout bounds a TXT lookup, whatever the resolver's own timeouts.
const LookupTimeout = 30 * time.Second

// LookupRecord looks up the _mta-sts TXT record of the policy domain domain
// (the recipient domain itself, never a parent: RFC 8461 §3.4), keeps the
// records that start with v=STSv1 and parses the one that remains.
//
// The error is an *Error that matches ErrNoRecord when there is no such
// record, ErrMultipleRecords when there is more than one, ErrRecordSyntax
// when the one record is invalid, ErrDNS when the lookup failed (within
// LookupTimeout and ctx) and ErrInvalidDomain when domain is not a host
// name.
func LookupRecord(ctx context.Context, r TXTResolver, domain string) (*Record, error) {
	d, err := idn.ToASCII(domain)
	if err != nil {
		return nil, &Error{Op: "lookup", Domain: domain, Err: fmt.Errorf("%w: %w", ErrInvalidDomain, err)}
	}
	name := "_mta-sts." + d + "."
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
		if txtrecord.HasVersion(t, "v=STSv1") {
			recs = append(recs, t)
		}
	}
	switch len(recs) {
	case 0:
		return nil, &Error{Op: "lookup", Domain: d, Name: name, Err: newKindError("no TXT record starts with v=STSv1", nil, ErrNoRecord)}
	case 1:
	default:
		return nil, &Error{Op: "lookup", Domain: d, Name: name, Err: newKindError(fmt.Sprintf("%d TXT records start with v=STSv1, the domain must publish exactly one", len(recs)), nil, ErrMultipleRecords)}
	}
	rec, err := ParseRecord(recs[0])
	if err != nil {
		return nil, &Error{Op: "lookup", Domain: d, Name: name, Err: err}
	}
	return rec, nil
}
