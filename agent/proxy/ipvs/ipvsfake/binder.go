package ipvsfake

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/plexus-net/plexus/agent/proxy/ipvs"
)

// Binder is the fake dummy device. Create it with NewBinder.
type Binder struct {
	exists bool
	addrs  []netip.Addr
	calls  []string
	// FailOn makes a mutating call fail, keyed as Calls records it (e.g.
	// "Bind 10.96.0.10").
	FailOn map[string]error
}

var _ ipvs.Binder = &Binder{}

// NewBinder returns a fake without the device.
func NewBinder() *Binder { return &Binder{FailOn: map[string]error{}} }

// Exists reports whether the device was created.
func (b *Binder) Exists() bool { return b.exists }

// Calls returns the mutating calls made since NewBinder or ResetCalls.
func (b *Binder) Calls() []string { return slices.Clone(b.calls) }

// ResetCalls forgets the recorded calls.
func (b *Binder) ResetCalls() { b.calls = nil }

func (b *Binder) record(format string, args ...any) error {
	c := fmt.Sprintf(format, args...)
	b.calls = append(b.calls, c)
	return b.FailOn[c]
}

// EnsureDevice implements ipvs.Binder.
func (b *Binder) EnsureDevice() error {
	if err := b.record("EnsureDevice"); err != nil {
		return err
	}
	b.exists = true
	return nil
}

// DeviceExists implements ipvs.Binder.
func (b *Binder) DeviceExists() (bool, error) { return b.exists, nil }

// DeleteDevice implements ipvs.Binder: the device goes with its addresses.
func (b *Binder) DeleteDevice() error {
	if err := b.record("DeleteDevice"); err != nil {
		return err
	}
	b.exists, b.addrs = false, nil
	return nil
}

// ListBound implements ipvs.Binder.
func (b *Binder) ListBound() ([]netip.Addr, error) {
	out := slices.Clone(b.addrs)
	slices.SortFunc(out, netip.Addr.Compare)
	return out, nil
}

// Bind implements ipvs.Binder.
func (b *Binder) Bind(a netip.Addr) error {
	if err := b.record("Bind %s", a); err != nil {
		return err
	}
	if !b.exists {
		return fmt.Errorf("bind %s: no link %s", a, ipvs.DummyDevice)
	}
	if !slices.Contains(b.addrs, a) {
		b.addrs = append(b.addrs, a)
	}
	return nil
}

// Unbind implements ipvs.Binder.
func (b *Binder) Unbind(a netip.Addr) error {
	if err := b.record("Unbind %s", a); err != nil {
		return err
	}
	b.addrs = slices.DeleteFunc(b.addrs, func(h netip.Addr) bool { return h == a })
	return nil
}
