package v1alpha1

// ConditionConnectivityHealthy is a condition of both NodeNetwork and ClusterNetwork. On a
// NodeNetwork (written by the agent) it is True while every peer node's probe address answers the
// agent's probes over the pod network and, when Plexus runs cluster DNS, the kube-dns Service
// answers a lookup; False names the peers (and DNS) that failed FailureThreshold probes in a row.
// On ClusterNetwork (the operator's roll-up) it is False while some node reports it False, and
// names the nodes their peers cannot reach. It feeds neither node nor cluster Ready.
const ConditionConnectivityHealthy = "ConnectivityHealthy"

// Reasons of ConditionConnectivityHealthy.
const (
	// ReasonPeersReachable: every peer answered its last probe (and DNS answers, if probed).
	ReasonPeersReachable = "PeersReachable"
	// ReasonPeersUnreachable: some peers failed the last probes in a row; the message names them.
	ReasonPeersUnreachable = "PeersUnreachable"
	// ReasonDNSFailing: every peer answers, but the kube-dns Service failed the last lookups.
	ReasonDNSFailing = "DNSFailing"
	// ReasonConnectivityNotProbed: the agent cannot probe yet (no pod CIDR of its own, or its
	// probe address could not be set up); on ClusterNetwork: no node reports the condition yet.
	ReasonConnectivityNotProbed = "NotProbed"
)
