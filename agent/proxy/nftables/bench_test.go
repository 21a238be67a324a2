package nftables

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/nfttable"
	"github.com/plexus-net/plexus/agent/proxy"
	pt "github.com/plexus-net/plexus/agent/proxy/proxytest"
	"github.com/plexus-net/plexus/internal/testnet"
)

// Benchmarks of the real proxier against real nft in a throwaway network
// namespace: run as root with
//
//	go test ./agent/proxy/nftables/ -run '^$' -bench BenchmarkProxy -benchtime 1x
//
// Each size logs one line per figure with its target (benchmark logs are
// always printed). For make bench, hack/bench.sh can run:
//
//	run "Service proxy, nftables: 1k/5k/10k Services × 10 endpoints" -bench BenchmarkProxy -benchtime 1x -timeout 20m ./agent/proxy/nftables/ Endpoints live on
// other nodes (as on a node of a large cluster, where most endpoints do).

const (
	benchPerService = 10
	// incrementalSamples is the number of incremental syncs measured per
	// figure (p99 needs a sample).
	incrementalSamples = 100
)

// benchNode runs no endpoint of the scale scenario (ClusterIP Services, as
// in the measured layouts).
var benchNode = proxy.NodeInfo{Name: "bench-node"}

// BenchmarkProxy measures, for 1k, 5k and 10k Services × 10 endpoints:
// cold full sync (model build + transactions), add one Service, change
// one endpoint, no-op full resync (asserting zero writes), an atomic
// rebuild over a live table after a restart with a changed model, and
// memory.
func BenchmarkProxy(b *testing.B) {
	testnet.RequireRoot(b)
	for _, n := range []int{1000, 5000, 10000} {
		b.Run(strconv.Itoa(n/1000)+"k", func(b *testing.B) { benchSize(b, n) })
	}
}

// figure logs one result against its target, with a note of details;
// one line per figure, as Go keeps only 10 log lines per benchmark.
func figure(b *testing.B, size int, what string, got, target float64, unit, note string) {
	b.Helper()
	status := "OK"
	if got > target {
		status = "MISSED"
	}
	// b.Logf: benchmark logs are always printed, as indented
	// "bench_test.go:N:" lines that hack/bench.sh keeps.
	b.Logf("proxy-bench %5d services: %-30s %9.2f %s (target <= %g %s) %-6s %s", size, what, got, unit, target, unit, status, note)
	b.ReportMetric(got, strings.ReplaceAll(what, " ", "-")+"-"+unit)
}

func benchSize(b *testing.B, n int) {
	ns := testnet.NewNetns(b, "bench")
	svcs, sls := pt.Scale(n, benchPerService)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	fixtureHeap := before.HeapInuse
	ctx := context.Background()
	var real knftables.Interface
	if err := ns.Do(func() (err error) { real, err = nfttable.Open(TableFamily, TableName); return err }); err != nil {
		b.Fatal(err)
	}
	nft := &timedNFT{Interface: real}
	nl, err := NewNetlink(ns.Path())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = nl.Close() })
	inNS := func(fn func() error) {
		b.Helper()
		if err := ns.Do(fn); err != nil {
			b.Fatal(err)
		}
	}

	// Cold: empty namespace, new Proxier, Build + Sync.
	var cold time.Duration
	var p *Proxier
	var tr *proxy.Tracker
	for i := 0; i < max(b.N, 1); i++ {
		inNS(func() error { return deleteTable(ctx, nft) })
		runtime.GC()
		start := time.Now()
		tr = proxy.NewTracker(benchNode)
		for _, s := range svcs {
			tr.SetService(s)
		}
		for _, s := range sls {
			tr.SetSlice(s)
		}
		m := tr.Model()
		p = New(nft, WithNetlink(nl))
		inNS(func() error { return p.Sync(ctx, m) })
		cold += time.Since(start)
	}
	coldMS := float64(cold.Milliseconds()) / float64(max(b.N, 1))
	coldTarget := 300.0
	if n > 1000 {
		coldTarget = 2000 * float64(n) / 10000 // 2 s at 10k; linear budget in between
	}
	figure(b, n, "cold full sync", coldMS, coldTarget, "ms", fmt.Sprintf("(empty table: structure by nft in %d ms, elements through netlink)", nft.last.Milliseconds()))

	// Add one Service per sample (model update + partial sync).
	addRuns := len(nft.runs)
	var adds []time.Duration
	for i := 0; i < incrementalSamples; i++ {
		name := "added-" + strconv.Itoa(i)
		svc := pt.Service("ns", name, []string{fmt.Sprintf("10.96.200.%d", i+1)}, pt.Port("http", corev1.ProtocolTCP, 80))
		sl := pt.Slice("ns", name, name+"-1", "http", corev1.ProtocolTCP, 8080,
			pt.EP{IP: fmt.Sprintf("10.246.%d.1", i)}, pt.EP{IP: fmt.Sprintf("10.246.%d.2", i)})
		start := time.Now()
		tr.SetService(svc)
		tr.SetSlice(sl)
		m := tr.Model()
		inNS(func() error { return p.Sync(ctx, m) })
		adds = append(adds, time.Since(start))
	}
	figure(b, n, "add one service p99", p99ms(adds), 20, "ms", fmt.Sprintf("(p50 %.2f ms; %s)", p50ms(adds), nft.since(addRuns)))
	if os.Getenv("PROXY_BENCH_DEBUG") != "" {
		sorted := slices.Clone(adds)
		slices.Sort(sorted)
		b.Logf("adds: min %v p50 %v top %v", sorted[0], sorted[len(sorted)/2], sorted[len(sorted)-5:])
	}

	// Change one endpoint of an existing Service per sample.
	changeRuns := len(nft.runs)
	var changes []time.Duration
	for i := 0; i < incrementalSamples; i++ {
		s := sls[(i*7919)%n].DeepCopy()
		s.Endpoints[0].Addresses = []string{fmt.Sprintf("10.247.%d.%d", i/200, i%200+1)}
		start := time.Now()
		tr.SetSlice(s)
		m := tr.Model()
		inNS(func() error { return p.Sync(ctx, m) })
		changes = append(changes, time.Since(start))
		// An address change may shift the sorted endpoints: up to every
		// element of the Service is replaced, plus the stamps (a new one,
		// older ones pruned along with the deletes), never more.
		if st := p.Stats(); !st.Wrote || st.Operations > 2*benchPerService+2+stampPruneEvery {
			b.Fatalf("endpoint change wrote %d operations (wrote %t), want a handful", st.Operations, st.Wrote)
		}
	}
	figure(b, n, "change one endpoint p99", p99ms(changes), 20, "ms", fmt.Sprintf("(p50 %.2f ms; %s)", p50ms(changes), nft.since(changeRuns)))

	// No-op full resync: a new Proxier (agent restart) over the same table.
	m := tr.Model()
	start := time.Now()
	fresh := New(nft, WithNetlink(nl))
	inNS(func() error { return fresh.Sync(ctx, m) })
	noop := time.Since(start)
	if st := fresh.Stats(); st.Wrote {
		b.Fatalf("no-op full resync wrote %d operations", st.Operations)
	}
	start = time.Now()
	inNS(func() error { return fresh.Sync(ctx, m) })
	partial := time.Since(start)
	if st := fresh.Stats(); st.Wrote {
		b.Fatalf("no-op partial resync wrote %d operations", st.Operations)
	}
	figure(b, n, "no-op full resync (0 writes)", float64(noop.Microseconds())/1000, 500, "ms",
		fmt.Sprintf("(after a restart; no-op partial resync %.2f ms, 0 writes)", float64(partial.Microseconds())/1000))

	// Rebuild: a restarted agent whose model changed while it was down
	// finds the table with another digest and rewrites it in one atomic
	// nft transaction (the cold figure above loads an empty table through
	// netlink instead).
	changed := sls[n/2].DeepCopy()
	changed.Endpoints[0].Addresses = []string{"10.248.0.1"}
	tr.SetSlice(changed)
	m = tr.Model()
	start = time.Now()
	fresh = New(nft, WithNetlink(nl))
	inNS(func() error { return fresh.Sync(ctx, m) })
	rebuilt := time.Since(start)
	if st := fresh.Stats(); !st.Wrote || st.Netlink {
		b.Fatalf("changed model after a restart: wrote %t, through netlink %t; want one nft transaction", st.Wrote, st.Netlink)
	}
	figure(b, n, "atomic rebuild after restart", float64(rebuilt.Milliseconds()), coldTarget, "ms",
		fmt.Sprintf("(model changed while down: one nft transaction over the live table, %d ms in nft)", nft.last.Milliseconds()))

	// Memory: the agent holds one Proxier (the restarted one here), the
	// Tracker with its model, and the Services and slices (here the
	// fixtures, in the agent its informer caches). Reported: the Go heap
	// in use with all of that live, the share of the proxy (tracker, model,
	// proxier) alone, and the process RSS (an upper bound: it also holds
	// the test binary and garbage not yet returned to the OS).
	p = nil
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heap := float64(ms.HeapInuse) / (1 << 20)
	own := float64(ms.HeapInuse-fixtureHeap) / (1 << 20)
	if path := os.Getenv("PROXY_BENCH_HEAPPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			_ = pprof.WriteHeapProfile(f)
			_ = f.Close()
		}
	}
	peak, _ := rssMiB()
	// Steady state: free heap returned to the OS, as it is over time.
	debug.FreeOSMemory()
	steady, _ := rssMiB()
	figure(b, n, "memory: Go heap in use", heap, 200, "MiB",
		fmt.Sprintf("(tracker+model+proxier %.1f MiB, the rest Services/slices; process RSS %.0f MiB, %.0f MiB after returning free memory)", own, peak, steady))
	runtime.KeepAlive(fresh)
	runtime.KeepAlive(tr)
}

// timedNFT records how long each transaction took inside nft.
type timedNFT struct {
	knftables.Interface
	last time.Duration
	runs []time.Duration
}

func (t *timedNFT) Run(ctx context.Context, tx *knftables.Transaction) error {
	start := time.Now()
	err := t.Interface.Run(ctx, tx)
	t.last = time.Since(start)
	t.runs = append(t.runs, t.last)
	return err
}

// since describes the nft runs after the first `from`: element-only
// syncs go through netlink and run no nft.
func (t *timedNFT) since(from int) string {
	runs := t.runs[from:]
	if len(runs) == 0 {
		return "elements through netlink, no nft run"
	}
	return fmt.Sprintf("%d syncs ran nft (new chains): p50 %.2f ms, the rest went through netlink", len(runs), p50ms(runs))
}

func p50ms(d []time.Duration) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[len(s)/2].Microseconds()) / 1000
}

func deleteTable(ctx context.Context, nft knftables.Interface) error {
	tx := nft.NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	return nft.Run(ctx, tx)
}

func p99ms(d []time.Duration) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[(len(s)*99)/100-1].Microseconds()) / 1000
}

// rssMiB reads VmRSS of this process.
func rssMiB() (float64, bool) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb / 1024, err == nil
		}
	}
	return 0, false
}
