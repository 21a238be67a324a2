package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-net/plexus/agent/routing"
	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers"
	"github.com/plexus-net/plexus/internal/lab"
	"github.com/plexus-net/plexus/internal/testnet"
)

const (
	// plexusNamespace holds the operator and the agents.
	plexusNamespace = "plexus-system"
	// agentSelector and operatorSelector select the agent and operator pods.
	agentSelector    = "app.kubernetes.io/name=plexus-agent"
	operatorSelector = "app.kubernetes.io/name=plexus-operator"
	// convergeBound bounds how long a change may take to reach every node.
	convergeBound = 2 * time.Minute
	// pollInterval is how often state is polled while waiting for it.
	pollInterval = 100 * time.Millisecond
)

// pollUntil is testnet.Poll at the suite's pollInterval.
func pollUntil(bound time.Duration, cond func() bool) bool {
	return testnet.Poll(bound, pollInterval, cond)
}

// clusterNetwork reads the ClusterNetwork default.
func clusterNetwork() *v1.ClusterNetwork {
	cn := &v1.ClusterNetwork{}
	ExpectWithOffset(1, k8s.Get(ctx, client.ObjectKey{Name: v1.DefaultClusterNetworkName}, cn)).To(Succeed())
	return cn
}

// nodeNetworks reads every NodeNetwork by name.
func nodeNetworks() map[string]v1.NodeNetwork {
	var l v1.NodeNetworkList
	ExpectWithOffset(1, k8s.List(ctx, &l)).To(Succeed())
	out := map[string]v1.NodeNetwork{}
	for _, n := range l.Items {
		out[n.Name] = n
	}
	return out
}

// nodeReady says whether the Node reports Ready=True.
func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// describeNN is a NodeNetwork's status in one line, for failure messages.
func describeNN(nn v1.NodeNetwork) string {
	var conds []string
	for _, c := range nn.Status.Conditions {
		conds = append(conds, fmt.Sprintf("%s=%s(%s: %s)", c.Type, c.Status, c.Reason, c.Message))
	}
	return fmt.Sprintf("%s: podCIDRs %v programmedGeneration %d %s lastError %q", nn.Name, nn.Spec.PodCIDRs,
		nn.Status.ProgrammedGeneration, strings.Join(conds, " "), nn.Status.LastError)
}

// allAtGeneration checks that every NodeNetwork of the given nodes programmed gen and is Ready, and
// that the ClusterNetwork serves gen with every node at it.
func allAtGeneration(nodes []string, gen int64) error {
	cn := clusterNetwork()
	if cn.Status.AppliedGeneration != gen {
		return fmt.Errorf("ClusterNetwork appliedGeneration %d, want %d", cn.Status.AppliedGeneration, gen)
	}
	nns := nodeNetworks()
	for _, n := range nodes {
		nn, ok := nns[n]
		if !ok {
			return fmt.Errorf("no NodeNetwork %s", n)
		}
		if nn.Status.ProgrammedGeneration != gen || !meta.IsStatusConditionTrue(nn.Status.Conditions, v1.ConditionNodeReady) {
			return fmt.Errorf("not at generation %d: %s", gen, describeNN(nn))
		}
	}
	if int(cn.Status.Nodes.AtGeneration) != len(nodes) || !meta.IsStatusConditionTrue(cn.Status.Conditions, v1.ConditionReady) {
		ready := "none"
		if c := meta.FindStatusCondition(cn.Status.Conditions, v1.ConditionReady); c != nil {
			ready = fmt.Sprintf("%s (%s: %s)", c.Status, c.Reason, c.Message)
		}
		return fmt.Errorf("ClusterNetwork status.nodes %+v, Ready %s", cn.Status.Nodes, ready)
	}
	return nil
}

// labNodeNames are the names of nodes 1..n.
func labNodeNames(n int) []string {
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, labCfg.NodeAt(i).Name)
	}
	return out
}

// ipIn runs ip(8) inside a node's network namespace.
func ipIn(netns string, args ...string) string {
	out, err := exec.Command("ip", append([]string{"-n", netns}, args...)...).CombinedOutput()
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), "ip -n %s %v: %s", netns, args, out)
	return string(out)
}

// routeTo is a node's route to cidr ("" when there is none).
func routeTo(netns, cidr string) string {
	fam := "-4"
	if strings.Contains(cidr, ":") {
		fam = "-6"
	}
	out, _ := exec.Command("ip", "-n", netns, fam, "route", "show", cidr).CombinedOutput()
	return strings.TrimSpace(string(out))
}

// dataPlane dumps what Plexus programs in a node: the VXLAN device, routes of both families, the
// VXLAN neighbours and forwarding entries, and every nftables table.
func dataPlane(netns string) string {
	run := func(name string, args ...string) string {
		out, _ := exec.Command(name, args...).CombinedOutput()
		return string(out)
	}
	return strings.Join([]string{
		run("ip", "-n", netns, "-d", "link", "show", routing.VXLANDeviceName),
		run("ip", "-n", netns, "-4", "route", "show"),
		run("ip", "-n", netns, "-6", "route", "show"),
		run("ip", "-n", netns, "neigh", "show", "dev", routing.VXLANDeviceName, "nud", "permanent"),
		run("ip", "netns", "exec", netns, "bridge", "fdb", "show", "dev", routing.VXLANDeviceName),
		run("ip", "netns", "exec", netns, "nft", "list", "ruleset"),
	}, "\n")
}

// echoPods returns the running echo pods (label app=echo) by node.
func echoPods() map[string]podRef {
	var pods corev1.PodList
	ExpectWithOffset(1, k8s.List(ctx, &pods, client.InNamespace(lab.WorkloadNamespace), client.MatchingLabels{"app": lab.EchoName})).To(Succeed())
	out := map[string]podRef{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
			continue
		}
		out[p.Spec.NodeName] = podRef{name: p.Name, node: p.Spec.NodeName, ip: p.Status.PodIP}
	}
	return out
}

// httpFrom GETs url from inside the network namespace nsPath.
func httpFrom(nsPath, url string) (string, error) {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return lab.DialInNetns(ctx, nsPath, network, addr)
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// podsOf lists the pods of a selector in the Plexus namespace.
func podsOf(selector string) []corev1.Pod {
	sel, err := metav1.ParseToLabelSelector(selector)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	s, err := metav1.LabelSelectorAsSelector(sel)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	var l corev1.PodList
	ExpectWithOffset(1, k8s.List(ctx, &l, client.InNamespace(plexusNamespace), client.MatchingLabelsSelector{Selector: s})).To(Succeed())
	return l.Items
}

// operatorLeaseName is the operator's leader election lease (cmd/plexus-operator).
const operatorLeaseName = "plexus-operator.plexus.dev"

// operatorLeader returns the operator pod that holds the leader lease. The holder identity is
// "<hostname>_<uuid>", and the operator runs on the host network, so the hostname is its node.
func operatorLeader() (corev1.Pod, error) {
	var lease coordinationv1.Lease
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: plexusNamespace, Name: operatorLeaseName}, &lease); err != nil {
		return corev1.Pod{}, err
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		return corev1.Pod{}, fmt.Errorf("lease %s has no holder", operatorLeaseName)
	}
	node, _, _ := strings.Cut(*lease.Spec.HolderIdentity, "_")
	for _, p := range podsOf(operatorSelector) {
		if p.Spec.NodeName == node && p.DeletionTimestamp == nil {
			return p, nil
		}
	}
	return corev1.Pod{}, fmt.Errorf("lease holder %s is no running operator pod", *lease.Spec.HolderIdentity)
}

// plexusLogs collects the logs of every operator and agent container the suite saw, including
// those of pods the suite deletes (collected before), for the RBAC check at the end.
var plexusLogs = struct {
	sync.Mutex
	byContainer map[string]string
}{byContainer: map[string]string{}}

// collectPlexusLogs reads the current logs of every operator and agent pod.
func collectPlexusLogs() {
	for _, sel := range []string{operatorSelector, agentSelector} {
		for _, p := range podsOf(sel) {
			out, err := lab.Kubectl(labCfg, "", "-n", plexusNamespace, "logs", p.Name, "--all-containers")
			if err != nil {
				fmt.Fprintf(GinkgoWriter, "logs of %s: %v\n", p.Name, err)
				continue
			}
			plexusLogs.Lock()
			plexusLogs.byContainer[p.Name+"@"+p.Spec.NodeName] = out
			plexusLogs.Unlock()
		}
	}
}

// forbidden matches what the API server answers when RBAC denies a request, as client-go logs it:
// `nodes is forbidden: User "system:serviceaccount:..." cannot list resource "nodes" ...`. A
// refused ClusterNetwork change ("spec.x: Forbidden: cannot change ...") does not match.
var forbidden = regexp.MustCompile(`(?i)is forbidden: User "|cannot (get|list|watch|create|update|patch|delete|deletecollection) resource "`)

// nodeWatch records, while the lab starts, how each Node's Ready condition looked when the Node was
// first seen and when it turned Ready.
type nodeWatch struct {
	start time.Time
	done  chan struct{}
	wg    sync.WaitGroup

	mu    sync.Mutex
	nodes map[string]*nodeSeen
}

// nodeSeen is one node's bootstrap as polled.
type nodeSeen struct {
	registered  time.Time
	firstReady  corev1.ConditionStatus
	firstReason string
	readyAt     time.Time
}

// watchNodes polls the lab's Nodes (once its kubeconfig works) until stop.
func watchNodes(kubeconfig string) *nodeWatch {
	w := &nodeWatch{start: time.Now(), done: make(chan struct{}), nodes: map[string]*nodeSeen{}}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		var c client.Client
		tick := time.NewTicker(pollInterval)
		defer tick.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-tick.C:
			}
			if c == nil {
				if _, err := os.Stat(kubeconfig); err != nil {
					continue
				}
				rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
				if err != nil {
					continue
				}
				rc.Timeout = 2 * time.Second
				if c, err = client.New(rc, client.Options{Scheme: controllers.NewScheme()}); err != nil {
					c = nil
					continue
				}
			}
			var l corev1.NodeList
			if err := c.List(context.Background(), &l); err != nil {
				continue
			}
			now := time.Now()
			w.mu.Lock()
			for _, n := range l.Items {
				s := w.nodes[n.Name]
				if s == nil {
					s = &nodeSeen{registered: now, firstReady: corev1.ConditionUnknown, firstReason: "no Ready condition yet"}
					for _, cond := range n.Status.Conditions {
						if cond.Type == corev1.NodeReady {
							s.firstReady, s.firstReason = cond.Status, cond.Message
						}
					}
					w.nodes[n.Name] = s
				}
				if s.readyAt.IsZero() && nodeReady(&n) {
					s.readyAt = now
				}
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *nodeWatch) stop() {
	close(w.done)
	w.wg.Wait()
}

// machineSnapshot is what the machine itself looks like: the suite checks the lab leaves it so.
type machineSnapshot struct {
	netns, links, nftTables, mounts []string
}

func lines(name string, args ...string) []string {
	out, _ := exec.Command(name, args...).Output()
	var l []string
	for _, s := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if s = strings.TrimSpace(s); s != "" {
			l = append(l, s)
		}
	}
	sort.Strings(l)
	return l
}

// labOwned keeps what the suite's lab could have made (names start with its prefix, plexus-e2e, or
// paths in its folder): other tests on the machine create throwaway namespaces at the same time,
// and a person's lab may run beside it.
func labOwned(in []string) []string {
	out := slices.DeleteFunc(slices.Clone(in), func(s string) bool {
		return !strings.Contains(s, labCfg.NetnsPrefix()+"-") && !mentionsLabDir(s) && !strings.Contains(s, "br-lab")
	})
	if len(out) == 0 {
		return nil // none is none, whether or not the machine had other entries
	}
	return out
}

// mentionsLabDir says whether s names the suite's lab folder or a path in it; a lab whose name
// starts like the suite's (plexus-e2e6, lab-e2e6) is another one.
func mentionsLabDir(s string) bool {
	for _, end := range []string{"/", "\x00", " "} {
		if strings.Contains(s, labCfg.Dir+end) {
			return true
		}
	}
	return strings.HasSuffix(s, labCfg.Dir)
}

func takeMachineSnapshot() machineSnapshot {
	var links []string
	for _, l := range lines("ip", "-o", "link", "show") {
		if f := strings.Fields(l); len(f) > 1 {
			links = append(links, strings.TrimSuffix(strings.SplitN(f[1], "@", 2)[0], ":"))
		}
	}
	var mounts []string
	for _, l := range lines("cat", "/proc/self/mountinfo") {
		if f := strings.Fields(l); len(f) > 4 {
			mounts = append(mounts, f[4])
		}
	}
	sort.Strings(links)
	sort.Strings(mounts)
	return machineSnapshot{netns: lines("ip", "netns", "list"), links: links, nftTables: lines("nft", "list", "tables"), mounts: mounts}
}

// checkMachineRestored compares the machine with the snapshot taken before the lab started:
// namespaces, links and mounts the lab could have made, every nftables table of the machine, no
// process left in the lab's cgroup and no process using the suite's lab folder.
func checkMachineRestored(before machineSnapshot) {
	after := takeMachineSnapshot()
	Expect(labOwned(after.netns)).To(Equal(labOwned(before.netns)), "network namespaces")
	Expect(after.nftTables).To(Equal(before.nftTables), "nftables tables of the machine")
	var newLinks []string
	for _, l := range after.links {
		if !slices.Contains(before.links, l) {
			newLinks = append(newLinks, l)
		}
	}
	Expect(newLinks).To(BeEmpty(), "links in the machine's namespace")
	Expect(labOwned(after.mounts)).To(Equal(labOwned(before.mounts)), "mounts")
	_, err := os.Stat(filepath.Join("/sys/fs/cgroup/pids", labCfg.CgroupRoot()))
	Expect(os.IsNotExist(err)).To(BeTrue(), "the lab's cgroup is still there")
	var left []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range procs {
		b, err := os.ReadFile(f)
		if err == nil && mentionsLabDir(string(b)) {
			left = append(left, filepath.Base(filepath.Dir(f))+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	Expect(left).To(BeEmpty(), "processes of the suite's lab")
	fmt.Fprintf(GinkgoWriter, "machine restored: %d netns, %d links, %d nftables tables, %d mounts as before\n",
		len(after.netns), len(after.links), len(after.nftTables), len(after.mounts))
}

// jsonOf is v as indented JSON, for failure messages.
func jsonOf(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
