package e2e

import (
	"net/netip"

	networkingv1 "k8s.io/api/networking/v1"
)

// blockAndPortCases: ipBlocks (built from the pods' and nodes' real addresses), numbered and named
// ports, endPort ranges, protocols, and policies unioned.
func blockAndPortCases() []truthCase {
	x := "x"
	type np = *networkingv1.NetworkPolicy
	return []truthCase{
		one("ingress into x/a from an ipBlock of node 2's pod CIDRs except y/b",
			func(w *truthWorld) []np {
				return []np{policy(x, "from-node2-pods", podNamed("a"), ingressOnly,
					[]inRule{from(blockPeers(w.nodePodCIDRs(2), hostPrefixes(w.podIPs("y/b")...)...))}, nil)}
			},
			func(from, to *truthPod, _ probeKind) bool {
				return !to.is("x/a") || (from.node == 2 && !from.is("y/b"))
			}),
		one("egress from x/a to an ipBlock of node 3's pod CIDRs except z/c",
			func(w *truthWorld) []np {
				return []np{policy(x, "to-node3-pods", podNamed("a"), egressOnly, nil,
					[]outRule{to(blockPeers(w.nodePodCIDRs(3), hostPrefixes(w.podIPs("z/c")...)...))})}
			},
			func(from, to *truthPod, _ probeKind) bool { return !from.is("x/a") || (to.node == 3 && !to.is("z/c")) }),
		one("egress from x/a to 0.0.0.0/0 and ::/0 except node 1's pod CIDRs",
			func(w *truthWorld) []np {
				all := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
				return []np{policy(x, "to-all-but-node1", podNamed("a"), egressOnly, nil,
					[]outRule{to(blockPeers(all, w.nodePodCIDRs(1)...))})}
			},
			func(from, to *truthPod, _ probeKind) bool { return !from.is("x/a") || to.node != 1 }),
		one("ingress into x from 0.0.0.0/0 only: IPv6 stays denied",
			pols(policy(x, "from-all-v4", sel(), ingressOnly,
				[]inRule{from(blockPeers([]netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}))}, nil)),
			func(_, to *truthPod, k probeKind) bool { return to.ns != "x" || !k.v6 }),
		one("ingress into x on named port t81 only: pod c, which does not name it, stays closed",
			pols(policy(x, "named-t81", sel(), ingressOnly, []inRule{from(nil, namedPort("tcp", "t81"))}, nil)),
			func(_, to *truthPod, k probeKind) bool { return to.ns != "x" || (k.is("tcp", 81) && to.name != "c") }),
		one("ingress into x on named ports u80 and s81",
			pols(policy(x, "named-u80-s81", sel(), ingressOnly, []inRule{from(nil, namedPort("udp", "u80"), namedPort("sctp", "s81"))}, nil)),
			func(_, to *truthPod, k probeKind) bool {
				return to.ns != "x" || k.is("udp", 80) || (k.is("sctp", 81) && to.name != "c")
			}),
		one("egress from x/a to named port t81, resolved per destination pod",
			pols(policy(x, "out-named-t81", podNamed("a"), egressOnly, nil, []outRule{to(nil, namedPort("tcp", "t81"))})),
			func(from, to *truthPod, k probeKind) bool {
				return !from.is("x/a") || (k.is("tcp", 81) && to.name != "c")
			}),
		one("ingress into x on TCP 80 only",
			pols(policy(x, "tcp-80", sel(), ingressOnly, []inRule{from(nil, port("tcp", 80))}, nil)),
			func(_, to *truthPod, k probeKind) bool { return to.ns != "x" || k.is("tcp", 80) }),
		one("ingress into x on TCP 80-81 (endPort)",
			pols(policy(x, "tcp-80-81", sel(), ingressOnly, []inRule{from(nil, portRange("tcp", 80, 81))}, nil)),
			func(_, to *truthPod, k probeKind) bool { return to.ns != "x" || k.proto == "tcp" }),
		one("ingress into x on TCP 81-81 (endPort equal to port)",
			pols(policy(x, "tcp-81-81", sel(), ingressOnly, []inRule{from(nil, portRange("tcp", 81, 81))}, nil)),
			func(_, to *truthPod, k probeKind) bool { return to.ns != "x" || k.is("tcp", 81) }),
		one("ingress into x over TCP only (a protocol without a port)",
			pols(policy(x, "tcp-only", sel(), ingressOnly, []inRule{from(nil, anyPort("tcp"))}, nil)),
			func(_, to *truthPod, k probeKind) bool { return to.ns != "x" || k.proto == "tcp" }),
		one("ingress into x over UDP only",
			pols(policy(x, "udp-only", sel(), ingressOnly, []inRule{from(nil, anyPort("udp"))}, nil)),
			func(_, to *truthPod, k probeKind) bool { return to.ns != "x" || k.proto == "udp" }),
		one("ingress into x over SCTP only",
			pols(policy(x, "sctp-only", sel(), ingressOnly, []inRule{from(nil, anyPort("sctp"))}, nil)),
			func(_, to *truthPod, k probeKind) bool { return to.ns != "x" || k.proto == "sctp" }),
		one("egress from x over UDP 80-81 (endPort) only",
			pols(policy(x, "out-udp-80-81", sel(), egressOnly, nil, []outRule{to(nil, portRange("udp", 80, 81))})),
			func(from, _ *truthPod, k probeKind) bool { return from.ns != "x" || k.proto == "udp" }),
		one("egress from x on SCTP 81 only",
			pols(policy(x, "out-sctp-81", sel(), egressOnly, nil, []outRule{to(nil, port("sctp", 81))})),
			func(from, _ *truthPod, k probeKind) bool { return from.ns != "x" || k.is("sctp", 81) }),
		one("ingress into y from x on TCP 80 and from z on UDP 81 in one rule each (port and peer are ANDed)",
			pols(policy("y", "x-tcp80-z-udp81", sel(), ingressOnly, []inRule{
				from(peers(nsPeer(podsOfNS("x"))), port("tcp", 80)),
				from(peers(nsPeer(podsOfNS("z"))), port("udp", 81)),
			}, nil)),
			func(from, to *truthPod, k probeKind) bool {
				return to.ns != "y" || (from.ns == "x" && k.is("tcp", 80)) || (from.ns == "z" && k.is("udp", 81))
			}),
		one("two policies on x are unioned: from y on TCP 80, from z on SCTP 81",
			pols(policy(x, "y-tcp80", sel(), ingressOnly, []inRule{from(peers(nsPeer(podsOfNS("y"))), port("tcp", 80))}, nil),
				policy(x, "z-sctp81", sel(), ingressOnly, []inRule{from(peers(nsPeer(podsOfNS("z"))), port("sctp", 81))}, nil)),
			func(from, to *truthPod, k probeKind) bool {
				return to.ns != "x" || (from.ns == "y" && k.is("tcp", 80)) || (from.ns == "z" && k.is("sctp", 81))
			}),
		one("one policy isolates x/a (from y), another x/b (nothing); x/c stays open",
			pols(policy(x, "a-from-y", podNamed("a"), ingressOnly, []inRule{from(peers(nsPeer(podsOfNS("y"))))}, nil),
				policy(x, "b-deny", podNamed("b"), ingressOnly, nil, nil)),
			func(from, to *truthPod, _ probeKind) bool {
				switch {
				case to.is("x/a"):
					return from.ns == "y"
				case to.is("x/b"):
					return false
				}
				return true
			}),
	}
}
