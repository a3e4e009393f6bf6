package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/smtpsecure/smtpsecure"
	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/policy"
)

// netFlags are the flags deliver, check and policy share: where DNS
// answers come from and how they are trusted, the roots of the Web PKI,
// the MTA-STS cache and local policy rules.
type netFlags struct {
	resolvers   listFlag
	trusted     listFlag
	validate    bool
	anchorsFile string
	caFile      string
	stsCache    string
	rulesFile   string
	daneAndSTS  bool
	dnsTimeout  time.Duration
}

// listFlag is a flag that may be repeated or given as a comma-separated
// list.
type listFlag []string

// String returns the values joined by commas, for flag.Value.
func (l *listFlag) String() string { return strings.Join(*l, ",") }

// Set adds a value, for flag.Value.
func (l *listFlag) Set(s string) error {
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

func (n *netFlags) register(fs *flag.FlagSet, rules bool) {
	fs.Var(&n.resolvers, "resolver", "DNS resolver `ADDR` (ip or ip:port; repeatable); default: the nameservers of /etc/resolv.conf")
	fs.Var(&n.trusted, "trusted-resolver", "believe the DNSSEC verdict (AD bit) of this non-loopback resolver `ADDR` (repeatable); loopback resolvers are always believed")
	fs.BoolVar(&n.validate, "dnssec-validate", false, "validate DNSSEC in the command itself, from the root trust anchors, through any resolver")
	fs.StringVar(&n.anchorsFile, "trust-anchor", "", "trust anchors for --dnssec-validate: a `FILE` of DS or DNSKEY records (zone file lines) or IANA's root-anchors.xml; default: the root's built-in anchors")
	fs.StringVar(&n.caFile, "ca-file", "", "PEM `FILE` of the roots that MTA-STS policy hosts and MX certificates must chain to; default: the system roots")
	fs.StringVar(&n.stsCache, "mta-sts-cache", "", "`DIR` of the MTA-STS policy cache (kept across runs); default: none")
	fs.DurationVar(&n.dnsTimeout, "dns-timeout", 0, "bound on one DNS query to one resolver (default 3s)")
	if rules {
		fs.StringVar(&n.rulesFile, "rules", "", "local policy rules `FILE` (\"default dane\", \"example.com dane-only\", …)")
		fs.BoolVar(&n.daneAndSTS, "require-dane-and-mta-sts", false, "a host with DANE and an MTA-STS enforce policy must satisfy both")
	}
}

// resolver returns the DNSSEC-aware resolver the flags describe.
func (n *netFlags) resolver(now time.Time) (*dane.Resolver, error) {
	r := &dane.Resolver{Timeout: n.dnsTimeout}
	for _, s := range n.resolvers {
		if _, _, err := net.SplitHostPort(s); err != nil {
			if net.ParseIP(strings.Trim(s, "[]")) == nil {
				return nil, usageError("--resolver %q: give an IP address, or ip:port", s)
			}
		}
		r.Servers = append(r.Servers, s)
	}
	r.TrustedServers = n.trusted
	if n.anchorsFile != "" && !n.validate {
		return nil, usageError("--trust-anchor needs --dnssec-validate")
	}
	if n.validate {
		v := &dane.Validator{}
		if n.anchorsFile != "" {
			anchors, err := readTrustAnchors(n.anchorsFile, now)
			if err != nil {
				return nil, err
			}
			v.TrustAnchors = anchors
		}
		r.Validator = v
	}
	return r, nil
}

// readTrustAnchors reads DS or DNSKEY records in zone file form, or an RFC
// 7958 XML file.
func readTrustAnchors(name string, now time.Time) ([]dns.RR, error) {
	data, err := readConfigFile(name)
	if err != nil {
		return nil, configError("reading --trust-anchor: %v", err)
	}
	if bytes.Contains(data, []byte("<TrustAnchor")) {
		rrs, err := dane.ParseTrustAnchorsXML(bytes.NewReader(data), now)
		if err != nil {
			return nil, configError("--trust-anchor %s: %v", name, err)
		}
		return rrs, nil
	}
	zp := dns.NewZoneParser(bytes.NewReader(data), ".", name)
	var out []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		switch rr.(type) {
		case *dns.DS, *dns.DNSKEY:
			out = append(out, rr)
		default:
			return nil, configError("--trust-anchor %s: a %s record is not a trust anchor: give DS or DNSKEY records", name, dns.TypeToString[rr.Header().Rrtype])
		}
	}
	if err := zp.Err(); err != nil {
		return nil, configError("--trust-anchor %s: %v", name, err)
	}
	if len(out) == 0 {
		return nil, configError("--trust-anchor %s holds no DS or DNSKEY record", name)
	}
	return out, nil
}

// roots returns the roots of --ca-file, or nil for the system roots.
func (n *netFlags) roots() (*x509.CertPool, error) {
	if n.caFile == "" {
		return nil, nil
	}
	data, err := readConfigFile(n.caFile)
	if err != nil {
		return nil, configError("reading --ca-file: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, configError("--ca-file %s holds no PEM certificate", n.caFile)
	}
	return pool, nil
}

// rules reads --rules.
func (n *netFlags) rules() (*policy.Rules, error) {
	if n.rulesFile == "" {
		return nil, nil
	}
	f, err := os.Open(n.rulesFile)
	if err != nil {
		return nil, configError("reading --rules: %v", err)
	}
	defer f.Close()
	r, err := policy.ParseRules(io.LimitReader(f, maxConfigFile))
	if err != nil {
		return nil, configError("--rules %s: %v", n.rulesFile, err)
	}
	return r, nil
}

// planner returns the policy.Planner the flags describe, dialling with
// dial.
func (n *netFlags) planner(now time.Time, dial func(context.Context, string, string) (net.Conn, error)) (*policy.Planner, error) {
	w, err := n.world(now)
	if err != nil {
		return nil, err
	}
	return &policy.Planner{
		Resolver:             w.resolver,
		RootCAs:              w.roots,
		DialContext:          dial,
		MTASTSCacheDir:       n.stsCache,
		Rules:                w.rules,
		RequireDANEAndMTASTS: n.daneAndSTS,
	}, nil
}

// deliverer returns the smtpsecure.Deliverer the flags describe, dialling
// with dial: the same resolver, roots, MTA-STS cache and rules as planner,
// so that deliver follows the plan policy shows.
func (n *netFlags) deliverer(now time.Time, dial func(context.Context, string, string) (net.Conn, error)) (*smtpsecure.Deliverer, error) {
	w, err := n.world(now)
	if err != nil {
		return nil, err
	}
	return &smtpsecure.Deliverer{
		Resolver:             w.resolver,
		RootCAs:              w.roots,
		DialContext:          dial,
		MTASTSCacheDir:       n.stsCache,
		Rules:                w.rules,
		RequireDANEAndMTASTS: n.daneAndSTS,
	}, nil
}

// netWorld is what the flags load: the resolver, the roots and the rules.
type netWorld struct {
	resolver *dane.Resolver
	roots    *x509.CertPool
	rules    *policy.Rules
}

// world loads the resolver, the roots and the rules, and makes the MTA-STS
// cache directory.
func (n *netFlags) world(now time.Time) (*netWorld, error) {
	r, err := n.resolver(now)
	if err != nil {
		return nil, err
	}
	roots, err := n.roots()
	if err != nil {
		return nil, err
	}
	rules, err := n.rules()
	if err != nil {
		return nil, err
	}
	if n.stsCache != "" {
		if err := os.MkdirAll(n.stsCache, 0o700); err != nil {
			return nil, configError("--mta-sts-cache: %v", err)
		}
	}
	return &netWorld{resolver: r, roots: roots, rules: rules}, nil
}

// dnssecSource says where the DNSSEC verdicts of a resolver come from, for
// reports (issue: validated in-library, or a trusted resolver's AD bit).
func dnssecSource(r *dane.Resolver) (kind, detail string) {
	switch {
	case r.Validator != nil:
		return "in-library", "validated by smtpsecure itself, from the trust anchors, through the resolvers " + describeServers(r)
	case r.CanValidate():
		return "trusted-resolver", "taken from the AD bit of the trusted validating resolver " + describeServers(r)
	}
	return "none", "not checked: no trusted validating resolver among " + describeServers(r)
}

func describeServers(r *dane.Resolver) string {
	if len(r.Servers) > 0 {
		return strings.Join(r.Servers, ", ")
	}
	f := r.ResolvConf
	if f == "" {
		f = dane.DefaultResolvConf
	}
	return fmt.Sprintf("of %s", f)
}
