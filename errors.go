package smtpsecure

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/smtpsecure/smtpsecure/internal/wire"
)

// Sentinel errors. Every error this package returns wraps at least one of
// them, so errors.Is answers the coarse question; errors.As on the types below
// gives the details.
var (
	// ErrDowngrade is matched by every *DowngradeError: a secure, verified
	// connection could not be had and nothing was sent in its place.
	ErrDowngrade = errors.New("secure connection could not be established")

	// ErrExtensionMissing is matched by every *ExtensionError: the message
	// or the caller's options need an SMTP extension the server lacks.
	ErrExtensionMissing = errors.New("server lacks a required SMTP extension")

	// ErrProtocol is matched by every *ProtocolError: the server broke the
	// SMTP protocol (malformed or oversized reply, unexpected reply code,
	// unsolicited data).
	ErrProtocol = errors.New("SMTP protocol violation")

	// ErrReplyTooLong, ErrReplyTooManyLines and ErrMalformedReply name the
	// protocol violation found while reading a reply. They are reached through
	// *ProtocolError.
	ErrReplyTooLong      = wire.ErrLineTooLong
	ErrReplyTooManyLines = wire.ErrTooManyLines
	ErrMalformedReply    = wire.ErrMalformedReply

	// ErrTimeout is matched by a *ConnError whose cause is an expired
	// deadline (the Dialer's timeouts or the context's deadline).
	ErrTimeout = errors.New("timed out")

	// ErrAuthFailed is matched by an *AuthError when the server rejected the
	// credentials or the exchange.
	ErrAuthFailed = errors.New("authentication failed")

	// ErrAuthUnavailable is matched by an *AuthError when the server offers no
	// AUTH or no mechanism the credentials can use.
	ErrAuthUnavailable = errors.New("no usable authentication mechanism")

	// ErrInsecureAuth is matched by an *AuthError when credentials were not
	// sent because the connection is not TLS with a verified certificate
	// (see Dialer.InsecureAuth).
	ErrInsecureAuth = errors.New("refused to send credentials over a connection that is not verified TLS")

	// ErrInvalidAddress is matched by an *AddressError: an envelope address
	// was refused before anything was sent.
	ErrInvalidAddress = errors.New("invalid envelope address")

	// ErrDeliveryUncertain is matched by an *UncertainDeliveryError: the
	// message was sent in full but the connection failed before the server's
	// final answer, so it may or may not have been delivered.
	ErrDeliveryUncertain = errors.New("message may or may not have been delivered")

	// ErrRecipientsRejected is matched by a *RecipientsError: the message
	// was sent to nobody because the server refused its recipients.
	ErrRecipientsRejected = errors.New("recipients rejected")

	// ErrMessageTooLarge is returned, wrapped with the host and the limit,
	// when the declared message size exceeds the server's SIZE limit. Nothing
	// was sent.
	ErrMessageTooLarge = errors.New("message larger than the server accepts")

	// ErrClientClosed is matched by the error of every call on a Client
	// after Close or Quit, or after an error ended the session; in the
	// latter case the error also matches the error that ended it (see
	// Client.Err).
	ErrClientClosed = errors.New("SMTP session is closed")

	// ErrIdleClosed is matched by the *ConnError of a call on a session
	// that the server closed (or announced closing with a 421) while the
	// session was idle. It is found before anything is written, so the
	// message of that call was not sent and may be sent on a new session.
	ErrIdleClosed = errors.New("server closed the session while it was idle; nothing was sent, a new session may be tried")

	// ErrRefused is matched by every *SMTPError: the server refused a
	// command with a 4xx or 5xx reply.
	ErrRefused = errors.New("server refused the command")

	// ErrMessageRead is matched by a *MessageError: the caller's message
	// reader failed while the message was being sent, and nothing was
	// delivered.
	ErrMessageRead = errors.New("reading the message failed")

	// ErrInvalidOptions is matched by errors about the caller's
	// configuration or options (a Dialer field, an Envelope, MailOptions),
	// found before anything is sent.
	ErrInvalidOptions = errors.New("invalid options")

	// ErrSequence is matched by errors about calls made in the wrong order
	// (RCPT before MAIL, DATA without an accepted recipient, a second MAIL
	// while a transaction is open). Nothing is sent.
	ErrSequence = errors.New("out of sequence")
)

// optionsErr and sequenceErr format errors that match ErrInvalidOptions
// and ErrSequence.
func optionsErr(format string, a ...any) error {
	return fmt.Errorf("smtpsecure: %w: "+format, append([]any{ErrInvalidOptions}, a...)...)
}

func sequenceErr(format string, a ...any) error {
	return fmt.Errorf("smtpsecure: %w: "+format, append([]any{ErrSequence}, a...)...)
}

// EnhancedCode is an RFC 3463 enhanced status code, class.subject.detail,
// such as 5.7.8 (authentication credentials invalid).
type EnhancedCode struct {
	Class, Subject, Detail int
}

// String returns the code in dotted form, or "" for the zero value.
func (c EnhancedCode) String() string {
	if c == (EnhancedCode{}) {
		return ""
	}
	return fmt.Sprintf("%d.%d.%d", c.Class, c.Subject, c.Detail)
}

// Enhanced status codes a caller may want to act on (RFC 3463 §3.6 and
// §3.8, RFC 4954 §6, RFC 5248, RFC 6531 §3.5, RFC 8689 §5). They are given
// with class 5; compare with SameCondition to match 4.x.x as well.
var (
	CodeConversionRequired    = EnhancedCode{5, 6, 3}  // conversion required but not supported (8-bit data to a 7-bit server)
	CodeNonASCIIAddresses     = EnhancedCode{5, 6, 7}  // non-ASCII addresses not permitted
	CodeSecurity              = EnhancedCode{5, 7, 0}  // other or undefined security status; also "authentication required" (530)
	CodeSecurityUnsupported   = EnhancedCode{5, 7, 4}  // security features not supported
	CodeCryptographicFailure  = EnhancedCode{5, 7, 5}  // cryptographic failure
	CodeAuthInvalid           = EnhancedCode{5, 7, 8}  // authentication credentials invalid
	CodeAuthTooWeak           = EnhancedCode{5, 7, 9}  // authentication mechanism too weak
	CodeEncryptionNeeded      = EnhancedCode{5, 7, 10} // encryption needed
	CodeEncryptionRequired    = EnhancedCode{5, 7, 11} // encryption required for the requested authentication mechanism
	CodeRequireTLSUnsupported = EnhancedCode{5, 7, 30} // REQUIRETLS support required
)

// SameCondition reports whether c and o name the same condition
// (subject.detail), whatever their classes.
func (c EnhancedCode) SameCondition(o EnhancedCode) bool {
	return c.Subject == o.Subject && c.Detail == o.Detail && c != (EnhancedCode{})
}

// Security reports whether c is a security or policy status (X.7.X).
func (c EnhancedCode) Security() bool { return c.Subject == 7 }

// SMTPError is a reply from the server that refused a command.
type SMTPError struct {
	// Host is the server, as the caller named it.
	Host string
	// Command is the command that got the reply, with any credentials
	// removed ("AUTH PLAIN", "RCPT TO:<a@example.org>", "end of data"); ""
	// for a reply the server sent unasked (a 421 to an idle session).
	Command string
	// Code is the three-digit reply code.
	Code int
	// Enhanced is the RFC 3463 code from the reply, when the server offers
	// ENHANCEDSTATUSCODES and the code agrees with the reply code's class;
	// otherwise zero.
	Enhanced EnhancedCode
	// Lines holds the text of every reply line, without the codes.
	Lines []string
}

// Error reports the host, the command and the server's reply.
func (e *SMTPError) Error() string {
	if e.Command == "" {
		return fmt.Sprintf("smtpsecure: %s said, unasked: %s", e.Host, e.reply())
	}
	return fmt.Sprintf("smtpsecure: %s refused %s: %s", e.Host, e.Command, e.reply())
}

// reply returns the code, the enhanced code and the server's text.
func (e *SMTPError) reply() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(e.Code))
	if e.Enhanced != (EnhancedCode{}) {
		b.WriteString(" ")
		b.WriteString(e.Enhanced.String())
	}
	if msg := e.Message(); msg != "" {
		b.WriteString(" ")
		b.WriteString(msg)
	}
	return b.String()
}

// Unwrap returns ErrRefused.
func (e *SMTPError) Unwrap() error { return ErrRefused }

// Message returns the server's text, the enhanced code removed from each
// line and the lines joined by spaces, with control characters replaced.
func (e *SMTPError) Message() string {
	parts := make([]string, 0, len(e.Lines))
	for _, l := range e.Lines {
		if e.Enhanced != (EnhancedCode{}) {
			if _, rest, ok := wire.ParseEnhancedCode(l); ok {
				l = rest
			}
		}
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return sanitize(strings.Join(parts, " "))
}

// Temporary reports whether the reply was a transient failure (4xx): the
// same command may succeed later.
func (e *SMTPError) Temporary() bool { return e.Code/100 == 4 }

// Permanent reports whether the reply was a permanent failure (5xx).
func (e *SMTPError) Permanent() bool { return e.Code/100 == 5 }

// sanitize replaces control characters so that server text cannot forge log
// lines or terminal output.
func sanitize(s string) string {
	if strings.IndexFunc(s, isControl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return '?'
		}
		return r
	}, s)
}

func isControl(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }

// DowngradeReason says why a secure connection could not be had.
type DowngradeReason int

// The reasons a *DowngradeError gives.
const (
	// ReasonSTARTTLSNotOffered: the server's EHLO reply did not list
	// STARTTLS (or the server did not accept EHLO at all).
	ReasonSTARTTLSNotOffered DowngradeReason = iota + 1
	// ReasonSTARTTLSRefused: the server answered STARTTLS with an error.
	ReasonSTARTTLSRefused
	// ReasonSTARTTLSInjection: the server, or someone in the path, sent
	// bytes that were not asked for around STARTTLS (response injection).
	ReasonSTARTTLSInjection
	// ReasonHandshakeFailed: the TLS handshake failed for a reason other
	// than the certificate (no common version or cipher, an alert, reset).
	ReasonHandshakeFailed
	// ReasonCertificateUntrusted: the chain does not lead to a trusted root
	// (self-signed, unknown CA, missing intermediate).
	ReasonCertificateUntrusted
	// ReasonCertificateExpired: the certificate is expired or not yet valid.
	ReasonCertificateExpired
	// ReasonCertificateHostMismatch: the certificate is not valid for the
	// host name the caller named.
	ReasonCertificateHostMismatch
	// ReasonCertificateInvalid: any other certificate failure (wrong
	// extended key usage, bad signature, malformed certificate).
	ReasonCertificateInvalid
	// ReasonPolicy: a caller's VerifyConnection hook (Dialer's or
	// TLSConfig's) rejected the server; Err is the hook's error.
	ReasonPolicy
	// ReasonDANE: the server's certificate chain does not satisfy the TLSA
	// records of Dialer.DANE; Err is the *dane.VerifyError.
	ReasonDANE
)

var reasonText = map[DowngradeReason]string{
	ReasonSTARTTLSNotOffered:      "server did not offer STARTTLS",
	ReasonSTARTTLSRefused:         "server refused STARTTLS",
	ReasonSTARTTLSInjection:       "unsolicited data around STARTTLS (response injection)",
	ReasonHandshakeFailed:         "TLS handshake failed",
	ReasonCertificateUntrusted:    "certificate not trusted",
	ReasonCertificateExpired:      "certificate expired or not yet valid",
	ReasonCertificateHostMismatch: "certificate not valid for the host name",
	ReasonCertificateInvalid:      "certificate invalid",
	ReasonPolicy:                  "server failed the TLS policy check",
	ReasonDANE:                    "certificate does not match the server's DANE TLSA records",
}

// String describes the reason in a few words.
func (r DowngradeReason) String() string {
	if s, ok := reasonText[r]; ok {
		return s
	}
	return fmt.Sprintf("DowngradeReason(%d)", int(r))
}

// RFC 8460 §4.3 result types.
const (
	ResultSTARTTLSNotSupported    = "starttls-not-supported"
	ResultCertificateHostMismatch = "certificate-host-mismatch"
	ResultCertificateExpired      = "certificate-expired"
	ResultCertificateNotTrusted   = "certificate-not-trusted"
	ResultValidationFailure       = "validation-failure"
)

// DowngradeError reports that TLS, or a verified TLS, could not be had with
// the server. Nothing but QUIT was sent after the failure, and no credential,
// envelope address or message byte was sent at all.
type DowngradeError struct {
	// Host is the server, as the caller named it.
	Host string
	// Reason says which step failed.
	Reason DowngradeReason
	// Err is the cause: the server's *SMTPError for a missing or refused
	// STARTTLS, the x509 or TLS error for a failed handshake (reachable with
	// errors.As, e.g. x509.HostnameError or tls.AlertError), the
	// *dane.VerifyError, or the VerifyConnection hook's error.
	Err error

	dropIn bool // from SendMail, whose callers have no Dialer
}

// Error says what failed, where, and what the caller can do.
func (e *DowngradeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "smtpsecure: %s: %s", e.Host, e.Reason)
	var se *SMTPError
	switch {
	case e.Err == nil:
	case e.Reason == ReasonSTARTTLSRefused && errors.As(e.Err, &se):
		b.WriteString(": ")
		b.WriteString(se.reply())
	default:
		b.WriteString(": ")
		b.WriteString(nested(e.Err, e.Host))
	}
	b.WriteString(e.advice())
	return b.String()
}

// advice says what the caller can do, after a "; ".
func (e *DowngradeError) advice() string {
	switch e.Reason {
	case ReasonSTARTTLSNotOffered, ReasonSTARTTLSRefused:
		return "; nothing was sent in the clear (a network attacker can strip STARTTLS; use implicit TLS on port 465 if the server has it)"
	case ReasonSTARTTLSInjection:
		return "; the connection was closed (this is the signature of a man-in-the-middle attack)"
	case ReasonCertificateUntrusted:
		if e.dropIn {
			return "; SendMail verifies against the system's roots only: add the server's CA to the system's trust store (or point SSL_CERT_FILE at it), or use a Dialer with TLSConfig.RootCAs"
		}
		return "; check the server's chain, or add its CA to Dialer.TLSConfig.RootCAs"
	case ReasonCertificateHostMismatch:
		return "; connect to a name the certificate is issued for"
	case ReasonHandshakeFailed:
		var rh tls.RecordHeaderError
		if errors.As(e.Err, &rh) {
			return "; the server does not speak TLS first on this port: it probably expects STARTTLS (port 587 or 25)"
		}
	}
	return ""
}

// Unwrap returns ErrDowngrade and the cause.
func (e *DowngradeError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrDowngrade}
	}
	return []error{ErrDowngrade, e.Err}
}

// ReportResultType returns the RFC 8460 result type for a TLS report:
// starttls-not-supported, certificate-host-mismatch, certificate-expired,
// certificate-not-trusted, or validation-failure. A verifier error that
// carries its own type (DANE's tlsa-invalid or dnssec-invalid, say) gives it.
func (e *DowngradeError) ReportResultType() string {
	switch e.Reason {
	case ReasonSTARTTLSNotOffered, ReasonSTARTTLSRefused:
		return ResultSTARTTLSNotSupported
	case ReasonCertificateHostMismatch:
		return ResultCertificateHostMismatch
	case ReasonCertificateExpired:
		return ResultCertificateExpired
	case ReasonCertificateUntrusted:
		return ResultCertificateNotTrusted
	case ReasonPolicy, ReasonDANE:
		var r interface{ ReportResultType() string }
		if errors.As(e.Err, &r) {
			if t := r.ReportResultType(); t != "" {
				return t
			}
		}
	}
	return ResultValidationFailure
}

// classifyTLSError maps a handshake error to a downgrade reason.
func classifyTLSError(err error) DowngradeReason {
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var unknown x509.UnknownAuthorityError
	switch {
	case errors.As(err, &hostErr):
		return ReasonCertificateHostMismatch
	case errors.As(err, &invalid):
		if invalid.Reason == x509.Expired {
			return ReasonCertificateExpired
		}
		return ReasonCertificateInvalid
	case errors.As(err, &unknown):
		return ReasonCertificateUntrusted
	}
	var sysRoots x509.SystemRootsError
	if errors.As(err, &sysRoots) {
		return ReasonCertificateUntrusted
	}
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		return ReasonCertificateInvalid
	}
	return ReasonHandshakeFailed
}

// ExtensionError reports that the message or the options need an SMTP
// extension the server did not offer after TLS. Nothing of the message was
// delivered: either nothing was sent, or (for 8-bit data found while
// streaming to a server without 8BITMIME) the connection was closed before
// the end of the data.
type ExtensionError struct {
	// Host is the server, as the caller named it.
	Host string
	// Extension is the EHLO keyword that was needed ("8BITMIME",
	// "SMTPUTF8", "REQUIRETLS", "DSN", "BINARYMIME", "CHUNKING").
	Extension string
	// Why says what needed it.
	Why string
}

// Error names the server, the extension and what needed it.
func (e *ExtensionError) Error() string {
	return fmt.Sprintf("smtpsecure: %s does not offer %s, which %s; nothing was delivered", e.Host, e.Extension, e.Why)
}

// Unwrap returns ErrExtensionMissing.
func (e *ExtensionError) Unwrap() error { return ErrExtensionMissing }

// EnhancedCode returns the status a mail system would bounce with: 5.6.3 for
// 8BITMIME and BINARYMIME, 5.6.7 for SMTPUTF8, 5.7.30 for REQUIRETLS, 5.5.4
// otherwise.
func (e *ExtensionError) EnhancedCode() EnhancedCode {
	switch e.Extension {
	case "8BITMIME", "BINARYMIME":
		return CodeConversionRequired
	case "SMTPUTF8":
		return CodeNonASCIIAddresses
	case "REQUIRETLS":
		return CodeRequireTLSUnsupported
	}
	return EnhancedCode{5, 5, 4}
}

// ProtocolError reports a server that broke the SMTP protocol. The session
// is closed.
type ProtocolError struct {
	// Host is the server, as the caller named it.
	Host string
	// Op says what the client was doing ("reading the reply to EHLO").
	Op string
	// Err is the violation, one of ErrMalformedReply, ErrReplyTooLong,
	// ErrReplyTooManyLines, or a description.
	Err error
}

// Error names the host, the operation and the violation.
func (e *ProtocolError) Error() string {
	return fmt.Sprintf("smtpsecure: %s: protocol violation while %s: %s", e.Host, e.Op, nested(e.Err, e.Host))
}

// Unwrap returns ErrProtocol and the violation.
func (e *ProtocolError) Unwrap() []error { return []error{ErrProtocol, e.Err} }

// ConnError reports a network failure: the connection could not be made,
// was closed or reset, or a deadline passed. The session is closed.
type ConnError struct {
	// Host is the server, as the caller named it.
	Host string
	// Op says what the client was doing ("dial", "reading the reply to MAIL").
	Op string
	// Err is the cause (a *net.OpError, io.ErrUnexpectedEOF,
	// os.ErrDeadlineExceeded, or the context's error).
	Err error

	hint string // what the caller can do, after a "; "
}

// Error names the host, the operation and the cause.
func (e *ConnError) Error() string {
	return fmt.Sprintf("smtpsecure: %s: %s: %s%s", e.Host, e.Op, nested(e.Err, e.Host), e.hint)
}

// Unwrap returns the cause, and ErrTimeout when a deadline expired.
func (e *ConnError) Unwrap() []error {
	if e.Timeout() {
		return []error{ErrTimeout, e.Err}
	}
	return []error{e.Err}
}

// Timeout reports whether a deadline expired (not a cancellation).
func (e *ConnError) Timeout() bool {
	if errors.Is(e.Err, os.ErrDeadlineExceeded) {
		return true
	}
	var t interface{ Timeout() bool }
	return errors.As(e.Err, &t) && t.Timeout()
}

// AuthError reports that authentication did not happen.
type AuthError struct {
	// Host is the server, as the caller named it.
	Host string
	// Mechanism is the SASL mechanism tried, "" if none was.
	Mechanism string
	// Err is the cause: the server's *SMTPError (535 5.7.8, say), the
	// mechanism's error, or one of ErrInsecureAuth and ErrAuthUnavailable.
	Err error
}

// Error names the host, the mechanism and the cause.
func (e *AuthError) Error() string {
	var se *SMTPError
	switch {
	case errors.As(e.Err, &se):
		return fmt.Sprintf("smtpsecure: %s refused authentication with %s: %s", e.Host, e.Mechanism, nested(e.Err, e.Host))
	case e.Mechanism != "":
		return fmt.Sprintf("smtpsecure: %s: authentication with %s: %s", e.Host, e.Mechanism, nested(e.Err, e.Host))
	}
	return fmt.Sprintf("smtpsecure: %s: authentication: %s", e.Host, nested(e.Err, e.Host))
}

// Unwrap returns the cause, and ErrAuthFailed when the cause is not
// already ErrInsecureAuth or ErrAuthUnavailable.
func (e *AuthError) Unwrap() []error {
	if errors.Is(e.Err, ErrInsecureAuth) || errors.Is(e.Err, ErrAuthUnavailable) {
		return []error{e.Err}
	}
	return []error{ErrAuthFailed, e.Err}
}

// AddressError reports an envelope address refused before anything was
// sent: it contains CR, LF, NUL or other control characters, or is not a
// valid address.
type AddressError struct {
	// Address is the address as given.
	Address string
	// Err says what is wrong with it.
	Err error
}

// Error quotes the address and says what is wrong with it.
func (e *AddressError) Error() string {
	return fmt.Sprintf("smtpsecure: envelope address %q refused: %v", e.Address, e.Err)
}

// Unwrap returns ErrInvalidAddress and the cause.
func (e *AddressError) Unwrap() []error { return []error{ErrInvalidAddress, e.Err} }

// UncertainDeliveryError reports a connection that failed after the whole
// message was sent and before the server's final reply. The server may have
// accepted the message: resending risks a duplicate, not resending risks a
// loss. Callers that must not lose mail resend; callers that must not
// duplicate it check the recipient side first.
type UncertainDeliveryError struct {
	// Host is the server, as the caller named it.
	Host string
	// Recipients lists the recipients the server had accepted: only they
	// may have received the message. Nil when the error comes from a Data
	// writer, whose recipients the caller knows.
	Recipients []string
	// Err is the network error that ended the session.
	Err error
}

// Error says that delivery is uncertain and why.
func (e *UncertainDeliveryError) Error() string {
	return fmt.Sprintf("smtpsecure: %s: connection failed after the end of the message and before the server's reply, so it may or may not have been delivered: %s", e.Host, nested(e.Err, e.Host))
}

// Unwrap returns ErrDeliveryUncertain and the cause.
func (e *UncertainDeliveryError) Unwrap() []error { return []error{ErrDeliveryUncertain, e.Err} }

// RecipientError is the server's refusal of one recipient.
type RecipientError struct {
	// Recipient is the address as the caller gave it.
	Recipient string
	// Err is the server's reply to RCPT TO.
	Err *SMTPError
}

// Error names the recipient and the server's reply.
func (e *RecipientError) Error() string {
	return fmt.Sprintf("recipient %s: %d %s", e.Recipient, e.Err.Code, e.Err.Message())
}

// Unwrap returns the server's reply.
func (e *RecipientError) Unwrap() error { return e.Err }

// RecipientsError reports that the message was delivered to nobody
// because of the recipients the server refused: all of them, or, with
// Envelope.AllOrNothing (and in the net/smtp drop-in SendMail), at least
// one. A message delivered to some recipients is no error: Send's result
// lists the refused ones.
type RecipientsError struct {
	// Host is the server, as the caller named it.
	Host string
	// Rejected lists the refused recipients in the order given.
	Rejected []*RecipientError
}

// Error lists the refused recipients and says that nobody got the message.
func (e *RecipientsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "smtpsecure: %s refused %d recipient(s), so the message was sent to nobody", e.Host, len(e.Rejected))
	for i, r := range e.Rejected {
		if i == 10 {
			fmt.Fprintf(&b, "; and %d more", len(e.Rejected)-i)
			break
		}
		b.WriteString("; ")
		b.WriteString(r.Error())
	}
	return b.String()
}

// Unwrap returns ErrRecipientsRejected and each recipient's error.
func (e *RecipientsError) Unwrap() []error {
	errs := make([]error, 0, len(e.Rejected)+1)
	errs = append(errs, ErrRecipientsRejected)
	for _, r := range e.Rejected {
		errs = append(errs, r)
	}
	return errs
}

// Temporary reports whether every refusal was transient (4xx), so the
// refused recipients may be retried later.
func (e *RecipientsError) Temporary() bool {
	for _, r := range e.Rejected {
		if !r.Err.Temporary() {
			return false
		}
	}
	return len(e.Rejected) > 0
}

// MessageError reports that the caller's message reader failed while the
// message was being sent. The session was closed before the end of the
// data, so the server discards what it got: nothing was delivered.
type MessageError struct {
	// Host is the server, as the caller named it.
	Host string
	// Err is the reader's error.
	Err error
}

// Error says that reading the message failed and that nothing was
// delivered.
func (e *MessageError) Error() string {
	return fmt.Sprintf("smtpsecure: %s: reading the message failed, so the session was closed before the end of the data and nothing was delivered: %s", e.Host, nested(e.Err, e.Host))
}

// Unwrap returns ErrMessageRead and the reader's error.
func (e *MessageError) Unwrap() []error { return []error{ErrMessageRead, e.Err} }

// closedError is what every call on a Client returns after an error ended
// the session: it matches ErrClientClosed and the error that ended it,
// and says that the session closed earlier rather than dressing that
// error up as this call's.
type closedError struct{ ended error }

// Error says that the session closed earlier, and why.
func (e *closedError) Error() string {
	return "smtpsecure: session closed earlier: " + strings.TrimPrefix(e.ended.Error(), "smtpsecure: ")
}

// Unwrap returns ErrClientClosed and the error that ended the session. An
// *UncertainDeliveryError is given as its network cause: the uncertainty is
// about the earlier message, and a later call's message was not sent at
// all.
func (e *closedError) Unwrap() []error {
	var ue *UncertainDeliveryError
	if errors.As(e.ended, &ue) {
		return []error{ErrClientClosed, ue.Err}
	}
	return []error{ErrClientClosed, e.ended}
}

// closedErr returns the error of a call on a session that has ended.
func (c *Client) closedErr() error {
	if c.err == ErrClientClosed {
		return fmt.Errorf("smtpsecure: %s: %w (Close or Quit was called)", c.host, ErrClientClosed)
	}
	return &closedError{ended: c.err}
}

// nested returns the message of err, the cause inside an error of this
// package about host, without what the outer message already says: the
// "smtpsecure: " prefix and the host of an error of this package, and,
// for a server's reply, everything but the reply itself.
func nested(err error, host string) string {
	msg := err.Error()
	var se *SMTPError
	if errors.As(err, &se) {
		msg = strings.Replace(msg, se.Error(), se.reply(), 1)
	}
	if rest, ok := strings.CutPrefix(msg, "smtpsecure: "); ok {
		msg = rest
		if rest, ok := strings.CutPrefix(msg, host+": "); ok {
			msg = rest
		}
	}
	return msg
}
