package hostport

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/knftables"

	"github.com/plexus-net/plexus/internal/ipfamily"
)

// TableName is the host-port table; it lives in the inet family, one table for both families.
const TableName = "plexus-hostport"

// Chain, map and set names of the table.
const (
	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPostrouting = "postrouting"
	chainHostPorts   = "hostports"
	mapHostIP        = "hostip"
	mapAnyIP         = "anyip"
	setHairpin       = "hairpin"
)

// priorityBeforeProxy is dstnat (-100) - 1, as a number (nft 1.0.6 takes the name "dstnat" only
// with some hooks). The kernel gives a new connection the NAT binding of the first nat chain of
// a hook that makes one and skips the later ones, so the host-port DNAT precedes the service
// proxy's (inet plexus-proxy at dstnat): a pod's explicit claim on an address and port of its
// node wins over a NodePort on the same port, and the proxy never sees the connection.
const priorityBeforeProxy knftables.BaseChainPriority = "-101"

// fam holds the per-family spellings.
type fam struct {
	family ipfamily.Family
	ip     string // nft address expression prefix: ip or ip6
	nfp    string // meta nfproto value
	addr   string // set element type of an address
	suffix string
}

var fams = []fam{
	{ipfamily.IPv4, "ip", "ipv4", "ipv4_addr", "-v4"},
	{ipfamily.IPv6, "ip6", "ipv6", "ipv6_addr", "-v6"},
}

func famOf(f ipfamily.Family) fam {
	if f == ipfamily.IPv6 {
		return fams[1]
	}
	return fams[0]
}

// Layout names the chains a tracer follows: the DNAT dispatch (entered from the prerouting and
// output base chains for local destinations) and nat postrouting.
var Layout = struct{ DNAT, Postrouting string }{chainHostPorts, chainPostrouting}

// structure returns the table's constant objects in creation order: base chains, the dispatch
// chain, the maps and sets of both families and the rules. Nothing here depends on the pods.
func structure() []knftables.Object {
	objs := []knftables.Object{
		&knftables.Table{Comment: knftables.PtrTo("Plexus host ports (CNI portMappings)")},
		baseChain(chainPrerouting, knftables.PreroutingHook, priorityBeforeProxy),
		baseChain(chainOutput, knftables.OutputHook, priorityBeforeProxy),
		baseChain(chainPostrouting, knftables.PostroutingHook, knftables.SNATPriority),
		&knftables.Chain{Name: chainHostPorts},
	}
	for _, f := range fams {
		objs = append(objs,
			&knftables.Map{Name: mapHostIP + f.suffix, TypeOf: f.ip + " daddr . meta l4proto . th dport : " + f.ip + " daddr . th dport"},
			&knftables.Map{Name: mapAnyIP + f.suffix, TypeOf: "meta l4proto . th dport : " + f.ip + " daddr . th dport"},
			&knftables.Set{Name: setHairpin + f.suffix, Type: f.addr + " . " + f.addr},
		)
	}
	rule := func(chain string, words ...any) {
		objs = append(objs, &knftables.Rule{Chain: chain, Rule: knftables.Concat(words...)})
	}
	// Only destinations that are this node's own addresses (any of them, loopback included): a
	// wildcard host port must never catch traffic that passes through the node to a pod or
	// elsewhere on the same port.
	rule(chainPrerouting, "fib daddr type local jump", chainHostPorts)
	rule(chainOutput, "fib daddr type local jump", chainHostPorts)
	for _, f := range fams {
		// A specific host address first, then the wildcard: for its own address the specific
		// mapping wins. A failed map lookup ends the rule, not the chain.
		rule(chainHostPorts, "meta nfproto", f.nfp, "dnat", f.ip, "to", f.ip, "daddr . meta l4proto . th dport map", "@"+mapHostIP+f.suffix)
		rule(chainHostPorts, "meta nfproto", f.nfp, "dnat", f.ip, "to meta l4proto . th dport map", "@"+mapAnyIP+f.suffix)
	}
	for _, f := range fams {
		// Hairpin: a pod that reaches its own host port is DNATed to itself; without a new
		// source its answer would go straight back to itself over loopback, unknown to the
		// connection it opened. The set holds "pod . pod" for each pod with host ports.
		rule(chainPostrouting, "ct status dnat", f.ip, "saddr .", f.ip, "daddr", "@"+setHairpin+f.suffix, "masquerade")
	}
	return objs
}

func baseChain(name string, hook knftables.BaseChainHook, prio knftables.BaseChainPriority) *knftables.Chain {
	return &knftables.Chain{Name: name, Type: knftables.PtrTo(knftables.NATType), Hook: knftables.PtrTo(hook), Priority: knftables.PtrTo(prio)}
}

// elements returns the map and set elements of mappings.
func elements(mappings []Mapping) []*knftables.Element {
	var out []*knftables.Element
	hairpin := map[string]bool{}
	for _, m := range mappings {
		f := famOf(m.Family())
		port, target := strconv.Itoa(int(m.HostPort)), []string{m.PodIP.String(), strconv.Itoa(int(m.ContainerPort))}
		if m.HostIP.IsValid() {
			out = append(out, &knftables.Element{Map: mapHostIP + f.suffix, Key: []string{m.HostIP.String(), m.Protocol, port}, Value: target})
		} else {
			out = append(out, &knftables.Element{Map: mapAnyIP + f.suffix, Key: []string{m.Protocol, port}, Value: target})
		}
		if pod := m.PodIP.String(); !hairpin[pod] {
			hairpin[pod] = true
			out = append(out, &knftables.Element{Set: setHairpin + f.suffix, Key: []string{pod, pod}})
		}
	}
	return out
}

// Sync makes the table hold exactly mappings (every host port of every pod on the node) in one
// transaction, through nft bound to TableName in the inet family. No mappings remove the table.
//
// It writes the whole content each time: constant objects with "add" (which leaves an existing
// one alone), its chains, maps and sets flushed and refilled. A node has few host ports, and one
// transaction without reads is cheaper than reading the table back; no packet sees a half-written
// table. Should a constant object have changed its definition since an older plugin made it
// (nft refuses to "add" a map of another type), the table is replaced as a whole.
func Sync(ctx context.Context, nft knftables.Interface, mappings []Mapping) error {
	if len(mappings) == 0 {
		return Remove(ctx, nft)
	}
	tx := nft.NewTransaction()
	fill(tx, mappings)
	if err := nft.Run(ctx, tx); err == nil {
		return nil
	}
	tx = nft.NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	fill(tx, mappings)
	if err := nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("write nftables table inet %s: %w", TableName, err)
	}
	return nil
}

// fill adds the constant objects, empties the chains, maps and sets, and adds rules and elements.
func fill(tx *knftables.Transaction, mappings []Mapping) {
	var rules []*knftables.Rule
	for _, o := range structure() {
		switch o := o.(type) {
		case *knftables.Rule:
			rules = append(rules, o)
			continue
		case *knftables.Table:
			tx.Add(o)
			continue
		}
		tx.Add(o)
		tx.Flush(o)
	}
	for _, r := range rules {
		tx.Add(r)
	}
	for _, e := range elements(mappings) {
		tx.Add(e)
	}
}

// Remove deletes the table; a missing table is no error and costs no write.
func Remove(ctx context.Context, nft knftables.Interface) error {
	if _, err := nft.List(ctx, "chains"); knftables.IsNotFound(err) {
		return nil
	}
	tx := nft.NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	if err := nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("delete nftables table inet %s: %w", TableName, err)
	}
	return nil
}

// ErrNoNft says the nft binary is not installed where the caller runs.
var ErrNoNft = errors.New("nft is not installed on this node (host ports need the nftables package)")

// Open returns the real nftables interface for the table: it runs nft in the network namespace
// of the calling thread, so the nft binary must be installed on the node.
func Open() (knftables.Interface, error) {
	if _, err := exec.LookPath("nft"); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoNft, err)
	}
	nft, err := knftables.New(knftables.InetFamily, TableName)
	if err != nil {
		return nil, fmt.Errorf("nftables for inet %s (is nft installed on the node?): %w", TableName, err)
	}
	return nft, nil
}

// Missing returns the mappings whose element the table lacks or holds with another target.
func Missing(ctx context.Context, nft knftables.Interface, mappings []Mapping) ([]Mapping, error) {
	have := map[string]string{} // map name + key -> value
	for _, f := range fams {
		for _, name := range []string{mapHostIP + f.suffix, mapAnyIP + f.suffix} {
			elems, err := nft.ListElements(ctx, "map", name)
			if knftables.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("list map %s of inet %s: %w", name, TableName, err)
			}
			for _, e := range elems {
				have[name+" "+strings.Join(e.Key, " . ")] = strings.Join(e.Value, " . ")
			}
		}
	}
	var missing []Mapping
	for _, e := range elements(mappings) {
		if e.Map == "" {
			continue
		}
		if have[e.Map+" "+strings.Join(e.Key, " . ")] != strings.Join(e.Value, " . ") {
			for _, m := range mappings {
				if elem := elements([]Mapping{m})[0]; elem.Map == e.Map && slices.Equal(elem.Key, e.Key) {
					missing = append(missing, m)
				}
			}
		}
	}
	return missing, nil
}
