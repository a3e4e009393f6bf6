package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/smtpsecure/smtpsecure/policy"
)

const policyUsage = `Usage: smtpsecure policy [options] domain

Shows what delivery to domain requires, as deliver would follow it: the MX
hosts in the order they would be tried and, for each, whether TLS is required,
how the certificate is authenticated (DANE, MTA-STS's Web PKI, or not at all),
which rule decided it and why, or why the host may not be used. Sends no mail.

Exit code 0 when mail can be delivered under the plan, 75 when it cannot now
(a DNS failure, every host excluded for now), 69 when it never can (null MX,
no mail host), 68 when the domain does not exist.

Options:
`

// newFlagSet returns a flag set whose usage prints text then the flags.
func (c *cli) newFlagSet(name, text string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), text)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses flags and positional arguments in any order, as users
// type them ("policy example.com --json").
func (c *cli) parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(c.stdout)
				fs.Usage()
				return nil, &helpShown{}
			}
			return nil, withCode(exitUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// policy runs "smtpsecure policy".
func (c *cli) policy(ctx context.Context, args []string) error {
	fs := c.newFlagSet("policy", policyUsage)
	var nf netFlags
	nf.register(fs, true)
	asJSON := fs.Bool("json", false, "print the plan as JSON")
	pos, err := c.parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		fs.Usage()
		return usageError("policy takes one domain")
	}
	p, err := nf.planner(c.now(), c.dial)
	if err != nil {
		return err
	}
	plan, err := p.Plan(ctx, pos[0])
	if err != nil {
		if errors.Is(err, policy.ErrInvalidDomain) {
			return usageError("%v", err)
		}
		return withCode(exitConfig, err)
	}
	if *asJSON {
		if err := writeJSON(c.stdout, plan); err != nil {
			return err
		}
	} else {
		printPlan(c.stdout, plan, p)
	}
	return planError(plan)
}

// printPlan prints a plan for people, with where its DNSSEC verdicts came
// from.
func printPlan(w io.Writer, plan *policy.Plan, p *policy.Planner) {
	fmt.Fprint(w, plan.String())
	if p.Resolver != nil {
		_, detail := dnssecSource(p.Resolver)
		fmt.Fprintf(w, "DNSSEC answers: %s\n", detail)
	}
}

// planError returns the exit status of a plan that cannot be delivered
// under: nil when it can.
func planError(plan *policy.Plan) error {
	if plan.Err == nil {
		return nil
	}
	var pe *policy.Error
	switch {
	case errors.Is(plan.Err, policy.ErrNoSuchDomain):
		return withCode(exitNoHost, plan.Err)
	case errors.As(plan.Err, &pe) && (pe.Temporary || pe.Recheck):
		return withCode(exitTempFail, plan.Err)
	}
	return withCode(exitUnavailable, plan.Err)
}
