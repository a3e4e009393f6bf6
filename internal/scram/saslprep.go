package scram

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// SASLprep (RFC 4013) is the stringprep (RFC 3454) profile SCRAM applies to
// user names and passwords. Its normalisation step is Unicode NFKC, whose full
// tables the standard library does not carry. This file implements the profile
// exactly for the strings it accepts and refuses the rest:
//
//   - mapping (RFC 4013 section 2.1): non-ASCII spaces (RFC 3454 C.1.2) become
//     U+0020 and the "commonly mapped to nothing" characters (B.1) are removed.
//     U+200B is in both tables; like libidn and PostgreSQL it becomes a space.
//   - normalisation (section 2.2): printable ASCII and the characters in
//     stableRanges are their own NFKC form in any context; the compatibility
//     characters in compatMap and fullwidth ASCII are replaced by their NFKC
//     form. Anything else (combining marks, decomposed input, symbols outside
//     the tables, code points unassigned in Unicode 3.2) is refused with
//     ErrSASLprepUnsupported rather than guessed at.
//   - prohibition (section 2.3): tables C.1.2 to C.9 of RFC 3454.
//   - bidirectional check (section 2.4, RFC 3454 section 6).
//
// A refused string never produces a wrong result, only an error: the caller can
// still authenticate with PLAIN over TLS.

type bidiClass uint8

const (
	bidiOther  bidiClass = iota // neither RandALCat nor LCat
	bidiL                       // RFC 3454 table D.2
	bidiRandAL                  // RFC 3454 table D.1
)

type stableRange struct {
	lo, hi rune
	class  bidiClass
}

// prepError says why a string failed SASLprep. It wraps errProhibited,
// ErrSASLprepUnsupported, errBidi or ErrSASLprep.
type prepError struct {
	kind error
	r    rune // offending code point, -1 if none
	msg  string
}

func (e *prepError) Error() string {
	if e.r >= 0 {
		return fmt.Sprintf("SASLprep: %s (U+%04X)", e.msg, e.r)
	}
	return "SASLprep: " + e.msg
}

func (e *prepError) Unwrap() error { return e.kind }

// redact drops the offending code point from an error about a secret.
func redact(err error) error {
	var pe *prepError
	if errors.As(err, &pe) {
		return &prepError{kind: pe.kind, r: -1, msg: pe.msg}
	}
	return err
}

// saslprep prepares s with the SASLprep profile. Unassigned code points are
// refused, which is right for stored strings (passwords) and stricter than
// required for query strings (user names).
func saslprep(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", &prepError{kind: ErrSASLprep, r: -1, msg: "not valid UTF-8"}
	}
	if isPrintableASCII(s) {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case mappedToNothing(r):
			continue
		case nonASCIISpace(r):
			b.WriteByte(' ')
		case r < 0x80:
			if r < 0x20 || r == 0x7F {
				return "", &prepError{kind: errProhibited, r: r, msg: "prohibited ASCII control character"}
			}
			b.WriteRune(r)
		case r >= 0xFF01 && r <= 0xFF5E: // fullwidth ASCII
			b.WriteRune(r - 0xFEE0)
		default:
			if _, ok := lookupStable(r); ok {
				b.WriteRune(r)
			} else if v, ok := compatMap[r]; ok {
				b.WriteString(v)
			} else if prohibited(r) {
				return "", &prepError{kind: errProhibited, r: r, msg: "prohibited character"}
			} else {
				return "", &prepError{kind: ErrSASLprepUnsupported, r: r, msg: "character outside the Unicode subset this SASLprep implementation normalises"}
			}
		}
	}
	out := b.String()
	if err := checkBidi(out); err != nil {
		return "", err
	}
	return out, nil
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7E {
			return false
		}
	}
	return true
}

// mappedToNothing is RFC 3454 table B.1 minus U+200B, which nonASCIISpace maps.
func mappedToNothing(r rune) bool {
	switch {
	case r == 0x00AD, r == 0x034F, r == 0x1806, r >= 0x180B && r <= 0x180D,
		r == 0x200C, r == 0x200D, r == 0x2060, r >= 0xFE00 && r <= 0xFE0F, r == 0xFEFF:
		return true
	}
	return false
}

// nonASCIISpace is RFC 3454 table C.1.2.
func nonASCIISpace(r rune) bool {
	switch {
	case r == 0x00A0, r == 0x1680, r >= 0x2000 && r <= 0x200B, r == 0x202F, r == 0x205F, r == 0x3000:
		return true
	}
	return false
}

// prohibited reports whether a non-ASCII input code point that is its own NFKC
// form is in RFC 3454 tables C.2.2 to C.9 (C.1.2 is mapped beforehand, C.2.1
// is checked by the caller). The tables apply to the normalised output, so
// U+0340 and U+0341, which NFKC replaces, are left out.
func prohibited(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9F, r == 0x06DD, r == 0x070F, r == 0x180E, // C.2.2
		r == 0x200C, r == 0x200D, r == 0x2028, r == 0x2029,
		r >= 0x2060 && r <= 0x2063, r >= 0x206A && r <= 0x206F, r == 0xFEFF,
		r >= 0xFFF9 && r <= 0xFFFC, r >= 0x1D173 && r <= 0x1D17A:
		return true
	case r >= 0xE000 && r <= 0xF8FF, r >= 0xF0000 && r <= 0xFFFFD, r >= 0x100000 && r <= 0x10FFFD: // C.3
		return true
	case r >= 0xFDD0 && r <= 0xFDEF, r&0xFFFE == 0xFFFE: // C.4
		return true
	case r >= 0xD800 && r <= 0xDFFF: // C.5 (unreachable from valid UTF-8)
		return true
	case r == 0xFFFD, // C.6 (U+FFF9..U+FFFC above)
		r >= 0x2FF0 && r <= 0x2FFB,                           // C.7
		r == 0x200E, r == 0x200F, r >= 0x202A && r <= 0x202E, // C.8 but U+0340, U+0341, which NFKC maps to U+0300, U+0301
		r == 0xE0001, r >= 0xE0020 && r <= 0xE007F: // C.9
		return true
	}
	return false
}

func lookupStable(r rune) (bidiClass, bool) {
	i := sort.Search(len(stableRanges), func(i int) bool { return stableRanges[i].hi >= r })
	if i < len(stableRanges) && stableRanges[i].lo <= r {
		return stableRanges[i].class, true
	}
	return bidiOther, false
}

func bidiOf(r rune) bidiClass {
	if r < 0x80 {
		if (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z') {
			return bidiL
		}
		return bidiOther
	}
	c, _ := lookupStable(r)
	return c
}

// checkBidi applies RFC 3454 section 6: a string with a RandALCat character
// has no LCat character and starts and ends with a RandALCat character.
func checkBidi(s string) error {
	hasRandAL, hasL := false, false
	for _, r := range s {
		switch bidiOf(r) {
		case bidiRandAL:
			hasRandAL = true
		case bidiL:
			hasL = true
		}
	}
	if !hasRandAL {
		return nil
	}
	if hasL {
		return &prepError{kind: errBidi, r: -1, msg: "mixes right-to-left and left-to-right characters"}
	}
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	if bidiOf(first) != bidiRandAL || bidiOf(last) != bidiRandAL {
		return &prepError{kind: errBidi, r: -1, msg: "right-to-left string does not start and end with a right-to-left character"}
	}
	return nil
}
