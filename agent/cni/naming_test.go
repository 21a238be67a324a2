package cni

import (
	"regexp"
	"testing"
)

func TestHostVethName(t *testing.T) {
	valid := regexp.MustCompile(`^plx[0-9a-f]{11}$`)
	tests := []struct {
		containerID, ifName string
	}{
		{"c1", "eth0"},
		{"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "eth0"},
		{"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "net1"},
		{"x", "a-very-long-if"},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		name := HostVethName(tt.containerID, tt.ifName)
		if !valid.MatchString(name) || len(name) > 15 {
			t.Errorf("HostVethName(%q, %q) = %q: want plx + 11 hex chars, at most 15 chars", tt.containerID, tt.ifName, name)
		}
		if again := HostVethName(tt.containerID, tt.ifName); again != name {
			t.Errorf("HostVethName(%q, %q) not deterministic: %q then %q", tt.containerID, tt.ifName, name, again)
		}
		key := tt.containerID + "/" + tt.ifName
		if other, dup := seen[name]; dup {
			t.Errorf("HostVethName collision: %s and %s both map to %s", other, key, name)
		}
		seen[name] = key
	}
	// Known value pins the derivation: changing it would orphan host veths across an upgrade.
	if got, want := HostVethName("c1", "eth0"), "plxd72e032fedd"; got != want {
		t.Errorf("HostVethName(c1, eth0) = %s, want %s", got, want)
	}
}
