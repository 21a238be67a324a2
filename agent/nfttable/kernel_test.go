package nfttable_test

import (
	"context"
	"strings"
	"testing"

	"github.com/plexus-net/plexus/agent/nfttable"
	"github.com/plexus-net/plexus/internal/testnet"
)

// TestKernelSync runs the reconciler against real nft in a throwaway network namespace: the
// kernel lists an interval set's /32 as a bare address and concatenated keys with " . ", and a
// repeat sync must still see a match and write nothing.
func TestKernelSync(t *testing.T) {
	testnet.RequireRoot(t)
	ns := testnet.NewNetns(t, "nfttable")
	ctx := context.Background()
	var r *nfttable.Reconciler
	if err := ns.Do(func() error {
		nft, err := nfttable.Open(family, name)
		r = nfttable.New(nft, family, name)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	syncIn := func(want nfttable.Table) (wrote bool) {
		t.Helper()
		if err := ns.Do(func() (err error) { wrote, err = r.Sync(ctx, want); return err }); err != nil {
			t.Fatal(err)
		}
		return wrote
	}
	want := table([]string{"10.96.0.10 . 80", "10.96.0.11 . 53"}, []string{"10.244.0.0/16", "10.0.0.1/32"})
	if !syncIn(want) {
		t.Fatal("first sync wrote nothing")
	}
	if syncIn(want) {
		t.Fatalf("repeat sync wrote:\n%s", ns.Exec(t, "nft", "list", "table", string(family), name))
	}
	want = table([]string{"10.96.0.10 . 80"}, want.Sets[1].Elements)
	if !syncIn(want) || syncIn(want) {
		t.Fatal("a set change was not written exactly once")
	}
	out := ns.Exec(t, "nft", "list", "table", string(family), name)
	if strings.Contains(out, "10.96.0.11") || !strings.Contains(out, "10.0.0.1") {
		t.Fatalf("table after set change:\n%s", out)
	}
	var removed bool
	if err := ns.Do(func() (err error) { removed, err = r.Remove(ctx); return err }); err != nil || !removed {
		t.Fatalf("remove: wrote %v, %v", removed, err)
	}
	if out, err := ns.TryExec("nft", "list", "table", string(family), name); err == nil {
		t.Fatalf("table still there:\n%s", out)
	}
}
