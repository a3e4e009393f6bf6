package dane

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The root zone's key-signing keys as IANA publishes them (RFC 9718
// root-anchors.xml): the built-in anchors must be their digests.
const (
	ksk2017 = "AwEAAaz/tAm8yTn4Mfeh5eyI96WSVexTBAvkMgJzkKTOiW1vkIbzxeF3+/4RgWOq7HrxRixHlFlExOLAJr5emLvN7SWXgnLh4+B5xQlNVz8Og8kvArMtNROxVQuCaSnIDdD5LKyWbRd2n9WGe2R8PzgCmr3EgVLrjyBxWezF0jLHwVN8efS3rCj/EWgvIWgb9tarpVUDK/b58Da+sqqls3eNbuv7pr+eoZG+SrDK6nWeL3c6H5Apxz7LjVc1uTIdsIXxuOLYA4/ilBmSVIzuDWfdRUfhHdY6+cn8HFRm+2hM8AnXGXws9555KrUB5qihylGa8subX2Nn6UwNR1AkUTV74bU="
	ksk2024 = "AwEAAa96jeuknZlaeSrvyAJj6ZHv28hhOKkx3rLGXVaC6rXTsDc449/cidltpkyGwCJNnOAlFNKF2jBosZBU5eeHspaQWOmOElZsjICMQMC3aeHbGiShvZsx4wMYSjH8e7Vrhbu6irwCzVBApESjbUdpWWmEnhathWu1jo+siFUiRAAxm9qyJNg/wOZqqzL/dL/q8PkcRU5oUKEpUge71M3ej2/7CPqpdVwuMoTvoB+ZOT4YeGyxMvHmbrxlFzGOHOijtzN+u1TQNatX2XBuzZNQ1K+s2CXkPIZo7s6JgZyvaBevYtxPvYLw4z9mR7K2vaF18UYH9Z9GNUUeayffKC73PYc="
)

func rootKey(pub string) *dns.DNSKEY {
	return &dns.DNSKEY{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET},
		Flags: 257, Protocol: 3, Algorithm: dns.RSASHA256, PublicKey: pub}
}

// The built-in anchors parse as DS records of the root, and each is the
// SHA-256 digest of the published KSK with its key tag.
func TestRootTrustAnchors(t *testing.T) {
	anchors := RootTrustAnchors()
	keys := map[uint16]*dns.DNSKEY{20326: rootKey(ksk2017), 38696: rootKey(ksk2024)}
	if len(anchors) != len(keys) {
		t.Fatalf("%d anchors, want %d", len(anchors), len(keys))
	}
	for _, rr := range anchors {
		ds, ok := rr.(*dns.DS)
		if !ok || ds.Hdr.Name != "." || ds.Hdr.Class != dns.ClassINET || ds.DigestType != dns.SHA256 || ds.Algorithm != dns.RSASHA256 {
			t.Fatalf("anchor %v", rr)
		}
		k := keys[ds.KeyTag]
		if k == nil {
			t.Fatalf("anchor with key tag %d", ds.KeyTag)
		}
		if k.KeyTag() != ds.KeyTag || !dsMatchesKey(ds, k) {
			t.Errorf("anchor %v does not match the published key (tag %d)", ds, k.KeyTag())
		}
		// The presentation form parses back to the same record.
		again, err := dns.NewRR(ds.String())
		if err != nil || again.String() != ds.String() {
			t.Errorf("%v re-parses as %v, %v", ds, again, err)
		}
	}
	// Callers get copies.
	anchors[0].(*dns.DS).KeyTag = 1
	if RootTrustAnchors()[0].(*dns.DS).KeyTag == 1 {
		t.Error("RootTrustAnchors returned shared records")
	}
}

const anchorsXML = `<?xml version="1.0" encoding="UTF-8"?>
<TrustAnchor id="E9724F53-1851-4F86-85E5-F1392102940B" source="http://data.iana.org/root-anchors/root-anchors.xml">
<Zone>.</Zone>
<KeyDigest id="Kjqmt7v" validFrom="2010-07-15T00:00:00+00:00" validUntil="2019-01-11T00:00:00+00:00">
<KeyTag>19036</KeyTag>
<Algorithm>8</Algorithm>
<DigestType>2</DigestType>
<Digest>49AAC11D7B6F6446702E54A1607371607A1A41855200FD2CE1CDDE32F24E8FB5</Digest>
</KeyDigest>
<KeyDigest id="Klajeyz" validFrom="2017-02-02T00:00:00+00:00">
<KeyTag>20326</KeyTag>
<Algorithm>8</Algorithm>
<DigestType>2</DigestType>
<Digest>E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D</Digest>
<PublicKey>` + ksk2017 + `</PublicKey>
<Flags>257</Flags>
</KeyDigest>
<KeyDigest id="Kmyv6jo" validFrom="2024-07-18T00:00:00+00:00">
<KeyTag>38696</KeyTag>
<Algorithm>8</Algorithm>
<DigestType>2</DigestType>
<Digest>
683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16
</Digest>
<PublicKey>` + ksk2024 + `</PublicKey>
<Flags>257</Flags>
</KeyDigest>
</TrustAnchor>
`

func TestParseTrustAnchorsXML(t *testing.T) {
	day := func(s string) time.Time {
		d, err := time.Parse("2006-01-02", s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, tc := range []struct {
		at   string
		tags []uint16
	}{
		{"2015-01-01", []uint16{19036}},
		{"2018-06-01", []uint16{19036, 20326}},
		{"2020-01-01", []uint16{20326}},
		{"2026-01-01", []uint16{20326, 38696}},
	} {
		rrs, err := ParseTrustAnchorsXML(strings.NewReader(anchorsXML), day(tc.at))
		if err != nil {
			t.Fatalf("%s: %v", tc.at, err)
		}
		var tags []uint16
		for _, rr := range rrs {
			tags = append(tags, rr.(*dns.DS).KeyTag)
		}
		if len(tags) != len(tc.tags) || (len(tags) > 0 && tags[0] != tc.tags[0]) || tags[len(tags)-1] != tc.tags[len(tc.tags)-1] {
			t.Errorf("%s: key tags %v, want %v", tc.at, tags, tc.tags)
		}
	}
	// The current file gives exactly the built-in anchors.
	rrs, err := ParseTrustAnchorsXML(strings.NewReader(anchorsXML), day("2026-01-01"))
	if err != nil {
		t.Fatal(err)
	}
	for i, rr := range RootTrustAnchors() {
		if !strings.EqualFold(rr.String(), rrs[i].String()) {
			t.Errorf("parsed %v, built in %v", rrs[i], rr)
		}
	}

	bad := map[string]string{
		"key does not match the digest": strings.Replace(anchorsXML, "683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16", strings.Repeat("AB", 32), 1),
		"key tag does not match":        strings.Replace(anchorsXML, "<KeyTag>38696</KeyTag>", "<KeyTag>38697</KeyTag>", 1),
		"no zone":                       strings.Replace(anchorsXML, "<Zone>.</Zone>", "", 1),
		"bad date":                      strings.Replace(anchorsXML, `validFrom="2024-07-18T00:00:00+00:00"`, `validFrom="soon"`, 1),
		"bad digest":                    strings.Replace(anchorsXML, "49AAC11D", "not-hex!", 1),
		"not XML":                       "{}",
		"nothing valid":                 strings.Replace(strings.Replace(anchorsXML, "2017-02-02", "2099-01-01", 1), "2024-07-18", "2099-01-01", 1),
	}
	for name, doc := range bad {
		if _, err := ParseTrustAnchorsXML(strings.NewReader(doc), day("2026-01-01")); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseTrustAnchorsXML(strings.NewReader(strings.Repeat(" ", maxAnchorFile+1)), day("2026-01-01")); err == nil {
		t.Error("an oversized file was accepted")
	}
	if _, err := ParseTrustAnchorsXML(errReader{}, day("2026-01-01")); err == nil {
		t.Error("a read error was ignored")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

// FuzzParseTrustAnchorsXML: the anchors file may come over the network
// (IANA publishes it over HTTPS). Whatever it holds, the parser must not
// panic, and what it accepts must be DS records of the file's zone that
// print and parse back unchanged.
func FuzzParseTrustAnchorsXML(f *testing.F) {
	f.Add(anchorsXML)
	f.Add(`<TrustAnchor><Zone>example.</Zone><KeyDigest validFrom="2000-01-01T00:00:00Z"><KeyTag>1</KeyTag><Algorithm>13</Algorithm><DigestType>2</DigestType><Digest>00</Digest></KeyDigest></TrustAnchor>`)
	f.Add(`<TrustAnchor><Zone>.</Zone></TrustAnchor>`)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, doc string) {
		rrs, err := ParseTrustAnchorsXML(strings.NewReader(doc), now)
		if err != nil {
			return
		}
		if len(rrs) == 0 {
			t.Fatal("no records and no error")
		}
		for _, rr := range rrs {
			ds, ok := rr.(*dns.DS)
			if !ok || ds.Hdr.Name != rrs[0].Header().Name {
				t.Fatalf("record %v", rr)
			}
			again, err := dns.NewRR(ds.String())
			if err != nil || !strings.EqualFold(again.String(), ds.String()) {
				t.Fatalf("%v parses back as %v, %v", ds, again, err)
			}
		}
	})
}
