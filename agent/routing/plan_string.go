package routing

import (
	"fmt"
	"strings"
)

// String prints the plan as a diff, one kernel operation a line in the
// order Apply runs them: "-" delete, "+" add, "~" change in place, "!" a
// peer pod CIDR left without a route. An empty plan prints "no changes".
func (p Plan) String() string {
	var b strings.Builder
	line := func(op, format string, args ...any) {
		b.WriteString(op)
		b.WriteByte(' ')
		fmt.Fprintf(&b, format, args...)
		b.WriteByte('\n')
	}
	for _, r := range p.DeleteRoutes {
		line("-", "route %s", r)
	}
	for _, n := range p.DeleteNeighbors {
		line("-", "neigh %s dev %s", n, p.Device)
	}
	for _, e := range p.DeleteFDB {
		line("-", "fdb %s dev %s", e, p.Device)
	}
	for _, a := range p.DeleteAddresses {
		line("-", "address %s dev %s", a, p.Device)
	}
	if p.DeleteDevice != "" {
		line("-", "link %s (with its entries and routes)", p.DeleteDevice)
	}
	if p.CreateDevice != nil {
		line("+", "link %s", p.CreateDevice)
	}
	if p.UpdateDevice != nil {
		line("~", "link %s mtu %d %s", p.UpdateDevice.Name, p.UpdateDevice.MTU, upDown(p.UpdateDevice.Up))
	}
	for _, a := range p.AddAddresses {
		line("+", "address %s dev %s", a, p.Device)
	}
	for _, e := range p.AddFDB {
		line("+", "fdb %s dev %s", e, p.Device)
	}
	for _, n := range p.AddNeighbors {
		line("+", "neigh %s dev %s", n, p.Device)
	}
	for _, c := range p.ReplaceRoutes {
		line("~", "route %s (was %s)", c.New, c.Old)
	}
	for _, r := range p.AddRoutes {
		line("+", "route %s", r)
	}
	for _, u := range p.Unroutable {
		line("!", "%s", u)
	}
	if b.Len() == 0 {
		return "no changes"
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}
