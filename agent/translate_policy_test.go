package agent

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// The NetworkPolicy part of the translation: the switches (enabled by default, connections cut
// by default), this node's name, every address of the node, and the cluster's objects as given.
func TestTranslatePolicy(t *testing.T) {
	nodes, nns := threeNodes()
	pods := []*corev1.Pod{{}}
	nps := []*networkingv1.NetworkPolicy{{}}
	nss := []*corev1.Namespace{{}}
	tests := []struct {
		name string
		np   *v1.NetworkPolicy
		want string
	}{
		{name: "no networkPolicy: enforced, connections cut", want: "enabled=true keep=false"},
		{name: "nothing set", np: &v1.NetworkPolicy{}, want: "enabled=true keep=false"},
		{name: "disabled", np: &v1.NetworkPolicy{Enabled: ptr.To(false)}, want: "enabled=false keep=false"},
		{name: "connections kept", np: &v1.NetworkPolicy{Enabled: ptr.To(true), KeepEstablishedConnections: ptr.To(true)},
			want: "enabled=true keep=true"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cn := effectiveNetwork(v1.RoutingAuto, 1)
			cn.Status.Effective.NetworkPolicy = tc.np
			in := Inputs{NodeName: "node-1", ClusterNetwork: cn, Nodes: nodes, NodeNetworks: nns, Pods: pods, NetworkPolicies: nps, Namespaces: nss}
			d, err := Translate(in, testUplink)
			if err != nil {
				t.Fatal(err)
			}
			p := d.Policy
			if got := fmt.Sprintf("enabled=%v keep=%v", p.Enabled, p.KeepEstablished); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
			// The uplink's node IPs, the VTEP address of each local pod CIDR, the pod gateways.
			const wantIPs = "[10.99.0.11 fd10:99::11 10.244.0.0 169.254.1.1 fd10:244:: fe80::1]"
			if got := fmt.Sprint(p.Input.NodeIPs); p.Input.NodeName != "node-1" || got != wantIPs {
				t.Errorf("node %s, node IPs %s, want node-1, %s", p.Input.NodeName, got, wantIPs)
			}
			if len(p.Input.Pods) != 1 || p.Input.Pods[0] != pods[0] || p.Input.Policies[0] != nps[0] || p.Input.Namespaces[0] != nss[0] {
				t.Error("the cluster's objects are not handed on as they are")
			}
		})
	}
}
