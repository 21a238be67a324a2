// Package routingfake is a stateful in-memory routing.Interface for unit
// tests. It behaves like the kernel where Plexus depends on it: a route's
// destination is its key across owners, deleting a link drops its routes
// and entries, and only routes marked as Plexus's are listed or deleted.
package routingfake

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/plexus-net/plexus/agent/routing"
)

// Route is a route in the fake kernel with its owner.
type Route struct {
	routing.Route
	// Foreign marks a route not made by Plexus (another protocol).
	Foreign bool
}

// link is one interface in the fake kernel.
type link struct {
	vxlan     *routing.VXLANDevice // nil for a plain interface
	addresses []netip.Prefix
	fdb       []routing.FDBEntry
	neighbors []routing.Neighbor
}

// Fake is the fake kernel. Create it with New.
type Fake struct {
	links  map[string]*link
	routes []Route
	calls  []string
	// FailOn makes a mutating call fail: the key is the call as Calls
	// records it (e.g. "AddRoute 10.244.2.0/24 via 10.99.0.12 dev eth0").
	FailOn map[string]error
}

var _ routing.Interface = &Fake{}

// New returns a fake kernel holding the plain interfaces named (e.g. the
// uplink), and nothing else.
func New(interfaces ...string) *Fake {
	f := &Fake{links: map[string]*link{}, FailOn: map[string]error{}}
	for _, name := range interfaces {
		f.links[name] = &link{}
	}
	return f
}

// AddForeignRoute puts a route made by someone else into the fake kernel.
func (f *Fake) AddForeignRoute(r routing.Route) {
	f.routes = append(f.routes, Route{Route: r, Foreign: true})
}

// AllRoutes returns every route, Plexus's and foreign, sorted by
// destination.
func (f *Fake) AllRoutes() []Route {
	out := slices.Clone(f.routes)
	slices.SortFunc(out, func(a, b Route) int { return strings.Compare(a.Dst.String(), b.Dst.String()) })
	return out
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

func (f *Fake) routeIndex(dst netip.Prefix) int {
	return slices.IndexFunc(f.routes, func(r Route) bool { return r.Dst == dst })
}

// ListRoutes implements routing.Interface.
func (f *Fake) ListRoutes() ([]routing.Route, error) {
	var out []routing.Route
	for _, r := range f.routes {
		if !r.Foreign {
			out = append(out, r.Route)
		}
	}
	return out, nil
}

// AddRoutes implements routing.Interface. Each route is recorded as a call
// of its own ("AddRoute <route>").
func (f *Fake) AddRoutes(rs []routing.Route) error { return f.each("add", rs, f.addRoute) }

// ReplaceRoutes implements routing.Interface ("ReplaceRoute <route>").
func (f *Fake) ReplaceRoutes(rs []routing.Route) error { return f.each("replace", rs, f.replaceRoute) }

// DelRoutes implements routing.Interface ("DelRoute <route>").
func (f *Fake) DelRoutes(rs []routing.Route) error { return f.each("delete", rs, f.delRoute) }

// each applies fn to every route and joins the failures as the kernel
// implementation does.
func (f *Fake) each(op string, rs []routing.Route, fn func(routing.Route) error) error {
	var errs []error
	for _, r := range rs {
		if err := fn(r); err != nil {
			errs = append(errs, &routing.RouteError{Op: op, Route: r, Err: err})
		}
	}
	return errors.Join(errs...)
}

func (f *Fake) addRoute(r routing.Route) error {
	if err := f.record("AddRoute %s", r); err != nil {
		return err
	}
	if _, ok := f.links[r.Dev]; !ok {
		return fmt.Errorf("no such device %s", r.Dev)
	}
	if f.routeIndex(r.Dst) >= 0 {
		return routing.ErrExists
	}
	f.routes = append(f.routes, Route{Route: r})
	return nil
}

func (f *Fake) replaceRoute(r routing.Route) error {
	if err := f.record("ReplaceRoute %s", r); err != nil {
		return err
	}
	if _, ok := f.links[r.Dev]; !ok {
		return fmt.Errorf("no such device %s", r.Dev)
	}
	if i := f.routeIndex(r.Dst); i >= 0 {
		f.routes[i] = Route{Route: r} // like the kernel: whoever owned it
		return nil
	}
	f.routes = append(f.routes, Route{Route: r})
	return nil
}

func (f *Fake) delRoute(r routing.Route) error {
	if err := f.record("DelRoute %s", r); err != nil {
		return err
	}
	f.routes = slices.DeleteFunc(f.routes, func(have Route) bool { return !have.Foreign && have.Dst == r.Dst })
	return nil
}

// GetVXLAN implements routing.Interface.
func (f *Fake) GetVXLAN(name string) (*routing.VXLANDevice, error) {
	l, ok := f.links[name]
	switch {
	case !ok:
		return nil, nil
	case l.vxlan == nil:
		return nil, fmt.Errorf("link %s is not a VXLAN device", name)
	}
	d := *l.vxlan
	d.MAC = bytes.Clone(d.MAC)
	return &d, nil
}

// AddVXLAN implements routing.Interface.
func (f *Fake) AddVXLAN(d routing.VXLANDevice) error {
	if err := f.record("AddVXLAN %s", &d); err != nil {
		return err
	}
	if _, ok := f.links[d.Name]; ok {
		return fmt.Errorf("link %s: %w", d.Name, routing.ErrExists)
	}
	if _, ok := f.links[d.Uplink]; !ok {
		return fmt.Errorf("no such device %s", d.Uplink)
	}
	d.MAC = bytes.Clone(d.MAC)
	f.links[d.Name] = &link{vxlan: &d}
	return nil
}

// UpdateVXLAN implements routing.Interface.
func (f *Fake) UpdateVXLAN(d routing.VXLANDevice) error {
	if err := f.record("UpdateVXLAN %s mtu %d up %t", d.Name, d.MTU, d.Up); err != nil {
		return err
	}
	l, ok := f.links[d.Name]
	if !ok || l.vxlan == nil {
		return fmt.Errorf("no VXLAN device %s", d.Name)
	}
	l.vxlan.MTU, l.vxlan.Up = d.MTU, d.Up
	return nil
}

// DelLink implements routing.Interface. Like the kernel, it drops every
// route through the link, foreign or not.
func (f *Fake) DelLink(name string) error {
	if err := f.record("DelLink %s", name); err != nil {
		return err
	}
	delete(f.links, name)
	f.routes = slices.DeleteFunc(f.routes, func(r Route) bool { return r.Dev == name })
	return nil
}

// SetVXLANDown marks the device down, as an admin might (for drift tests).
func (f *Fake) SetVXLANDown(name string) {
	if l, ok := f.links[name]; ok && l.vxlan != nil {
		l.vxlan.Up = false
	}
}
