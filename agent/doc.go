// Package agent is the node side of Plexus: plexus-agent's sync loop.
//
// Shape (in kube-proxy's spirit): informers on the default ClusterNetwork, all NodeNetworks and
// all Nodes only mark the agent dirty; one goroutine then runs a sync that
//
//  1. snapshots the API objects from the informer caches,
//  2. translates them into the desired data plane with the pure function [Translate]
//     (routing.Config, masquerade.Config, cni.NodeState),
//  3. applies routes (routing.Syncer, a diff against what it last programmed), the masquerade
//     table (one nftables transaction, none when it matches) and the CNI node state file
//     (rewritten only when its content changes),
//  4. and patches the node's NodeNetwork status, only when it changed ([status.Build]).
//
// A failed sync marks the next one a full resync (the kernel is read again instead of trusted) and
// retries with exponential backoff; a periodic full resync repairs drift. The agent programs the
// ClusterNetwork's status.effective, never its spec, so a spec the operator refused changes
// nothing on the node. On start it adopts what it programmed before (the first sync diffs against
// the kernel: nothing is flushed); on stop it leaves the data plane in place, so restarting the
// agent costs no packet.
package agent
