package scram

import (
	"errors"
	"fmt"
)

// Errors returned by the client and the server. They are wrapped with context
// (which message, which attribute), so test them with errors.Is. None of them
// ever carries a password, a key or a proof.
var (
	// ErrMalformed means a message does not follow the RFC 5802 syntax.
	ErrMalformed = errors.New("scram: malformed message")

	// ErrNonce means the nonce in a message does not continue the exchange:
	// the server's nonce does not start with the client's, adds nothing to it,
	// or the client-final-message repeats a different nonce.
	ErrNonce = errors.New("scram: nonce mismatch")

	// ErrIterationCount means the server asked for an iteration count outside
	// [MinIterations, MaxIterations]: too few weakens the stored verifier, too
	// many lets a hostile server burn the client's CPU.
	ErrIterationCount = errors.New("scram: iteration count out of bounds")

	// ErrExtension means a message carries the reserved mandatory extension
	// attribute "m", which RFC 5802 section 5.1 says must fail authentication.
	ErrExtension = errors.New("scram: unsupported mandatory extension")

	// ErrServerSignature means the server-final-message did not prove that
	// the server knows the password: its verifier is wrong or missing. The
	// server may be an impostor; do not send mail through it.
	ErrServerSignature = errors.New("scram: server signature does not verify")

	// ErrIncomplete means the exchange did not reach a verified
	// server-final-message (see Client.Complete).
	ErrIncomplete = errors.New("scram: exchange incomplete, server not verified")

	// ErrChannelBinding means the channel binding is unusable or does not
	// match: no exporter for this TLS connection, a different binding type, or
	// binding data that differs between the two ends (a man in the middle
	// terminating TLS).
	ErrChannelBinding = errors.New("scram: channel binding failed")

	// ErrChannelBindingDowngrade means the client said it could bind ("y")
	// while the server does offer SCRAM-SHA-256-PLUS: somebody removed the
	// -PLUS mechanism from the server's list (RFC 5802 section 6).
	ErrChannelBindingDowngrade = errors.New("scram: channel binding downgrade detected")

	// ErrInvalidProof means the client's proof is wrong: a wrong password.
	ErrInvalidProof = errors.New("scram: invalid client proof")

	// ErrUnknownUser means the server has no credentials for the user.
	ErrUnknownUser = errors.New("scram: unknown user")

	// ErrAuthorization means the client asked to act as another identity
	// (authzid) than the one it authenticates as; the server here refuses that.
	ErrAuthorization = errors.New("scram: authorization identity not permitted")

	// ErrSASLprep means a user name, password or authorization identity cannot
	// be prepared with SASLprep (RFC 4013): it has a prohibited character, mixes
	// text directions, or is not valid UTF-8.
	ErrSASLprep = errors.New("scram: SASLprep failed")

	// ErrSASLprepUnsupported means the string holds characters this package's
	// SASLprep does not normalise (see the package documentation). It wraps
	// ErrSASLprep. Authenticate with another mechanism, or use the
	// precomposed (NFC) form of accented letters.
	ErrSASLprepUnsupported = fmt.Errorf("%w: unsupported character", ErrSASLprep)

	errProhibited = fmt.Errorf("%w: prohibited character", ErrSASLprep)
	errBidi       = fmt.Errorf("%w: bidirectional rule", ErrSASLprep)
)

// ServerError is the server's own reason for failing the exchange, sent as the
// "e=" attribute of the server-final-message (RFC 5802 section 7), for example
// "invalid-proof" or "channel-bindings-dont-match".
type ServerError struct {
	// Value is the server-error-value as received.
	Value string
}

// Error returns the server's reason, quoted.
func (e *ServerError) Error() string {
	return fmt.Sprintf("scram: server failed the authentication: %q", e.Value)
}
