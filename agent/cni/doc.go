// Package cni is plexus-cni, the CNI plugin the container runtime calls for every pod on a Plexus
// node, plus the contract it shares with the plexus agent.
//
// Data path: one routed veth pair per pod attachment, no bridge. The pod side (eth0, or the ifname
// the runtime asks for) carries the pod's /32 and /128 and a default route per family via a
// link-local gateway; the node side carries a host route to each pod address through the host
// veth. The node forwards between pods, so every pod-to-pod packet crosses the node's routing
// table, where the agent's policy and service rules see it.
//
// Addressing: the agent writes the node's pod CIDRs to a local state file ([NodeState],
// [DefaultNodeStatePath]); the plugin hands out one address per family from it and records each
// allocation as a file in a flock-protected directory ([DefaultDataDir]) so allocations survive
// restarts of the plugin, the runtime and the node agent.
//
// Host ports: the conflist declares the portMappings capability; the plugin programs a pod's
// host ports into the node's nftables table inet plexus-hostport (package hostport) before ADD
// returns, records them under <dataDir>/hostports, and removes them at DEL and GC (hostports.go).
//
// Installation: the agent calls [Install] to copy the binary into the runtime's CNI bin directory
// and write the conflist ([RenderConflist]) that points the plugin at the state file.
package cni
