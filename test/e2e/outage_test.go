package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-net/plexus/internal/lab"
)

const (
	// apiOutage is how long the API server is frozen. It stays under kube-controller-manager's
	// node-monitor-grace-period (50 s): after a longer outage the node lifecycle controller finds
	// every kubelet's heartbeat stale before the kubelets renew it, marks the nodes' pods not ready
	// and their endpoints leave the EndpointSlices for a moment, so Services answer "connection
	// refused" by Kubernetes' own decision, whatever the data plane does (seen in the lab at 60 s:
	// "all Nodes are not-Ready. Entering master disruption mode").
	apiOutage = 30 * time.Second
	// clusterIPProbeInterval spaces the ClusterIP probes during the outage.
	clusterIPProbeInterval = 200 * time.Millisecond
	// apiserverRole is the API server's role in the lab's state file (internal/lab).
	apiserverRole = "kube-apiserver"
)

// labAPIServerPID reads the API server's pid from the lab's state file.
func labAPIServerPID() int {
	data, err := os.ReadFile(filepath.Join(labCfg.Dir, "state.json"))
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	var st struct {
		Processes map[string]int `json:"processes"`
	}
	ExpectWithOffset(1, json.Unmarshal(data, &st)).To(Succeed())
	pid := st.Processes[apiserverRole]
	ExpectWithOffset(1, pid).To(BeNumerically(">", 0), "no %s in the lab's state", apiserverRole)
	return pid
}

// restartCounts sums the container restarts of the pods of selector, by pod name.
func restartCounts(selector string) map[string]int32 {
	out := map[string]int32{}
	for _, p := range podsOf(selector) {
		for _, c := range p.Status.ContainerStatuses {
			out[p.Name] += c.RestartCount
		}
	}
	return out
}

// allPodsReady says whether every pod of selector is Ready on a Node that exists, naming the first
// that is not. A pod left on a removed Node (the node-removal spec) still reads Ready until the pod
// garbage collector deletes it, and its replacement would look like a restart.
func allPodsReady(selector string) error {
	pods := podsOf(selector)
	if len(pods) == 0 {
		return fmt.Errorf("no pods of %s", selector)
	}
	var nodes corev1.NodeList
	if err := k8s.List(ctx, &nodes); err != nil {
		return fmt.Errorf("list Nodes: %w", err)
	}
	exists := map[string]bool{}
	for _, n := range nodes.Items {
		exists[n.Name] = true
	}
	for _, p := range pods {
		if !exists[p.Spec.NodeName] {
			return fmt.Errorf("pod %s is on Node %q, which is gone", p.Name, p.Spec.NodeName)
		}
		if p.DeletionTimestamp != nil {
			return fmt.Errorf("pod %s is terminating", p.Name)
		}
		ready := false
		for _, c := range p.Status.Conditions {
			ready = ready || (c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue)
		}
		if !ready {
			return fmt.Errorf("pod %s is not Ready", p.Name)
		}
	}
	return nil
}

// clusterIPProber GETs a Service's ClusterIP from a pod's network namespace at a fixed interval.
type clusterIPProber struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	ok, fail int
	lastErr  error
}

func startClusterIPProbes(netns, url string) *clusterIPProber {
	p := &clusterIPProber{stop: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(clusterIPProbeInterval)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			_, err := httpFrom(netns, url)
			p.mu.Lock()
			if err != nil {
				p.fail, p.lastErr = p.fail+1, err
			} else {
				p.ok++
			}
			p.mu.Unlock()
		}
	}()
	return p
}

func (p *clusterIPProber) finish() (ok, fail int, lastErr error) {
	close(p.stop)
	p.wg.Wait()
	return p.ok, p.fail, p.lastErr
}

var _ = Describe("An API server outage", Ordered, func() {
	It("leaves pod traffic and Services untouched and restarts neither operator nor agent", func() {
		Eventually(func() error {
			if err := allPodsReady(operatorSelector); err != nil {
				return err
			}
			return allPodsReady(agentSelector)
		}).WithTimeout(convergeBound).WithPolling(pollInterval).Should(Succeed())
		pods := echoPods()
		Expect(len(pods)).To(BeNumerically(">=", 2), "echo pods on two nodes")
		var refs []podRef
		for _, p := range pods {
			refs = append(refs, p)
		}
		src, dst := refs[0], refs[1]
		svc := &corev1.Service{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: lab.WorkloadNamespace, Name: lab.EchoName}, svc)).To(Succeed())
		Expect(svc.Spec.ClusterIP).NotTo(BeEmpty())
		url := "http://" + net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(svc.Spec.Ports[0].Port))) + "/"
		srcNetns := labCfg.EchoPodNetns(src.name)
		Expect(httpFrom(srcNetns, url)).NotTo(BeEmpty(), "the ClusterIP answers before the outage")

		operatorsBefore, agentsBefore := restartCounts(operatorSelector), restartCounts(agentSelector)
		s := startStreams(src, dst)
		DeferCleanup(s.close)
		probes := startClusterIPProbes(srcNetns, url)

		By(fmt.Sprintf("freezing the API server for %s", apiOutage))
		pid := labAPIServerPID()
		w := s.begin("API server frozen " + apiOutage.String())
		Expect(syscall.Kill(pid, syscall.SIGSTOP)).To(Succeed())
		thawed := false
		thaw := func() {
			if !thawed {
				thawed = true
				Expect(syscall.Kill(pid, syscall.SIGCONT)).To(Succeed())
			}
		}
		DeferCleanup(thaw)    // whatever fails below, the lab's API server runs again
		time.Sleep(apiOutage) // the outage itself, not a synchronisation
		thaw()
		t0 := time.Now()

		By("the API server back: every operator and agent pod Ready again")
		Eventually(func() error {
			if err := allPodsReady(operatorSelector); err != nil {
				return err
			}
			if _, err := operatorLeader(); err != nil {
				return err
			}
			return allPodsReady(agentSelector)
		}).WithTimeout(convergeBound).WithPolling(pollInterval).Should(Succeed())
		AddReportEntry("API outage recovery", fmt.Sprintf("operator leading and every pod Ready %s after the API server resumed", time.Since(t0).Round(100*time.Millisecond)))
		ok, fail, lastErr := probes.finish()
		r := s.end(w)
		AddReportEntry("ClusterIP probes during the outage", fmt.Sprintf("%d answered, %d failed (last error: %v)", ok, fail, lastErr))

		Expect(r.TCPBreaks).To(BeZero(), r.String())
		Expect(fail).To(BeZero(), "ClusterIP %s from %s: %d of %d probes failed, last: %v", url, src, fail, ok+fail, lastErr)
		Expect(ok).To(BeNumerically(">", int(apiOutage/clusterIPProbeInterval)/2), "too few probes ran")
		Expect(restartCounts(operatorSelector)).To(Equal(operatorsBefore), "operator containers restarted")
		Expect(restartCounts(agentSelector)).To(Equal(agentsBefore), "agent containers restarted")
	})
})
