package proxybench

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plexus-net/plexus/internal/testnet"
)

// reps is the number of end-to-end samples per incremental figure (p99 of 20 is their maximum).
const reps = 20

// figures are one proxy's results at one size.
type figures struct {
	cold       time.Duration   // process start → all Services in its table
	fullSync   time.Duration   // the proxy's own duration of that first (full) sync
	programmed int             // Services found in the table after it (checked ≥ n)
	add        []time.Duration // Service create → its ClusterIP in the table
	flip       []time.Duration // EndpointSlice update → the new endpoint in the table
	addSync    []time.Duration // the proxy's own duration of the sync that programmed each add
	flipSync   []time.Duration // … and each flip
	restart    time.Duration   // restart over the unchanged table → first sync done
	noop       time.Duration   // the proxy's own duration of that full resync
	noopWrites string          // what that resync wrote
	rss, peak  float64         // MiB, after the incremental figures
	heap       float64         // Go heap in use (MiB), Plexus only
	added      []string        // Services created for the add figure (deleted afterwards)
	created    time.Duration   // how long creating the size's Services and slices took
}

// BenchmarkProxyComparison prints, for 1k, 5k and 10k Services × 10 endpoints, the Plexus
// service proxy next to upstream kube-proxy v1.37.2 (nftables mode), both running against the
// same API server and objects in the same network namespace, one after the other. Run with
// -benchtime 1x; each size is measured once per process.
func BenchmarkProxyComparison(b *testing.B) {
	testnet.RequireRoot(b)
	cp := startControlPlane(b)
	for _, n := range []int{1000, 5000, 10000} {
		b.Run(strconv.Itoa(n/1000)+"k", func(b *testing.B) { cp.compare(b, n) })
	}
}

// envOnly selects one side of the comparison: "plexus" or "kube-proxy" (the other side's
// figures are then zero); unset runs both.
const (
	envOnly       = "PROXYBENCH_ONLY"
	onlyPlexus    = "plexus"
	onlyKubeProxy = "kube-proxy"
)

// measured keeps results per size, so that a benchmark rerun (-benchtime other than 1x) only
// reports them again.
var measured = map[int][2]figures{}

func (cp *controlPlane) compare(b *testing.B, n int) {
	res, ok := measured[n]
	if !ok {
		took := cp.ensureServices(b, n)
		only := os.Getenv(envOnly)
		if only != "" && only != onlyPlexus && only != onlyKubeProxy {
			b.Fatalf("%s=%q: want %q or %q", envOnly, only, onlyPlexus, onlyKubeProxy)
		}
		if only != onlyPlexus {
			res[0] = cp.measureKubeProxy(b, n)
		}
		if only != onlyKubeProxy {
			res[1] = cp.measurePlexus(b, n)
		}
		res[0].created = took
		measured[n] = res
	}
	report(b, n, res[0], res[1])
}

// row is one line of the comparison table.
type row struct {
	what, unit   string
	kp, px       float64
	target       float64 // for Plexus; 0: none
	ownP99       float64 // Plexus's own sync p99 behind an e2e figure (ms); 0: none
	targetNote   string
	kpNote, note string
}

func report(b *testing.B, n int, kp, px figures) {
	coldTarget := 300.0 // ms at 1k; 2 s at 10k, linear in between (as BenchmarkProxy)
	if n > 1000 {
		coldTarget = 2000 * float64(n) / 10000
	}
	incTarget := 0.0
	if n == 10000 {
		incTarget = 20
	}
	memTarget := 0.0
	if n == 10000 {
		memTarget = 200
	}
	rows := []row{
		{what: "cold: start → all programmed", unit: "ms", kp: ms(kp.cold), px: ms(px.cold)},
		{what: "cold full sync (own timer)", unit: "ms", kp: ms(kp.fullSync), px: ms(px.fullSync), target: coldTarget},
		{what: "add one service e2e p50", unit: "ms", kp: ms(pct(kp.add, 50)), px: ms(pct(px.add, 50))},
		{what: "add one service e2e p99", unit: "ms", kp: ms(pct(kp.add, 99)), px: ms(pct(px.add, 99)), target: incTarget,
			kpNote: ownSync(kp.addSync), note: ownSync(px.addSync), ownP99: ms(pct(px.addSync, 99))},
		{what: "flip one endpoint e2e p50", unit: "ms", kp: ms(pct(kp.flip, 50)), px: ms(pct(px.flip, 50))},
		{what: "flip one endpoint e2e p99", unit: "ms", kp: ms(pct(kp.flip, 99)), px: ms(pct(px.flip, 99)), target: incTarget,
			kpNote: ownSync(kp.flipSync), note: ownSync(px.flipSync), ownP99: ms(pct(px.flipSync, 99))},
		{what: "no-op full resync after restart", unit: "ms", kp: ms(kp.noop), px: ms(px.noop), target: 500,
			kpNote: fmt.Sprintf("%s, restart → synced %.0f ms", kp.noopWrites, ms(kp.restart)),
			note:   fmt.Sprintf("%s, restart → synced %.0f ms", px.noopWrites, ms(px.restart))},
		{what: "memory RSS (peak)", unit: "MiB", kp: kp.rss, px: px.rss, target: memTarget,
			kpNote: fmt.Sprintf("peak %.0f", kp.peak), note: fmt.Sprintf("peak %.0f, Go heap %.0f", px.peak, px.heap)},
	}
	// Go keeps 9 log lines per benchmark untruncated: this header and the rows.
	b.Logf("proxy-compare %5d: %-32s %13s %13s %7s  %s  (%d services × %d endpoints, created in %s; e2e = API write → change in the kernel table, %d samples, p99 = max)",
		n, "figure", "kube-proxy", "plexus", "kp/px", "plexus vs issue target", n, perService, kp.created.Round(100*time.Millisecond), reps)
	for _, r := range rows {
		ratio := r.kp / r.px
		verdict := "—"
		if r.target > 0 && r.px == 0 {
			verdict = "not measured (PROXYBENCH_ONLY)"
		} else if r.target > 0 {
			verdict = fmt.Sprintf("meets (≤ %g %s)", r.target, r.unit)
			if r.px > r.target || strings.HasPrefix(r.note, "WROTE") {
				verdict = fmt.Sprintf("MISSES (≤ %g %s)", r.target, r.unit)
			}
			if r.ownP99 > 0 {
				own := "meets"
				if r.ownP99 > r.target {
					own = "misses"
				}
				verdict = strings.Replace(verdict, " (", fmt.Sprintf(" e2e, own sync %s (", own), 1)
			}
		}
		extra := ""
		if r.kpNote != "" || r.note != "" {
			extra = fmt.Sprintf(" [kube-proxy: %s; plexus: %s]", orDash(r.kpNote), orDash(r.note))
		}
		b.Logf("proxy-compare %5d: %-32s %9.1f %-3s %9.1f %-3s %6.1fx  %s%s", n, r.what, r.kp, r.unit, r.px, r.unit, ratio, verdict, extra)
		key := metricName(r.what) + "-" + r.unit
		b.ReportMetric(r.kp, "kp-"+key)
		b.ReportMetric(r.px, "plexus-"+key)
		if !math.IsInf(ratio, 0) && !math.IsNaN(ratio) {
			b.ReportMetric(ratio, "ratio-"+metricName(r.what))
		}
	}
}

// ownSync describes the proxy's own sync durations behind an e2e figure.
func ownSync(d []time.Duration) string {
	return fmt.Sprintf("own sync p50 %.1f p99 %.1f ms", ms(pct(d, 50)), ms(pct(d, 99)))
}

func metricName(s string) string {
	var out []rune
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			out = append(out, r)
		case len(out) > 0 && out[len(out)-1] != '-':
			out = append(out, '-')
		}
	}
	return strings.Trim(string(out), "-")
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// pct is the nearest-rank percentile p of d.
func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(float64(p)/100*float64(len(s)))) - 1
	return s[max(i, 0)]
}
