// Package ipvs is the IPVS service-proxy backend of the agent: each
// Service port becomes, per address and family, an IPVS virtual server with
// one real server per ready endpoint, in masquerading (NAT) mode.
//
// Virtual IPs (ClusterIPs, external IPs, load-balancer IPs) are bound on a
// dummy interface (DummyDevice) so the node's routing treats them as local
// and IPVS, hooked at LOCAL_IN, sees the packets; NodePorts are virtual
// servers on the node's own addresses.
//
// Shape, as in the routing package: DesiredState computes what the kernel
// should hold, Read reads what it holds of Plexus's, PlanChanges(desired,
// current) diffs them into a Plan that prints as a diff, and Apply is the
// only step with side effects, through two narrow interfaces: Interface
// (IPVS; real: NewKernel on github.com/moby/ipvs; fake: ipvsfake.Fake) and
// Binder (the dummy interface; real: NewDummyBinder; fake: ipvsfake.Binder).
// Syncer strings them together; a sync that changes nothing writes nothing,
// and Syncer.Remove turns the mode off (virtual servers, addresses, device).
//
// IPVS never rewrites the source: NFTSyncer keeps one nftables table
// (NFTTable) that marks external, node-originated and hairpin traffic and
// masquerades it. Sysctls are the node settings the mode needs: IPVS's
// packets pass conntrack, flows of removed real servers expire (the UDP
// flush), and ARP ignores the virtual IPs.
//
// Ownership: IPVS has no owner field. A virtual server is Plexus's when its
// address is bound on DummyDevice, is one of the node addresses Plexus serves
// NodePorts on, or is wanted by the desired state; all others (another
// tool's, fwmark services) are never listed, changed or deleted.
package ipvs
