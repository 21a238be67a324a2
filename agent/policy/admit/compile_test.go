package admit

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-net/plexus/agent/policy"
)

// TestRoundPodsCompileIsolated: a pod the informer knows by its labels but without status IPs
// is, through a round's merged pods, compiled at its CNI addresses and isolated by the policy
// that selects it; without the overlay it would not be in the model at all.
func TestRoundPodsCompileIsolated(t *testing.T) {
	web := testPod("prod", "web", "u1")
	web.Spec.NodeName = "node-a"
	denyAll := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "deny-all"},
		Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
	}
	compile := func(pods []*corev1.Pod) *policy.Model {
		return policy.Compile(policy.Input{NodeName: "node-a", Pods: pods, Policies: []*networkingv1.NetworkPolicy{denyAll},
			Namespaces: []*corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: "prod"}}}})
	}
	ip := addrs("10.244.1.5")[0]
	if compile([]*corev1.Pod{web}).PodByIP(ip) != nil {
		t.Fatal("the pod is in the model without the overlay; the test proves nothing")
	}
	tr := NewTracker(func() {})
	tr.Pending().Add(PodRef{"prod", "web", "u1"}, addrs("10.244.1.5"), time.Now())
	round := tr.Begin([]*corev1.Pod{web})
	m := compile(round.Pods)
	round.Done(nil)
	lp := m.PodByIP(ip)
	if lp == nil || len(lp.Ingress) != 1 || lp.Ingress[0] != (policy.PolicyKey{Namespace: "prod", Name: "deny-all"}) {
		t.Fatalf("pod at %s in the model: %+v, want prod/web isolated by prod/deny-all", ip, lp)
	}
	if res := m.Evaluate(policy.Flow{Src: addrs("10.244.2.9")[0], Dst: ip, Protocol: policy.TCP, Port: 80}); res.Verdict != policy.Deny {
		t.Errorf("a flow to the new pod: %s, want deny", res)
	}
}
