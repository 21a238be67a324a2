// Package nsthread runs the agent's data plane calls in another network namespace (the agent's
// --netns), on one OS thread that has entered it: nft and conntrack runs, sysctls, listeners.
// Every function here accepts a nil *Thread, meaning the caller's own namespace.
package nsthread

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"

	"github.com/vishvananda/netns"
	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/agent/proxy/nftables"
)

// Thread runs functions on one OS thread that has entered a network namespace.
//
// Why a thread: setns(2) switches the namespace of the calling thread only, and knftables runs
// the `nft` binary with os/exec, whose child inherits the namespace of the thread that forks it.
// knftables has no public hook to wrap the command (e.g. in nsenter), so every nft call of the
// agent runs on this thread instead. The thread never switches back: its goroutine exits still
// locked when stopped, which makes the Go runtime destroy the thread, so no goroutine of the
// agent can ever land on a thread in the wrong namespace.
type Thread struct {
	fns  chan func()
	done chan struct{}
}

// Start starts the thread in the namespace bound at path.
func Start(path string) (*Thread, error) {
	t := &Thread{fns: make(chan func()), done: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, on purpose (see Thread)
		ns, err := netns.GetFromPath(path)
		if err != nil {
			errc <- fmt.Errorf("open network namespace %s: %w", path, err)
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("enter network namespace %s: %w", path, err)
			return
		}
		errc <- nil
		for {
			select {
			case fn := <-t.fns:
				fn()
			case <-t.done:
				return
			}
		}
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	return t, nil
}

// do runs fn on the thread and waits for it.
func (t *Thread) do(fn func()) {
	finished := make(chan struct{})
	t.fns <- func() { fn(); close(finished) }
	<-finished
}

// Stop ends the thread.
func (t *Thread) Stop() { close(t.done) }

// Run runs fn on the thread and returns its error; on a nil t (no --netns) it runs fn on the
// caller's thread, which is in the agent's own namespace.
func (t *Thread) Run(fn func() error) error {
	if t == nil {
		return fn()
	}
	var err error
	t.do(func() { err = fn() })
	return err
}

// NFTables returns the nftables interface that newNFT makes (bound to one table), running
// nft in the namespace of t (the caller's own namespace when t is nil).
func NFTables(t *Thread, newNFT func() (knftables.Interface, error)) (knftables.Interface, error) {
	if t == nil {
		return newNFT()
	}
	var nft knftables.Interface
	var err error
	// knftables.New already runs nft (to probe its features): in the namespace too.
	t.do(func() { nft, err = newNFT() })
	if err != nil {
		return nil, err
	}
	return &nsNFTables{inner: nft, t: t}, nil
}

// nsNFTables is a knftables.Interface whose calls run on a Thread.
type nsNFTables struct {
	inner knftables.Interface
	t     *Thread
}

var _ knftables.Interface = &nsNFTables{}

// NewTransaction implements knftables.Interface (no nft call).
func (n *nsNFTables) NewTransaction() *knftables.Transaction { return n.inner.NewTransaction() }

// Run implements knftables.Interface.
func (n *nsNFTables) Run(ctx context.Context, tx *knftables.Transaction) (err error) {
	n.t.do(func() { err = n.inner.Run(ctx, tx) })
	return err
}

// Check implements knftables.Interface.
func (n *nsNFTables) Check(ctx context.Context, tx *knftables.Transaction) (err error) {
	n.t.do(func() { err = n.inner.Check(ctx, tx) })
	return err
}

// ListAll implements knftables.Interface.
func (n *nsNFTables) ListAll(ctx context.Context) (m map[string][]string, err error) {
	n.t.do(func() { m, err = n.inner.ListAll(ctx) })
	return m, err
}

// List implements knftables.Interface.
func (n *nsNFTables) List(ctx context.Context, objectType string) (l []string, err error) {
	n.t.do(func() { l, err = n.inner.List(ctx, objectType) })
	return l, err
}

// ListRules implements knftables.Interface.
func (n *nsNFTables) ListRules(ctx context.Context, chain string) (r []*knftables.Rule, err error) {
	n.t.do(func() { r, err = n.inner.ListRules(ctx, chain) })
	return r, err
}

// ListElements implements knftables.Interface.
func (n *nsNFTables) ListElements(ctx context.Context, objectType, name string) (e []*knftables.Element, err error) {
	n.t.do(func() { e, err = n.inner.ListElements(ctx, objectType, name) })
	return e, err
}

// ListCounters implements knftables.Interface.
func (n *nsNFTables) ListCounters(ctx context.Context) (c []*knftables.Counter, err error) {
	n.t.do(func() { c, err = n.inner.ListCounters(ctx) })
	return c, err
}

// Conntrack runs the conntrack cleaner inner on t (conntrack(8) acts on the namespace it starts
// in).
func Conntrack(t *Thread, inner nftables.Conntrack) nftables.Conntrack {
	return nsConntrack{inner: inner, t: t}
}

type nsConntrack struct {
	inner nftables.Conntrack
	t     *Thread
}

// ClearUDP implements nftables.Conntrack.
func (c nsConntrack) ClearUDP(ctx context.Context, frontend netip.AddrPort, endpoint netip.Addr) (err error) {
	if c.t == nil {
		return c.inner.ClearUDP(ctx, frontend, endpoint)
	}
	c.t.do(func() { err = c.inner.ClearUDP(ctx, frontend, endpoint) })
	return err
}

// Listen returns what opens a TCP listener on every address of t's namespace (the caller's when t is nil):
// a socket stays in the namespace it was made in, whichever thread serves it later.
func Listen(t *Thread) func(port uint16) (net.Listener, error) {
	return func(port uint16) (ln net.Listener, err error) {
		if t == nil {
			return net.Listen("tcp", fmt.Sprintf(":%d", port))
		}
		t.do(func() { ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port)) })
		return ln, err
	}
}
