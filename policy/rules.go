package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/smtpsecure/smtpsecure/internal/idn"
)

// Level is a local TLS security level for a destination domain, in the
// spirit of Postfix's smtp_tls_security_level. The zero value, LevelDANE,
// lets the domain's published policy decide; the other levels replace or
// loosen it, and the levels that allow plaintext are named Insecure….
type Level int

const (
	// LevelDANE, the default, lets the published policy decide: DANE for
	// hosts with usable TLSA records, MTA-STS otherwise, and for hosts with
	// neither STARTTLS without certificate authentication (RFC 7672 §1.3).
	// Text form "dane".
	LevelDANE Level = iota
	// LevelDANEOnly delivers only to hosts authenticated by usable TLSA
	// records (RFC 7672 §6, mandatory DANE); hosts without them are
	// excluded and the failure is reported as dane-required. MTA-STS is not
	// consulted. Text form "dane-only".
	LevelDANEOnly
	// LevelVerify requires TLS with a certificate valid under the Web PKI
	// (RootCAs) for one of Rule.Names, or for the MX host name when Names
	// is empty. DANE and MTA-STS are not consulted. Text form "verify".
	LevelVerify
	// LevelEncrypt requires TLS and does not authenticate the certificate.
	// DANE and MTA-STS are not consulted, so this level loosens a domain
	// that publishes DANE or an MTA-STS enforce policy. Text form "encrypt".
	LevelEncrypt
	// LevelInsecureOpportunistic keeps the published policy (DANE, MTA-STS
	// enforce) where there is one, and for hosts without one uses TLS when
	// the server offers it and plaintext when it does not, which an
	// attacker on the path can force. Text form "insecure-opportunistic".
	LevelInsecureOpportunistic
	// LevelInsecurePlaintext never uses TLS: every byte, the message
	// included, crosses the network in the clear. Published policies are
	// not consulted. Text form "insecure-plaintext".
	LevelInsecurePlaintext
)

var levelNames = [...]string{"dane", "dane-only", "verify", "encrypt", "insecure-opportunistic", "insecure-plaintext"}

// String returns the level's text form, such as "dane-only".
func (l Level) String() string {
	if l >= 0 && int(l) < len(levelNames) {
		return levelNames[l]
	}
	return "Level(" + strconv.Itoa(int(l)) + ")"
}

// MarshalText returns the text form, so that a Level prints as a string in
// JSON.
func (l Level) MarshalText() ([]byte, error) {
	if l < 0 || int(l) >= len(levelNames) {
		return nil, fmt.Errorf("policy: unknown level %d", int(l))
	}
	return []byte(l.String()), nil
}

// UnmarshalText parses a text form written by MarshalText.
func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// ParseLevel returns the level named s ("dane", "dane-only", "verify",
// "encrypt", "insecure-opportunistic" or "insecure-plaintext"). Postfix's
// own names for the weak levels ("may", "none") are not accepted: a level
// that allows plaintext must say so.
func ParseLevel(s string) (Level, error) {
	for i, n := range levelNames {
		if s == n {
			return Level(i), nil
		}
	}
	return 0, fmt.Errorf("%w: unknown level %q (want one of %s)", ErrRulesSyntax, s, strings.Join(levelNames[:], ", "))
}

// usesPublished reports whether the level consults the domain's published
// policy (DANE and MTA-STS).
func (l Level) usesPublished() bool {
	return l == LevelDANE || l == LevelInsecureOpportunistic
}

// usesTLSA reports whether the level needs the hosts' TLSA records.
func (l Level) usesTLSA() bool {
	return l.usesPublished() || l == LevelDANEOnly
}

// Rule is the local policy for one destination.
type Rule struct {
	// Domain is the recipient domain the rule is for: a domain name (it
	// matches that domain only) or a name with a leading dot, such as
	// ".example.com" (it matches every domain below example.com, not
	// example.com itself). Empty for the default rule.
	Domain string `json:"domain,omitempty"`
	// Level is what the rule requires.
	Level Level `json:"level"`
	// Names are, for LevelVerify only, the names of which the certificate
	// must be valid for one; empty means the MX host name.
	Names []string `json:"names,omitempty"`
}

// String returns the rule in the text form read by ParseRules.
func (r Rule) String() string {
	target := r.Domain
	if target == "" {
		target = "default"
	}
	s := target + " " + r.Level.String()
	for _, n := range r.Names {
		s += " " + n
	}
	return s
}

// Rules is local policy: a rule per destination domain and a default,
// which sit above every published policy. The zero value (and a nil
// *Rules) applies LevelDANE everywhere.
type Rules struct {
	// Default applies to domains no rule in Domains matches.
	Default Rule
	// Domains are the per-domain rules. A rule for the exact domain wins;
	// otherwise the ".parent" rule with the longest suffix does.
	Domains []Rule
}

// compiledRules is Rules checked and indexed by A-label name.
type compiledRules struct {
	def    Rule
	exact  map[string]Rule
	suffix map[string]Rule // ".example.com" -> rule
}

// compile checks every rule and indexes them.
func (r *Rules) compile() (*compiledRules, error) {
	c := &compiledRules{exact: map[string]Rule{}, suffix: map[string]Rule{}}
	if r == nil {
		return c, nil
	}
	def, err := checkRule(r.Default, true)
	if err != nil {
		return nil, err
	}
	c.def = def
	for _, rule := range r.Domains {
		rule, err := checkRule(rule, false)
		if err != nil {
			return nil, err
		}
		m := c.exact
		if strings.HasPrefix(rule.Domain, ".") {
			m = c.suffix
		}
		if _, dup := m[rule.Domain]; dup {
			return nil, fmt.Errorf("%w: two rules for %s", ErrRulesSyntax, rule.Domain)
		}
		m[rule.Domain] = rule
	}
	return c, nil
}

// checkRule validates a rule and returns it with its names in A-labels.
func checkRule(r Rule, isDefault bool) (Rule, error) {
	if r.Level < 0 || int(r.Level) >= len(levelNames) {
		return r, fmt.Errorf("%w: unknown level %d", ErrRulesSyntax, int(r.Level))
	}
	if isDefault && r.Domain != "" {
		return r, fmt.Errorf("%w: the default rule has a domain (%q)", ErrRulesSyntax, r.Domain)
	}
	if !isDefault {
		d, err := normalizeTarget(r.Domain)
		if err != nil {
			return r, err
		}
		r.Domain = d
	}
	if len(r.Names) > 0 && r.Level != LevelVerify {
		return r, fmt.Errorf("%w: rule %q: names are only for level verify", ErrRulesSyntax, r.String())
	}
	names := make([]string, 0, len(r.Names))
	for _, n := range r.Names {
		a, err := idn.ToASCII(n)
		if err != nil {
			return r, fmt.Errorf("%w: rule for %q: certificate name %q: %w", ErrRulesSyntax, r.Domain, n, err)
		}
		if !slices.Contains(names, a) {
			names = append(names, a)
		}
	}
	if len(names) == 0 {
		names = nil
	}
	r.Names = names
	return r, nil
}

// normalizeTarget returns a rule's domain as lower-case A-labels, keeping
// a leading dot.
func normalizeTarget(s string) (string, error) {
	dot := strings.HasPrefix(s, ".")
	a, err := idn.ToASCII(strings.TrimPrefix(s, "."))
	if err != nil {
		return "", fmt.Errorf("%w: rule domain %q: %w", ErrRulesSyntax, s, err)
	}
	if dot {
		return "." + a, nil
	}
	return a, nil
}

// lookup returns the rule for a domain in A-labels and whether a
// per-domain rule matched.
func (c *compiledRules) lookup(domain string) (Rule, bool) {
	if r, ok := c.exact[domain]; ok {
		return r, true
	}
	for d := domain; ; {
		i := strings.IndexByte(d, '.')
		if i < 0 {
			break
		}
		d = d[i+1:]
		if r, ok := c.suffix["."+d]; ok {
			return r, true
		}
	}
	return c.def, false
}

// Lookup returns the rule that applies to domain (U-labels or A-labels):
// the exact rule, else the longest matching ".parent" rule, else the
// default. A domain that is not a valid name gets the default rule, as do
// all domains when the rules themselves are invalid (Planner.Plan reports
// invalid rules as an error).
func (r *Rules) Lookup(domain string) Rule {
	c, err := r.compile()
	if err != nil {
		if r == nil {
			return Rule{}
		}
		return r.Default
	}
	d, err := idn.ToASCII(domain)
	if err != nil {
		return c.def
	}
	rule, _ := c.lookup(d)
	return rule
}

// String returns the rules in the text form read by ParseRules: the
// default rule first, then the domain rules in order.
func (r *Rules) String() string {
	var b strings.Builder
	if r == nil {
		return "default dane\n"
	}
	b.WriteString(r.Default.String())
	b.WriteByte('\n')
	for _, d := range r.Domains {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	return b.String()
}
