package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSysctl(t *testing.T) {
	dir := t.TempDir()
	procSys = dir
	for _, p := range []string{"net/ipv4", "net/ipv6/conf/all"} {
		if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := runSysctl([]string{"net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"} {
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil || string(b) != "1\n" {
			t.Fatalf("%s = %q, %v; want 1", p, b, err)
		}
	}
	for arg, want := range map[string]string{
		"kernel.panic=1":      "only net.ipv4.ip_forward",
		"net.ipv4.ip_forward": "want key=value",
		"=1":                  "want key=value",
	} {
		if err := runSysctl([]string{arg}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("sysctl %q: err = %v, want %q", arg, err, want)
		}
	}
}
