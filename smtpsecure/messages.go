package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/smtpsecure/smtpsecure"
)

// commandMessage returns the text of an error for the command's users. The
// library's messages advise Go programmers (Dialer fields); where the
// advice differs for someone running the command, it is said in the
// command's terms: configuration commands and flags.
func commandMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "smtpsecure: ")
	var se *smtpsecure.SignError
	if errors.As(err, &se) {
		// The DKIM signer's fields are the command's flags.
		return dkimFlagNames.Replace(msg)
	}
	var dg *smtpsecure.DowngradeError
	if !errors.As(err, &dg) {
		return msg
	}
	var advice string
	switch dg.Reason {
	case smtpsecure.ReasonCertificateUntrusted:
		advice = "name the server's CA in the account's tls_trust_file (or --tls-trust-file); nothing was sent"
	case smtpsecure.ReasonCertificateHostMismatch:
		advice = "connect by a name the certificate has, or name it with tls_host_override; nothing was sent"
	case smtpsecure.ReasonCertificateExpired:
		advice = "the server's certificate must be renewed; nothing was sent"
	default:
		return msg
	}
	return fmt.Sprintf("%s: %s: %v; %s", dg.Host, dg.Reason, dg.Err, advice)
}

// dkimFlagNames names the fields of smtpsecure.DKIMSigner as the flags that
// set them.
var dkimFlagNames = strings.NewReplacer(
	"DKIMSigner.Domain", "--dkim-domain",
	"DKIMSigner.Selector", "--dkim-selector",
	"DKIMSigner.Key", "--dkim-key",
)
