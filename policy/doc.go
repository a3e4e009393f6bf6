// Package policy decides how mail for a recipient domain must be delivered:
// which MX hosts may be tried, in which order, and for each what TLS a
// session requires and how the server's certificate is authenticated. It
// combines the domain's published policies, DANE (RFC 7672) and MTA-STS
// (RFC 8461), with local rules, and writes every decision down, so that
// "why was this host skipped?" and "why TLS without authentication?" have
// an answer in the plan itself.
//
// # Making a plan
//
// A Planner looks up what it needs (MX records, addresses, TLSA records,
// the MTA-STS policy) through one DNSSEC-aware resolver, and returns a Plan:
//
//	p := &policy.Planner{} // system resolver and roots, in-memory MTA-STS cache
//	plan, err := p.Plan(ctx, "example.org")
//	if err != nil {
//		return err // invalid domain, invalid configuration, ctx ended
//	}
//	fmt.Print(plan) // the plan explains itself
//	if plan.Err != nil {
//		return plan.Err // *policy.Error: null MX, MX lookup failed, every host excluded…
//	}
//	for _, h := range plan.Usable() {
//		// connect to h.Addrs on port 25, require h.Requirement
//	}
//
// A Plan also prints as JSON (encoding/json), with the same content.
//
// # Precedence
//
// For each MX host, the first row that applies decides:
//
//	| situation                                          | TLS                 | certificate                       | Source          |
//	|----------------------------------------------------|---------------------|-----------------------------------|-----------------|
//	| local rule insecure-plaintext                      | never               | -                                 | local           |
//	| local rule encrypt                                 | required            | not checked                       | local           |
//	| local rule verify [names]                          | required            | Web PKI, names or the MX host     | local           |
//	| local rule dane-only, usable TLSA                  | required            | DANE                              | local           |
//	| local rule dane-only, no usable TLSA               | host excluded (dane-required, temporary)                | local           |
//	| address or TLSA lookup failed or bogus             | host excluded (temporary), never "no DANE"              | -               |
//	| usable TLSA records (DNSSEC-validated)             | required            | DANE (TLSA base domain is SNI)    | dane            |
//	|   … and MTA-STS enforce with RequireDANEAndMTASTS  | required            | DANE and Web PKI; host must be listed | dane        |
//	| TLSA RRset with only unusable records, no enforce  | required            | not checked                       | dane            |
//	| MTA-STS enforce, host listed                       | required            | Web PKI for the MX host name      | mta-sts-enforce |
//	| MTA-STS enforce, host not listed                   | host excluded (recheck the policy before failing)       | mta-sts-enforce |
//	| MTA-STS testing                                    | as below; would-be failures reported, not refused       | mta-sts-testing |
//	| no policy (default)                                | required            | not checked (RFC 7672 §1.3)       | default         |
//	| no policy, local rule insecure-opportunistic       | if offered          | not checked                       | local           |
//
// DANE decides for a host that has usable TLSA records: MTA-STS, passing or
// in mode testing, never overrides a failing DANE validation (RFC 8461
// §2). A domain that publishes nothing still gets STARTTLS: its MX hosts
// were found through DNS that nothing authenticates, so their certificates
// prove little and are not checked (RFC 7672 §1.3), but the session is
// encrypted, and a server without STARTTLS is not used. Plaintext happens
// only under a local rule whose level is named insecure-….
//
// # The DNS rules
//
// MX hosts are tried by preference, in random order among equal
// preferences (RFC 5321 §5.1; Planner.Rand fixes the order in tests). A
// domain without MX records is its own implicit MX. A null MX ("MX 0 .",
// RFC 7505) and a domain that does not exist fail permanently without a
// connection; a failed or bogus MX lookup defers delivery (RFC 7672
// §2.1.2). An MX target that is an IP address is refused. An MX RRset that
// is not DNSSEC-validated does not rule out DANE for hosts in signed zones,
// but then only the hosts' own names (never the recipient domain) may be
// matched by a DANE-TA certificate (RFC 7672 §2.2.1, §3.2.2). A CNAME MX
// host has its TLSA records looked up at the target first, then at its own
// name; the name where they are found is the SNI (RFC 7672 §2.2.3, §8.1).
//
// Every lookup goes to Planner.Resolver, the MTA-STS TXT record and the
// policy host's addresses included, so that pointing it at a resolver gives
// consistent answers. When that resolver cannot give DNSSEC answers (no
// trusted validating upstream, see dane.Resolver.CanValidate), the plan
// says that DANE could not be checked (Plan.DANEChecked), instead of
// treating signed domains as unsigned without a word.
//
// # Local rules
//
// Rules sit above every published policy, per domain (or for every domain
// below a parent) and as a default, with levels in the spirit of Postfix's
// smtp_tls_security_level: dane (the default: published policy decides),
// dane-only, verify, encrypt, insecure-opportunistic and insecure-plaintext
// (see Level). ParseRules reads them from a simple text form.
//
// # Following a plan
//
// A host's Requirement maps onto an SMTP client: TLS says whether STARTTLS
// is mandatory (TLSRequired), optional (TLSInsecureOpportunistic) or not
// used (TLSInsecurePlaintext); Auth says how the certificate is checked:
// not at all, against the Web PKI roots (Planner.RootCAs) for WebPKINames
// with ServerName as SNI, or by the TLSA records through the ready
// Requirement.DANE verifier, which also sets SNI to the TLSA base domain.
// A session that does not meet its requirement must not carry the message;
// the client tries the next usable host or defers. Under MTA-STS testing,
// Host.Testing says what enforce would require and Testing.Check tells a
// session that would have failed, to be reported and not refused.
//
// Host.Report is the policy a session is counted under in a TLS report
// (RFC 8460 §4.4): tlsa with the host's records, sts with the policy's
// lines and mx patterns, or no-policy-found. Plan.ReportResults adds the
// failures of the plan itself (an MTA-STS policy that could not be
// fetched, bogus DNSSEC). Host.RequireTLS says whether a message sent with
// REQUIRETLS may go to the host (RFC 8689 §4.2.1); the server must still
// advertise REQUIRETLS after STARTTLS. Before a failure caused by an
// MTA-STS policy in mode enforce becomes permanent, Planner.Recheck looks
// for a new policy (RFC 8461 §5.1).
package policy
