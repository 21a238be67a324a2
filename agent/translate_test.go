package agent

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

func TestTranslate(t *testing.T) {
	nodes, nns := threeNodes()
	const threePeers = `peer: node-2 ips=[10.99.0.12 fd10:99::12] cidrs=[10.244.1.0/24 fd10:244:0:1::/64]
peer: node-3 ips=[10.99.1.13 fd10:99:1::13] cidrs=[10.244.2.0/24 fd10:244:0:2::/64]
`
	const local = "local: node-1 ips=[10.99.0.11 fd10:99::11] cidrs=[10.244.0.0/24 fd10:244::/64] uplink=eth0\n"
	const masq = "masquerade: pods=[10.244.0.0/16 fd10:244::/56] services=[10.96.0.0/16 fd00:10:96::/112]\n"

	tests := []struct {
		name string
		in   Inputs
		want string
	}{{
		name: "dual-stack Auto: VXLAN overhead in the pod MTU, every peer with pod CIDRs",
		in:   Inputs{ClusterNetwork: effectiveNetwork(v1.RoutingAuto, 3), Nodes: nodes, NodeNetworks: nns},
		want: "routing: mode=Auto mtu=0 vni=1 port=8472\n" + local + threePeers +
			"node state: v4=10.244.0.0/24 v6=fd10:244::/64 mtu=1450\n" + masq + "generation: 3",
	}, {
		name: "Direct: no overhead",
		in:   Inputs{ClusterNetwork: effectiveNetwork(v1.RoutingDirect, 1), Nodes: nodes, NodeNetworks: nns},
		want: "routing: mode=Direct mtu=0 vni=1 port=8472\n" + local + threePeers +
			"node state: v4=10.244.0.0/24 v6=fd10:244::/64 mtu=1500\n" + masq + "generation: 1",
	}, {
		name: "VXLAN with a configured MTU, VNI and port; masquerade off",
		in: Inputs{ClusterNetwork: func() *v1.ClusterNetwork {
			cn := effectiveNetwork(v1.RoutingVXLAN, 2)
			cn.Status.Effective.Routing.MTU = ptr.To[int32](1400)
			cn.Status.Effective.Routing.Masquerade = ptr.To(false)
			cn.Status.Effective.Routing.VXLAN = &v1.VXLAN{VNI: ptr.To[int32](7), Port: ptr.To[int32](4789)}
			return cn
		}(), Nodes: nodes, NodeNetworks: nns},
		want: "routing: mode=VXLAN mtu=1400 vni=7 port=4789\n" + local + threePeers +
			"node state: v4=10.244.0.0/24 v6=fd10:244::/64 mtu=1400\nmasquerade: off\ngeneration: 2",
	}, {
		name: "a refused spec change: the last good (effective) config is programmed, at its generation",
		in: Inputs{ClusterNetwork: func() *v1.ClusterNetwork {
			cn := effectiveNetwork(v1.RoutingDirect, 4)
			cn.Generation = 5
			cn.Spec.Routing.Mode = v1.RoutingVXLAN
			cn.Spec.PodNetwork.CIDRs = []v1.CIDR{"10.245.0.0/16"}
			return cn
		}(), Nodes: nodes, NodeNetworks: nns},
		want: "routing: mode=Direct mtu=0 vni=1 port=8472\n" + local + threePeers +
			"node state: v4=10.244.0.0/24 v6=fd10:244::/64 mtu=1500\n" + masq + "generation: 4",
	}, {
		name: "peers without pod CIDRs or NodeNetwork are left out; a peer without Node has no node IPs",
		in: Inputs{ClusterNetwork: effectiveNetwork(v1.RoutingAuto, 1),
			Nodes:        []corev1.Node{nodes[0], nodes[1], kubeNode("node-4", "10.99.0.14")},
			NodeNetworks: []v1.NodeNetwork{nns[0], nodeNetwork("node-2"), nns[2]},
		},
		want: "routing: mode=Auto mtu=0 vni=1 port=8472\n" + local +
			"peer: node-3 ips=[] cidrs=[10.244.2.0/24 fd10:244:0:2::/64]\n" +
			"node state: v4=10.244.0.0/24 v6=fd10:244::/64 mtu=1450\n" + masq + "generation: 1",
	}, {
		name: "--node-ip overrides the InternalIPs of the local node only",
		in: Inputs{ClusterNetwork: effectiveNetwork(v1.RoutingAuto, 1), Nodes: nodes, NodeNetworks: nns,
			NodeIPOverride: []netip.Addr{netip.MustParseAddr("fd10:99::21"), netip.MustParseAddr("10.99.0.21")}},
		want: "routing: mode=Auto mtu=0 vni=1 port=8472\n" +
			"local: node-1 ips=[10.99.0.21 fd10:99::21] cidrs=[10.244.0.0/24 fd10:244::/64] uplink=eth0\n" + threePeers +
			"node state: v4=10.244.0.0/24 v6=fd10:244::/64 mtu=1450\n" + masq + "generation: 1",
	}, {
		name: "the annotation beats --node-ip, and peers' annotations are honoured",
		in: Inputs{ClusterNetwork: effectiveNetwork(v1.RoutingAuto, 1),
			Nodes:          []corev1.Node{annotated(nodes[0], "10.99.0.31"), annotated(nodes[1], "10.99.0.32, fd10:99::32"), nodes[2]},
			NodeNetworks:   nns,
			NodeIPOverride: []netip.Addr{netip.MustParseAddr("10.99.0.21")}},
		want: "routing: mode=Auto mtu=0 vni=1 port=8472\n" +
			"local: node-1 ips=[10.99.0.31] cidrs=[10.244.0.0/24 fd10:244::/64] uplink=eth0\n" +
			"peer: node-2 ips=[10.99.0.32 fd10:99::32] cidrs=[10.244.1.0/24 fd10:244:0:1::/64]\n" +
			"peer: node-3 ips=[10.99.1.13 fd10:99:1::13] cidrs=[10.244.2.0/24 fd10:244:0:2::/64]\n" +
			"node state: v4=10.244.0.0/24 v6=fd10:244::/64 mtu=1450\n" + masq + "generation: 1",
	}, {
		name: "IPv6-primary cluster: IPv6 node IPs first (the VXLAN underlay), IPv4 pod CIDR kept",
		in: Inputs{ClusterNetwork: func() *v1.ClusterNetwork {
			cn := effectiveNetwork(v1.RoutingAuto, 1)
			cn.Status.Effective.IPFamilies = []v1.IPFamily{v1.IPv6, v1.IPv4}
			return cn
		}(), Nodes: nodes[:1], NodeNetworks: nns[:1]},
		want: "routing: mode=Auto mtu=0 vni=1 port=8472\n" +
			"local: node-1 ips=[fd10:99::11 10.99.0.11] cidrs=[10.244.0.0/24 fd10:244::/64] uplink=eth0\n" +
			"node state: v4=10.244.0.0/24 v6=fd10:244::/64 mtu=1430\n" + masq + "generation: 1",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.NodeName = "node-1"
			d, err := Translate(tt.in, testUplink)
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(d); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestTranslateWaits(t *testing.T) {
	nodes, nns := threeNodes()
	unserved := effectiveNetwork(v1.RoutingAuto, 0)
	unserved.Status = v1.ClusterNetworkStatus{}
	tests := []struct {
		name   string
		in     Inputs
		reason string
	}{
		{"no ClusterNetwork", Inputs{Nodes: nodes, NodeNetworks: nns}, v1.ReasonWaitingForClusterNetwork},
		{"no effective config yet", Inputs{ClusterNetwork: unserved, Nodes: nodes, NodeNetworks: nns}, v1.ReasonWaitingForClusterNetwork},
		{"no Node", Inputs{ClusterNetwork: effectiveNetwork(v1.RoutingAuto, 1), Nodes: nodes[1:], NodeNetworks: nns}, v1.ReasonWaitingForNode},
		{"Node without InternalIP", Inputs{ClusterNetwork: effectiveNetwork(v1.RoutingAuto, 1),
			Nodes: []corev1.Node{kubeNode("node-1")}, NodeNetworks: nns}, v1.ReasonWaitingForNode},
		{"no NodeNetwork", Inputs{ClusterNetwork: effectiveNetwork(v1.RoutingAuto, 1), Nodes: nodes, NodeNetworks: nns[1:]}, v1.ReasonWaitingForPodCIDRs},
		{"no pod CIDRs yet", Inputs{ClusterNetwork: effectiveNetwork(v1.RoutingAuto, 1), Nodes: nodes,
			NodeNetworks: []v1.NodeNetwork{nodeNetwork("node-1")}}, v1.ReasonWaitingForPodCIDRs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.NodeName = "node-1"
			_, err := Translate(tt.in, testUplink)
			var w *WaitingError
			if !errors.As(err, &w) || w.Reason != tt.reason {
				t.Fatalf("got %v, want a WaitingError with reason %s", err, tt.reason)
			}
		})
	}
}

func TestNodeIPs(t *testing.T) {
	override := []netip.Addr{netip.MustParseAddr("10.0.0.9")}
	tests := []struct {
		name     string
		node     corev1.Node
		override []netip.Addr
		primary6 bool
		want     string
		wantErr  bool
	}{
		{"first InternalIP per family", kubeNode("n", "10.0.0.1", "10.0.0.2", "fd10::1", "fd10::2"), nil, false, "[10.0.0.1 fd10::1]", false},
		{"IPv6 primary orders IPv6 first", kubeNode("n", "10.0.0.1", "fd10::1"), nil, true, "[fd10::1 10.0.0.1]", false},
		{"flag beats InternalIP", kubeNode("n", "10.0.0.1"), override, false, "[10.0.0.9]", false},
		{"annotation beats flag", annotated(kubeNode("n", "10.0.0.1"), "fd10::5,10.0.0.5"), override, false, "[10.0.0.5 fd10::5]", false},
		{"bad annotation", annotated(kubeNode("n", "10.0.0.1"), "10.0.0.5,10.0.0.6"), nil, false, "", true},
		{"no address", kubeNode("n"), nil, false, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NodeIPs(&tt.node, tt.override, tt.primary6)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if err == nil && fmt.Sprint(got) != tt.want {
				t.Errorf("got %v, want %s", got, tt.want)
			}
		})
	}
}
