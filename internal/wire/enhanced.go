package wire

import "strconv"

// EnhancedCode is an RFC 3463 enhanced mail system status code,
// class.subject.detail, such as 5.7.8 (authentication credentials invalid).
// The zero value means "no code".
type EnhancedCode struct {
	Class   int // 2 success, 4 persistent transient failure, 5 permanent failure
	Subject int // 0-999; 7 is security or policy status
	Detail  int // 0-999
}

// ParseEnhancedCode reads an enhanced status code at the start of text, as it
// appears after the reply code when the server offers ENHANCEDSTATUSCODES
// (RFC 2034 §4): "5.7.8 Bad creds" gives {5, 7, 8}, "Bad creds" and true.
//
// The class must be 2, 4 or 5 and subject and detail 1 to 3 digits each
// (RFC 3463 §2); the code must be followed by SP or HTAB or end the text.
// rest is the text after the code with the blanks that follow it removed. On
// failure ParseEnhancedCode returns the zero code, text unchanged and false.
func ParseEnhancedCode(text string) (code EnhancedCode, rest string, ok bool) {
	if len(text) < 5 || (text[0] != '2' && text[0] != '4' && text[0] != '5') || text[1] != '.' {
		return EnhancedCode{}, text, false
	}
	subject, i, ok := parseNum3(text, 2)
	if !ok || i >= len(text) || text[i] != '.' {
		return EnhancedCode{}, text, false
	}
	detail, j, ok := parseNum3(text, i+1)
	if !ok {
		return EnhancedCode{}, text, false
	}
	if j < len(text) && text[j] != ' ' && text[j] != '\t' {
		return EnhancedCode{}, text, false
	}
	for j < len(text) && (text[j] == ' ' || text[j] == '\t') {
		j++
	}
	return EnhancedCode{Class: int(text[0] - '0'), Subject: subject, Detail: detail}, text[j:], true
}

// parseNum3 reads 1 to 3 digits of s from i and returns the value and the
// index after them.
func parseNum3(s string, i int) (int, int, bool) {
	v, start := 0, i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		if i-start == 3 {
			return 0, 0, false
		}
		v = v*10 + int(s[i]-'0')
		i++
	}
	return v, i, i > start
}

// String returns the code as "5.7.8", or "" for the zero value.
func (c EnhancedCode) String() string {
	if c.IsZero() {
		return ""
	}
	return strconv.Itoa(c.Class) + "." + strconv.Itoa(c.Subject) + "." + strconv.Itoa(c.Detail)
}

// IsZero reports whether c is the zero value, meaning no code.
func (c EnhancedCode) IsZero() bool { return c == EnhancedCode{} }

// Known reports whether c has a valid class (2, 4 or 5) and its
// subject.detail is in the IANA "SMTP Enhanced Status Codes" registry
// (RFC 5248 and the RFCs that added codes since).
func (c EnhancedCode) Known() bool {
	return validClass(c.Class) && c.Description() != ""
}

// Normalized returns c with subject and detail replaced by 0.0 if they are not
// in the registry, as RFC 3463 §2 asks of a client that meets a code it does
// not know: 5.7.99 becomes 5.0.0, 4.9.1 becomes 4.0.0, and 5.7.8 stays. A
// code with an invalid class, and the zero value, give the zero value.
func (c EnhancedCode) Normalized() EnhancedCode {
	if !validClass(c.Class) {
		return EnhancedCode{}
	}
	if !c.Known() {
		return EnhancedCode{Class: c.Class}
	}
	return c
}

// Description returns the registry's meaning of c's subject.detail in a few
// words, such as "authentication credentials invalid" for X.7.8, or "" if it
// is not registered.
func (c EnhancedCode) Description() string {
	if c.Subject < 0 || c.Subject >= len(registry) {
		return ""
	}
	d := registry[c.Subject]
	if c.Detail < 0 || c.Detail >= len(d) {
		return ""
	}
	return d[c.Detail]
}

func validClass(class int) bool { return class == 2 || class == 4 || class == 5 }

// registry holds the subject.detail codes of the IANA SMTP Enhanced Status
// Codes registry, indexed by subject and detail. Sources: RFC 3463 (the base
// set), RFC 3886 (X.1.9), RFC 4468 (X.6.6), RFC 4954 (X.5.6, X.7.8, X.7.9,
// X.7.11, X.7.12), RFC 5248 (X.7.10, X.7.13, X.7.14), RFC 6531 and RFC 6533
// (X.6.7 to X.6.10), RFC 6710 (X.3.6, X.7.15, X.7.16), RFC 7293 (X.7.17 to
// X.7.19), RFC 7372 (X.7.20 to X.7.26), RFC 7505 (X.1.10, X.7.27), the
// registry's X.7.28, RFC 8617 (X.7.29) and RFC 8689 (X.7.30).
var registry = [8][]string{
	0: {
		0: "other undefined status",
	},
	1: {
		0:  "other address status",
		1:  "bad destination mailbox address",
		2:  "bad destination system address",
		3:  "bad destination mailbox address syntax",
		4:  "destination mailbox address ambiguous",
		5:  "destination address valid",
		6:  "destination mailbox has moved, no forwarding address",
		7:  "bad sender's mailbox address syntax",
		8:  "bad sender's system address",
		9:  "message relayed to non-compliant mailer",
		10: "recipient address has null MX",
	},
	2: {
		0: "other or undefined mailbox status",
		1: "mailbox disabled, not accepting messages",
		2: "mailbox full",
		3: "message length exceeds administrative limit",
		4: "mailing list expansion problem",
	},
	3: {
		0: "other or undefined mail system status",
		1: "mail system full",
		2: "system not accepting network messages",
		3: "system not capable of selected features",
		4: "message too big for system",
		5: "system incorrectly configured",
		6: "requested priority was changed",
	},
	4: {
		0: "other or undefined network or routing status",
		1: "no answer from host",
		2: "bad connection",
		3: "directory server failure",
		4: "unable to route",
		5: "mail system congestion",
		6: "routing loop detected",
		7: "delivery time expired",
	},
	5: {
		0: "other or undefined protocol status",
		1: "invalid command",
		2: "syntax error",
		3: "too many recipients",
		4: "invalid command arguments",
		5: "wrong protocol version",
		6: "authentication exchange line is too long",
	},
	6: {
		0:  "other or undefined media error",
		1:  "media not supported",
		2:  "conversion required and prohibited",
		3:  "conversion required but not supported",
		4:  "conversion with loss performed",
		5:  "conversion failed",
		6:  "message content not available",
		7:  "non-ASCII addresses not permitted for that sender or recipient",
		8:  "UTF-8 string reply is required, but not permitted by the client",
		9:  "UTF-8 header message cannot be transferred to one or more recipients",
		10: "UTF-8 message cannot be transferred to one or more recipients",
	},
	7: {
		0:  "other or undefined security status",
		1:  "delivery not authorized, message refused",
		2:  "mailing list expansion prohibited",
		3:  "security conversion required but not possible",
		4:  "security features not supported",
		5:  "cryptographic failure",
		6:  "cryptographic algorithm not supported",
		7:  "message integrity failure",
		8:  "authentication credentials invalid",
		9:  "authentication mechanism is too weak",
		10: "encryption needed",
		11: "encryption required for requested authentication mechanism",
		12: "a password transition is needed",
		13: "user account disabled",
		14: "trust relationship required",
		15: "priority level is too low",
		16: "message is too big for the specified priority",
		17: "mailbox owner has changed",
		18: "domain owner has changed",
		19: "RRVS test cannot be completed",
		20: "no passing DKIM signature found",
		21: "no acceptable DKIM signature found",
		22: "no valid author-matched DKIM signature found",
		23: "SPF validation failed",
		24: "SPF validation error",
		25: "reverse DNS validation failed",
		26: "multiple authentication checks failed",
		27: "sender address has null MX",
		28: "mail flood detected",
		29: "ARC validation failure",
		30: "REQUIRETLS support required",
	},
}
