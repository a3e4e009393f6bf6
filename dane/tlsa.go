package dane

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Usage is the certificate usage field of a TLSA record (RFC 6698 §2.1.1,
// names from RFC 7218).
type Usage uint8

// Certificate usages. Only DANETA and DANEEE are usable for SMTP
// (RFC 7672 §3.1.3).
const (
	PKIXTA Usage = 0 // PKIX-TA: a CA that must also pass Web PKI validation
	PKIXEE Usage = 1 // PKIX-EE: the server certificate, Web PKI validation too
	DANETA Usage = 2 // DANE-TA: a trust anchor for the server's chain
	DANEEE Usage = 3 // DANE-EE: the server certificate or key itself
)

// String returns the RFC 7218 name with the number, such as "DANE-EE(3)".
func (u Usage) String() string {
	switch u {
	case PKIXTA:
		return "PKIX-TA(0)"
	case PKIXEE:
		return "PKIX-EE(1)"
	case DANETA:
		return "DANE-TA(2)"
	case DANEEE:
		return "DANE-EE(3)"
	}
	return fmt.Sprintf("usage(%d)", uint8(u))
}

// Selector is the selector field of a TLSA record (RFC 6698 §2.1.2): which
// part of a certificate the association data covers.
type Selector uint8

// Selectors.
const (
	SelectorCert Selector = 0 // Cert(0): the whole DER certificate
	SelectorSPKI Selector = 1 // SPKI(1): the DER SubjectPublicKeyInfo
)

// String returns the RFC 7218 name with the number, such as "SPKI(1)".
func (s Selector) String() string {
	switch s {
	case SelectorCert:
		return "Cert(0)"
	case SelectorSPKI:
		return "SPKI(1)"
	}
	return fmt.Sprintf("selector(%d)", uint8(s))
}

// MatchingType is the matching type field of a TLSA record (RFC 6698
// §2.1.3): how the selected data is compared.
type MatchingType uint8

// Matching types.
const (
	MatchFull   MatchingType = 0 // Full(0): the selected data itself
	MatchSHA256 MatchingType = 1 // SHA2-256(1): its SHA-256 digest
	MatchSHA512 MatchingType = 2 // SHA2-512(2): its SHA-512 digest
)

// String returns the RFC 7218 name with the number, such as "SHA2-256(1)".
func (m MatchingType) String() string {
	switch m {
	case MatchFull:
		return "Full(0)"
	case MatchSHA256:
		return "SHA2-256(1)"
	case MatchSHA512:
		return "SHA2-512(2)"
	}
	return fmt.Sprintf("mtype(%d)", uint8(m))
}

// digestLen returns the length of a digest matching type, or 0.
func (m MatchingType) digestLen() int {
	switch m {
	case MatchSHA256:
		return sha256.Size
	case MatchSHA512:
		return sha512.Size
	}
	return 0
}

// maxTLSAData bounds the association data: an RDATA is at most 65535 octets.
const maxTLSAData = 65535 - 3

// TLSA is the data of one TLSA record (RFC 6698 §2.1).
type TLSA struct {
	Usage        Usage
	Selector     Selector
	MatchingType MatchingType
	// Data is the certificate association data: a certificate, a public
	// key or a digest of one, as Selector and MatchingType say.
	Data []byte
}

// String returns the record data in presentation form, "3 1 1 ab12…" with
// the data in lower-case hex.
func (t TLSA) String() string {
	return fmt.Sprintf("%d %d %d %s", t.Usage, t.Selector, t.MatchingType, hex.EncodeToString(t.Data))
}

// short returns the record for messages, with long data abbreviated.
func (t TLSA) short() string {
	h := hex.EncodeToString(t.Data)
	if len(h) > 16 {
		h = h[:16] + "…"
	}
	return fmt.Sprintf("%d %d %d %s", t.Usage, t.Selector, t.MatchingType, h)
}

// ParseTLSAWire parses the RDATA of a TLSA record in wire form
// (RFC 6698 §2.1): three octets then the association data.
func ParseTLSAWire(rdata []byte) (TLSA, error) {
	if len(rdata) < 3 {
		return TLSA{}, fmt.Errorf("dane: TLSA record data is %d octets; it needs at least 3 (usage, selector, matching type)", len(rdata))
	}
	if len(rdata)-3 > maxTLSAData {
		return TLSA{}, fmt.Errorf("dane: TLSA record data is %d octets, more than a DNS record holds", len(rdata))
	}
	return TLSA{
		Usage:        Usage(rdata[0]),
		Selector:     Selector(rdata[1]),
		MatchingType: MatchingType(rdata[2]),
		Data:         append([]byte(nil), rdata[3:]...),
	}, nil
}

// AppendWire appends the record data in wire form to b.
func (t TLSA) AppendWire(b []byte) []byte {
	b = append(b, byte(t.Usage), byte(t.Selector), byte(t.MatchingType))
	return append(b, t.Data...)
}

// maxTLSAText bounds the presentation form accepted by ParseTLSA: the data
// in hex, a full owner name and generous room for spacing.
const maxTLSAText = 2*maxTLSAData + 4096

// ParseTLSA parses a TLSA record in presentation form (RFC 6698 §2.2). It
// accepts the record data alone, "3 1 1 0c72ac70…", or a whole zone file
// line, "_25._tcp.mx.example.com. 3600 IN TLSA 3 1 1 0c72ac70…". The three
// numbers are decimal (leading zeros allowed); the association data is hex
// in either case and may be split by white space; parentheses and a
// trailing ";" comment are allowed as in zone files. The owner name, TTL
// and class, when present, are not returned.
func ParseTLSA(s string) (TLSA, error) {
	if len(s) > maxTLSAText {
		return TLSA{}, fmt.Errorf("dane: TLSA record text is %d bytes, too long for a DNS record", len(s))
	}
	in := s
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	s = strings.Map(func(r rune) rune {
		if r == '(' || r == ')' {
			return ' '
		}
		return r
	}, s)
	f := strings.Fields(s)
	for i, tok := range f {
		if strings.EqualFold(tok, "TLSA") {
			if i == 0 || i > 3 {
				return TLSA{}, fmt.Errorf("dane: TLSA record %q: expected \"owner [ttl] [class] TLSA\" before the record data", in)
			}
			f = f[i+1:]
			break
		}
	}
	if len(f) < 4 {
		return TLSA{}, fmt.Errorf("dane: TLSA record %q: expected usage, selector, matching type and hex data", in)
	}
	var nums [3]uint8
	for i, what := range []string{"usage", "selector", "matching type"} {
		n, err := strconv.ParseUint(f[i], 10, 8)
		if err != nil {
			return TLSA{}, fmt.Errorf("dane: TLSA record %q: %s %q is not a number from 0 to 255", in, what, f[i])
		}
		nums[i] = uint8(n)
	}
	h := strings.Join(f[3:], "")
	data, err := hex.DecodeString(h)
	if err != nil {
		return TLSA{}, fmt.Errorf("dane: TLSA record %q: association data is not hex: %w", in, err)
	}
	if len(data) > maxTLSAData {
		return TLSA{}, fmt.Errorf("dane: TLSA record %q: association data is %d octets, more than a DNS record holds", in, len(data))
	}
	return TLSA{Usage: Usage(nums[0]), Selector: Selector(nums[1]), MatchingType: MatchingType(nums[2]), Data: data}, nil
}

// UnusableReason returns why an SMTP client must not use t to authenticate
// a server, or "" if it may. Usable records have usage DANE-TA(2) or
// DANE-EE(3) (RFC 7672 §3.1.3 makes PKIX-TA(0) and PKIX-EE(1) unusable for
// SMTP), a known selector and matching type (RFC 6698 §2.1, §4.1),
// and, for a digest, data of the digest's length.
func (t TLSA) UnusableReason() string {
	switch t.Usage {
	case DANETA, DANEEE:
	case PKIXTA, PKIXEE:
		return fmt.Sprintf("usage %v is not used for SMTP (RFC 7672 §3.1.3)", t.Usage)
	default:
		return fmt.Sprintf("unknown certificate usage %d", t.Usage)
	}
	switch t.Selector {
	case SelectorCert, SelectorSPKI:
	default:
		return fmt.Sprintf("unknown selector %d", t.Selector)
	}
	switch t.MatchingType {
	case MatchFull:
		if len(t.Data) == 0 {
			return "empty association data"
		}
	case MatchSHA256, MatchSHA512:
		if n := t.MatchingType.digestLen(); len(t.Data) != n {
			return fmt.Sprintf("%v data is %d octets, not %d", t.MatchingType, len(t.Data), n)
		}
	default:
		return fmt.Sprintf("unknown matching type %d", t.MatchingType)
	}
	return ""
}

// Usable reports whether an SMTP client may authenticate a server with t;
// see UnusableReason.
func (t TLSA) Usable() bool { return t.UnusableReason() == "" }

// selected returns the part of cert that a record with selector s covers.
func selected(s Selector, cert *x509.Certificate) ([]byte, bool) {
	switch s {
	case SelectorCert:
		return cert.Raw, true
	case SelectorSPKI:
		return cert.RawSubjectPublicKeyInfo, true
	}
	return nil, false
}

// associate computes the association data of cert for a selector and a
// matching type.
func associate(s Selector, m MatchingType, cert *x509.Certificate) ([]byte, bool) {
	b, ok := selected(s, cert)
	if !ok {
		return nil, false
	}
	switch m {
	case MatchFull:
		return b, true
	case MatchSHA256:
		d := sha256.Sum256(b)
		return d[:], true
	case MatchSHA512:
		d := sha512.Sum512(b)
		return d[:], true
	}
	return nil, false
}

// Matches reports whether cert matches the record's selector, matching type
// and data. It ignores the usage: whether a match authenticates a server
// depends on where cert is in the chain, which is the Verifier's business.
func (t TLSA) Matches(cert *x509.Certificate) bool {
	if cert == nil {
		return false
	}
	want, ok := associate(t.Selector, t.MatchingType, cert)
	return ok && len(want) == len(t.Data) && string(want) == string(t.Data)
}

// NewTLSA returns the record that associates cert with the given usage,
// selector and matching type, as a server operator would publish it.
func NewTLSA(cert *x509.Certificate, u Usage, s Selector, m MatchingType) (TLSA, error) {
	if cert == nil {
		return TLSA{}, fmt.Errorf("dane: no certificate to make a TLSA record for")
	}
	data, ok := associate(s, m, cert)
	if !ok {
		return TLSA{}, fmt.Errorf("dane: cannot make a TLSA record with selector %v and matching type %v", s, m)
	}
	return TLSA{Usage: u, Selector: s, MatchingType: m, Data: append([]byte(nil), data...)}, nil
}

// agile applies digest algorithm agility (RFC 7671 §9, RFC 7672 §5) to
// usable records: for each usage and selector, only the digest records of
// the strongest matching type present are kept, so that a weaker digest
// cannot authenticate a server whose operator published a stronger one.
// Full(0) records are not digests and are always kept.
func agile(records []TLSA) []TLSA {
	type key struct {
		u Usage
		s Selector
	}
	best := map[key]MatchingType{}
	for _, r := range records {
		if r.MatchingType == MatchFull {
			continue
		}
		k := key{r.Usage, r.Selector}
		if cur, ok := best[k]; !ok || r.MatchingType.strength() > cur.strength() {
			best[k] = r.MatchingType
		}
	}
	var out []TLSA
	for _, r := range records {
		if r.MatchingType == MatchFull || best[key{r.Usage, r.Selector}] == r.MatchingType {
			out = append(out, r)
		}
	}
	return out
}

// strength orders the supported digests, strongest highest.
func (m MatchingType) strength() int {
	switch m {
	case MatchSHA512:
		return 2
	case MatchSHA256:
		return 1
	}
	return 0
}
