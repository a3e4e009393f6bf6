package mtasts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/internal/testpki"
)

// The test vectors under ../../shared/vectors/mtasts are read at test time
// (their licences differ from this project's); each case is a subtest, so
// `go test -v -run Vectors` lists the pass count per table.

type moxVectors struct {
	TXTRecord struct {
		Valid []struct {
			Input  string `json:"input"`
			Expect struct {
				Version    string     `json:"version"`
				ID         string     `json:"id"`
				Extensions [][]string `json:"extensions"`
			} `json:"expect"`
		} `json:"valid"`
		Invalid []struct {
			Input string `json:"input"`
			Note  string `json:"note"`
		} `json:"invalid"`
	} `json:"txt_record"`
	Policy struct {
		Valid []struct {
			Input  string `json:"input"`
			Expect struct {
				Version    string     `json:"version"`
				Mode       string     `json:"mode"`
				MX         []string   `json:"mx"`
				MaxAge     int64      `json:"max_age"`
				Extensions [][]string `json:"extensions"`
			} `json:"expect"`
		} `json:"valid"`
		Invalid []struct {
			Input string `json:"input"`
			Note  string `json:"note"`
		} `json:"invalid"`
		FuzzSeeds []struct {
			Input string `json:"input"`
			Note  string `json:"note"`
		} `json:"fuzz_seeds_unasserted"`
	} `json:"policy"`
	MXMatch struct {
		Policy  string   `json:"policy"`
		Match   []string `json:"match"`
		NoMatch []string `json:"nomatch"`
	} `json:"mx_match"`
	TXTLookup struct {
		DNSTXT      map[string][]string `json:"dns_txt"`
		DNSCNAME    map[string]string   `json:"dns_cname"`
		DNSServfail []string            `json:"dns_servfail"`
		Cases       []struct {
			Domain string `json:"domain"`
			Expect string `json:"expect"`
		} `json:"cases"`
	} `json:"txt_lookup"`
	HTTPSFetch struct {
		Cases []struct {
			Cert   string `json:"cert"`
			Domain string `json:"domain"`
			Status int    `json:"status"`
			Body   string `json:"body"`
			Expect string `json:"expect"`
		} `json:"cases"`
	} `json:"https_fetch"`
}

func toExtensions(in [][]string) []Extension {
	var out []Extension
	for _, kv := range in {
		out = append(out, Extension{Key: kv[0], Value: kv[1]})
	}
	return out
}

// STD-41, STD-48..52: mox's parser, matcher, lookup and fetch tables.
func TestVectorsMox(t *testing.T) {
	var v moxVectors
	readVectorJSON(t, "mox/mox-mtasts-vectors.json", &v)

	t.Run("txt/valid", func(t *testing.T) {
		for i, c := range v.TXTRecord.Valid {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				rec, err := ParseRecord(c.Input)
				if err != nil {
					t.Fatalf("ParseRecord(%q): %v", c.Input, err)
				}
				if c.Expect.Version != "STSv1" || rec.ID != c.Expect.ID || !reflect.DeepEqual(rec.Extensions, toExtensions(c.Expect.Extensions)) {
					t.Errorf("ParseRecord(%q) = %+v, want %+v", c.Input, rec, c.Expect)
				}
			})
		}
	})
	t.Run("txt/invalid", func(t *testing.T) {
		for i, c := range v.TXTRecord.Invalid {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				if rec, err := ParseRecord(c.Input); !errors.Is(err, ErrRecordSyntax) {
					t.Errorf("ParseRecord(%q) = %+v, %v; want a syntax error (%s)", c.Input, rec, err, c.Note)
				}
			})
		}
	})
	t.Run("policy/valid", func(t *testing.T) {
		for i, c := range v.Policy.Valid {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				p, err := ParsePolicy([]byte(c.Input))
				if err != nil {
					t.Fatalf("ParsePolicy(%q): %v", c.Input, err)
				}
				e := c.Expect
				if e.Version != "STSv1" || string(p.Mode) != e.Mode || !reflect.DeepEqual(p.MX, e.MX) ||
					p.MaxAge != time.Duration(e.MaxAge)*time.Second || !reflect.DeepEqual(p.Extensions, toExtensions(e.Extensions)) {
					t.Errorf("ParsePolicy(%q) = %+v, want %+v", c.Input, p, e)
				}
			})
		}
	})
	t.Run("policy/invalid", func(t *testing.T) {
		for i, c := range v.Policy.Invalid {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				if p, err := ParsePolicy([]byte(c.Input)); !errors.Is(err, ErrPolicyInvalid) {
					t.Errorf("ParsePolicy(%q) = %+v, %v; want invalid (%s)", c.Input, p, err, c.Note)
				}
			})
		}
	})
	// mox does not assert these; the ABNF's trailing *WSP makes them valid
	// (see the vectors README).
	t.Run("policy/fuzz-seeds-valid-by-abnf", func(t *testing.T) {
		for i, c := range v.Policy.FuzzSeeds {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				if _, err := ParsePolicy([]byte(c.Input)); err != nil {
					t.Errorf("ParsePolicy(%q) (%s): %v", c.Input, c.Note, err)
				}
			})
		}
	})
	t.Run("mx-match", func(t *testing.T) {
		p, err := ParsePolicy([]byte(v.MXMatch.Policy))
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range v.MXMatch.Match {
			t.Run("match/"+h, func(t *testing.T) {
				if !p.Match(h) {
					t.Errorf("Match(%q) = false", h)
				}
			})
		}
		for _, h := range v.MXMatch.NoMatch {
			t.Run("nomatch/"+h, func(t *testing.T) {
				if p.Match(h) {
					t.Errorf("Match(%q) = true", h)
				}
			})
		}
	})
	t.Run("txt-lookup", func(t *testing.T) {
		r := newFakeResolver()
		for name, recs := range v.TXTLookup.DNSTXT {
			r.setTXT(name, recs...)
		}
		for from, to := range v.TXTLookup.DNSCNAME {
			r.cname[fqdn(from)] = fqdn(to)
		}
		for _, sf := range v.TXTLookup.DNSServfail {
			typ, name, _ := strings.Cut(sf, " ")
			if typ != "TXT" {
				t.Fatalf("unexpected SERVFAIL entry %q", sf)
			}
			r.setServfail(name, true)
		}
		for _, c := range v.TXTLookup.Cases {
			t.Run(c.Domain, func(t *testing.T) {
				rec, err := LookupRecord(context.Background(), r, c.Domain)
				switch {
				case c.Expect == "no-record":
					if !errors.Is(err, ErrNoRecord) {
						t.Errorf("got %+v, %v; want no record", rec, err)
					}
				case strings.HasPrefix(c.Expect, "record id="):
					id := strings.Fields(strings.TrimPrefix(c.Expect, "record id="))[0]
					if err != nil || rec.ID != id {
						t.Errorf("got %+v, %v; want id %s", rec, err, id)
					}
				case c.Expect == "record-syntax-error":
					if !errors.Is(err, ErrRecordSyntax) {
						t.Errorf("got %+v, %v; want a syntax error", rec, err)
					}
				case c.Expect == "multiple-records":
					if !errors.Is(err, ErrMultipleRecords) {
						t.Errorf("got %+v, %v; want multiple records", rec, err)
					}
				case strings.HasPrefix(c.Expect, "dns-temporary-error"):
					if !errors.Is(err, ErrDNS) || errors.Is(err, ErrNoRecord) {
						t.Errorf("got %+v, %v; want a DNS failure", rec, err)
					}
				default:
					t.Fatalf("unknown expectation %q", c.Expect)
				}
			})
		}
	})
	t.Run("https-fetch", func(t *testing.T) {
		ps := newPolicyServer(t)
		certOK := ps.certFor("mta-sts.mox.example")
		certExpired := ps.issue(testpki.LeafOptions{
			DNSNames:  []string{"mta-sts.mox.example"},
			NotBefore: time.Now().Add(-48 * time.Hour),
			NotAfter:  time.Now().Add(-24 * time.Hour),
		})
		modeRE := regexp.MustCompile(`^policy mode=(\w+) max_age=(\d+)$`)
		for i, c := range v.HTTPSFetch.Cases {
			t.Run(fmt.Sprintf("%d-%s-%d", i, c.Domain, c.Status), func(t *testing.T) {
				body := c.Body
				if strings.HasPrefix(body, "<65538 NUL bytes") {
					body = strings.Repeat("\x00", 64*1024+2)
				}
				cert := certOK
				if c.Cert == "expired" {
					cert = certExpired
				}
				host := "mta-sts." + c.Domain
				ps.mu.Lock()
				delete(ps.hosts, host)
				ps.mu.Unlock()
				if c.Domain != "doesnotexist.example" {
					status := c.Status
					ps.handle(host, cert, func(w http.ResponseWriter, r *http.Request) {
						if status >= 300 && status < 400 {
							w.Header().Set("Location", "https://mta-sts.mox.example/other")
						}
						w.Header().Set("Content-Type", "text/plain")
						w.WriteHeader(status)
						w.Write([]byte(body))
					})
				}
				r := newFakeResolver()
				c2 := ps.client(r)
				p, err := c2.FetchPolicy(context.Background(), c.Domain)
				want := func(errs ...error) {
					t.Helper()
					for _, w := range errs {
						if !errors.Is(err, w) {
							t.Errorf("FetchPolicy = %+v, %v; want %v (%s)", p, err, w, c.Expect)
						}
					}
				}
				switch e := c.Expect; {
				case strings.HasPrefix(e, "policy-syntax-error"):
					want(ErrPolicyInvalid)
				case strings.Contains(e, "cert"):
					// mox calls it a fetch error; RFC 8460 names it
					// sts-webpki-invalid, which this package reports.
					want(ErrFetch, ErrWebPKI)
				case strings.Contains(e, "redirect"):
					want(ErrFetch, ErrRedirect)
				case strings.HasPrefix(e, "policy-fetch-error"):
					want(ErrFetch)
				case strings.HasPrefix(e, "no-policy"):
					want(ErrFetch, ErrPolicyNotFound)
					if strings.Contains(e, "Get() reports no-record") {
						res, gerr := c2.Get(context.Background(), c.Domain)
						if gerr != nil || res.Policy != nil || !errors.Is(res.Err, ErrNoRecord) {
							t.Errorf("Get = %+v, %v; want no record", res, gerr)
						}
					}
				case modeRE.MatchString(e):
					m := modeRE.FindStringSubmatch(e)
					secs, _ := strconv.Atoi(m[2])
					if err != nil || string(p.Mode) != m[1] || p.MaxAge != time.Duration(secs)*time.Second {
						t.Errorf("FetchPolicy = %+v, %v; want %s", p, err, e)
					}
				default:
					t.Fatalf("unknown expectation %q", e)
				}
			})
		}
	})
}

type foxcppVectors struct {
	TXTRecord []struct {
		Input string  `json:"input"`
		Valid bool    `json:"valid"`
		ID    *string `json:"id"`
	} `json:"txt_record"`
	Policy []struct {
		Input  string `json:"input"`
		Valid  bool   `json:"valid"`
		Expect *struct {
			Mode   string   `json:"mode"`
			MaxAge int64    `json:"max_age"`
			MX     []string `json:"mx"`
		} `json:"expect"`
	} `json:"policy"`
	MXMatch []struct {
		MXHost   string   `json:"mx_host"`
		PolicyMX []string `json:"policy_mx"`
		Match    bool     `json:"match"`
	} `json:"mx_match"`
}

// STD-41, STD-49, STD-52, STD-96: go-mtasts's tables. Its MX match table
// uses U-labels in the patterns; those are built as a Policy in code,
// because ParsePolicy rejects U-labels (see the package doc).
func TestVectorsFoxcpp(t *testing.T) {
	var v foxcppVectors
	readVectorJSON(t, "foxcpp-go-mtasts/foxcpp-mtasts-vectors.json", &v)
	t.Run("txt", func(t *testing.T) {
		for i, c := range v.TXTRecord {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				rec, err := ParseRecord(c.Input)
				if !c.Valid {
					if err == nil {
						t.Errorf("ParseRecord(%q) = %+v, want an error", c.Input, rec)
					}
					return
				}
				if err != nil || c.ID == nil || rec.ID != *c.ID {
					t.Errorf("ParseRecord(%q) = %+v, %v; want id %v", c.Input, rec, err, c.ID)
				}
			})
		}
	})
	t.Run("policy", func(t *testing.T) {
		for i, c := range v.Policy {
			t.Run(strconv.Itoa(i), func(t *testing.T) {
				p, err := ParsePolicy([]byte(c.Input))
				if !c.Valid {
					if err == nil {
						t.Errorf("ParsePolicy(%q) = %+v, want an error", c.Input, p)
					}
					return
				}
				if err != nil {
					t.Fatalf("ParsePolicy(%q): %v", c.Input, err)
				}
				mx := p.MX
				if mx == nil {
					mx = []string{}
				}
				if string(p.Mode) != c.Expect.Mode || p.MaxAge != time.Duration(c.Expect.MaxAge)*time.Second || !reflect.DeepEqual(mx, c.Expect.MX) {
					t.Errorf("ParsePolicy(%q) = %+v, want %+v", c.Input, p, *c.Expect)
				}
			})
		}
	})
	t.Run("mx-match", func(t *testing.T) {
		for i, c := range v.MXMatch {
			t.Run(fmt.Sprintf("%d-%s", i, c.MXHost), func(t *testing.T) {
				p := &Policy{Mode: ModeEnforce, MaxAge: time.Hour, MX: c.PolicyMX}
				if got := p.Match(c.MXHost); got != c.Match {
					t.Errorf("Match(%q) with %q = %v, want %v", c.MXHost, c.PolicyMX, got, c.Match)
				}
			})
		}
	})
}
