package tlsrpt

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// MaxReportSize bounds a report read by ParseReport, both as read and,
// when compressed, after decompression: ten megabytes, the receiver limit
// RFC 8460 §5.2 mentions as commonly observed.
const MaxReportSize = 10 << 20

// ParseReport reads an RFC 8460 report, as JSON or as gzip-compressed JSON
// (told apart by the gzip magic number), of at most MaxReportSize octets
// either way.
//
// It is lenient where real senders differ: "mx-host" and "policy-string"
// may be a string or an array of strings (the RFC's own example has a
// string; erratum 6241 made it an array), date-times may carry any UTC
// offset or none, the summary need not add up to the failure details, and
// unknown fields are ignored. It is strict about the rest: one JSON object
// and nothing after it, a date range whose start is not after its end, a
// "policies" array whose every policy names its policy-type and
// policy-domain, failure details with a result-type, and counts that are
// whole numbers not below zero. Errors are *ReportError values matching
// ErrInvalidReport (and ErrReportTooLarge).
func ParseReport(r io.Reader) (*Report, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxReportSize+1))
	if err != nil {
		return nil, &ReportError{Msg: "reading", Err: err}
	}
	if len(data) > MaxReportSize {
		return nil, &ReportError{Msg: fmt.Sprintf("larger than %d octets", MaxReportSize), tooLarge: true}
	}
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, &ReportError{Msg: "bad gzip data", Err: err}
		}
		data, err = io.ReadAll(io.LimitReader(zr, MaxReportSize+1))
		if err != nil {
			return nil, &ReportError{Msg: "bad gzip data", Err: err}
		}
		if len(data) > MaxReportSize {
			return nil, &ReportError{Msg: fmt.Sprintf("larger than %d octets once decompressed", MaxReportSize), tooLarge: true}
		}
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
	var rep struct {
		Report
		DateRange *DateRange     `json:"date-range"`
		Policies  []PolicyResult `json:"policies"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&rep); err != nil {
		return nil, &ReportError{Msg: "not a JSON report", Err: err}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &ReportError{Msg: "data after the JSON object"}
	}
	out := rep.Report
	if rep.DateRange == nil {
		return nil, &ReportError{Msg: "no date-range"}
	}
	out.DateRange = *rep.DateRange
	if out.DateRange.End.Before(out.DateRange.Start) {
		return nil, &ReportError{Msg: "date-range ends before it starts"}
	}
	if rep.Policies == nil {
		return nil, &ReportError{Msg: "no policies array"}
	}
	out.Policies = rep.Policies
	for i := range out.Policies {
		if err := checkParsedPolicy(&out.Policies[i]); err != nil {
			return nil, &ReportError{Msg: fmt.Sprintf("policies[%d]: %s", i, err)}
		}
	}
	return &out, nil
}

// checkParsedPolicy applies ParseReport's rules to one policy.
func checkParsedPolicy(p *PolicyResult) error {
	if p.Policy.Type == "" {
		return fmt.Errorf("no policy-type")
	}
	if p.Policy.Domain == "" {
		return fmt.Errorf("no policy-domain")
	}
	if p.Summary.TotalSuccessfulSessionCount < 0 || p.Summary.TotalFailureSessionCount < 0 {
		return fmt.Errorf("negative session count")
	}
	for j, d := range p.FailureDetails {
		if d.ResultType == "" {
			return fmt.Errorf("failure-details[%d]: no result-type", j)
		}
		if d.FailedSessionCount < 0 {
			return fmt.Errorf("failure-details[%d]: negative failed-session-count", j)
		}
	}
	return nil
}

// UnmarshalJSON reads a report's "policy" object, accepting a single string
// where an array of strings is due ("mx-host", "policy-string").
func (p *Policy) UnmarshalJSON(b []byte) error {
	var raw struct {
		Type    string     `json:"policy-type"`
		Domain  string     `json:"policy-domain"`
		Strings stringList `json:"policy-string"`
		MXHosts stringList `json:"mx-host"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*p = Policy{Type: raw.Type, Domain: raw.Domain, Strings: raw.Strings, MXHosts: raw.MXHosts}
	return nil
}

// stringList is an array of strings that may also be written as one
// string.
type stringList []string

// UnmarshalJSON reads a string or an array of strings.
func (l *stringList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*l = stringList{s}
		return nil
	}
	var a []string
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	*l = a
	return nil
}

// UnmarshalJSON reads the date range, accepting RFC 3339 date-times with
// any offset, and without one (taken as UTC).
func (d *DateRange) UnmarshalJSON(b []byte) error {
	var raw struct {
		Start *string `json:"start-datetime"`
		End   *string `json:"end-datetime"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if raw.Start == nil || raw.End == nil {
		return fmt.Errorf("date-range needs start-datetime and end-datetime")
	}
	start, err := parseDateTime(*raw.Start)
	if err != nil {
		return err
	}
	end, err := parseDateTime(*raw.End)
	if err != nil {
		return err
	}
	*d = DateRange{Start: start, End: end}
	return nil
}

// parseDateTime parses an RFC 3339 date-time, or one without an offset
// (taken as UTC), in the years 1970 to 9999 once in UTC.
func parseDateTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		t = t.UTC()
		if y := t.Year(); y < 1970 || y > 9999 {
			return time.Time{}, fmt.Errorf("date-time %q is out of range", clip(s))
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("date-time %q is not RFC 3339", clip(s))
}
