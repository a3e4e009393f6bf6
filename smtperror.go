package smtpsecure

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/smtpsecure/smtpsecure/internal/wire"
)

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
