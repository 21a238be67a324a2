package admit

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func testPod(ns, name, uid string, ips ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid), Labels: map[string]string{"app": name}}}
	for _, ip := range ips {
		p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: ip})
	}
	if len(ips) > 0 {
		p.Status.PodIP = ips[0]
	}
	return p
}

func addrs(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, x := range s {
		out[i] = netip.MustParseAddr(x)
	}
	return out
}

func podIPStrings(p *corev1.Pod) []string {
	var out []string
	for _, ip := range p.Status.PodIPs {
		out = append(out, ip.IP)
	}
	return out
}

func TestMerge(t *testing.T) {
	now := time.Unix(1000, 0)
	hostNet := testPod("default", "host", "", "192.0.2.1")
	hostNet.Spec.HostNetwork = true
	done := testPod("default", "done", "")
	done.Status.Phase = corev1.PodSucceeded
	cases := []struct {
		name        string
		pod         *corev1.Pod
		entry       Entry
		wantIPs     []string
		wantApplied bool
	}{
		{"pod without status IPs gets the CNI addresses", testPod("default", "web", "u1"),
			Entry{Pod: PodRef{"default", "web", "u1"}, IPs: addrs("10.244.1.5", "fd10::5")}, []string{"10.244.1.5", "fd10::5"}, true},
		{"entry without UID matches any UID", testPod("default", "web", "u1"),
			Entry{Pod: PodRef{"default", "web", ""}, IPs: addrs("10.244.1.5")}, []string{"10.244.1.5"}, true},
		{"other UID (a deleted pod of that name) is left alone", testPod("default", "web", "old"),
			Entry{Pod: PodRef{"default", "web", "new"}, IPs: addrs("10.244.1.5")}, nil, false},
		{"other namespace is left alone", testPod("prod", "web", ""),
			Entry{Pod: PodRef{"default", "web", ""}, IPs: addrs("10.244.1.5")}, nil, false},
		{"status IPs of an older sandbox are kept beside the new ones", testPod("default", "web", "", "10.244.1.4"),
			Entry{Pod: PodRef{"default", "web", ""}, IPs: addrs("10.244.1.5")}, []string{"10.244.1.4", "10.244.1.5"}, true},
		{"status that already has the addresses is unchanged", testPod("default", "web", "", "10.244.1.5"),
			Entry{Pod: PodRef{"default", "web", ""}, IPs: addrs("10.244.1.5")}, []string{"10.244.1.5"}, true},
		{"host-network pod is never given pod addresses", hostNet,
			Entry{Pod: PodRef{"default", "host", ""}, IPs: addrs("10.244.1.5")}, []string{"192.0.2.1"}, false},
		{"finished pod is not revived", done,
			Entry{Pod: PodRef{"default", "done", ""}, IPs: addrs("10.244.1.5")}, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := podIPStrings(c.pod)
			c.entry.Added = now
			other := testPod("default", "other", "", "10.244.1.9")
			merged, applied := Merge([]*corev1.Pod{other, c.pod}, []Entry{c.entry})
			if got := podIPStrings(merged[1]); !slices.Equal(got, c.wantIPs) {
				t.Errorf("merged IPs = %v, want %v", got, c.wantIPs)
			}
			if merged[0] != other {
				t.Errorf("a pod without entry was copied")
			}
			if got := len(applied) == 1 && applied[0] == c.entry.Pod; got != c.wantApplied {
				t.Errorf("applied = %v, want the entry applied: %v", applied, c.wantApplied)
			}
			if got := podIPStrings(c.pod); !slices.Equal(got, before) {
				t.Errorf("input pod modified: IPs %v, were %v", got, before)
			}
			if c.wantApplied && len(c.wantIPs) > 0 && merged[1].Status.PodIP != c.wantIPs[0] {
				t.Errorf("status.podIP = %q, want %q", merged[1].Status.PodIP, c.wantIPs[0])
			}
		})
	}
}

func TestMergeWithoutEntriesReturnsTheInput(t *testing.T) {
	pods := []*corev1.Pod{testPod("default", "a", "")}
	merged, applied := Merge(pods, nil)
	if &merged[0] != &pods[0] || applied != nil {
		t.Errorf("Merge without entries copied the list or applied %v", applied)
	}
}

func TestPendingPrune(t *testing.T) {
	t0 := time.Unix(1000, 0)
	p := NewPending()
	p.Add(PodRef{"default", "caught-up", ""}, addrs("10.244.1.1"), t0)
	p.Add(PodRef{"default", "partly", ""}, addrs("10.244.1.2", "fd10::2"), t0)
	p.Add(PodRef{"default", "unseen-recent", ""}, addrs("10.244.1.3"), t0.Add(time.Minute))
	p.Add(PodRef{"default", "unseen-old", ""}, addrs("10.244.1.4"), t0)
	p.Add(PodRef{"default", "finished", ""}, addrs("10.244.1.5"), t0)
	p.Add(PodRef{"default", "replaced", "new"}, addrs("10.244.1.6"), t0)
	fin := testPod("default", "finished", "")
	fin.Status.Phase = corev1.PodFailed
	pods := []*corev1.Pod{
		testPod("default", "caught-up", "", "10.244.1.1"),
		testPod("default", "partly", "", "10.244.1.2"),
		fin,
		testPod("default", "replaced", "old", "10.244.1.16"),
	}
	p.Prune(pods, t0.Add(30*time.Second))
	var left []string
	for _, e := range p.Snapshot() {
		left = append(left, e.Pod.Name)
	}
	// "replaced": the cached pod is the old one; the new one is not seen yet and the entry is
	// older than the expiry, so it goes too.
	want := []string{"partly", "unseen-recent"}
	if !slices.Equal(left, want) {
		t.Errorf("after Prune: %v, want %v", left, want)
	}
}

func TestPendingAddReplacesAndForget(t *testing.T) {
	p := NewPending()
	ref := PodRef{"default", "web", ""}
	p.Add(ref, addrs("fd10::1", "10.244.1.1", "10.244.1.1"), time.Unix(1, 0))
	p.Add(ref, addrs("10.244.1.2"), time.Unix(2, 0))
	got := p.Snapshot()
	if len(got) != 1 || !slices.Equal(got[0].IPs, addrs("10.244.1.2")) {
		t.Fatalf("after two Adds: %+v, want the second", got)
	}
	p.Add(ref, addrs("fd10::1", "10.244.1.1", "10.244.1.1"), time.Unix(3, 0))
	if got := p.Snapshot()[0].IPs; !slices.Equal(got, addrs("10.244.1.1", "fd10::1")) {
		t.Errorf("IPs = %v, want sorted without duplicates", got)
	}
	p.Forget(ref)
	if p.Len() != 0 {
		t.Errorf("Forget left %d entries", p.Len())
	}
}

func TestPendingAddTakesAddressesFromOlderEntries(t *testing.T) {
	p := NewPending()
	p.Add(PodRef{"default", "failed", ""}, addrs("10.244.1.5", "fd10::5"), time.Unix(1, 0))
	p.Add(PodRef{"default", "gone", ""}, addrs("10.244.1.6"), time.Unix(1, 0))
	// A new sandbox gets 10.244.1.5 and 10.244.1.6 after the older ones freed them.
	p.Add(PodRef{"prod", "new", ""}, addrs("10.244.1.5", "10.244.1.6"), time.Unix(2, 0))
	got := map[string][]netip.Addr{}
	for _, e := range p.Snapshot() {
		got[e.Pod.String()] = e.IPs
	}
	if len(got) != 2 || !slices.Equal(got["default/failed"], addrs("fd10::5")) || !slices.Equal(got["prod/new"], addrs("10.244.1.5", "10.244.1.6")) {
		t.Errorf("entries = %v, want default/failed left with fd10::5 only and prod/new owning the rest", got)
	}
}
