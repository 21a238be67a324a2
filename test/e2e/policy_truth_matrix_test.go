package e2e

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// The truth table's matrices: for every kind of probe (protocol, port, family), which of the nine
// pods reaches which. Expectations are written as predicates in Kubernetes terms ("anything into
// namespace x is denied unless it comes from y"), evaluated over every cell; observations come
// from real packets. A failure prints both side by side, per kind, with the cells that differ
// marked.

// probeKind is what one cell probes: a protocol, a port and an address family.
type probeKind struct {
	proto string // tcp, udp, sctp
	port  int32
	v6    bool
}

func (k probeKind) String() string {
	fam := "IPv4"
	if k.v6 {
		fam = "IPv6"
	}
	return fmt.Sprintf("%s/%d %s", strings.ToUpper(k.proto), k.port, fam)
}

// truthPorts and truthProtocols are what every pod serves (hack/images/echo -serve).
var (
	truthPorts     = []int32{80, 81}
	truthProtocols = []string{"tcp", "udp", "sctp"}
)

// probeKinds are every kind the suite probes, in print order; families are those of the lab.
func probeKinds(families []bool) []probeKind {
	var out []probeKind
	for _, v6 := range families {
		for _, proto := range truthProtocols {
			for _, port := range truthPorts {
				out = append(out, probeKind{proto: proto, port: port, v6: v6})
			}
		}
	}
	return out
}

// truthPod is one of the nine pods.
type truthPod struct {
	ns   string // x, y, z (the namespace is truthNamespace(ns))
	name string // a, b, c
	node int    // lab node 1..3
	ips  []netip.Addr
}

// id is "x/a".
func (p *truthPod) id() string { return p.ns + "/" + p.name }

// ip is the pod's address of a family.
func (p *truthPod) ip(v6 bool) netip.Addr {
	for _, a := range p.ips {
		if a.Is6() == v6 {
			return a
		}
	}
	return netip.Addr{}
}

// is says whether the pod is "x/a".
func (p *truthPod) is(id string) bool { return p.id() == id }

// allowFunc says whether traffic of kind k from one pod to another should pass. The loopback
// (a pod to itself) is never asked: it stays inside the pod and always passes.
type allowFunc func(from, to *truthPod, k probeKind) bool

// matrix is one observed or expected truth table: cell[kind][from][to].
type matrix map[probeKind][][]bool

// expectedMatrix evaluates allowed over every cell.
func expectedMatrix(pods []*truthPod, kinds []probeKind, allowed allowFunc) matrix {
	m := matrix{}
	for _, k := range kinds {
		m[k] = make([][]bool, len(pods))
		for i, from := range pods {
			m[k][i] = make([]bool, len(pods))
			for j, to := range pods {
				m[k][i][j] = i == j || allowed(from, to, k)
			}
		}
	}
	return m
}

// extraProbe is a probe outside the 9x9 table: to a Service, the API server, DNS, or from a node.
type extraProbe struct {
	// from is a pod id ("x/a") or "node<i>".
	from string
	// target is as the probe takes it: <proto>/<address>:<port>.
	target string
	// what says in words what the target is.
	what string
	want bool
}

// observation is what one probe round saw.
type observation struct {
	cells matrix
	// extras holds the outcome of each extra probe, by index; errs the reason for a failure.
	extras []bool
	errs   map[string]string
}

// mismatches counts the cells and extras where the observation differs from the expectation.
func mismatches(want matrix, extras []extraProbe, got observation) int {
	n := 0
	for k, rows := range want {
		for i := range rows {
			for j := range rows[i] {
				if got.cells[k] == nil || got.cells[k][i][j] != rows[i][j] {
					n++
				}
			}
		}
	}
	for i, e := range extras {
		if i >= len(got.extras) || got.extras[i] != e.want {
			n++
		}
	}
	return n
}

// sideBySide prints, for every kind with a wrong cell, the expected and the observed matrix next
// to each other ("." reaches, "X" does not, "*" marks a cell that differs), then every extra
// probe with its expected and observed outcome.
func sideBySide(pods []*truthPod, kinds []probeKind, want matrix, extras []extraProbe, got observation) string {
	var b strings.Builder
	mark := func(v bool) string {
		if v {
			return "."
		}
		return "X"
	}
	header := "      " + strings.Join(podIDs(pods), " ")
	for _, k := range kinds {
		wrong := 0
		for i := range pods {
			for j := range pods {
				if got.cells[k][i][j] != want[k][i][j] {
					wrong++
				}
			}
		}
		if wrong == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s: %d of %d cells differ (rows: from, columns: to; . reaches, X does not, * differs)\n", k, wrong, len(pods)*len(pods))
		fmt.Fprintf(&b, "  expected%s   observed\n", strings.Repeat(" ", len(header)-8))
		fmt.Fprintf(&b, "  %s   %s\n", header, header)
		for i, from := range pods {
			var w, o []string
			for j := range pods {
				w = append(w, " "+mark(want[k][i][j])+" ")
				cell := " " + mark(got.cells[k][i][j])
				if got.cells[k][i][j] != want[k][i][j] {
					cell += "*"
				} else {
					cell += " "
				}
				o = append(o, cell)
			}
			fmt.Fprintf(&b, "  %-5s %s   %-5s %s\n", from.id(), strings.Join(w, " "), from.id(), strings.Join(o, " "))
		}
	}
	for i, e := range extras {
		obs := i < len(got.extras) && got.extras[i]
		flag := "  "
		if obs != e.want {
			flag = "* "
		}
		reason := ""
		if !obs {
			reason = " (" + got.errs[e.from+" "+e.target] + ")"
		}
		fmt.Fprintf(&b, "%s%s -> %s %s: expected %s, observed %s%s\n", flag, e.from, e.target, e.what,
			reachWord(e.want), reachWord(obs), reason)
	}
	return b.String()
}

func reachWord(v bool) string {
	if v {
		return "reaches"
	}
	return "does not reach"
}

// podIDs are the pods' ids, padded to one width.
func podIDs(pods []*truthPod) []string {
	return slices.Collect(func(yield func(string) bool) {
		for _, p := range pods {
			if !yield(fmt.Sprintf("%-3s", p.id())) {
				return
			}
		}
	})
}
