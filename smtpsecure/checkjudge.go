package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	mtasts "github.com/smtpsecure/smtpsecure/mta_sts"
	"github.com/smtpsecure/smtpsecure/policy"
	"github.com/smtpsecure/smtpsecure/tlsrpt"
)

// minSTSMaxAge is the shortest max_age check accepts without a warning:
// RFC 8461 §3.2 recommends weeks, so that a cached policy outlasts an
// attacker's window.
const minSTSMaxAge = 7 * 24 * time.Hour

// expirySoon is how close to its expiry a certificate gets a warning.
const expirySoon = 14 * 24 * time.Hour

// judgeDNS adds the findings about the MX lookup and DNSSEC.
func judgeDNS(r *checkReport, plan *policy.Plan) {
	d := plan.Domain
	if r.DNSSEC.Source == "none" {
		r.add("dns", d, statusWarning, "DNSSEC could not be checked: "+r.DNSSEC.Detail,
			"run the check with --dnssec-validate, or on a host whose resolver validates DNSSEC")
	}
	switch {
	case errors.Is(plan.Err, policy.ErrNoSuchDomain):
		r.add("dns", d, statusError, "the domain does not exist (NXDOMAIN)", "check the spelling and the domain's delegation")
		return
	case errors.Is(plan.Err, policy.ErrNullMX):
		r.add("dns", d, statusOK, "null MX (RFC 7505): the domain accepts no mail", "")
		return
	case errors.Is(plan.Err, policy.ErrMXLookup):
		r.add("dns", d, statusError, "the MX lookup failed: "+plan.Err.Error(),
			"fix the domain's name servers or DNSSEC signatures: senders defer all mail until the MX lookup works")
		return
	case errors.Is(plan.Err, policy.ErrNoMailHost):
		r.add("dns", d, statusError, "no MX records and no address: the domain cannot receive mail", "publish MX records naming the mail servers")
		return
	}
	if plan.MX.Implicit {
		r.add("dns", d, statusWarning, "no MX records: senders use the domain's own address (implicit MX)", "publish an MX record naming the mail server")
	} else {
		var mx []string
		for _, h := range plan.Hosts {
			mx = append(mx, fmt.Sprintf("%d %s", h.Preference, h.Name))
		}
		r.add("dns", d, statusOK, "MX: "+strings.Join(mx, ", "), "")
	}
	if r.DNSSEC.Source == "none" {
		return
	}
	if plan.MX.Secure {
		r.add("dns", d, statusOK, "the MX records are DNSSEC-signed", "")
	} else {
		r.add("dns", d, statusWarning, "the MX records are not DNSSEC-signed",
			"sign the zone with DNSSEC, so that senders can trust the MX records and use DANE")
	}
	if errors.Is(plan.Err, policy.ErrNoUsableHost) {
		r.add("dns", d, statusError, "no MX host may be used: "+plan.Err.Error(), "see the findings for each host below")
	}
}

// judgeMTASTS adds the findings about the MTA-STS policy.
func judgeMTASTS(r *checkReport, plan *policy.Plan) {
	s := plan.MTASTS
	d := plan.Domain
	if s == nil || plan.MX.Null || errors.Is(plan.Err, policy.ErrNoSuchDomain) {
		return
	}
	if s.ResultType != "" {
		advice := map[string]string{
			tlsrpt.ResultSTSPolicyFetchError: "publish one valid _mta-sts TXT record and serve the policy at https://mta-sts." + d + "/.well-known/mta-sts.txt (status 200, text/plain)",
			tlsrpt.ResultSTSPolicyInvalid:    "fix the policy: version, mode, mx and max_age lines as RFC 8461 §3.2 says",
			tlsrpt.ResultSTSWebPKIInvalid:    "give mta-sts." + d + " a certificate valid under the Web PKI",
		}[s.ResultType]
		msg := fmt.Sprintf("the policy could not be had: %s (%s)", s.Error, s.ResultType)
		if s.Mode != "" {
			msg += fmt.Sprintf("; a cached policy in mode %s still applies", s.Mode)
		}
		r.add("mta-sts", d, statusError, msg, advice)
	}
	switch mtasts.Mode(s.Mode) {
	case "":
		if s.ResultType != "" {
			return
		}
		if allDANE(plan) {
			r.add("mta-sts", d, statusOK, "no MTA-STS policy; DANE authenticates every MX host", "")
			return
		}
		r.add("mta-sts", d, statusWarning, "no MTA-STS policy: senders without DANE do not authenticate the MX hosts",
			"publish an MTA-STS policy in mode enforce (a _mta-sts."+d+" TXT record and https://mta-sts."+d+"/.well-known/mta-sts.txt)")
		return
	case mtasts.ModeNone:
		r.add("mta-sts", d, statusWarning, "the MTA-STS policy is in mode none (withdrawn)", "publish mode enforce, or remove the TXT record")
		return
	case mtasts.ModeTesting:
		r.add("mta-sts", d, statusWarning, "the MTA-STS policy is in mode testing: failures are reported, not prevented",
			"switch to mode enforce once TLS reports show no failures")
	case mtasts.ModeEnforce:
		r.add("mta-sts", d, statusOK, fmt.Sprintf("policy in mode enforce (id %s, %s), mx: %s", s.ID, s.Source, strings.Join(s.MX, ", ")), "")
	}
	if age := time.Duration(r.MTASTS.MaxAgeSeconds) * time.Second; age > 0 && age < minSTSMaxAge {
		r.add("mta-sts", d, statusWarning, fmt.Sprintf("max_age is %d seconds (%s)", r.MTASTS.MaxAgeSeconds, days(age)),
			"raise max_age to a week or more (RFC 8461 §3.2 recommends weeks), so that cached policies outlast an attack")
	}
	pol := &mtasts.Policy{Mode: mtasts.Mode(s.Mode), MX: s.MX}
	status := statusError
	if s.Mode == string(mtasts.ModeTesting) {
		status = statusWarning
	}
	for _, h := range plan.Hosts {
		if !pol.Match(h.Name) {
			r.add("mta-sts", d, status, fmt.Sprintf("the MX host %s is not listed in the policy", h.Name), "add \"mx: "+h.Name+"\" to the policy, or remove the MX record")
		}
	}
}

// allDANE reports whether DANE decides for every usable host.
func allDANE(plan *policy.Plan) bool {
	n := 0
	for _, h := range plan.Usable() {
		if h.Source != policy.SourceDANE || !h.Requirement.Auth.Authenticated() {
			return false
		}
		n++
	}
	return n > 0
}

// judgeTLSRPT adds the finding about the TLS-RPT record.
func judgeTLSRPT(r *checkReport) {
	d := r.Domain
	if r.MX.Null {
		return
	}
	switch {
	case r.TLSRPT.Error != "":
		r.add("tls-rpt", d, statusError, "the TLS-RPT record cannot be used: "+r.TLSRPT.Error,
			"publish one record at _smtp._tls."+d+": v=TLSRPTv1; rua=mailto:ADDRESS")
	case r.TLSRPT.Record != "":
		r.add("tls-rpt", d, statusOK, "reports go to "+strings.Join(r.TLSRPT.RUA, ", "), "")
	default:
		r.add("tls-rpt", d, statusWarning, "no TLS-RPT record: you will not hear about senders' TLS failures",
			"publish _smtp._tls."+d+" TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@"+d+"\"")
	}
}

// exclusionAdvice says what to do about a host the plan excludes.
var exclusionAdvice = map[policy.ExclusionCode]string{
	policy.ExcludedIPLiteral:     "MX records must name hosts, not addresses (RFC 5321 §5.1)",
	policy.ExcludedInvalidName:   "fix the MX record: it must name a valid host",
	policy.ExcludedNoAddress:     "give the host A or AAAA records, or remove its MX record",
	policy.ExcludedAddressBogus:  "fix the DNSSEC signatures of the host's addresses: validating senders will not use the host",
	policy.ExcludedAddressLookup: "fix the name servers of the host's zone",
	policy.ExcludedTLSABogus:     "fix the DNSSEC signatures of the host's TLSA records: validating senders will not use the host",
	policy.ExcludedTLSALookup:    "fix the name servers of the host's zone: its TLSA lookup must answer",
	policy.ExcludedNotInPolicy:   "add the host to the MTA-STS policy's mx lines",
	policy.ExcludedDANERequired:  "publish TLSA records for the host",
	policy.ExcludedOverLimit:     "use at most 10 MX hosts: senders look up only the first ones",
}

// judgeHosts adds the findings for each MX host and its probes.
func judgeHosts(r *checkReport, plan *policy.Plan, probes []*probeReport, now time.Time) {
	for _, h := range plan.Hosts {
		subject := fmt.Sprintf("%s (MX %d)", h.Name, h.Preference)
		if h.Implicit {
			subject = h.Name + " (implicit MX)"
		}
		if h.Excluded != nil {
			status := statusError
			if h.Excluded.Code == policy.ExcludedOverLimit {
				status = statusWarning
			}
			r.add("host", subject, status, "not used for delivery: "+h.Excluded.Detail, exclusionAdvice[h.Excluded.Code])
			if h.Excluded.Code != policy.ExcludedNotInPolicy {
				continue
			}
		} else {
			judgeDANE(r, plan, h, subject)
		}
		for _, pb := range probes {
			if pb.Host == h.Name {
				judgeProbe(r, h, pb, subject, now)
			}
		}
	}
}

// judgeDANE adds the finding about a host's TLSA records.
func judgeDANE(r *checkReport, plan *policy.Plan, h *policy.Host, subject string) {
	if !plan.DANEChecked {
		return
	}
	covered := h.Source == policy.SourceMTASTSEnforce
	status := statusWarning
	if covered {
		status = statusOK
	}
	switch {
	case len(h.Requirement.TLSA) > 0:
		r.add("host", subject, statusOK, fmt.Sprintf("DANE: %s at %s: %s", plural(len(h.Requirement.TLSA), "usable TLSA record"), h.TLSAOwner, strings.Join(h.Requirement.TLSA, "; ")), "")
	case len(h.TLSA) > 0:
		r.add("host", subject, statusWarning, "the TLSA records at "+h.TLSAOwner+" are all unusable for SMTP: TLS is required, the certificate is not authenticated",
			"publish DANE-EE(3) or DANE-TA(2) records, such as 3 1 1 of the server's key (RFC 7672 §3.1.3)")
	case !h.AddrsSecure:
		msg := "no DANE: the host's addresses are not DNSSEC-signed"
		if covered {
			msg += " (MTA-STS enforce authenticates it)"
		}
		r.add("host", subject, status, msg, adviceIf(!covered, "host the MX in a DNSSEC-signed zone and publish a TLSA 3 1 1 record of its key"))
	default:
		msg := "no DANE: no TLSA records"
		if covered {
			msg += " (MTA-STS enforce authenticates it)"
		}
		r.add("host", subject, status, msg, adviceIf(!covered, "publish a TLSA 3 1 1 record of the server's key at _25._tcp."+h.Name))
	}
}

func adviceIf(cond bool, advice string) string {
	if cond {
		return advice
	}
	return ""
}

// judgeProbe adds the findings of one probe.
func judgeProbe(r *checkReport, h *policy.Host, pb *probeReport, hostSubject string, now time.Time) {
	subject := hostSubject
	add := func(status, msg, advice string) { r.add("host", subject, status, pb.Address+": "+msg, advice) }
	if !pb.Connected {
		add(statusError, "cannot connect: "+pb.Error, "make the server listen on port 25 and let senders through the firewall")
		return
	}
	if !pb.STARTTLS {
		add(statusError, "no TLS: "+pb.Error, "offer STARTTLS with a certificate: senders that require TLS cannot deliver here")
		return
	}
	add(statusOK, fmt.Sprintf("STARTTLS: %s, %s (SNI %s)", pb.TLSVersion, pb.Cipher, pb.ServerName), "")
	dane := pb.TLSA != nil
	daneEE := dane && pb.TLSA.Matched && strings.HasPrefix(pb.TLSA.Record, "3 ")
	if len(pb.Certificates) > 0 {
		leaf := pb.Certificates[0]
		desc := fmt.Sprintf("certificate %s (names %s), issued by %s, expires %s", shortName(leaf), strings.Join(leaf.Names, ", "), issuerName(leaf), leaf.NotAfter.Format("2006-01-02"))
		left := leaf.NotAfter.Sub(now)
		switch {
		case left < 0 && daneEE:
			add(statusWarning, desc+": expired; DANE-EE ignores dates, other senders do not", "renew the certificate (and its TLSA record)")
		case left < 0:
			add(statusError, desc+": expired", "renew the certificate")
		case left < expirySoon:
			add(statusWarning, fmt.Sprintf("%s (%d days left)", desc, leaf.DaysLeft), "renew the certificate soon")
		default:
			add(statusOK, fmt.Sprintf("%s (%d days left)", desc, leaf.DaysLeft), "")
		}
	}
	switch {
	case pb.WebPKIValid:
		add(statusOK, "valid under the Web PKI for "+h.Name, "")
	case dane && h.Source == policy.SourceDANE:
		add(statusOK, "not valid under the Web PKI for "+h.Name+" ("+pb.WebPKIResult+"); not needed: DANE authenticates this host", "")
	case h.Source == policy.SourceMTASTSEnforce || (h.Excluded != nil && h.Excluded.Code == policy.ExcludedNotInPolicy):
		add(statusError, "not valid under the Web PKI for "+h.Name+": "+pb.WebPKIError, "use a certificate from a public CA for "+h.Name+": MTA-STS senders refuse this one")
	default:
		add(statusWarning, "not valid under the Web PKI for "+h.Name+" ("+pb.WebPKIResult+"): senders that verify (MTA-STS, DANE-less verify rules) refuse it",
			"use a certificate from a public CA for "+h.Name)
	}
	if dane {
		if pb.TLSA.Matched {
			add(statusOK, fmt.Sprintf("TLSA %s matches the certificate chain (depth %d)", pb.TLSA.Record, *pb.TLSA.Depth), "")
		} else {
			add(statusError, pb.TLSA.Summary+" ("+pb.TLSA.Result+")",
				"publish a TLSA record for the current certificate or key, keeping the old one during a rollover: DANE senders will not deliver here")
		}
	}
	if pb.MTASTS != nil {
		switch {
		case pb.MTASTS.Accepted:
			add(statusOK, "passes the MTA-STS policy (listed, certificate valid for the name)", "")
		case r.MTASTS.Mode == string(mtasts.ModeTesting):
			add(statusWarning, "would fail the MTA-STS policy in mode enforce: "+pb.MTASTS.Error, "fix this before switching the policy to enforce")
		default:
			add(statusError, "fails the MTA-STS policy: "+pb.MTASTS.Error, "list the host in the policy and give it a Web PKI certificate for its name")
		}
	}
	if pb.RequireTLS {
		add(statusOK, "offers REQUIRETLS (RFC 8689)", "")
	}
}

func issuerName(c certReport) string {
	return shortName(certReport{Subject: c.Issuer})
}

// days describes a duration in days.
func days(d time.Duration) string {
	n := int(d / (24 * time.Hour))
	if n == 1 {
		return "1 day"
	}
	if n == 0 {
		return "less than a day"
	}
	return fmt.Sprintf("%d days", n)
}
