package lab

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestTwoLabsSideBySide makes the first steps of two labs of different names and slots at once:
// each reaches its own underlay, and taking one down leaves the other whole (namespaces,
// processes, cgroup) and gives it the machine's mount points and sysctls, which the second Down
// then removes and restores: the machine ends as it began.
func TestTwoLabsSideBySide(t *testing.T) {
	requireLab(t)
	cache := t.TempDir()
	first := testLab(t, testLabName, testLabSlot, filepath.Join(cache, labDir(testLabName)))
	second := testLab(t, "neighbour", testLabSlot+1, filepath.Join(cache, labDir("neighbour")))
	first.CacheDir, second.CacheDir = cache, cache
	before := machineSnapshot(t, first) + machineSnapshot(t, second)
	t.Cleanup(func() { _ = Down(first); _ = Down(second) }) // after a failure halfway; no-ops otherwise

	firstState := abortedUp(t, first)
	secondState := abortedUp(t, second)
	for _, c := range []Config{first, second} {
		reachGateway(t, c)
	}

	if err := Down(first); err != nil {
		t.Fatalf("down %s: %v\n%s", first.Name, err, first.Out)
	}
	if netnsExists(first.UnderlayNetns()) || netnsExists(first.NodeAt(1).Netns) {
		t.Fatalf("lab %s: namespaces left after its down", first.Name)
	}
	for _, ns := range []string{second.UnderlayNetns(), second.NodeAt(1).Netns, second.NodeAt(2).Netns} {
		if !netnsExists(ns) {
			t.Fatalf("lab %s lost its namespace %s when lab %s went down", second.Name, ns, first.Name)
		}
	}
	if n := len(labPIDs(secondState)); n < 2 {
		t.Fatalf("lab %s: %d of its 2 processes left after lab %s went down", second.Name, n, first.Name)
	}
	if !strings.Contains(fmt.Sprint(first.Out), "left for it to remove and restore") {
		t.Fatalf("down %s did not hand the machine's mount points and sysctls to lab %s:\n%s", first.Name, second.Name, first.Out)
	}
	t.Logf("lab %s handed %d mount points and %d sysctls to lab %s", first.Name, len(firstState.HostDirs), len(firstState.Sysctls), second.Name)
	heir, err := loadState(second.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range firstState.HostDirs {
		if _, err := os.Stat(d); err != nil || !slices.Contains(heir.HostDirs, d) {
			t.Fatalf("mount point %s that lab %s made: removed or not handed to lab %s (its state: %v)", d, first.Name, second.Name, heir.HostDirs)
		}
	}
	for s := range firstState.Sysctls {
		if _, ok := heir.Sysctls[s]; !ok {
			t.Fatalf("sysctl %s not handed to lab %s", s, second.Name)
		}
	}

	if err := Down(second); err != nil {
		t.Fatalf("down %s: %v\n%s", second.Name, err, second.Out)
	}
	if after := machineSnapshot(t, first) + machineSnapshot(t, second); after != before {
		t.Fatalf("the machine differs after both labs went down:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// reachGateway connects from node 1 of lab c to a listener on its underlay's gateway address.
func reachGateway(t *testing.T, c Config) {
	t.Helper()
	var l net.Listener
	if err := InNetns(filepath.Join("/run/netns", c.UnderlayNetns()), func() (err error) {
		l, err = net.Listen("tcp", netip.AddrPortFrom(c.gatewayV4(), 0).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if conn, err := l.Accept(); err == nil {
			conn.Close()
		}
	}()
	n := c.NodeAt(1)
	if err := InNetns(filepath.Join("/run/netns", n.Netns), func() error {
		conn, err := net.DialTimeout("tcp", l.Addr().String(), 5*time.Second)
		if err == nil {
			conn.Close()
		}
		return err
	}); err != nil {
		t.Fatalf("lab %s: node 1 (%s) does not reach its underlay's %s: %v", c.Name, n.IPv4, l.Addr(), err)
	}
}
