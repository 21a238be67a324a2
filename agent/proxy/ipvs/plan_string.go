package ipvs

import (
	"fmt"
	"strings"
)

// String prints the plan as a diff, one kernel operation a line in the
// order Apply runs them: "-" delete, "+" add, "~" change in place. An empty
// plan prints "no changes".
func (p Plan) String() string {
	var b strings.Builder
	line := func(op, format string, args ...any) {
		b.WriteString(op)
		b.WriteByte(' ')
		fmt.Fprintf(&b, format, args...)
		b.WriteByte('\n')
	}
	if p.EnsureDevice {
		line("+", "link %s (if missing)", DummyDevice)
	}
	for _, a := range p.Unbind {
		line("-", "address %s dev %s", a, DummyDevice)
	}
	for _, vs := range p.DeleteVirtualServers {
		line("-", "virtual-server %s (with its real servers)", vs)
	}
	for _, vs := range p.AddVirtualServers {
		line("+", "virtual-server %s", vs)
	}
	for _, c := range p.UpdateVirtualServers {
		line("~", "virtual-server %s (was %s)", c.New, c.Old)
	}
	for _, c := range p.AddRealServers {
		line("+", "real-server %s -> %s", c.VirtualServer, c.RealServer)
	}
	for _, c := range p.UpdateRealServers {
		line("~", "real-server %s -> %s", c.VirtualServer, c.RealServer)
	}
	for _, c := range p.DeleteRealServers {
		line("-", "real-server %s -> %s", c.VirtualServer, c.RealServer.AddrPort())
	}
	for _, a := range p.Bind {
		line("+", "address %s dev %s", a, DummyDevice)
	}
	if p.DeleteDevice {
		line("-", "link %s", DummyDevice)
	}
	if b.Len() == 0 {
		return "no changes"
	}
	return strings.TrimSuffix(b.String(), "\n")
}
