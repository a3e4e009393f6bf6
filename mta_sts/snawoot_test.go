package mtasts

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

// The postfix-mta-sts-resolver fixture is a dnsmasq configuration (TXT
// records), an nginx configuration (policy hosts) and a generated CA. It is
// reproduced here with the fake resolver, fed from dnsmasq.conf.appendix,
// and the in-process HTTPS server, fed from cases.json, with certificates
// from internal/testpki.

const snawootDir = "snawoot-postfix-mta-sts-resolver"

type snawootCase struct {
	Domain      string  `json:"domain"`
	TXT         *string `json:"txt"`
	HTTPStatus  *int    `json:"http_status"`
	ContentType *string `json:"content_type"`
	PolicyBody  *string `json:"policy_body"`
	TLS         string  `json:"tls"`
	Expect      string  `json:"expect"`
}

type snawootFixture struct {
	cases   []snawootCase
	ctypes  map[string]bool
	r       *fakeResolver
	ps      *policyServer
	clock   *fakeClock
	untrust *testpki.CA
}

// dnsmasqTXT reads the txt-record lines of dnsmasq.conf.appendix into r.
func dnsmasqTXT(t *testing.T, r *fakeResolver) int {
	f, err := os.Open(filepath.Join(vectorsDir(t), snawootDir, "dnsmasq.conf.appendix"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		rest, ok := strings.CutPrefix(line, "txt-record=")
		if !ok {
			continue
		}
		name, val, ok := strings.Cut(rest, ",")
		if !ok {
			t.Fatalf("bad txt-record line %q", line)
		}
		txt, err := strconv.Unquote(val)
		if err != nil {
			t.Fatalf("bad txt-record value %q: %v", val, err)
		}
		r.setTXT(name, txt)
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// overlengthBody is what the fixture's Lua handlers send: four policy lines,
// then 2049 times 64 "a" (131193 octets in all).
func overlengthBody() string {
	return "version: STSv1\nmode: enforce\nmax_age: 86400\nmx: mail.loc\n" + strings.Repeat(strings.Repeat("a", 64), 2049)
}

func newSnawootFixture(t *testing.T) *snawootFixture {
	var raw struct {
		Cases  []snawootCase  `json:"cases"`
		CTypes map[string]any `json:"content_type_checks"`
	}
	readVectorJSON(t, filepath.Join(snawootDir, "cases.json"), &raw)
	fx := &snawootFixture{cases: raw.Cases, ctypes: map[string]bool{}, r: newFakeResolver(), ps: newPolicyServer(t), clock: newFakeClock()}
	for k, v := range raw.CTypes {
		if b, ok := v.(bool); ok {
			fx.ctypes[k] = b
		}
	}
	if n := dnsmasqTXT(t, fx.r); n == 0 {
		t.Fatal("no TXT records in dnsmasq.conf.appendix")
	}
	var err error
	fx.untrust, err = testpki.NewCA("untrusted fixture CA")
	if err != nil {
		t.Fatal(err)
	}
	done := map[string]bool{}
	for _, c := range fx.cases {
		d := strings.Trim(c.Domain, ".")
		if c.HTTPStatus == nil || done[d] {
			continue
		}
		done[d] = true
		fx.ps.handle("mta-sts."+d, fx.cert(t, d, c.TLS), snawootHandler(c))
	}
	return fx
}

// cert issues the certificate the fixture's mkcerts.py gives the policy
// host of d, as described by the case's tls field.
func (fx *snawootFixture) cert(t *testing.T, d, desc string) *tls.Certificate {
	host := "mta-sts." + d
	switch {
	case strings.Contains(desc, "UNTRUSTED CA"):
		l, err := fx.untrust.Issue(testpki.LeafOptions{DNSNames: []string{host}})
		if err != nil {
			t.Fatal(err)
		}
		c := l.TLSCertificate()
		return &c
	case strings.Contains(desc, "names only"):
		return fx.ps.issue(testpki.LeafOptions{DNSNames: []string{d}})
	case strings.Contains(desc, "wildcard cert"):
		return fx.ps.issue(testpki.LeafOptions{DNSNames: []string{"*." + d}})
	case strings.Contains(desc, "cert only for"):
		return fx.ps.issue(testpki.LeafOptions{DNSNames: []string{host}})
	}
	return fx.ps.issue(testpki.LeafOptions{DNSNames: []string{d, host}})
}

func snawootHandler(c snawootCase) http.HandlerFunc {
	status := *c.HTTPStatus
	ctype := ""
	if c.ContentType != nil {
		ctype = *c.ContentType
	}
	body := ""
	if c.PolicyBody != nil {
		body = *c.PolicyBody
	}
	chunked := strings.Contains(body, "chunked")
	static := strings.Contains(body, "Content-Length: 131193")
	if chunked || static {
		body = overlengthBody()
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ctype)
		if static {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		w.WriteHeader(status)
		if !chunked {
			io.WriteString(w, body)
			return
		}
		for i := 0; i < len(body); i += 4096 {
			if _, err := io.WriteString(w, body[i:min(i+4096, len(body))]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}
}

func (fx *snawootFixture) client() *Client {
	c := fx.ps.client(fx.r)
	c.Time = fx.clock.Now
	return c
}

// STD-39, STD-40, STD-44..51, STD-58, STD-59: every resolve outcome of
// postfix-mta-sts-resolver's test_resolve_status against the reproduced
// fixture.
func TestVectorsSnawoot(t *testing.T) {
	fx := newSnawootFixture(t)
	for _, c := range fx.cases {
		t.Run(c.Domain, func(t *testing.T) {
			// The TXT record the case describes is the one dnsmasq
			// serves.
			if c.TXT != nil && !strings.HasPrefix(c.Domain, ".") {
				got, _ := fx.r.LookupTXT(context.Background(), "_mta-sts."+c.Domain)
				if len(got) != 1 || got[0] != *c.TXT {
					t.Fatalf("fixture mismatch: dnsmasq serves %q, case says %q", got, *c.TXT)
				}
			}
			cl := fx.client()
			res, err := cl.Get(context.Background(), c.Domain)
			switch e := c.Expect; {
			case e == "NONE":
				if err != nil {
					if !errors.Is(err, ErrInvalidDomain) {
						t.Fatalf("Get: %v", err)
					}
					return // ".good.loc" is not a domain name
				}
				if res.Policy != nil || res.ReportResultType() != "" || !errors.Is(res.Err, ErrNoRecord) {
					t.Errorf("got %+v (err %v), want no MTA-STS", res, res.Err)
				}
			case strings.HasPrefix(e, "VALID"):
				if err != nil || res.Policy == nil || res.Source != SourceFetched || res.Err != nil {
					t.Fatalf("got %+v, %v; want a fetched policy (err %v)", res, err, res.Err)
				}
				want, perr := ParsePolicy([]byte(*c.PolicyBody))
				if perr != nil {
					t.Fatal(perr)
				}
				if res.Policy.Mode != want.Mode || res.Policy.MaxAge != want.MaxAge || strings.Join(res.Policy.MX, ",") != strings.Join(want.MX, ",") {
					t.Errorf("policy %+v, want %+v", res.Policy, want)
				}
				switch {
				case strings.Contains(e, "mode testing") && !res.Testing():
					t.Errorf("mode %s, want testing", res.Policy.Mode)
				case strings.Contains(e, "mode none") && (res.Policy.Mode != ModeNone || len(res.Policy.MX) != 0):
					t.Errorf("policy %+v, want mode none without mx", res.Policy)
				case e == "VALID" && !res.Enforced():
					t.Errorf("mode %s, want enforce", res.Policy.Mode)
				}
				if strings.Contains(e, "expires after 1 s") {
					if !res.Expires().Equal(res.FetchedAt.Add(time.Second)) {
						t.Errorf("Expires %v, fetched %v", res.Expires(), res.FetchedAt)
					}
					again, _ := cl.Get(context.Background(), c.Domain)
					if again.Source != SourceCached {
						t.Errorf("within max_age: %v", again.Source)
					}
					fx.clock.Advance(1100 * time.Millisecond)
					again, _ = cl.Get(context.Background(), c.Domain)
					if again.Source != SourceFetched {
						t.Errorf("after max_age: %v, want a new fetch", again.Source)
					}
				}
			case strings.HasPrefix(e, "FETCH_ERROR"):
				if err != nil || res.Policy != nil || res.Source != SourceNone || res.Err == nil || res.ReportResultType() == "" || res.PolicyType() != "sts" {
					t.Fatalf("got %+v, %v; want a reported failure and no policy", res, err)
				}
				var want error
				switch {
				case strings.Contains(e, "size limit"):
					want = ErrPolicyTooLarge
				case strings.Contains(e, "content-type"):
					want = ErrContentType
				case strings.Contains(e, "non-200"):
					want = ErrHTTPStatus
				case strings.Contains(e, "untrusted"), strings.Contains(e, "mismatch"):
					want = ErrWebPKI
				default:
					want = ErrPolicyInvalid
				}
				if !errors.Is(res.Err, want) {
					t.Errorf("Err = %v, want %v", res.Err, want)
				}
			default:
				t.Fatalf("unknown expectation %q", e)
			}
		})
	}
}

// STD-46: the Content-Type checks of test_is_plaintext.
func TestVectorsSnawootContentType(t *testing.T) {
	var raw struct {
		CTypes map[string]any `json:"content_type_checks"`
	}
	readVectorJSON(t, filepath.Join(snawootDir, "cases.json"), &raw)
	for ct, v := range raw.CTypes {
		want, ok := v.(bool)
		if !ok {
			continue
		}
		t.Run(ct, func(t *testing.T) {
			if got := isPlainText(ct); got != want {
				t.Errorf("isPlainText(%q) = %v, want %v", ct, got, want)
			}
		})
	}
}

// The Postfix socketmap answers in refdata*.tsv: a next hop gets
// "OK secure match=<mx patterns>" when an enforce policy applies (or a
// testing one, with the resolver's strict_testing option), else NOTFOUND.
// The next-hop syntax ([host], :port) is Postfix's and is stripped here; the
// servername=hostname suffix is a resolver option asking Postfix to send the
// MX host name as SNI, which this project's SMTP client always does.
func TestVectorsSnawootRefdata(t *testing.T) {
	fx := newSnawootFixture(t)
	for _, file := range []string{"refdata.tsv", "refdata_nosni.tsv", "refdata_strict.tsv"} {
		strict := strings.Contains(file, "strict")
		t.Run(file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(vectorsDir(t), snawootDir, file))
			if err != nil {
				t.Fatal(err)
			}
			cl := fx.client()
			for i, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
				query, want, ok := strings.Cut(line, "\t")
				if !ok {
					t.Fatalf("bad line %q", line)
				}
				want = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(want), " servername=hostname"))
				t.Run(strconv.Itoa(i+1)+"-"+query, func(t *testing.T) {
					_, key, _ := strings.Cut(query, " ")
					got := "NOTFOUND"
					res, err := cl.Get(context.Background(), postfixNextHopDomain(key))
					if err == nil && res.Policy != nil && (res.Enforced() || strict && res.Testing()) {
						got = "OK secure match=" + strings.Join(res.Policy.MX, ":")
					}
					if got != want {
						t.Errorf("%q: got %q, want %q", query, got, want)
					}
				})
			}
		})
	}
}

// postfixNextHopDomain strips Postfix next-hop syntax: "[host]", "[host]:port"
// and "host:port".
func postfixNextHopDomain(key string) string {
	if strings.HasPrefix(key, "[") {
		if i := strings.Index(key, "]"); i > 0 {
			return key[1:i]
		}
	}
	if h, _, err := net.SplitHostPort(key); err == nil {
		return h
	}
	return key
}
