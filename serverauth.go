package smtpsecure

import "strconv"

// ServerAuth says how the server of a session was authenticated.
type ServerAuth int

const (
	// ServerAuthNone: the server was not authenticated. The session is in
	// plaintext, or TLS without a verified certificate; only an Insecure
	// option leads here.
	ServerAuthNone ServerAuth = iota
	// ServerAuthWebPKI: the certificate chain leads to a trusted root
	// (the system's, or TLSConfig.RootCAs) and is valid for the host name.
	ServerAuthWebPKI
	// ServerAuthDANEEE: a DANE-EE(3) TLSA record of Dialer.DANE matched the
	// server's certificate or key (RFC 7672 §3.1.1); names and dates are
	// not checked.
	ServerAuthDANEEE
	// ServerAuthDANETA: a DANE-TA(2) TLSA record of Dialer.DANE named a
	// trust anchor of a valid chain for one of the verifier's reference
	// identifiers (RFC 7672 §3.1.2).
	ServerAuthDANETA
)

// String returns "none", "Web PKI", "DANE-EE" or "DANE-TA".
func (a ServerAuth) String() string {
	switch a {
	case ServerAuthNone:
		return "none"
	case ServerAuthWebPKI:
		return "Web PKI"
	case ServerAuthDANEEE:
		return "DANE-EE"
	case ServerAuthDANETA:
		return "DANE-TA"
	}
	return "ServerAuth(" + strconv.Itoa(int(a)) + ")"
}

// DANE reports whether the server was authenticated by DANE TLSA records.
func (a ServerAuth) DANE() bool { return a == ServerAuthDANEEE || a == ServerAuthDANETA }
