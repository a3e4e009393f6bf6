package scram

import (
	"crypto/tls"
	"fmt"
)

// TLSExporterType is the channel binding type of RFC 9266, the one to use with
// TLS 1.3 (and TLS 1.2 with the extended master secret).
const TLSExporterType = "tls-exporter"

// tlsExporterLabel and tlsExporterLength are the RFC 9266 section 2 exporter
// inputs; the context is the empty (zero-length, not absent) string.
const (
	tlsExporterLabel  = "EXPORTER-Channel-Binding"
	tlsExporterLength = 32
)

// ChannelBinding ties the SCRAM exchange to one TLS connection (RFC 5056): both
// ends compute it from their own view of the connection, and a man in the
// middle who terminates TLS sees different values on his two connections, so
// the client's proof does not verify at the real server.
type ChannelBinding struct {
	// Type is the channel binding type name sent in the GS2 header, normally
	// TLSExporterType.
	Type string
	// Data is the binding data; for "tls-exporter" the 32 bytes returned by
	// TLSExporter.
	Data []byte
}

// TLSExporter returns the "tls-exporter" channel binding (RFC 9266) of a
// completed TLS connection: 32 bytes exported with the label
// "EXPORTER-Channel-Binding" and an empty context.
//
// It fails, wrapping ErrChannelBinding, when the handshake is not complete,
// for versions below TLS 1.2, and for TLS 1.2 without the extended master
// secret (RFC 7627), where the exported value would not be unique to the
// connection. (crypto/tls refuses that export unless GODEBUG=tlsunsafeekm=1
// is set; do not set it.) RFC 9266 also forbids the binding where TLS
// renegotiation is enabled; crypto/tls clients never renegotiate unless
// tls.Config.Renegotiation says so.
//
// When it fails, authenticate with SCRAM-SHA-256 (not -PLUS) and pass
// clientCouldBind=false to NewClient.
func TLSExporter(cs *tls.ConnectionState) (cb *ChannelBinding, err error) {
	if cs == nil || !cs.HandshakeComplete {
		return nil, fmt.Errorf("%w: TLS handshake not complete", ErrChannelBinding)
	}
	if cs.Version < tls.VersionTLS12 {
		return nil, fmt.Errorf("%w: %s has no usable tls-exporter binding", ErrChannelBinding, tls.VersionName(cs.Version))
	}
	defer func() {
		// A ConnectionState not made by crypto/tls has no exporter function.
		if recover() != nil {
			cb, err = nil, fmt.Errorf("%w: connection state has no keying material exporter", ErrChannelBinding)
		}
	}()
	// []byte{} and not nil: in TLS 1.2 an absent context and an empty one give
	// different keys (RFC 5705), and RFC 9266 specifies the empty context.
	data, err := cs.ExportKeyingMaterial(tlsExporterLabel, []byte{}, tlsExporterLength)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrChannelBinding, tls.VersionName(cs.Version), err)
	}
	return &ChannelBinding{Type: TLSExporterType, Data: data}, nil
}

// validCBName reports whether s is an RFC 5802 cb-name: 1*(ALPHA / DIGIT / "." / "-").
func validCBName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !(c >= '0' && c <= '9') && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') }
