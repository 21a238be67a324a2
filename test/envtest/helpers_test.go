package envtest

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

const (
	timeout  = 60 * time.Second
	interval = 100 * time.Millisecond
	// testFieldManager is the only field manager allowed to write a ClusterNetwork's spec.
	testFieldManager = "plexus-envtest"
)

func ctx() context.Context { return context.Background() }

// node returns a Node with one InternalIP, as a kubelet registers it.
func node(name, ip string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: ip},
			{Type: corev1.NodeHostName, Address: name},
		}},
	}
}

// createNodes creates n nodes at once from parallel clients, named prefix-0..n-1, with InternalIPs
// in 192.168.0.0/16 (an address range the pod and service CIDRs of these tests avoid).
func createNodes(prefix string, n int) []string {
	names := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		names[i] = fmt.Sprintf("%s-%d", prefix, i)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ip := fmt.Sprintf("192.168.%d.%d", i/250, i%250+1)
			if err := k8s.Create(ctx(), node(names[i], ip)); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		Expect(err).NotTo(HaveOccurred())
	}
	return names
}

func dualStackNetwork() *v1.ClusterNetwork {
	return &v1.ClusterNetwork{
		ObjectMeta: metav1.ObjectMeta{Name: v1.DefaultClusterNetworkName},
		Spec: v1.ClusterNetworkSpec{
			IPFamilies:     []v1.IPFamily{v1.IPv4, v1.IPv6},
			PodNetwork:     v1.PodNetwork{CIDRs: []v1.CIDR{"10.244.0.0/16", "fd00:10:244::/56"}},
			ServiceNetwork: v1.ServiceNetwork{CIDRs: []v1.CIDR{"10.96.0.0/16", "fd00:10:96::/112"}},
		},
	}
}

func createNetwork(cn *v1.ClusterNetwork) {
	Expect(k8s.Create(ctx(), cn, client.FieldOwner(testFieldManager))).To(Succeed())
}

// updateNetwork changes the default ClusterNetwork's spec as a user would, retrying on conflicts.
func updateNetwork(mutate func(*v1.ClusterNetwork)) {
	Eventually(func() error {
		cn := getNetwork()
		mutate(cn)
		return k8s.Update(ctx(), cn, client.FieldOwner(testFieldManager))
	}, timeout, interval).Should(Succeed())
}

func getNetwork() *v1.ClusterNetwork {
	cn := &v1.ClusterNetwork{}
	Expect(k8s.Get(ctx(), client.ObjectKey{Name: v1.DefaultClusterNetworkName}, cn)).To(Succeed())
	return cn
}

func condition(cn *v1.ClusterNetwork, t string) *metav1.Condition {
	return meta.FindStatusCondition(cn.Status.Conditions, t)
}

// eventuallyCondition waits until the default ClusterNetwork has condition t with status s for
// the current generation and returns it.
func eventuallyCondition(t string, s metav1.ConditionStatus) *metav1.Condition {
	var got *metav1.Condition
	EventuallyWithOffset(1, func(g Gomega) {
		cn := getNetwork()
		got = condition(cn, t)
		g.Expect(got).NotTo(BeNil(), "condition %s missing", t)
		g.Expect(got.ObservedGeneration).To(Equal(cn.Generation))
		g.Expect(got.Status).To(Equal(s), "condition %s: %s", t, got.Message)
	}, timeout, interval).Should(Succeed())
	return got
}

// allocations returns node → pod CIDRs from the NodeNetworks.
func allocations() map[string][]v1.CIDR {
	var list v1.NodeNetworkList
	Expect(k8s.List(ctx(), &list)).To(Succeed())
	out := map[string][]v1.CIDR{}
	for _, nn := range list.Items {
		out[nn.Name] = nn.Spec.PodCIDRs
	}
	return out
}

// waitAllocated waits until every named node has a NodeNetwork with one pod CIDR per family.
func waitAllocated(names []string, families int) map[string][]v1.CIDR {
	var got map[string][]v1.CIDR
	EventuallyWithOffset(1, func(g Gomega) {
		got = allocations()
		for _, n := range names {
			g.Expect(got[n]).To(HaveLen(families), "node %s", n)
		}
	}, timeout, interval).Should(Succeed())
	return got
}

// expectDistinctInside asserts every CIDR is distinct and inside the pool of its family.
func expectDistinctInside(allocs map[string][]v1.CIDR, pools ...string) {
	seen := map[v1.CIDR]string{}
	for n, cidrs := range allocs {
		for _, c := range cidrs {
			Expect(seen).NotTo(HaveKey(c), "%s is allocated to both %s and %s", c, seen[c], n)
			seen[c] = n
			p := netip.MustParsePrefix(string(c))
			inside := false
			for _, pool := range pools {
				pp := netip.MustParsePrefix(pool)
				if pp.Contains(p.Addr()) && pp.Bits() <= p.Bits() {
					inside = true
				}
			}
			Expect(inside).To(BeTrue(), "%s of node %s is in none of %v", c, n, pools)
		}
	}
}

// cleanup removes everything a spec created and waits until it is gone.
func cleanup() {
	By("removing the test's objects")
	Expect(k8s.DeleteAllOf(ctx(), &v1.ClusterNetwork{})).To(Succeed())
	Expect(k8s.DeleteAllOf(ctx(), &corev1.Node{})).To(Succeed())
	Expect(k8s.DeleteAllOf(ctx(), &v1.NodeNetwork{})).To(Succeed())
	Eventually(func(g Gomega) {
		var cns v1.ClusterNetworkList
		var nodes corev1.NodeList
		var nns v1.NodeNetworkList
		g.Expect(k8s.List(ctx(), &cns)).To(Succeed())
		g.Expect(k8s.List(ctx(), &nodes)).To(Succeed())
		g.Expect(k8s.List(ctx(), &nns)).To(Succeed())
		g.Expect(cns.Items).To(BeEmpty())
		g.Expect(nodes.Items).To(BeEmpty())
		g.Expect(nns.Items).To(BeEmpty())
	}, timeout, interval).Should(Succeed())
}

// deleteUntilGone deletes objs and waits until none exists. A reconcile that read the
// ClusterNetwork from the cache just before cleanup deleted it may still apply its objects after
// the first delete (in a cluster the garbage collector removes them with their owner; envtest runs
// none), so whatever is back is deleted again.
func deleteUntilGone(objs []client.Object) {
	for _, o := range objs {
		Expect(client.IgnoreNotFound(k8s.Delete(ctx(), o))).To(Succeed())
	}
	Eventually(func(g Gomega) {
		for _, o := range objs {
			err := k8s.Get(ctx(), client.ObjectKeyFromObject(o), o)
			if err == nil {
				g.Expect(client.IgnoreNotFound(k8s.Delete(ctx(), o))).To(Succeed())
			}
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%T %s", o, o.GetName())
		}
	}, timeout, interval).Should(Succeed())
}

var _ = GinkgoWriter
