package policy

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/smtpsecure/smtpsecure/dane"
	"github.com/smtpsecure/smtpsecure/internal/mxworld"
)

// worldPlanner returns a Planner configured with the four knobs of the
// world, and only those (plus a fixed shuffle).
func worldPlanner(w *mxworld.World, rules *Rules) *Planner {
	return &Planner{
		Resolver:       &dane.Resolver{Servers: []string{w.ResolverAddr()}, Timeout: 10 * time.Second},
		RootCAs:        w.RootCAs(),
		DialContext:    w.DialContext,
		MTASTSCacheDir: w.MTASTSCacheDir(),
		Rules:          rules,
		Rand:           rand.NewPCG(1, 2),
	}
}

func mustPlan(t *testing.T, p *Planner, domain string) *Plan {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pl, err := p.Plan(ctx, domain)
	if err != nil {
		t.Fatalf("Plan(%s): %v", domain, err)
	}
	return pl
}

func asError(err error, target **Error) bool { return errors.As(err, target) }

func writeFile(path string) error { return os.WriteFile(path, []byte("not a directory"), 0o600) }
