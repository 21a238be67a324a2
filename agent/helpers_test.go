package agent

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/plexus-net/plexus/agent/routing"
	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// Builders of API objects for the tables.

// effectiveNetwork is a served dual-stack configuration in mode at appliedGeneration gen.
func effectiveNetwork(mode v1.RoutingMode, gen int64) *v1.ClusterNetwork {
	spec := v1.ClusterNetworkSpec{
		IPFamilies:     []v1.IPFamily{v1.IPv4, v1.IPv6},
		PodNetwork:     v1.PodNetwork{CIDRs: []v1.CIDR{"10.244.0.0/16", "fd10:244::/56"}},
		ServiceNetwork: v1.ServiceNetwork{CIDRs: []v1.CIDR{"10.96.0.0/16", "fd00:10:96::/112"}},
		Routing: &v1.Routing{Mode: mode, Masquerade: ptr.To(true),
			VXLAN: &v1.VXLAN{VNI: ptr.To[int32](1), Port: ptr.To[int32](8472)}},
	}
	return &v1.ClusterNetwork{
		ObjectMeta: metav1.ObjectMeta{Name: v1.DefaultClusterNetworkName, Generation: gen},
		Spec:       *spec.DeepCopy(),
		Status:     v1.ClusterNetworkStatus{AppliedGeneration: gen, ObservedGeneration: gen, Effective: &spec},
	}
}

// kubeNode is a Node with the given InternalIPs.
func kubeNode(name string, ips ...string) corev1.Node {
	n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	for _, ip := range ips {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
	}
	n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: name})
	return n
}

// annotated adds the node IP annotation.
func annotated(n corev1.Node, ips string) corev1.Node {
	n.Annotations = map[string]string{NodeIPAnnotation: ips}
	return n
}

// nodeNetwork is a NodeNetwork with pod CIDRs.
func nodeNetwork(name string, cidrs ...v1.CIDR) v1.NodeNetwork {
	return v1.NodeNetwork{ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1, UID: k8stypes.UID("uid-" + name)}, Spec: v1.NodeNetworkSpec{PodCIDRs: cidrs}}
}

// threeNodes is node-1 and node-2 on 10.99.0.0/24 and node-3 on 10.99.1.0/24, dual-stack.
func threeNodes() ([]corev1.Node, []v1.NodeNetwork) {
	return []corev1.Node{
			kubeNode("node-1", "10.99.0.11", "fd10:99::11"),
			kubeNode("node-2", "10.99.0.12", "fd10:99::12"),
			kubeNode("node-3", "10.99.1.13", "fd10:99:1::13"),
		}, []v1.NodeNetwork{
			nodeNetwork("node-1", "10.244.0.0/24", "fd10:244::/64"),
			nodeNetwork("node-2", "10.244.1.0/24", "fd10:244:0:1::/64"),
			nodeNetwork("node-3", "10.244.2.0/24", "fd10:244:0:2::/64"),
		}
}

// testUplink is node-1's uplink.
var testUplink = routing.Uplink{Name: "eth0", MTU: 1500, Subnets: []netip.Prefix{
	netip.MustParsePrefix("10.99.0.11/24"), netip.MustParsePrefix("fd10:99::11/64"),
}}

// summary prints a Desired in one readable line per part, for table comparisons.
func summary(d Desired) string {
	r := d.Routing
	var b strings.Builder
	fmt.Fprintf(&b, "routing: mode=%s mtu=%d vni=%d port=%d\n", r.Mode, r.MTU, r.VXLAN.VNI, r.VXLAN.Port)
	fmt.Fprintf(&b, "local: %s ips=%v cidrs=%v uplink=%s\n", r.Local.Name, r.Local.NodeIPs, r.Local.PodCIDRs, r.Local.Uplink.Name)
	for _, p := range r.Peers {
		fmt.Fprintf(&b, "peer: %s ips=%v cidrs=%v\n", p.Name, p.NodeIPs, p.PodCIDRs)
	}
	st := d.NodeState
	fmt.Fprintf(&b, "node state: v4=%s v6=%s mtu=%d\n", st.PodCIDRs.IPv4, st.PodCIDRs.IPv6, st.MTU)
	if d.Masquerade == nil {
		b.WriteString("masquerade: off\n")
	} else {
		fmt.Fprintf(&b, "masquerade: pods=%v services=%v\n", d.Masquerade.PodCIDRs, d.Masquerade.ServiceCIDRs)
	}
	fmt.Fprintf(&b, "generation: %d", d.ProgrammedGeneration)
	return b.String()
}
