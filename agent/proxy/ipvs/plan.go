package ipvs

import (
	"net/netip"
	"slices"
)

// Plan is what Apply must do to turn the current state into the desired
// one. The zero Plan does nothing.
type Plan struct {
	// EnsureDevice is set when the dummy device is wanted and missing, or
	// may be (it has no address yet and some are to be bound).
	EnsureDevice bool
	// Unbind are virtual IPs no longer wanted. Unbound first, so that no
	// packet reaches a virtual server while it is deleted.
	Unbind []netip.Addr
	// DeleteVirtualServers are stale virtual servers (their real servers go
	// with them).
	DeleteVirtualServers []VirtualServer
	// AddVirtualServers are new virtual servers.
	AddVirtualServers []VirtualServer
	// UpdateVirtualServers change scheduler or persistence in place.
	UpdateVirtualServers []VirtualServerChange
	// AddRealServers, UpdateRealServers and DeleteRealServers change the
	// destinations of surviving or new virtual servers. New ones are added
	// before stale ones go, so a virtual server whose endpoints are all
	// replaced never has none.
	AddRealServers []RealServerChange
	// UpdateRealServers change a weight in place.
	UpdateRealServers []RealServerChange
	// DeleteRealServers are stale destinations.
	DeleteRealServers []RealServerChange
	// Bind are new virtual IPs, bound last: a virtual IP is local (and
	// answered) only once its virtual servers are complete.
	Bind []netip.Addr
	// DeleteDevice removes the dummy device (the mode is turned off),
	// after everything else.
	DeleteDevice bool
}

// VirtualServerChange is a virtual server changed in place.
type VirtualServerChange struct {
	// Old is what the kernel has.
	Old VirtualServer
	// New is what it gets.
	New VirtualServer
}

// RealServerChange is one real server operation on a virtual server.
type RealServerChange struct {
	// VirtualServer is the key of the virtual server concerned.
	VirtualServer VirtualServerKey
	// RealServer is the real server added, updated or deleted.
	RealServer RealServer
}

// Changes counts the kernel operations the plan needs.
func (p Plan) Changes() int {
	n := len(p.Unbind) + len(p.DeleteVirtualServers) + len(p.AddVirtualServers) + len(p.UpdateVirtualServers) +
		len(p.AddRealServers) + len(p.UpdateRealServers) + len(p.DeleteRealServers) + len(p.Bind)
	if p.EnsureDevice {
		n++
	}
	if p.DeleteDevice {
		n++
	}
	return n
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool { return p.Changes() == 0 }

// PlanChanges compares the desired and current states (both as Sort
// leaves them; current as Read returns it) and returns the plan that makes
// the kernel match desired. It is pure.
func PlanChanges(desired, current State) Plan {
	var p Plan
	p.Unbind, p.Bind = diffAddrs(desired.Bound, current.Bound)
	// Bound addresses prove the device; binding some makes it wanted.
	wantDevice := desired.Device || len(desired.Bound) > 0
	haveDevice := current.Device || len(current.Bound) > 0
	p.EnsureDevice = wantDevice && (!haveDevice || (len(current.Bound) == 0 && len(p.Bind) > 0))
	p.DeleteDevice = !wantDevice && haveDevice

	have := make(map[VirtualServerKey]Service, len(current.Services))
	for _, s := range current.Services {
		have[s.VirtualServer.Key()] = s
	}
	want := make(map[VirtualServerKey]bool, len(desired.Services))
	for _, d := range desired.Services {
		key := d.VirtualServer.Key()
		want[key] = true
		c, ok := have[key]
		switch {
		case !ok:
			p.AddVirtualServers = append(p.AddVirtualServers, d.VirtualServer)
		case !c.VirtualServer.Equal(d.VirtualServer):
			p.UpdateVirtualServers = append(p.UpdateVirtualServers, VirtualServerChange{Old: c.VirtualServer, New: d.VirtualServer})
		}
		add, upd, del := diffRealServers(d.RealServers, c.RealServers)
		p.AddRealServers = appendChanges(p.AddRealServers, key, add)
		p.UpdateRealServers = appendChanges(p.UpdateRealServers, key, upd)
		p.DeleteRealServers = appendChanges(p.DeleteRealServers, key, del)
	}
	for _, c := range current.Services {
		if !want[c.VirtualServer.Key()] {
			p.DeleteVirtualServers = append(p.DeleteVirtualServers, c.VirtualServer)
		}
	}
	return p
}

func appendChanges(to []RealServerChange, key VirtualServerKey, rss []RealServer) []RealServerChange {
	for _, rs := range rss {
		to = append(to, RealServerChange{VirtualServer: key, RealServer: rs})
	}
	return to
}

// diffAddrs returns what to remove from have and add to it to get want.
func diffAddrs(want, have []netip.Addr) (del, add []netip.Addr) {
	for _, h := range have {
		if !slices.Contains(want, h) {
			del = append(del, h)
		}
	}
	for _, w := range want {
		if !slices.Contains(have, w) && !slices.Contains(add, w) {
			add = append(add, w)
		}
	}
	return del, add
}

// diffRealServers keys real servers by address and port: a changed weight
// is updated in place.
func diffRealServers(want, have []RealServer) (add, upd, del []RealServer) {
	haveBy := make(map[netip.AddrPort]RealServer, len(have))
	for _, h := range have {
		haveBy[h.AddrPort()] = h
	}
	wantBy := make(map[netip.AddrPort]bool, len(want))
	for _, w := range want {
		wantBy[w.AddrPort()] = true
		h, ok := haveBy[w.AddrPort()]
		switch {
		case !ok:
			add = append(add, w)
		case !h.Equal(w):
			upd = append(upd, w)
		}
	}
	for _, h := range have {
		if !wantBy[h.AddrPort()] {
			del = append(del, h)
		}
	}
	return add, upd, del
}
