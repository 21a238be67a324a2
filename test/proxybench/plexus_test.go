package proxybench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-net/plexus/agent/proxy/nftables"
	"github.com/plexus-net/plexus/internal/testnet"
)

// startPlexus starts the Plexus agent (this test binary, see agent_test.go) in the namespace.
func (cp *controlPlane) startPlexus(b *testing.B) *proc {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	env := []string{envAgent + "=1", envAgentAPI + "=https://" + apiAddr, envAgentToken + "=" + cp.token,
		envAgentNode + "=" + nodeName, envAgentListen + "=" + plexusStateAddr}
	// Go runtime settings for the agent alone (not the control plane), e.g. the soft limit that
	// plexus-agent --memory-limit would set: GOMEMLIMIT = 90% of the container limit.
	for _, v := range [][2]string{{envAgentGOGC, "GOGC"}, {envAgentGoMemLimit, "GOMEMLIMIT"}, {envAgentGoDebug, "GODEBUG"}} {
		if val := os.Getenv(v[0]); val != "" {
			env = append(env, v[1]+"="+val)
		}
	}
	return cp.startEnv(b, "plexus-agent", env, self)
}

// plexusState asks the agent for its state (and whether svc, with endpoint ip, is programmed).
func (cp *controlPlane) plexusState(svc, ip string, mem bool) (agentState, error) {
	q := url.Values{}
	if svc != "" {
		q.Set("svc", svc)
	}
	if ip != "" {
		q.Set("ip", ip)
	}
	if mem {
		q.Set("mem", "1")
	}
	var st agentState
	body, err := cp.get("http://"+plexusStateAddr+"/state?"+q.Encode(), "")
	if err != nil {
		return st, err
	}
	err = json.Unmarshal([]byte(body), &st)
	return st, err
}

// waitPlexus polls the agent until ok(state) holds.
func (cp *controlPlane) waitPlexus(b *testing.B, p *proc, svc, ip string, budget time.Duration, ok func(agentState) bool) agentState {
	var st agentState
	if testnet.Poll(budget, 2*time.Millisecond, func() bool {
		if p.exited() {
			b.Fatalf("plexus agent exited:\n%s", p.tail())
		}
		var err error
		st, err = cp.plexusState(svc, ip, false)
		return err == nil && ok(st)
	}) {
		return st
	}
	b.Fatalf("plexus agent: condition not reached within %s; log:\n%s", budget, p.tail())
	return agentState{}
}

func nanos(ns int64) time.Time { return time.Unix(0, ns) }

// measurePlexus runs the Plexus agent over n scale Services, the same way as kube-proxy.
func (cp *controlPlane) measurePlexus(b *testing.B, n int) figures {
	var fig figures
	ctx := context.Background()
	table := string(nftables.TableFamily)
	_, _ = cp.nft("delete", "table", table, nftables.TableName)

	t0 := time.Now()
	p := cp.startPlexus(b)
	st := cp.waitPlexus(b, p, "", "", 5*time.Minute, func(s agentState) bool { return s.Syncs >= 1 })
	fig.cold = nanos(st.First.End).Sub(t0)
	fig.fullSync = time.Duration(st.First.DurationNs)
	out, err := cp.nft("list", "map", table, nftables.TableName, "vips-v4")
	if err != nil {
		b.Fatal(err)
	}
	fig.programmed = strings.Count(out, "goto dnat-v4-")
	if fig.programmed < n {
		b.Fatalf("plexus: %d services in vips-v4 after its first sync, want ≥ %d", fig.programmed, n)
	}

	for i := 0; i < reps; i++ {
		name, ip, eps := addedService(n, "plexus", i)
		pre, _ := cp.plexusState("", "", false)
		if _, err := cp.cs.DiscoveryV1().EndpointSlices(benchNamespace).Create(ctx, sliceObject(name, eps), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		// As for kube-proxy: let the slice's own sync pass first (bounded, not required).
		_ = testnet.Poll(2*time.Second, 2*time.Millisecond, func() bool {
			st, err := cp.plexusState("", "", false)
			return err == nil && st.Syncs > pre.Syncs
		})
		t0 := time.Now()
		if _, err := cp.cs.CoreV1().Services(benchNamespace).Create(ctx, serviceObject(name, ip), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		st := cp.waitPlexus(b, p, name, "", time.Minute, func(s agentState) bool { return s.Present })
		fig.add = append(fig.add, nanos(st.ProgrammedAt).Sub(t0))
		fig.addSync = append(fig.addSync, time.Duration(st.ProgrammedIn))
		fig.added = append(fig.added, name)
		// Not timed: the element is in the kernel's table.
		if _, err := cp.nft("get", "element", table, nftables.TableName, "vips-v4", fmt.Sprintf("{ %s . tcp . %d }", ip, servicePort)); err != nil {
			b.Fatalf("plexus reported %s programmed, but: %v", name, err)
		}
	}

	var lastFlip string
	for i := 0; i < reps; i++ {
		svc, s, newIP := cp.flipTarget(b, n, "plexus", i)
		t0 := time.Now()
		if _, err := cp.cs.DiscoveryV1().EndpointSlices(benchNamespace).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
		st := cp.waitPlexus(b, p, svc, newIP, time.Minute, func(s agentState) bool { return s.Present })
		fig.flip = append(fig.flip, nanos(st.ProgrammedAt).Sub(t0))
		fig.flipSync = append(fig.flipSync, time.Duration(st.ProgrammedIn))
		lastFlip = newIP
	}
	// Not timed: the last flipped endpoint is a value of the endpoints map (listing that map,
	// 100k elements at 10k Services, costs about a second, so only once).
	if out, err := cp.nft("list", "map", table, nftables.TableName, fmt.Sprintf("endpoints-v4-%d", perService)); err != nil || !strings.Contains(out, lastFlip+" . ") {
		b.Fatalf("plexus: flipped endpoint %s not in the endpoints map (%v)", lastFlip, err)
	}
	fig.rss, fig.peak = p.memory()
	if st, err := cp.plexusState("", "", true); err == nil {
		fig.heap = float64(st.HeapInuse) / (1 << 20)
	}

	// No-op: restart over the unchanged table; the first sync is full and must write nothing.
	p.stop()
	t0 = time.Now()
	p = cp.startPlexus(b)
	st = cp.waitPlexus(b, p, "", "", 5*time.Minute, func(s agentState) bool { return s.Syncs >= 1 })
	fig.restart = nanos(st.First.End).Sub(t0)
	fig.noop = time.Duration(st.First.DurationNs)
	fig.noopWrites = "0 writes"
	if st.First.Wrote {
		fig.noopWrites = fmt.Sprintf("WROTE %d ops", st.First.Operations)
	}
	p.stop()
	_, _ = cp.nft("delete", "table", table, nftables.TableName)
	cp.deleteServices(b, fig.added)
	return fig
}

// addedService names the i-th Service that a proxy's add figure creates at size n, with its
// ClusterIP and endpoints (distinct per proxy, so that deleted ones are never reused).
func addedService(n int, who string, i int) (name, ip string, eps []string) {
	third, epNet := 100+n/1000, 229
	if who == "plexus" {
		third, epNet = 150+n/1000, 228
	}
	name = fmt.Sprintf("added-%s-%d-%d", who, n, i)
	ip = fmt.Sprintf("10.96.%d.%d", third, i+1)
	for j := 0; j < perService; j++ {
		eps = append(eps, fmt.Sprintf("10.%d.%d.%d", epNet, n/1000, i*perService+j+1))
	}
	return name, ip, eps
}

// flipTarget picks the Service of the i-th endpoint flip at size n and returns its slice with
// the first endpoint's address changed to a new one.
func (cp *controlPlane) flipTarget(b *testing.B, n int, who string, i int) (svc string, s *discoveryv1.EndpointSlice, newIP string) {
	epNet, off := 230, 0
	if who == "plexus" {
		epNet, off = 231, 13
	}
	svc = fmt.Sprintf("svc-%d", (i*7919+off)%n)
	s, err := cp.cs.DiscoveryV1().EndpointSlices(benchNamespace).Get(context.Background(), svc+"-1", metav1.GetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	newIP = fmt.Sprintf("10.%d.%d.%d", epNet, n/1000, i+1)
	s.Endpoints[0].Addresses = []string{newIP}
	return svc, s, newIP
}
