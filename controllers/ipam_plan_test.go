package controllers

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/netconfig"
)

func servedSpec(pods ...v1.CIDR) v1.ClusterNetworkSpec {
	fams := []v1.IPFamily{v1.IPv4}
	svcs := []v1.CIDR{"10.96.0.0/16"}
	for _, p := range pods {
		if len(p) > 0 && (p[0] == 'f') {
			fams, svcs = []v1.IPFamily{v1.IPv4, v1.IPv6}, []v1.CIDR{"10.96.0.0/16", "fd00:10:96::/112"}
		}
	}
	return netconfig.Default(v1.ClusterNetworkSpec{IPFamilies: fams, PodNetwork: v1.PodNetwork{CIDRs: pods}, ServiceNetwork: v1.ServiceNetwork{CIDRs: svcs}}, netconfig.Images{})
}

func testNode(name, ip string, podCIDRs ...string) corev1.Node {
	return corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.NodeSpec{PodCIDRs: podCIDRs},
		Status:     corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}},
	}
}

func testNN(name string, cidrs ...v1.CIDR) v1.NodeNetwork {
	return v1.NodeNetwork{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1.NodeNetworkSpec{PodCIDRs: cidrs}}
}

func TestPlanIPAMKeepsAdoptsAllocatesAndReleases(t *testing.T) {
	served := servedSpec("10.244.0.0/16", "fd00:10:244::/56")
	nodes := []corev1.Node{
		testNode("a", "192.168.0.1"),                                        // has a NodeNetwork
		testNode("b", "192.168.0.2", "10.244.9.0/24", "fd00:10:244:9::/64"), // adopt
		testNode("c", "192.168.0.3"),                                        // fresh
	}
	a := testNN("a", "10.244.0.0/24", "fd00:10:244::/64")
	a.Spec.Addresses = []string{"192.168.0.1"}
	nns := []v1.NodeNetwork{a, testNN("gone", "10.244.1.0/24", "fd00:10:244:1::/64")}

	plan, err := planIPAM(served, nodes, nns)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.deletes) != 1 || plan.deletes[0].Name != "gone" {
		t.Fatalf("deletes = %v, want the NodeNetwork of the deleted node", plan.deletes)
	}
	got := map[string][]v1.CIDR{}
	for _, up := range plan.upserts {
		got[up.node] = up.spec.PodCIDRs
	}
	if _, ok := got["a"]; ok {
		t.Errorf("node a is unchanged but was planned for an update")
	}
	if want := []v1.CIDR{"10.244.9.0/24", "fd00:10:244:9::/64"}; !slices.Equal(got["b"], want) {
		t.Errorf("b = %v, want adopted %v", got["b"], want)
	}
	// The released CIDR of "gone" (10.244.1.0/24) is free, but c gets the next one after the
	// highest reservation order: it must not get a or b's CIDR.
	if len(got["c"]) != 2 || got["c"][0] == "10.244.0.0/24" || got["c"][0] == "10.244.9.0/24" {
		t.Errorf("c = %v, want a fresh pair distinct from a and b", got["c"])
	}
	if plan.allocated != 3 || len(plan.unallocated) != 0 {
		t.Errorf("allocated %d, unallocated %v", plan.allocated, plan.unallocated)
	}
}

func TestPlanIPAMConflictsAndExhaustion(t *testing.T) {
	served := servedSpec("10.250.0.0/23")
	nodes := []corev1.Node{testNode("a", "192.168.0.1"), testNode("b", "192.168.0.2"), testNode("c", "192.168.0.3"), testNode("d", "192.168.0.4", "10.1.0.0/24")}
	nns := []v1.NodeNetwork{testNN("a", "10.250.0.0/24"), testNN("b", "10.250.0.0/24")}
	plan, err := planIPAM(served, nodes, nns)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.conflicts) != 1 || plan.conflicts[0] != "NodeNetwork b holds 10.250.0.0/24: 10.250.0.0/24 is already allocated" {
		t.Fatalf("conflicts = %q", plan.conflicts)
	}
	// One /24 is left: c gets it, d (whose own podCIDR lies outside the pool) does not.
	if len(plan.unallocated) != 1 || plan.unallocated[0] != "d" {
		t.Fatalf("unallocated = %v, want [d]", plan.unallocated)
	}
	if len(plan.exhausted) != 1 {
		t.Fatalf("exhausted = %v", plan.exhausted)
	}
	if _, ok := plan.warnings["d"]; !ok {
		t.Fatalf("no warning that d's own spec.podCIDRs cannot be adopted")
	}
}

func TestPlanIPAMWritesNodePodCIDRsOnlyWhenAsked(t *testing.T) {
	served := servedSpec("10.244.0.0/16")
	nodes := []corev1.Node{testNode("a", "192.168.0.1"), testNode("b", "192.168.0.2", "10.244.7.0/24")}
	plan, _ := planIPAM(served, nodes, nil)
	if len(plan.nodePatches) != 0 {
		t.Fatalf("patches without writeNodePodCIDRs: %v", plan.nodePatches)
	}
	served.PodNetwork.WriteNodePodCIDRs = ptr.To(true)
	plan, _ = planIPAM(served, nodes, nil)
	if len(plan.nodePatches) != 1 || len(plan.nodePatches["a"]) != 1 {
		t.Fatalf("patches = %v, want only node a (b has its own)", plan.nodePatches)
	}
}
