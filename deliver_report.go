package smtpsecure

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/smtpsecure/smtpsecure/tlsrpt"
)

// maxReportMail bounds a TLS report message MailTLSReport reads: a report
// of tlsrpt.MaxReportSize in base64, with room for the headers.
const maxReportMail = 2 * tlsrpt.MaxReportSize

// MailTLSReport delivers a TLS report (RFC 8460 §5.3) with Deliver. It has
// the signature of tlsrpt.MailFunc: set a tlsrpt.Scheduler's Mail to
// d.MailTLSReport.
//
// A report is often about the very failure that stands in its way, and RFC
// 8460 §5.3 asks that it be delivered despite TLS failures. So, for the
// report's recipient domain, at each policy level:
//
//   - DANE, MTA-STS in mode enforce, a local verify rule: TLS is required
//     as the plan says, but the certificate is checked after the handshake
//     instead of during it. A host that fails DANE or Web PKI authentication
//     gets the report over TLS that is encrypted and not authenticated; the
//     result says how the server was authenticated (none, then).
//   - Hosts the plan excludes (not listed by the MTA-STS policy, bogus
//     DNSSEC) stay excluded: the plan, not TLS, rules them out, and their
//     addresses are not trusted.
//   - No policy, or MTA-STS in mode testing: as any message, STARTTLS
//     required, the certificate not checked.
//   - A host that does not offer STARTTLS, or refuses it, does not get the
//     report: this package sends nothing in plaintext unless a local rule
//     named insecure-… says so for the domain, and a report is no exception.
//     The Scheduler retries, and gives up after a day.
//
// The context is marked with tlsrpt.WithReportDelivery, so that the
// sessions of a report are never counted in a report (RFC 8460 §5.3).
// The message is read into memory once (at most twice tlsrpt.MaxReportSize).
// A failure that retrying cannot cure (a 5xx reply, a null MX) is wrapped
// with tlsrpt.ErrPermanent. Deliverer.Signer, when set, signs the report
// as it signs every message (RFC 8460 §5.3 asks for a DKIM signature:
// set a *DKIMSigner for the domain of from); without one, sign the report
// before, or relay through a server that signs.
func (d *Deliverer) MailTLSReport(ctx context.Context, from string, to []string, msg io.Reader) error {
	ctx = tlsrpt.WithReportDelivery(ctx)
	data, err := io.ReadAll(io.LimitReader(msg, maxReportMail+1))
	if err != nil {
		return fmt.Errorf("smtpsecure: reading the TLS report message: %w", err)
	}
	if len(data) > maxReportMail {
		return fmt.Errorf("smtpsecure: %w: the TLS report message is larger than %d octets", tlsrpt.ErrPermanent, maxReportMail)
	}
	res, err := d.deliver(ctx, &Envelope{From: from, To: to}, bytes.NewReader(data), modeRelaxed)
	if err != nil {
		return fmt.Errorf("%w: %w", tlsrpt.ErrPermanent, err)
	}
	var errs []error
	permanent := false
	for _, r := range res {
		if r.Outcome == OutcomeDelivered {
			continue
		}
		errs = append(errs, r.Err)
		permanent = permanent || r.Outcome == OutcomePermanent
	}
	if len(errs) == 0 {
		return nil
	}
	if permanent {
		return fmt.Errorf("%w: %w", tlsrpt.ErrPermanent, errors.Join(errs...))
	}
	return errors.Join(errs...)
}
