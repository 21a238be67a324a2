// Package agent is the node side of Plexus: plexus-agent's sync loop and the translation of
// API objects into the node's desired data plane.
//
// Shape (in kube-proxy's spirit): informers (package agent/informers) on the default
// ClusterNetwork, all NodeNetworks, Nodes, Services, EndpointSlices, NetworkPolicies, Pods and
// Namespaces only mark the agent dirty; one goroutine then runs a sync that
//
//  1. snapshots the API objects from the informer caches,
//  2. translates them into the desired data plane with the pure function [Translate]
//     (routing.Config, masquerade.Config, cni.NodeState, services.Desired, PolicyDesired),
//  3. runs every [Plane] on it (routes, masquerade table, CNI node state file, service proxy,
//     NetworkPolicy),
//     each whatever the others did: one failing plane never stops another, and each writes
//     nothing when the node already matches,
//  4. and patches the node's NodeNetwork status, one condition per plane and Ready from all of
//     them, only when it changed ([status.Reporter]).
//
// A failed sync marks the next one a full sync (the kernel is read again instead of trusted) and
// retries with exponential backoff; a periodic full sync repairs drift. The agent programs the
// ClusterNetwork's status.effective, never its spec, so a spec the operator refused changes
// nothing on the node. On start it adopts what it programmed before (the first sync diffs against
// the kernel: nothing is flushed); on stop it leaves the data plane in place, so restarting the
// agent costs no packet. The wiring of the real collaborators is package agent/agentrun.
package agent
