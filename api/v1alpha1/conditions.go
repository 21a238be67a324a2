package v1alpha1

// Condition types of ClusterNetwork.
const (
	// ConditionReady is True when the configuration is valid, every node has its pod CIDRs and
	// every node's agent reports Ready at the applied generation.
	ConditionReady = "Ready"
	// ConditionProgressing is True while nodes have not yet programmed the applied generation.
	ConditionProgressing = "Progressing"
	// ConditionDegraded is True when something needs a person: exhausted pools, failed phases.
	ConditionDegraded = "Degraded"
	// ConditionConfigValid is False when the spec is invalid or its change is unsafe; the last good
	// configuration keeps being served.
	ConditionConfigValid = "ConfigValid"
	// ConditionPodCIDRsAllocated is False when some nodes have no pod CIDR.
	ConditionPodCIDRsAllocated = "PodCIDRsAllocated"
)

// Condition types of NodeNetwork, written by the agent.
const (
	// ConditionRoutesProgrammed is True when the node's pod routes match the cluster.
	ConditionRoutesProgrammed = "RoutesProgrammed"
	// ConditionServicesProgrammed is True when the node's Service rules match the cluster.
	ConditionServicesProgrammed = "ServicesProgrammed"
	// ConditionPoliciesProgrammed is True when the node's NetworkPolicy rules match the cluster.
	ConditionPoliciesProgrammed = "PoliciesProgrammed"
	// ConditionNodeReady is True when the node's data plane is fully programmed.
	ConditionNodeReady = "Ready"
)

// Condition reasons.
const (
	ReasonAsExpected         = "AsExpected"
	ReasonNotDefault         = "NotTheDefaultClusterNetwork"
	ReasonInvalidSpec        = "InvalidSpec"
	ReasonUnsafeChange       = "UnsafeChange"
	ReasonOverlap            = "OverlapsNodeAddress"
	ReasonPoolExhausted      = "PodCIDRPoolExhausted"
	ReasonAllAllocated       = "AllNodesAllocated"
	ReasonWaitingForNodes    = "WaitingForNodes"
	ReasonNodesProgramming   = "NodesProgramming"
	ReasonNodesNotReady      = "NodesNotReady"
	ReasonNoNodes            = "NoNodes"
	ReasonReconcileError     = "ReconcileError"
	ReasonConfigNotValid     = "ConfigNotValid"
	ReasonAllNodesProgrammed = "AllNodesProgrammed"
)
