package informers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-net/plexus/agent"
	"github.com/plexus-net/plexus/agent/cachetrim"
)

// A Node as the cache holds it still gives the node IPs a sync reads.
func TestTrimmedNodeKeepsItsNodeIPs(t *testing.T) {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", Annotations: map[string]string{agent.NodeIPAnnotation: "10.99.0.21"}}}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.99.0.11"}}
	n.Status.Images = []corev1.ContainerImage{{Names: []string{"big"}}}
	out, err := cachetrim.Node(n)
	if err != nil {
		t.Fatal(err)
	}
	ips, err := agent.NodeIPs(out.(*corev1.Node), nil, false)
	if err != nil || len(ips) != 1 || ips[0].String() != "10.99.0.21" {
		t.Errorf("node IPs of the trimmed Node: %v, %v", ips, err)
	}
}

func TestHandlerMarksDirtyOnlyWhenItMatters(t *testing.T) {
	dirty := 0
	h := handler(func() { dirty++ }, on[*corev1.Node]{matters: func(old, cur *corev1.Node) bool { return old.Name != cur.Name }})
	a, b := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "b"}}
	h.OnAdd(a, false)
	h.OnUpdate(a, a.DeepCopy())
	h.OnUpdate(a, b)
	h.OnDelete(b)
	h.OnAdd(&corev1.Service{}, false) // another type: ignored
	if dirty != 3 {
		t.Errorf("marked dirty %d times, want 3 (add, a change that matters, delete)", dirty)
	}
}

// A Pod's status updates that the NetworkPolicy model does not read (conditions, container
// states) cost no sync once trimmed; a new address or label does.
func TestPodUpdatesMatterOnlyWhenTheModelReadsThem(t *testing.T) {
	pod := func(rv, ip string, ready corev1.ConditionStatus, labels map[string]string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "web", ResourceVersion: rv, Labels: labels}}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}
		if ip != "" {
			p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
		}
		out, err := cachetrim.Pod(p)
		if err != nil {
			t.Fatal(err)
		}
		return out.(*corev1.Pod)
	}
	app := map[string]string{"app": "web"}
	base := pod("1", "10.244.0.5", corev1.ConditionFalse, app)
	for _, tc := range []struct {
		name string
		next *corev1.Pod
		want bool
	}{
		{"readiness changed", pod("2", "10.244.0.5", corev1.ConditionTrue, app), false},
		{"address changed", pod("2", "10.244.0.6", corev1.ConditionFalse, app), true},
		{"relabelled", pod("2", "10.244.0.5", corev1.ConditionFalse, map[string]string{"app": "db"}), true},
	} {
		if got := podMatters(base, tc.next); got != tc.want {
			t.Errorf("%s: matters %v, want %v", tc.name, got, tc.want)
		}
	}
}
