package smtpsecure

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/policy"
	"github.com/smtpsecure/smtpsecure/tlsrpt"
)

// Outcome says what became of a message for one recipient of Deliver.
type Outcome int

const (
	// OutcomeDelivered: an MX host of the recipient's domain accepted the
	// message for the recipient.
	OutcomeDelivered Outcome = iota + 1
	// OutcomeTemporary: the message was not delivered and may be later:
	// keep it and try again (RFC 5321 §4.5.4.1).
	OutcomeTemporary
	// OutcomePermanent: the message was not delivered and never will be
	// as it is: return it to the sender.
	OutcomePermanent
)

// String returns "delivered", "temporary" or "permanent".
func (o Outcome) String() string {
	switch o {
	case OutcomeDelivered:
		return "delivered"
	case OutcomeTemporary:
		return "temporary"
	case OutcomePermanent:
		return "permanent"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// RecipientResult is what Deliver did for one recipient.
type RecipientResult struct {
	// Recipient is the address as written in Envelope.To.
	Recipient string
	// Domain is the recipient's domain in A-labels (as written for an
	// address literal).
	Domain string
	// Outcome says whether the message was delivered, and if not, whether
	// it may be later.
	Outcome Outcome
	// Err is nil when the message was delivered, else a *DeliveryError
	// that says what failed where, and under which rule of the plan.
	Err error

	// Code, Enhanced and Reply are the reply of the server that settled
	// the outcome: 250 and the server's text (often a queue ID) on
	// delivery; the refusal otherwise. Code is 0 when no server answered
	// (the plan allowed no host, or every host failed before a reply to
	// the transaction). Enhanced is set only when the server sent one.
	Code     int
	Enhanced EnhancedCode
	Reply    string

	// Host is the MX host that gave the reply (for a temporary failure,
	// the last host tried), "" if none; Addr is the address it was reached
	// at.
	Host string
	Addr netip.Addr
	// ServerAuth is how the server at Host was authenticated: DANE-EE,
	// DANE-TA, the Web PKI, or none (TLS without authentication, or
	// plaintext when TLS is false).
	ServerAuth ServerAuth
	// TLS reports whether the session with Host was encrypted.
	TLS bool
	// DANEMatch is the TLSA record that authenticated Host, nil unless
	// ServerAuth is DANE-EE or DANE-TA.
	DANEMatch *dane.Match
	// Source is the rule of the plan that decided what Host required
	// (DANE, MTA-STS, a local rule, the default); valid when Host is set.
	Source policy.Source

	// DANEChecked is false when the resolver could not give DNSSEC answers
	// (no trusted validating upstream): DANE could not be checked for the
	// domain, and hosts that publish TLSA records were treated as having
	// none. The plan explains it.
	DANEChecked bool
	// Plan is the delivery plan of the recipient's domain, nil when none
	// could be made; print it to see why each host was used or skipped.
	// It is shared by the recipients of the domain.
	Plan *policy.Plan
	// Attempts lists every session attempt made for the recipient's domain
	// in this call, in order, with its TLS-RPT result. It is shared by the
	// recipients of the domain.
	Attempts []Attempt
	// PlanReports are the TLS-RPT results of the plan itself (a failed
	// MTA-STS fetch, bogus DNSSEC, excluded hosts), recorded once per call.
	PlanReports []tlsrpt.Result
}

// Attempt is one SMTP session attempt with one MX host at one address, or
// one use of a session kept by Deliverer.Pool (Reused).
type Attempt struct {
	// Host is the MX host name (A-labels); Addr the address dialled.
	Host string
	Addr netip.Addr
	// Source is the rule that decided Requirement.
	Source policy.Source
	// Requirement describes what the session had to achieve.
	Requirement string
	// TLS reports whether TLS was established; ServerAuth how the server
	// was authenticated.
	TLS        bool
	ServerAuth ServerAuth
	// DANEMatch is the TLSA record that authenticated the server, nil
	// unless ServerAuth is DANE-EE or DANE-TA.
	DANEMatch *dane.Match
	// Err is why the attempt did not settle every recipient it carried
	// (a failure to connect or to secure the session, a refusal), nil when
	// the server took the message for each of them or refused each for
	// good.
	Err error
	// Report is the TLS-RPT result of the session (RFC 8460 §4.3), given to
	// Deliverer.TLSReports; nil when none is due: the session failed
	// before STARTTLS (RFC 8460 §4.3.4 makes such network failures
	// optional, and they are not counted), a local rule that does not
	// follow the domain's policy decided, or the session was reused.
	Report *tlsrpt.Result
	// Reused reports that the session was not made for this attempt: it
	// came from Deliverer.Pool, made by an earlier delivery under a
	// requirement that implies this one (see MXPool). Its TLS-RPT result
	// was counted when it was made (a report counts sessions, RFC 8460
	// §4.4), so Report is nil.
	Reused bool
}

// ErrRequireTLS is matched by the error of a recipient whose message asked
// for REQUIRETLS (RFC 8689) when no MX host of its domain could take it:
// none is authenticated by DANE or an MTA-STS policy in mode enforce, or
// none of those advertises REQUIRETLS. The enhanced status is 5.7.30.
var ErrRequireTLS = errors.New("no MX host can take a REQUIRETLS message")

// DeliveryError says why Deliver did not deliver a message to a recipient:
// where it failed (the domain, the MX host and address of the last attempt
// that counted), under which rule of the plan, whether it may succeed
// later, and the cause, which errors.As and errors.Is reach: a
// *DowngradeError, *SMTPError, *ConnError, *ExtensionError,
// *UncertainDeliveryError, *policy.Error, ErrRequireTLS, a context error.
type DeliveryError struct {
	// Recipient is the address as written in Envelope.To.
	Recipient string
	// Domain is the recipient's domain (A-labels).
	Domain string
	// Host and Addr are the MX host and address of the attempt that
	// decided, "" and the zero Addr when no session decided (a plan that
	// allows no host, a lookup failure).
	Host string
	Addr netip.Addr
	// Source and Requirement are the rule that decided what Host
	// required, and that requirement, when Host is set.
	Source      policy.Source
	Requirement string
	// Temporary reports whether the delivery may succeed later.
	Temporary bool
	// Status is the enhanced status code for a delivery status
	// notification: the server's when it sent one, else the one that
	// names the failure (5.1.10 null MX, 5.1.2 no such domain, 5.4.4 no
	// usable host, 5.7.30 REQUIRETLS, 4.4.1 no answer, 4.7.5 TLS
	// failure).
	Status EnhancedCode
	// Err is the cause.
	Err error
}

// Error says what failed, where, and what to do.
func (e *DeliveryError) Error() string {
	var b strings.Builder
	b.WriteString("smtpsecure: delivery to ")
	b.WriteString(e.Recipient)
	if e.Temporary {
		b.WriteString(" deferred: ")
	} else {
		b.WriteString(" failed: ")
	}
	cause := e.Err.Error()
	if e.Host != "" {
		b.WriteString(e.Host)
		if e.Addr.IsValid() {
			b.WriteString(" [" + e.Addr.String() + "]")
		}
		fmt.Fprintf(&b, " (rule %s: %s): ", e.Source, e.Requirement)
		cause = nested(e.Err, net.JoinHostPort(e.Host, "25"))
	} else {
		cause = strings.TrimPrefix(cause, "smtpsecure: ")
	}
	b.WriteString(cause)
	if e.Temporary {
		b.WriteString("; keep the message and try again later")
	} else {
		b.WriteString("; return the message to the sender")
	}
	if e.Status.Class != 0 {
		b.WriteString(" (" + e.Status.String() + ")")
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *DeliveryError) Unwrap() error { return e.Err }

// EnhancedCode returns Status, for a delivery status notification.
func (e *DeliveryError) EnhancedCode() EnhancedCode { return e.Status }
