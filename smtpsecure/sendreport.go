package main

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"

	"github.com/smtpsecure/smtpsecure"
)

// sendReport is what send prints with --json, one object per message. Its
// shape is stable: fields are added, never renamed or removed.
type sendReport struct {
	// Status is "sent" (the server accepted the message for every
	// recipient) or "failed" (it was delivered to nobody; see Error).
	Status string `json:"status"`
	// ExitCode is the command's exit code (sysexits.h).
	ExitCode int `json:"exit_code"`
	// Error says what failed; absent when Status is "sent".
	Error string `json:"error,omitempty"`
	// Account is the msmtp account used; absent with --host.
	Account string `json:"account,omitempty"`
	// Server is the submission server, "host:port".
	Server string `json:"server"`
	// From is the envelope sender.
	From string `json:"from"`
	// Size is the size of the message sent, in octets (CRLF line ends,
	// with any DKIM-Signature).
	Size int `json:"size"`
	// TLS describes the session's TLS; absent when no session was set up
	// or it was plaintext.
	TLS *tlsReport `json:"tls,omitempty"`
	// AuthMechanism is the SASL mechanism used, absent without AUTH.
	AuthMechanism string `json:"auth_mechanism,omitempty"`
	// DKIM describes the signature added, absent without --dkim-….
	DKIM *dkimReport `json:"dkim,omitempty"`
	// Recipients is the outcome for each recipient, in the order given.
	Recipients []recipientReport `json:"recipients"`
	// Reply is the server's reply to the message (it often carries the
	// queue ID); absent when the message was not accepted.
	Reply string `json:"reply,omitempty"`

	// Result is what the library returned, nil before the transaction.
	Result *smtpsecure.SendResult `json:"-"`
	// QuitError is a failed QUIT after the message was accepted.
	QuitError string `json:"-"`
}

// tlsReport describes a TLS session.
type tlsReport struct {
	Version  string `json:"version"`     // "TLS 1.3"
	Cipher   string `json:"cipher"`      // "TLS_AES_128_GCM_SHA256"
	Verified bool   `json:"verified"`    // the certificate was verified
	Server   string `json:"server_name"` // the name the certificate was checked for (SNI)
	// ServerAuth says how the server was authenticated: "Web PKI",
	// "DANE-EE", "DANE-TA" or "none".
	ServerAuth string `json:"server_auth"`
}

// dkimReport describes a DKIM signature.
type dkimReport struct {
	Domain    string `json:"domain"`
	Selector  string `json:"selector"`
	Algorithm string `json:"algorithm"` // "rsa-sha256" or "ed25519-sha256"
}

// recipientReport is the outcome for one recipient.
type recipientReport struct {
	Address string `json:"address"`
	// Status is "delivered" (the server accepted the message for the
	// recipient), "refused" (the server refused the recipient; Code,
	// EnhancedCode and Reply say how) or "not_delivered" (the message
	// went to nobody because of another failure).
	Status       string `json:"status"`
	Code         int    `json:"code,omitempty"`
	EnhancedCode string `json:"enhanced_code,omitempty"`
	Reply        string `json:"reply,omitempty"`
}

// session records the TLS and AUTH of an established session.
func (r *sendReport) session(cl *smtpsecure.Client) {
	if cs, ok := cl.TLSConnectionState(); ok {
		r.TLS = describeTLS(cs, cl.Verified())
		r.TLS.ServerAuth = cl.ServerAuth().String()
	}
	r.AuthMechanism = cl.AuthMechanism()
}

func describeTLS(cs tls.ConnectionState, verified bool) *tlsReport {
	return &tlsReport{
		Version:  tls.VersionName(cs.Version),
		Cipher:   tls.CipherSuiteName(cs.CipherSuite),
		Verified: verified,
		Server:   cs.ServerName,
	}
}

// finish sets the status and the per-recipient outcome from the result of
// the transaction and its error.
func (r *sendReport) finish(rcpts []string, err error) {
	r.Status, r.ExitCode = "sent", exitOK
	if err != nil {
		r.Status, r.ExitCode, r.Error = "failed", exitCode(err), commandMessage(err)
	}
	refused := map[string]*smtpsecure.RecipientError{}
	var rerr *smtpsecure.RecipientsError
	if errors.As(err, &rerr) {
		for _, re := range rerr.Rejected {
			refused[re.Recipient] = re
		}
	}
	if r.Result != nil {
		for _, re := range r.Result.Rejected {
			refused[re.Recipient] = re
		}
		if err == nil {
			r.Reply = r.Result.Reply
		}
	}
	r.Recipients = make([]recipientReport, 0, len(rcpts))
	for _, a := range rcpts {
		rr := recipientReport{Address: a, Status: "not_delivered"}
		switch re := refused[a]; {
		case re != nil:
			rr.Status = "refused"
			if re.Err != nil {
				rr.Code, rr.Reply = re.Err.Code, re.Err.Message()
				rr.EnhancedCode = re.Err.Enhanced.String()
			}
		case err == nil && r.Result != nil && slices.Contains(r.Result.Accepted, a):
			rr.Status = "delivered"
		}
		r.Recipients = append(r.Recipients, rr)
	}
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return codef(exitIOErr, "writing the JSON result: %v", err)
	}
	return nil
}

// classify maps the library's errors to sysexits codes: a refused secure
// session or failed authentication is 77, a refused recipient 67, a
// permanent refusal 69, a temporary one or a network failure 75, a broken
// protocol 76, a bad address 65 and a bad configuration 78.
func classify(err error) (int, bool) {
	var (
		dg  *smtpsecure.DowngradeError
		ae  *smtpsecure.AuthError
		re  *smtpsecure.RecipientsError
		se  *smtpsecure.SMTPError
		ee  *smtpsecure.ExtensionError
		pe  *smtpsecure.ProtocolError
		ce  *smtpsecure.ConnError
		ue  *smtpsecure.UncertainDeliveryError
		ad  *smtpsecure.AddressError
		sig *smtpsecure.SignError
		dns *net.DNSError
	)
	switch {
	case errors.As(err, &dg):
		return exitNoPerm, true
	case errors.As(err, &ae):
		if errors.As(err, &se) && se.Temporary() {
			return exitTempFail, true
		}
		if errors.Is(err, smtpsecure.ErrAuthUnavailable) {
			return exitUnavailable, true
		}
		return exitNoPerm, true
	case errors.As(err, &re):
		if re.Temporary() {
			return exitTempFail, true
		}
		return exitNoUser, true
	case errors.As(err, &ue):
		return exitTempFail, true
	case errors.As(err, &ee):
		return exitUnavailable, true
	case errors.As(err, &ad):
		return exitDataErr, true
	case errors.Is(err, smtpsecure.ErrInvalidOptions):
		return exitConfig, true
	case errors.As(err, &sig):
		// The message cannot be signed as it is (no From field, no end
		// to its header); a wrong key or flag matched the case above.
		return exitDataErr, true
	case errors.Is(err, smtpsecure.ErrMessageTooLarge):
		return exitUnavailable, true
	case errors.As(err, &se):
		if se.Temporary() {
			return exitTempFail, true
		}
		return exitUnavailable, true
	case errors.As(err, &pe):
		return exitProtocol, true
	case errors.As(err, &dns) && dns.IsNotFound:
		return exitNoHost, true
	case errors.As(err, &ce):
		return exitTempFail, true
	}
	return 0, false
}

// printPretend prints the settings send would use, as msmtp -P does; the
// password is never shown.
func printPretend(w io.Writer, c *submitConfig) {
	p := func(k, v string) { fmt.Fprintf(w, "%-17s = %s\n", k, v) }
	p("loaded file", c.Source)
	if c.Account != "" {
		p("account", c.Account)
	}
	p("host", c.Host)
	p("port", fmt.Sprint(c.Port))
	switch {
	case c.Plaintext:
		p("tls", "off (plaintext, allowed by --insecure-plaintext)")
	case c.ImplicitTLS:
		p("tls", "implicit TLS")
	default:
		p("tls", "STARTTLS, required")
	}
	if !c.Plaintext {
		trust := "system roots"
		if c.TrustFile != "" {
			trust = c.TrustFile
		}
		if c.SkipVerify {
			trust = "none: any certificate (allowed by --insecure-skip-verify)"
		}
		p("tls_trust_file", trust)
		if c.ServerName != "" {
			p("tls_host_override", c.ServerName)
		}
		if c.CertFile != "" {
			p("tls_cert_file", c.CertFile)
			p("tls_key_file", c.KeyFile)
		}
	}
	if c.LocalName != "" {
		p("domain", c.LocalName)
	}
	if c.Timeout > 0 {
		p("timeout", c.Timeout.String())
	}
	auth := "off"
	if c.Auth != "" {
		auth = c.Auth
	}
	p("auth", auth)
	if c.Auth != "" {
		p("user", c.User)
		pw := "none"
		if c.Password.kind != secretNone {
			pw = "* (from " + c.Password.String() + ")"
		}
		p("password", pw)
	}
	p("from", c.From)
	if c.DSNNotify != "" {
		p("dsn_notify", c.DSNNotify)
	}
	if c.DSNReturn != "" {
		p("dsn_return", c.DSNReturn)
	}
	p("set_from_header", c.SetFromHeader)
	p("set_date_header", c.SetDateHeader)
	p("set_msgid_header", c.SetMsgIDHeader)
	p("remove_bcc_headers", onOffString(c.RemoveBcc))
	if c.Undisclosed {
		p("undisclosed_recipients", "on")
	}
	if c.Logfile != "" {
		p("logfile", c.Logfile)
	}
}

func onOffString(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// quoteList joins addresses for log lines.
func quoteList(list []string) string { return strings.Join(list, ",") }
