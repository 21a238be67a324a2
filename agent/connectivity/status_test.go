package connectivity

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

func TestApply(t *testing.T) {
	unreachable := Report{Probed: true, LocalAddrs: localA, Peers: 2, DNSProbed: true,
		Unreachable: []Unreachable{{Peer: "c", Addrs: []netip.Addr{peerC4}, Errs: []string{"no answer to the UDP probe"}}}}
	cases := []struct {
		name       string
		r          Report
		wantStatus metav1.ConditionStatus
		wantReason string
		wantMsg    string
		wantField  *v1.ConnectivityStatus
	}{
		{"healthy", Report{Probed: true, LocalAddrs: localA, Peers: 2, DNSProbed: true}, metav1.ConditionTrue, v1.ReasonPeersReachable,
			"all 2 peers reachable over the pod network; the cluster DNS answers",
			&v1.ConnectivityStatus{ProbeAddresses: []string{"10.244.0.0", "fd10:244::"}, Peers: 2}},
		{"peer unreachable", unreachable, metav1.ConditionFalse, v1.ReasonPeersUnreachable,
			"1 of 2 peers unreachable over the pod network: c (10.244.2.0: no answer to the UDP probe)",
			&v1.ConnectivityStatus{ProbeAddresses: []string{"10.244.0.0", "fd10:244::"}, Peers: 2,
				UnreachablePeers: []v1.UnreachablePeer{{Node: "c", Addresses: []string{"10.244.2.0"}}}}},
		{"DNS failing", Report{Probed: true, LocalAddrs: localA[:1], Peers: 1, DNSProbed: true, DNSError: "no answer"}, metav1.ConditionFalse, v1.ReasonDNSFailing,
			"all 1 peers reachable, but the cluster DNS fails: no answer",
			&v1.ConnectivityStatus{ProbeAddresses: []string{"10.244.0.0"}, Peers: 1, DNSError: "no answer"}},
		{"not probed", Report{NotProbedReason: "this node has no pod CIDR yet, so no probe address"}, metav1.ConditionUnknown, v1.ReasonConnectivityNotProbed,
			"this node has no pod CIDR yet, so no probe address", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := v1.NodeNetworkStatus{ObservedGeneration: 4, Connectivity: &v1.ConnectivityStatus{Peers: 9}}
			Apply(&s, c.r)
			cond := meta.FindStatusCondition(s.Conditions, v1.ConditionConnectivityHealthy)
			if cond == nil {
				t.Fatal("no ConnectivityHealthy condition")
			}
			if cond.Status != c.wantStatus || cond.Reason != c.wantReason || cond.Message != c.wantMsg || cond.ObservedGeneration != 4 {
				t.Errorf("condition %s/%s %q (generation %d), want %s/%s %q (4)", cond.Status, cond.Reason, cond.Message, cond.ObservedGeneration,
					c.wantStatus, c.wantReason, c.wantMsg)
			}
			if diff := cmp.Diff(c.wantField, s.Connectivity); diff != "" {
				t.Errorf("status.connectivity (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApplyKeepsTransitionTimeAndIgnoresNoRound(t *testing.T) {
	s := v1.NodeNetworkStatus{}
	Apply(&s, Report{})
	if len(s.Conditions) != 0 || s.Connectivity != nil {
		t.Fatalf("a report of no round changed the status: %+v", s)
	}
	healthy := Report{Probed: true, LocalAddrs: localA, Peers: 1}
	Apply(&s, healthy)
	then := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s.Conditions[0].LastTransitionTime = then
	Apply(&s, healthy)
	if got := s.Conditions[0].LastTransitionTime; !got.Equal(&then) {
		t.Errorf("transition time moved to %v without a transition", got)
	}
}
