package agent

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/plexus-net/plexus/agent/cni"
	"github.com/plexus-net/plexus/agent/masquerade"
	"github.com/plexus-net/plexus/agent/policy"
	"github.com/plexus-net/plexus/agent/proxy"
	"github.com/plexus-net/plexus/agent/proxy/manager"
	"github.com/plexus-net/plexus/agent/routing"
	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// WaitingError says the control plane has not given the agent what it needs yet. The agent
// programs nothing, reports it in the NodeNetwork status, and waits for the next API change
// (no backoff retry: retrying cannot help before the API objects change).
type WaitingError struct {
	// Reason is one of the v1alpha1 ReasonWaitingFor* consts.
	Reason string
	// Message says what is missing, for a person.
	Message string
}

// Error returns the message.
func (e *WaitingError) Error() string { return e.Message }

// Inputs are the API objects a sync reads, as the informer caches hold them.
type Inputs struct {
	// NodeName is this node.
	NodeName string
	// ClusterNetwork is the ClusterNetwork "default"; nil if absent.
	ClusterNetwork *v1.ClusterNetwork
	// NodeNetworks are all NodeNetworks, this node's included.
	NodeNetworks []v1.NodeNetwork
	// Nodes are all Nodes, this node's included.
	Nodes []corev1.Node
	// NodeIPOverride is the --node-ip flag (empty: none).
	NodeIPOverride []netip.Addr
	// NetworkPolicies, Pods and Namespaces are every object of the cluster, as the cache holds
	// them (trimmed, shared: read only). The NetworkPolicy plane compiles them.
	NetworkPolicies []*networkingv1.NetworkPolicy
	Pods            []*corev1.Pod
	Namespaces      []*corev1.Namespace
}

// Desired is what a sync programs on the node.
type Desired struct {
	// Routing is the routing data plane's config.
	Routing routing.Config
	// Masquerade is the masquerade config; nil when masquerading is off (the table is removed).
	Masquerade *masquerade.Config
	// NodeState is the CNI node state file's content.
	NodeState cni.NodeState
	// ProgrammedGeneration is the ClusterNetwork status.appliedGeneration this config comes from.
	ProgrammedGeneration int64
	// NodeNetworkGeneration is the generation of this node's NodeNetwork.
	NodeNetworkGeneration int64
	// Services is what the service proxy programs (mode, node identity, backend config).
	Services manager.Desired
	// Policy is what the NetworkPolicy plane enforces.
	Policy PolicyDesired
}

// PolicyDesired is the NetworkPolicy plane's part of the desired state.
type PolicyDesired struct {
	// Enabled is networkPolicy.enabled: false removes every policy rule of the node.
	Enabled bool
	// KeepEstablished is networkPolicy.keepEstablishedConnections: true leaves the connections
	// a change stops allowing alone; false cuts them (their conntrack entries are deleted).
	KeepEstablished bool
	// Input is what the model is compiled from: this node's name and every address the data
	// plane treats as the node, and the cluster's NetworkPolicies, Pods and Namespaces (shared
	// with the cache: read only).
	Input policy.Input
}

// ZoneLabel is the Node label whose value is the node's zone (for topology hints).
const ZoneLabel = corev1.LabelTopologyZone

// LocalNodeIPs applies the node IP rule (see NodeIPs) to this node. It is the first half of the
// translation: the agent needs the node IPs to find the uplink in the kernel before Translate.
func LocalNodeIPs(in Inputs) ([]netip.Addr, error) {
	eff, err := effective(in.ClusterNetwork)
	if err != nil {
		return nil, err
	}
	node := findNode(in.Nodes, in.NodeName)
	if node == nil {
		return nil, &WaitingError{Reason: v1.ReasonWaitingForNode, Message: fmt.Sprintf("no Node named %s", in.NodeName)}
	}
	ips, err := NodeIPs(node, in.NodeIPOverride, primaryIs6(eff))
	if err != nil {
		return nil, &WaitingError{Reason: v1.ReasonWaitingForNode, Message: err.Error()}
	}
	return ips, nil
}

// Translate turns the API objects into the node's desired data plane. It is pure: uplink is what
// the agent found in the kernel for LocalNodeIPs(in). It reads the ClusterNetwork's
// status.effective, never its spec: a spec the operator refused keeps the last good config.
func Translate(in Inputs, uplink routing.Uplink) (Desired, error) {
	eff, err := effective(in.ClusterNetwork)
	if err != nil {
		return Desired{}, err
	}
	nodeIPs, err := LocalNodeIPs(in)
	if err != nil {
		return Desired{}, err
	}
	local := findNodeNetwork(in.NodeNetworks, in.NodeName)
	if local == nil || len(local.Spec.PodCIDRs) == 0 {
		return Desired{}, &WaitingError{Reason: v1.ReasonWaitingForPodCIDRs,
			Message: fmt.Sprintf("the operator has not allocated pod CIDRs to node %s yet", in.NodeName)}
	}
	localCIDRs, err := parseCIDRs(local.Spec.PodCIDRs)
	if err != nil {
		return Desired{}, fmt.Errorf("NodeNetwork %s: %w", in.NodeName, err)
	}

	rc := routing.Config{
		Mode:  routing.Mode(eff.Routing.Mode),
		Local: routing.LocalNode{Name: in.NodeName, NodeIPs: nodeIPs, PodCIDRs: localCIDRs, Uplink: uplink},
		Peers: peers(in, primaryIs6(eff)),
	}
	if eff.Routing.MTU != nil {
		rc.MTU = int(*eff.Routing.MTU)
	}
	if vx := eff.Routing.VXLAN; vx != nil {
		if vx.VNI != nil {
			rc.VXLAN.VNI = uint32(*vx.VNI)
		}
		if vx.Port != nil {
			rc.VXLAN.Port = uint16(*vx.Port)
		}
	}

	d := Desired{
		Routing:               rc,
		ProgrammedGeneration:  in.ClusterNetwork.Status.AppliedGeneration,
		NodeNetworkGeneration: local.Generation,
		NodeState:             cni.NodeState{Version: cni.NodeStateVersion, NodeName: in.NodeName, MTU: routing.EffectiveMTU(rc)},
	}
	for _, p := range localCIDRs {
		if p.Addr().Is4() {
			d.NodeState.PodCIDRs.IPv4 = p
		} else {
			d.NodeState.PodCIDRs.IPv6 = p
		}
	}
	if d.Services, err = servicesDesired(in, eff, nodeIPs); err != nil {
		return Desired{}, err
	}
	d.Policy = policyDesired(in, eff, nodeIPs, localCIDRs)
	if eff.Routing.Masquerade == nil || *eff.Routing.Masquerade {
		mc := masquerade.Config{}
		if mc.PodCIDRs, err = parseCIDRs(eff.PodNetwork.CIDRs); err != nil {
			return Desired{}, fmt.Errorf("effective pod network: %w", err)
		}
		if mc.ServiceCIDRs, err = parseCIDRs(eff.ServiceNetwork.CIDRs); err != nil {
			return Desired{}, fmt.Errorf("effective service network: %w", err)
		}
		d.Masquerade = &mc
	}
	return d, nil
}

// servicesDesired is the service proxy's part of the translation: the effective mode, the node's
// name, zone and node IPs, the NodePort address CIDRs and the cluster's pod CIDRs.
func servicesDesired(in Inputs, eff *v1.ClusterNetworkSpec, nodeIPs []netip.Addr) (manager.Desired, error) {
	d := manager.Desired{Mode: v1.ServiceProxyNFTables, Node: proxy.NodeInfo{Name: in.NodeName, Addresses: slices.Clone(nodeIPs)}}
	if node := findNode(in.Nodes, in.NodeName); node != nil {
		d.Node.Zone = node.Labels[ZoneLabel]
	}
	if sp := eff.ServiceProxy; sp != nil {
		if sp.Mode != "" {
			d.Mode = sp.Mode
		}
		npa, err := parseCIDRs(sp.NodePortAddresses)
		if err != nil {
			return manager.Desired{}, fmt.Errorf("effective serviceProxy.nodePortAddresses: %w", err)
		}
		if len(npa) > 0 {
			d.Node.NodePortAddresses = npa
		}
		if sp.IPVS != nil {
			d.Config.IPVSScheduler = string(sp.IPVS.Scheduler)
		}
	}
	pods, err := parseCIDRs(eff.PodNetwork.CIDRs)
	if err != nil {
		return manager.Desired{}, fmt.Errorf("effective pod network: %w", err)
	}
	d.Config.PodCIDRs = pods
	return d, nil
}

// policyDesired is the NetworkPolicy plane's part of the translation. The node's addresses are
// every source the data plane treats as the node itself (always allowed to reach its own pods,
// the kubelet's probes among them): the node IPs on the uplink, the VXLAN device's VTEP
// addresses (the first address of each local pod CIDR, never a pod's) and the pod gateway of
// each family the node has pods of.
func policyDesired(in Inputs, eff *v1.ClusterNetworkSpec, nodeIPs []netip.Addr, localCIDRs []netip.Prefix) PolicyDesired {
	d := PolicyDesired{Enabled: true}
	if np := eff.NetworkPolicy; np != nil {
		d.Enabled = np.Enabled == nil || *np.Enabled
		d.KeepEstablished = np.KeepEstablishedConnections != nil && *np.KeepEstablishedConnections
	}
	ips := slices.Clone(nodeIPs)
	for _, c := range localCIDRs {
		ips = append(ips, routing.VTEPAddr(c))
		if c.Addr().Is4() {
			ips = append(ips, netip.MustParseAddr(cni.IPv4Gateway))
		} else {
			ips = append(ips, netip.MustParseAddr(cni.IPv6Gateway))
		}
	}
	d.Input = policy.Input{NodeName: in.NodeName, NodeIPs: ips, Policies: in.NetworkPolicies, Pods: in.Pods, Namespaces: in.Namespaces}
	return d
}

// effective returns the configuration the operator serves, or a WaitingError.
func effective(cn *v1.ClusterNetwork) (*v1.ClusterNetworkSpec, error) {
	if cn == nil {
		return nil, &WaitingError{Reason: v1.ReasonWaitingForClusterNetwork,
			Message: fmt.Sprintf("no ClusterNetwork %q", v1.DefaultClusterNetworkName)}
	}
	eff := cn.Status.Effective
	if eff == nil || cn.Status.AppliedGeneration == 0 || eff.Routing == nil {
		return nil, &WaitingError{Reason: v1.ReasonWaitingForClusterNetwork,
			Message: fmt.Sprintf("the operator has not served a valid configuration of ClusterNetwork %q yet", cn.Name)}
	}
	return eff, nil
}

// peers lists every other node with pod CIDRs. A node without a NodeNetwork or pod CIDRs has no
// pods to route to and is left out; one without a usable address is kept without node IPs, so
// routing reports its CIDRs as unroutable.
func peers(in Inputs, primary6 bool) []routing.Peer {
	var out []routing.Peer
	for _, nn := range in.NodeNetworks {
		if nn.Name == in.NodeName || len(nn.Spec.PodCIDRs) == 0 || nn.DeletionTimestamp != nil {
			continue
		}
		p := routing.Peer{Name: nn.Name}
		for _, c := range nn.Spec.PodCIDRs {
			// A malformed CIDR of one peer must not stop the others: skip it (the operator's
			// CRD validation makes it unlikely anyway).
			if pf, err := netip.ParsePrefix(string(c)); err == nil {
				p.PodCIDRs = append(p.PodCIDRs, pf)
			}
		}
		if ips, err := NodeIPs(findNode(in.Nodes, nn.Name), nil, primary6); err == nil {
			p.NodeIPs = ips
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b routing.Peer) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func primaryIs6(eff *v1.ClusterNetworkSpec) bool {
	return len(eff.IPFamilies) > 0 && eff.IPFamilies[0] == v1.IPv6
}

func parseCIDRs(cs []v1.CIDR) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cs))
	for _, c := range cs {
		p, err := netip.ParsePrefix(string(c))
		if err != nil {
			return nil, fmt.Errorf("CIDR %q: %w", c, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func findNode(nodes []corev1.Node, name string) *corev1.Node {
	for i := range nodes {
		if nodes[i].Name == name {
			return &nodes[i]
		}
	}
	return nil
}

func findNodeNetwork(nns []v1.NodeNetwork, name string) *v1.NodeNetwork {
	for i := range nns {
		if nns[i].Name == name {
			return &nns[i]
		}
	}
	return nil
}
