package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-net/plexus/controllers/render"
)

// timeline records what the cluster did to one CoreDNS pod while the load ran: its pod status,
// its EndpointSlice conditions and the conntrack entries each node holds towards it, each change
// with its wall time, to be lined up with the lookups that went wrong.
type timeline struct {
	mu     sync.Mutex
	events []timelineEvent
}

type timelineEvent struct {
	at   time.Time
	what string
}

func (t *timeline) add(at time.Time, format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.events = append(t.events, timelineEvent{at: at, what: fmt.Sprintf(format, args...)})
}

// String lists the events in time order, as offsets from zero.
func (t *timeline) String(zero time.Time) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	ev := append([]timelineEvent(nil), t.events...)
	sort.SliceStable(ev, func(i, j int) bool { return ev[i].at.Before(ev[j].at) })
	var b strings.Builder
	for _, e := range ev {
		fmt.Fprintf(&b, "  %+8.3fs %s\n", e.at.Sub(zero).Seconds(), e.what)
	}
	return b.String()
}

// watchVictim polls the pod and the kube-dns EndpointSlices for the victim until ctx ends,
// recording every change of its phase, readiness, container state and endpoint conditions.
func watchVictim(ctx context.Context, t *timeline, victim corev1.Pod) {
	last := map[string]string{}
	note := func(key, state string) {
		if last[key] != state {
			last[key] = state
			t.add(time.Now(), "%s: %s", key, state)
		}
	}
	for ctx.Err() == nil {
		var p corev1.Pod
		err := k8s.Get(ctx, client.ObjectKeyFromObject(&victim), &p)
		switch {
		case apierrors.IsNotFound(err):
			note("pod", "gone")
		case err == nil:
			note("pod", podState(p))
		}
		var sl discoveryv1.EndpointSliceList
		if k8s.List(ctx, &sl, client.InNamespace(render.DNSNamespace), client.MatchingLabels{discoveryv1.LabelServiceName: render.DNSServiceName}) == nil {
			for _, ip := range victim.Status.PodIPs {
				note("endpoint "+ip.IP, endpointState(sl.Items, ip.IP))
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func podState(p corev1.Pod) string {
	ready := "?"
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			ready = string(c.Status)
		}
	}
	cs := "?"
	for _, s := range p.Status.ContainerStatuses {
		switch {
		case s.State.Running != nil:
			cs = "running"
		case s.State.Terminated != nil:
			cs = fmt.Sprintf("terminated (%s, finished %s)", s.State.Terminated.Reason, s.State.Terminated.FinishedAt.Format("15:04:05"))
		}
	}
	return fmt.Sprintf("phase=%s ready=%s container=%s deleting=%v", p.Status.Phase, ready, cs, p.DeletionTimestamp != nil)
}

// endpointState is the conditions of the endpoint with address ip in slices, or "absent".
func endpointState(items []discoveryv1.EndpointSlice, ip string) string {
	b := func(p *bool) bool { return p != nil && *p }
	for _, s := range items {
		for _, e := range s.Endpoints {
			if slices.Contains(e.Addresses, ip) {
				return fmt.Sprintf("ready=%v serving=%v terminating=%v", b(e.Conditions.Ready), b(e.Conditions.Serving), b(e.Conditions.Terminating))
			}
		}
	}
	return "absent"
}

// rcvbufWatch follows the UDP receive-buffer drops of every CoreDNS process over a load, by
// process: a pod deleted during the load takes its counters with it, so reading them only at the
// start and the end would miss the drops of a replica that is gone by then.
type rcvbufWatch struct {
	mu          sync.Mutex
	first, last map[string]int64 // by PID: at the start (or when it appeared: 0), last read
}

// watchRcvbuf reads the counters now, then every 500 ms until ctx ends.
func watchRcvbuf(ctx context.Context) *rcvbufWatch {
	w := &rcvbufWatch{first: map[string]int64{}, last: map[string]int64{}}
	for pid, n := range coreDNSRcvbufByPID() {
		w.first[pid], w.last[pid] = n, n
	}
	go func() {
		for ctx.Err() == nil {
			time.Sleep(500 * time.Millisecond)
			w.read()
		}
	}()
	return w
}

func (w *rcvbufWatch) read() {
	now := coreDNSRcvbufByPID()
	w.mu.Lock()
	defer w.mu.Unlock()
	for pid, n := range now {
		if _, ok := w.first[pid]; !ok {
			w.first[pid] = 0 // started during the load
		}
		w.last[pid] = max(w.last[pid], n)
	}
}

// drops is the sum over every CoreDNS process seen of its drops since the watch started.
func (w *rcvbufWatch) drops() int64 {
	w.read()
	w.mu.Lock()
	defer w.mu.Unlock()
	var sum int64
	for pid, n := range w.last {
		sum += n - w.first[pid]
	}
	return sum
}

// coreDNSRcvbufByPID reads each CoreDNS process's UDP (both families) receive-buffer drops.
func coreDNSRcvbufByPID() map[string]int64 {
	out := map[string]int64{}
	for _, pid := range coreDNSPIDs() {
		out[pid] = snmpField(filepath.Join("/proc", pid, "net", "snmp"), "Udp:", "RcvbufErrors") +
			snmp6Field(filepath.Join("/proc", pid, "net", "snmp6"), "Udp6RcvbufErrors")
	}
	return out
}

// agentSyncs adds to t the agents' log lines of the syncs between from and to that changed the
// service proxy, with the node.
func agentSyncs(t *timeline, from, to time.Time) {
	for i := 1; i <= labNodes; i++ {
		n := labCfg.NodeAt(i)
		files, _ := filepath.Glob(filepath.Join(labCfg.NodeDir(n), "root/var/log/pods/*plexus-agent*/*/*.log"))
		for _, f := range files {
			fh, err := os.Open(f)
			if err != nil {
				continue
			}
			sc := bufio.NewScanner(fh)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				line := sc.Text()
				ts, rest, ok := strings.Cut(line, " ")
				if !ok || !strings.Contains(rest, `"msg":"Synced"`) || !strings.Contains(rest, `"services":true`) {
					continue
				}
				at, err := time.Parse(time.RFC3339Nano, ts)
				if err != nil || at.Before(from) || at.After(to) {
					continue
				}
				if len(rest) > 300 {
					rest = rest[:300]
				}
				t.add(at, "agent %s: %s", n.Name, rest)
			}
			fh.Close()
		}
	}
}
