package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Finding statuses, from good to bad.
const (
	statusOK      = "ok"
	statusWarning = "warning"
	statusError   = "error"
)

// finding is one verdict of check: what was looked at, how it is, and one
// line of advice.
type finding struct {
	// Area is "dns", "mta-sts", "tls-rpt" or "host".
	Area string `json:"area"`
	// Subject is what the finding is about: the domain, an MX host, or
	// "host address".
	Subject string `json:"subject"`
	// Status is "ok", "warning" or "error".
	Status string `json:"status"`
	// Message says what was found.
	Message string `json:"message"`
	// Advice says what to do; empty for most "ok" findings.
	Advice string `json:"advice,omitempty"`
}

// checkReport is what check prints with --json. Its shape is stable:
// fields are added, never renamed or removed.
type checkReport struct {
	Domain    string    `json:"domain"`
	CheckedAt time.Time `json:"checked_at"`
	// Verdict is the worst status among the findings.
	Verdict string         `json:"verdict"`
	Counts  map[string]int `json:"counts"`
	DNSSEC  dnssecReport   `json:"dnssec"`
	MX      mxReport       `json:"mx"`
	MTASTS  stsReport      `json:"mta_sts"`
	TLSRPT  tlsrptReport   `json:"tls_rpt"`
	Probes  []*probeReport `json:"probes"`
	// Findings are in the order printed: DNS, MTA-STS, TLS-RPT, then each
	// host and address.
	Findings []finding `json:"findings"`
}

// dnssecReport says where the DNSSEC verdicts came from.
type dnssecReport struct {
	// Source is "in-library" (validated by the command from the trust
	// anchors), "trusted-resolver" (the AD bit of a loopback or
	// --trusted-resolver), or "none" (DNSSEC could not be checked).
	Source string `json:"source"`
	Detail string `json:"detail"`
}

// mxReport is the MX lookup and the hosts.
type mxReport struct {
	Secure   bool         `json:"secure"`
	Null     bool         `json:"null"`
	Implicit bool         `json:"implicit"`
	Error    string       `json:"error,omitempty"`
	Hosts    []hostReport `json:"hosts"`
}

// hostReport is one MX host as the plan sees it.
type hostReport struct {
	Name        string   `json:"name"`
	Preference  uint16   `json:"preference"`
	Addrs       []string `json:"addrs"`
	AddrsSecure bool     `json:"addrs_secure"`
	TLSA        []string `json:"tlsa"`
	TLSAOwner   string   `json:"tlsa_owner,omitempty"`
	// Requirement is what delivery requires, as "policy" prints it;
	// Source is the rule that decided it.
	Requirement string `json:"requirement,omitempty"`
	Source      string `json:"source,omitempty"`
	// Excluded says why delivery would not use the host.
	Excluded string `json:"excluded,omitempty"`
}

// stsReport is the MTA-STS outcome.
type stsReport struct {
	Record        string   `json:"record,omitempty"`
	Mode          string   `json:"mode,omitempty"`
	MaxAgeSeconds int64    `json:"max_age_seconds,omitempty"`
	ID            string   `json:"id,omitempty"`
	MX            []string `json:"mx,omitempty"`
	Source        string   `json:"source,omitempty"`
	Error         string   `json:"error,omitempty"`
	ResultType    string   `json:"result_type,omitempty"`
}

// tlsrptReport is the TLS-RPT record.
type tlsrptReport struct {
	Record string   `json:"record,omitempty"`
	RUA    []string `json:"rua,omitempty"`
	Error  string   `json:"error,omitempty"`
}

// add records a finding.
func (r *checkReport) add(area, subject, status, msg, advice string) {
	r.Findings = append(r.Findings, finding{Area: area, Subject: subject, Status: status, Message: msg, Advice: advice})
}

// conclude counts the findings and sets the verdict.
func (r *checkReport) conclude() {
	r.Counts = map[string]int{statusOK: 0, statusWarning: 0, statusError: 0}
	r.Verdict = statusOK
	for _, f := range r.Findings {
		r.Counts[f.Status]++
	}
	switch {
	case r.Counts[statusError] > 0:
		r.Verdict = statusError
	case r.Counts[statusWarning] > 0:
		r.Verdict = statusWarning
	}
}

// print writes the report for people: findings grouped by area and
// subject, advice under each finding that has some, then the verdict.
func (r *checkReport) print(w io.Writer) {
	fmt.Fprintf(w, "smtpsecure check %s\n", r.Domain)
	fmt.Fprintf(w, "DNSSEC: %s\n", r.DNSSEC.Detail)
	var last string
	for _, f := range r.Findings {
		head := areaTitle(f.Area)
		if f.Area == "host" {
			head = f.Subject
		}
		if head != last {
			fmt.Fprintf(w, "\n%s\n", head)
			last = head
		}
		fmt.Fprintf(w, "  %-8s %s\n", f.Status, f.Message)
		if f.Advice != "" {
			fmt.Fprintf(w, "           -> %s\n", f.Advice)
		}
	}
	fmt.Fprintf(w, "\nVerdict: %s (%d ok, %s, %s)\n", r.Verdict,
		r.Counts[statusOK], plural(r.Counts[statusWarning], "warning"), plural(r.Counts[statusError], "error"))
}

func areaTitle(area string) string {
	switch area {
	case "dns":
		return "DNS"
	case "mta-sts":
		return "MTA-STS"
	case "tls-rpt":
		return "TLS-RPT"
	}
	return strings.ToUpper(area)
}

// plural returns "1 record" or "2 records".
func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
