package labbench

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/plexus-net/plexus/internal/lab"
	"github.com/plexus-net/plexus/internal/testnet"
)

const (
	// joinTimeout bounds a node's whole join (start, register, Ready, routes).
	joinTimeout = 3 * time.Minute
	// routePoll is how often the other nodes' routing tables are read while waiting.
	routePoll = 5 * time.Millisecond
)

// BenchmarkNodeJoin adds a node to the running lab (lab.AddNode, as a machine joins: its own
// namespaces, containerd, kubelet) and times, from the moment its Node object is seen registered:
// until the Node is Ready, and until every other node has a route to each of its pod CIDRs. The
// join latency is the later of the two. It also reports when the node's plexus-agent container
// started, and the join measured from then (Plexus' own part: the time before it is the kubelet's
// and the container runtime's). One join per iteration (run it with -benchtime 1x).
func BenchmarkNodeJoin(b *testing.B) {
	l := startLab(b)
	b.ResetTimer()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(b.N)*joinTimeout)
	defer cancel()
	var sum joinResult
	for range b.N {
		r, err := joinNode(ctx, b, l)
		if err != nil {
			b.Fatal(err)
		}
		sum.registered += r.registered
		sum.ready += r.ready
		sum.routes += r.routes
		sum.agent += r.agent
		b.Logf("node %s: registered %s after AddNode began; from then: agent container started %s, Node Ready %s, "+
			"routes to its pod CIDRs %v on all %d other nodes %s; join %s, %s after the agent started",
			r.node, rd(r.registered), rd(r.agent), rd(r.ready), r.cidrs, r.others, rd(r.routes), rd(r.join()), rd(r.join()-r.agent))
	}
	b.StopTimer()
	n := time.Duration(b.N)
	avg := joinResult{registered: sum.registered / n, ready: sum.ready / n, routes: sum.routes / n, agent: sum.agent / n}
	b.ReportMetric(ms(avg.join()), "join-ms")
	b.ReportMetric(ms(avg.join()-avg.agent), "after-agent-ms")
	b.ReportMetric(ms(avg.ready), "ready-ms")
	b.ReportMetric(ms(avg.routes), "routes-ms")
	b.ReportMetric(ms(avg.agent), "agent-ms")
	b.Logf("node join (Node registered -> Ready and routed from every other node): %s on average over %d join(s), "+
		"%s of it after the node's agent started (no target set for node join)", rd(avg.join()), b.N, rd(avg.join()-avg.agent))
}

func rd(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

// joinResult is one node's join; registered is relative to the start of AddNode, the other times
// to the registration.
type joinResult struct {
	node                             string
	cidrs                            []string
	others                           int
	registered, agent, ready, routes time.Duration
}

// join is the join latency: Ready and routed from every other node.
func (r joinResult) join() time.Duration { return max(r.ready, r.routes) }

// joinNode adds the next node and measures its join.
func joinNode(ctx context.Context, b *testing.B, l *benchLab) (joinResult, error) {
	i := l.nodes + 1
	n := l.cfg.NodeAt(i)
	res := joinResult{node: n.Name, others: l.nodes}
	nodeW, err := l.kube.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", n.Name).String()})
	if err != nil {
		return res, err
	}
	defer nodeW.Stop()
	podW, err := l.kube.CoreV1().Pods(agentNamespace).Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", n.Name).String()})
	if err != nil {
		return res, err
	}
	defer podW.Stop()

	b.StartTimer()
	t0 := time.Now()
	added := make(chan error, 1)
	go func() {
		_, err := lab.AddNode(l.cfg, i)
		added <- err
	}()
	type routed struct {
		cidrs []*net.IPNet
		at    time.Time
		err   error
	}
	routes := make(chan routed, 1)
	go func() {
		var r routed
		r.cidrs, r.at, r.err = waitRoutes(ctx, l, n, l.nodes)
		routes <- r
	}()
	var registeredAt, readyAt, agentAt time.Time
	var rt *routed
	for readyAt.IsZero() || rt == nil || agentAt.IsZero() {
		select {
		case err := <-added:
			if err != nil {
				return res, fmt.Errorf("add node %s: %w", n.Name, err)
			}
			added = nil
		case r := <-routes:
			if r.err != nil {
				return res, r.err
			}
			rt = &r
		case ev, ok := <-nodeW.ResultChan():
			if !ok {
				return res, fmt.Errorf("the watch on Node %s ended", n.Name)
			}
			node, isNode := ev.Object.(*corev1.Node)
			if !isNode || ev.Type == watch.Deleted {
				continue
			}
			if registeredAt.IsZero() {
				registeredAt = time.Now()
			}
			if readyAt.IsZero() && nodeReady(node) {
				readyAt = time.Now()
			}
		case ev, ok := <-podW.ResultChan():
			if !ok {
				return res, fmt.Errorf("the watch on the pods of %s ended", n.Name)
			}
			if pod, isPod := ev.Object.(*corev1.Pod); isPod && agentAt.IsZero() && strings.HasPrefix(pod.Name, agentPodPrefix) && running(pod) {
				agentAt = time.Now()
			}
		case <-ctx.Done():
			return res, fmt.Errorf("node %s: not joined within %s (registered: %v, Ready: %v, agent started: %v, routed: %v)",
				n.Name, joinTimeout, !registeredAt.IsZero(), !readyAt.IsZero(), !agentAt.IsZero(), rt != nil)
		}
	}
	b.StopTimer()
	l.nodes = i
	if added != nil {
		if err := <-added; err != nil {
			return res, fmt.Errorf("add node %s: %w", n.Name, err)
		}
	}
	for _, c := range rt.cidrs {
		res.cidrs = append(res.cidrs, c.String())
	}
	res.registered = registeredAt.Sub(t0)
	res.ready = readyAt.Sub(registeredAt)
	res.routes = rt.at.Sub(registeredAt)
	res.agent = agentAt.Sub(registeredAt)
	return res, nil
}

// The agent DaemonSet's pods.
const (
	agentNamespace = "plexus-system"
	agentPodPrefix = "plexus-agent-"
)

// running says whether every container of the pod runs.
func running(p *corev1.Pod) bool {
	if len(p.Status.ContainerStatuses) == 0 {
		return false
	}
	for _, c := range p.Status.ContainerStatuses {
		if c.State.Running == nil {
			return false
		}
	}
	return true
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitRoutes waits for the new node's pod CIDRs (its NodeNetwork's spec.podCIDRs) and then until
// each of the nodes 1..peers has a route to each, and returns when the last appeared.
func waitRoutes(ctx context.Context, l *benchLab, n lab.Node, peers int) ([]*net.IPNet, time.Time, error) {
	var cidrs []*net.IPNet
	if !testnet.PollContext(ctx, 20*time.Millisecond, func() bool {
		out, err := lab.Kubectl(l.cfg, "", "get", "nodenetwork", n.Name, "-o", "jsonpath={.spec.podCIDRs[*]}")
		if err == nil {
			for _, s := range strings.Fields(out) {
				if _, c, err := net.ParseCIDR(s); err == nil {
					cidrs = append(cidrs, c)
				}
			}
		}
		return len(cidrs) > 0
	}) {
		return nil, time.Time{}, fmt.Errorf("node %s: no pod CIDRs in its NodeNetwork within %s", n.Name, joinTimeout)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		last time.Time
		errs []error
	)
	for i := 1; i <= peers; i++ {
		peer := l.cfg.NodeAt(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			at, err := waitPeerRoutes(ctx, peer.Netns, cidrs)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("routes on %s to %s: %w", peer.Name, n.Name, err))
			}
			if at.After(last) {
				last = at
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return cidrs, last, errs[0]
	}
	return cidrs, last, nil
}

// waitPeerRoutes polls the routing table of the named network namespace until it has a route to
// each of cidrs, and returns when it saw the last.
func waitPeerRoutes(ctx context.Context, nsName string, cidrs []*net.IPNet) (time.Time, error) {
	ns, err := netns.GetFromName(nsName)
	if err != nil {
		return time.Time{}, err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return time.Time{}, err
	}
	defer h.Close()
	missing := 0
	if !testnet.PollContext(ctx, routePoll, func() bool {
		missing = 0
		for _, c := range cidrs {
			family := netlink.FAMILY_V4
			if c.IP.To4() == nil {
				family = netlink.FAMILY_V6
			}
			rs, err := h.RouteListFiltered(family, &netlink.Route{Dst: c, Table: 0}, netlink.RT_FILTER_DST)
			if err != nil || len(rs) == 0 {
				missing++
			}
		}
		return missing == 0
	}) {
		return time.Time{}, fmt.Errorf("%d of %d pod CIDRs still unrouted", missing, len(cidrs))
	}
	return time.Now(), nil
}
