package policy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/smtpsecure/smtpsecure/internal/mxworld"
)

// A plan explains itself in text and in JSON.
func TestPlanExplains(t *testing.T) {
	w := mxworld.New(t)
	p := worldPlanner(w, nil)

	pl := mustPlan(t, p, "sts-notinpolicy.example")
	text := pl.String()
	for _, want := range []string{
		"Delivery plan for sts-notinpolicy.example\n",
		"  MTA-STS: mode enforce; id 1; fetched; valid until ",
		"  outcome: 1 of 2 host(s) may be tried\n",
		"  1. mx1.sts-notinpolicy.example (preference 10) 192.0.2.",
		"     EXCLUDED (not-in-mta-sts-policy, until the MTA-STS policy changes)\n",
		"  2. mx2.sts-notinpolicy.example (preference 20)",
		"     requires: TLS required, Web PKI certificate for mx2.sts-notinpolicy.example, SNI mx2.sts-notinpolicy.example\n",
		"     decided by: mta-sts-enforce\n",
		"     TLS report: policy sts for sts-notinpolicy.example\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("String() lacks %q:\n%s", want, text)
		}
	}

	var v map[string]any
	b, err := json.Marshal(pl)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	hosts := v["hosts"].([]any)
	h0, h1 := hosts[0].(map[string]any), hosts[1].(map[string]any)
	if v["domain"] != "sts-notinpolicy.example" || v["error"] != nil || v["mta_sts"].(map[string]any)["mode"] != "enforce" {
		t.Errorf("JSON %s", b)
	}
	if h0["excluded"].(map[string]any)["code"] != "not-in-mta-sts-policy" || len(h0["why"].([]any)) == 0 {
		t.Errorf("JSON host 1 %v", h0)
	}
	rq := h1["requirement"].(map[string]any)
	if rq["tls"] != "required" || rq["auth"] != "webpki" || h1["source"] != "mta-sts-enforce" {
		t.Errorf("JSON host 2 %v", h1)
	}

	pl = mustPlan(t, p, "sts-nomatch.example")
	b, _ = json.Marshal(pl)
	if err := json.Unmarshal(b, &v); err != nil || v["recheck"] != true || !strings.Contains(v["error"].(string), "Planner.Recheck") {
		t.Errorf("JSON of a failing plan: %s", b)
	}

	pl = mustPlan(t, p, "bücher.example")
	if !strings.HasPrefix(pl.String(), "Delivery plan for bücher.example (xn--bcher-kva.example)\n") || pl.Input != "bücher.example" {
		t.Errorf("IDN plan:\n%s", pl)
	}
	pl = mustPlan(t, p, "cname-mx.example")
	for _, want := range []string{"= CNAME mx.cname-target.example", "     TLSA at _25._tcp.mx.cname-target.example: 3 1 1 ", "REQUIRETLS: allowed"} {
		if !strings.Contains(pl.String(), want) {
			t.Errorf("DANE plan lacks %q:\n%s", want, pl)
		}
	}
	pl = mustPlan(t, p, "mx-bogus.example")
	if !strings.Contains(pl.String(), "  MX: lookup failed\n") {
		t.Errorf("bogus MX plan:\n%s", pl)
	}
}
