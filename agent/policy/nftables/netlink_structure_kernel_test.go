package nftables

import (
	"context"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"

	"github.com/plexus-net/plexus/agent/policy"
	pt "github.com/plexus-net/plexus/agent/policy/policytest"
	"github.com/plexus-net/plexus/internal/testnet"
)

// everyShape returns policies that make every rule shape, set kind and
// chain kind the layout has: pod peers (hash sets), ipBlocks with excepts (one
// reaching the family's last address), numbered ports, port ranges,
// ingress and egress named ports, any peer, any port, both directions,
// several policies isolating one pod (set chains of several jumps).
func everyShape(port int) []*networkingv1.NetworkPolicy {
	const tcp, udp, sctp = "TCP", "UDP", "SCTP"
	everywhere := []networkingv1.NetworkPolicyPeer{
		{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{"10.0.0.0/8", "192.168.1.0/24"}}},
		{IPBlock: &networkingv1.IPBlock{CIDR: "::/0", Except: []string{"fd00::/8"}}},
	}
	return pt.NPs(
		pt.NP("a", "web", "x", pt.IngressOnly, pt.IngressRules(
			pt.In(pt.Peers(pt.PodPeer("y")), pt.Port(tcp, port), pt.PortRange(udp, 5000, 5010)),
			pt.In(pt.BlockPeers(true), pt.Port(sctp, 9)),
			pt.In(pt.Peers(pt.NSPeer("b"), pt.PodPeer("y")), pt.NamedPort(tcp, "http")),
		), nil),
		pt.NP("a", "deny", "", pt.Both, nil, nil),
		pt.NP("a", "out", "", pt.EgressOnly, nil, pt.EgressRules(
			pt.Out(everywhere, pt.Port(tcp, 443)),
			pt.Out(pt.Peers(pt.NSPeer("")), pt.NamedPort(tcp, "http")),
			pt.Out(nil, pt.Port(udp, 53)),
		)),
		pt.NP("b", "any", "", pt.IngressOnly, pt.IngressRules(pt.In(nil)), nil),
		pt.NP("c", "from-a", "", pt.IngressOnly, pt.IngressRules(pt.In(pt.Peers(pt.NSPeer("a"))), pt.In(pt.BlockPeers(true))), nil),
	)
}

// TestKernelNetlinkStructureWritesWhatNFTWrites moves a table through
// policies added, changed (a port, a rule added) and deleted, each step
// one structural netlink transaction, and checks after each that the
// kernel holds what nft writes for the same model in a fresh namespace:
// `nft -j list ruleset` rule by rule, sets with their elements, counters.
func TestKernelNetlinkStructureWritesWhatNFTWrites(t *testing.T) {
	testnet.RequireRoot(t)
	model := func(policies []*networkingv1.NetworkPolicy) *policy.Model {
		m := policy.Compile(policy.Input{NodeName: pt.NodeName, NodeIPs: pt.NodeIPs(), Pods: pt.Pods(), Namespaces: pt.Namespaces(), Policies: policies})
		if len(m.Errors) > 0 {
			t.Fatalf("compile: %v", m.Errors)
		}
		return m
	}
	changed := everyShape(81)
	// A rule added to one policy, another policy deleted.
	changed[0].Spec.Ingress = append(changed[0].Spec.Ingress, pt.In(pt.Peers(pt.PodPeer("w")), pt.ProtoOnly("UDP")))
	changed = append(changed[:3], changed[4:]...)
	steps := []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
	}{
		{"policies added", everyShape(80)},
		{"port changed, rule added, policy deleted", changed},
		{"every policy deleted", nil},
		{"policies added again", everyShape(80)},
	}

	viaNetlink := testnet.NewNetns(t, "nlstruct")
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
		_, err = e.Sync(context.Background(), model(nil), false)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			m := model(step.policies)
			before := e.structureWrites
			if err := viaNetlink.Do(func() error { _, err := e.Sync(context.Background(), m, false); return err }); err != nil {
				t.Fatal(err)
			}
			if e.structureWrites != before+1 || e.prev == nil {
				t.Fatalf("not written in one structural netlink transaction (%d → %d)", before, e.structureWrites)
			}
			viaNFT := testnet.NewNetns(t, "nftstruct")
			err := viaNFT.Do(func() error {
				nft, err := NewNFTables()
				if err != nil {
					return err
				}
				_, err = New(nft).Sync(context.Background(), m, false)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			got, want := normalizedRuleset(t, viaNetlink), normalizedRuleset(t, viaNFT)
			if got != want {
				t.Errorf("netlink-written table differs from the nft-written one:\n%s", lineDiff(strings.Split(want, "\n"), strings.Split(got, "\n")))
			}
			// The same, below nft's decompiler: each chain's rules in
			// order, as the expressions the kernel holds.
			gotCode, wantCode := ruleBytecode(t, viaNetlink), ruleBytecode(t, viaNFT)
			if gotCode != wantCode {
				t.Errorf("netlink-written rules differ from nft's in bytecode:\n%s", lineDiff(strings.Split(wantCode, "\n"), strings.Split(gotCode, "\n")))
			}
			if len(step.policies) > 0 && !strings.Contains(got, `/allow"},{"accept":null}`) {
				t.Errorf("no policy-set chain's lookup was written:\n%s", got)
			}
			// A full sync (a restarted agent) finds the table intact.
			err = viaNetlink.Do(func() error {
				nft, err := NewNFTables()
				if err != nil {
					return err
				}
				res, err := New(nft).Sync(context.Background(), m, true)
				if err == nil && res.Wrote {
					t.Error("a restarted enforcer rewrote the netlink-written table")
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// ruleBytecode returns the rules of the policy table as the kernel dumps
// them (`nft --debug=netlink list table`: one block of expressions per
// rule), by chain in name order and in rule order within a chain; handles
// are dropped.
func ruleBytecode(t *testing.T, ns *testnet.Netns) string {
	t.Helper()
	out := ns.Exec(t, "nft", "--debug=netlink", "list", "table", string(TableFamily), TableName)
	chains := map[string][]string{}
	prefix := string(TableFamily) + " " + TableName + " "
	var chain string
	var block []string
	flush := func() {
		if chain != "" && len(block) > 0 {
			chains[chain] = append(chains[chain], strings.Join(block, "\n"))
		}
		chain, block = "", nil
	}
	for _, l := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(l, prefix) && !strings.HasPrefix(l, prefix+"@"):
			flush()
			chain = strings.Fields(strings.TrimPrefix(l, prefix))[0]
		case chain != "" && strings.HasPrefix(l, "  ["):
			block = append(block, l)
		default:
			flush()
		}
	}
	flush()
	var lines []string
	for _, name := range sortedKeys(chains) {
		lines = append(lines, "chain "+name)
		lines = append(lines, chains[name]...)
	}
	if len(lines) == 0 {
		t.Fatalf("no rules in the bytecode listing:\n%s", out)
	}
	return strings.Join(lines, "\n")
}

// TestKernelNetlinkFailureRebuilds: when a structural netlink transaction
// fails (here the table was changed behind the agent's back: the stamp
// element it deletes is gone), the kernel applies none of it, Sync says
// so, and the next sync rebuilds the table through nft.
func TestKernelNetlinkFailureRebuilds(t *testing.T) {
	testnet.RequireRoot(t)
	model := func(port int) *policy.Model {
		return policy.Compile(policy.Input{NodeName: pt.NodeName, NodeIPs: pt.NodeIPs(), Pods: pt.Pods(), Namespaces: pt.Namespaces(), Policies: everyShape(port)})
	}
	ns := testnet.NewNetns(t, "nlfail")
	var e *Enforcer
	err := ns.Do(func() error {
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
		_, err = e.Sync(context.Background(), model(80), false)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.Exec(t, "nft", "flush", "set", string(TableFamily), TableName, setStamp)
	before := normalizedRuleset(t, ns)
	sync := func() error {
		return ns.Do(func() error { _, err := e.Sync(context.Background(), model(81), false); return err })
	}
	tried := e.structureWrites
	if err := sync(); err == nil || e.prev != nil || e.structureWrites != tried+1 {
		t.Fatalf("the failed netlink transaction (tried: %v) reported %v (state kept: %v)", e.structureWrites > tried, err, e.prev != nil)
	}
	if after := normalizedRuleset(t, ns); after != before {
		t.Errorf("a failed transaction changed the table:\n%s", lineDiff(strings.Split(before, "\n"), strings.Split(after, "\n")))
	}
	structural := e.structureWrites
	if err := sync(); err != nil {
		t.Fatalf("the rebuild failed: %v", err)
	}
	if e.structureWrites != structural {
		t.Error("the rebuild went through netlink, not nft")
	}
	viaNFT := testnet.NewNetns(t, "nftfail")
	err = viaNFT.Do(func() error {
		nft, err := NewNFTables()
		if err != nil {
			return err
		}
		_, err = New(nft).Sync(context.Background(), model(81), false)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := normalizedRuleset(t, ns), normalizedRuleset(t, viaNFT); got != want {
		t.Errorf("the rebuilt table differs from nft's:\n%s", lineDiff(strings.Split(want, "\n"), strings.Split(got, "\n")))
	}
}
