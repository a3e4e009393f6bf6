// Package dane authenticates SMTP servers with DANE (RFC 7672, RFC 7671,
// RFC 6698): TLSA records published in DNSSEC-signed DNS say which
// certificate or key a mail server uses, so that delivery to it can be
// authenticated without trusting any certificate authority, and so that an
// attacker who strips STARTTLS or presents another certificate causes a
// refused delivery instead of a silent downgrade.
//
// It is everything in smtpsecure that depends on DNSSEC: a DNSSEC-aware
// resolver that can also validate signatures itself, TLSA records, the
// RFC 7672 lookup procedure, and verification of a server's certificate
// chain against the records.
//
// # When DANE applies
//
// For mail to a domain, the client looks up its MX records, then for each
// MX host its addresses, then the host's TLSA records at
// _25._tcp.<host>. DANE applies to a host only when all of these are
// proven by DNSSEC:
//
//   - The address records of the host, and any CNAME leading to them, must
//     be secure; otherwise the TLSA records are not even looked up
//     (RFC 7672 §2.2.3). An insecure MX RRset does not prevent DANE, but
//     then the MX host name is the only name the certificate may be checked
//     against (RFC 7672 §2.2.1, §3.2.2).
//   - If the host name is a secure CNAME alias, the TLSA records of the
//     expanded name are tried first, then those of the original name. The
//     name where they are found is the TLSA base domain; it is also the
//     name sent in SNI (RFC 7672 §2.2.3, §8.1).
//   - A secure TLSA RRset with at least one usable record, DANE-TA(2) or
//     DANE-EE(3) with a known selector and matching type, makes TLS and
//     authentication by those records mandatory. A secure RRset with only
//     unusable records (PKIX-TA(0) and PKIX-EE(1) are unusable for SMTP,
//     RFC 7672 §3.1.3) still makes TLS mandatory, without authentication.
//     A secure denial, or an insecure answer, means no DANE.
//   - A TLSA lookup that fails or is bogus makes the host unusable: the
//     client must try the next MX host or defer, never fall back to
//     delivery without DANE, because that is exactly what an attacker who
//     can drop DNS packets would want (RFC 7672 §2.1.2, §2.2).
//
// Resolver.LookupHostTLSA applies these rules and returns a Decision
// (HostUnusable, NoDANE, TLSRequired, DANERequired), so that callers do not
// re-derive them. For DANERequired, HostTLSA.Verifier returns a Verifier:
// given to smtpsecure's Dialer.DANE, it authenticates the server instead of
// the Web PKI, with its ServerName as SNI (Verifier.TLSConfig builds a
// tls.Config that does the same for other TLS clients).
//
// # What "secure" means
//
// By default this package does not check DNSSEC signatures itself. It asks
// a validating recursive resolver (Unbound, BIND, Knot Resolver…) and reads
// the resolver's verdict from the reply, as RFC 7672 §2.1.1 classifies it:
//
//   - Secure: the reply has the AD (Authentic Data) bit and comes from a
//     trusted upstream. Every record in it, and every CNAME that led to
//     it, was validated (RFC 4035 §3.2.3).
//   - Insecure: no AD bit, or an untrusted upstream. The data may be
//     right, but nothing proves it.
//   - Bogus: the resolver answered SERVFAIL with an RFC 8914 extended DNS
//     error of the DNSSEC kind (6, DNSSEC Bogus; 7, Signature Expired;
//     10, RRSIGs Missing; …). Validation failed: a broken zone or an
//     attack.
//   - Indeterminate: no usable answer at all: SERVFAIL without such an
//     extended error (a validating resolver without RFC 8914 support
//     reports bogus data this way too), REFUSED, a timeout, a malformed
//     reply. This is a lookup error, never "no records".
//
// In validating mode (below) the package checks the signatures itself and
// the same four statuses mean:
//
//   - Secure: a chain of signatures leads from a trust anchor down to
//     every record of the answer, every CNAME or DNAME that led to it, and
//     for a denial the NSEC or NSEC3 records that prove it.
//   - Insecure: the chain proves that it cannot reach the answer: a
//     delegation without DS records (proven by its parent), DS records
//     that name only algorithms or digests this package does not
//     implement (RFC 4035 §5.2, RFC 8624), an NSEC3 opt-out span, NSEC3
//     records with more iterations than RFC 9276 lets a validator accept,
//     or no trust anchor above the name.
//   - Bogus: a signature, key or proof that the chain says must be there
//     is missing, expired, not yet valid or wrong. The *LookupError wraps
//     ErrBogus and a *ValidationError that says which records failed and
//     why, with the matching RFC 8914 code.
//   - Indeterminate: an upstream query failed (SERVFAIL, REFUSED, a
//     timeout, a malformed reply, a referral from a server that is not a
//     recursive resolver), or validation reached one of its work limits
//     (ErrValidationLimit).
//
// NXDOMAIN and NODATA are answers, not errors, and carry a status like any
// other answer: a secure denial proves that no records exist.
//
// # Validating mode
//
// Most hosts have no validating resolver on loopback: containers, laptops
// and cloud machines use resolvers that do not validate, strip the AD bit
// or sit across a network this package cannot trust. Without a trusted
// upstream every answer is Insecure and DANE never applies. Validating mode
// makes DANE work there. Set a Validator:
//
//	r := &dane.Resolver{Validator: &dane.Validator{}}
//
// The Resolver then asks its upstreams (from resolv.conf, or Servers) with
// the DO and CD bits, so that they return signatures and do not filter
// what they find bogus, and validates every answer from the root zone's
// trust anchors, built in (RootTrustAnchors: KSK-2017 and KSK-2024). It
// fetches the DS and DNSKEY records of each zone on the way down, verifies
// every signature it relies on, checks the NSEC and NSEC3 proofs of
// denials, wildcard expansions and insecure delegations, and follows
// CNAME and DNAME chains across zones. Trust in the upstream no longer
// matters, since a forged answer cannot carry valid signatures, so every
// upstream is asked and the AD bit and TrustedServers are ignored.
// LookupMX, LookupIP, LookupHostTLSA and everything built on them work
// unchanged.
//
// Supported: algorithms RSASHA256 (8), RSASHA512 (10), ECDSAP256SHA256
// (13), ECDSAP384SHA384 (14) and ED25519 (15); DS digests SHA-256 (2) and
// SHA-384 (4), and SHA-1 (1) only where no stronger digest is published
// (RFC 4509 §3). RSASHA1 (5, 7) is treated as unsupported, as RFC 9905
// requires; a zone signed only with unsupported algorithms is Insecure, not
// Bogus. Signatures are accepted up to an hour outside their validity
// period, for clocks that are slightly off.
//
// Other trust anchors, DS or DNSKEY records for any zone, go in
// Validator.TrustAnchors (for private zones or tests); ParseTrustAnchorsXML
// reads IANA's root-anchors.xml (RFC 7958, RFC 9718). There is no RFC 5011
// automated key rollover: when the root key changes, update this package
// or supply the new anchor.
//
// A Validator caches validated DNSKEY sets, delegations and answers,
// bounded in entries (CacheSize), each until the earliest TTL or signature
// expiration it relies on, so that a busy sender validates each zone's
// keys once; concurrent lookups share one validation. A bogus answer is
// remembered for five seconds (RFC 9520), so that a burst of lookups does
// not validate it again and again. Share one Validator between Resolvers.
//
// Hostile zones cannot make validation expensive: each lookup is bounded to
// 64 upstream queries, 100 signature verifications (8 per RRset, trying at
// most 4 keys that share a key tag: the KeyTrap attack, CVE-2023-50387),
// and 100 NSEC3 hashes; NSEC3 records with more than 100 iterations are
// not hashed at all (CVE-2023-50868, RFC 9276). Replies are at most 64 KiB
// (TCP framing); a truncated UDP reply is asked again over TCP. A lookup
// that reaches a limit is Indeterminate, never Insecure.
//
// # Why the upstream must be trusted
//
// The AD bit is one unauthenticated bit in the header of a DNS reply. Anyone
// who can alter or forge replies on the path between this client and its
// resolver can set it on forged data, and then choose the TLSA records too:
// DANE would authenticate the attacker. RFC 4033 §7 and RFC 4035 §4.9.3
// therefore let a stub resolver rely on the AD bit only from a recursive
// resolver it trusts, over a channel it trusts, and RFC 7672 §2.1 requires
// the same of DANE SMTP clients.
//
// So a Resolver believes the AD bit only from an upstream on a loopback
// address (a validating resolver on the same host, where no network is
// crossed), or from an upstream the caller lists in
// Resolver.TrustedServers, a deliberate statement that the path to it is
// secure. Replies from any other upstream are never Secure, whatever their
// AD bit says, and DANE is then never used for them. The "options trust-ad"
// line of resolv.conf is not honoured: trust is a choice made in code.
//
// When the list of upstreams holds a trusted one, the untrusted ones are
// not asked at all. Otherwise an attacker who can make the validating
// resolver fail (SERVFAIL, a dropped packet) and answer for the other one
// would turn "bogus" or "failed", which makes a host unusable, into an
// insecure answer, which means "no DANE": the downgrade DANE exists to
// prevent. A resolv.conf listing 127.0.0.1 and a remote resolver
// therefore makes lookups fail while the local resolver is down, instead
// of silently losing DANE. Likewise, once a trusted upstream has reported
// an answer bogus, only a Secure answer from another trusted upstream can
// overrule it.
//
// The loopback resolver must validate DNSSEC itself: a local forwarder that
// passes on the AD bit of a remote resolver reintroduces the untrusted path.
// Run a validating resolver such as Unbound on the sending host and let the
// default Resolver find it in /etc/resolv.conf, or name it:
//
//	r := &dane.Resolver{Servers: []string{"127.0.0.1:53"}}
//
// Where no such resolver can run, use validating mode instead: trust in the
// upstream then plays no part.
//
// # Verification
//
// DANE-EE(3) records match the server certificate or its public key; the
// certificate's names and validity dates are ignored (RFC 7672 §3.1.1,
// §3.2.1). DANE-TA(2) records designate a trust anchor: a certificate of
// the chain the server sent, or a full certificate or public key carried
// in the record itself. The chain from the server certificate to the
// anchor must be valid, with dates checked, and the server certificate
// must name the TLSA base domain, the MX host name or its CNAME expansion,
// or, when the MX RRset was secure, the recipient domain (RFC 7672
// §3.2.2, §3.2.3). For each usage and selector only the strongest digest
// published is used (RFC 7671 §9).
//
// Every error is a *LookupError or a *VerifyError. Both wrap sentinel
// errors for errors.Is (ErrBogus, ErrLookup, ErrNoMatch, ErrNameMismatch…)
// and have a ReportResultType method giving the RFC 8460 result type
// ("dnssec-invalid", "tlsa-invalid", "validation-failure"…) for TLS
// reporting, so that callers can map them without knowing these types.
package dane
