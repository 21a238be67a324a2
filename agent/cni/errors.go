package cni

import (
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
)

// Plugin-specific CNI error codes (the spec reserves 100 and up for plugins).
const (
	// CodePoolExhausted: the node's pod CIDR has no free address left.
	CodePoolExhausted uint = 100
	// CodeCheckFailed: CHECK found the attachment differs from what ADD set up.
	CodeCheckFailed uint = 101
	// CodeInterfaceConflict: the pod's network namespace already has an interface with the
	// requested name that plexus-cni did not create.
	CodeInterfaceConflict uint = 102
)

// notReadyError is the error for "the agent has not published pod CIDRs yet". It uses
// ErrTryAgainLater (11): the condition clears by itself once the agent runs, and the runtime
// retries pod creation.
func notReadyError(path string, cause error) *types.Error {
	if errors.Is(cause, ErrNodeStateMissing) {
		return types.NewError(types.ErrTryAgainLater,
			fmt.Sprintf("plexus agent not ready: node state file %s does not exist yet (the agent writes it once the node has a pod CIDR)", path), "")
	}
	return types.NewError(types.ErrTryAgainLater,
		fmt.Sprintf("plexus agent not ready: node state file %s lists no pod CIDR yet", path), "")
}

// badNodeStateError is for a node state file that exists but cannot be used.
func badNodeStateError(err error) *types.Error {
	return types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "the plexus agent writes this file; check the agent's logs")
}

// netnsError is for a CNI_NETNS that is missing or not a network namespace.
func netnsError(path string, err error) *types.Error {
	if path == "" {
		return types.NewError(types.ErrInvalidNetNS, "no network namespace given (CNI_NETNS is empty)", "")
	}
	return types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("network namespace %s is not usable: %v", path, err), "")
}

// internalError wraps an unexpected failure with what was being done.
func internalError(format string, args ...any) *types.Error {
	return types.NewError(types.ErrInternal, fmt.Sprintf(format, args...), "")
}

// CodeHostPortConflict: a host port of the pod is already mapped to another pod on this node.
const CodeHostPortConflict uint = 103

// hostPortConfigError is for port mappings the plugin cannot honour.
func hostPortConfigError(err error) *types.Error {
	return types.NewError(types.ErrInvalidNetworkConfig, "invalid runtimeConfig.portMappings: "+err.Error(), "")
}

// hostPortConflictError is for a host port another pod on the node holds.
func hostPortConflictError(owner Owner, err error) *types.Error {
	return types.NewError(CodeHostPortConflict, fmt.Sprintf("host ports of %s: %v", owner, err),
		"two pods on one node cannot share a host port, host IP and protocol")
}
