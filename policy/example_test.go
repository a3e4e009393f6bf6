package policy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/policy"
)

// Local rules in their text form, as a program reads them from a file.
func ExampleParseRules() {
	rules, err := policy.ParseRules(strings.NewReader(`
# Published policy decides, except:
example.com       dane-only                      # our own domain: DANE or nothing
.corp.example     verify mail.corp.example       # partners behind one relay
legacy.example    insecure-opportunistic         # an old server without STARTTLS
`))
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range []string{"example.com", "hq.corp.example", "legacy.example", "example.org"} {
		fmt.Printf("%-16s %s\n", d, rules.Lookup(d).Level)
	}
	// Output:
	// example.com      dane-only
	// hq.corp.example  verify
	// legacy.example   insecure-opportunistic
	// example.org      dane
}

// Plan delivery to a domain and print why each host is used, or not.
func ExamplePlanner_Plan() {
	p := &policy.Planner{
		// A validating resolver on this host, so that DANE can apply.
		Resolver:       &dane.Resolver{Servers: []string{"127.0.0.1:53"}},
		MTASTSCacheDir: "/var/cache/myapp/mta-sts",
	}
	plan, err := p.Plan(context.Background(), "example.org")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(plan)
	if plan.Err != nil {
		var pe *policy.Error
		if errors.As(plan.Err, &pe) && pe.Temporary {
			log.Print("try again later: ", plan.Err)
		}
		return
	}
	for _, h := range plan.Usable() {
		fmt.Printf("%s: %s (%s)\n", h.Name, h.Requirement.String(), h.Source)
	}
}

// A plan prints as JSON, for tools.
func ExamplePlan_MarshalJSON() {
	var p policy.Planner // system resolver and roots
	plan, err := p.Plan(context.Background(), "example.org")
	if err != nil {
		log.Fatal(err)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	enc.Encode(plan)
}

// Before failing permanently because of an MTA-STS policy in mode enforce,
// look for a new policy (RFC 8461 §5.1).
func ExamplePlanner_Recheck() {
	var p policy.Planner
	ctx := context.Background()
	plan, err := p.Plan(ctx, "example.org")
	if err != nil {
		log.Fatal(err)
	}
	var pe *policy.Error
	if errors.As(plan.Err, &pe) && pe.Recheck {
		newPlan, changed, err := p.Recheck(ctx, plan)
		switch {
		case err != nil:
			log.Print("temporary failure: ", err)
		case changed:
			plan = newPlan // deliver under the new policy
		default:
			log.Print("permanent failure: ", plan.Err)
		}
	}
	fmt.Println(len(plan.Usable()), "host(s) may be tried")
}
