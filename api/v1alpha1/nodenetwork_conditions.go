package v1alpha1

// Condition types of NodeNetwork written by the agent, beside those in conditions.go. Every
// data plane of the agent reports in a condition of its own; Ready is True when all are.
const (
	// ConditionMasqueradeProgrammed is True when the node's masquerade table matches the cluster
	// (or is absent because masquerading is off).
	ConditionMasqueradeProgrammed = "MasqueradeProgrammed"
	// ConditionCNIConfigured is True when the CNI node state file (pod CIDRs, MTU) that
	// plexus-cni reads matches the cluster.
	ConditionCNIConfigured = "CNIConfigured"
)

// Condition reasons of NodeNetwork, written by the agent.
const (
	// ReasonProgrammed: the plane matches the cluster.
	ReasonProgrammed = "Programmed"
	// ReasonPartiallyRouted: routes are programmed but some peers' pod CIDRs have no route.
	ReasonPartiallyRouted = "SomePeersUnroutable"
	// ReasonRoutingFailed: the kernel refused a routing change.
	ReasonRoutingFailed = "RoutingFailed"
	// ReasonMasqueradeFailed: the masquerade table could not be written.
	ReasonMasqueradeFailed = "MasqueradeFailed"
	// ReasonMasqueradeDisabled: routing.masquerade is off; the masquerade table is removed.
	ReasonMasqueradeDisabled = "MasqueradeDisabled"
	// ReasonCNIFailed: the CNI node state file could not be written.
	ReasonCNIFailed = "CNINodeStateFailed"
	// ReasonSyncFailed: the sync failed before any plane ran (e.g. no uplink found).
	ReasonSyncFailed = "SyncFailed"
	// ReasonServiceProxyFailed: the service proxy's data plane could not be written.
	ReasonServiceProxyFailed = "ServiceProxyFailed"
	// ReasonServiceProxyUnavailable: the kernel lacks what the chosen serviceProxy.mode needs
	// (IPVS without CONFIG_IP_VS).
	ReasonServiceProxyUnavailable = "ServiceProxyKernelSupportMissing"
	// ReasonServiceProxyDisabled: serviceProxy.mode none; Plexus programs no Service.
	ReasonServiceProxyDisabled = "ServiceProxyDisabled"
	// ReasonPolicyDisabled: networkPolicy.enabled is false; the NetworkPolicy table is removed
	// and nothing is enforced.
	ReasonPolicyDisabled = "NetworkPolicyDisabled"
	// ReasonPolicyFailed: the NetworkPolicy table could not be written (or removed).
	ReasonPolicyFailed = "NetworkPolicyFailed"
	// ReasonPolicyUnreadable: every policy is programmed, but some could not be read fully
	// (e.g. a selector the API server should have refused); those fail closed, allowing less.
	ReasonPolicyUnreadable = "SomePoliciesFailClosed"
	// ReasonWaitingForClusterNetwork: no ClusterNetwork "default", or the operator has not
	// served an effective configuration yet; the agent programs nothing.
	ReasonWaitingForClusterNetwork = "WaitingForClusterNetwork"
	// ReasonWaitingForPodCIDRs: the operator has not made this node's NodeNetwork or allocated
	// its pod CIDRs yet; the agent programs nothing.
	ReasonWaitingForPodCIDRs = "WaitingForPodCIDRs"
	// ReasonWaitingForNode: this node's Node object is missing or has no usable address; the
	// agent programs nothing.
	ReasonWaitingForNode = "WaitingForNode"
)
