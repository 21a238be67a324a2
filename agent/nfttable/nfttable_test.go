package nfttable_test

import (
	"context"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/nfttable"
)

const (
	family = knftables.InetFamily
	name   = "plexus-nfttable-test"
)

// table is a small table with a plain set, a concatenated one and an interval set whose
// single-address elements nft lists as bare addresses.
func table(vips, nets []string) nfttable.Table {
	return nfttable.Table{
		Comment: "Plexus: nfttable test",
		Chains: []*knftables.Chain{{
			Name: "prerouting", Type: knftables.PtrTo(knftables.FilterType),
			Hook: knftables.PtrTo(knftables.PreroutingHook), Priority: knftables.PtrTo(knftables.FilterPriority),
		}},
		Sets: []nfttable.Set{
			{Name: "vips", Type: "ipv4_addr . inet_service", Elements: vips},
			{Name: "nets", Type: "ipv4_addr", Flags: []knftables.SetFlag{knftables.IntervalFlag}, Elements: nets,
				Canonical: func(key []string) (string, bool) {
					if len(key) != 1 {
						return "", false
					}
					if !strings.Contains(key[0], "/") {
						return key[0] + "/32", true
					}
					return key[0], true
				}},
		},
		Rules: []*knftables.Rule{
			{Chain: "prerouting", Rule: "ip daddr . th dport @vips accept", Comment: knftables.PtrTo("vips (v1)")},
			{Chain: "prerouting", Rule: "ip saddr @nets counter", Comment: knftables.PtrTo("nets (v1)")},
		},
	}
}

// run counts the transactions a sync makes on a fake and returns what it wrote.
type counting struct {
	*knftables.Fake
	runs int
}

func (c *counting) Run(ctx context.Context, tx *knftables.Transaction) error {
	c.runs++
	return c.Fake.Run(ctx, tx)
}

func sync(t *testing.T, r *nfttable.Reconciler, want nfttable.Table) bool {
	t.Helper()
	wrote, err := r.Sync(context.Background(), want)
	if err != nil {
		t.Fatal(err)
	}
	return wrote
}

// TestSync: the first sync builds the table; a repeat writes nothing; a changed set is
// flushed and refilled without touching the rest; a changed rule comment rebuilds.
func TestSync(t *testing.T) {
	fake := &counting{Fake: knftables.NewFake(family, name)}
	r := nfttable.New(fake, family, name)
	want := table([]string{"10.96.0.10 . 80"}, []string{"10.244.0.0/16", "10.0.0.1/32"})
	if !sync(t, r, want) {
		t.Fatal("first sync wrote nothing")
	}
	dump := fake.Dump()
	for _, line := range []string{
		`add table inet plexus-nfttable-test { comment "Plexus: nfttable test" ; }`,
		"add element inet plexus-nfttable-test vips { 10.96.0.10 . 80 }",
		"add element inet plexus-nfttable-test nets { 10.244.0.0/16 }",
		"add rule inet plexus-nfttable-test prerouting ip saddr @nets counter comment \"nets (v1)\"",
	} {
		if !strings.Contains(dump, line) {
			t.Errorf("table lacks %q:\n%s", line, dump)
		}
	}
	if sync(t, r, want) || fake.runs != 1 {
		t.Fatalf("repeat sync wrote (%d transactions)", fake.runs)
	}

	// Only the vips set changes: one transaction, the rules stay.
	want = table([]string{"10.96.0.11 . 53"}, want.Sets[1].Elements)
	if !sync(t, r, want) {
		t.Fatal("set change wrote nothing")
	}
	dump = fake.Dump()
	if strings.Contains(dump, "10.96.0.10 . 80") || !strings.Contains(dump, "10.96.0.11 . 53") {
		t.Fatalf("vips not refilled:\n%s", dump)
	}

	// A rule with a new comment: the table is rebuilt with it.
	want.Rules[1].Comment = knftables.PtrTo("nets (v2)")
	if !sync(t, r, want) || !strings.Contains(fake.Dump(), `"nets (v2)"`) {
		t.Fatalf("rule change not written:\n%s", fake.Dump())
	}
	if sync(t, r, want) {
		t.Fatal("sync after rebuild wrote")
	}
}

// TestSyncForeignElement: an element this table never writes (a concatenation in a plain
// set, as Canonical says) makes its set stale.
func TestSyncForeignElement(t *testing.T) {
	fake := knftables.NewFake(family, name)
	r := nfttable.New(fake, family, name)
	want := table(nil, []string{"10.244.0.0/16"})
	sync(t, r, want)
	tx := fake.NewTransaction()
	tx.Add(&knftables.Element{Set: "nets", Key: []string{"10.1.0.0/16"}})
	if err := fake.Run(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	if !sync(t, r, want) {
		t.Fatal("a stray element was kept")
	}
	if strings.Contains(fake.Dump(), "10.1.0.0/16") {
		t.Fatalf("stray element survived:\n%s", fake.Dump())
	}
}

// TestRemove: Remove deletes the table once; a missing table costs no write.
func TestRemove(t *testing.T) {
	fake := &counting{Fake: knftables.NewFake(family, name)}
	r := nfttable.New(fake, family, name)
	if wrote, err := r.Remove(context.Background()); err != nil || wrote {
		t.Fatalf("remove of nothing: wrote %v, %v", wrote, err)
	}
	sync(t, r, table(nil, nil))
	if wrote, err := r.Remove(context.Background()); err != nil || !wrote {
		t.Fatalf("remove: wrote %v, %v", wrote, err)
	}
	if _, err := fake.List(context.Background(), "chains"); !knftables.IsNotFound(err) {
		t.Fatalf("table still there: %v", err)
	}
	if wrote, err := r.Remove(context.Background()); err != nil || wrote {
		t.Fatalf("second remove: wrote %v, %v", wrote, err)
	}
}
