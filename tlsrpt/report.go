package tlsrpt

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/address"
)

// Submitter is the organization that sends reports, and what reports and
// their messages say about it.
type Submitter struct {
	// OrganizationName is the report's organization-name. Required.
	OrganizationName string
	// Domain is the submitter's domain: it is the TLS-Report-Submitter
	// header, the first part of the report's file name and the right-hand
	// side of the Message-ID and of the Report-ID in the subject. It
	// should be the domain that DKIM-signs the mailed reports (RFC 8460
	// §5.3). Required; U-labels are converted to A-labels.
	Domain string
	// ContactInfo is the report's contact-info, an address where the
	// receiving domain can reach the sender (RFC 8460 §4.4). Default
	// postmaster@Domain.
	ContactInfo string
	// From is the address reports are mailed from, in the From header and
	// as the envelope sender. Default postmaster@Domain.
	From string
}

// check validates s and returns it with the defaults filled in and the
// domain in A-labels.
func (s *Submitter) check() (Submitter, error) {
	if s == nil {
		return Submitter{}, errors.New("tlsrpt: no Submitter configured")
	}
	c := *s
	if c.OrganizationName == "" {
		return Submitter{}, errors.New("tlsrpt: Submitter.OrganizationName is empty; set it to the name of the organization sending the reports")
	}
	d, err := canonicalDomain(c.Domain)
	if err != nil {
		return Submitter{}, fmt.Errorf("tlsrpt: Submitter.Domain %q: %w", clip(c.Domain), err)
	}
	c.Domain = d
	if c.ContactInfo == "" {
		c.ContactInfo = "postmaster@" + d
	}
	if c.From == "" {
		c.From = "postmaster@" + d
	}
	if _, err := address.Parse(c.From); err != nil {
		return Submitter{}, fmt.Errorf("tlsrpt: Submitter.From: %w", err)
	}
	return c, nil
}

// NewReportID returns a new random report ID: 16 lower-case hexadecimal
// digits, usable as the unique-id of a report's file name.
func NewReportID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Build returns the report of agg: the UTC day agg.Day, its counts per
// policy, and reportID, which must be 1 to 64 letters and digits (a new one
// from NewReportID if empty). Policies and failure details are sorted so
// that the same counts always give the same report.
func (s *Submitter) Build(agg *Aggregate, reportID string) (*Report, error) {
	sub, err := s.check()
	if err != nil {
		return nil, err
	}
	if agg == nil || agg.Day.IsZero() {
		return nil, errors.New("tlsrpt: Build: no aggregate, or one without a day")
	}
	if reportID == "" {
		reportID = NewReportID()
	}
	if !validReportID(reportID) {
		return nil, fmt.Errorf("tlsrpt: Build: report ID %q is not 1 to %d letters and digits", clip(reportID), maxReportIDLen)
	}
	if len(agg.Policies) == 0 {
		return nil, fmt.Errorf("tlsrpt: Build: nothing recorded for %s on %s", agg.Domain, agg.Day)
	}
	r := &Report{
		OrganizationName: sub.OrganizationName,
		DateRange:        DateRange{Start: agg.Day.Start(), End: agg.Day.End()},
		ContactInfo:      sub.ContactInfo,
		ReportID:         reportID,
		Policies:         clonePolicyResults(agg.Policies),
	}
	for i := range r.Policies {
		slices.SortFunc(r.Policies[i].FailureDetails, compareDetails)
	}
	slices.SortStableFunc(r.Policies, func(a, b PolicyResult) int { return comparePolicies(&a.Policy, &b.Policy) })
	return r, nil
}

func comparePolicies(a, b *Policy) int {
	return cmp.Or(
		cmp.Compare(a.Domain, b.Domain),
		cmp.Compare(a.Type, b.Type),
		slices.Compare(a.MXHosts, b.MXHosts),
		slices.Compare(a.Strings, b.Strings),
	)
}

func compareDetails(a, b FailureDetail) int {
	return cmp.Or(
		cmp.Compare(a.ResultType, b.ResultType),
		cmp.Compare(a.ReceivingMXHostname, b.ReceivingMXHostname),
		cmp.Compare(a.ReceivingIP, b.ReceivingIP),
		cmp.Compare(a.SendingMTAIP, b.SendingMTAIP),
		cmp.Compare(a.ReceivingMXHelo, b.ReceivingMXHelo),
		cmp.Compare(a.FailureReasonCode, b.FailureReasonCode),
		cmp.Compare(a.AdditionalInformation, b.AdditionalInformation),
	)
}

// Gzip returns the report as JSON compressed with gzip, the form in which
// it is mailed and posted (RFC 8460 §5.2).
func (r *Report) Gzip() ([]byte, error) {
	js, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("tlsrpt: encoding the report: %w", err)
	}
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zw.Write(js)
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("tlsrpt: compressing the report: %w", err)
	}
	return b.Bytes(), nil
}

// PolicyDomain returns the policy domain of the report: the one domain all
// its policies name, or "" if they name none or several.
func (r *Report) PolicyDomain() string {
	d := ""
	for i := range r.Policies {
		pd := r.Policies[i].Policy.Domain
		if d != "" && pd != d {
			return ""
		}
		d = pd
	}
	return d
}

// Totals returns the session counts of all policies added up.
func (r *Report) Totals() Summary {
	var t Summary
	for i := range r.Policies {
		t.TotalSuccessfulSessionCount = addCount(t.TotalSuccessfulSessionCount, r.Policies[i].Summary.TotalSuccessfulSessionCount)
		t.TotalFailureSessionCount = addCount(t.TotalFailureSessionCount, r.Policies[i].Summary.TotalFailureSessionCount)
	}
	return t
}

// FileName returns the file name of a gzip-compressed report (RFC 8460
// §5.1):
//
//	submitter!policy-domain!begin!end!id.json.gz
//
// with begin and end in seconds since the epoch. The id is left out when it
// is not 1 to 64 letters and digits.
func FileName(submitter, policyDomain string, begin, end time.Time, id string) string {
	n := submitter + "!" + policyDomain + "!" +
		strconv.FormatInt(begin.Unix(), 10) + "!" + strconv.FormatInt(end.Unix(), 10)
	if validReportID(id) {
		n += "!" + id
	}
	return n + ".json.gz"
}

// fileName returns the file name of a report this submitter built.
func (s *Submitter) fileName(r *Report) string {
	return FileName(s.Domain, r.PolicyDomain(), r.DateRange.Start, r.DateRange.End, r.ReportID)
}
