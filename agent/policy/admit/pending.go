package admit

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/plexus-net/plexus/agent/policy"
	"k8s.io/apimachinery/pkg/types"
)

// PodRef names a pod that plexus-cni is starting.
type PodRef struct {
	Namespace, Name string
	// UID is the pod's UID when the runtime gave it; empty matches any pod of that name.
	UID types.UID
}

// String returns namespace/name.
func (r PodRef) String() string { return r.Namespace + "/" + r.Name }

// matches reports whether p is the pod r names.
func (r PodRef) matches(p *corev1.Pod) bool {
	return p.Namespace == r.Namespace && p.Name == r.Name && (r.UID == "" || r.UID == p.UID)
}

// Entry is one pending pod: the addresses plexus-cni assigned before the Pod's status shows them.
type Entry struct {
	Pod PodRef
	IPs []netip.Addr
	// Added is when the entry was last added (for expiry).
	Added time.Time
}

// Pending is the overlay of addresses plexus-cni assigned to pods whose status does not carry
// them yet (the kubelet writes status.podIPs only after the sandbox is up, well after the
// plugin returned). It is safe for concurrent use.
type Pending struct {
	mu      sync.Mutex
	entries map[podName]Entry
}

type podName struct{ namespace, name string }

// NewPending returns an empty overlay.
func NewPending() *Pending { return &Pending{entries: map[podName]Entry{}} }

// Add records ips for pod, replacing what an earlier Add recorded for a pod of that name (a new
// sandbox of the same pod gets new addresses). The addresses leave every other entry: plexus-cni
// hands an address to one sandbox at a time, so the latest request owns it, and an older entry
// (a sandbox whose ADD failed and freed it) must not give it to a second pod.
func (p *Pending) Add(pod PodRef, ips []netip.Addr, now time.Time) {
	sorted := make([]netip.Addr, len(ips))
	for i, a := range ips {
		sorted[i] = a.Unmap()
	}
	slices.SortFunc(sorted, netip.Addr.Compare)
	sorted = slices.Compact(sorted)
	p.mu.Lock()
	defer p.mu.Unlock()
	k := podName{pod.Namespace, pod.Name}
	for other, e := range p.entries {
		if other == k {
			continue
		}
		kept := slices.DeleteFunc(slices.Clone(e.IPs), func(a netip.Addr) bool { return slices.Contains(sorted, a) })
		switch {
		case len(kept) == 0:
			delete(p.entries, other)
		case len(kept) != len(e.IPs):
			e.IPs = kept
			p.entries[other] = e
		}
	}
	p.entries[k] = Entry{Pod: pod, IPs: sorted, Added: now}
}

// Forget drops the entry of pod's namespace/name, if any.
func (p *Pending) Forget(pod PodRef) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.entries, podName{pod.Namespace, pod.Name})
}

// Len returns the number of entries.
func (p *Pending) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.entries)
}

// Snapshot returns the entries, sorted by namespace/name.
func (p *Pending) Snapshot() []Entry {
	p.mu.Lock()
	out := make([]Entry, 0, len(p.entries))
	for _, e := range p.entries {
		out = append(out, e)
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b Entry) int {
		if a.Pod.Namespace != b.Pod.Namespace {
			return strings.Compare(a.Pod.Namespace, b.Pod.Namespace)
		}
		return strings.Compare(a.Pod.Name, b.Pod.Name)
	})
	return out
}

// Prune forgets the entries the pod list no longer needs: those whose pod's status carries all
// their addresses (the informer has caught up), those whose pod is finished, and those whose pod
// is absent and that were added before expireBefore (the pod was deleted, or never reached the
// API). An entry whose pod is absent but recent stays: the informer may not have seen the pod yet.
func (p *Pending) Prune(pods []*corev1.Pod, expireBefore time.Time) {
	for _, e := range p.Snapshot() {
		pod := findPod(pods, e.Pod)
		switch {
		case pod == nil && e.Added.Before(expireBefore),
			pod != nil && (finished(pod) || containsAll(policy.PodIPs(pod), e.IPs)):
			p.forgetIf(e)
		}
	}
}

// forgetIf drops e unless a newer Add replaced it meanwhile.
func (p *Pending) forgetIf(e Entry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := podName{e.Pod.Namespace, e.Pod.Name}
	if cur, ok := p.entries[k]; ok && cur.Added.Equal(e.Added) && cur.Pod == e.Pod {
		delete(p.entries, k)
	}
}

// Merge returns pods with the pending addresses applied, for the policy compiler: a pod an entry
// names (same namespace, name and, when the entry has one, UID) gets the union of its status
// addresses and the entry's, as a shallow copy with a new status.podIPs, so a pod the informer
// knows by its labels is compiled at the addresses it is about to use. The input is not modified.
// It also returns the entries that matched a pod; an entry without a pod changes nothing (without
// labels no policy can select it, so the caller must wait for the pod).
func Merge(pods []*corev1.Pod, entries []Entry) (merged []*corev1.Pod, applied []PodRef) {
	if len(entries) == 0 {
		return pods, nil
	}
	byName := make(map[podName]Entry, len(entries))
	for _, e := range entries {
		byName[podName{e.Pod.Namespace, e.Pod.Name}] = e
	}
	merged = make([]*corev1.Pod, len(pods))
	for i, p := range pods {
		merged[i] = p
		e, ok := byName[podName{p.Namespace, p.Name}]
		if !ok || !e.Pod.matches(p) || finished(p) || p.Spec.HostNetwork {
			continue
		}
		applied = append(applied, e.Pod)
		have := policy.PodIPs(p)
		if containsAll(have, e.IPs) {
			continue
		}
		cp := *p
		cp.Status.PodIPs = nil
		for _, a := range unionAddrs(have, e.IPs) {
			cp.Status.PodIPs = append(cp.Status.PodIPs, corev1.PodIP{IP: a.String()})
		}
		cp.Status.PodIP = cp.Status.PodIPs[0].IP
		merged[i] = &cp
	}
	return merged, applied
}

func findPod(pods []*corev1.Pod, ref PodRef) *corev1.Pod {
	for _, p := range pods {
		if ref.matches(p) {
			return p
		}
	}
	return nil
}

func finished(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

func containsAll(have, want []netip.Addr) bool {
	for _, a := range want {
		if !slices.Contains(have, a) {
			return false
		}
	}
	return true
}

// unionAddrs returns have followed by the addresses of add it lacks.
func unionAddrs(have, add []netip.Addr) []netip.Addr {
	out := slices.Clone(have)
	for _, a := range add {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}
