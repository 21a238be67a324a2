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

// Condition reasons of ClusterNetwork.
const (
	// ReasonAsExpected: the condition is in its healthy state.
	ReasonAsExpected = "AsExpected"
	// ReasonNotDefault: the ClusterNetwork is not the one named "default" and is ignored.
	ReasonNotDefault = "NotTheDefaultClusterNetwork"
	// ReasonInvalidSpec: the spec fails validation on its own.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonUnsafeChange: the spec is valid but moving the running network to it is not safe.
	ReasonUnsafeChange = "UnsafeChange"
	// ReasonOverlap: a pod or service CIDR contains a node's address.
	ReasonOverlap = "OverlapsNodeAddress"
	// ReasonPoolExhausted: some node has no pod CIDR because a pool is full.
	ReasonPoolExhausted = "PodCIDRPoolExhausted"
	// ReasonAllAllocated: every node holds its pod CIDRs.
	ReasonAllAllocated = "AllNodesAllocated"
	// ReasonNodesProgramming: some nodes have not programmed the applied generation yet.
	ReasonNodesProgramming = "NodesProgramming"
	// ReasonNodesNotReady: some node's agent does not report Ready at the applied generation.
	ReasonNodesNotReady = "NodesNotReady"
	// ReasonNoNodes: the cluster has no nodes to network.
	ReasonNoNodes = "NoNodes"
	// ReasonReconcileError: a phase of the reconcile failed (applying, pruning, a CIDR conflict).
	ReasonReconcileError = "ReconcileError"
	// ReasonConfigNotValid: no valid configuration is served, see ConfigValid.
	ReasonConfigNotValid = "ConfigNotValid"
	// ReasonAllNodesProgrammed: every node has programmed the applied generation.
	ReasonAllNodesProgrammed = "AllNodesProgrammed"
)
