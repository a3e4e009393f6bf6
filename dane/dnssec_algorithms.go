package dane

import (
	"strings"
	"time"

	"github.com/miekg/dns"
)

// algorithmSupported reports whether signatures of a DNSSEC algorithm are
// verified. RFC 8624 §3.1 requires validators to implement RSASHA256 (8),
// ECDSAP256SHA256 (13) and ED25519 (15), and recommends ECDSAP384SHA384
// (14); RSASHA512 (10) is still in use. RSASHA1 (5) and
// RSASHA1-NSEC3-SHA1 (7) are treated as unsupported, as RFC 9905 §2
// requires of validator operators; ED448 (16) has no implementation in
// Go's standard library; the rest are deprecated (RFC 8624 §3.1). A zone
// whose DS records name only unsupported algorithms is insecure, not bogus
// (RFC 4035 §5.2).
func algorithmSupported(alg uint8) bool {
	switch alg {
	case dns.RSASHA256, dns.RSASHA512, dns.ECDSAP256SHA256, dns.ECDSAP384SHA384, dns.ED25519:
		return true
	}
	return false
}

// digestSupported reports whether DS records with a digest type are used:
// SHA-256 (2) and SHA-384 (4), and SHA-1 (1), which RFC 8624 §3.3 still
// requires validators to accept, only when no stronger digest is present
// (RFC 4509 §3; see usableDS). GOST (3), which RFC 8624 §3.3 says not to
// use for validation, is unsupported: a zone that offers only it is insecure.
func digestSupported(t uint8) bool {
	switch t {
	case dns.SHA1, dns.SHA256, dns.SHA384:
		return true
	}
	return false
}

// usableDS returns the DS records that can authenticate a key: those
// with a supported algorithm and digest type. When one of them uses a
// digest other than SHA-1, SHA-1 records are dropped, so that an attacker
// cannot downgrade to them (RFC 4509 §3).
func usableDS(set []*dns.DS) []*dns.DS {
	var out []*dns.DS
	strong := false
	for _, ds := range set {
		if algorithmSupported(ds.Algorithm) && digestSupported(ds.DigestType) {
			out = append(out, ds)
			strong = strong || ds.DigestType != dns.SHA1
		}
	}
	if !strong {
		return out
	}
	kept := out[:0]
	for _, ds := range out {
		if ds.DigestType != dns.SHA1 {
			kept = append(kept, ds)
		}
	}
	return kept
}

// dsMatchesKey reports whether ds is a digest of key: same owner, key tag
// and algorithm, and the digest of the key's owner and RDATA (RFC 4034
// §5.1.4).
func dsMatchesKey(ds *dns.DS, key *dns.DNSKEY) bool {
	if ds.Algorithm != key.Algorithm || ds.KeyTag != key.KeyTag() || !sameName(ds.Hdr.Name, key.Hdr.Name) {
		return false
	}
	d := key.ToDS(ds.DigestType)
	return d != nil && strings.EqualFold(d.Digest, ds.Digest)
}

// zoneKeyUsable reports whether a DNSKEY may verify signatures over
// RRsets: the Zone Key flag set (RFC 4034 §2.1.1), protocol 3 (§2.1.2),
// not revoked (RFC 5011 §3), and a supported algorithm.
func zoneKeyUsable(k *dns.DNSKEY) bool {
	return k.Flags&dns.ZONE != 0 && k.Flags&dns.REVOKE == 0 && k.Protocol == 3 && algorithmSupported(k.Algorithm)
}

// sameKey reports whether two DNSKEY records hold the same key.
func sameKey(a, b *dns.DNSKEY) bool {
	return a.Flags == b.Flags && a.Protocol == b.Protocol && a.Algorithm == b.Algorithm &&
		a.PublicKey == b.PublicKey && sameName(a.Hdr.Name, b.Hdr.Name)
}

// sigTime converts an RRSIG timestamp, a 32-bit count of seconds that wraps
// (RFC 4034 §3.1.5, serial number arithmetic), to the absolute time
// closest to now.
func sigTime(v uint32, now time.Time) time.Time {
	t := now.Unix()
	return time.Unix(t+int64(int32(v-uint32(t))), 0)
}

// sigWindow checks an RRSIG's validity period against now with the clock
// skew allowance. It returns the expiration time, or the RFC 8914 code
// and text of the problem.
func sigWindow(sig *dns.RRSIG, now time.Time) (time.Time, uint16, string) {
	inc, exp := sigTime(sig.Inception, now), sigTime(sig.Expiration, now)
	switch {
	case exp.Before(inc):
		return exp, dns.ExtendedErrorCodeSignatureExpiredBeforeValid, "signature expires before its inception"
	case now.After(exp.Add(maxClockSkew)):
		return exp, dns.ExtendedErrorCodeSignatureExpired, "signature expired at " + exp.UTC().Format(time.RFC3339)
	case now.Before(inc.Add(-maxClockSkew)):
		return exp, dns.ExtendedErrorCodeSignatureNotYetValid, "signature not valid before " + inc.UTC().Format(time.RFC3339)
	}
	return exp, 0, ""
}
