package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// connectivityBound is how fast the issue wants a cut node reported by its peers: three failed
// probes at the agent's default 5 s interval, plus a status patch and the operator's roll-up.
const connectivityBound = 30 * time.Second

// agentMetricsPort is the agent's --metrics-bind-address port as the operator renders the
// DaemonSet (controllers/render).
const agentMetricsPort = 9462

// connectivityOf returns node's ConnectivityHealthy condition and status.connectivity (nil if none).
func connectivityOf(nn v1.NodeNetwork) (*metav1.Condition, *v1.ConnectivityStatus) {
	return meta.FindStatusCondition(nn.Status.Conditions, v1.ConditionConnectivityHealthy), nn.Status.Connectivity
}

// allConnectivityHealthy checks ConnectivityHealthy=True on every node of names, each probing
// every other of them, and on the ClusterNetwork.
func allConnectivityHealthy(names []string) error {
	nns := nodeNetworks()
	for _, n := range names {
		c, cs := connectivityOf(nns[n])
		if c == nil || c.Status != metav1.ConditionTrue || cs == nil || int(cs.Peers) < len(names)-1 {
			return fmt.Errorf("%s not healthy yet: %s", n, describeNN(nns[n]))
		}
	}
	if c := meta.FindStatusCondition(clusterNetwork().Status.Conditions, v1.ConditionConnectivityHealthy); c == nil || c.Status != metav1.ConditionTrue {
		return fmt.Errorf("ClusterNetwork ConnectivityHealthy: %+v", c)
	}
	return nil
}

// setUnderlayPort sets a node's port on the underlay bridge up or down: its cable, as the lab has it.
func setUnderlayPort(port, state string) {
	out, err := exec.Command("ip", "-n", labCfg.UnderlayNetns(), "link", "set", port, state).CombinedOutput()
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), "ip link set %s %s: %s", port, state, out)
}

var _ = Describe("Continuous connectivity", Ordered, func() {
	It("turns ConnectivityHealthy False on the peers of a node whose underlay link is cut, naming it, within 30 s, and recovers", func() {
		base := labNodeNames(labNodes)
		// The roll-up into the ClusterNetwork is the leading operator's: cutting its node would
		// measure the lease handover (15 s and a cache sync) rather than connectivity reporting, so
		// the cut node is one the leader does not run on (node 1 serves the metrics below).
		cut := labCfg.NodeAt(2)
		if leader, err := operatorLeader(); err == nil && leader.Spec.NodeName == cut.Name {
			cut = labCfg.NodeAt(3)
		}
		peers := slices.DeleteFunc(slices.Clone(base), func(n string) bool { return n == cut.Name })
		Eventually(func() error { return allConnectivityHealthy(base) }).WithTimeout(convergeBound).WithPolling(time.Second).Should(Succeed())

		By("the agent's metrics have the probe latency of each peer")
		from := labCfg.NodeAt(1)
		metricsURL := fmt.Sprintf("http://%s:%d/metrics", from.IPv4, agentMetricsPort)
		body, err := httpFrom(filepath.Join("/run/netns", labCfg.UnderlayNetns()), metricsURL)
		Expect(err).NotTo(HaveOccurred())
		for _, fam := range []string{"IPv4", "IPv6"} {
			Expect(body).To(ContainSubstring(fmt.Sprintf(`plexus_connectivity_probe_seconds_count{family=%q,peer=%q}`, fam, cut.Name)))
		}

		wasReady := meta.IsStatusConditionTrue(clusterNetwork().Status.Conditions, v1.ConditionReady)
		By("cutting " + cut.Name + "'s link into the underlay")
		setUnderlayPort(cut.Port, "down")
		cutAt := time.Now()
		restored := false
		DeferCleanup(func() {
			if !restored {
				setUnderlayPort(cut.Port, "up")
			}
		})
		Eventually(func() error {
			nns := nodeNetworks()
			for _, p := range peers {
				c, cs := connectivityOf(nns[p])
				if c == nil || c.Status != metav1.ConditionFalse || c.Reason != v1.ReasonPeersUnreachable || !strings.Contains(c.Message, cut.Name+" (") ||
					cs == nil || !slices.ContainsFunc(cs.UnreachablePeers, func(u v1.UnreachablePeer) bool { return u.Node == cut.Name && len(u.Addresses) == 2 }) {
					return fmt.Errorf("%s does not report %s unreachable (both families): %s", p, cut.Name, describeNN(nns[p]))
				}
				if len(cs.UnreachablePeers) != 1 {
					return fmt.Errorf("%s reports more peers than %s unreachable: %+v", p, cut.Name, cs.UnreachablePeers)
				}
			}
			c := meta.FindStatusCondition(clusterNetwork().Status.Conditions, v1.ConditionConnectivityHealthy)
			if c == nil || c.Status != metav1.ConditionFalse || !strings.HasPrefix(c.Message, cut.Name+" is unreachable from "+strings.Join(peers, ", ")) {
				return fmt.Errorf("ClusterNetwork ConnectivityHealthy does not name %s first: %+v", cut.Name, c)
			}
			return nil
		}).WithTimeout(connectivityBound).WithPolling(500 * time.Millisecond).Should(Succeed())
		reported := time.Since(cutAt)
		if wasReady {
			Expect(meta.IsStatusConditionTrue(clusterNetwork().Status.Conditions, v1.ConditionReady)).To(BeTrue(),
				"a connectivity failure must not make the ClusterNetwork NotReady")
		}

		By("reconnecting " + cut.Name)
		setUnderlayPort(cut.Port, "up")
		restored = true
		upAt := time.Now()
		Eventually(func() error { return allConnectivityHealthy(base) }).WithTimeout(convergeBound).WithPolling(500 * time.Millisecond).Should(Succeed())
		AddReportEntry("continuous connectivity", fmt.Sprintf("%s cut: reported by %v after %s; reconnected: all healthy after %s",
			cut.Name, peers, reported.Round(100*time.Millisecond), time.Since(upAt).Round(100*time.Millisecond)))
	})
})
