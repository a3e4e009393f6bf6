package mtasts

import (
	"context"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/smtpsecure/smtpsecure/internal/rfc8460"
)

// STD-41: the TXT record grammar of RFC 8461 §3.1.
func TestParseRecord(t *testing.T) {
	tests := []struct {
		in   string
		id   string // "" = invalid
		exts []Extension
	}{
		{in: "v=STSv1; id=20160831085700Z;", id: "20160831085700Z"},
		{in: "v=STSv1;id=abc", id: "abc"},
		{in: "v=STSv1 ; id=abc", id: "abc"},
		{in: "v=STSv1\t;\tid=abc\t;\t", id: "abc"},
		{in: "v=STSv1; id=" + strings.Repeat("a", 32), id: strings.Repeat("a", 32)},
		{in: "v=STSv1; ext-1.x_y=v!al~ue; id=1", id: "1", exts: []Extension{{"ext-1.x_y", "v!al~ue"}}},
		{in: "v=STSv1; id=1; " + strings.Repeat("a", 32) + "=1", id: "1", exts: []Extension{{strings.Repeat("a", 32), "1"}}},

		{in: ""},
		{in: "v=STSv1"},
		{in: "v=STSv1;"},
		{in: "v=STSv1; id="},
		{in: "v=STSv1; id=" + strings.Repeat("a", 33)},
		{in: "v=STSv1; id=a-b"},
		{in: "v=STSv1; id=a;;"},      // only one trailing delimiter
		{in: "v=STSv1;; id=a"},       // empty field
		{in: "v=STSv1; id=a; id=b"},  // two ids
		{in: "v=STSv1; ID=a"},        // field names are case-sensitive
		{in: "V=STSv1; id=a"},        // so is the version
		{in: "v=stsv1; id=a"},        //
		{in: "v=STSv1 id=a"},         // no delimiter
		{in: " v=STSv1; id=a"},       // v= must be first
		{in: "id=a; v=STSv1"},        //
		{in: "v=STSv1; id=a; e=a b"}, // space in a value
		{in: "v=STSv1; id=a; e=é"},   // non-ASCII value
		{in: "v=STSv1; id=a; -e=1"},  // name must start with a letter or digit
		{in: "v=STSv1; id=a; e"},     // no "="
		{in: "v=STSv1; id=a; =1"},    // no name
		{in: "v=STSv1; id=a\x00"},    // control character
		{in: "v=STSv1; id=a; e=" + strings.Repeat("x", maxRecordLen)},
	}
	for _, tt := range tests {
		rec, err := ParseRecord(tt.in)
		if tt.id == "" {
			if err == nil {
				t.Errorf("ParseRecord(%q) = %+v, want an error", tt.in, rec)
				continue
			}
			var se *SyntaxError
			if !errors.As(err, &se) || !errors.Is(err, ErrRecordSyntax) {
				t.Errorf("ParseRecord(%q) error %v is not a *SyntaxError matching ErrRecordSyntax", tt.in, err)
			}
			if rt := se.ReportResultType(); rt != rfc8460.STSPolicyFetchError {
				t.Errorf("ParseRecord(%q) result type %q", tt.in, rt)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseRecord(%q): %v", tt.in, err)
			continue
		}
		if rec.ID != tt.id || !reflect.DeepEqual(rec.Extensions, tt.exts) {
			t.Errorf("ParseRecord(%q) = %+v, want id %q exts %v", tt.in, rec, tt.id, tt.exts)
		}
		// The canonical form parses back to the same record.
		again, err := ParseRecord(rec.String())
		if err != nil || !reflect.DeepEqual(again, rec) {
			t.Errorf("ParseRecord(%q).String() = %q does not round-trip: %+v, %v", tt.in, rec.String(), again, err)
		}
	}
}

// STD-39, STD-40: the record is looked up at _mta-sts.<domain> for the
// domain itself only; records not starting with v=STSv1 are dropped; no
// policy unless exactly one valid record remains.
func TestLookupRecord(t *testing.T) {
	r := newFakeResolver()
	r.setTXT("_mta-sts.one.example", "v=STSv1; id=1")
	r.setTXT("_mta-sts.mixed.example", "v=spf1 -all", "v=STSv1; id=2", "google-site-verification=x", "v=STSv10; id=9")
	r.setTXT("_mta-sts.two.example", "v=STSv1; id=1", "v=STSv1; id=2")
	r.setTXT("_mta-sts.bad.example", "v=STSv1; id=1;;")
	r.setTXT("_mta-sts.noid.example", "v=STSv1")
	r.setTXT("_mta-sts.other.example", "v=spf1 -all")
	r.setTXT("_mta-sts.example", "v=STSv1; id=parent")
	r.setTXT("_mta-sts.xn--mller-kva.example", "v=STSv1; id=idn")
	r.setServfail("_mta-sts.broken.example", true)

	tests := []struct {
		domain string
		id     string
		want   error
	}{
		{"one.example", "1", nil},
		{"ONE.Example.", "1", nil},
		{"mixed.example", "2", nil},
		{"two.example", "", ErrMultipleRecords},
		{"bad.example", "", ErrRecordSyntax},
		{"noid.example", "", ErrRecordSyntax},
		{"other.example", "", ErrNoRecord},
		{"absent.example", "", ErrNoRecord},
		{"sub.absent.example", "", ErrNoRecord}, // STD-39: no parent fallback
		{"müller.example", "idn", nil},          // STD-95: queried in A-labels
		{"broken.example", "", ErrDNS},
		{"[192.0.2.1]", "", ErrInvalidDomain},
		{"192.0.2.1", "", ErrInvalidDomain},
		{".example", "", ErrInvalidDomain},
	}
	for _, tt := range tests {
		rec, err := LookupRecord(context.Background(), r, tt.domain)
		if tt.want != nil {
			if !errors.Is(err, tt.want) {
				t.Errorf("LookupRecord(%q) = %+v, %v; want %v", tt.domain, rec, err, tt.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("LookupRecord(%q) error %T is not *Error", tt.domain, err)
			}
			continue
		}
		if err != nil || rec.ID != tt.id {
			t.Errorf("LookupRecord(%q) = %+v, %v; want id %q", tt.domain, rec, err, tt.id)
		}
	}
	for _, q := range r.queried() {
		if q == "_mta-sts.example." {
			t.Errorf("a subdomain lookup fell back to the parent domain: %v", r.queried())
		}
		if !strings.HasSuffix(q, ".") {
			t.Errorf("query %q is not an absolute name", q)
		}
	}
	// Errors say which name failed and map to result types.
	_, err := LookupRecord(context.Background(), r, "broken.example")
	if !strings.Contains(err.Error(), "_mta-sts.broken.example.") || ResultType(err) != rfc8460.STSPolicyFetchError {
		t.Errorf("DNS failure error %q (type %q)", err, ResultType(err))
	}
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) {
		t.Errorf("DNS failure does not wrap the resolver's error: %v", err)
	}
	_, err = LookupRecord(context.Background(), r, "absent.example")
	if ResultType(err) != "" {
		t.Errorf("no record has result type %q, want none", ResultType(err))
	}
}

// dnsTestServer serves fixed answers over UDP on loopback, so that
// net.Resolver can be tested as the TXTResolver.
func dnsTestServer(t *testing.T, handler dns.HandlerFunc) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no UDP on loopback: %v", err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: handler, NotifyStartedFunc: func() { close(started) }}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	addr := pc.LocalAddr().String()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", addr)
		},
	}
}

// STD-40: net.Resolver, the default TXTResolver, joins the strings of one
// TXT record, and its not-found errors (NXDOMAIN and NODATA) are told apart
// from failures (SERVFAIL).
func TestLookupRecordNetResolver(t *testing.T) {
	res := dnsTestServer(t, func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		m.Authoritative = true
		q := req.Question[0]
		hdr := func(name string, typ uint16) dns.RR_Header {
			return dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassINET, Ttl: 60}
		}
		switch strings.ToLower(q.Name) {
		case "_mta-sts.split.example.":
			if q.Qtype == dns.TypeTXT {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr(q.Name, dns.TypeTXT), Txt: []string{"v=STSv1; ", "id=split", "123"}})
				m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr(q.Name, dns.TypeTXT), Txt: []string{"unrelated"}})
			}
		case "_mta-sts.alias.example.":
			m.Answer = append(m.Answer, &dns.CNAME{Hdr: hdr(q.Name, dns.TypeCNAME), Target: "_mta-sts.split.example."})
			if q.Qtype == dns.TypeTXT {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr("_mta-sts.split.example.", dns.TypeTXT), Txt: []string{"v=STSv1; id=viaalias"}})
			}
		case "_mta-sts.nodata.example.":
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr(q.Name, dns.TypeA), A: net.IPv4(127, 0, 0, 1)})
			}
			m.Ns = append(m.Ns, &dns.SOA{Hdr: hdr("example.", dns.TypeSOA), Ns: "ns.example.", Mbox: "h.example.", Serial: 1, Refresh: 1, Retry: 1, Expire: 1, Minttl: 60})
		case "_mta-sts.servfail.example.":
			m.Rcode = dns.RcodeServerFailure
		default:
			m.Rcode = dns.RcodeNameError
			m.Ns = append(m.Ns, &dns.SOA{Hdr: hdr("example.", dns.TypeSOA), Ns: "ns.example.", Mbox: "h.example.", Serial: 1, Refresh: 1, Retry: 1, Expire: 1, Minttl: 60})
		}
		w.WriteMsg(m)
	})
	tests := []struct {
		domain string
		id     string
		want   error
	}{
		{"split.example", "split123", nil},
		{"alias.example", "viaalias", nil},
		{"nodata.example", "", ErrNoRecord},
		{"nxdomain.example", "", ErrNoRecord},
		{"servfail.example", "", ErrDNS},
	}
	for _, tt := range tests {
		rec, err := LookupRecord(context.Background(), res, tt.domain)
		if tt.want != nil {
			if !errors.Is(err, tt.want) {
				t.Errorf("%s: got %+v, %v; want %v", tt.domain, rec, err, tt.want)
			}
			continue
		}
		if err != nil || rec.ID != tt.id {
			t.Errorf("%s: got %+v, %v; want id %q", tt.domain, rec, err, tt.id)
		}
	}
}

func TestLookupRecordCancelled(t *testing.T) {
	r := newFakeResolver()
	r.setTXT("_mta-sts.one.example", "v=STSv1; id=1")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := LookupRecord(ctx, r, "one.example")
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrDNS) {
		t.Errorf("cancelled lookup: %v", err)
	}
}

func TestRecordNameAndPolicyHost(t *testing.T) {
	if n, err := RecordName("Müller.example."); err != nil || n != "_mta-sts.xn--mller-kva.example." {
		t.Errorf("RecordName = %q, %v", n, err)
	}
	if h, err := PolicyHost("Müller.example."); err != nil || h != "mta-sts.xn--mller-kva.example" {
		t.Errorf("PolicyHost = %q, %v", h, err)
	}
	long := strings.Repeat(strings.Repeat("a", 60)+".", 4) + "example" // 251 octets
	for _, bad := range []string{"[192.0.2.1]", "", "a..b", long} {
		if _, err := PolicyHost(bad); !errors.Is(err, ErrInvalidDomain) {
			t.Errorf("PolicyHost(%q) error %v", bad, err)
		}
	}
	for _, bad := range []string{"[192.0.2.1]", "", "a..b"} {
		if _, err := RecordName(bad); !errors.Is(err, ErrInvalidDomain) {
			t.Errorf("RecordName(%q) error %v", bad, err)
		}
	}
}
