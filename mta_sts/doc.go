// Package mtasts implements the sending side of SMTP MTA Strict Transport
// Security (MTA-STS, RFC 8461): it tells MX delivery whether a recipient
// domain without DNSSEC has asked senders to use only its listed MX hosts,
// over TLS, with certificates valid under the Web PKI.
//
// # How MTA-STS works
//
// A domain that uses MTA-STS publishes two things: a TXT record at
// _mta-sts.<domain>, such as "v=STSv1; id=20240101", whose id changes
// whenever the policy changes, and a policy at
// https://mta-sts.<domain>/.well-known/mta-sts.txt:
//
//	version: STSv1
//	mode: enforce
//	mx: mx1.example.com
//	mx: *.backup.example.net
//	max_age: 604800
//
// A sender looks up the TXT record for the recipient domain, fetches the
// policy when it has none cached under that id, and caches it for max_age
// seconds. In mode enforce it delivers only to MX hosts that match an mx
// pattern and present, over STARTTLS, a certificate valid for their name;
// in mode testing it checks and reports but delivers anyway; mode none
// withdraws a policy. Because the policy is fetched over HTTPS and cached,
// an attacker who controls DNS or the network later cannot strip it.
//
// # Using the package
//
// A Client does discovery, fetching and caching. Call Get once per recipient
// domain during delivery:
//
//	c := &mtasts.Client{Store: fileStore} // the zero Client works too
//	res, err := c.Get(ctx, "example.com")
//	if err != nil {
//		return err // invalid domain or ctx ended
//	}
//	if res.Enforced() && !res.Policy.Match(mxHost) {
//		// skip this MX host
//	}
//
// Result.Source says whether the policy was just fetched, came from the
// cache, or came from the cache because live discovery failed; Result.Err and
// Result.ReportResultType say what failed, as an RFC 8460 result type
// (sts-policy-fetch-error, sts-policy-invalid, sts-webpki-invalid), and
// Result.PolicyStrings gives the policy-string lines of a TLS-RPT report.
// Before an enforce failure becomes a permanent bounce, call Recheck: it
// fetches a new policy if the TXT id has changed (RFC 8461 §5.1). Run
// Refresh in a goroutine to renew cached policies before they expire.
//
// The certificate check of an MX host (RFC 8461 §4.2) happens in the SMTP
// client's TLS handshake; VerifyMXCertificate and MXVerifyOptions give it
// with RFC 8460 result types.
//
// Lower-level pieces are exported for tools that inspect a domain:
// LookupRecord, ParseRecord, FetchPolicy, ParsePolicy, and the Store
// implementations MemoryStore and FileStore.
//
// # Rules applied
//
//   - The policy domain is the recipient domain itself (RFC 8461 §3.4),
//     converted to A-labels; no parent domain is consulted.
//   - TXT records: records not starting with v=STSv1 are dropped; zero or
//     several remaining records, or one that breaks the grammar, mean no
//     policy (a cached policy still applies). Split strings must be joined
//     by the resolver, as net.Resolver does.
//   - Fetch: HTTPS with SNI and a certificate valid for mta-sts.<domain>,
//     TLS 1.2 or later, status 200 only, redirects never followed, no HTTP
//     cache, Content-Type text/plain, at most 64 KiB, 60 s timeout.
//   - A fetch that fails with no valid cached policy means "deliver as if
//     the domain had no policy" and reports sts-policy-fetch-error (or
//     sts-policy-invalid, sts-webpki-invalid). A failed fetch is not retried
//     for the same domain and id for five minutes.
//   - A missing TXT record does not evict a cached policy; a new id does.
//
// # Choices where implementations disagree
//
// Parsing follows the RFC 8461 ABNF strictly where public implementations
// differ, because a lenient parser would accept policies that other senders
// reject and so hide configuration errors from the domain owner:
//
//   - mx values must be A-labels, as the ABNF (RFC 5321 Domain) says. A
//     policy with a U-label mx value such as "møx.example" is invalid
//     (mox rejects it, go-mtasts accepts it). Policy.Match, by contrast,
//     converts both its argument and the patterns to A-labels, so a host
//     name or a Policy built in code may use U-labels.
//   - mx values may not end in a dot, and blank lines are not allowed.
//   - The TXT record allows one optional trailing ";" only:
//     "v=STSv1; id=1;;" is invalid (mox rejects it, postfix-mta-sts-resolver
//     accepts it). White space around ";" is allowed, so "v=STSv1 ; id=1"
//     is a valid record even though RFC 8461 §3.1's prose mentions records
//     starting with "v=STSv1;".
//   - A TXT record with two id fields is invalid.
//   - Trailing white space after a policy value is allowed (the ABNF's *WSP).
//
// Errors map to RFC 8460 result types this way: TXT lookup failures,
// several or invalid TXT records, network and HTTP failures (including 404,
// redirects and a wrong Content-Type) are sts-policy-fetch-error; a body
// that fails to parse or is over 64 KiB is sts-policy-invalid; a certificate
// problem on the policy host is sts-webpki-invalid. A missing TXT record is
// not a failure (policy-type no-policy-found), except while a cached enforce
// or testing policy still applies: a domain that withdraws MTA-STS first
// publishes mode none, so the record vanishing under an active policy is
// reported as sts-policy-fetch-error.
package mtasts
