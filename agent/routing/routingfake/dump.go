package routingfake

import (
	"slices"
	"strings"
)

// Dump prints the fake kernel's state one object a line, sorted, in the
// style of iproute2: "route ..." (foreign routes end in "proto foreign"),
// "link ...", "address ...", "fdb ...", "neigh ...". Plain interfaces are
// not listed.
func (f *Fake) Dump() string {
	var lines []string
	for _, r := range f.routes {
		l := "route " + r.String()
		if r.Foreign {
			l += " proto foreign"
		}
		lines = append(lines, l)
	}
	for name, l := range f.links {
		if l.vxlan == nil {
			continue
		}
		lines = append(lines, "link "+l.vxlan.String())
		for _, a := range l.addresses {
			lines = append(lines, "address "+a.String()+" dev "+name)
		}
		for _, e := range l.fdb {
			lines = append(lines, "fdb "+e.String()+" dev "+name)
		}
		for _, n := range l.neighbors {
			lines = append(lines, "neigh "+n.String()+" dev "+name)
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
