// Package routing programs the routes that connect this node's pods with
// the pods of every other node, without NAT.
//
// Three modes (routing.mode of the ClusterNetwork):
//
//   - Direct (host-gw): one route per peer pod CIDR via the peer's node IP
//     out of the uplink. Needs every peer on the same L2 subnet.
//   - VXLAN: one VXLAN device (VXLANDeviceName) carries pod traffic of both
//     families to every peer, inside UDP over the underlay.
//   - Auto: Direct to peers whose node IP is on the local uplink subnet,
//     VXLAN to the rest.
//
// VXLAN without any control-plane exchange: every node derives the same
// values from inputs all nodes already know.
//
//   - The VTEP MAC of a node is derived from its underlay IP (VTEPMAC), so a
//     node computes each peer's MAC itself.
//   - The VTEP address of a node, per family, is the first address (the
//     network address) of its pod CIDR; IPAM never hands it to a pod. The
//     local ones are assigned to the VXLAN device, so traffic the node itself
//     sends to remote pods carries a source the remote node routes back over
//     VXLAN (and strict reverse-path filters accept).
//   - Per peer: an FDB entry (peer MAC -> peer underlay IP); for an IPv4
//     pod CIDR a permanent neighbour (peer VTEP address -> peer MAC) and an
//     onlink route via the peer VTEP address; for IPv6 a permanent neighbour
//     for the peer's link-local VTEP address (VTEPLinkLocal, from its MAC)
//     and a route via it. All on VXLANDeviceName.
//
// The underlay family of VXLAN is the family of the local node's first node
// IP; peers are reached at their first node IP of that family. Pod CIDRs of
// both families ride the same device.
//
// Ownership: Plexus marks its routes with RouteProtocol and only ever lists,
// replaces or deletes routes carrying it; routes of anyone else are left
// alone (a clash is reported, never overwritten). The VXLAN device and
// everything on it belong to Plexus.
//
// Shape: Desired(cfg) computes the State the kernel should hold, Read reads
// the State it holds, PlanChanges(desired, current) diffs them into a Plan
// that prints as a diff, and Apply(nl, plan) is the only step with side
// effects, through the narrow Interface (real: NewNetlink; fake:
// routingfake). Syncer strings them together and skips the kernel read when
// it knows what the kernel holds.
package routing
