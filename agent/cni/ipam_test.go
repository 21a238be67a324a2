package cni

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

var dualStack = &NodeState{Version: 1, PodCIDRs: PodCIDRs{IPv4: mustPrefix("10.244.1.0/24"), IPv6: mustPrefix("fd10:244:0:1::/64")}}

// assign runs assignAddresses with its own store handle and the lock held, as one plugin process does.
func assign(t testing.TB, dir string, st *NodeState, o Owner) ([]netip.Addr, error) {
	t.Helper()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out []netip.Addr
	err = s.WithLock(func() (err error) { out, err = assignAddresses(s, st, o); return err })
	return out, err
}

func release(t testing.TB, dir string, o Owner) []netip.Addr {
	t.Helper()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out []netip.Addr
	if err := s.WithLock(func() (err error) { out, err = releaseOwner(s, o); return err }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAssignAddressesDualStackAndIdempotent(t *testing.T) {
	dir := t.TempDir()
	a := Owner{"ctr-a", "eth0"}
	got, err := assign(t, dir, dualStack, a)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[10.244.1.1 fd10:244:0:1::1]" {
		t.Fatalf("first pod got %v", got)
	}
	again, err := assign(t, dir, dualStack, a)
	if err != nil || fmt.Sprint(again) != fmt.Sprint(got) {
		t.Fatalf("repeated ADD got %v, %v; want the same %v", again, err, got)
	}
	b, _ := assign(t, dir, dualStack, Owner{"ctr-a", "net1"}) // same container, second interface
	if fmt.Sprint(b) != "[10.244.1.2 fd10:244:0:1::2]" {
		t.Fatalf("second interface got %v", b)
	}
	// The record is a readable file named after the address.
	data, err := os.ReadFile(filepath.Join(dir, "10.244.1.1"))
	if err != nil || string(data) != `{"containerID":"ctr-a","ifName":"eth0"}`+"\n" {
		t.Fatalf("allocation file = %q, %v", data, err)
	}
}

func TestAssignAddressesRotatesAndReleases(t *testing.T) {
	dir := t.TempDir()
	a, b, c := Owner{"a", "eth0"}, Owner{"b", "eth0"}, Owner{"c", "eth0"}
	_, _ = assign(t, dir, dualStack, a)
	freed := release(t, dir, a)
	if fmt.Sprint(freed) != "[10.244.1.1 fd10:244:0:1::1]" {
		t.Fatalf("release freed %v", freed)
	}
	gotB, _ := assign(t, dir, dualStack, b)
	if gotB[0].String() != "10.244.1.2" {
		t.Errorf("next pod got %v: a just-freed address must not be reused at once", gotB)
	}
	if freed := release(t, dir, c); len(freed) != 0 {
		t.Errorf("releasing an unknown owner freed %v", freed)
	}
}

func TestAssignAddressesExhaustion(t *testing.T) {
	dir := t.TempDir()
	st := &NodeState{Version: 1, PodCIDRs: PodCIDRs{IPv4: mustPrefix("10.244.9.0/30"), IPv6: mustPrefix("fd10:244:0:9::/64")}}
	for i := range 3 {
		if _, err := assign(t, dir, st, Owner{fmt.Sprint("ctr", i), "eth0"}); err != nil {
			t.Fatalf("pod %d: %v", i, err)
		}
	}
	_, err := assign(t, dir, st, Owner{"ctr3", "eth0"})
	var pe *PoolExhaustedError
	if !errors.As(err, &pe) || !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("4th pod in a /30: error = %v, want PoolExhaustedError", err)
	}
	if want := "pod CIDR 10.244.9.0/30 is exhausted: all 3 usable addresses are allocated"; err.Error() != want {
		t.Errorf("message = %q, want %q", err, want)
	}
	// The failed ADD must not keep the IPv6 address it may have taken.
	s, _ := OpenStore(dir)
	defer s.Close()
	all, _ := s.List()
	if len(all) != 6 {
		t.Errorf("store holds %d allocations after a failed ADD, want 6: %v", len(all), all)
	}
}

func TestAssignAddressesSkipsReserved(t *testing.T) {
	st := &NodeState{Version: 1, PodCIDRs: PodCIDRs{IPv4: mustPrefix("10.244.9.0/30")},
		ReservedIPs: []netip.Addr{netip.MustParseAddr("10.244.9.1")}}
	dir := t.TempDir()
	got, _ := assign(t, dir, st, Owner{"a", "eth0"})
	if got[0].String() != "10.244.9.2" {
		t.Errorf("got %v, want 10.244.9.2 (10.244.9.1 is reserved)", got)
	}
	_, _ = assign(t, dir, st, Owner{"b", "eth0"})
	_, err := assign(t, dir, st, Owner{"c", "eth0"})
	if err == nil || err.Error() != "pod CIDR 10.244.9.0/30 is exhausted: all 3 usable addresses are allocated (1 of them reserved by the plexus agent)" {
		t.Errorf("error = %v", err)
	}
}

func TestAssignAddressesFollowsCIDRChange(t *testing.T) {
	dir := t.TempDir()
	a := Owner{"a", "eth0"}
	_, _ = assign(t, dir, dualStack, a)
	moved := &NodeState{Version: 1, PodCIDRs: PodCIDRs{IPv4: mustPrefix("10.244.7.0/24")}}
	got, err := assign(t, dir, moved, a)
	if err != nil || fmt.Sprint(got) != "[10.244.7.1]" {
		t.Fatalf("after CIDR change got %v, %v", got, err)
	}
	s, _ := OpenStore(dir)
	defer s.Close()
	all, _ := s.List()
	if len(all) != 1 {
		t.Errorf("addresses from the old CIDRs were kept: %v", all)
	}
}

func TestStaleOwners(t *testing.T) {
	a, b, c := Owner{"a", "eth0"}, Owner{"b", "eth0"}, Owner{"c", "net1"}
	allocs := []Allocation{
		{IP: netip.MustParseAddr("10.244.1.1"), Owner: a},
		{IP: netip.MustParseAddr("10.244.1.2"), Owner: b},
		{IP: netip.MustParseAddr("10.244.1.3"), Owner: Owner{}}, // unreadable record
		{IP: netip.MustParseAddr("10.244.1.4"), Owner: c},
		{IP: netip.MustParseAddr("fd10:244:0:1::1"), Owner: a},
		{IP: netip.MustParseAddr("fd10:244:0:1::2"), Owner: b},
	}
	tests := []struct {
		name  string
		valid map[Owner]bool
		want  string
	}{
		{name: "all valid but the unreadable record", valid: map[Owner]bool{a: true, b: true, c: true}, want: "[/]"},
		{name: "one valid", valid: map[Owner]bool{a: true}, want: "[b/eth0 / c/net1]"},
		{name: "none valid (empty list from the runtime)", valid: nil, want: "[a/eth0 b/eth0 / c/net1]"},
		{name: "same container, other interface is not valid", valid: map[Owner]bool{a: true, b: true, {"c", "eth0"}: true}, want: "[/ c/net1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fmt.Sprint(staleOwners(allocs, tt.valid)); got != tt.want {
				t.Errorf("staleOwners = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestAssignAddressesConcurrent runs allocations from many goroutines, each with its own store
// handle (its own flock), as parallel plugin processes would.
func TestAssignAddressesConcurrent(t *testing.T) {
	dir := t.TempDir()
	const n = 40
	var wg sync.WaitGroup
	results := make([][]netip.Addr, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = assign(t, dir, dualStack, Owner{fmt.Sprint("ctr", i), "eth0"})
		})
	}
	wg.Wait()
	seen := map[netip.Addr]int{}
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("allocation %d: %v", i, errs[i])
		}
		for _, ip := range r {
			if j, dup := seen[ip]; dup {
				t.Fatalf("%s given to both ctr%d and ctr%d", ip, j, i)
			}
			seen[ip] = i
		}
	}
	if len(seen) != 2*n {
		t.Errorf("%d distinct addresses, want %d", len(seen), 2*n)
	}
}
