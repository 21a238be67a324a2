package e2e

// The NetworkPolicy truth table, in the spirit of upstream's reachability matrix: three namespaces
// (x, y, z) of three pods (a, b, c, on lab nodes 1, 2, 3), every pod serving ports 80 and 81 over
// TCP, UDP and SCTP on both families. Each case applies Kubernetes objects step by step; after each
// step real packets measure the whole 9x9 matrix per protocol, port and family (one exec of
// `echo probe` per source pod) and compare it with what networking.k8s.io/v1 says, re-probing
// until it matches or convergeWithin passes.
//
//	go test ./test/e2e/ -run TestE2E -ginkgo.focus 'NetworkPolicy truth table' -count=1 -timeout 40m

import (
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-net/plexus/internal/lab"
)

const (
	// truthNamespacePrefix names the suite's namespaces: truth-x, truth-y, truth-z.
	truthNamespacePrefix = "truth-"
	// nsLabel and podLabel are the labels policies select namespaces and pods by (ns=x, pod=a).
	nsLabel  = "ns"
	podLabel = "pod"
	// truthCaseLabel marks the Services a case makes, so the next case removes them.
	truthCaseLabel = "truth.plexus.dev/case"
)

var (
	truthNamespaceNames = []string{"x", "y", "z"}
	truthPodNames       = []string{"a", "b", "c"}
)

// truthNamespace is the namespace of short name ns ("x" -> "truth-x").
func truthNamespace(ns string) string { return truthNamespacePrefix + ns }

// truthWorld is the nine pods and what cases build their objects from.
type truthWorld struct {
	pods  []*truthPod
	kinds []probeKind
	// families are the lab's address families (false IPv4, true IPv6).
	families []bool
	// podCIDRs are each node's pod CIDRs (node 1..3), from its NodeNetwork.
	podCIDRs map[int][]netip.Prefix
	// netns is the network namespace path of each probe source: pods by id, nodes as node<i>.
	netns map[string]string
}

// pod finds "x/a".
func (w *truthWorld) pod(id string) *truthPod {
	for _, p := range w.pods {
		if p.is(id) {
			return p
		}
	}
	Fail("no pod " + id)
	return nil
}

// podCIDR is node i's pod CIDR of a family.
func (w *truthWorld) podCIDR(node int, v6 bool) netip.Prefix {
	for _, c := range w.podCIDRs[node] {
		if c.Addr().Is6() == v6 {
			return c
		}
	}
	Fail(fmt.Sprintf("node %d has no pod CIDR of the family (IPv6: %v)", node, v6))
	return netip.Prefix{}
}

// truthPodSpec is pod name of namespace ns on node: the echo image serving 80 and 81 over every
// protocol. Pods a and b name all six ports; pod c names only port 80's, so a policy on a port name
// for 81 does not match c.
func truthPodSpec(ns, name string, node int) *corev1.Pod {
	ports := []corev1.ContainerPort{}
	for _, port := range truthPorts {
		for _, proto := range truthProtocols {
			cp := corev1.ContainerPort{ContainerPort: port, Protocol: corev1.Protocol(strings.ToUpper(proto))}
			if port == 80 || name != "c" {
				cp.Name = portName(proto, port)
			}
			ports = append(ports, cp)
		}
	}
	ports = append(ports, corev1.ContainerPort{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP})
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: truthNamespace(ns), Labels: map[string]string{podLabel: name}},
		Spec: corev1.PodSpec{
			NodeName:                      labCfg.NodeAt(node).Name,
			TerminationGracePeriodSeconds: new(int64),
			Containers: []corev1.Container{{
				Name: "echo", Image: lab.EchoImage, ImagePullPolicy: corev1.PullNever,
				Args: []string{"-http", ":8080", "-tcp", "", "-serve", "80,81"},
				// The name the suite finds the pod's process by (lab.Config.EchoPodNetns).
				Env:   []corev1.EnvVar{{Name: "POD_NAME", Value: truthProcessName(ns, name)}},
				Ports: ports,
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
					PeriodSeconds: 1,
				},
			}},
		},
	}
}

// truthProcessName is what the pod's echo process has as POD_NAME: unique in the lab.
func truthProcessName(ns, name string) string { return truthNamespace(ns) + "-" + name }

// portName is the name pods give a port: t80, u81, s80 ...
func portName(proto string, port int32) string { return fmt.Sprintf("%c%d", proto[0], port) }

// setUpTruthWorld creates the namespaces and pods and waits until every pod runs with its
// addresses. Readiness is not waited for: only Services need it, and w.service waits for their
// endpoints.
func setUpTruthWorld() *truthWorld {
	for _, ns := range truthNamespaceNames {
		Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: truthNamespace(ns), Labels: map[string]string{nsLabel: ns}}})).To(Succeed())
		for i, name := range truthPodNames {
			Expect(k8s.Create(ctx, truthPodSpec(ns, name, i+1))).To(Succeed())
		}
	}
	w := &truthWorld{podCIDRs: map[int][]netip.Prefix{}, netns: map[string]string{}}
	Eventually(func(g Gomega) {
		w.pods = nil
		for _, ns := range truthNamespaceNames {
			for i, name := range truthPodNames {
				var p corev1.Pod
				g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: truthNamespace(ns), Name: name}, &p)).To(Succeed())
				g.Expect(p.Status.Phase).To(Equal(corev1.PodRunning), "pod %s/%s", ns, name)
				tp := &truthPod{ns: ns, name: name, node: i + 1}
				for _, ip := range p.Status.PodIPs {
					tp.ips = append(tp.ips, netip.MustParseAddr(ip.IP))
				}
				g.Expect(tp.ips).NotTo(BeEmpty())
				w.netns[tp.id()] = labCfg.EchoPodNetns(truthProcessName(ns, name))
				g.Expect(w.netns[tp.id()]).NotTo(BeEmpty(), "the echo process of pod %s", tp.id())
				w.pods = append(w.pods, tp)
			}
		}
	}, convergeBound, 500*time.Millisecond).Should(Succeed(), "the truth table's pods run")
	for _, v6 := range []bool{false, true} {
		if w.pods[0].ip(v6).IsValid() {
			w.families = append(w.families, v6)
		}
	}
	w.kinds = probeKinds(w.families)
	nns := nodeNetworks()
	for i := 1; i <= labNodes; i++ {
		w.netns[nodeSource(i)] = filepath.Join("/run/netns", labCfg.NodeAt(i).Netns)
		for _, c := range nns[labCfg.NodeAt(i).Name].Spec.PodCIDRs {
			w.podCIDRs[i] = append(w.podCIDRs[i], netip.MustParsePrefix(string(c)))
		}
	}
	return w
}

// reset removes what a case made: every NetworkPolicy and case Service in the namespaces, and
// labels of pods and namespaces back to the original ones.
func (w *truthWorld) reset() {
	for _, ns := range truthNamespaceNames {
		Expect(k8s.DeleteAllOf(ctx, &networkingv1.NetworkPolicy{}, client.InNamespace(truthNamespace(ns)))).To(Succeed())
		var svcs corev1.ServiceList
		Expect(k8s.List(ctx, &svcs, client.InNamespace(truthNamespace(ns)), client.HasLabels{truthCaseLabel})).To(Succeed())
		for i := range svcs.Items {
			Expect(client.IgnoreNotFound(k8s.Delete(ctx, &svcs.Items[i]))).To(Succeed())
		}
		w.setNamespaceLabels(ns, map[string]string{nsLabel: ns})
		for _, name := range truthPodNames {
			w.setPodLabels(ns+"/"+name, map[string]string{podLabel: name})
		}
	}
}

// setPodLabels makes the pod's labels exactly these.
func (w *truthWorld) setPodLabels(id string, labels map[string]string) {
	ns, name, _ := strings.Cut(id, "/")
	var p corev1.Pod
	Expect(k8s.Get(ctx, client.ObjectKey{Namespace: truthNamespace(ns), Name: name}, &p)).To(Succeed())
	if maps.Equal(p.Labels, labels) {
		return
	}
	// A merge patch, not an update: the kubelet writes the pod's status meanwhile.
	orig := p.DeepCopy()
	p.Labels = labels
	Expect(k8s.Patch(ctx, &p, client.MergeFrom(orig))).To(Succeed(), "relabel pod %s", id)
}

// setNamespaceLabels makes the namespace's labels these (plus the kubernetes.io/metadata.name
// the API server always keeps).
func (w *truthWorld) setNamespaceLabels(ns string, labels map[string]string) {
	var n corev1.Namespace
	Expect(k8s.Get(ctx, client.ObjectKey{Name: truthNamespace(ns)}, &n)).To(Succeed())
	want := map[string]string{"kubernetes.io/metadata.name": truthNamespace(ns)}
	maps.Copy(want, labels)
	if maps.Equal(n.Labels, want) {
		return
	}
	orig := n.DeepCopy()
	n.Labels = want
	Expect(k8s.Patch(ctx, &n, client.MergeFrom(orig))).To(Succeed(), "relabel namespace %s", ns)
}

// apply creates each policy or, when it exists, replaces its spec.
func (w *truthWorld) apply(policies ...*networkingv1.NetworkPolicy) {
	for _, p := range policies {
		var cur networkingv1.NetworkPolicy
		err := k8s.Get(ctx, client.ObjectKeyFromObject(p), &cur)
		if apierrors.IsNotFound(err) {
			Expect(k8s.Create(ctx, p.DeepCopy())).To(Succeed(), "create policy %s", p.Name)
			continue
		}
		Expect(err).NotTo(HaveOccurred())
		cur.Spec = p.Spec
		Expect(k8s.Update(ctx, &cur)).To(Succeed(), "update policy %s", p.Name)
	}
}

// remove deletes policies.
func (w *truthWorld) remove(policies ...*networkingv1.NetworkPolicy) {
	for _, p := range policies {
		Expect(k8s.Delete(ctx, p.DeepCopy())).To(Succeed(), "delete policy %s", p.Name)
	}
}

// preferDualStack is a Service's ipFamilyPolicy: both families where the lab has them.
var preferDualStack = corev1.IPFamilyPolicyPreferDualStack

// service makes a Service of type typ in namespace ns over the pods with label pod=podName on
// port 80 (TCP), both families, and waits until its endpoint is ready.
func (w *truthWorld) service(ns, name, podName string, typ corev1.ServiceType) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: truthNamespace(ns), Labels: map[string]string{truthCaseLabel: "true"}},
		Spec: corev1.ServiceSpec{
			Type:           typ,
			IPFamilyPolicy: &preferDualStack,
			Selector:       map[string]string{podLabel: podName},
			Ports:          []corev1.ServicePort{{Name: "t80", Port: 80, TargetPort: intstr.FromString("t80"), Protocol: corev1.ProtocolTCP}},
		},
	}
	Expect(k8s.Create(ctx, svc)).To(Succeed())
	Eventually(func(g Gomega) {
		var l discoveryv1.EndpointSliceList
		g.Expect(k8s.List(ctx, &l, client.InNamespace(svc.Namespace), client.MatchingLabels{discoveryv1.LabelServiceName: name})).To(Succeed())
		ready := 0
		for _, s := range l.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					ready++
				}
			}
		}
		g.Expect(ready).To(BeNumerically(">", 0))
	}, convergeBound, 200*time.Millisecond).Should(Succeed(), "Service %s/%s has a ready endpoint", ns, name)
	return svc
}

// clusterIPs are a Service's ClusterIPs.
func clusterIPs(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, ip := range svc.Spec.ClusterIPs {
		out = append(out, netip.MustParseAddr(ip))
	}
	return out
}

// serviceByName reads a Service.
func serviceByName(namespace, name string) *corev1.Service {
	svc := &corev1.Service{}
	ExpectWithOffset(1, k8s.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, svc)).To(Succeed())
	return svc
}

var _ = Describe("NetworkPolicy truth table", Ordered, ContinueOnFailure, func() {
	var w *truthWorld
	started := time.Now()
	var passed, failed []string

	BeforeAll(func() {
		started = time.Now()
		w = setUpTruthWorld()
		fmt.Fprintf(GinkgoWriter, "truth table: %d pods, %d probe kinds (families IPv6=%v), %d cells a round\n",
			len(w.pods), len(w.kinds), w.families, len(w.pods)*len(w.pods)*len(w.kinds))
		DeferCleanup(func() {
			for _, ns := range truthNamespaceNames {
				Expect(client.IgnoreNotFound(k8s.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: truthNamespace(ns)}}))).To(Succeed())
			}
			AddReportEntry("NetworkPolicy truth table", fmt.Sprintf("%d cases passed, %d failed in %s\nfailed: %s",
				len(passed), len(failed), time.Since(started).Round(time.Second), strings.Join(failed, "; ")))
		})
	})

	for _, c := range truthCases() {
		It(c.name, func() {
			caseStart := time.Now()
			ok := false
			defer func() {
				if ok {
					passed = append(passed, c.name)
				} else {
					failed = append(failed, c.name)
				}
			}()
			w.reset()
			steps := append([]truthStep{{what: "no policy: everything reaches everything", allowed: allowAll}}, c.steps(w)...)
			var rounds []string
			for i, s := range steps {
				if s.do != nil {
					s.do(w)
				}
				extras := s.extras
				if s.extrasFrom != nil {
					extras = append(slices.Clone(extras), *s.extrasFrom...)
				}
				want := expectedMatrix(w.pods, w.kinds, s.allowed)
				obs, n, err := w.converge(want, extras)
				if err != nil {
					Fail(fmt.Sprintf("step %d (%s): probing failed: %v", i, s.what, err))
				}
				if bad := mismatches(want, extras, obs); bad > 0 {
					Fail(fmt.Sprintf("step %d (%s): %d cells differ from Kubernetes semantics after %s:\n%s",
						i, s.what, bad, convergeWithin, sideBySide(w.pods, w.kinds, want, extras, obs)))
				}
				rounds = append(rounds, fmt.Sprint(n))
			}
			ok = true
			AddReportEntry("case "+c.name, fmt.Sprintf("%d steps, probe rounds per step %s, %s",
				len(steps), strings.Join(rounds, "/"), time.Since(caseStart).Round(100*time.Millisecond)))
		})
	}
})
