package nftables

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/plexus-net/plexus/agent/policy"
	pt "github.com/plexus-net/plexus/agent/policy/policytest"
	"github.com/plexus-net/plexus/internal/testnet"
)

// TestKernelNetlinkWritesWhatNFTWrites moves a table from one model to the
// next through netlink (a pod added with named ports, a peer relabelled,
// a pod removed: verdict map, address set and concatenated named-port set
// elements) and checks that the kernel then holds exactly what nft writes
// for the second model in a fresh namespace.
func TestKernelNetlinkWritesWhatNFTWrites(t *testing.T) {
	testnet.RequireRoot(t)
	policies := pt.NPs(
		pt.NP("a", "in", "", pt.IngressOnly, pt.IngressRules(pt.In(pt.Peers(pt.PodPeer("y")), pt.NamedPort("TCP", "http"), pt.NamedPort("UDP", "dns"))), nil),
		pt.NP("c", "out", "", pt.EgressOnly, nil, pt.EgressRules(pt.Out(nil, pt.NamedPort("TCP", "http")))),
	)
	model := func(pods []*corev1.Pod) *policy.Model {
		return policy.Compile(policy.Input{NodeName: pt.NodeName, NodeIPs: pt.NodeIPs(), Pods: pods, Namespaces: pt.Namespaces(), Policies: policies})
	}
	first := model(pt.Pods())
	pods := pt.Pods()
	pods[1].Labels = map[string]string{"app": "other"} // a/y: no peer
	pods = slices.Delete(pods, 3, 4)                   // c/w leaves; c/w2 below keeps c/out selecting a pod
	pods = append(pods,
		pt.Pod("c", "w2", "n1", nil, []netip.Addr{pt.IP("10.1.0.8"), pt.IP("fd01::8")}),
		pt.Pod("a", "v", "n1", map[string]string{"app": "y"}, []netip.Addr{pt.IP("10.1.0.9"), pt.IP("fd01::9")},
			pt.CPort("http", 8443, corev1.ProtocolTCP), pt.CPort("dns", 5353, corev1.ProtocolUDP)))
	second := model(pods)

	viaNetlink := testnet.NewNetns(t, "nlpol")
	var e *Enforcer
	err := viaNetlink.Do(func() error {
		nft, err := NewNFTables()
		if err != nil {
			return err
		}
		nl, err := NewNetlink()
		if err != nil {
			return err
		}
		t.Cleanup(func() { _ = nl.Close() })
		e = New(nft, WithNetlink(nl))
		if _, err := e.Sync(context.Background(), first, false); err != nil {
			return err
		}
		_, err = e.Sync(context.Background(), second, false)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if e.netlinkWrites != 1 {
		t.Fatalf("the pod changes were not written through netlink (%d netlink writes)", e.netlinkWrites)
	}
	viaNFT := testnet.NewNetns(t, "nftpol")
	err = viaNFT.Do(func() error {
		nft, err := NewNFTables()
		if err != nil {
			return err
		}
		if _, err = New(nft).Sync(context.Background(), second, false); err != nil {
			return err
		}
		// A restarted agent finds the table intact (its stamp and
		// chains read back as written) and writes nothing.
		res, err := New(nft).Sync(context.Background(), second, false)
		if err == nil && res.Wrote {
			err = fmt.Errorf("a restarted enforcer rewrote an intact table")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got, want := listElements(t, viaNetlink), listElements(t, viaNFT)
	if got != want {
		t.Errorf("netlink-written table differs from the nft-written one:\n%s", lineDiff(strings.Split(want, "\n"), strings.Split(got, "\n")))
	}
	if !strings.Contains(got, "10.1.0.9 . tcp . 8443") || !strings.Contains(got, "fd01::9 : goto") {
		t.Errorf("the added pod's elements are missing:\n%s", got)
	}
}

// listElements lists every set's and map's elements in ns, sorted.
func listElements(t *testing.T, ns *testnet.Netns) string {
	t.Helper()
	var lines []string
	err := ns.Do(func() error {
		nft, err := NewNFTables()
		if err != nil {
			return err
		}
		for _, kind := range []string{"set", "map"} {
			names, err := nft.List(context.Background(), kind+"s")
			if err != nil {
				return err
			}
			for _, name := range names {
				elems, err := nft.ListElements(context.Background(), kind, name)
				if err != nil {
					return err
				}
				for _, el := range elems {
					lines = append(lines, fmt.Sprintf("%s %s { %s : %s }", kind, name, strings.Join(el.Key, " . "), strings.Join(el.Value, " . ")))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// TestKernelFreshBuildAtScale builds a table for 10k pods and 1k policies
// where there is none (structure by nft, elements by netlink in several
// transactions) and checks that the kernel holds exactly what one nft
// transaction writes, and that a restarted agent adopts it.
func TestKernelFreshBuildAtScale(t *testing.T) {
	testnet.RequireRoot(t)
	m := policy.Compile(scaleInput(pt.NewScale(10000, 1000)))
	viaNetlink, viaNFT := testnet.NewNetns(t, "freshnl"), testnet.NewNetns(t, "freshnft")
	for _, ns := range []*testnet.Netns{viaNetlink, viaNFT} {
		err := ns.Do(func() error {
			nft, err := NewNFTables()
			if err != nil {
				return err
			}
			var opts []Option
			if ns == viaNetlink {
				nl, err := NewNetlink()
				if err != nil {
					return err
				}
				defer nl.Close()
				opts = append(opts, WithNetlink(nl))
			}
			if _, err := New(nft, opts...).Sync(context.Background(), m, false); err != nil {
				return err
			}
			if res, err := New(nft).Sync(context.Background(), m, false); err != nil || res.Wrote {
				return fmt.Errorf("a restarted enforcer rewrote an intact table (err %v)", err)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", ns, err)
		}
	}
	got, want := normalizedRuleset(t, viaNetlink), normalizedRuleset(t, viaNFT)
	if got != want {
		t.Errorf("the table built through netlink differs from nft's:\n%s", lineDiff(strings.Split(want, "\n"), strings.Split(got, "\n")))
	}
}

// normalizedRuleset lists the namespace's ruleset as JSON objects, one a
// line, without handles and with set elements sorted (a hash set lists in
// its seed's order), sorted.
func normalizedRuleset(t *testing.T, ns *testnet.Netns) string {
	t.Helper()
	var doc struct {
		Nftables []map[string]any `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(ns.Exec(t, "nft", "-j", "list", "ruleset")), &doc); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, obj := range doc.Nftables {
		for _, body := range obj {
			if b, ok := body.(map[string]any); ok {
				delete(b, "handle")
				if elems, ok := b["elem"].([]any); ok {
					slices.SortFunc(elems, func(x, y any) int {
						bx, _ := json.Marshal(x)
						by, _ := json.Marshal(y)
						return strings.Compare(string(bx), string(by))
					})
				}
			}
		}
		line, _ := json.Marshal(obj)
		lines = append(lines, string(line))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
