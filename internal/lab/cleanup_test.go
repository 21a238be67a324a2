package lab

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testLabName and testLabSlot are the lab these tests make: never a person's (DefaultName, slot 0),
// the e2e suite's or the lab benchmarks', so they run while any of those runs.
const (
	testLabName = "cleanup"
	testLabSlot = 3
)

// requireLab skips the test, saying why, when no lab can run here; where a lab is required
// (RequireEnv, set by make test) it fails instead.
func requireLab(t *testing.T) {
	t.Helper()
	if reason := Unavailable(); reason != "" {
		if Required() {
			t.Fatal(reason)
		}
		t.Skip(reason)
	}
}

// TestDownAfterAbortedUp makes what the first steps of Up make (state, network namespaces, a
// process tree in the lab's namespace and cgroups, host mount points, recorded sysctls) and stops
// there, as an aborted Up does; Down must then leave the machine as it was.
func TestDownAfterAbortedUp(t *testing.T) {
	requireLab(t)
	c := testLab(t, testLabName, testLabSlot, filepath.Join(t.TempDir(), "lab"))
	before := machineSnapshot(t, c)
	abortedUp(t, c)

	if err := Down(c); err != nil {
		t.Fatalf("down: %v\n%s", err, c.Out)
	}
	if after := machineSnapshot(t, c); after != before {
		t.Fatalf("the machine differs after down:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Fatalf("lab folder %s left behind", c.Dir)
	}
}

// testLab is a two-node lab of the given name and slot in dir, with its progress in a buffer; it
// fails when the lab's namespace is there already (left by a killed run).
func testLab(t *testing.T, name string, slot int, dir string) Config {
	t.Helper()
	c := NamedConfig(repoRoot(t), name, slot)
	if netnsExists(c.UnderlayNetns()) {
		t.Fatalf("network namespace %s exists: an earlier run of this test was killed before it cleaned up; "+
			"remove its namespaces (ip netns delete) and cgroups (%s) first", c.UnderlayNetns(), c.CgroupRoot())
	}
	c.Nodes = 2
	c.Dir = dir
	c.Out = &bytes.Buffer{}
	if err := CheckRanges(c); err != nil {
		t.Fatal(err)
	}
	return c
}

// abortedUp makes what the first steps of Up make (state, network namespaces, a process with a
// child in the underlay namespace and the lab's cgroup, host mount points, recorded sysctls) and
// returns the state, as an Up aborted there leaves it.
func abortedUp(t *testing.T, c Config) *State {
	t.Helper()
	st, err := loadState(c.Dir)
	if err != nil {
		t.Fatal(err)
	}
	st.Nodes = c.Nodes
	st.Started = time.Now()
	if err := setupNetwork(c, st); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(c.Dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A process with a child in the underlay namespace, like a control-plane component.
	if err := c.startProcess(st, "sleeper", c.UnderlayNetns(), filepath.Join(c.Dir, "logs/sleeper.log"),
		"/bin/sh", "-c", "sleep 300 & sleep 300"); err != nil {
		t.Fatal(err)
	}
	if err := c.prepareMachine(st); err != nil {
		t.Fatal(err)
	}
	if err := c.waitFor(st, "", "", 5*time.Second, "sleeper and its child tracked", func() error {
		if n := len(labPIDs(st)); n < 2 {
			return os.ErrNotExist
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return st
}

// machineSnapshot lists what the lab may touch: its namespaces, links, cgroups, processes, mount
// points and the sysctls it records.
func machineSnapshot(t *testing.T, c Config) string {
	t.Helper()
	var b strings.Builder
	ns, _ := exec.Command("ip", "netns", "list").Output()
	for _, l := range strings.Split(string(ns), "\n") {
		if strings.HasPrefix(l, c.NetnsPrefix()) {
			b.WriteString("netns " + l + "\n")
		}
	}
	links, _ := exec.Command("ip", "-o", "link", "show").Output()
	for _, l := range strings.Split(string(links), "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			b.WriteString("link " + f[1] + "\n")
		}
	}
	for _, h := range nodeCgroupHierarchies() {
		if _, err := os.Stat(filepath.Join(h, c.CgroupRoot())); err == nil {
			b.WriteString("cgroup " + h + "\n")
		}
	}
	for _, d := range bindMounts(&State{}) {
		if _, err := os.Stat(d); err == nil {
			b.WriteString("dir " + d + "\n")
		}
	}
	for _, s := range kernelSysctls {
		v, _ := os.ReadFile("/proc/sys/" + s)
		b.WriteString("sysctl " + s + "=" + string(v))
	}
	return b.String()
}
