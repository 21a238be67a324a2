package e2e

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-net/plexus/agent/routing"
	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/internal/lab"
	"github.com/plexus-net/plexus/internal/testnet"
)

const (
	// extraPodCIDR is the pod CIDR the suite adds; checked against the machine before use.
	extraPodCIDR = "10.245.0.0/16"
	// joinPod is the pod the suite pins to the added node.
	joinPod = "e2e-joined"
	// operatorMetricsPort is the operator's metrics port (config/operator, host network).
	operatorMetricsPort = 9460
)

// patchCN merge-patches the ClusterNetwork's spec and returns the new generation.
func patchCN(patch string) int64 {
	cn := &v1.ClusterNetwork{}
	cn.Name = v1.DefaultClusterNetworkName
	ExpectWithOffset(1, k8s.Patch(ctx, cn, client.RawPatch(types.MergePatchType, []byte(patch)))).To(Succeed(), "patch %s", patch)
	return cn.Generation
}

// waitGeneration waits until every node has programmed gen and reports, per node, how long after
// since its NodeNetwork showed it.
func waitGeneration(nodes []string, gen int64, since time.Time, what string) {
	reached := map[string]time.Duration{}
	EventuallyWithOffset(1, func() error {
		for name, nn := range nodeNetworks() {
			if _, ok := reached[name]; !ok && slices.Contains(nodes, name) && nn.Status.ProgrammedGeneration == gen {
				reached[name] = time.Since(since)
			}
		}
		return allAtGeneration(nodes, gen)
	}).WithTimeout(convergeBound).WithPolling(pollInterval).Should(Succeed())
	var parts []string
	for _, n := range nodes {
		parts = append(parts, fmt.Sprintf("%s %s", n, reached[n].Round(10*time.Millisecond)))
	}
	msg := fmt.Sprintf("generation %d programmed (per node, after the edit): %s", gen, strings.Join(parts, ", "))
	fmt.Fprintf(GinkgoWriter, "%s: %s\n", what, msg)
	AddReportEntry("propagation: "+what, msg)
}

// operatorMetric sums every series of a metric on the operator's metrics port, reached from the
// underlay (the operator runs with the host network of its node); ok is false when unreachable.
func operatorMetric(nodeIP, name string) (float64, bool) {
	body, err := httpFrom(filepath.Join("/run/netns", labCfg.UnderlayNetns()), "http://"+netip.AddrPortFrom(netip.MustParseAddr(nodeIP), operatorMetricsPort).String()+"/metrics")
	if err != nil {
		return 0, false
	}
	var sum float64
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, name+" ") || strings.HasPrefix(l, name+"{") {
			f := strings.Fields(l)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return sum, true
}

var _ = Describe("Plexus on a real multi-node lab", Ordered, func() {
	base := labNodeNames(labNodes)
	withAdded := append(slices.Clone(base), labCfg.NodeAt(addedNode).Name)

	It("bootstraps the cluster: nodes start NotReady and turn Ready once Plexus networks them", func() {
		var events corev1.EventList
		Expect(k8s.List(ctx, &events)).To(Succeed())
		bootLog.mu.Lock()
		defer bootLog.mu.Unlock()
		for _, name := range base {
			// The kubelet records NodeReady only on a transition of its Ready condition, so the
			// event says the node was NotReady first even when the poller saw it late.
			transition := slices.ContainsFunc(events.Items, func(e corev1.Event) bool {
				return e.InvolvedObject.Kind == "Node" && e.InvolvedObject.Name == name && e.Reason == "NodeReady"
			})
			s := bootLog.nodes[name]
			Expect(s).NotTo(BeNil(), "node %s never seen while the lab started", name)
			Expect(s.firstReady != corev1.ConditionTrue || transition).To(BeTrue(),
				"node %s was Ready when first seen and never transitioned: Plexus did not bootstrap it", name)
			Expect(s.readyAt).NotTo(BeZero(), "node %s never seen Ready", name)
			msg := fmt.Sprintf("registered %s after up began, first seen Ready=%s (%s), Ready %s after registering",
				s.registered.Sub(bootLog.start).Round(100*time.Millisecond), s.firstReady, s.firstReason, s.readyAt.Sub(s.registered).Round(100*time.Millisecond))
			fmt.Fprintf(GinkgoWriter, "bootstrap %s: %s\n", name, msg)
			AddReportEntry("bootstrap "+name, msg)
		}
		// Specs of other containers may run first and leave the operator settling (ingress just
		// turned off, say): the cluster must be Ready at its generation, within a while.
		gen := clusterNetwork().Generation
		Eventually(func() error { return allAtGeneration(base, gen) }, 2*time.Minute, time.Second).Should(Succeed())
		nns := nodeNetworks()
		for _, name := range base {
			Expect(nns[name].Spec.PodCIDRs).To(HaveLen(2), describeNN(nns[name]))
		}
		failed, err := labCfg.PrintMatrix()
		Expect(err).NotTo(HaveOccurred())
		Expect(failed).To(BeZero(), "cells of the connectivity matrix failed (printed above)")
	})

	It("gives a node added later a pod CIDR, routes on every node, and Ready", func() {
		added := labCfg.NodeAt(addedNode)
		t0 := time.Now()
		_, err := lab.AddNode(labCfg, addedNode)
		Expect(err).NotTo(HaveOccurred())
		started := time.Since(t0)
		var tReg, tCIDR, tRoutes, tReady, tNN time.Duration
		var cidrs []string
		Eventually(func() error {
			node := &corev1.Node{}
			if err := k8s.Get(ctx, client.ObjectKey{Name: added.Name}, node); err != nil {
				return err
			}
			if tReg == 0 {
				tReg = time.Since(t0)
			}
			nn, ok := nodeNetworks()[added.Name]
			if !ok || len(nn.Spec.PodCIDRs) != 2 {
				return fmt.Errorf("no pod CIDRs for %s yet", added.Name)
			}
			if tCIDR == 0 {
				tCIDR = time.Since(t0)
				cidrs = []string{string(nn.Spec.PodCIDRs[0]), string(nn.Spec.PodCIDRs[1])}
			}
			if tRoutes == 0 {
				for _, name := range base {
					for _, c := range cidrs {
						if routeTo(labCfg.NodeAt(slices.Index(base, name)+1).Netns, c) == "" {
							return fmt.Errorf("%s has no route to %s of %s", name, c, added.Name)
						}
					}
				}
				tRoutes = time.Since(t0)
			}
			if tReady == 0 {
				if !nodeReady(node) {
					return fmt.Errorf("node %s not Ready", added.Name)
				}
				tReady = time.Since(t0)
			}
			if err := allAtGeneration(withAdded, clusterNetwork().Status.AppliedGeneration); err != nil {
				return err
			}
			tNN = time.Since(t0)
			return nil
		}).WithTimeout(3 * time.Minute).WithPolling(pollInterval).Should(Succeed())
		// The added node routes to every other node's pods as well.
		nns := nodeNetworks()
		for _, name := range base {
			for _, c := range nns[name].Spec.PodCIDRs {
				Expect(routeTo(added.Netns, string(c))).NotTo(BeEmpty(), "%s has no route to %s of %s", added.Name, c, name)
			}
		}
		msg := fmt.Sprintf("node processes up %s; Node registered %s, pod CIDRs %v allocated %s, routes to them on all %d other nodes %s, Node Ready %s, NodeNetwork Ready and ClusterNetwork counting it %s (all from AddNode)",
			started.Round(10*time.Millisecond), tReg.Round(10*time.Millisecond), cidrs, tCIDR.Round(10*time.Millisecond), len(base),
			tRoutes.Round(10*time.Millisecond), tReady.Round(10*time.Millisecond), tNN.Round(10*time.Millisecond))
		fmt.Fprintln(GinkgoWriter, "join:", msg)
		AddReportEntry("join latency", msg)

		By("running a pod on the added node and reaching it from a pod on node 1")
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: joinPod, Namespace: lab.WorkloadNamespace, Labels: map[string]string{"e2e": "joined"}},
			Spec: corev1.PodSpec{
				NodeName:                      added.Name,
				TerminationGracePeriodSeconds: new(int64),
				Containers: []corev1.Container{{
					Name: "echo", Image: lab.EchoImage, ImagePullPolicy: corev1.PullNever,
					Env: []corev1.EnvVar{{Name: "POD_NAME", Value: joinPod}},
				}},
			},
		}
		Expect(k8s.Create(ctx, pod)).To(Succeed())
		Eventually(func() string {
			_ = k8s.Get(ctx, client.ObjectKeyFromObject(pod), pod)
			return pod.Status.PodIP
		}).WithTimeout(time.Minute).WithPolling(pollInterval).ShouldNot(BeEmpty())
		from := labCfg.EchoPodNetns(echoPods()[base[0]].name)
		Eventually(func() (string, error) {
			return httpFrom(from, "http://"+netip.AddrPortFrom(netip.MustParseAddr(pod.Status.PodIP), 8080).String()+"/")
		}).WithTimeout(30*time.Second).WithPolling(pollInterval).Should(ContainSubstring("pod="+joinPod), "pod on %s -> pod on %s", base[0], added.Name)
	})

	Describe("under a long-running connection between pods on two nodes", Ordered, func() {
		var s *streams
		BeforeAll(func() {
			pods := echoPods()
			src, dst := pods[base[0]], pods[base[1]]
			Expect(src.name).NotTo(BeEmpty())
			Expect(dst.name).NotTo(BeEmpty())
			s = startStreams(src, dst)
			DeferCleanup(s.close)
		})

		It("adds a pod CIDR: every node programs the new generation, visible per node in status", func() {
			Expect(testnet.CheckNoOverlap(netip.MustParsePrefix(extraPodCIDR))).To(Succeed())
			cn := clusterNetwork()
			cidrs := []string{}
			for _, c := range cn.Spec.PodNetwork.CIDRs {
				cidrs = append(cidrs, `"`+string(c)+`"`)
			}
			w := s.begin("add pod CIDR " + extraPodCIDR)
			t0 := time.Now()
			gen := patchCN(fmt.Sprintf(`{"spec":{"podNetwork":{"cidrs":[%s,"%s"]}}}`, strings.Join(cidrs, ","), extraPodCIDR))
			Expect(gen).To(BeNumerically(">", cn.Generation))
			waitGeneration(withAdded, gen, t0, "add pod CIDR")
			r := s.end(w)
			Expect(r.TCPBreaks).To(BeZero(), r.String())
			Expect(r.UDPLost).To(BeZero(), r.String())
			cn = clusterNetwork()
			Expect(cn.Status.PodCIDRUsage).To(ContainElement(HaveField("CIDR", extraPodCIDR)), jsonOf(cn.Status.PodCIDRUsage))
		})

		It("switches routing Auto → Direct → VXLAN on every node", func() {
			for _, step := range []struct {
				mode  v1.RoutingMode
				route string
			}{{v1.RoutingDirect, "dev " + lab.NodeLink}, {v1.RoutingVXLAN, "dev " + routing.VXLANDeviceName}} {
				w := s.begin("routing → " + string(step.mode))
				t0 := time.Now()
				gen := patchCN(fmt.Sprintf(`{"spec":{"routing":{"mode":"%s"}}}`, step.mode))
				waitGeneration(withAdded, gen, t0, "routing "+string(step.mode))
				nns := nodeNetworks()
				for i, name := range withAdded {
					netns := labCfg.NodeAt(i + 1).Netns
					for _, peer := range withAdded {
						if peer == name {
							continue
						}
						for _, c := range nns[peer].Spec.PodCIDRs {
							Expect(routeTo(netns, string(c))).To(ContainSubstring(step.route), "%s's route to %s (%s) in %s mode", name, c, peer, step.mode)
						}
					}
				}
				r := s.end(w)
				Expect(r.TCPBreaks).To(BeZero(), r.String())
			}
		})

		It("refuses an unsafe edit and leaves the data plane and the traffic untouched", func() {
			before := map[string]string{}
			for i := range withAdded {
				before[withAdded[i]] = dataPlane(labCfg.NodeAt(i + 1).Netns)
			}
			applied := clusterNetwork().Status.AppliedGeneration
			w := s.begin("refused edit (nodeMaskSizeIPv4 24 → 26)")
			gen := patchCN(`{"spec":{"podNetwork":{"nodeMaskSizeIPv4":26}}}`)
			var msg string
			Eventually(func() bool {
				cn := clusterNetwork()
				c := meta.FindStatusCondition(cn.Status.Conditions, v1.ConditionConfigValid)
				if c != nil && c.ObservedGeneration == gen && c.Status == metav1.ConditionFalse {
					msg = c.Message
					return true
				}
				return false
			}).WithTimeout(convergeBound).WithPolling(pollInterval).Should(BeTrue(), "the operator did not refuse the change")
			AddReportEntry("refused edit", msg)
			Expect(msg).To(ContainSubstring("nodeMaskSizeIPv4"))
			r := s.end(w)
			Expect(clusterNetwork().Status.AppliedGeneration).To(Equal(applied))
			for i, name := range withAdded {
				nn := nodeNetworks()[name]
				Expect(nn.Status.ProgrammedGeneration).To(Equal(applied), describeNN(nn))
				Expect(dataPlane(labCfg.NodeAt(i+1).Netns)).To(Equal(before[name]), "data plane of %s changed after a refused edit", name)
			}
			Expect(r.TCPBreaks).To(BeZero(), r.String())
			Expect(r.UDPLost).To(BeZero(), r.String())

			By("reverting the edit")
			t0 := time.Now()
			gen = patchCN(`{"spec":{"podNetwork":{"nodeMaskSizeIPv4":24}}}`)
			Eventually(func() bool {
				return meta.IsStatusConditionTrue(clusterNetwork().Status.Conditions, v1.ConditionConfigValid)
			}).WithTimeout(convergeBound).WithPolling(pollInterval).Should(BeTrue())
			waitGeneration(withAdded, gen, t0, "revert")
		})

		It("keeps existing connections when agent pods are deleted and the DaemonSet restarts them", func() {
			collectPlexusLogs()
			victims := []string{s.src.node, s.dst.node}
			before := map[string]string{}
			old := map[string]types.UID{}
			for _, p := range podsOf(agentSelector) {
				if slices.Contains(victims, p.Spec.NodeName) {
					old[p.Spec.NodeName] = p.UID
				}
			}
			Expect(old).To(HaveLen(2))
			for _, n := range victims {
				before[n] = dataPlane(labCfg.NodeAt(slices.Index(withAdded, n) + 1).Netns)
			}
			w := s.begin("agent pods deleted on " + strings.Join(victims, ", "))
			t0 := time.Now()
			for _, p := range podsOf(agentSelector) {
				if slices.Contains(victims, p.Spec.NodeName) {
					Expect(k8s.Delete(ctx, &p)).To(Succeed())
				}
			}
			Eventually(func() error {
				fresh := 0
				for _, p := range podsOf(agentSelector) {
					if !slices.Contains(victims, p.Spec.NodeName) || p.UID == old[p.Spec.NodeName] {
						continue
					}
					for _, c := range p.Status.Conditions {
						if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
							fresh++
						}
					}
				}
				if fresh != len(victims) {
					return fmt.Errorf("%d of %d agent pods replaced and Ready", fresh, len(victims))
				}
				// A replacement is Ready once its first sync succeeded (/readyz); a sync that finds
				// nothing to change writes nothing, so the NodeNetwork only has to stay at the
				// served generation.
				return allAtGeneration(withAdded, clusterNetwork().Status.AppliedGeneration)
			}).WithTimeout(convergeBound).WithPolling(pollInterval).Should(Succeed())
			AddReportEntry("agent restart", fmt.Sprintf("replacement agents Ready (first sync done) %s after the delete", time.Since(t0).Round(10*time.Millisecond)))
			r := s.end(w)
			for _, n := range victims {
				Expect(dataPlane(labCfg.NodeAt(slices.Index(withAdded, n)+1).Netns)).To(Equal(before[n]), "the restarted agent of %s changed the data plane", n)
			}
			Expect(r.TCPBreaks).To(BeZero(), r.String())
			Expect(r.UDPLost).To(BeZero(), r.String())
		})

		It("re-allocates nothing when the operator restarts", func() {
			collectPlexusLogs()
			type alloc struct {
				uid   types.UID
				cidrs []v1.CIDR
			}
			snapshot := func() map[string]alloc {
				out := map[string]alloc{}
				for n, nn := range nodeNetworks() {
					out[n] = alloc{nn.UID, nn.Spec.PodCIDRs}
				}
				return out
			}
			before := snapshot()
			usage := clusterNetwork().Status.PodCIDRUsage
			Expect(podsOf(operatorSelector)).To(HaveLen(2), "two operator replicas")
			leader, err := operatorLeader()
			Expect(err).NotTo(HaveOccurred())
			// An operator process outlives a lost lease (it builds a new manager), so a standby
			// may have led before (the outage spec moves the lease) and count allocations of its
			// own: what it must not do is allocate after taking over.
			allocsBefore := map[types.UID]float64{}
			for _, p := range podsOf(operatorSelector) {
				if v, ok := operatorMetric(p.Status.HostIP, "plexus_ipam_allocations_total"); ok {
					allocsBefore[p.UID] = v
				}
			}
			w := s.begin("operator restart")
			t0 := time.Now()
			// Deleting the leader: the standby takes the lease over (released on shutdown).
			Expect(k8s.Delete(ctx, &leader)).To(Succeed())
			var fresh corev1.Pod
			Eventually(func() error {
				p, err := operatorLeader()
				if err != nil {
					return err
				}
				if p.UID == leader.UID {
					return fmt.Errorf("the deleted operator pod still leads")
				}
				fresh = p
				return nil
			}).WithTimeout(convergeBound).WithPolling(pollInterval).Should(Succeed())
			tLease := time.Since(t0)
			// The new operator has rebuilt its allocator from the NodeNetworks once it has
			// reconciled; then it must have allocated nothing.
			Eventually(func() (float64, error) {
				v, ok := operatorMetric(fresh.Status.HostIP, "plexus_reconcile_duration_seconds_count")
				if !ok {
					return 0, fmt.Errorf("operator metrics not reachable")
				}
				return v, nil
			}).WithTimeout(convergeBound).WithPolling(pollInterval).Should(BeNumerically(">=", 1), "the new operator never reconciled")
			took := time.Since(t0)
			allocs, ok := operatorMetric(fresh.Status.HostIP, "plexus_ipam_allocations_total")
			Expect(ok).To(BeTrue())
			Expect(allocs-allocsBefore[fresh.UID]).To(BeZero(), "the operator that took over allocated pod CIDRs")
			Expect(snapshot()).To(Equal(before), "NodeNetworks changed across the operator restart")
			Expect(clusterNetwork().Status.PodCIDRUsage).To(Equal(usage))
			Expect(allAtGeneration(withAdded, clusterNetwork().Status.AppliedGeneration)).To(Succeed())
			AddReportEntry("operator restart", fmt.Sprintf("leader deleted: the standby held the lease after %s and had reconciled after %s; 0 allocations, %d NodeNetworks unchanged",
				tLease.Round(10*time.Millisecond), took.Round(10*time.Millisecond), len(before)))
			r := s.end(w)
			Expect(r.TCPBreaks).To(BeZero(), r.String())
			Expect(r.UDPLost).To(BeZero(), r.String())
		})
	})

	It("cleans a removed node up everywhere", func() {
		removed := labCfg.NodeAt(addedNode)
		nn := nodeNetworks()[removed.Name]
		Expect(nn.Spec.PodCIDRs).To(HaveLen(2))
		gone := []string{}
		for _, c := range nn.Spec.PodCIDRs {
			gone = append(gone, string(c))
		}
		allocated := clusterNetwork().Status.Nodes.Allocated
		// When the leading operator runs on the removed node, the standby takes over once the
		// lease expires (15 s): the wait may be that much longer, and the figure says so.
		bound, opNode := convergeBound, ""
		if leader, err := operatorLeader(); err == nil {
			opNode = leader.Spec.NodeName
		}
		if opNode == removed.Name {
			bound = convergeBound + 30*time.Second
		}
		t0 := time.Now()
		Expect(lab.RemoveNode(labCfg, addedNode)).To(Succeed())
		tRemoved := time.Since(t0)
		var tNN, tRoutes, tStatus time.Duration
		Eventually(func() error {
			if tNN == 0 {
				if err := k8s.Get(ctx, client.ObjectKey{Name: removed.Name}, &v1.NodeNetwork{}); !apierrors.IsNotFound(err) {
					return fmt.Errorf("NodeNetwork %s still there (%v)", removed.Name, err)
				}
				tNN = time.Since(t0)
			}
			if tRoutes == 0 {
				for i, name := range base {
					netns := labCfg.NodeAt(i + 1).Netns
					for _, c := range gone {
						if r := routeTo(netns, c); r != "" {
							return fmt.Errorf("%s still routes %s: %s", name, c, r)
						}
					}
					for _, ip := range []string{removed.IPv4.String(), removed.IPv6.String()} {
						if dp := dataPlane(netns); strings.Contains(dp, " "+ip+" ") || strings.Contains(dp, "dst "+ip) {
							return fmt.Errorf("%s still refers to %s's address %s:\n%s", name, removed.Name, ip, dp)
						}
					}
				}
				tRoutes = time.Since(t0)
			}
			cn := clusterNetwork()
			if cn.Status.Nodes.Total != int32(len(base)) || cn.Status.Nodes.Allocated != allocated-1 {
				return fmt.Errorf("ClusterNetwork status.nodes %+v", cn.Status.Nodes)
			}
			if err := allAtGeneration(base, cn.Status.AppliedGeneration); err != nil {
				return err
			}
			tStatus = time.Since(t0)
			return nil
		}).WithTimeout(bound).WithPolling(pollInterval).Should(Succeed())
		msg := fmt.Sprintf("(operator was on %s) node stopped and its Node deleted %s after RemoveNode began; NodeNetwork gone %s; routes to %v and every reference to %s/%s gone from all %d nodes %s; ClusterNetwork counts %d nodes, all Ready %s", opNode,
			tRemoved.Round(10*time.Millisecond), tNN.Round(10*time.Millisecond), gone, removed.IPv4, removed.IPv6, len(base),
			tRoutes.Round(10*time.Millisecond), len(base), tStatus.Round(10*time.Millisecond))
		fmt.Fprintln(GinkgoWriter, "removal:", msg)
		AddReportEntry("node removal", msg)
		Expect(labCfg.NodeAt(addedNode).Netns).NotTo(BeElementOf(lines("ip", "netns", "list")))
	})

	It("runs with the RBAC Plexus ships: no forbidden request in operator or agent logs", func() {
		collectPlexusLogs()
		plexusLogs.Lock()
		defer plexusLogs.Unlock()
		Expect(len(plexusLogs.byContainer)).To(BeNumerically(">=", 1+len(base)))
		var hits []string
		for pod, log := range plexusLogs.byContainer {
			for _, l := range strings.Split(log, "\n") {
				if forbidden.MatchString(l) {
					hits = append(hits, pod+": "+l)
				}
			}
		}
		AddReportEntry("RBAC", fmt.Sprintf("%d operator and agent logs read, %d forbidden lines", len(plexusLogs.byContainer), len(hits)))
		Expect(hits).To(BeEmpty(), "requests RBAC denied")
	})
})
