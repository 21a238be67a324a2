package proxybench

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-net/plexus/internal/testnet"
)

// kube-proxy's nftables table and the metrics the benchmark reads (IPv4 proxier).
const (
	kubeProxyTable      = "kube-proxy"
	kubeProxyServiceMap = "service-ips"
	metricLastSync      = `kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="IPv4"}`
	metricFullSyncSum   = `kubeproxy_sync_full_proxy_rules_duration_seconds_sum{ip_family="IPv4"}`
	metricFullSyncCount = `kubeproxy_sync_full_proxy_rules_duration_seconds_count{ip_family="IPv4"}`
	metricPartialSum    = `kubeproxy_sync_partial_proxy_rules_duration_seconds_sum{ip_family="IPv4"}`
	metricPartialCount  = `kubeproxy_sync_partial_proxy_rules_duration_seconds_count{ip_family="IPv4"}`
)

// kubeProxyConfig is upstream's configuration with what a node needs here: nftables mode, the
// Node it runs as, the cluster CIDR (local traffic detection) and its listeners on the
// namespace's loopback. Conntrack sysctls are left alone (0): nf_conntrack_max is global to the
// machine, and the benchmark must not change the machine.
const kubeProxyConfig = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clusterCIDR: %s
hostnameOverride: %s
metricsBindAddress: %s
healthzBindAddress: %s
clientConnection:
  kubeconfig: %s
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`

// startKubeProxy starts kube-proxy in the namespace with --v=1.
func (cp *controlPlane) startKubeProxy(b *testing.B) *proc {
	kc := filepath.Join(cp.dir, "kube-proxy.kubeconfig")
	cfg := filepath.Join(cp.dir, "kube-proxy.yaml")
	if _, err := os.Stat(cfg); err != nil {
		kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: proxybench
  cluster: {server: "https://%s", insecure-skip-tls-verify: true}
contexts:
- name: proxybench
  context: {cluster: proxybench, user: proxybench}
current-context: proxybench
users:
- name: proxybench
  user: {token: %s}
`, apiAddr, cp.token)
		if err := os.WriteFile(kc, []byte(kubeconfig), 0o600); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(cfg, []byte(fmt.Sprintf(kubeProxyConfig, clusterCIDR, nodeName, kubeProxyMetrics, kubeProxyHealthz, kc)), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	return cp.start(b, "kube-proxy", filepath.Join(cp.assets, "kube-proxy"), "--config", cfg, "--v=1")
}

// kpMetrics scrapes kube-proxy's metrics; missing series read as 0.
func (cp *controlPlane) kpMetrics() (map[string]float64, error) {
	text, err := cp.get("http://"+kubeProxyMetrics+"/metrics", "")
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, l := range strings.Split(text, "\n") {
		for _, name := range []string{metricLastSync, metricFullSyncSum, metricFullSyncCount, metricPartialSum, metricPartialCount} {
			if v, ok := strings.CutPrefix(l, name+" "); ok {
				out[name], _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
			}
		}
	}
	return out, nil
}

// waitKPSync waits until kube-proxy reports a successful IPv4 sync newer than after (unix
// seconds) for which check (if any) holds, and returns its time. Between syncs (at least
// minSyncPeriod, 1 s, apart) check runs once per new sync.
func (cp *controlPlane) waitKPSync(b *testing.B, kp *proc, after float64, budget time.Duration, check func() bool) (time.Time, map[string]float64) {
	var synced map[string]float64
	if testnet.Poll(budget, 20*time.Millisecond, func() bool {
		if kp.exited() {
			b.Fatalf("kube-proxy exited:\n%s", kp.tail())
		}
		m, err := cp.kpMetrics()
		if err != nil || m[metricLastSync] <= after {
			return false
		}
		if check != nil && !check() {
			after = m[metricLastSync]
			return false
		}
		synced = m
		return true
	}) {
		sec, frac := math.Modf(synced[metricLastSync])
		return time.Unix(int64(sec), int64(frac*1e9)), cp.kpObserved(synced)
	}
	b.Fatalf("kube-proxy: no matching sync within %s; log:\n%s", budget, kp.tail())
	return time.Time{}, nil
}

// kpNextSync waits (at most budget) for a sync newer than after (unix seconds).
func (cp *controlPlane) kpNextSync(after float64, budget time.Duration) {
	_ = testnet.Poll(budget, 20*time.Millisecond, func() bool {
		m, err := cp.kpMetrics()
		return err == nil && m[metricLastSync] > after
	})
}

// kpQuiet waits until kube-proxy's last sync is more than its minSyncPeriod (1 s, the default)
// ago and returns its metrics: each change is then synced as soon as kube-proxy sees it, so the
// figures show kube-proxy at its best. (Changes that arrive back to back wait up to 1 s more.)
func (cp *controlPlane) kpQuiet(b *testing.B) map[string]float64 {
	for {
		m, err := cp.kpMetrics()
		if err != nil {
			b.Fatal(err)
		}
		sec, frac := math.Modf(m[metricLastSync])
		wait := time.Until(time.Unix(int64(sec), int64(frac*1e9)).Add(1100 * time.Millisecond))
		if wait <= 0 {
			return m
		}
		time.Sleep(wait)
	}
}

// kpObserved returns metrics in which the sync that set m's timestamp is also counted in the
// duration histograms: kube-proxy sets the timestamp at the end of a sync and observes its
// duration in a deferred call microseconds later, so the scrape that saw the timestamp can miss
// it. A scrape 20 ms later does not (the next sync is at least minSyncPeriod, 1 s, away).
func (cp *controlPlane) kpObserved(m map[string]float64) map[string]float64 {
	time.Sleep(20 * time.Millisecond)
	if next, err := cp.kpMetrics(); err == nil {
		return next
	}
	return m
}

// kpChainBase is kube-proxy's hashAndTruncate (pkg/proxy/nftables), to name a chain it makes.
func kpChainBase(name string) string {
	hash := sha256.Sum256([]byte(name))
	return base32.StdEncoding.EncodeToString(hash[:])[:8] + "-" + name
}

// measureKubeProxy runs kube-proxy over n scale Services and returns its figures.
func (cp *controlPlane) measureKubeProxy(b *testing.B, n int) figures {
	var fig figures
	ctx := context.Background()
	cp.deleteKubeProxyTables()

	// Cold: start → first successful sync (kube-proxy syncs only once its informers have
	// synced, and writes everything in one transaction).
	t0 := time.Now()
	kp := cp.startKubeProxy(b)
	synced, m := cp.waitKPSync(b, kp, 0, 5*time.Minute, nil)
	fig.cold = synced.Sub(t0)
	fig.fullSync = secs(m[metricFullSyncSum])
	out, err := cp.nft("list", "map", "ip", kubeProxyTable, kubeProxyServiceMap)
	if err != nil {
		b.Fatal(err)
	}
	fig.programmed = strings.Count(out, "goto service-")
	if fig.programmed < n {
		b.Fatalf("kube-proxy: %d services in %s after its first sync, want ≥ %d", fig.programmed, kubeProxyServiceMap, n)
	}

	// Add one Service: its EndpointSlice first, then (timed) the Service until its ClusterIP is
	// in service-ips.
	for i := 0; i < reps; i++ {
		name, ip, eps := addedService(n, "kp", i)
		pre, _ := cp.kpMetrics()
		if _, err := cp.cs.DiscoveryV1().EndpointSlices(benchNamespace).Create(ctx, sliceObject(name, eps), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		// The slice alone triggers a sync; let it pass so that it does not delay the Service's.
		cp.kpNextSync(pre[metricLastSync], 5*time.Second)
		before := cp.kpQuiet(b)
		t0 := time.Now()
		if _, err := cp.cs.CoreV1().Services(benchNamespace).Create(ctx, serviceObject(name, ip), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		at, after := cp.waitKPSync(b, kp, before[metricLastSync], time.Minute, func() bool {
			_, err := cp.nft("get", "element", "ip", kubeProxyTable, kubeProxyServiceMap, fmt.Sprintf("{ %s . tcp . %d }", ip, servicePort))
			return err == nil
		})
		fig.add = append(fig.add, at.Sub(t0))
		fig.addSync = append(fig.addSync, meanPartialSync(before, after))
		fig.added = append(fig.added, name)
	}

	// Flip one endpoint of an existing Service until the Service's chain DNATs to it (without
	// session affinity kube-proxy has no per-endpoint chains: the service chain holds
	// `numgen random mod N map { i : ip . port }`).
	for i := 0; i < reps; i++ {
		svc, s, newIP := cp.flipTarget(b, n, "kp", i)
		chain := "service-" + kpChainBase(fmt.Sprintf("%s/%s/tcp/%s", benchNamespace, svc, portName))
		before := cp.kpQuiet(b)
		t0 := time.Now()
		if _, err := cp.cs.DiscoveryV1().EndpointSlices(benchNamespace).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		at, after := cp.waitKPSync(b, kp, before[metricLastSync], time.Minute, func() bool {
			out, err := cp.nft("list", "chain", "ip", kubeProxyTable, chain)
			return err == nil && strings.Contains(out, fmt.Sprintf(" %s . %d", newIP, targetPort))
		})
		fig.flip = append(fig.flip, at.Sub(t0))
		fig.flipSync = append(fig.flipSync, meanPartialSync(before, after))
	}
	fig.rss, fig.peak = kp.memory()

	// No-op: restart over the unchanged table; kube-proxy's first sync is a full one, whose
	// duration its metrics report. (A full sync rewrites every chain of the table.)
	kp.stop()
	t0 = time.Now()
	kp = cp.startKubeProxy(b)
	synced, m = cp.waitKPSync(b, kp, 0, 5*time.Minute, nil)
	fig.restart = synced.Sub(t0)
	fig.noop = secs(m[metricFullSyncSum])
	fig.noopWrites = "rewrites all"
	kp.stop()
	cp.deleteKubeProxyTables()
	cp.deleteServices(b, fig.added)
	return fig
}

func (cp *controlPlane) deleteKubeProxyTables() {
	_, _ = cp.nft("delete", "table", "ip", kubeProxyTable)
	_, _ = cp.nft("delete", "table", "ip6", kubeProxyTable)
}

// meanPartialSync is the mean duration of kube-proxy's partial syncs between two scrapes (the
// sync that programmed the change, and any before it in the same interval).
func meanPartialSync(before, after map[string]float64) time.Duration {
	n := after[metricPartialCount] - before[metricPartialCount]
	if n <= 0 {
		return 0
	}
	return secs((after[metricPartialSum] - before[metricPartialSum]) / n)
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
