package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestVersion builds the binary and asks it for VERSION, as a runtime does before using it.
func TestVersion(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "plexus-cni")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "CNI_COMMAND=VERSION")
	cmd.Stdin = strings.NewReader(`{"cniVersion":"1.1.0","name":"plexus","type":"plexus-cni"}`)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("VERSION: %v: %s", err, out)
	}
	var v struct {
		SupportedVersions []string `json:"supportedVersions"`
	}
	if err := json.Unmarshal(out, &v); err != nil || !slices.Contains(v.SupportedVersions, "1.1.0") {
		t.Fatalf("VERSION output %s (%v): want supportedVersions including 1.1.0 (GC, STATUS)", out, err)
	}
}
