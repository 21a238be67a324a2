package hostport

import (
	"context"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/internal/testnet"
)

// TestKernelSync writes the table with real nft in a throwaway namespace: nft accepts every
// rule (SCTP included: the rules only name the protocol, no SCTP module is needed), a repeated
// Sync neither doubles rules nor keeps stale elements, a table of an older shape is replaced,
// and the last mapping's removal removes the table.
func TestKernelSync(t *testing.T) {
	testnet.RequireRoot(t)
	ns := testnet.NewNetns(t, "hostport")
	ctx := context.Background()
	var nft knftables.Interface
	if err := ns.Do(func() (err error) { nft, err = Open(); return err }); err != nil {
		t.Fatal(err)
	}
	syncIn := func(ms []Mapping) {
		t.Helper()
		if err := ns.Do(func() error { return Sync(ctx, nft, ms) }); err != nil {
			t.Fatal(err)
		}
	}
	list := func() string { return ns.Exec(t, "nft", "list", "table", "inet", TableName) }
	all := testMappings(t)
	syncIn(all)
	syncIn(all)
	out := list()
	for _, want := range []string{"127.0.0.1 . tcp . 54321 : 10.244.0.5 . 8080", "fd10:99::11 . sctp . 9132 : fd10:244::8 . 9132", "tcp . 8443 : fd10:244::8 . 443"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "fib daddr type local"); n != 2 {
		t.Errorf("%d fib rules after two syncs, want 2:\n%s", n, out)
	}
	syncIn(all[:1])
	if out := list(); strings.Contains(out, "10.244.0.6") || !strings.Contains(out, "10.244.0.5") {
		t.Errorf("after removing pods:\n%s", out)
	}

	// A table of another shape (an older plugin's map with another type) is replaced.
	ns.Exec(t, "nft", "add table inet "+TableName+"; delete table inet "+TableName+
		"; add table inet "+TableName+"; add map inet "+TableName+" hostip-v4 { type ipv4_addr : ipv4_addr ; }")
	syncIn(all)
	if out := list(); !strings.Contains(out, "10.99.0.11 . udp . 54321 : 10.244.0.7 . 8080") {
		t.Errorf("table of another shape not replaced:\n%s", out)
	}

	syncIn(nil)
	if out, err := ns.TryExec("nft", "list", "table", "inet", TableName); err == nil {
		t.Fatalf("table still there after the last mapping went:\n%s", out)
	}
	syncIn(nil) // and removing a missing table is no error
}
