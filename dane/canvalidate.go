package dane

// CanValidate reports whether an answer of r can ever be Secure: whether
// r validates DNSSEC itself (Validator is set), or at least one of its
// upstreams is trusted to validate it (an upstream on a loopback address,
// or one listed in TrustedServers). When it is
// false, every answer is Insecure whatever the zones publish, so DANE can
// never apply: a caller should say that DANE could not be checked rather
// than treat signed domains as unsigned without a word.
//
// With Servers empty it reads ResolvConf, as a lookup would; a missing or
// unreadable file, or an invalid upstream address, gives false. It sends
// no query: a trusted upstream that is down still counts, and its failures
// show up as lookup errors, never as insecure answers.
func (r *Resolver) CanValidate() bool {
	if r.validating() {
		return true
	}
	ups, _, _, err := r.config()
	if err != nil {
		return false
	}
	for _, u := range ups {
		if u.trusted {
			return true
		}
	}
	return false
}
