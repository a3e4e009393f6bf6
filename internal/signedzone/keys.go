// Package signedzone builds DNSSEC-signed test zones inside a test and
// serves them from an in-process server that plays a NON-validating
// recursive resolver: it answers every query from the zones it holds, the
// way a recursive resolver that has already walked the delegations
// would, and returns the signatures (RRSIG) and denial records (NSEC or
// NSEC3) whenever the query set the DO bit. It never validates and never
// sets the AD bit, so a client that wants to know whether an answer is
// secure has to check the signatures itself.
//
// Zones are signed with real keys (algorithms 8, 10, 13, 14 and 15), with
// NSEC or NSEC3 chains (iterations, salt and opt-out configurable), so
// that a validator can be tested against everything real zones do, and,
// by changing records or signatures after signing, against the ways they
// break.
//
// A typical test builds a hierarchy under a test root, whose key is then
// the trust anchor:
//
//	root := signedzone.NewZone(".", signedzone.MustKey(".", dns.ECDSAP256SHA256))
//	com := signedzone.NewZone("com.", signedzone.MustKey("com.", dns.ECDSAP256SHA256))
//	com.MustAdd("mx.com. A 192.0.2.1")
//	root.Delegate(com, dns.SHA256)
//	srv := signedzone.New(t, root, com) // signs every zone and serves them
//	anchors := root.DS(dns.SHA256)
package signedzone

import (
	"crypto"
	"crypto/ed25519"
	"fmt"
	"sync"

	"github.com/miekg/dns"
)

// Key is a DNSSEC key pair.
type Key struct {
	// DNSKEY is the public key record, owned by the zone apex.
	DNSKEY *dns.DNSKEY
	// Signer is the private key.
	Signer crypto.Signer
}

// Tag returns the key tag.
func (k *Key) Tag() uint16 { return k.DNSKEY.KeyTag() }

// keySizes are the key sizes per algorithm. RSA keys are 1024 bits, the
// smallest Go accepts, to keep key generation fast in tests.
var keySizes = map[uint8]int{
	dns.RSASHA1:         1024,
	dns.RSASHA256:       1024,
	dns.RSASHA512:       1024,
	dns.ECDSAP256SHA256: 256,
	dns.ECDSAP384SHA384: 384,
	dns.ED25519:         256,
}

// NewKey generates a key-signing key (SEP flag set, flags 257) for zone
// with algorithm alg (8, 10, 13, 14 or 15).
func NewKey(zone string, alg uint8) (*Key, error) {
	return newKey(zone, alg, 257, 0)
}

// NewZSK generates a zone-signing key (flags 256).
func NewZSK(zone string, alg uint8) (*Key, error) {
	return newKey(zone, alg, 256, 0)
}

// NewKeyBits generates a key with the given flags and size, such as a
// 4096-bit RSA key for a DNSKEY set larger than a UDP answer.
func NewKeyBits(zone string, alg uint8, flags uint16, bits int) (*Key, error) {
	return newKey(zone, alg, flags, bits)
}

func newKey(zone string, alg uint8, flags uint16, bits int) (*Key, error) {
	if bits == 0 {
		var ok bool
		if bits, ok = keySizes[alg]; !ok {
			return nil, fmt.Errorf("signedzone: no key size for algorithm %d", alg)
		}
	}
	k := &dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: dns.CanonicalName(zone), Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags:     flags,
		Protocol:  3,
		Algorithm: alg,
	}
	priv, err := k.Generate(bits)
	if err != nil {
		return nil, fmt.Errorf("signedzone: generating a key for %s: %w", zone, err)
	}
	return &Key{DNSKEY: k, Signer: priv.(crypto.Signer)}, nil
}

// MustKey is NewKey for test set-up; it panics on error.
func MustKey(zone string, alg uint8) *Key {
	k, err := NewKey(zone, alg)
	if err != nil {
		panic(err)
	}
	return k
}

// SeedKey returns a deterministic Ed25519 key (algorithm 15) for zone from
// a one-byte seed, with the given flags (257 or 256). Ed25519 signatures
// are deterministic too, so zones signed with such keys and fixed validity
// times are the same in every run: fuzz seeds and benchmarks use them.
func SeedKey(zone string, seed byte, flags uint16) *Key {
	var s [ed25519.SeedSize]byte
	for i := range s {
		s[i] = seed + byte(i)
	}
	priv := ed25519.NewKeyFromSeed(s[:])
	k := &dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: dns.CanonicalName(zone), Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags:     flags,
		Protocol:  3,
		Algorithm: dns.ED25519,
		PublicKey: toBase64(priv.Public().(ed25519.PublicKey)),
	}
	return &Key{DNSKEY: k, Signer: priv}
}

// cachedKeys hands out one generated key per (zone, algorithm, flags) for
// tests that do not care about key identity, since RSA key generation is
// slow.
var (
	keyMu    sync.Mutex
	keyCache = map[string]*Key{}
)

// CachedKey returns a key for zone, generating it the first time and
// returning the same one afterwards within the test binary.
func CachedKey(zone string, alg uint8, flags uint16) (*Key, error) {
	id := fmt.Sprintf("%s/%d/%d", dns.CanonicalName(zone), alg, flags)
	keyMu.Lock()
	defer keyMu.Unlock()
	if k, ok := keyCache[id]; ok {
		return k, nil
	}
	k, err := newKey(zone, alg, flags, 0)
	if err != nil {
		return nil, err
	}
	keyCache[id] = k
	return k, nil
}
