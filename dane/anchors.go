package dane

import (
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// rootAnchors are the DS records of the root zone's key-signing keys, as
// IANA publishes them in https://data.iana.org/root-anchors/root-anchors.xml
// (RFC 9718): KSK-2017 (key tag 20326, in use since 2018) and KSK-2024
// (key tag 38696, published in the root zone since 2025 for the next
// rollover). Both are RSASHA256 keys with SHA-256 digests.
var rootAnchors = [...]struct {
	tag    uint16
	digest string
}{
	{20326, "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"},
	{38696, "683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16"},
}

// RootTrustAnchors returns the built-in trust anchors of the root zone: the
// DS records of KSK-2017 (key tag 20326) and KSK-2024 (key tag 38696), as
// published by IANA. A Validator whose TrustAnchors is nil uses them. Each
// call returns new records, which the caller may change.
func RootTrustAnchors() []dns.RR {
	out := make([]dns.RR, 0, len(rootAnchors))
	for _, a := range rootAnchors {
		out = append(out, &dns.DS{
			Hdr:        dns.RR_Header{Name: ".", Rrtype: dns.TypeDS, Class: dns.ClassINET, Ttl: 172800},
			KeyTag:     a.tag,
			Algorithm:  dns.RSASHA256,
			DigestType: dns.SHA256,
			Digest:     a.digest,
		})
	}
	return out
}

// The RFC 7958 / RFC 9718 trust anchor file.
type xmlTrustAnchor struct {
	XMLName   xml.Name       `xml:"TrustAnchor"`
	Zone      string         `xml:"Zone"`
	KeyDigest []xmlKeyDigest `xml:"KeyDigest"`
}

type xmlKeyDigest struct {
	ID         string `xml:"id,attr"`
	ValidFrom  string `xml:"validFrom,attr"`
	ValidUntil string `xml:"validUntil,attr"`
	KeyTag     string `xml:"KeyTag"`
	Algorithm  string `xml:"Algorithm"`
	DigestType string `xml:"DigestType"`
	Digest     string `xml:"Digest"`
	PublicKey  string `xml:"PublicKey"`
	Flags      string `xml:"Flags"`
}

// maxAnchorFile bounds the size of a trust anchor file read by
// ParseTrustAnchorsXML. IANA's file is about 2 KiB.
const maxAnchorFile = 1 << 20

// ParseTrustAnchorsXML reads a trust anchor file in the XML format of
// RFC 7958, as updated by RFC 9718 (IANA's root-anchors.xml), and returns
// the DS records of the key digests valid at the time now: validFrom at or
// before now, and validUntil, when present, after it. The result can be
// used as Validator.TrustAnchors.
//
// When a key digest also carries the key itself (the PublicKey and Flags
// elements of RFC 9718), the key must match the digest and the key tag;
// a file where it does not is rejected. A file with no key digest valid
// at now is an error, since it would leave nothing to validate from.
func ParseTrustAnchorsXML(r io.Reader, now time.Time) ([]dns.RR, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxAnchorFile+1))
	if err != nil {
		return nil, fmt.Errorf("dane: reading the trust anchor file: %w", err)
	}
	if len(data) > maxAnchorFile {
		return nil, fmt.Errorf("dane: trust anchor file larger than %d bytes", maxAnchorFile)
	}
	var ta xmlTrustAnchor
	if err := xml.Unmarshal(data, &ta); err != nil {
		return nil, fmt.Errorf("dane: trust anchor file: %w", err)
	}
	zone := strings.TrimSpace(ta.Zone)
	if zone == "" {
		return nil, errors.New("dane: trust anchor file: no Zone element")
	}
	if _, ok := dns.IsDomainName(zone); !ok {
		return nil, fmt.Errorf("dane: trust anchor file: Zone %q is not a domain name", zone)
	}
	zone = dns.CanonicalName(zone)
	var out []dns.RR
	for _, kd := range ta.KeyDigest {
		ds, err := kd.ds(zone)
		if err != nil {
			return nil, fmt.Errorf("dane: trust anchor file: KeyDigest %q: %w", kd.ID, err)
		}
		from, err := time.Parse(time.RFC3339, strings.TrimSpace(kd.ValidFrom))
		if err != nil {
			return nil, fmt.Errorf("dane: trust anchor file: KeyDigest %q: validFrom: %w", kd.ID, err)
		}
		if now.Before(from) {
			continue
		}
		if u := strings.TrimSpace(kd.ValidUntil); u != "" {
			until, err := time.Parse(time.RFC3339, u)
			if err != nil {
				return nil, fmt.Errorf("dane: trust anchor file: KeyDigest %q: validUntil: %w", kd.ID, err)
			}
			if !now.Before(until) {
				continue
			}
		}
		out = append(out, ds)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("dane: trust anchor file: no key digest of zone %q is valid at %s", zone, now.UTC().Format(time.RFC3339))
	}
	return out, nil
}

// ds converts one KeyDigest element, checking its key when it has one.
func (kd *xmlKeyDigest) ds(zone string) (*dns.DS, error) {
	num := func(what, s string, bits int) (uint64, error) {
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, bits)
		if err != nil {
			return 0, fmt.Errorf("%s %q is not a %d-bit number", what, s, bits)
		}
		return n, nil
	}
	tag, err := num("KeyTag", kd.KeyTag, 16)
	if err != nil {
		return nil, err
	}
	alg, err := num("Algorithm", kd.Algorithm, 8)
	if err != nil {
		return nil, err
	}
	dt, err := num("DigestType", kd.DigestType, 8)
	if err != nil {
		return nil, err
	}
	digest := strings.Join(strings.Fields(kd.Digest), "")
	if b, err := hex.DecodeString(digest); err != nil || len(b) == 0 {
		return nil, fmt.Errorf("Digest %q is not hexadecimal", kd.Digest)
	}
	ds := &dns.DS{
		Hdr:        dns.RR_Header{Name: zone, Rrtype: dns.TypeDS, Class: dns.ClassINET, Ttl: 172800},
		KeyTag:     uint16(tag),
		Algorithm:  uint8(alg),
		DigestType: uint8(dt),
		Digest:     strings.ToUpper(digest),
	}
	if strings.TrimSpace(kd.PublicKey) == "" {
		return ds, nil
	}
	flags, err := num("Flags", kd.Flags, 16)
	if err != nil {
		return nil, err
	}
	key := &dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 172800},
		Flags:     uint16(flags),
		Protocol:  3,
		Algorithm: uint8(alg),
		PublicKey: strings.Join(strings.Fields(kd.PublicKey), ""),
	}
	if key.KeyTag() != ds.KeyTag {
		return nil, fmt.Errorf("PublicKey has key tag %d, not %d", key.KeyTag(), ds.KeyTag)
	}
	if d := key.ToDS(ds.DigestType); d != nil && !strings.EqualFold(d.Digest, ds.Digest) {
		return nil, errors.New("PublicKey does not match Digest")
	}
	return ds, nil
}
