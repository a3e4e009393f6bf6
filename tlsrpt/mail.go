package tlsrpt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/address"
)

// MailFunc sends a message by mail: the Scheduler calls it for mailto:
// reporting URIs. from is the Submitter's From address and the envelope
// sender; to holds the one address of the URI; msg is the complete message
// (Submitter.Message) with CRLF line endings.
//
// A MailFunc must meet this contract:
//
//   - Deliver the report even when TLS to the recipient's domain fails or
//     cannot be authenticated (RFC 8460 §5.3): a report is often about
//     exactly that failure. ctx is marked with WithReportDelivery so a
//     delivery function can tell a report from other mail and relax its
//     TLS requirements for it alone.
//   - Not count the report's own sessions in TLS-RPT results (RFC 8460
//     §5.3). A function backed by the root package's Deliver passes ctx
//     through, and Recorder.Record drops results recorded under it.
//   - Have the message DKIM-signed for the Submitter's domain, without the
//     "l=" tag (RFC 8460 §5.3): receivers ignore unsigned reports. Sign in
//     the function, or relay through a server that signs.
//   - Return nil only once a server has accepted the message. Wrap the
//     error with ErrPermanent when retrying cannot help (a 5xx reply for
//     the recipient, say), so that the Scheduler stops retrying.
//   - Respect ctx: stop when it is done.
type MailFunc func(ctx context.Context, from string, to []string, msg io.Reader) error

// Message returns the email that carries report r to the addresses to (RFC
// 8460 §5.3): a multipart/report; report-type="tlsrpt" message with the
// headers From (s.From), To, Date (date), Message-ID, Subject "Report
// Domain: <policy domain> Submitter: <s.Domain> Report-ID: <id@s.Domain>",
// TLS-Report-Domain, TLS-Report-Submitter and Auto-Submitted, a short
// plain-text part, and the report as an application/tlsrpt+gzip attachment
// named by FileName, in base64 lines of 76 characters. Lines end in CRLF and
// keep within 78 characters, except that the file name parameters are never
// split (as in the reports Google sends), since some receivers look for
// them whole. The message is not DKIM-signed; see MailFunc.
func (s *Submitter) Message(r *Report, to []string, date time.Time) ([]byte, error) {
	sub, err := s.check()
	if err != nil {
		return nil, err
	}
	domain := r.PolicyDomain()
	if domain == "" {
		return nil, errors.New("tlsrpt: Message: the report does not name exactly one policy domain")
	}
	if _, err := canonicalDomain(domain); err != nil {
		return nil, fmt.Errorf("tlsrpt: Message: %w", err)
	}
	if !validReportID(r.ReportID) {
		return nil, fmt.Errorf("tlsrpt: Message: report ID %q is not 1 to %d letters and digits", clip(r.ReportID), maxReportIDLen)
	}
	if len(to) == 0 {
		return nil, errors.New("tlsrpt: Message: no recipient")
	}
	from, err := headerAddress(sub.From)
	if err != nil {
		return nil, fmt.Errorf("tlsrpt: Message: From: %w", err)
	}
	rcpts := make([]string, len(to))
	for i, a := range to {
		if rcpts[i], err = headerAddress(a); err != nil {
			return nil, fmt.Errorf("tlsrpt: Message: To: %w", err)
		}
	}
	gz, err := r.Gzip()
	if err != nil {
		return nil, err
	}
	fn := sub.fileName(r)
	boundary := "=_tlsrpt_" + r.ReportID
	h := sha256.Sum256([]byte(strings.Join(rcpts, ",")))
	msgID := "<" + r.ReportID + "." + hex.EncodeToString(h[:4]) + "@" + sub.Domain + ">"

	var b bytes.Buffer
	header := func(name, value string) {
		b.WriteString(name)
		b.WriteString(": ")
		b.WriteString(value)
		b.WriteString("\r\n")
	}
	header("From", from)
	header("To", strings.Join(rcpts, ", "))
	header("Date", date.Format(time.RFC1123Z))
	header("Message-ID", msgID)
	header("Subject", foldSubject(domain, sub.Domain, "<"+r.ReportID+"@"+sub.Domain+">"))
	header("TLS-Report-Domain", domain)
	header("TLS-Report-Submitter", sub.Domain)
	header("Auto-Submitted", "auto-generated")
	header("MIME-Version", "1.0")
	header("Content-Type", "multipart/report; report-type=\"tlsrpt\";\r\n\tboundary=\""+boundary+"\"")
	b.WriteString("\r\nThis is a multipart message in MIME format.\r\n")

	b.WriteString("\r\n--" + boundary + "\r\n")
	header("Content-Type", "text/plain; charset=us-ascii")
	header("Content-Transfer-Encoding", "7bit")
	b.WriteString("\r\n")
	writeSummaryText(&b, r, sub.Domain, domain)

	b.WriteString("\r\n--" + boundary + "\r\n")
	header("Content-Type", "application/tlsrpt+gzip;\r\n\tname=\""+fn+"\"")
	header("Content-Transfer-Encoding", "base64")
	header("Content-Disposition", "attachment;\r\n\tfilename=\""+fn+"\"")
	b.WriteString("\r\n")
	writeBase64Lines(&b, gz)
	b.WriteString("\r\n--" + boundary + "--\r\n")
	return b.Bytes(), nil
}

// headerAddress validates an address and returns it with its domain in
// A-labels, safe to write into a header.
func headerAddress(s string) (string, error) {
	a, err := address.Parse(s)
	if err != nil {
		return "", err
	}
	return a.Encode()
}

// foldSubject returns the fixed subject of RFC 8460 §5.3, folded before
// "Submitter:" and "Report-ID:" when it would not fit in a 78-character
// line.
func foldSubject(domain, submitter, msgID string) string {
	parts := []string{"Report Domain: " + domain, "Submitter: " + submitter, "Report-ID: " + msgID}
	if len("Subject: ")+len(parts[0])+len(parts[1])+len(parts[2])+2 <= 78 {
		return strings.Join(parts, " ")
	}
	return strings.Join(parts, "\r\n ")
}

// writeSummaryText writes the human-readable part.
func writeSummaryText(b *bytes.Buffer, r *Report, submitter, domain string) {
	t := r.Totals()
	fmt.Fprintf(b, "This is an aggregate TLS report (RFC 8460) from %s\r\n", submitter)
	fmt.Fprintf(b, "about mail delivered to %s\r\n", domain)
	fmt.Fprintf(b, "from %s to %s.\r\n\r\n",
		r.DateRange.Start.UTC().Format(dateTimeLayout), r.DateRange.End.UTC().Format(dateTimeLayout))
	fmt.Fprintf(b, "Sessions that negotiated TLS as the policy required: %d\r\n", t.TotalSuccessfulSessionCount)
	fmt.Fprintf(b, "Sessions that failed: %d\r\n\r\n", t.TotalFailureSessionCount)
	b.WriteString("The report is attached in the JSON format of RFC 8460, gzipped.\r\n")
}

// writeBase64Lines writes data in base64, 76 characters and CRLF a line.
func writeBase64Lines(b *bytes.Buffer, data []byte) {
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteString("\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc)
	b.WriteString("\r\n")
}
