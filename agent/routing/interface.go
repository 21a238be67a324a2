package routing

import (
	"errors"
	"fmt"
	"net/netip"
)

// RouteProtocol marks every route Plexus makes (rtm_protocol). Plexus lists,
// replaces and deletes only routes carrying it, so routes of the kernel, of
// DHCP, of an admin or of another network plugin are never touched. 112
// (ASCII "p") is unassigned in iproute2's rt_protos and unused by the common
// plugins (Calico uses 80, BIRD 12, Zebra/FRR 11, 186-192).
const RouteProtocol = 112

// ErrExists is wrapped by Interface errors when the kernel already has an
// object with that key (for a route: one with the same destination, maybe
// not made by Plexus).
var ErrExists = errors.New("already exists")

// Interface is the routing data plane of one network namespace, in domain
// terms. Implementations: NewNetlink (the kernel) and routingfake.Fake.
// Device names are resolved by the implementation.
type Interface interface {
	// ListRoutes returns the routes marked with RouteProtocol in the main
	// table, both families. None is an empty list, not an error.
	ListRoutes() ([]Route, error)
	// AddRoutes adds routes marked with RouteProtocol, as one batch. A route
	// whose destination any route (of anyone) already has fails with an
	// error wrapping ErrExists; the others are added all the same. The
	// error joins one *RouteError per failed route.
	AddRoutes(rs []Route) error
	// ReplaceRoutes replaces the routes to the same destinations, each
	// atomically, as one batch. Callers use it only for destinations
	// ListRoutes returned. Errors as for AddRoutes.
	ReplaceRoutes(rs []Route) error
	// DelRoutes deletes Plexus's routes to the routes' destinations (never
	// a route not marked with RouteProtocol), as one batch; a route that is
	// gone already is not an error. Errors as for AddRoutes.
	DelRoutes(rs []Route) error

	// GetVXLAN returns the VXLAN device called name, or nil and no error if
	// there is no link with that name. A link with that name that is not a
	// VXLAN device is an error.
	GetVXLAN(name string) (*VXLANDevice, error)
	// AddVXLAN creates the device d (learning off) and sets it up.
	AddVXLAN(d VXLANDevice) error
	// UpdateVXLAN sets the MTU and up state of the existing device d.Name.
	UpdateVXLAN(d VXLANDevice) error
	// DelLink deletes the link called name; no such link is not an error.
	DelLink(name string) error

	// ListAddresses returns the global (non link-local) addresses on dev.
	ListAddresses(dev string) ([]netip.Prefix, error)
	// AddAddress adds a to dev, usable at once (no IPv6 DAD).
	AddAddress(dev string, a netip.Prefix) error
	// DelAddress removes a from dev; absent is not an error.
	DelAddress(dev string, a netip.Prefix) error

	// ListFDB returns the permanent FDB entries with a remote on dev.
	ListFDB(dev string) ([]FDBEntry, error)
	// SetFDB adds e to dev, replacing the entry for e.MAC.
	SetFDB(dev string, e FDBEntry) error
	// DelFDB deletes e from dev; absent is not an error.
	DelFDB(dev string, e FDBEntry) error

	// ListNeighbors returns the permanent neighbour entries on dev.
	ListNeighbors(dev string) ([]Neighbor, error)
	// SetNeighbor adds n to dev as permanent, replacing the entry for n.IP.
	SetNeighbor(dev string, n Neighbor) error
	// DelNeighbor deletes n from dev; absent is not an error.
	DelNeighbor(dev string, n Neighbor) error
}

// RouteError is the failure of one route in a batch.
type RouteError struct {
	// Op is "add", "replace" or "delete".
	Op string
	// Route is the route concerned.
	Route Route
	// Err is the cause.
	Err error
}

// Error names the route and, for a clash, what to do about it.
func (e *RouteError) Error() string {
	s := fmt.Sprintf("%s route %s: %v", e.Op, e.Route, e.Err)
	if errors.Is(e.Err, ErrExists) {
		s += " (a route not made by Plexus holds this destination; remove it or fix the overlap)"
	}
	return s
}

// Unwrap returns the cause.
func (e *RouteError) Unwrap() error { return e.Err }
