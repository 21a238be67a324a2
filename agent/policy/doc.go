// Package policy is the agent's NetworkPolicy engine, as a pure model.
//
// Compile turns what the API says (NetworkPolicies, Pods, Namespaces and the
// node's own addresses) into a Model: for every pod on this node, the
// policies that isolate it per direction, and per policy its rules as peers
// (address interval sets) × ports (numbers and ranges per protocol, named
// ports resolved to addresses). The Model is backend-neutral: the nftables
// backend (subpackage nftables) programs exactly it, and Evaluate answers for
// one flow what the data plane does and which policy and rule decided, so a
// trace can never disagree with the kernel.
//
// The agent keeps a Compiler (NewCompiler) and calls its Compile on every
// sync: it returns the same model as Compile, recompiling only the policies
// that a changed pod, namespace or policy can reach, and hands back the same
// *Policy values for the others, which the nftables backend uses to rebuild
// only their part of the table's desired state.
//
// Decisions are made by ordered tiers, the idea of kube-network-policies'
// pkg/pipeline: admin (ClusterNetworkPolicy admin tier), NetworkPolicy,
// baseline. Each tier allows, denies or passes to the next; when all pass
// the flow is allowed. Only the NetworkPolicy tier is implemented; the
// others always pass, so adding them later changes no caller.
//
// Semantics follow networking.k8s.io/v1:
//   - a pod is isolated for a direction once any policy selecting it lists
//     the direction in policyTypes (empty policyTypes means Ingress, plus
//     Egress when the policy has egress rules); the union of the isolating
//     policies' rules allows, anything else is denied; a direction no policy
//     isolates is allowed;
//   - host-network pods are neither selected nor peers: their addresses are
//     the node's;
//   - traffic from the pod's own node is always allowed (kubelet probes);
//   - only the first packet of a connection is decided; replies and later
//     packets pass through conntrack;
//   - IPv6 neighbour discovery between a pod and its node is no flow of the
//     model: the data plane always accepts it (without it an isolated pod
//     could not reach its gateway, not even to answer allowed traffic).
package policy
