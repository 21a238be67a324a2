// Package ipvsfake is a stateful in-memory ipvs.Interface and ipvs.Binder
// for unit tests. It behaves like the kernel where Plexus depends on it:
// keys are unique (a second add fails with ipvs.ErrExists), deleting a
// virtual server drops its real servers, deleting what is absent is fine,
// and binding needs the device.
package ipvsfake

import (
	"fmt"
	"slices"
	"strings"

	"github.com/plexus-net/plexus/agent/proxy/ipvs"
)

// service is one virtual server in the fake kernel.
type service struct {
	vs    ipvs.VirtualServer
	reals []ipvs.RealServer
}

// Fake is the fake IPVS. Create it with New.
type Fake struct {
	services map[ipvs.VirtualServerKey]*service
	calls    []string
	// FailOn makes a mutating call fail: the key is the call as Calls
	// records it (e.g. "AddVirtualServer TCP 10.96.0.10:53 rr").
	FailOn map[string]error
}

var _ ipvs.Interface = &Fake{}

// New returns an empty fake IPVS.
func New() *Fake {
	return &Fake{services: map[ipvs.VirtualServerKey]*service{}, FailOn: map[string]error{}}
}

// Calls returns the mutating calls made since New or ResetCalls, in order.
func (f *Fake) Calls() []string { return slices.Clone(f.calls) }

// ResetCalls forgets the recorded calls.
func (f *Fake) ResetCalls() { f.calls = nil }

// record logs a mutating call and returns the error FailOn holds for it.
func (f *Fake) record(format string, args ...any) error {
	c := fmt.Sprintf(format, args...)
	f.calls = append(f.calls, c)
	return f.FailOn[c]
}

// ListVirtualServers implements ipvs.Interface.
func (f *Fake) ListVirtualServers() ([]ipvs.VirtualServer, error) {
	out := []ipvs.VirtualServer{}
	for _, s := range f.services {
		out = append(out, s.vs)
	}
	slices.SortFunc(out, func(a, b ipvs.VirtualServer) int { return a.Key().Compare(b.Key()) })
	return out, nil
}

// AddVirtualServer implements ipvs.Interface.
func (f *Fake) AddVirtualServer(vs ipvs.VirtualServer) error {
	if err := f.record("AddVirtualServer %s", vs); err != nil {
		return err
	}
	if _, ok := f.services[vs.Key()]; ok {
		return fmt.Errorf("add virtual server %s: %w", vs, ipvs.ErrExists)
	}
	f.services[vs.Key()] = &service{vs: vs}
	return nil
}

// UpdateVirtualServer implements ipvs.Interface.
func (f *Fake) UpdateVirtualServer(vs ipvs.VirtualServer) error {
	if err := f.record("UpdateVirtualServer %s", vs); err != nil {
		return err
	}
	s, ok := f.services[vs.Key()]
	if !ok {
		return fmt.Errorf("update virtual server %s: %w", vs, ipvs.ErrNotFound)
	}
	s.vs = vs
	return nil
}

// DeleteVirtualServer implements ipvs.Interface.
func (f *Fake) DeleteVirtualServer(k ipvs.VirtualServerKey) error {
	if err := f.record("DeleteVirtualServer %s", k); err != nil {
		return err
	}
	delete(f.services, k)
	return nil
}

// ListRealServers implements ipvs.Interface.
func (f *Fake) ListRealServers(k ipvs.VirtualServerKey) ([]ipvs.RealServer, error) {
	s, ok := f.services[k]
	if !ok {
		return []ipvs.RealServer{}, nil
	}
	return slices.Clone(s.reals), nil
}

// AddRealServer implements ipvs.Interface.
func (f *Fake) AddRealServer(k ipvs.VirtualServerKey, rs ipvs.RealServer) error {
	if err := f.record("AddRealServer %s -> %s", k, rs); err != nil {
		return err
	}
	s, ok := f.services[k]
	if !ok {
		return fmt.Errorf("add real server to %s: %w", k, ipvs.ErrNotFound)
	}
	if slices.ContainsFunc(s.reals, func(h ipvs.RealServer) bool { return h.AddrPort() == rs.AddrPort() }) {
		return fmt.Errorf("add real server %s to %s: %w", rs, k, ipvs.ErrExists)
	}
	s.reals = append(s.reals, rs)
	return nil
}

// UpdateRealServer implements ipvs.Interface.
func (f *Fake) UpdateRealServer(k ipvs.VirtualServerKey, rs ipvs.RealServer) error {
	if err := f.record("UpdateRealServer %s -> %s", k, rs); err != nil {
		return err
	}
	s, ok := f.services[k]
	if !ok {
		return fmt.Errorf("update real server of %s: %w", k, ipvs.ErrNotFound)
	}
	i := slices.IndexFunc(s.reals, func(h ipvs.RealServer) bool { return h.AddrPort() == rs.AddrPort() })
	if i < 0 {
		return fmt.Errorf("update real server %s of %s: %w", rs, k, ipvs.ErrNotFound)
	}
	s.reals[i] = rs
	return nil
}

// DeleteRealServer implements ipvs.Interface.
func (f *Fake) DeleteRealServer(k ipvs.VirtualServerKey, rs ipvs.RealServer) error {
	if err := f.record("DeleteRealServer %s -> %s", k, rs.AddrPort()); err != nil {
		return err
	}
	if s, ok := f.services[k]; ok {
		s.reals = slices.DeleteFunc(s.reals, func(h ipvs.RealServer) bool { return h.AddrPort() == rs.AddrPort() })
	}
	return nil
}

// Dump prints the fake's virtual servers and real servers one a line,
// sorted, in the style of `ipvsadm -Ln`: a virtual server line, then its
// real servers indented with "  -> ".
func (f *Fake) Dump() string {
	vss, _ := f.ListVirtualServers()
	var b strings.Builder
	for _, vs := range vss {
		b.WriteString(vs.String() + "\n")
		reals := slices.Clone(f.services[vs.Key()].reals)
		slices.SortFunc(reals, func(a, c ipvs.RealServer) int { return a.AddrPort().Compare(c.AddrPort()) })
		for _, rs := range reals {
			b.WriteString("  -> " + rs.String() + "\n")
		}
	}
	return strings.TrimSuffix(b.String(), "\n")
}
