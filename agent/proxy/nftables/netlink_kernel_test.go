package nftables

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/plexus-net/plexus/agent/nfttable"
	"github.com/plexus-net/plexus/agent/proxy"
	pt "github.com/plexus-net/plexus/agent/proxy/proxytest"
	"github.com/plexus-net/plexus/internal/testnet"
)

// TestKernelNetlinkWritesWhatNftWrites drives a Proxier with the netlink
// element writer through a random sequence of changes on the real kernel
// and, along the way, compares its table with one written from scratch by
// nft for the same model (in a second namespace): every element encoded
// by encode.go must list exactly as nft's own. A restarted Proxier must
// then find the table current (the netlink-written stamp matches) and
// write nothing.
func TestKernelNetlinkWritesWhatNftWrites(t *testing.T) {
	testnet.RequireRoot(t)
	ctx := context.Background()
	nsA, nsB := testnet.NewNetns(t, "nla"), testnet.NewNetns(t, "nlb")
	nl, err := NewNetlink(nsA.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nl.Close() })
	var p *Proxier
	if err := nsA.Do(func() error {
		nft, err := nfttable.Open(TableFamily, TableName)
		p = New(nft, WithNetlink(nl))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	w := scenario()
	rng := rand.New(rand.NewPCG(1, 2))
	viaNetlink, added := 0, 0
	for step := 1; step <= 60; step++ {
		mutate(w, rng, &added)
		m := w.model()
		if err := nsA.Do(func() error { return p.Sync(ctx, m) }); err != nil {
			t.Fatalf("step %d: sync: %v", step, err)
		}
		if p.Stats().Netlink {
			viaNetlink++
		}
		if step%15 == 0 {
			assertSameTable(t, nsA, nsB, m)
		}
	}
	t.Logf("%d of 60 syncs went through netlink", viaNetlink)
	if viaNetlink < 30 {
		t.Errorf("only %d of 60 syncs went through netlink; want most of them", viaNetlink)
	}
	restarted := func() *Proxier {
		var q *Proxier
		_ = nsA.Do(func() error { nft, err := nfttable.Open(TableFamily, TableName); q = New(nft); return err })
		return q
	}()
	if err := nsA.Do(func() error { return restarted.Sync(ctx, w.model()) }); err != nil {
		t.Fatal(err)
	}
	if st := restarted.Stats(); st.Wrote {
		t.Errorf("restart after netlink writes rebuilt the table (%d operations): the stamp did not match", st.Operations)
	}
}

// mutate makes one random change of the kind Services see all the time:
// an endpoint moves, a Service with one to three endpoints comes or goes,
// an endpoint becomes ready or not.
func mutate(w *world, rng *rand.Rand, added *int) {
	tcp := corev1.ProtocolTCP
	switch rng.IntN(4) {
	case 0: // an endpoint moves
		sl := w.slices[rng.IntN(len(w.slices))]
		ep := &sl.Endpoints[rng.IntN(len(sl.Endpoints))]
		if strings.Contains(ep.Addresses[0], ":") {
			ep.Addresses = []string{fmt.Sprintf("fd10:244:0:9::%x", rng.IntN(4000)+1)}
		} else {
			ep.Addresses = []string{fmt.Sprintf("10.244.9.%d", rng.IntN(250)+1)}
		}
	case 1: // a Service comes
		*added++
		name := fmt.Sprintf("svc-%d", *added)
		eps := make([]pt.EP, rng.IntN(3)+1)
		for i := range eps {
			eps[i] = pt.EP{IP: fmt.Sprintf("10.244.%d.%d", 10+*added%200, i+1), Node: "node-b"}
		}
		w.add(pt.Service("ns", name, []string{fmt.Sprintf("10.96.%d.%d", 1+*added/250, *added%250+1)}, pt.Port("p", tcp, 80)),
			pt.Slice("ns", name, name+"-1", "p", tcp, 8080, eps...))
	case 2: // an added Service goes
		for i := len(w.svcs) - 1; i >= 0; i-- {
			if strings.HasPrefix(w.svcs[i].Name, "svc-") {
				name := w.svcs[i].Name
				w.svcs = slices.Delete(w.svcs, i, i+1)
				w.slices = slicesWithout(w.slices, name)
				return
			}
		}
	case 3: // readiness flips
		sl := w.slices[rng.IntN(len(w.slices))]
		ep := &sl.Endpoints[rng.IntN(len(sl.Endpoints))]
		ready := ep.Conditions.Ready == nil || *ep.Conditions.Ready
		ep.Conditions.Ready = &[]bool{!ready}[0]
	}
}

// assertSameTable compares the table in ns with one nft writes from
// scratch for m in scratch (which is emptied first).
func assertSameTable(t *testing.T, ns, scratch *testnet.Netns, m proxy.Model) {
	t.Helper()
	_, _ = scratch.TryExec("nft", "delete", "table", string(TableFamily), TableName)
	if err := scratch.Do(func() error {
		nft, err := nfttable.Open(TableFamily, TableName)
		if err != nil {
			return err
		}
		return New(nft).Sync(context.Background(), m)
	}); err != nil {
		t.Fatal(err)
	}
	got := normalizeTable(ns.Exec(t, "nft", "list", "table", string(TableFamily), TableName))
	want := normalizeTable(scratch.Exec(t, "nft", "list", "table", string(TableFamily), TableName))
	if got != want {
		t.Fatalf("table written through netlink differs from nft's:\n--- netlink\n%s\n--- nft\n%s", got, want)
	}
}

var elementsRE = regexp.MustCompile(`(?s)elements = \{(.*?)\}`)

// normalizeTable sorts the elements of every set and map (listing order
// is the kernel's hash order) and drops the stamps, whose write numbers
// differ by history.
func normalizeTable(listing string) string {
	listing = elementsRE.ReplaceAllStringFunc(listing, func(block string) string {
		inner := elementsRE.FindStringSubmatch(block)[1]
		var elems []string
		for _, e := range strings.Split(inner, ",") {
			if e = strings.Join(strings.Fields(e), " "); e != "" {
				elems = append(elems, e)
			}
		}
		slices.Sort(elems)
		return "elements = { " + strings.Join(elems, ", ") + " }"
	})
	// Objects list in creation order, which differs by history: compare
	// them sorted, as blocks ("\tmap x {" … "\t}").
	var blocks []string
	var cur []string
	for _, l := range strings.Split(listing, "\n") {
		switch {
		case strings.HasPrefix(l, "\t") && !strings.HasPrefix(l, "\t\t") && strings.HasSuffix(l, "{"):
			cur = []string{l}
		case cur != nil:
			cur = append(cur, l)
			if l == "\t}" {
				if !strings.Contains(cur[0], "set "+setStamp+" ") {
					blocks = append(blocks, strings.Join(cur, "\n"))
				}
				cur = nil
			}
		}
	}
	slices.Sort(blocks)
	out := blocks
	return strings.Join(out, "\n")
}
