package nftables

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plexus-net/plexus/internal/testnet"
)

// TestKernelUpgradeReplacesOlderLayout: an agent of this layout starting
// over the table an agent of the previous layout (v3: pod peers in the
// interval sets) left for the same policies replaces it, in one
// transaction, by exactly what it builds where there is no table; the
// stamp (which carries layoutVersion) tells it the table is not its own.
// testdata/layout-v3.nft is v3's table for everyShape(80), as nft wrote it.
func TestKernelUpgradeReplacesOlderLayout(t *testing.T) {
	testnet.RequireRoot(t)
	old, err := filepath.Abs("testdata/layout-v3.nft")
	if err != nil {
		t.Fatal(err)
	}
	m := testModel(t, everyShape(80)...)
	upgraded, fresh := testnet.NewNetns(t, "upgrade"), testnet.NewNetns(t, "upfresh")
	upgraded.Exec(t, "nft", "-f", old)
	if !strings.Contains(upgraded.Exec(t, "nft", "list", "table", "inet", TableName), "ports/1df27056eef0c6fe-v4") {
		t.Fatal("the v3 table did not load")
	}
	for _, ns := range []*testnet.Netns{upgraded, fresh} {
		err := ns.Do(func() error {
			nft, err := NewNFTables()
			if err != nil {
				return err
			}
			nl, err := NewNetlink()
			if err != nil {
				return err
			}
			defer nl.Close()
			res, err := New(nft, WithNetlink(nl)).Sync(context.Background(), m, false)
			if err == nil && !res.Wrote {
				t.Errorf("%s: the enforcer kept a table of another layout", ns)
			}
			return err
		})
		if err != nil {
			t.Fatalf("%s: %v", ns, err)
		}
	}
	got, want := normalizedRuleset(t, upgraded), normalizedRuleset(t, fresh)
	if got != want {
		t.Errorf("the upgraded table differs from a fresh one:\n%s", lineDiff(strings.Split(want, "\n"), strings.Split(got, "\n")))
	}
}
