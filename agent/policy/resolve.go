package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// allPorts is the last port number: a port entry without a number means
// every port of its protocol.
const allPorts = 65535

// compiler resolves the rules of one policy.
type compiler struct {
	ix       *index
	policy   *networkingv1.NetworkPolicy
	selected []*pod // the local pods the policy selects
	events   *[]errorEvent
	cache    *resolveCache
	// keys keeps the rules' peer keys for the policy's later compiles.
	keys map[ruleID]peerKeys
}

// ruleID is one rule of a policy.
type ruleID struct {
	direction Direction
	index     int
}

// peerKeys is what compiler.peerKeys returns for a rule.
type peerKeys struct {
	pods, blocks string
	readable     bool
}

// resolveCache holds what one Compile resolved, by spec: policies often
// repeat the same peers (every pod of a namespace, env=prod namespaces).
type resolveCache struct {
	peers map[string]*peerResolution // by Rule.PeerKey
	named map[string][]AddrPort      // by Rule.NamedKey
}

// peerResolution is a rule's peers resolved.
type peerResolution struct {
	pods      []*pod
	podAddrs  []netip.Addr
	blocks    []AddrRange
	blocksSet AddrSet
}

func (c *compiler) errorf(format string, args ...any) {
	err := fmt.Errorf("policy %s/%s: "+format, append([]any{c.policy.Namespace, c.policy.Name}, args...)...)
	*c.events = append(*c.events, errorEvent{errs: []error{err}})
}

// namedPort is a port entry that names a container port.
type namedPort struct {
	protocol corev1.Protocol
	name     string
}

// rule compiles one ingress (peers = from) or egress (peers = to) rule.
func (c *compiler) rule(d Direction, i int, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) Rule {
	r := Rule{Index: i, AnyPeer: len(peers) == 0, AnyPort: len(ports) == 0}
	var peerPods []*pod
	var blocks []AddrRange
	var readable bool
	if !r.AnyPeer {
		id := ruleID{d, i}
		k, ok := c.keys[id]
		if !ok {
			k.pods, k.blocks, k.readable = c.peerKeys(peers)
			c.keys[id] = k
		}
		r.PodPeerKey, r.BlockPeerKey, readable = k.pods, k.blocks, k.readable
		key := r.PodPeerKey + "|" + r.BlockPeerKey
		var res *peerResolution
		if readable {
			// Shared peers report their errors once per model (see
			// errorEvent), whoever resolves them.
			res = c.sharedPeers(d, i, key, peers)
		} else {
			res = c.resolvePeers(d, i, peers)
		}
		if !readable {
			r.PodPeerKey, r.BlockPeerKey = "", ""
		}
		for _, p := range peers {
			r.HasBlockPeers = r.HasBlockPeers || p.IPBlock != nil
			r.HasPodPeers = r.HasPodPeers || p.IPBlock == nil
		}
		r.PeerPods, r.PeerBlocks = res.podAddrs, res.blocksSet
		peerPods, blocks = res.pods, res.blocks
	}

	var named []namedPort
	for _, p := range ports {
		proto, ok := protocolOf(p.Protocol)
		if !ok {
			c.errorf("%s rule %d: protocol %q not supported (the port matches nothing)", d, i, *p.Protocol)
			continue
		}
		switch {
		case p.Port == nil:
			r.Ports = append(r.Ports, PortRange{Protocol: proto, First: 0, Last: allPorts})
		case p.Port.Type == intstr.String:
			named = append(named, namedPort{protocol: protocolName(p.Protocol), name: p.Port.StrVal})
		default:
			first := uint16(p.Port.IntVal)
			last := first
			if p.EndPort != nil && *p.EndPort >= p.Port.IntVal {
				last = uint16(*p.EndPort)
			}
			r.Ports = append(r.Ports, PortRange{Protocol: proto, First: first, Last: last})
		}
	}
	r.Ports = mergePorts(r.Ports)
	if len(named) > 0 {
		r.HasNamedPorts = true
		// Ingress: the port is the destination's, i.e. the selected
		// pod's. Egress: the destination is the peer, which must be a
		// pod that defines the name.
		if d == Ingress {
			r.NamedPorts = resolveNamed(c.selected, named)
			return r
		}
		if !r.AnyPeer && !readable {
			// Unreadable peers: resolved for this rule alone.
			r.NamedPorts = resolveNamed(c.egressNamedPortOwners(r, peerPods, blocks), named)
			return r
		}
		peerKey := r.PodPeerKey + "|" + r.BlockPeerKey
		if r.AnyPeer {
			peerKey = "any"
		}
		r.NamedKey = fmt.Sprintf("%s|%v", peerKey, named)
		cached, ok := c.cache.named[r.NamedKey]
		if !ok {
			cached = resolveNamed(c.egressNamedPortOwners(r, peerPods, blocks), named)
			c.cache.named[r.NamedKey] = cached
		}
		r.NamedPorts = cached
	}
	return r
}

// sharedPeers resolves readable peers through the cache and records their
// errors as one shared event under key.
func (c *compiler) sharedPeers(d Direction, i int, key string, peers []networkingv1.NetworkPolicyPeer) *peerResolution {
	own := *c.events
	*c.events = nil
	res := c.cache.peers[key]
	if res == nil {
		res = c.resolvePeers(d, i, peers)
		c.cache.peers[key] = res
	} else {
		// The messages name this rule's position: read the blocks again
		// (cheap) for them alone.
		for j, peer := range peers {
			if peer.IPBlock != nil {
				c.ipBlock(d, i, j, peer.IPBlock)
			}
		}
	}
	var shared []error
	for _, e := range *c.events {
		shared = append(shared, e.errs...)
	}
	*c.events = own
	if len(shared) > 0 {
		*c.events = append(*c.events, errorEvent{key: key, errs: shared})
	}
	return res
}

// resolvePeers resolves a rule's peers.
func (c *compiler) resolvePeers(d Direction, i int, peers []networkingv1.NetworkPolicyPeer) *peerResolution {
	res := &peerResolution{}
	for j, peer := range peers {
		if peer.IPBlock != nil {
			res.blocks = append(res.blocks, c.ipBlock(d, i, j, peer.IPBlock)...)
			continue
		}
		if res.pods == nil {
			res.pods = c.peerPods(peer) // a fresh slice: no copy
		} else {
			res.pods = append(res.pods, c.peerPods(peer)...)
		}
	}
	// Sized once and sorted in place (pod addresses are unmapped when
	// parsed): the peers of env=prod namespaces are thousands of pods.
	n := 0
	for _, p := range res.pods {
		n += len(p.ips)
	}
	addrs := make([]netip.Addr, 0, n)
	for _, p := range res.pods {
		addrs = append(addrs, p.ips...)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	res.podAddrs = slices.Clip(slices.Compact(addrs))
	res.blocksSet = newAddrSet(res.blocks)
	return res
}

// peerKeys returns the canonical spec of the selector peers and of the
// ipBlock peers; readable is false if a selector cannot be read (such peers
// are resolved, and their errors reported, per rule).
func (c *compiler) peerKeys(peers []networkingv1.NetworkPolicyPeer) (pods, blocks string, readable bool) {
	var podParts, blockParts []string
	for _, p := range peers {
		if p.IPBlock != nil {
			ex := slices.Clone(p.IPBlock.Except)
			slices.Sort(ex)
			blockParts = append(blockParts, "block:"+p.IPBlock.CIDR+"!"+strings.Join(ex, ","))
			continue
		}
		part, ok := c.selectorPeerKey(p)
		if !ok {
			return "", "", false
		}
		podParts = append(podParts, part)
	}
	join := func(parts []string) string {
		slices.Sort(parts)
		return strings.Join(slices.Compact(parts), ";")
	}
	return join(podParts), join(blockParts), true
}

// selectorPeerKey returns the canonical spec of one selector peer.
func (c *compiler) selectorPeerKey(p networkingv1.NetworkPolicyPeer) (string, bool) {
	switch {
	case p.NamespaceSelector != nil:
		ns, err1 := metav1.LabelSelectorAsSelector(p.NamespaceSelector)
		pods := labels.Everything()
		var err2 error
		if p.PodSelector != nil {
			pods, err2 = metav1.LabelSelectorAsSelector(p.PodSelector)
		}
		if err1 != nil || err2 != nil {
			return "", false
		}
		return "ns:" + ns.String() + "/pods:" + pods.String(), true
	case p.PodSelector != nil:
		pods, err := metav1.LabelSelectorAsSelector(p.PodSelector)
		if err != nil {
			return "", false
		}
		return "in:" + c.policy.Namespace + "/pods:" + pods.String(), true
	}
	return "none", true
}

// ipBlock returns the block's addresses less its excepts.
func (c *compiler) ipBlock(d Direction, i, j int, b *networkingv1.IPBlock) []AddrRange {
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		c.errorf("%s rule %d peer %d: ipBlock cidr: %v (the peer matches nothing)", d, i, j, err)
		return nil
	}
	var cut []AddrRange
	for _, e := range b.Except {
		ep, err := netip.ParsePrefix(e)
		if err != nil {
			// Fail closed: an unreadable except drops the whole block.
			c.errorf("%s rule %d peer %d: ipBlock except: %v (the peer matches nothing)", d, i, j, err)
			return nil
		}
		cut = append(cut, rangeOf(ep))
	}
	return subtractRanges(rangeOf(cidr), cut)
}

// peerPods returns the pods a podSelector / namespaceSelector peer selects.
func (c *compiler) peerPods(peer networkingv1.NetworkPolicyPeer) []*pod {
	podSel := labels.Everything()
	if peer.PodSelector != nil {
		podSel = c.selector(peer.PodSelector)
	}
	namespaces := []string{c.policy.Namespace}
	if peer.NamespaceSelector != nil {
		nsSel := c.selector(peer.NamespaceSelector)
		namespaces = nil
		for _, ns := range c.ix.namespaces {
			if nsSel.Matches(c.ix.nsLabels[ns]) {
				namespaces = append(namespaces, ns)
			}
		}
	} else if peer.PodSelector == nil {
		return nil // an empty peer: the API server refuses it
	}
	var out []*pod
	for _, ns := range namespaces {
		for _, p := range c.ix.byNamespace[ns] {
			if podSel.Matches(p.labels) {
				out = append(out, p)
			}
		}
	}
	return out
}

// selector converts s; an unreadable selector matches nothing (the peer
// allows less, never more).
func (c *compiler) selector(s *metav1.LabelSelector) labels.Selector {
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		c.errorf("peer selector: %v (the peer matches nothing)", err)
		return labels.Nothing()
	}
	return sel
}

// egressNamedPortOwners returns the pods an egress rule's named ports
// resolve against: every pod the rule's peers cover.
func (c *compiler) egressNamedPortOwners(r Rule, peerPods []*pod, blocks []AddrRange) []*pod {
	if r.AnyPeer {
		return c.ix.pods
	}
	out := slices.Clone(peerPods)
	if len(blocks) > 0 {
		inBlocks := newAddrSet(blocks)
		for _, p := range c.ix.pods {
			for _, a := range p.ips {
				if inBlocks.Contains(a) {
					out = append(out, p)
					break
				}
			}
		}
	}
	return out
}

// resolveNamed returns every owner address with the number its container
// ports give each name (matching the protocol too).
func resolveNamed(owners []*pod, named []namedPort) []AddrPort {
	var out []AddrPort
	for _, p := range owners {
		for _, n := range named {
			for _, cp := range p.ports {
				if cp.Name != n.name || protocolName(&cp.Protocol) != n.protocol {
					continue
				}
				proto, _ := protocolOf(&cp.Protocol)
				for _, a := range p.ips {
					out = append(out, AddrPort{Addr: a, Protocol: proto, Port: uint16(cp.ContainerPort)})
				}
			}
		}
	}
	slices.SortFunc(out, compareAddrPorts)
	return slices.Compact(out)
}

// protocolName returns p with the API's default (TCP) applied.
func protocolName(p *corev1.Protocol) corev1.Protocol {
	if p == nil || *p == "" {
		return corev1.ProtocolTCP
	}
	return *p
}

// protocolOf maps an API protocol (default TCP) to its number.
func protocolOf(p *corev1.Protocol) (Protocol, bool) {
	switch protocolName(p) {
	case corev1.ProtocolTCP:
		return TCP, true
	case corev1.ProtocolUDP:
		return UDP, true
	case corev1.ProtocolSCTP:
		return SCTP, true
	}
	return 0, false
}

// mergePorts sorts ranges and merges overlapping or adjacent ones of the
// same protocol (an nft interval set refuses overlapping elements).
func mergePorts(in []PortRange) []PortRange {
	in = slices.Clone(in)
	slices.SortFunc(in, func(a, b PortRange) int {
		if a.Protocol != b.Protocol {
			return int(a.Protocol) - int(b.Protocol)
		}
		return int(a.First) - int(b.First)
	})
	var out []PortRange
	for _, r := range in {
		if n := len(out); n > 0 && out[n-1].Protocol == r.Protocol && int(out[n-1].Last)+1 >= int(r.First) {
			out[n-1].Last = max(out[n-1].Last, r.Last)
			continue
		}
		out = append(out, r)
	}
	return out
}
