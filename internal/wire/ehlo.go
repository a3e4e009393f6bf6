package wire

import (
	"slices"
	"strconv"
	"strings"
)

// Extensions is the set of service extensions a server announced in its
// reply to EHLO (RFC 5321 §4.1.1.1), with their parameters. Keywords are
// compared without regard to case. The zero value has no extensions.
//
// An Extensions value must be thrown away whenever the session state it
// describes ends: after STARTTLS, and after AUTH with a security layer
// (RFC 3207 §4.2, RFC 4954 §4).
type Extensions struct {
	list []extension // in the server's order, keywords upper-case and unique
}

type extension struct {
	keyword string
	params  string
}

// ParseEHLO reads a 250 reply to EHLO. The first line gives the server's
// domain (its first word; the rest is a greeting and is ignored). Each
// following line is an ehlo-line: a keyword of letters, digits and hyphens
// that starts with a letter or digit, then optional parameters, each a run
// of printable ASCII, separated by spaces. Lines that are not valid
// ehlo-lines are skipped; a repeated keyword keeps its first parameters.
//
// The pre-standard form "AUTH=LOGIN PLAIN" still sent by some servers adds its
// mechanisms to AUTH. A reply whose code is not 250 has no extensions.
func ParseEHLO(r *Reply) (domain string, ext Extensions) {
	if r == nil || r.Code != 250 || len(r.Lines) == 0 {
		return "", Extensions{}
	}
	first := r.Lines[0]
	if i := strings.IndexAny(first, " \t"); i >= 0 {
		first = first[:i]
	}
	domain = first
	if len(r.Lines) == 1 {
		return domain, Extensions{}
	}
	list := make([]extension, 0, len(r.Lines)-1)
	for _, line := range r.Lines[1:] {
		kw, params, ok := parseEHLOLine(line)
		if !ok {
			continue
		}
		if i := indexExt(list, kw); i >= 0 {
			if kw == "AUTH" {
				list[i].params = joinMechs(list[i].params, params)
			}
			continue
		}
		list = append(list, extension{keyword: kw, params: params})
	}
	if len(list) == 0 {
		list = nil
	}
	return domain, Extensions{list: list}
}

// parseEHLOLine splits one ehlo-line into its upper-case keyword and its
// parameters joined by single spaces. Runs of spaces and trailing spaces,
// which some servers send, are tolerated; anything else outside the grammar
// makes the line invalid.
func parseEHLOLine(line string) (keyword, params string, ok bool) {
	line = strings.TrimRight(line, " ")
	end := strings.IndexByte(line, ' ')
	if end < 0 {
		end = len(line)
	}
	kw := line[:end]
	rest := line[end:]
	if len(kw) > 5 && strings.EqualFold(kw[:5], "AUTH=") {
		// Old form: "AUTH=LOGIN PLAIN" means AUTH LOGIN PLAIN.
		rest = " " + kw[5:] + rest
		kw = "AUTH"
	}
	if !validKeyword(kw) {
		return "", "", false
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; c != ' ' && (c < 33 || c > 126) {
			return "", "", false
		}
	}
	if strings.Contains(rest, "  ") {
		params = strings.Join(strings.Fields(rest), " ")
	} else {
		params = strings.TrimPrefix(rest, " ")
	}
	return strings.ToUpper(kw), params, true
}

// validKeyword reports whether kw is an ehlo-keyword:
// (ALPHA / DIGIT) *(ALPHA / DIGIT / "-").
func validKeyword(kw string) bool {
	if kw == "" || kw[0] == '-' {
		return false
	}
	for i := 0; i < len(kw); i++ {
		c := kw[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func indexExt(list []extension, keyword string) int {
	for i := range list {
		if strings.EqualFold(list[i].keyword, keyword) {
			return i
		}
	}
	return -1
}

func joinMechs(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + " " + b
}

// Has reports whether the server announced keyword, in any case.
func (e Extensions) Has(keyword string) bool { return indexExt(e.list, keyword) >= 0 }

// Param returns the parameters of keyword as one string, separated by single
// spaces, or "" if there are none or keyword was not announced.
func (e Extensions) Param(keyword string) string {
	if i := indexExt(e.list, keyword); i >= 0 {
		return e.list[i].params
	}
	return ""
}

// Keywords returns the announced keywords, upper-case and sorted.
func (e Extensions) Keywords() []string {
	kws := make([]string, len(e.list))
	for i, x := range e.list {
		kws[i] = x.keyword
	}
	slices.Sort(kws)
	return kws
}

// Len returns the number of announced keywords.
func (e Extensions) Len() int { return len(e.list) }

// MaxSize returns the message size limit of the SIZE extension (RFC 1870).
// ok is false if SIZE was not announced or its parameter is not a number;
// n is 0 if the server announced SIZE without a fixed limit.
func (e Extensions) MaxSize() (n int64, ok bool) {
	i := indexExt(e.list, "SIZE")
	if i < 0 {
		return 0, false
	}
	p := e.list[i].params
	if p == "" {
		return 0, true
	}
	for j := 0; j < len(p); j++ {
		if p[j] < '0' || p[j] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(p, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// AuthMechanisms returns the SASL mechanisms announced with AUTH (RFC 4954
// §3), upper-case, without duplicates, in the server's order. Names that are
// not valid SASL mechanism names (RFC 4422 §3.1: 1 to 20 letters, digits,
// "-" and "_") are left out.
func (e Extensions) AuthMechanisms() []string {
	p := e.Param("AUTH")
	if p == "" {
		return nil
	}
	var mechs []string
	for _, m := range strings.Split(p, " ") {
		m = strings.ToUpper(m)
		if validMech(m) && !slices.Contains(mechs, m) {
			mechs = append(mechs, m)
		}
	}
	return mechs
}

func validMech(m string) bool {
	if m == "" || len(m) > 20 {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
