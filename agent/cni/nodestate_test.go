package cni

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestNodeStateRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "node-state.json")
	in := NodeState{
		NodeName:    "node-a",
		PodCIDRs:    PodCIDRs{IPv4: mustPrefix("10.244.1.0/24"), IPv6: mustPrefix("fd10:244:0:1::/64")},
		MTU:         1450,
		ReservedIPs: []netip.Addr{netip.MustParseAddr("10.244.1.1")},
	}
	if err := WriteNodeState(path, in); err != nil {
		t.Fatalf("WriteNodeState: %v", err)
	}
	out, err := ReadNodeState(path)
	if err != nil {
		t.Fatalf("ReadNodeState: %v", err)
	}
	in.Version = NodeStateVersion
	if out.NodeName != in.NodeName || out.PodCIDRs != in.PodCIDRs || out.MTU != in.MTU || len(out.ReservedIPs) != 1 || out.Version != 1 {
		t.Errorf("round trip: got %+v, want %+v", out, in)
	}
	data, _ := os.ReadFile(path)
	for _, want := range []string{`"version": 1`, `"ipv4": "10.244.1.0/24"`, `"ipv6": "fd10:244:0:1::/64"`, `"mtu": 1450`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("file lacks %s:\n%s", want, data)
		}
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, want 0644", fi.Mode().Perm())
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".plexus-tmp-*")); len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestNodeStateIPv4OnlyOmitsIPv6(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.json")
	if err := WriteNodeState(path, NodeState{PodCIDRs: PodCIDRs{IPv4: mustPrefix("10.244.1.0/24")}}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), "ipv6") {
		t.Errorf("absent family written: %s", data)
	}
	st, err := ReadNodeState(path)
	if err != nil || st.PodCIDRs.IPv6.IsValid() || len(st.PodCIDRs.List()) != 1 {
		t.Fatalf("ReadNodeState = %+v, %v", st, err)
	}
}

func TestReadNodeStateErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content, want string
	}{
		{name: "newer version", content: `{"version":2,"podCIDRs":{}}`, want: `field "version": 2 is not supported`},
		{name: "wrong family", content: `{"version":1,"podCIDRs":{"ipv4":"fd10::/64"}}`, want: `field "podCIDRs.ipv4": fd10::/64 is not an IPv4 prefix`},
		{name: "host bits", content: `{"version":1,"podCIDRs":{"ipv4":"10.244.1.7/24"}}`, want: `has host bits set (did you mean 10.244.1.0/24?)`},
		{name: "no usable address", content: `{"version":1,"podCIDRs":{"ipv6":"fd10::1/128"}}`, want: `has no address to hand out`},
		{name: "bad prefix", content: `{"version":1,"podCIDRs":{"ipv4":"10.244.1.0"}}`, want: `is not valid JSON`},
		{name: "bad mtu", content: `{"version":1,"mtu":20}`, want: `field "mtu": 20 is out of range`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".json")
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadNodeState(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("ReadNodeState error = %v, want it to name %s and contain %q", err, path, tt.want)
			}
		})
	}
	_, err := ReadNodeState(filepath.Join(dir, "absent.json"))
	if !errors.Is(err, ErrNodeStateMissing) {
		t.Errorf("missing file: error = %v, want ErrNodeStateMissing", err)
	}
}

func TestWriteNodeStateRefusesInvalid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.json")
	err := WriteNodeState(path, NodeState{PodCIDRs: PodCIDRs{IPv4: mustPrefix("10.244.1.9/24")}})
	if err == nil || !strings.Contains(err.Error(), "host bits") {
		t.Fatalf("WriteNodeState error = %v, want host-bits error", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("invalid state was written")
	}
}
