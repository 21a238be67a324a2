package testnet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

const (
	// NamePrefix starts the name of every namespace the harness creates, so a
	// leftover is recognisable in `ip netns list`.
	NamePrefix = "plxt-"
	// ipCommand is iproute2's binary.
	ipCommand = "ip"
	// netnsDir is where `ip netns add` bind-mounts named namespaces.
	netnsDir = "/run/netns"
	// execTimeout bounds every command the harness runs.
	execTimeout = 30 * time.Second
)

// Netns is a throwaway named network namespace, removed when its test ends.
type Netns struct {
	name   string
	handle netns.NsHandle
	nl     *netlink.Handle
}

// NewNetns creates a namespace named NamePrefix + prefix + a short random
// suffix (prefix may be empty), brings its loopback up and registers its
// deletion with t.Cleanup. Deleting the namespace also destroys every link,
// route, neighbour and nftables table inside it.
func NewNetns(t testing.TB, prefix string) *Netns {
	t.Helper()
	sweepStaleOnce()
	name := newNetnsName(prefix)
	if out, err := exec.Command(ipCommand, "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("create network namespace %s: %v: %s", name, err, out)
	}
	n := &Netns{name: name, handle: -1}
	t.Cleanup(func() {
		if err := n.close(); err != nil {
			t.Errorf("delete network namespace %s: %v", name, err)
		}
	})
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("open network namespace %s: %v", name, err)
	}
	n.handle = h
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatalf("netlink handle for %s: %v", name, err)
	}
	n.nl = nl
	lo, err := nl.LinkByName("lo")
	if err != nil {
		t.Fatalf("find lo in %s: %v", name, err)
	}
	if err := nl.LinkSetUp(lo); err != nil {
		t.Fatalf("set lo up in %s: %v", name, err)
	}
	return n
}

// newNetnsName returns NamePrefix + prefix + "-" + this process's id (so a
// later run can tell leftovers of dead processes) + "-" + 4 random hex digits.
func newNetnsName(prefix string) string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	if prefix != "" {
		prefix += "-"
	}
	return fmt.Sprintf("%s%s%x-%s", NamePrefix, prefix, os.Getpid(), hex.EncodeToString(b[:]))
}

// close releases the harness's own references and deletes the namespace.
func (n *Netns) close() error {
	if n.nl != nil {
		n.nl.Close()
		n.nl = nil
	}
	if n.handle >= 0 {
		_ = n.handle.Close()
		n.handle = -1
	}
	out, err := exec.Command(ipCommand, "netns", "del", n.name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// Name is the namespace's name as `ip netns` shows it.
func (n *Netns) Name() string { return n.name }

// Path is the namespace's bind mount, e.g. for a CNI runtime's netns path.
func (n *Netns) Path() string { return filepath.Join(netnsDir, n.name) }

// String is the namespace's name.
func (n *Netns) String() string { return n.name }

// Handle is a netlink handle bound to the namespace. It is owned by the
// Netns and closed on cleanup; callers must not close it.
func (n *Netns) Handle() *netlink.Handle { return n.nl }

// NsHandle is an open handle of the namespace, owned by the Netns and
// closed on cleanup; callers must not close it. Pass it to code that opens
// its own sockets in the namespace (netlink.NewHandleAt and the like).
func (n *Netns) NsHandle() netns.NsHandle { return n.handle }

// NewHandle opens an extra netlink handle bound to the namespace, closed on
// cleanup (before the namespace is deleted). Useful when code under test
// wants a handle of its own.
func (n *Netns) NewHandle(t testing.TB) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(n.handle)
	if err != nil {
		t.Fatalf("netlink handle for %s: %v", n.name, err)
	}
	t.Cleanup(h.Close)
	return h
}

// Do runs fn on an OS thread that has entered the namespace, and returns its
// error. Sockets opened by fn belong to the namespace and keep working after
// Do returns. Goroutines started by fn do NOT run in the namespace.
//
// The thread is never switched back: the goroutine exits still locked, which
// makes the Go runtime terminate the thread, so no thread in a foreign
// namespace can ever be reused by unrelated code.
func (n *Netns) Do(fn func() error) error {
	if err := DoIn(n.handle, fn); err != nil {
		return fmt.Errorf("in network namespace %s: %w", n.name, err)
	}
	return nil
}

// DoIn is Do for any namespace handle: fn runs on a fresh OS thread that has entered ns, and the
// thread is never switched back (it ends with its goroutine).
func DoIn(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Exec runs a command inside the namespace (`ip netns exec`) and returns its
// combined output; the test fails if the command fails.
func (n *Netns) Exec(t testing.TB, args ...string) string {
	t.Helper()
	out, err := n.TryExec(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TryExec is Exec that returns the error instead of failing the test.
func (n *Netns) TryExec(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), execTimeout)
	defer cancel()
	full := append([]string{"netns", "exec", n.name}, args...)
	out, err := exec.CommandContext(ctx, ipCommand, full...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("in %s: %s: %w: %s", n.name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Start starts a long-running command inside the namespace. It is killed and
// reaped on cleanup (before the namespace is deleted).
func (n *Netns) Start(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	full := append([]string{"netns", "exec", n.name}, args...)
	cmd := exec.Command(ipCommand, full...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("in %s: start %s: %v", n.name, strings.Join(args, " "), err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// Sysctl writes a sysctl inside the namespace. key uses slashes, as under
// /proc/sys ("net/ipv6/conf/all/forwarding"), because interface names may
// contain dots.
func (n *Netns) Sysctl(t testing.TB, key, value string) {
	t.Helper()
	err := n.Do(func() error {
		// /proc/sys/net resolves to the network namespace of the thread that
		// opens the file, which is why this runs inside Do.
		return os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644)
	})
	if err != nil {
		t.Fatalf("in %s: sysctl %s=%s: %v", n.name, key, value, err)
	}
}

// EnableForwarding turns on IPv4 and IPv6 forwarding, as a router or a node
// that routes for its pods needs.
func (n *Netns) EnableForwarding(t testing.TB) {
	t.Helper()
	n.Sysctl(t, "net/ipv4/ip_forward", "1")
	n.Sysctl(t, "net/ipv6/conf/all/forwarding", "1")
}
