package ipvs

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/nfttable"
	"github.com/plexus-net/plexus/agent/proxy"
)

// The nftables half of the IPVS mode. IPVS balances but never rewrites the
// source; this table masquerades what must come back through this node:
// external traffic (NodePort, load-balancer and external IPs) unless its
// externalTrafficPolicy is Local, traffic to a ClusterIP from outside the
// pod CIDRs (the node itself), and hairpin traffic (an endpoint reaching
// itself through its Service, whose reply would otherwise skip the node).
// As in kube-proxy, packets are marked before IPVS sees them and the mark
// is masqueraded at postrouting; it needs Sysctls (IPVS keeps conntrack
// entries, or no NAT rule ever sees its packets).
const (
	// NFTFamily is the family of the table: inet, one table for both.
	NFTFamily = knftables.InetFamily
	// NFTTable is the nftables table the IPVS mode owns.
	NFTTable = "plexus-ipvs"
	// MasqueradeMark is the packet mark bit meaning "masquerade this".
	MasqueradeMark = 0x4000
	// The chains: dropping and marking before IPVS (forwarded and local
	// traffic), and masquerading.
	chainDropPrerouting = "drop-prerouting"
	chainMarkPrerouting = "mark-prerouting"
	chainMarkOutput     = "mark-output"
	chainPostrouting    = "postrouting"
	// Per family (suffix -v4, -v6): VIPs whose traffic is masqueraded
	// (addr . proto . port), ClusterIPs (masqueraded from non-pod sources),
	// the pod CIDRs, endpoint pairs (addr . addr) for hairpin, and VIPs
	// whose traffic is dropped (action Drop: a Local traffic policy and no
	// local endpoint; IPVS alone could only reject).
	setMasqVIPs    = "masq-vips"
	setDropVIPs    = "drop-vips"
	setClusterVIPs = "cluster-vips"
	setPodCIDRs    = "pod-cidrs"
	setHairpin     = "hairpin"
	// nftRuleVersion is part of every rule comment: rules are compared by
	// comment (knftables does not return rule text), so changing a rule's
	// text must change its comment.
	nftRuleVersion = "v1"
)

// NFTConfig is what the table needs besides the model.
type NFTConfig struct {
	// PodCIDRs are the cluster's pod CIDRs; traffic from elsewhere to a
	// ClusterIP is masqueraded. Empty masquerades all ClusterIP traffic.
	PodCIDRs []netip.Prefix
}

// nftFamily is one IP family's names in the table.
type nftFamily struct {
	suffix, ip, addrType string
}

var nftFamilies = []nftFamily{{"-v4", "ip", "ipv4_addr"}, {"-v6", "ip6", "ipv6_addr"}}

// desiredNFT computes the table for m. It is pure.
func desiredNFT(m proxy.Model, cfg NFTConfig) nfttable.Table {
	sets := map[string][]string{}
	rules := map[string][]*knftables.Rule{}
	for _, f := range nftFamilies {
		for _, name := range []string{setMasqVIPs, setClusterVIPs, setPodCIDRs, setHairpin, setDropVIPs} {
			sets[name+f.suffix] = []string{}
		}
	}
	for _, key := range m.Keys() {
		sp := m.Ports[key]
		suffix := nftFamilies[0].suffix
		if key.Family == proxy.IPv6 {
			suffix = nftFamilies[1].suffix
		}
		// The protocol as a number: nft lists inet_proto elements that way,
		// and the comparison with the kernel's table must see equal text.
		proto, _ := protocolNumber(protocolOf(sp.Protocol))
		for _, vip := range sp.VIPs {
			el := strings.Join([]string{vip.Addr.String(), strconv.Itoa(int(proto)), strconv.Itoa(int(vip.Port))}, " . ")
			if sp.ActionFor(vip.Kind) == proxy.Drop {
				sets[setDropVIPs+suffix] = append(sets[setDropVIPs+suffix], el)
			}
			switch {
			case vip.Kind == proxy.ClusterIP:
				sets[setClusterVIPs+suffix] = append(sets[setClusterVIPs+suffix], el)
			case sp.MasqueradeFor(vip.Kind):
				sets[setMasqVIPs+suffix] = append(sets[setMasqVIPs+suffix], el)
			}
		}
		for _, ep := range append(slices.Clone(sp.ClusterEndpoints), sp.ExternalEndpoints...) {
			sets[setHairpin+suffix] = append(sets[setHairpin+suffix], ep.Addr.String()+" . "+ep.Addr.String())
		}
	}
	for _, p := range cfg.PodCIDRs {
		suffix := nftFamilies[0].suffix
		if p.Addr().Is6() {
			suffix = nftFamilies[1].suffix
		}
		sets[setPodCIDRs+suffix] = append(sets[setPodCIDRs+suffix], p.Masked().String())
	}
	for name, els := range sets {
		slices.Sort(els)
		sets[name] = slices.Compact(els)
	}

	mark := fmt.Sprintf("meta mark set meta mark | %#x", MasqueradeMark)
	for _, f := range nftFamilies {
		vipMatch := []string{f.ip, "daddr", ".", "meta", "l4proto", ".", "th", "dport"}
		rules[chainDropPrerouting] = append(rules[chainDropPrerouting],
			nftRule(chainDropPrerouting, fmt.Sprintf("Local traffic policy without local endpoints (%s)", f.ip),
				append(slices.Clone(vipMatch), "@", setDropVIPs+f.suffix, "drop")...))
		for _, chain := range []string{chainMarkPrerouting, chainMarkOutput} {
			rules[chain] = append(rules[chain],
				nftRule(chain, fmt.Sprintf("external traffic to a VIP, eTP Cluster (%s)", f.ip),
					append(slices.Clone(vipMatch), "@", setMasqVIPs+f.suffix, mark)...),
				nftRule(chain, fmt.Sprintf("ClusterIP traffic not from a pod (%s)", f.ip),
					append(slices.Clone(vipMatch), "@", setClusterVIPs+f.suffix, f.ip, "saddr", "!=", "@", setPodCIDRs+f.suffix, mark)...),
			)
		}
		rules[chainPostrouting] = append(rules[chainPostrouting],
			nftRule(chainPostrouting, fmt.Sprintf("hairpin: an endpoint reaching itself (%s)", f.ip),
				f.ip, "daddr", ".", f.ip, "saddr", "@", setHairpin+f.suffix, "masquerade", "fully-random"))
	}
	rules[chainPostrouting] = append(rules[chainPostrouting],
		nftRule(chainPostrouting, "marked for masquerade",
			// Clear the mark first: VXLAN's outer packet inherits it and must not be masqueraded.
			"meta", "mark", "&", fmt.Sprintf("%#x", MasqueradeMark), "!=", "0",
			"meta", "mark", "set", "meta", "mark", "^", fmt.Sprintf("%#x", MasqueradeMark), "masquerade", "fully-random"))
	t := nfttable.Table{Comment: "Plexus: masquerading for the IPVS service proxy", Chains: nftChains}
	for _, name := range slices.Sorted(maps.Keys(sets)) {
		typ, flags := nftSetType(name)
		t.Sets = append(t.Sets, nfttable.Set{Name: name, Type: typ, Flags: flags, Elements: sets[name]})
	}
	for _, c := range nftChains {
		t.Rules = append(t.Rules, rules[c.Name]...)
	}
	return t
}

func nftRule(chain, comment string, parts ...string) *knftables.Rule {
	return &knftables.Rule{
		Chain:   chain,
		Rule:    knftables.Concat(parts),
		Comment: knftables.PtrTo(fmt.Sprintf("%s (%s)", comment, nftRuleVersion)),
	}
}

// nftSetType returns the type and flags of a set.
func nftSetType(name string) (string, []knftables.SetFlag) {
	for _, f := range nftFamilies {
		switch name {
		case setMasqVIPs + f.suffix, setClusterVIPs + f.suffix, setDropVIPs + f.suffix:
			return f.addrType + " . inet_proto . inet_service", nil
		case setPodCIDRs + f.suffix:
			return f.addrType, []knftables.SetFlag{knftables.IntervalFlag}
		case setHairpin + f.suffix:
			return f.addrType + " . " + f.addrType, nil
		}
	}
	return "", nil
}

// nftChains are the base chains: type, hook, priority.
var nftChains = []*knftables.Chain{
	{Name: chainDropPrerouting, Type: knftables.PtrTo(knftables.FilterType), Hook: knftables.PtrTo(knftables.PreroutingHook), Priority: knftables.PtrTo(knftables.FilterPriority)},
	{Name: chainMarkPrerouting, Type: knftables.PtrTo(knftables.NATType), Hook: knftables.PtrTo(knftables.PreroutingHook), Priority: knftables.PtrTo(knftables.DNATPriority)},
	{Name: chainMarkOutput, Type: knftables.PtrTo(knftables.NATType), Hook: knftables.PtrTo(knftables.OutputHook), Priority: knftables.PtrTo(knftables.DNATPriority)},
	{Name: chainPostrouting, Type: knftables.PtrTo(knftables.NATType), Hook: knftables.PtrTo(knftables.PostroutingHook), Priority: knftables.PtrTo(knftables.SNATPriority)},
}
