package routing

import (
	"errors"
	"fmt"
)

// Apply carries out plan through nl, in the order that keeps pods
// connected: stale entries first, then the device, then new entries, then
// routes (a route needs its device and, over VXLAN, its neighbour). It goes
// on after a failed step and returns every error joined; the caller should
// then read the kernel state afresh before the next plan. When the device
// cannot be created, the entries and routes on it are skipped.
func Apply(nl Interface, plan Plan) error {
	var errs []error
	fail := func(err error, format string, args ...any) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), err))
		}
	}
	if len(plan.DeleteRoutes) > 0 {
		fail(nl.DelRoutes(plan.DeleteRoutes), "delete %d routes", len(plan.DeleteRoutes))
	}
	for _, n := range plan.DeleteNeighbors {
		fail(nl.DelNeighbor(plan.Device, n), "delete neigh %s dev %s", n, plan.Device)
	}
	for _, e := range plan.DeleteFDB {
		fail(nl.DelFDB(plan.Device, e), "delete fdb %s dev %s", e, plan.Device)
	}
	for _, a := range plan.DeleteAddresses {
		fail(nl.DelAddress(plan.Device, a), "delete address %s dev %s", a, plan.Device)
	}
	if plan.DeleteDevice != "" {
		fail(nl.DelLink(plan.DeleteDevice), "delete link %s", plan.DeleteDevice)
	}
	deviceOK := true
	if d := plan.CreateDevice; d != nil {
		if err := nl.AddVXLAN(*d); err != nil {
			fail(err, "create %s", d)
			deviceOK = false
		}
	}
	if d := plan.UpdateDevice; d != nil {
		fail(nl.UpdateVXLAN(*d), "update link %s to mtu %d %s", d.Name, d.MTU, upDown(d.Up))
	}
	if deviceOK {
		for _, a := range plan.AddAddresses {
			fail(nl.AddAddress(plan.Device, a), "add address %s dev %s", a, plan.Device)
		}
		for _, e := range plan.AddFDB {
			fail(nl.SetFDB(plan.Device, e), "add fdb %s dev %s", e, plan.Device)
		}
		for _, n := range plan.AddNeighbors {
			fail(nl.SetNeighbor(plan.Device, n), "add neigh %s dev %s", n, plan.Device)
		}
	}
	var replace, add []Route
	for _, c := range plan.ReplaceRoutes {
		if deviceOK || c.New.Dev != plan.Device {
			replace = append(replace, c.New)
		}
	}
	for _, r := range plan.AddRoutes {
		if deviceOK || r.Dev != plan.Device {
			add = append(add, r)
		}
	}
	if len(replace) > 0 {
		fail(nl.ReplaceRoutes(replace), "replace %d routes", len(replace))
	}
	if len(add) > 0 {
		fail(nl.AddRoutes(add), "add %d routes", len(add))
	}
	if !deviceOK {
		errs = append(errs, fmt.Errorf("skipped the entries and routes on %s: it could not be created", plan.Device))
	}
	return errors.Join(errs...)
}
