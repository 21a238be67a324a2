package cni

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-net/plexus/agent/policy/admit/wire"
)

// podIdentity is the pod a runtime names in CNI_ARGS (Kubernetes runtimes pass
// K8S_POD_NAMESPACE, K8S_POD_NAME and, in recent versions, K8S_POD_UID).
type podIdentity struct {
	Namespace, Name, UID string
}

// parsePodIdentity reads the pod from CNI_ARGS ("K=V;K=V"). Keys it does not know are ignored,
// as a plugin must; a runtime that is not Kubernetes passes none of them.
func parsePodIdentity(cniArgs string) podIdentity {
	var id podIdentity
	for kv := range strings.SplitSeq(cniArgs, ";") {
		k, v, _ := strings.Cut(kv, "=")
		switch strings.TrimSpace(k) {
		case "K8S_POD_NAMESPACE":
			id.Namespace = v
		case "K8S_POD_NAME":
			id.Name = v
		case "K8S_POD_UID":
			id.UID = v
		}
	}
	return id
}

// awaitPolicy makes sure no packet can reach a new pod before the NetworkPolicies selecting it are
// in force: when the node state says policy is enforced (PolicySocket set), it asks the agent to
// enforce the pod at addrs and waits for the confirmation, at most conf.PolicyTimeout. ADD calls it
// after assigning the addresses and before building the interface, so on failure nothing routes
// to the pod yet. It fails closed: no agent, a refusal or a timeout is an error.
//
// A sandbox without a Kubernetes pod name (a runtime other than the kubelet's) is not waited for:
// no NetworkPolicy can select a pod the API server does not know.
func awaitPolicy(conf *Config, st *NodeState, cniArgs, containerID string, addrs []netip.Addr) error {
	if st.PolicySocket == "" {
		return nil
	}
	id := parsePodIdentity(cniArgs)
	if id.Namespace == "" || id.Name == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), conf.PolicyTimeout)
	defer cancel()
	req := wire.Request{Namespace: id.Namespace, Name: id.Name, UID: id.UID, ContainerID: containerID, IPs: addrs}
	if err := wire.Ask(ctx, st.PolicySocket, req); err != nil {
		return types.NewError(types.ErrTryAgainLater,
			fmt.Sprintf("NetworkPolicy for pod %s is not confirmed in force within %s, so the pod is not started: %v",
				req.Pod(), conf.PolicyTimeout, err),
			"the plexus agent on this node must program the pod's policies first; the kubelet retries; check the agent's logs")
	}
	return nil
}
