package routing

import (
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// nexthopIDBase is where Plexus starts numbering its nexthop objects. IDs
// are per namespace and shared with other software (FRR numbers from 1):
// starting high makes clashes unlikely, and IDs in use are skipped anyway.
// Ownership is by RouteProtocol, never by ID.
const nexthopIDBase uint32 = 0x50580000

// Why nexthop objects (Linux 5.3+): with the next hop inline, every route
// to a different gateway makes the kernel build its own fib_info, which
// costs ~70 µs a route on these machines (5,000 peers: ~0.4 s, also with
// `ip -batch`). A route that names a nexthop object skips that: 5,000
// nexthops plus 5,000 routes take ~0.1 s. Routes of one next hop share one
// object. On kernels without nexthop objects, routes carry the next hop
// inline.

// nhKey identifies a next hop: routes with equal keys share one object.
type nhKey struct {
	gw     netip.Addr
	oif    uint32
	onlink bool
}

// nexthops is the Netlink's view of nexthop objects and of which of
// Plexus's routes use which. It is loaded from the kernel before the first
// route operation and after anything that may have invalidated it.
type nexthops struct {
	loaded bool
	// legacy is set when the kernel has no nexthop objects.
	legacy bool
	// all holds every nexthop object of the namespace (for resolving routes
	// and for skipping used IDs); ours those of Plexus by key.
	all    map[uint32]kernelNexthop
	ours   map[nhKey]uint32
	refs   map[uint32]int
	routes map[netip.Prefix]uint32 // Plexus's routes -> nexthop ID (0: inline)
	next   uint32
	// kernelRoutes is the last dump of Plexus's routes, for ListRoutes.
	kernelRoutes []kernelRoute
}

// load reads nexthop objects and Plexus's routes from the kernel.
func (n *Netlink) load() error {
	nh := nexthops{
		all: map[uint32]kernelNexthop{}, ours: map[nhKey]uint32{}, refs: map[uint32]int{},
		routes: map[netip.Prefix]uint32{}, next: nexthopIDBase,
	}
	err := n.rt.dump(unix.RTM_GETNEXTHOP, nhmsgBody(unix.AF_UNSPEC, 0, 0), func(_ uint16, data []byte) {
		if k, ok := parseNexthop(data); ok {
			nh.all[k.id] = k
			if k.protocol == RouteProtocol && !k.group {
				nh.ours[nhKey{k.gw, k.oif, k.onlink}] = k.id
				nh.refs[k.id] += 0
			}
		}
	})
	switch {
	case n.inlineOnly:
		nh.legacy = true
	case errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EAFNOSUPPORT):
		nh.legacy = true
	case err != nil:
		return fmt.Errorf("list nexthop objects: %w", err)
	}
	// With strict checking the kernel itself keeps only main-table routes of
	// Plexus; the checks below also cover kernels that ignore the filter.
	req := rtmsgBody(unix.AF_UNSPEC, 0, RouteProtocol, 0, 0, 0)
	err = n.rt.dump(unix.RTM_GETROUTE, req, func(typ uint16, data []byte) {
		r, ok := parseRoute(data)
		if !ok || typ != unix.RTM_NEWROUTE || r.protocol != RouteProtocol || r.table != unix.RT_TABLE_MAIN {
			return
		}
		nh.kernelRoutes = append(nh.kernelRoutes, r)
		nh.routes[r.dst] = r.nhID
		if _, ok := nh.refs[r.nhID]; ok && r.nhID != 0 {
			nh.refs[r.nhID]++
		}
	})
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	nh.loaded = true
	n.nh = nh
	return nil
}

func (n *Netlink) ensureLoaded() error {
	if n.nh.loaded {
		return nil
	}
	return n.load()
}

// ListRoutes implements Interface. It always reads the kernel.
func (n *Netlink) ListRoutes() ([]Route, error) {
	if err := n.load(); err != nil {
		return nil, err
	}
	names := map[uint32]string{}
	name := func(idx uint32) string {
		if s, ok := names[idx]; ok {
			return s
		}
		if l, err := n.h.LinkByIndex(int(idx)); err == nil {
			names[idx] = l.Attrs().Name
		}
		return names[idx]
	}
	out := make([]Route, 0, len(n.nh.kernelRoutes))
	for _, kr := range n.nh.kernelRoutes {
		r := Route{Dst: kr.dst}
		switch {
		case kr.typ != unix.RTN_UNICAST || kr.multipath:
			// Not a shape Plexus writes: an empty next hop makes the planner
			// replace it.
		case kr.nhID != 0:
			if k, ok := n.nh.all[kr.nhID]; ok && !k.group {
				r.Via, r.Dev, r.OnLink = k.gw, name(k.oif), k.onlink
			}
		default:
			r.Via, r.Dev, r.OnLink = kr.gw, name(kr.oif), kr.onlink
		}
		out = append(out, r)
	}
	return out, nil
}

// AddRoutes implements Interface.
func (n *Netlink) AddRoutes(rs []Route) error {
	return n.writeRoutes("add", unix.NLM_F_CREATE|unix.NLM_F_EXCL, rs)
}

// ReplaceRoutes implements Interface.
func (n *Netlink) ReplaceRoutes(rs []Route) error {
	return n.writeRoutes("replace", unix.NLM_F_CREATE|unix.NLM_F_REPLACE, rs)
}

// writeRoutes creates the nexthop objects the routes need, writes the
// routes, and deletes nexthop objects no route uses any more.
func (n *Netlink) writeRoutes(op string, flags uint16, rs []Route) error {
	if len(rs) == 0 {
		return nil
	}
	if err := n.ensureLoaded(); err != nil {
		return err
	}
	errs := make([]error, len(rs))
	oifs := make([]uint32, len(rs))
	ids := make([]uint32, len(rs))
	var nhReqs []nlRequest
	var nhIDs []uint32
	for i, r := range rs {
		idx, err := n.ifindex(r.Dev)
		if err != nil {
			errs[i] = err
			continue
		}
		oifs[i] = uint32(idx)
		if n.nh.legacy {
			continue
		}
		key := nhKey{r.Via, uint32(idx), r.OnLink}
		id, ok := n.nh.ours[key]
		if !ok {
			id = n.allocID()
			n.nh.ours[key] = id
			n.nh.all[id] = kernelNexthop{id: id, protocol: RouteProtocol, gw: r.Via, oif: uint32(idx), onlink: r.OnLink}
			n.nh.refs[id] = 0
			nhReqs = append(nhReqs, nexthopRequest(id, r.Via, uint32(idx), r.OnLink))
			nhIDs = append(nhIDs, id)
		}
		ids[i] = id
	}
	failedNH := map[uint32]error{}
	if len(nhReqs) > 0 {
		nhErrs, err := n.rt.exec(nhReqs)
		if err != nil {
			n.nh.loaded = false
			return fmt.Errorf("create nexthop objects: %w", err)
		}
		for i, e := range nhErrs {
			if e != nil {
				failedNH[nhIDs[i]] = fmt.Errorf("create nexthop object %d: %w", nhIDs[i], e)
			}
		}
	}
	var reqs []nlRequest
	var which []int
	for i, r := range rs {
		if errs[i] != nil {
			continue
		}
		if e, ok := failedNH[ids[i]]; ok {
			errs[i] = e
			continue
		}
		reqs = append(reqs, routeRequest(flags, r, oifs[i], ids[i]))
		which = append(which, i)
	}
	rtErrs, err := n.rt.exec(reqs)
	if err != nil {
		n.nh.loaded = false
		return fmt.Errorf("%s %d routes: %w", op, len(reqs), err)
	}
	for k, e := range rtErrs {
		i := which[k]
		if e != nil {
			if errors.Is(e, unix.EEXIST) {
				e = fmt.Errorf("%w: %w", ErrExists, e)
			}
			errs[i] = e
			continue
		}
		dst := rs[i].Dst
		if old, ok := n.nh.routes[dst]; ok && old != 0 {
			n.nh.refs[old]--
		}
		n.nh.routes[dst] = ids[i]
		if ids[i] != 0 {
			n.nh.refs[ids[i]]++
		}
	}
	return errors.Join(routeErrors(op, rs, errs), n.collect())
}

// DelRoutes implements Interface.
func (n *Netlink) DelRoutes(rs []Route) error {
	if len(rs) == 0 {
		return nil
	}
	if err := n.ensureLoaded(); err != nil {
		return err
	}
	reqs := make([]nlRequest, len(rs))
	for i, r := range rs {
		reqs[i] = routeDelRequest(r.Dst)
	}
	errs, err := n.rt.exec(reqs)
	if err != nil {
		n.nh.loaded = false
		return fmt.Errorf("delete %d routes: %w", len(rs), err)
	}
	for i, e := range errs {
		if e != nil && !errors.Is(e, unix.ESRCH) && !errors.Is(e, unix.ENOENT) {
			continue
		}
		errs[i] = nil // gone, whether now or before
		if id := n.nh.routes[rs[i].Dst]; id != 0 {
			n.nh.refs[id]--
		}
		delete(n.nh.routes, rs[i].Dst)
	}
	return errors.Join(routeErrors("delete", rs, errs), n.collect())
}

// collect deletes Plexus's nexthop objects that no route uses.
func (n *Netlink) collect() error {
	var reqs []nlRequest
	var ids []uint32
	for id, refs := range n.nh.refs {
		if refs <= 0 {
			reqs = append(reqs, nexthopDelRequest(id))
			ids = append(ids, id)
		}
	}
	if len(reqs) == 0 {
		return nil
	}
	errs, err := n.rt.exec(reqs)
	if err != nil {
		n.nh.loaded = false
		return fmt.Errorf("delete unused nexthop objects: %w", err)
	}
	var out []error
	for i, e := range errs {
		if e != nil && !errors.Is(e, unix.ENOENT) {
			out = append(out, fmt.Errorf("delete unused nexthop object %d: %w", ids[i], e))
			n.nh.loaded = false
			continue
		}
		k := n.nh.all[ids[i]]
		delete(n.nh.ours, nhKey{k.gw, k.oif, k.onlink})
		delete(n.nh.all, ids[i])
		delete(n.nh.refs, ids[i])
	}
	return errors.Join(out...)
}

// allocID returns the next nexthop ID that nothing in the namespace uses.
func (n *Netlink) allocID() uint32 {
	for {
		id := n.nh.next
		n.nh.next++
		if n.nh.next == 0 {
			n.nh.next = nexthopIDBase
		}
		if _, used := n.nh.all[id]; !used && id != 0 {
			return id
		}
	}
}

// routeErrors joins the per-route errors, each naming its route.
func routeErrors(op string, rs []Route, errs []error) error {
	var out []error
	for i, e := range errs {
		if e != nil {
			out = append(out, &RouteError{Op: op, Route: rs[i], Err: e})
		}
	}
	return errors.Join(out...)
}
