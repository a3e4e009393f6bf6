package policy

import (
	"net/netip"
	"strconv"
	"time"

	mtasts "github.com/smtpsecure/smtpsecure/mta_sts"
	"github.com/smtpsecure/smtpsecure/tlsrpt"
)

// Port is the TCP port of MX delivery.
const Port = 25

// Source says which rule decided a host's requirement.
type Source int

const (
	// SourceDefault: no policy applies; the library's default (STARTTLS
	// required, certificate not checked) decided.
	SourceDefault Source = iota
	// SourceLocal: a local rule (Rules) decided.
	SourceLocal
	// SourceDANE: the host's DNSSEC-validated TLSA records decided (RFC
	// 7672).
	SourceDANE
	// SourceMTASTSEnforce: the domain's MTA-STS policy in mode enforce
	// decided (RFC 8461).
	SourceMTASTSEnforce
	// SourceMTASTSTesting: the domain's MTA-STS policy is in mode testing:
	// delivery goes on as without a policy, and failures are reported.
	SourceMTASTSTesting
)

var sourceNames = [...]string{"default", "local", "dane", "mta-sts-enforce", "mta-sts-testing"}

// String returns "default", "local", "dane", "mta-sts-enforce" or
// "mta-sts-testing".
func (s Source) String() string {
	if s >= 0 && int(s) < len(sourceNames) {
		return sourceNames[s]
	}
	return "Source(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText returns String, for JSON.
func (s Source) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// ExclusionCode names why a host may not be used.
type ExclusionCode string

// Why a host is excluded.
const (
	// ExcludedIPLiteral: the MX target is an IP address, not a host name
	// (RFC 5321 §5.1 requires a domain name). Permanent.
	ExcludedIPLiteral ExclusionCode = "ip-literal"
	// ExcludedInvalidName: the MX target is not a valid host name.
	// Permanent.
	ExcludedInvalidName ExclusionCode = "invalid-name"
	// ExcludedNoAddress: the host has no A or AAAA records. Permanent.
	ExcludedNoAddress ExclusionCode = "no-address"
	// ExcludedAddressBogus: the host's address records failed DNSSEC
	// validation. Temporary.
	ExcludedAddressBogus ExclusionCode = "address-bogus"
	// ExcludedAddressLookup: the host's address lookup failed. Temporary.
	ExcludedAddressLookup ExclusionCode = "address-lookup-failed"
	// ExcludedTLSABogus: the host's TLSA records failed DNSSEC validation;
	// it is unusable, never "no DANE" (RFC 7672 §2.2). Temporary.
	ExcludedTLSABogus ExclusionCode = "tlsa-bogus"
	// ExcludedTLSALookup: the host's TLSA lookup failed; it is unusable,
	// never "no DANE" (RFC 7672 §2.1.2). Temporary.
	ExcludedTLSALookup ExclusionCode = "tlsa-lookup-failed"
	// ExcludedNotInPolicy: the MTA-STS policy in mode enforce does not list
	// the host (RFC 8461 §4.1, §5). See Error.Recheck.
	ExcludedNotInPolicy ExclusionCode = "not-in-mta-sts-policy"
	// ExcludedDANERequired: a local rule requires DANE and the host has no
	// usable TLSA records (RFC 7672 §6). Temporary.
	ExcludedDANERequired ExclusionCode = "no-usable-tlsa"
	// ExcludedOverLimit: the host comes after the first MaxHosts MX hosts
	// and was not looked up.
	ExcludedOverLimit ExclusionCode = "over-mx-limit"
)

// Exclusion says why a host of the plan may not be used.
type Exclusion struct {
	// Code names the reason.
	Code ExclusionCode `json:"code"`
	// Temporary is set when the reason may go away (a DNS failure).
	Temporary bool `json:"temporary"`
	// ResultType is the RFC 8460 result type to report for the exclusion
	// (dnssec-invalid, dane-required), or "" when there is none to report.
	ResultType string `json:"result_type,omitempty"`
	// Detail says what happened, for people.
	Detail string `json:"detail"`
	// Err is the underlying error, if any (a *dane.LookupError for DNS
	// failures).
	Err error `json:"-"`
}

// Host is one MX host of a plan, with what a session to it requires, or
// why it may not be used.
type Host struct {
	// Name is the MX host name in A-labels (the domain itself for the
	// implicit MX).
	Name string `json:"name"`
	// Preference is the MX preference (0 for the implicit MX).
	Preference uint16 `json:"preference"`
	// Implicit is set for the implicit MX of a domain without MX records
	// (RFC 5321 §5.1).
	Implicit bool `json:"implicit,omitempty"`
	// Canonical is Name after CNAME expansion of its address records, if
	// it is an alias.
	Canonical string `json:"canonical,omitempty"`
	// Addrs are the addresses to connect to on Port, IPv4 first.
	Addrs []netip.Addr `json:"addrs,omitempty"`
	// AddrsSecure reports whether the address records (and any CNAME to
	// them) were validated by DNSSEC.
	AddrsSecure bool `json:"addrs_secure"`
	// TLSA are the TLSA records found for the host, usable or not, in
	// presentation form; TLSAOwner is where they were found.
	TLSA      []string `json:"tlsa,omitempty"`
	TLSAOwner string   `json:"tlsa_owner,omitempty"`

	// Excluded is non-nil when the host may not be used; the fields below
	// are then not set, except Why.
	Excluded *Exclusion `json:"excluded,omitempty"`

	// Requirement is what a session to the host must achieve.
	Requirement Requirement `json:"requirement"`
	// Source is the rule that decided Requirement.
	Source Source `json:"source"`
	// Testing is set when an MTA-STS policy in mode testing applies to the
	// host: what enforce would require. Failures against it are reported
	// under Report, and delivery goes on.
	Testing *Testing `json:"mta_sts_testing,omitempty"`
	// Report is the policy the host's sessions are reported under in TLS
	// reports (RFC 8460 §4.4); nil when no report is due (a local rule
	// that does not follow the domain's policy decided).
	Report *tlsrpt.Policy `json:"report,omitempty"`
	// RequireTLS reports whether a message sent with REQUIRETLS may go to
	// the host (RFC 8689 §4.2.1): the host was found through DNSSEC or
	// matches an MTA-STS policy in mode enforce, and its certificate is
	// authenticated by DANE or by MTA-STS. The server must still advertise
	// REQUIRETLS after STARTTLS.
	RequireTLS bool `json:"requiretls"`

	// Why explains, in order, the rules that made the decision.
	Why []string `json:"why"`
}

// Usable reports whether the host may be tried.
func (h *Host) Usable() bool { return h.Excluded == nil }

// MXInfo describes the MX lookup of a plan.
type MXInfo struct {
	// Secure reports whether the MX RRset (or its denial, for the implicit
	// MX) was validated by DNSSEC.
	Secure bool `json:"secure"`
	// Implicit is set when the domain has no MX records and its own
	// addresses are used (RFC 5321 §5.1).
	Implicit bool `json:"implicit,omitempty"`
	// Null is set for a null MX (RFC 7505).
	Null bool `json:"null,omitempty"`
	// Canonical is the domain after CNAME expansion, if it is an alias.
	Canonical string `json:"canonical,omitempty"`
	// NextHopNames are the names a DANE-TA certificate may also match
	// because the MX RRset is secure: the domain and its CNAME expansion
	// (RFC 7672 §3.2.2). Empty when the MX RRset is insecure.
	NextHopNames []string `json:"next_hop_names,omitempty"`
}

// STSInfo describes the MTA-STS outcome of a plan.
type STSInfo struct {
	// Mode is "enforce", "testing" or "none", or "" when no policy
	// applies.
	Mode string `json:"mode,omitempty"`
	// ID is the TXT record id the policy was fetched under.
	ID string `json:"id,omitempty"`
	// Source is where the policy came from: "fetched", "cached",
	// "cached-after-failure" or "none".
	Source string `json:"source"`
	// Expires is when the policy stops being valid.
	Expires time.Time `json:"expires,omitzero"`
	// MX are the policy's mx patterns.
	MX []string `json:"mx,omitempty"`
	// Error says what failed during discovery or fetch, if anything.
	Error string `json:"error,omitempty"`
	// ResultType is the RFC 8460 result type of that failure
	// (sts-policy-fetch-error, sts-policy-invalid, sts-webpki-invalid), or
	// "" when there is none to report.
	ResultType string `json:"result_type,omitempty"`
}

// Plan is how mail for one recipient domain is to be delivered: the MX
// hosts in the order to try them and, for each, what a session requires
// and why, or why the host may not be used.
type Plan struct {
	// Domain is the recipient domain in A-labels.
	Domain string `json:"domain"`
	// Input is the domain as given, when it differs from Domain (a U-label
	// name).
	Input string `json:"input,omitempty"`
	// Rule is the local rule that applies to the domain.
	Rule Rule `json:"local_rule"`
	// DANEChecked is false when the resolver cannot give DNSSEC answers (no
	// trusted upstream): DANE could not be checked, and hosts whose domains
	// publish TLSA records are treated as having none.
	DANEChecked bool `json:"dane_checked"`
	// MX describes the MX lookup.
	MX MXInfo `json:"mx"`
	// MTASTS is the MTA-STS outcome, nil when the rule does not consult it.
	MTASTS *STSInfo `json:"mta_sts,omitempty"`
	// Hosts are the MX hosts in the order to try them: by preference,
	// shuffled among equal preferences (RFC 5321 §5.1), excluded hosts
	// included.
	Hosts []*Host `json:"hosts"`
	// Err is set when mail cannot be delivered at all (a null MX, an MX
	// lookup failure, every host excluded): an *Error.
	Err error `json:"-"`
	// Why explains the decisions made for the domain as a whole.
	Why []string `json:"why"`
	// Created is when the plan was made.
	Created time.Time `json:"created"`

	sts *mtasts.Result // for Recheck
}

// Usable returns the hosts that may be tried, in order.
func (p *Plan) Usable() []*Host {
	var out []*Host
	for _, h := range p.Hosts {
		if h.Usable() {
			out = append(out, h)
		}
	}
	return out
}

// Host returns the host of the plan named name (A-labels), or nil.
func (p *Plan) Host(name string) *Host {
	for _, h := range p.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}
