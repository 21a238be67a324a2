// Package connectivity is the agent's continuous connectivity check: every Interval it sends one
// small UDP probe from this node's probe address to every peer node's probe address, and asks the
// cluster DNS for kubernetes.default.svc.<clusterDomain>, and reports the peers (and DNS) that
// failed FailureThreshold probes in a row in the NodeNetwork's ConnectivityHealthy condition and
// status.connectivity. It creates no pods and programs no data plane: it observes.
//
// The probe address of a node is the first (network) address of each of its pod CIDRs
// (ProbeAddr). plexus-cni's IPAM never hands that address to a pod (cni.NextFree skips it), and
// the routing plane already gives it to the VXLAN device as the node's VTEP address, so no
// allocation is reserved or migrated for it. Pods' gateways are link-local (169.254.1.1, fe80::1),
// so without it the host has no address inside its own pod CIDR. The agent puts it on lo as a
// /32 or /128 (the kernel keeps one local route per device holding an address, so lo and the VXLAN
// device both holding it is fine, and removing one leaves the other) and binds its UDP responder
// to it. A probe from probe address to probe address then takes exactly the path a pod's packet
// takes to a pod on the peer: the peer's pod CIDR route (direct, or over VXLAN), the underlay, and
// back. Pod CIDR to pod CIDR is never masqueraded, and the address is the node's own (the
// NetworkPolicy engine already counts the VTEP address as the node).
//
// The pieces: Tracker (pure: consecutive failures per peer and family, peers coming and going),
// Prober (the loop: targets in, probes out, Tracker fed, a change announced), UDP (the real
// transport and responder), LoopbackAddresses (the probe address on lo), DNSProbe, Metrics, and
// Apply (the status part, a pure function of the Report).
package connectivity
