package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodeNetworkSpec is what the operator gives one node. The agent on that node reads it.
type NodeNetworkSpec struct {
	// PodCIDRs are the node's pod CIDRs, at most one per family, in ipFamilies order. Set by the
	// operator's IPAM; an allocation is never changed while the node exists.
	// +kubebuilder:validation:MaxItems=2
	// +listType=atomic
	// +optional
	PodCIDRs []CIDR `json:"podCIDRs,omitempty"`

	// Addresses are the node's InternalIP and ExternalIP addresses as the operator saw them on the
	// Node, used for overlap checks and by peers to route to this node.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	Addresses []string `json:"addresses,omitempty"`
}

// NodeNetworkStatus is written by the node's agent.
type NodeNetworkStatus struct {
	// ObservedGeneration is the NodeNetwork generation the agent last programmed.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// ProgrammedGeneration is the ClusterNetwork status.appliedGeneration whose configuration the
	// agent has programmed on the node.
	// +optional
	ProgrammedGeneration int64 `json:"programmedGeneration,omitempty"`

	// Conditions: RoutesProgrammed, ServicesProgrammed, PoliciesProgrammed, Ready,
	// ConnectivityHealthy.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// UplinkInterface is the interface that carries pod traffic to other nodes.
	// +optional
	UplinkInterface string `json:"uplinkInterface,omitempty"`

	// NodeIPs are the node addresses the agent uses, one per family.
	// +listType=atomic
	// +optional
	NodeIPs []string `json:"nodeIPs,omitempty"`

	// MTU of pod interfaces on this node.
	// +optional
	MTU int32 `json:"mtu,omitempty"`

	// Routes is the number of routes the agent programmed.
	// +optional
	Routes int32 `json:"routes,omitempty"`
	// Pods is the number of pod interfaces on the node.
	// +optional
	Pods int32 `json:"pods,omitempty"`
	// Services is the number of Services programmed.
	// +optional
	Services int32 `json:"services,omitempty"`
	// Endpoints is the number of Service endpoints programmed.
	// +optional
	Endpoints int32 `json:"endpoints,omitempty"`
	// ServiceProxy is the node's Service backend and the Service features it honours.
	// +optional
	ServiceProxy *ServiceProxyStatus `json:"serviceProxy,omitempty"`
	// PolicyRules is the number of NetworkPolicy rules programmed.
	// +optional
	PolicyRules int32 `json:"policyRules,omitempty"`
	// Policies is the number of NetworkPolicies that select pods on this node and are enforced.
	// +optional
	Policies int32 `json:"policies,omitempty"`
	// IsolatedPods is the number of this node's pods that some NetworkPolicy isolates (for
	// ingress, egress or both).
	// +optional
	IsolatedPods int32 `json:"isolatedPods,omitempty"`
	// PolicyObjects is the number of kernel objects (chains, sets, maps, counters) of the
	// NetworkPolicy table: it grows with the policies, never with pods × policies.
	// +optional
	PolicyObjects int32 `json:"policyObjects,omitempty"`

	// Connectivity is what the agent's continuous probes of its peers' pod network and of the
	// cluster DNS found (see the ConnectivityHealthy condition). Absent while the agent does not
	// probe; peers probe only nodes that report it (their agent answers probes).
	// +optional
	Connectivity *ConnectivityStatus `json:"connectivity,omitempty"`

	// LastSyncTime is when the agent last finished a sync that changed the data plane or this
	// status; a sync that finds nothing to change writes nothing, this field included.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`
	// LastSyncDuration is how long that sync took.
	// +optional
	LastSyncDuration *metav1.Duration `json:"lastSyncDuration,omitempty"`
	// LastError is the error of the last failed sync, empty after a good one.
	// +optional
	LastError string `json:"lastError,omitempty"`
}

// ServiceProxyStatus reports the node's Service backend.
type ServiceProxyStatus struct {
	// Mode is the backend programmed: nftables, ipvs or none.
	Mode string `json:"mode"`
	// SupportedFeatures are the Service features the backend honours.
	// +listType=atomic
	// +optional
	SupportedFeatures []string `json:"supportedFeatures,omitempty"`
	// UnsupportedFeatures are the Service features the backend cannot honour; Services that use
	// them get a Warning event.
	// +listType=atomic
	// +optional
	UnsupportedFeatures []string `json:"unsupportedFeatures,omitempty"`
}

// ConnectivityStatus is the result of the agent's continuous connectivity probes. It changes
// only when a peer or DNS turns unreachable or recovers (latencies are metrics, not status).
type ConnectivityStatus struct {
	// ProbeAddresses are this node's own probe addresses: the first address of each of its pod
	// CIDRs, which peers send their probes to.
	// +listType=atomic
	// +optional
	ProbeAddresses []string `json:"probeAddresses,omitempty"`
	// Peers is how many peer nodes the agent probes.
	Peers int32 `json:"peers"`
	// UnreachablePeers are the peers whose probe address of some family failed the last probes
	// in a row, by node name.
	// +listType=map
	// +listMapKey=node
	// +optional
	UnreachablePeers []UnreachablePeer `json:"unreachablePeers,omitempty"`
	// DNSError is why the lookup of kubernetes.default.svc.<clusterDomain> against the kube-dns
	// Service failed the last probes in a row; empty while it answers or is not probed.
	// +optional
	DNSError string `json:"dnsError,omitempty"`
}

// UnreachablePeer is a peer node that does not answer probes over the pod network.
type UnreachablePeer struct {
	// Node is the peer's node name.
	Node string `json:"node"`
	// Addresses are the peer's probe addresses that do not answer (one per family).
	// +listType=atomic
	Addresses []string `json:"addresses"`
}

// NodeNetwork is one node's share of the cluster network: its pod CIDRs (operator) and what its
// agent has programmed (status). Its name is the Node's name.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=nnet;nn
// +kubebuilder:printcolumn:name="Pod CIDRs",type=string,JSONPath=`.spec.podCIDRs`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Uplink",type=string,JSONPath=`.status.uplinkInterface`
// +kubebuilder:printcolumn:name="Routes",type=integer,JSONPath=`.status.routes`
// +kubebuilder:printcolumn:name="Generation",type=integer,JSONPath=`.status.programmedGeneration`,description="ClusterNetwork generation programmed"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type NodeNetwork struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is set by the operator.
	// +optional
	Spec NodeNetworkSpec `json:"spec,omitempty"`
	// Status is set by the node's agent.
	// +optional
	Status NodeNetworkStatus `json:"status,omitempty"`
}

// NodeNetworkList is a list of NodeNetworks.
//
// +kubebuilder:object:root=true
type NodeNetworkList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the NodeNetworks.
	Items []NodeNetwork `json:"items"`
}

func init() {
	SchemeBuilder.Register(&NodeNetwork{}, &NodeNetworkList{})
}
