package tlsrpt

import (
	"encoding/json"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/txtrecord"
)

// Report is an aggregate report of RFC 8460 §4: what one sender saw of one
// policy domain's TLS over one UTC day. Its JSON form is the report itself;
// Submitter.Build makes one, ParseReport reads one.
type Report struct {
	// OrganizationName names the organization that sent the report.
	OrganizationName string `json:"organization-name"`
	// DateRange is the period the report covers.
	DateRange DateRange `json:"date-range"`
	// ContactInfo is an address where the sender can be reached.
	ContactInfo string `json:"contact-info"`
	// ReportID identifies the report; a report sent again keeps it.
	ReportID string `json:"report-id"`
	// Policies has one entry per policy the sessions were made under.
	Policies []PolicyResult `json:"policies"`
}

// DateRange is the period a report covers (RFC 8460 §4.4). Written as
// RFC 3339 date-times in UTC.
type DateRange struct {
	// Start is the first instant the report covers.
	Start time.Time `json:"start-datetime"`
	// End is the last instant the report covers.
	End time.Time `json:"end-datetime"`
}

// PolicyResult holds the counts of the sessions made under one policy: an
// element of a report's "policies" array.
type PolicyResult struct {
	// Policy is the policy the sessions were made under.
	Policy Policy `json:"policy"`
	// Summary counts the successful and the failed sessions.
	Summary Summary `json:"summary"`
	// FailureDetails counts the failed sessions by what failed, where.
	FailureDetails []FailureDetail `json:"failure-details,omitempty"`
}

// Summary counts sessions (RFC 8460 §4.4).
type Summary struct {
	// TotalSuccessfulSessionCount counts the sessions that negotiated TLS
	// as the policy required.
	TotalSuccessfulSessionCount int64 `json:"total-successful-session-count"`
	// TotalFailureSessionCount counts the sessions that did not.
	TotalFailureSessionCount int64 `json:"total-failure-session-count"`
}

// FailureDetail counts the failed sessions that share a result type and the
// addresses and names involved (RFC 8460 §4.4). Empty fields are left out
// of the JSON.
type FailureDetail struct {
	// ResultType is one of the Result… constants.
	ResultType string `json:"result-type"`
	// SendingMTAIP is the sender's IP address.
	SendingMTAIP string `json:"sending-mta-ip,omitempty"`
	// ReceivingMXHostname is the MX host name that was tried.
	ReceivingMXHostname string `json:"receiving-mx-hostname,omitempty"`
	// ReceivingMXHelo is the name the server announced.
	ReceivingMXHelo string `json:"receiving-mx-helo,omitempty"`
	// ReceivingIP is the address that was connected to.
	ReceivingIP string `json:"receiving-ip,omitempty"`
	// FailedSessionCount is the number of sessions counted here.
	FailedSessionCount int64 `json:"failed-session-count"`
	// AdditionalInformation is a URI or text with more detail.
	AdditionalInformation string `json:"additional-information,omitempty"`
	// FailureReasonCode is a short code for the failure.
	FailureReasonCode string `json:"failure-reason-code,omitempty"`
}

// dateTimeLayout is how date-range instants are written: RFC 3339 in UTC,
// as in RFC 8460 Appendix B, with a fraction of a second only if there is
// one.
const dateTimeLayout = "2006-01-02T15:04:05.999999999Z"

// MarshalJSON writes both instants in UTC.
func (d DateRange) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Start string `json:"start-datetime"`
		End   string `json:"end-datetime"`
	}{d.Start.UTC().Format(dateTimeLayout), d.End.UTC().Format(dateTimeLayout)})
}

// maxReportIDLen bounds a report ID, which also goes into file names.
const maxReportIDLen = 64

// validReportID reports whether id can be a report ID and the unique-id of
// a file name: 1*(ALPHA / DIGIT) (RFC 8460 §5.1).
func validReportID(id string) bool {
	if id == "" || len(id) > maxReportIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !txtrecord.IsAlpha(id[i]) && !txtrecord.IsDigit(id[i]) {
			return false
		}
	}
	return true
}
