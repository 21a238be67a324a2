package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers"
	"github.com/plexus-net/plexus/internal/check"
	"github.com/plexus-net/plexus/internal/lab"
)

const (
	// helmLabSlotOffset moves the Helm spec's lab away from the suite's: the suite in slot s (1, or
	// PLEXUS_E2E_SLOT) puts it in slot s XOR 128, named helm<slot> (suite slot 1 → helm129 in slot
	// 129, slot 2 → helm130). Suites run in slots below 128, so two suites in different slots never
	// share a Helm lab, and no Helm lab shares a slot with a suite, make lab (0) or conformance (5).
	helmLabSlotOffset = 128
	// helmLabNodes: two nodes are enough for cross-node pod traffic and hold both operator replicas
	// (their host ports keep them on different nodes).
	helmLabNodes = 2
	// previousChart is the packaged chart of the release before this one (config/helm/testdata).
	previousChart        = "config/helm/testdata/plexus-0.1.0.tgz"
	previousChartVersion = "plexus-0.1.0"
)

// helmLab is the Helm spec's own lab and clients to it.
type helmLab struct {
	cfg lab.Config
	k8s client.Client
	cs  kubernetes.Interface
}

// helmLabConfig is the lab the Helm spec starts: slot (suite slot XOR helmLabSlotOffset), the
// previous chart installed with lab up --install=helm.
func helmLabConfig() lab.Config {
	suiteSlot := int(labCfg.UnderlayV4.Addr().As4()[2]) // NamedConfig: the slot is the third octet
	slot := suiteSlot ^ helmLabSlotOffset
	c := lab.NamedConfig(repoRoot(), fmt.Sprintf("helm%d", slot), slot)
	c.Nodes = helmLabNodes
	c.Install = lab.InstallHelm
	c.HelmChart = filepath.Join(repoRoot(), previousChart)
	c.AfterInstall = operatorRBACBridge()
	c.Out = GinkgoWriter
	return c
}

// operatorRBACBridge is this checkout's operator RBAC (config/rbac/role.yaml: the ClusterRole and
// the namespaced Role) under names of its own, bound to the operator's ServiceAccount. The lab has
// only this checkout's images, so the previous chart's release runs today's operator, which
// watches kinds the previous chart's ClusterRole does not grant (the ingress component's): without
// the bridge its caches never sync and it renders nothing. A real 0.1.0 release runs 0.1.0 images
// with that chart's RBAC; the upgrade below then installs these rules through the chart itself.
func operatorRBACBridge() string {
	raw, err := os.ReadFile(filepath.Join(repoRoot(), "config/rbac/role.yaml"))
	if err != nil {
		panic(fmt.Sprintf("read the operator's RBAC: %v", err))
	}
	const name = "plexus-e2e-previous-chart-bridge"
	var docs []string
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var o map[string]any
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil || o == nil {
			continue
		}
		meta, _ := o["metadata"].(map[string]any)
		kind, _ := o["kind"].(string)
		if meta == nil || (kind != "ClusterRole" && kind != "Role") {
			continue
		}
		meta["name"] = name
		binding := map[string]any{
			"apiVersion": "rbac.authorization.k8s.io/v1",
			"kind":       kind + "Binding",
			"metadata":   map[string]any{"name": name},
			"roleRef":    map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
			"subjects":   []any{map[string]any{"kind": "ServiceAccount", "name": "plexus-operator", "namespace": lab.PlexusNamespace}},
		}
		if kind == "Role" {
			binding["metadata"].(map[string]any)["namespace"] = meta["namespace"]
		}
		for _, obj := range []map[string]any{o, binding} {
			out, err := yaml.Marshal(obj)
			if err != nil {
				panic(err)
			}
			docs = append(docs, string(out))
		}
	}
	if len(docs) != 4 {
		panic(fmt.Sprintf("config/rbac/role.yaml: want a ClusterRole and a Role, got %d bridge objects", len(docs)))
	}
	return strings.Join(docs, "---\n")
}

// matrixGreen runs plexusctl check's matrix against the lab and expects no failed cell.
func (h helmLab) matrixGreen(when string) {
	var progress bytes.Buffer
	t0 := time.Now()
	rep, err := check.Run(ctx, h.cs, h.k8s, check.Options{Progress: &progress})
	Expect(err).NotTo(HaveOccurred(), progress.String())
	var out bytes.Buffer
	check.Format(&out, rep)
	AddReportEntry("plexusctl check "+when, fmt.Sprintf("%s(%s)", out.String(), time.Since(t0).Round(100*time.Millisecond)))
	Expect(rep.Failures()).To(BeEmpty(), out.String())
	Expect(rep.Rows).To(HaveLen(2*helmLabNodes), "a pod-network and a host-network client per node:\n%s", out.String())
}

// releaseChart is the chart (name-version) of the deployed release and its revision.
func (h helmLab) releaseChart() (string, int) {
	out, err := h.cfg.Helm("list", "-n", lab.PlexusNamespace, "-o", "json")
	Expect(err).NotTo(HaveOccurred())
	var releases []struct {
		Name, Chart, Status string
		Revision            json.Number
	}
	Expect(json.Unmarshal([]byte(out), &releases)).To(Succeed(), out)
	Expect(releases).To(HaveLen(1), out)
	Expect(releases[0].Status).To(Equal("deployed"), out)
	rev, err := releases[0].Revision.Int64()
	Expect(err).NotTo(HaveOccurred(), out)
	return releases[0].Chart, int(rev)
}

// dataPlanePods are the pods of the Plexus namespace other than the operator's (the agents and
// what the operator renders), as name → "uid restarts=N" summed over containers.
func (h helmLab) dataPlanePods() map[string]string {
	var pods corev1.PodList
	Expect(h.k8s.List(ctx, &pods, client.InNamespace(lab.PlexusNamespace))).To(Succeed())
	op, err := labels.Parse(operatorSelector)
	Expect(err).NotTo(HaveOccurred())
	out := map[string]string{}
	for _, p := range pods.Items {
		if op.Matches(labels.Set(p.Labels)) {
			continue
		}
		restarts := int32(0)
		for _, s := range p.Status.ContainerStatuses {
			restarts += s.RestartCount
		}
		out[p.Name] = fmt.Sprintf("%s restarts=%d", p.UID, restarts)
	}
	return out
}

// networkReady waits, bounded, until the ClusterNetwork default is Ready at its generation.
func (h helmLab) networkReady() {
	Eventually(func() error {
		var cn v1.ClusterNetwork
		if err := h.k8s.Get(ctx, client.ObjectKey{Name: "default"}, &cn); err != nil {
			return err
		}
		c := meta.FindStatusCondition(cn.Status.Conditions, v1.ConditionReady)
		if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != cn.Generation {
			return fmt.Errorf("ClusterNetwork default not Ready at generation %d: %+v", cn.Generation, c)
		}
		return nil
	}).WithTimeout(convergeBound).WithPolling(time.Second).Should(Succeed())
}

// echoPodsOnTwoNodes returns running echo pods on two different nodes of the lab.
func (h helmLab) echoPodsOnTwoNodes() (podRef, podRef) {
	var pods corev1.PodList
	Expect(h.k8s.List(ctx, &pods, client.InNamespace(lab.WorkloadNamespace), client.MatchingLabels{"app": lab.EchoName})).To(Succeed())
	byNode := map[string]podRef{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" {
			byNode[p.Spec.NodeName] = podRef{name: p.Name, node: p.Spec.NodeName, ip: p.Status.PodIP}
		}
	}
	nodes := make([]string, 0, len(byNode))
	for n := range byNode {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	Expect(len(nodes)).To(BeNumerically(">=", 2), "echo pods by node: %v", byNode)
	return byNode[nodes[0]], byNode[nodes[1]]
}

// releaseObjects are the objects of the release's manifest (helm get manifest).
func (h helmLab) releaseObjects() []*unstructured.Unstructured {
	out, err := h.cfg.Helm("get", "manifest", lab.HelmRelease, "-n", lab.PlexusNamespace)
	Expect(err).NotTo(HaveOccurred())
	var objs []*unstructured.Unstructured
	for _, doc := range strings.Split(out, "\n---") {
		u := &unstructured.Unstructured{}
		Expect(yaml.Unmarshal([]byte(doc), &u.Object)).To(Succeed(), doc)
		if len(u.Object) == 0 {
			continue
		}
		objs = append(objs, u)
	}
	return objs
}

func describeObj(o *unstructured.Unstructured) string {
	if o.GetNamespace() == "" {
		return o.GetKind() + " " + o.GetName()
	}
	return o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
}

var _ = Describe("Installing with Helm", Ordered, Label("helm"), func() {
	var h helmLab

	BeforeAll(func() {
		h.cfg = helmLabConfig()
		if lab.Exists(h.cfg.Dir) {
			By("removing what an aborted run of this spec left")
			Expect(lab.Down(h.cfg)).To(Succeed())
		}
		DeferCleanup(func() { Expect(lab.Down(h.cfg)).To(Succeed()) })
		By(fmt.Sprintf("starting lab %s (slot of the suite XOR %d) with lab up --install=helm of %s", h.cfg.Name, helmLabSlotOffset, previousChart))
		t0 := time.Now()
		Expect(lab.Up(h.cfg)).To(Succeed(), "lab up (logs in %s)", h.cfg.Dir)
		AddReportEntry("helm lab up (previous chart)", time.Since(t0).Round(100*time.Millisecond).String())
		rc, err := clientcmd.BuildConfigFromFlags("", h.cfg.AdminKubeconfig())
		Expect(err).NotTo(HaveOccurred())
		h.k8s, err = client.New(rc, client.Options{Scheme: controllers.NewScheme()})
		Expect(err).NotTo(HaveOccurred())
		h.cs, err = kubernetes.NewForConfig(rc)
		Expect(err).NotTo(HaveOccurred())
	})

	It("runs the previous chart's release with the connectivity matrix green", func() {
		chart, rev := h.releaseChart()
		Expect(chart).To(Equal(previousChartVersion))
		Expect(rev).To(Equal(1))
		h.networkReady()
		h.matrixGreen("after helm install " + previousChartVersion)
	})

	It("upgrades to this chart without restarting the data plane or dropping a connection", func() {
		src, dst := h.echoPodsOnTwoNodes()
		before := h.dataPlanePods()
		Expect(before).NotTo(BeEmpty())
		s := startStreamsIn(h.cfg, src, dst)
		defer s.close()
		w := s.begin("helm upgrade " + previousChartVersion + " → this chart")
		t0 := time.Now()
		out, err := h.cfg.Helm("upgrade", lab.HelmRelease, filepath.Join(repoRoot(), "config/helm/plexus"),
			"-n", lab.PlexusNamespace, "-f", h.cfg.HelmValuesFile(), "--wait", "--timeout", "3m")
		Expect(err).NotTo(HaveOccurred(), out)
		h.networkReady()
		AddReportEntry("helm upgrade until Ready", time.Since(t0).Round(100*time.Millisecond).String())
		r := s.end(w)
		Expect(r.TCPBreaks).To(BeZero(), "the long-running TCP connection broke during the upgrade: %s", r)
		Expect(r.UDPLost).To(BeZero(), "datagrams lost during the upgrade: %s", r)

		chart, rev := h.releaseChart()
		Expect(chart).NotTo(Equal(previousChartVersion))
		Expect(chart).To(HavePrefix("plexus-"))
		Expect(rev).To(Equal(2))
		// The CRDs are templates: the upgrade upgraded them too (they carry the new chart's label).
		var crd unstructured.Unstructured
		crd.SetAPIVersion("apiextensions.k8s.io/v1")
		crd.SetKind("CustomResourceDefinition")
		Expect(h.k8s.Get(ctx, client.ObjectKey{Name: "clusternetworks.plexus.dev"}, &crd)).To(Succeed())
		Expect(crd.GetLabels()).To(HaveKeyWithValue("helm.sh/chart", chart))

		Expect(h.dataPlanePods()).To(Equal(before), "data-plane pods (name: uid restarts) replaced or restarted by the upgrade")
		h.matrixGreen("after helm upgrade to " + chart)
	})

	It("uninstalls, leaving only what the keep policy keeps, and the network running", func() {
		objs := h.releaseObjects()
		Expect(objs).NotTo(BeEmpty())
		kept := map[string]bool{}
		for _, o := range objs {
			if o.GetAnnotations()["helm.sh/resource-policy"] == "keep" {
				kept[describeObj(o)] = true
			}
		}
		// The documented policy with the lab's values (crds.keep defaults to true): both CRDs,
		// nothing else of the release.
		Expect(kept).To(Equal(map[string]bool{
			"CustomResourceDefinition clusternetworks.plexus.dev": true,
			"CustomResourceDefinition nodenetworks.plexus.dev":    true,
		}))

		out, err := h.cfg.Helm("uninstall", lab.HelmRelease, "-n", lab.PlexusNamespace, "--wait", "--timeout", "2m")
		Expect(err).NotTo(HaveOccurred(), out)
		Eventually(func() []string {
			var left []string
			for _, o := range objs {
				got := &unstructured.Unstructured{}
				got.SetGroupVersionKind(o.GroupVersionKind())
				err := h.k8s.Get(ctx, client.ObjectKeyFromObject(o), got)
				switch {
				case apierrors.IsNotFound(err) == kept[describeObj(o)]:
					left = append(left, fmt.Sprintf("%s: kept=%v, get: %v", describeObj(o), kept[describeObj(o)], err))
				case err != nil && !apierrors.IsNotFound(err):
					left = append(left, fmt.Sprintf("%s: %v", describeObj(o), err))
				}
			}
			return left
		}).WithTimeout(2*time.Minute).WithPolling(time.Second).Should(BeEmpty(), "release objects left or kept against the policy")
		Eventually(func() []corev1.Pod {
			var pods corev1.PodList
			Expect(h.k8s.List(ctx, &pods, client.InNamespace(lab.PlexusNamespace), client.MatchingLabels{"app.kubernetes.io/name": "plexus-operator"})).To(Succeed())
			return pods.Items
		}).WithTimeout(2*time.Minute).WithPolling(time.Second).Should(BeEmpty(), "operator pods left")
		var secrets corev1.SecretList
		Expect(h.k8s.List(ctx, &secrets, client.InNamespace(lab.PlexusNamespace), client.MatchingLabels{"owner": "helm", "name": lab.HelmRelease})).To(Succeed())
		Expect(secrets.Items).To(BeEmpty(), "helm's release records left")

		// The ClusterNetwork (applied from config/samples, not the release's) stays with its kept
		// CRD, and so does the network: the agents the operator rendered still run and every node
		// stays Ready.
		var cn v1.ClusterNetwork
		Expect(h.k8s.Get(ctx, client.ObjectKey{Name: "default"}, &cn)).To(Succeed())
		var nns v1.NodeNetworkList
		Expect(h.k8s.List(ctx, &nns)).To(Succeed())
		Expect(nns.Items).To(HaveLen(helmLabNodes))
		Expect(h.dataPlanePods()).NotTo(BeEmpty())
		var nodes corev1.NodeList
		Expect(h.k8s.List(ctx, &nodes)).To(Succeed())
		for i := range nodes.Items {
			Expect(nodeReady(&nodes.Items[i])).To(BeTrue(), "node %s after helm uninstall", nodes.Items[i].Name)
		}
	})
})
