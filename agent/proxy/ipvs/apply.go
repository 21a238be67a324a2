package ipvs

import (
	"errors"
	"fmt"
)

// Apply carries out plan through ipvs and binder in the order of the
// Plan's fields. It goes on after a failed step and returns every error
// joined; the caller should then read the kernel afresh before the next
// plan. Real servers of a virtual server that could not be created are
// skipped, and so is binding when the device could not be made.
func Apply(ipvs Interface, binder Binder, plan Plan) error {
	var errs []error
	fail := func(err error) bool {
		if err != nil {
			errs = append(errs, err)
		}
		return err != nil
	}
	deviceOK := true
	if plan.EnsureDevice {
		deviceOK = !fail(wrap(binder.EnsureDevice(), "create %s", DummyDevice))
	}
	for _, a := range plan.Unbind {
		fail(wrap(binder.Unbind(a), "unbind %s", a))
	}
	for _, vs := range plan.DeleteVirtualServers {
		fail(ipvs.DeleteVirtualServer(vs.Key()))
	}
	missing := map[VirtualServerKey]bool{}
	for _, vs := range plan.AddVirtualServers {
		if fail(ipvs.AddVirtualServer(vs)) {
			missing[vs.Key()] = true
		}
	}
	for _, c := range plan.UpdateVirtualServers {
		fail(ipvs.UpdateVirtualServer(c.New))
	}
	for _, c := range plan.AddRealServers {
		if !missing[c.VirtualServer] {
			fail(ipvs.AddRealServer(c.VirtualServer, c.RealServer))
		}
	}
	for _, c := range plan.UpdateRealServers {
		fail(ipvs.UpdateRealServer(c.VirtualServer, c.RealServer))
	}
	for _, c := range plan.DeleteRealServers {
		fail(ipvs.DeleteRealServer(c.VirtualServer, c.RealServer))
	}
	if deviceOK {
		for _, a := range plan.Bind {
			fail(wrap(binder.Bind(a), "bind %s", a))
		}
	} else if len(plan.Bind) > 0 {
		errs = append(errs, fmt.Errorf("skipped binding %d virtual IPs: %s could not be created", len(plan.Bind), DummyDevice))
	}
	if plan.DeleteDevice {
		fail(wrap(binder.DeleteDevice(), "delete %s", DummyDevice))
	}
	return errors.Join(errs...)
}

// wrap adds context to a non-nil error.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), err)
}
