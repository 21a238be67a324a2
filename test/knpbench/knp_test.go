package knpbench

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pt "github.com/plexus-net/plexus/agent/policy/policytest"
	"github.com/plexus-net/plexus/internal/testnet"
)

// KNP's names and the lines of its log (v0.8.0, pkg/networkpolicy/controller.go) the benchmark
// reads: every sync logs syncStart; a sync whose nftables transaction the kernel refused logs
// syncRefused when it returns (a successful one logs nothing more).
const (
	knpVersion     = "v0.8.0"
	knpTable       = "kube-network-policies"
	knpSetV4       = "podips-v4"
	knpQueue       = 100
	knpMetricsAddr = "127.0.0.1:9080"
	syncStart      = `] "Syncing nftables rules"`
	syncRefused    = `] "syncing nftables rules" error=`
	cachesSynced   = `Caches are synced`
	// serviceAccountDir is where rest.InClusterConfig, KNP's only way to reach the API server,
	// reads the token and CA; the benchmark fills it inside a mount namespace of KNP's own.
	serviceAccountDir = "/run/secrets/kubernetes.io/serviceaccount"
	// knpRules is the number of rules in KNP's table as its code writes it without the admin
	// network policy flags: 8 in postrouting and 7 in prerouting (the DNS race workaround).
	knpRules = 15
)

// ensureKNP builds KNP with hack/knp/build.sh when missing and returns the binary's path.
func ensureKNP(b *testing.B) string {
	cmd := exec.Command(filepath.Join("..", "..", "hack", "knp", "build.sh"))
	cmd.Env = append(os.Environ(), "KNP_VERSION="+knpVersion)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		b.Fatalf("build kube-network-policies %s: %v\n%s%s", knpVersion, err, out, stderr)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// startKNP starts KNP as the node's agent. rest.InClusterConfig reads fixed paths under
// /run/secrets, which this machine does not have: KNP runs in a mount namespace of its own
// with a tmpfs on /run holding the token and the API server's certificate as CA (with no /run
// there is also no NRI socket, which v0.8.0 tries even with --disable-nri).
func (cp *controlPlane) startKNP(b *testing.B, bin string) *proc {
	sa := filepath.Join(cp.dir, "serviceaccount")
	if err := os.MkdirAll(sa, 0o700); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sa, "token"), []byte(cp.token), 0o600); err != nil {
		b.Fatal(err)
	}
	ca, err := os.ReadFile(filepath.Join(cp.dir, "certs", "apiserver.crt"))
	if err != nil {
		b.Fatalf("the API server's self-signed certificate: %v", err)
	}
	if err := os.WriteFile(filepath.Join(sa, "ca.crt"), ca, 0o600); err != nil {
		b.Fatal(err)
	}
	script := `set -e; mount -t tmpfs knpbench /run; mkdir -p ` + serviceAccountDir + `; cp "$KNPBENCH_SA"/token "$KNPBENCH_SA"/ca.crt ` + serviceAccountDir + `/; exec "$@"`
	env := []string{"KUBERNETES_SERVICE_HOST=" + nodeIP, "KUBERNETES_SERVICE_PORT=" + apiPort, "KNPBENCH_SA=" + sa}
	return cp.start(b, "kube-network-policies", env, "unshare", "--mount", "--propagation", "private",
		"sh", "-c", script, "knp", bin,
		"--hostname-override", pt.NodeName, "--metrics-bind-address", knpMetricsAddr,
		"--nfqueue-id", "100", "--disable-nri", "--v=0")
}

// knpLog is what the benchmark reads from KNP's log.
type knpLog struct {
	cachesSynced time.Time
	starts       []time.Time // every sync's start
	refused      []time.Time // every sync whose transaction the kernel refused, at its end
	refusal      string      // the first refusal's error
}

// readKNPLog parses KNP's klog output (its timestamps have microseconds, local time).
func readKNPLog(path string) knpLog {
	var l knpLog
	f, err := os.Open(path)
	if err != nil {
		return l
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	multiline := false
	for sc.Scan() {
		line := sc.Text()
		if multiline { // klog writes a multi-line error as `error=<`, the lines, ` >`
			l.refusal, multiline = strings.TrimSpace(line), false
			continue
		}
		switch {
		case strings.Contains(line, syncStart):
			l.starts = append(l.starts, klogTime(line))
		case strings.Contains(line, syncRefused):
			l.refused = append(l.refused, klogTime(line))
			if l.refusal == "" {
				l.refusal = line[strings.Index(line, "error=")+len("error="):]
				multiline = l.refusal == "<"
			}
		case strings.Contains(line, cachesSynced) && l.cachesSynced.IsZero():
			l.cachesSynced = klogTime(line)
		}
	}
	return l
}

// klogTime reads a klog header ("I1204 18:36:01.123456 ...").
func klogTime(line string) time.Time {
	if len(line) < 21 {
		return time.Time{}
	}
	t, err := time.ParseInLocation("0102 15:04:05.000000", line[1:21], time.Local)
	if err != nil {
		return time.Time{}
	}
	now := time.Now()
	return t.AddDate(now.Year(), 0, 0)
}

// syncEnds are the ends of KNP's syncs that the benchmark can see: on a kernel that refuses its
// transaction, the refusal lines.
func (l knpLog) syncEnds() []time.Time { return l.refused }

// waitSyncEnd waits until KNP ends a sync that started after t0 and returns its end.
func waitSyncEnd(b *testing.B, p *proc, what string, t0 time.Time, budget time.Duration) time.Time {
	var end time.Time
	if testnet.Poll(budget, 5*time.Millisecond, func() bool {
		if p.exited() {
			b.Fatalf("kube-network-policies exited:\n%s", p.tail())
		}
		l := readKNPLog(p.log)
		// A sync ends after it starts: the first end after the first start after t0.
		var start time.Time
		for _, s := range l.starts {
			if !s.Before(t0) {
				start = s
				break
			}
		}
		if start.IsZero() {
			return false
		}
		for _, e := range l.syncEnds() {
			if !e.Before(start) {
				end = e
				return true
			}
		}
		return false
	}) {
		return end
	}
	b.Fatalf("kube-network-policies, %s: no sync ended within %s after %s; log:\n%s", what, budget, t0.Format(time.StampMicro), p.tail())
	return time.Time{}
}

// quiet waits until KNP has logged nothing about syncs for window: its retries of a refused
// sync (5, with exponential backoff from 5 ms) are over, so the next sync is the change's.
func quiet(p *proc, window time.Duration) {
	last := 0
	since := time.Now()
	for time.Since(since) < window {
		time.Sleep(20 * time.Millisecond)
		l := readKNPLog(p.log)
		if n := len(l.starts) + len(l.refused); n != last {
			last, since = n, time.Now()
		}
	}
}
