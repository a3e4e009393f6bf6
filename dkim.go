package smtpsecure

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/smtpsecure/smtpsecure/internal/idn"
)

// DKIMSigner signs messages with DKIM (RFC 6376), as a MessageSigner for
// Deliverer.Signer and SignMessage: it adds one DKIM-Signature field, made
// with github.com/emersion/go-msgauth/dkim, rsa-sha256 or ed25519-sha256
// (RFC 8463) as Key is RSA or Ed25519, with relaxed/relaxed
// canonicalization and no body length limit. Receivers verify it with the
// public key published in DNS at Selector._domainkey.Domain:
//
//	mail._domainkey.example.org. TXT "v=DKIM1; k=ed25519; p=<base64 of the 32-octet public key>"
//	rsa._domainkey.example.org.  TXT "v=DKIM1; k=rsa; p=<base64 of the DER SubjectPublicKeyInfo>"
//
// Its fields are checked at each Sign; a mistake is an error matching
// ErrInvalidOptions. A DKIMSigner may be used by several goroutines at once.
type DKIMSigner struct {
	// Domain is the signing domain (d=), where the public key is
	// published; U-labels are signed as A-labels.
	Domain string
	// Selector (s=) names the key among the domain's keys.
	Selector string
	// Key is the private key: an *rsa.PrivateKey of at least 1024 bits
	// (RFC 8301; 2048 is recommended), an ed25519.PrivateKey, or any
	// crypto.Signer whose public key is one of those (a key in a hardware
	// module, say).
	Key crypto.Signer
	// HeaderFields names the header fields to sign (h=), in order, From
	// among them. Nil signs those RFC 6376 §5.4.1 recommends, and
	// Message-ID, MIME-Version, Content-Type and Content-Transfer-Encoding,
	// so that none of them can be changed or added: each that the message
	// has, as often as it has it, and From always. A list given here is
	// signed as given: a name listed more often than the message has the
	// field also forbids adding one (RFC 6376 §8.15).
	HeaderFields []string
}

// dkimDefaultFields are the fields signed by default, when present.
var dkimDefaultFields = []string{
	"From", "Reply-To", "Subject", "Date", "To", "Cc",
	"Resent-Date", "Resent-From", "Resent-To", "Resent-Cc",
	"In-Reply-To", "References",
	"List-Id", "List-Help", "List-Unsubscribe", "List-Subscribe", "List-Post", "List-Owner", "List-Archive",
	"Message-ID", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
}

// Limits of what DKIMSigner reads of a header to choose the fields to
// sign.
const (
	maxDKIMHeader       = 1 << 20
	minDKIMRSABits      = 1024
	dkimCopyBufferBytes = 32 << 10
)

// Sign reads the message and returns its DKIM-Signature field. It reads
// the header into memory (at most 1 MiB) to choose the fields to sign, and
// streams the body through the hash. A message without a From field, or
// without an empty line after its header, cannot be signed.
func (s *DKIMSigner) Sign(ctx context.Context, msg io.Reader) ([]byte, error) {
	opts, err := s.options()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(msg, 64<<10)
	header, names, err := readDKIMHeader(br)
	if err != nil {
		return nil, fmt.Errorf("DKIM (d=%s, s=%s): %w", opts.Domain, opts.Selector, err)
	}
	if s.HeaderFields == nil {
		opts.HeaderKeys = defaultDKIMKeys(names)
	}
	if names["from"] == 0 {
		return nil, fmt.Errorf("DKIM (d=%s, s=%s): the message has no From field, which DKIM signs (RFC 6376 §5.4): add one", opts.Domain, opts.Selector)
	}
	signer, err := dkim.NewSigner(opts)
	if err != nil {
		return nil, optionsErr("DKIMSigner: %v", err)
	}
	if _, err := signer.Write(header); err != nil {
		signer.Close()
		return nil, fmt.Errorf("DKIM (d=%s, s=%s): %w", opts.Domain, opts.Selector, err)
	}
	if err := copyContext(ctx, signer, br); err != nil {
		signer.Close()
		return nil, fmt.Errorf("DKIM (d=%s, s=%s): reading the message: %w", opts.Domain, opts.Selector, err)
	}
	if err := signer.Close(); err != nil {
		return nil, fmt.Errorf("DKIM (d=%s, s=%s): signing: %w", opts.Domain, opts.Selector, err)
	}
	return []byte(signer.Signature()), nil
}

// options checks the fields and returns go-msgauth's options.
func (s *DKIMSigner) options() (*dkim.SignOptions, error) {
	if s == nil {
		return nil, optionsErr("nil DKIMSigner")
	}
	domain, err := idn.ToASCII(strings.TrimSuffix(s.Domain, "."))
	if err != nil || domain == "" || !strings.Contains(domain, ".") {
		return nil, optionsErr("DKIMSigner.Domain %q is not a domain name: give the domain whose DNS publishes the key", s.Domain)
	}
	if !validSelector(s.Selector) {
		return nil, optionsErr("DKIMSigner.Selector %q is not a selector: give one or more DNS labels of letters, digits and hyphens (the name before ._domainkey)", s.Selector)
	}
	if s.Key == nil {
		return nil, optionsErr("DKIMSigner.Key is nil: give the private key of %s._domainkey.%s", s.Selector, domain)
	}
	switch pub := s.Key.Public().(type) {
	case *rsa.PublicKey:
		if bits := pub.N.BitLen(); bits < minDKIMRSABits {
			return nil, optionsErr("DKIMSigner.Key: the RSA key has %d bits; verifiers ignore signatures with fewer than %d (RFC 8301), and 2048 is recommended", bits, minDKIMRSABits)
		}
	case ed25519.PublicKey:
	default:
		return nil, optionsErr("DKIMSigner.Key: a %T public key cannot sign DKIM: use RSA or Ed25519", pub)
	}
	if s.HeaderFields != nil {
		from := false
		for _, f := range s.HeaderFields {
			if !validFieldName(f) {
				return nil, optionsErr("DKIMSigner.HeaderFields: %q is not a header field name", f)
			}
			from = from || strings.EqualFold(f, "From")
		}
		if !from {
			return nil, optionsErr("DKIMSigner.HeaderFields must name From, which DKIM always signs (RFC 6376 §5.4)")
		}
	}
	return &dkim.SignOptions{
		Domain:                 domain,
		Selector:               strings.ToLower(s.Selector),
		Signer:                 s.Key,
		Hash:                   crypto.SHA256,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             s.HeaderFields,
	}, nil
}

// readDKIMHeader reads a header up to and including the empty line that
// ends it, and counts its field names (lower-case).
func readDKIMHeader(br *bufio.Reader) ([]byte, map[string]int, error) {
	var header []byte
	names := map[string]int{}
	atStart := true // the next octet starts a line
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			err = nil // a long line: the rest comes next
		}
		header = append(header, line...)
		if len(header) > maxDKIMHeader {
			return nil, nil, fmt.Errorf("the message header is larger than %d octets", maxDKIMHeader)
		}
		if atStart && (string(line) == "\r\n" || string(line) == "\n") {
			return header, names, nil
		}
		if atStart && len(line) > 0 && line[0] != ' ' && line[0] != '\t' {
			if name, _, ok := bytes.Cut(line, []byte(":")); ok {
				names[strings.ToLower(strings.TrimSpace(string(name)))]++
			}
		}
		atStart = len(line) > 0 && line[len(line)-1] == '\n'
		if errors.Is(err, io.EOF) {
			return nil, nil, errors.New("the message has no empty line after its header, so DKIM cannot tell header from body: end the header with an empty line")
		}
		if err != nil {
			return nil, nil, err
		}
	}
}

// defaultDKIMKeys returns the default fields that the message has, each as
// often as it has it, and From.
func defaultDKIMKeys(names map[string]int) []string {
	var keys []string
	for _, f := range dkimDefaultFields {
		n := names[strings.ToLower(f)]
		if f == "From" && n == 0 {
			n = 1
		}
		for range n {
			keys = append(keys, f)
		}
	}
	return keys
}

// validSelector reports whether s is a DKIM selector: dot-separated labels
// of letters, digits and hyphens (RFC 6376 §3.1).
func validSelector(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// validFieldName reports whether s is a header field name: printable ASCII
// other than ":" (RFC 5322 §2.2).
func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 || s[i] == ':' {
			return false
		}
	}
	return true
}

// copyContext copies src to dst, stopping when the context ends.
func copyContext(ctx context.Context, dst io.Writer, src io.Reader) error {
	buf := make([]byte, dkimCopyBufferBytes)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
