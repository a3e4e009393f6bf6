package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/smtpsecure/smtpsecure"
	"github.com/smtpsecure/smtpsecure/policy"
)

// deliverReport is what deliver prints with --json, one object per
// message. Its shape is stable: fields are added, never renamed or
// removed.
type deliverReport struct {
	// Status is "delivered" (every recipient got the message), "partial"
	// (some did) or "failed" (none did).
	Status string `json:"status"`
	// ExitCode is the command's exit code (see recipientExitCode and
	// combineExitCodes).
	ExitCode int `json:"exit_code"`
	// From is the envelope sender, "" for the null sender.
	From string `json:"from"`
	// Size is the size of the message delivered, in octets (CRLF line
	// ends, with any DKIM-Signature).
	Size int64 `json:"size"`
	// RequireTLS reports whether the message asked for REQUIRETLS.
	RequireTLS bool `json:"requiretls"`
	// DKIM describes the signature added, absent without --dkim-….
	DKIM *dkimReport `json:"dkim,omitempty"`
	// DNSSEC says where DNSSEC verdicts came from: "in-library",
	// "trusted-resolver" or "none" (DANE not checked).
	DNSSEC string `json:"dnssec"`
	// TLSRPTStore is the --tlsrpt-store directory, absent without it.
	TLSRPTStore string `json:"tlsrpt_store,omitempty"`
	// Recipients is the outcome for each recipient, in the order given.
	Recipients []deliveryReport `json:"recipients"`

	daneChecked bool // false when a domain's plan could not check DANE
}

// deliveryReport is the outcome for one recipient.
type deliveryReport struct {
	Address string `json:"address"`
	// Domain is the recipient's domain in A-labels.
	Domain string `json:"domain"`
	// Outcome is "delivered", "temporary" (not delivered, may be later)
	// or "permanent" (not delivered, never will be as it is).
	Outcome string `json:"outcome"`
	// ExitCode is this recipient's exit code: 0 delivered, 77 security
	// could not be had, 75 temporary, 68 no such domain, 67 recipient
	// refused, 69 other permanent failures.
	ExitCode int `json:"exit_code"`
	// MX and IP are the host and address that took the message or, for a
	// failure, the last that was tried; absent when none was.
	MX string `json:"mx,omitempty"`
	IP string `json:"ip,omitempty"`
	// TLS reports whether the session with MX was encrypted.
	TLS bool `json:"tls"`
	// ServerAuth is how MX was authenticated: "DANE-EE", "DANE-TA",
	// "Web PKI" or "none"; TLSA is the record that authenticated it
	// under DANE.
	ServerAuth string `json:"server_auth,omitempty"`
	TLSA       string `json:"tlsa,omitempty"`
	// Rule is the rule that decided what MX required ("dane",
	// "mta-sts-enforce", "mta-sts-testing", "local", "default"), and
	// Requirement what that was.
	Rule        string `json:"rule,omitempty"`
	Requirement string `json:"requirement,omitempty"`
	// Code and Reply are the reply of the server that settled the
	// outcome, absent when no server answered.
	Code  int    `json:"code,omitempty"`
	Reply string `json:"reply,omitempty"`
	// EnhancedStatus is the status code of a failure, for a bounce: the
	// server's, or the one that names the failure (5.1.10 null MX, 4.7.5
	// TLS failure, 5.7.30 REQUIRETLS…).
	EnhancedStatus string `json:"enhanced_status,omitempty"`
	// ResultType is the RFC 8460 result type of a failure to secure the
	// delivery (validation-failure, starttls-not-supported,
	// dnssec-invalid…), absent for other failures.
	ResultType string `json:"result_type,omitempty"`
	// Error says what failed, where, and what to do.
	Error string `json:"error,omitempty"`
	// DANEChecked is false when DANE could not be checked for the domain
	// (no DNSSEC answers).
	DANEChecked bool `json:"dane_checked"`
	// Attempts are the session attempts made for the recipient's domain,
	// in order.
	Attempts []attemptReport `json:"attempts"`
}

// attemptReport is one session attempt with one MX address.
type attemptReport struct {
	MX         string `json:"mx"`
	IP         string `json:"ip"`
	Rule       string `json:"rule"`
	TLS        bool   `json:"tls"`
	ServerAuth string `json:"server_auth"`
	// TLSRPT is the session's TLS-RPT result: "success" or a result type;
	// absent when none is due (a network failure before STARTTLS).
	TLSRPT string `json:"tlsrpt,omitempty"`
	Error  string `json:"error,omitempty"`
}

// newDeliverReport describes Deliver's results.
func newDeliverReport(from string, size int64, env *smtpsecure.Envelope, results []smtpsecure.RecipientResult) *deliverReport {
	rep := &deliverReport{From: from, Size: size, RequireTLS: env.RequireTLS, daneChecked: true, Recipients: []deliveryReport{}}
	codes := make([]int, 0, len(results))
	delivered := 0
	for i := range results {
		r := &results[i]
		dr := describeDelivery(r)
		rep.Recipients = append(rep.Recipients, dr)
		codes = append(codes, dr.ExitCode)
		if r.Outcome == smtpsecure.OutcomeDelivered {
			delivered++
		}
		if !r.DANEChecked && r.Plan != nil {
			rep.daneChecked = false
		}
	}
	switch delivered {
	case len(results):
		rep.Status = "delivered"
	case 0:
		rep.Status = "failed"
	default:
		rep.Status = "partial"
	}
	rep.ExitCode = combineExitCodes(codes)
	return rep
}

// describeDelivery describes one recipient's result.
func describeDelivery(r *smtpsecure.RecipientResult) deliveryReport {
	dr := deliveryReport{
		Address:     r.Recipient,
		Domain:      r.Domain,
		Outcome:     r.Outcome.String(),
		ExitCode:    recipientExitCode(r),
		DANEChecked: r.DANEChecked,
		Code:        r.Code,
		Reply:       r.Reply,
		Attempts:    []attemptReport{},
	}
	if r.Host != "" {
		dr.MX, dr.TLS = r.Host, r.TLS
		if r.Addr.IsValid() {
			dr.IP = r.Addr.String() // none when no session decided (REQUIRETLS)
		}
		dr.ServerAuth, dr.Rule = r.ServerAuth.String(), r.Source.String()
		if r.DANEMatch != nil {
			dr.TLSA = r.DANEMatch.Record.String()
		}
		for _, a := range r.Attempts {
			if a.Host == r.Host && a.Addr == r.Addr {
				dr.Requirement = a.Requirement
			}
		}
	}
	if r.Err != nil {
		dr.Error = deliverFlagNames.Replace(strings.TrimPrefix(r.Err.Error(), "smtpsecure: "))
		var de *smtpsecure.DeliveryError
		if errors.As(r.Err, &de) {
			dr.EnhancedStatus = de.Status.String()
		}
		dr.ResultType = failureResultType(r)
	}
	for _, a := range r.Attempts {
		ar := attemptReport{MX: a.Host, IP: a.Addr.String(), Rule: a.Source.String(), TLS: a.TLS, ServerAuth: a.ServerAuth.String()}
		if a.Report != nil {
			ar.TLSRPT = a.Report.ResultType
			if ar.TLSRPT == "" {
				ar.TLSRPT = "success"
			}
		}
		if a.Err != nil {
			ar.Error = deliverFlagNames.Replace(strings.TrimPrefix(a.Err.Error(), "smtpsecure: "))
		}
		dr.Attempts = append(dr.Attempts, ar)
	}
	return dr
}

// deliverFlagNames names the library's options in the library's messages
// as the flags that set them.
var deliverFlagNames = strings.NewReplacer(
	"MailOptions.RequireTLS", "--requiretls",
	"MailOptions.Return", "-R",
	"MailOptions.EnvelopeID", "-V",
	"RcptOptions.Notify", "-N",
)

// failureResultType returns the RFC 8460 result type of a recipient's
// failure to get a secure session: that of its cause (a
// *smtpsecure.DowngradeError), else that recorded for the session that
// decided, else, when no session decided, that of the plan (bogus DNSSEC,
// no usable TLSA under dane-only); "" for a failure that is not about
// security.
func failureResultType(r *smtpsecure.RecipientResult) string {
	var rt interface{ ReportResultType() string }
	if errors.As(r.Err, &rt) && rt.ReportResultType() != "" {
		return rt.ReportResultType()
	}
	if r.Host != "" {
		for i := len(r.Attempts) - 1; i >= 0; i-- {
			a := r.Attempts[i]
			if a.Host == r.Host && a.Addr == r.Addr && a.Report != nil && a.Report.ResultType != "" {
				return a.Report.ResultType
			}
		}
		return ""
	}
	for _, p := range r.PlanReports {
		if p.ResultType != "" {
			return p.ResultType
		}
	}
	return ""
}

// recipientExitCode is the exit code of one recipient's outcome: 0
// delivered; 77 when security could not be had (the failure has an RFC
// 8460 result type, is a *smtpsecure.DowngradeError, could not meet
// REQUIRETLS (X.7.30: no host may take it, or the host lacks it), or an
// MTA-STS policy in mode enforce lists none of the MX
// hosts); else 75 for a temporary failure, 68 for a domain that does not
// exist, 67 for a recipient an MX host refused, 69 for the rest.
func recipientExitCode(r *smtpsecure.RecipientResult) int {
	if r.Outcome == smtpsecure.OutcomeDelivered {
		return exitOK
	}
	var pe *policy.Error
	var se *smtpsecure.SMTPError
	var de *smtpsecure.DeliveryError
	switch {
	case failureResultType(r) != "",
		errors.Is(r.Err, smtpsecure.ErrDowngrade),
		errors.As(r.Err, &de) && de.Status.SameCondition(smtpsecure.CodeRequireTLSUnsupported),
		errors.As(r.Err, &pe) && pe.Recheck:
		return exitNoPerm
	case r.Outcome == smtpsecure.OutcomeTemporary:
		return exitTempFail
	case errors.Is(r.Err, policy.ErrNoSuchDomain):
		return exitNoHost
	case errors.As(r.Err, &se) && strings.HasPrefix(se.Command, "RCPT"):
		return exitNoUser
	}
	return exitUnavailable
}

// combineExitCodes is the exit code of a run from its recipients' codes,
// as sendmail sets its exit status: a code other than 0 and 75 beats 75,
// and the first such code, in the order the recipients were given, wins;
// 75 if some recipient has it and none has another failure; else 0.
func combineExitCodes(codes []int) int {
	code := exitOK
	for _, c := range codes {
		switch {
		case c == exitOK:
		case c == exitTempFail:
			if code == exitOK {
				code = exitTempFail
			}
		case code == exitOK || code == exitTempFail:
			code = c
		}
	}
	return code
}

// print writes the outcome for people: a line per recipient, then what
// the MX host was, how it was authenticated and under which rule, or what
// failed.
func (r *deliverReport) print(w io.Writer) {
	for _, d := range r.Recipients {
		if d.Outcome == smtpsecure.OutcomeDelivered.String() {
			fmt.Fprintf(w, "%s: delivered to %s [%s]\n", d.Address, d.MX, d.IP)
			fmt.Fprintf(w, "  tls:   %s\n", tlsLine(d.TLS, d.ServerAuth, d.TLSA))
			fmt.Fprintf(w, "  rule:  %s: %s\n", d.Rule, d.Requirement)
			fmt.Fprintf(w, "  reply: %d %s\n", d.Code, d.Reply)
			continue
		}
		var what []string
		if d.EnhancedStatus != "" {
			what = append(what, d.EnhancedStatus)
		}
		if d.ResultType != "" {
			what = append(what, "TLS-RPT "+d.ResultType)
		}
		fmt.Fprintf(w, "%s: not delivered, %s failure (%s), exit %d\n", d.Address, d.Outcome, strings.Join(what, ", "), d.ExitCode)
		switch {
		case d.IP != "":
			fmt.Fprintf(w, "  last tried: %s [%s], rule %s\n", d.MX, d.IP, d.Rule)
		case d.MX != "":
			fmt.Fprintf(w, "  host: %s, rule %s\n", d.MX, d.Rule)
		}
		fmt.Fprintf(w, "  error: %s\n", d.Error)
	}
	if r.DKIM != nil {
		fmt.Fprintf(w, "DKIM: signed for %s with selector %s (%s)\n", r.DKIM.Domain, r.DKIM.Selector, r.DKIM.Algorithm)
	}
}

// tlsLine says in a few words how a session was secured.
func tlsLine(tls bool, auth, tlsa string) string {
	switch {
	case !tls:
		return "none: plaintext"
	case tlsa != "":
		return fmt.Sprintf("authenticated by %s (TLSA %s)", auth, tlsa)
	case auth == smtpsecure.ServerAuthWebPKI.String():
		return "authenticated by the Web PKI"
	}
	return "encrypted, server not authenticated"
}

// errNotDelivered is the error of a run in which some recipient did not
// get the message: it names them, for the last line on standard error.
type errNotDelivered struct{ rep *deliverReport }

// Error lists the recipients that did not get the message.
func (e errNotDelivered) Error() string {
	var failed []string
	for _, d := range e.rep.Recipients {
		if d.Outcome != smtpsecure.OutcomeDelivered.String() {
			failed = append(failed, fmt.Sprintf("%s (%s, exit %d)", d.Address, d.Outcome, d.ExitCode))
		}
	}
	return fmt.Sprintf("%d of %d recipients did not get the message: %s", len(failed), len(e.rep.Recipients), strings.Join(failed, ", "))
}
