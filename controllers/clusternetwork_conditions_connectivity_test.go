package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

func TestConnectivityCondition(t *testing.T) {
	node := func(name string) corev1.Node { return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}} }
	nn := func(name string, s metav1.ConditionStatus, dnsErr string, unreachable ...string) v1.NodeNetwork {
		n := v1.NodeNetwork{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if s == "" {
			return n
		}
		n.Status.Conditions = []metav1.Condition{{Type: v1.ConditionConnectivityHealthy, Status: s}}
		n.Status.Connectivity = &v1.ConnectivityStatus{DNSError: dnsErr}
		for _, u := range unreachable {
			n.Status.Connectivity.UnreachablePeers = append(n.Status.Connectivity.UnreachablePeers, v1.UnreachablePeer{Node: u, Addresses: []string{"10.244.9.0"}})
		}
		return n
	}
	nodes := []corev1.Node{node("n1"), node("n2"), node("n3"), node("n4")}
	T, F := metav1.ConditionTrue, metav1.ConditionFalse
	cases := []struct {
		name       string
		nns        []v1.NodeNetwork
		wantStatus metav1.ConditionStatus
		wantReason string
		wantMsg    string
	}{
		{"no node probes yet", []v1.NodeNetwork{nn("n1", "", ""), nn("n2", metav1.ConditionUnknown, "")}, metav1.ConditionUnknown,
			v1.ReasonConnectivityNotProbed, "no node reports connectivity probes yet"},
		{"all healthy", []v1.NodeNetwork{nn("n1", T, ""), nn("n2", T, ""), nn("n3", T, ""), nn("n4", "", "")}, T, v1.ReasonPeersReachable,
			"all 3 probing nodes reach every peer over the pod network, and the cluster DNS where probed"},
		{"one node cut off: named first, with the nodes that cannot reach it",
			[]v1.NodeNetwork{nn("n1", F, "", "n3"), nn("n2", F, "", "n3"), nn("n3", F, "", "n1", "n2", "n4"), nn("n4", F, "", "n3")}, F, v1.ReasonPeersUnreachable,
			"n3 is unreachable from n1, n2, n4; n1 is unreachable from n3; n2 is unreachable from n3; n4 is unreachable from n3"},
		{"peers and DNS", []v1.NodeNetwork{nn("n1", F, "no answer", "n2"), nn("n2", T, "")}, F, v1.ReasonPeersUnreachable,
			"n2 is unreachable from n1; the cluster DNS fails from n1"},
		{"DNS only", []v1.NodeNetwork{nn("n1", F, "no answer"), nn("n2", F, "SERVFAIL")}, F, v1.ReasonDNSFailing,
			"the cluster DNS fails from n1, n2"},
		{"a NodeNetwork without a Node does not count", []v1.NodeNetwork{nn("gone", F, "", "n1"), nn("n1", T, "")}, T, v1.ReasonPeersReachable,
			"all 1 probing nodes reach every peer over the pod network, and the cluster DNS where probed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := connectivityCondition(3, inputs{nodes: nodes, nodeNetworks: c.nns})
			if got.Type != v1.ConditionConnectivityHealthy || got.ObservedGeneration != 3 {
				t.Errorf("type %s generation %d", got.Type, got.ObservedGeneration)
			}
			if got.Status != c.wantStatus || got.Reason != c.wantReason || got.Message != c.wantMsg {
				t.Errorf("got %s/%s %q\nwant %s/%s %q", got.Status, got.Reason, got.Message, c.wantStatus, c.wantReason, c.wantMsg)
			}
		})
	}
}
