// Package masquerade makes pod traffic that leaves the cluster look like it
// comes from the node (SNAT to the node's address on the way out), and
// leaves every packet between cluster addresses alone, so pods see each
// other's real IPs.
//
// It owns one nftables table (TableFamily TableName) and nothing else,
// writes it as one transaction, and writes nothing when the table already
// matches.
package masquerade

import (
	"fmt"
	"net/netip"
	"slices"

	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/nfttable"
	"github.com/plexus-net/plexus/internal/ipfamily"
)

const (
	// TableFamily is the family of Plexus's masquerade table: inet, so one
	// table serves IPv4 and IPv6.
	TableFamily = knftables.InetFamily
	// TableName is the nftables table Plexus owns for masquerading.
	TableName = "plexus-masq"
	// chainPostrouting is the NAT base chain at postrouting.
	chainPostrouting = "postrouting"
	// setPods4 and the others hold the cluster's ranges as intervals.
	setPods4    = "pod-cidrs-v4"
	setPods6    = "pod-cidrs-v6"
	setCluster4 = "cluster-cidrs-v4"
	setCluster6 = "cluster-cidrs-v6"
	// ruleVersion is part of every rule comment: rules can only be read back
	// by comment (knftables does not return rule text), so a change of rule
	// text must change its comment to be noticed on nodes already running.
	ruleVersion = "v1"
)

// Config is what the masquerade needs: the cluster's ranges.
type Config struct {
	// PodCIDRs are the cluster pod CIDRs (all nodes'); their traffic is
	// masqueraded when it leaves the cluster.
	PodCIDRs []netip.Prefix
	// ServiceCIDRs are the cluster service CIDRs; traffic to them is never
	// masqueraded.
	ServiceCIDRs []netip.Prefix
}

// setTypes gives each set's element type, in the order the sets are created.
var setTypes = []struct{ name, typ string }{
	{setCluster4, "ipv4_addr"}, {setCluster6, "ipv6_addr"},
	{setPods4, "ipv4_addr"}, {setPods6, "ipv6_addr"},
}

// desired computes the table content for cfg. It is pure.
func desired(cfg Config) nfttable.Table {
	cluster := append(slices.Clone(cfg.PodCIDRs), cfg.ServiceCIDRs...)
	elems := map[string][]string{
		setPods4:    elements(cfg.PodCIDRs, true),
		setPods6:    elements(cfg.PodCIDRs, false),
		setCluster4: elements(cluster, true),
		setCluster6: elements(cluster, false),
	}
	t := nfttable.Table{
		Comment: "Plexus: masquerade pod traffic leaving the cluster",
		Chains: []*knftables.Chain{{
			Name:     chainPostrouting,
			Type:     knftables.PtrTo(knftables.NATType),
			Hook:     knftables.PtrTo(knftables.PostroutingHook),
			Priority: knftables.PtrTo(knftables.SNATPriority),
		}},
	}
	for _, st := range setTypes {
		t.Sets = append(t.Sets, nfttable.Set{
			Name: st.name, Type: st.typ, Flags: []knftables.SetFlag{knftables.IntervalFlag},
			Elements: elems[st.name], Canonical: canonical,
		})
	}
	for _, f := range []struct{ ip, pods, cluster, family string }{
		{"ip", setPods4, setCluster4, "IPv4"},
		{"ip6", setPods6, setCluster6, "IPv6"},
	} {
		t.Rules = append(t.Rules, &knftables.Rule{
			Chain: chainPostrouting,
			// fully-random: pods of one node share the node's address, so let
			// the kernel pick source ports at random rather than collide.
			Rule: knftables.Concat(
				f.ip, "saddr", "@", f.pods,
				f.ip, "daddr", "!=", "@", f.cluster,
				"masquerade", "fully-random",
			),
			Comment: knftables.PtrTo(fmt.Sprintf("%s pods leaving the cluster (%s)", f.family, ruleVersion)),
		})
	}
	return t
}

// elements returns the prefixes of one family as set elements: masked,
// without those inside another (an interval set refuses overlapping
// elements), sorted.
func elements(prefixes []netip.Prefix, is4 bool) []string {
	var ps []netip.Prefix
	for _, p := range prefixes {
		if p.IsValid() && p.Addr().Is4() == is4 {
			ps = append(ps, p.Masked())
		}
	}
	slices.SortFunc(ps, ipfamily.ComparePrefix)
	out := []string{}
	var last netip.Prefix
	for _, p := range ps {
		// Sorted by address then length: anything inside last comes right
		// after it.
		if last.IsValid() && last.Contains(p.Addr()) {
			continue
		}
		last = p
		out = append(out, p.String())
	}
	return out
}
