package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultClusterNetworkName is the name of the one ClusterNetwork that Plexus reconciles.
const DefaultClusterNetworkName = "default"

// IPFamily is an IP address family.
// +kubebuilder:validation:Enum=IPv4;IPv6
type IPFamily string

// IP families.
const (
	IPv4 IPFamily = "IPv4"
	IPv6 IPFamily = "IPv6"
)

// CIDR is an IP range in CIDR notation, written as its network address (10.244.0.0/16, fd00:10:244::/56).
// +kubebuilder:validation:MaxLength=43
// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="must be a CIDR such as 10.244.0.0/16 or fd00:10:244::/56"
// +kubebuilder:validation:XValidation:rule="!isCIDR(self) || cidr(self).masked() == cidr(self)",message="must be written as the network address of its range (no host bits set), e.g. 10.244.0.0/16 instead of 10.244.1.0/16"
type CIDR string

// ClusterNetworkSpec is the network a platform team wants. Plexus never writes it; the defaulted
// form it serves is reported in status.effective.
//
// +kubebuilder:validation:XValidation:rule="self.podNetwork.cidrs.all(c, !isCIDR(c) || (cidr(c).ip().family() == 4 ? 'IPv4' : 'IPv6') in self.ipFamilies)",message="podNetwork.cidrs: every CIDR must be of a family listed in ipFamilies"
// +kubebuilder:validation:XValidation:rule="self.ipFamilies.all(f, self.podNetwork.cidrs.exists(c, isCIDR(c) && (cidr(c).ip().family() == 4 ? 'IPv4' : 'IPv6') == f))",message="podNetwork.cidrs: every family in ipFamilies needs at least one pod CIDR"
// +kubebuilder:validation:XValidation:rule="!isCIDR(self.podNetwork.cidrs[0]) || (cidr(self.podNetwork.cidrs[0]).ip().family() == 4 ? 'IPv4' : 'IPv6') == self.ipFamilies[0]",message="podNetwork.cidrs: the first CIDR must be of the primary family, ipFamilies[0]"
// +kubebuilder:validation:XValidation:rule="self.serviceNetwork.cidrs.size() == self.ipFamilies.size() && self.serviceNetwork.cidrs.all(c, isCIDR(c)) && (cidr(self.serviceNetwork.cidrs[0]).ip().family() == 4 ? 'IPv4' : 'IPv6') == self.ipFamilies[0] && (self.serviceNetwork.cidrs.size() < 2 || (cidr(self.serviceNetwork.cidrs[1]).ip().family() == 4 ? 'IPv4' : 'IPv6') == self.ipFamilies[1])",message="serviceNetwork.cidrs: list exactly one CIDR per entry of ipFamilies, in the same order (ipFamilies [IPv4, IPv6] needs e.g. [10.96.0.0/16, fd00:10:96::/112])"
// +kubebuilder:validation:XValidation:rule="self.podNetwork.cidrs.all(p, self.serviceNetwork.cidrs.all(s, !isCIDR(p) || !isCIDR(s) || (!cidr(p).containsCIDR(s) && !cidr(s).containsCIDR(p))))",message="podNetwork.cidrs and serviceNetwork.cidrs must not overlap"
// +kubebuilder:validation:XValidation:rule="!has(self.dns) || !has(self.dns.serviceIP) || self.serviceNetwork.cidrs.exists(c, isCIDR(c) && isIP(self.dns.serviceIP) && cidr(c).containsIP(self.dns.serviceIP))",message="dns.serviceIP must be inside one of serviceNetwork.cidrs"
// +kubebuilder:validation:XValidation:rule="!has(self.routing) || !has(self.routing.mtu) || !('IPv6' in self.ipFamilies) || self.routing.mtu >= 1280",message="routing.mtu must be at least 1280 when IPv6 is enabled (the IPv6 minimum link MTU)"
type ClusterNetworkSpec struct {
	// IPFamilies lists the address families of the cluster network, primary first: [IPv4], [IPv6],
	// [IPv4, IPv6] or [IPv6, IPv4]. It cannot be changed after creation.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=2
	// +listType=atomic
	// +kubebuilder:validation:XValidation:rule="self.size() < 2 || self[0] != self[1]",message="ipFamilies must not list a family twice"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="ipFamilies cannot be changed after creation: moving between single and dual stack is a migration Plexus does not perform yet"
	IPFamilies []IPFamily `json:"ipFamilies"`

	// PodNetwork is where pod addresses come from.
	PodNetwork PodNetwork `json:"podNetwork"`

	// ServiceNetwork is where Service ClusterIPs come from. It must match the API server's
	// --service-cluster-ip-range.
	ServiceNetwork ServiceNetwork `json:"serviceNetwork"`

	// Routing says how pod traffic crosses between nodes.
	// +optional
	Routing *Routing `json:"routing,omitempty"`

	// ServiceProxy says how Services are load-balanced on each node.
	// +optional
	ServiceProxy *ServiceProxy `json:"serviceProxy,omitempty"`

	// NetworkPolicy says whether Kubernetes NetworkPolicy is enforced.
	// +optional
	NetworkPolicy *NetworkPolicy `json:"networkPolicy,omitempty"`

	// DNS configures the cluster DNS (CoreDNS) that Plexus deploys.
	// +optional
	DNS *DNS `json:"dns,omitempty"`

	// Ingress configures the ingress controller that Plexus deploys.
	// +optional
	Ingress *Ingress `json:"ingress,omitempty"`

	// Images overrides the images of the components Plexus runs. Empty fields use the images the
	// operator was built with.
	// +optional
	Images *Images `json:"images,omitempty"`

	// Agent places the node agent DaemonSet.
	// +optional
	Agent *AgentPlacement `json:"agent,omitempty"`
}

// PodNetwork is the pool of pod addresses, cut into one CIDR per node and family.
// +kubebuilder:validation:XValidation:rule="self.cidrs.all(c, !isCIDR(c) || cidr(c).ip().family() != 4 || (has(self.nodeMaskSizeIPv4) ? self.nodeMaskSizeIPv4 : 24) >= cidr(c).prefixLength())",message="nodeMaskSizeIPv4 (default 24) must be at least the prefix length of every IPv4 pod CIDR: a node's CIDR cannot be larger than the pool"
// +kubebuilder:validation:XValidation:rule="self.cidrs.all(c, !isCIDR(c) || cidr(c).ip().family() != 6 || (has(self.nodeMaskSizeIPv6) ? self.nodeMaskSizeIPv6 : 64) >= cidr(c).prefixLength())",message="nodeMaskSizeIPv6 (default 64) must be at least the prefix length of every IPv6 pod CIDR: a node's CIDR cannot be larger than the pool"
// +kubebuilder:validation:XValidation:rule="self.cidrs.all(c, !isCIDR(c) || (cidr(c).ip().family() == 4 ? (has(self.nodeMaskSizeIPv4) ? self.nodeMaskSizeIPv4 : 24) : (has(self.nodeMaskSizeIPv6) ? self.nodeMaskSizeIPv6 : 64)) - cidr(c).prefixLength() <= 16)",message="a pod CIDR may hold at most 65536 node CIDRs: the node mask size may be at most 16 bits longer than the CIDR's prefix length; use a longer prefix or a larger node mask size"
// +kubebuilder:validation:XValidation:rule="self.cidrs.all(a, self.cidrs.all(b, a == b || !isCIDR(a) || !isCIDR(b) || (!cidr(a).containsCIDR(b) && !cidr(b).containsCIDR(a))))",message="podNetwork.cidrs must not overlap each other"
type PodNetwork struct {
	// CIDRs are the pod address pools, primary family first. Add a CIDR to grow the pool; a CIDR
	// that has node allocations cannot be removed or shrunk.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +listType=set
	CIDRs []CIDR `json:"cidrs"`

	// NodeMaskSizeIPv4 is the prefix length of each node's IPv4 pod CIDR. Default 24 (254 pods).
	// Cannot be changed while nodes hold allocations.
	// +kubebuilder:validation:Minimum=8
	// +kubebuilder:validation:Maximum=30
	// +optional
	NodeMaskSizeIPv4 *int32 `json:"nodeMaskSizeIPv4,omitempty"`

	// NodeMaskSizeIPv6 is the prefix length of each node's IPv6 pod CIDR. Default 64.
	// Cannot be changed while nodes hold allocations.
	// +kubebuilder:validation:Minimum=48
	// +kubebuilder:validation:Maximum=126
	// +optional
	NodeMaskSizeIPv6 *int32 `json:"nodeMaskSizeIPv6,omitempty"`

	// WriteNodePodCIDRs makes Plexus also set Node.spec.podCIDRs on nodes where it is empty, for
	// tools that read it there. Default false: NodeNetwork is the record.
	// +optional
	WriteNodePodCIDRs *bool `json:"writeNodePodCIDRs,omitempty"`
}

// ServiceNetwork is the Service ClusterIP range.
type ServiceNetwork struct {
	// CIDRs holds one CIDR per entry of ipFamilies, in that order. Changing it is refused: the API
	// server allocates ClusterIPs from it.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=2
	// +listType=atomic
	CIDRs []CIDR `json:"cidrs"`

	// NodePortRange is the port range of NodePort Services, "first-last". Default "30000-32767".
	// It must match the API server's --service-node-port-range.
	// +kubebuilder:validation:MaxLength=11
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]{1,5}-[0-9]{1,5}$')",message="nodePortRange must look like 30000-32767"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[0-9]{1,5}-[0-9]{1,5}$') || (int(self.split('-')[0]) >= 1 && int(self.split('-')[1]) <= 65535 && int(self.split('-')[0]) < int(self.split('-')[1]))",message="nodePortRange must be first-last with 1 <= first < last <= 65535"
	// +optional
	NodePortRange string `json:"nodePortRange,omitempty"`
}

// RoutingMode is how pod traffic crosses between nodes.
// +kubebuilder:validation:Enum=Direct;VXLAN;Auto
type RoutingMode string

// Routing modes.
const (
	// RoutingDirect routes each peer's pod CIDR via the peer's node IP; nodes must share an L2 segment.
	RoutingDirect RoutingMode = "Direct"
	// RoutingVXLAN encapsulates pod traffic in VXLAN between all nodes.
	RoutingVXLAN RoutingMode = "VXLAN"
	// RoutingAuto routes directly to peers on the local node's subnet and uses VXLAN for the rest.
	RoutingAuto RoutingMode = "Auto"
)

// Routing configures pod connectivity between nodes.
type Routing struct {
	// Mode is Direct, VXLAN or Auto. Default Auto.
	// +optional
	Mode RoutingMode `json:"mode,omitempty"`

	// MTU of pod interfaces. Default: the uplink MTU, less the VXLAN overhead (50 bytes over IPv4,
	// 70 over IPv6) where VXLAN is used.
	// +kubebuilder:validation:Minimum=576
	// +kubebuilder:validation:Maximum=9216
	// +optional
	MTU *int32 `json:"mtu,omitempty"`

	// Masquerade source-NATs pod traffic that leaves the cluster's pod and service CIDRs to the
	// node's address. Pod-to-pod traffic is never masqueraded. Default true.
	// +optional
	Masquerade *bool `json:"masquerade,omitempty"`

	// VXLAN tunes the overlay used by VXLAN and Auto modes.
	// +optional
	VXLAN *VXLAN `json:"vxlan,omitempty"`
}

// VXLAN configures the overlay.
type VXLAN struct {
	// VNI is the VXLAN network identifier. Default 1.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=16777215
	// +optional
	VNI *int32 `json:"vni,omitempty"`

	// Port is the UDP port of the overlay. Default 4789 (the IANA VXLAN port).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port *int32 `json:"port,omitempty"`
}

// ServiceProxyMode selects the Service load-balancing backend.
// +kubebuilder:validation:Enum=nftables;ipvs;none
type ServiceProxyMode string

// Service proxy modes.
const (
	ServiceProxyNFTables ServiceProxyMode = "nftables"
	ServiceProxyIPVS     ServiceProxyMode = "ipvs"
	// ServiceProxyNone leaves Services to another proxy.
	ServiceProxyNone ServiceProxyMode = "none"
)

// ServiceProxy configures Service load balancing on every node.
type ServiceProxy struct {
	// Mode is nftables (default), ipvs or none.
	// +optional
	Mode ServiceProxyMode `json:"mode,omitempty"`

	// IPVS tunes the ipvs mode.
	// +optional
	IPVS *IPVS `json:"ipvs,omitempty"`

	// NodePortAddresses limits NodePorts to node addresses inside these CIDRs. Default: every
	// address of the node's uplink.
	// +kubebuilder:validation:MaxItems=16
	// +listType=set
	// +optional
	NodePortAddresses []CIDR `json:"nodePortAddresses,omitempty"`
}

// IPVS configures the ipvs service proxy.
type IPVS struct {
	// Scheduler is the IPVS scheduler. Default rr (round robin).
	// +kubebuilder:validation:Enum=rr;wrr;lc;wlc;lblc;lblcr;dh;sh;sed;nq;mh
	// +optional
	Scheduler string `json:"scheduler,omitempty"`
}

// NetworkPolicy configures NetworkPolicy enforcement.
type NetworkPolicy struct {
	// Enabled turns NetworkPolicy enforcement on. Default true. Turning it off removes every
	// policy rule from every node (all traffic is allowed); turning it on again restores
	// enforcement.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// KeepEstablishedConnections keeps the connections that were established while a policy
	// allowed them when a policy change stops allowing them: only new connections meet the new
	// rules. Default false: the agent deletes the conntrack entries of such connections right
	// after it programs the change, so their next packet is judged by the new rules and dropped
	// (a TCP peer sees its connection stall, then time out or reset).
	// +optional
	KeepEstablishedConnections *bool `json:"keepEstablishedConnections,omitempty"`
}

// DNS configures cluster DNS.
// +kubebuilder:validation:XValidation:rule="!has(self.forwardZones) || self.forwardZones.all(z, !((z.zone.endsWith('.') ? z.zone.substring(0, z.zone.size() - 1) : z.zone) == (has(self.clusterDomain) ? self.clusterDomain : 'cluster.local') || (z.zone.endsWith('.') ? z.zone.substring(0, z.zone.size() - 1) : z.zone).endsWith('.' + (has(self.clusterDomain) ? self.clusterDomain : 'cluster.local')) || (has(self.clusterDomain) ? self.clusterDomain : 'cluster.local').endsWith('.' + (z.zone.endsWith('.') ? z.zone.substring(0, z.zone.size() - 1) : z.zone))))",message="dns.forwardZones must not hold the cluster domain (default cluster.local), a zone inside it or a zone above it: CoreDNS would send the cluster's own names away"
type DNS struct {
	// Enabled deploys CoreDNS and the kube-dns Service. Default true.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// ClusterDomain is the DNS suffix of Services. Default cluster.local. It must match every
	// kubelet's clusterDomain and cannot be changed after it is first set.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="dns.clusterDomain cannot be changed: every kubelet and pod resolver is configured with it"
	// +optional
	ClusterDomain string `json:"clusterDomain,omitempty"`

	// ServiceIP is the ClusterIP of the kube-dns Service, inside the primary service CIDR. Default:
	// the tenth address of the first service CIDR (10.96.0.10 for 10.96.0.0/12). It must match every
	// kubelet's clusterDNS.
	// +kubebuilder:validation:MaxLength=39
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="dns.serviceIP must be an IP address such as 10.96.0.10"
	// +optional
	ServiceIP string `json:"serviceIP,omitempty"`

	// Replicas of the CoreDNS Deployment. Default: it grows with the cluster, one replica per 16
	// nodes, at least 2, never more than there are nodes (1 on a one-node cluster); status.effective
	// leaves it unset then, since the number follows the node count.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// Upstreams are the resolvers for names outside the cluster. Default: the node's /etc/resolv.conf.
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="self.all(u, isIP(u))",message="dns.upstreams must be IP addresses"
	// +listType=atomic
	// +optional
	Upstreams []string `json:"upstreams,omitempty"`

	// ForwardZones sends queries for particular zones to particular resolvers.
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=zone
	// +optional
	ForwardZones []ForwardZone `json:"forwardZones,omitempty"`

	// PodRecords says how CoreDNS answers pod A/AAAA records (1-2-3-4.<namespace>.pod.<domain>):
	// Insecure answers any well-formed name without looking the pod up (kube-dns compatible, and
	// CoreDNS needs no right to read Pods); Verified answers only for a pod that exists in that
	// namespace with that IP (CoreDNS then watches every Pod); Disabled answers none. Default Insecure.
	// +optional
	PodRecords DNSPodRecords `json:"podRecords,omitempty"`

	// CacheSeconds is how long CoreDNS caches answers. Default 30.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=3600
	// +optional
	CacheSeconds *int32 `json:"cacheSeconds,omitempty"`
}

// DNSPodRecords is how cluster DNS answers pod records.
// +kubebuilder:validation:Enum=Insecure;Verified;Disabled
type DNSPodRecords string

// Pod record modes.
const (
	DNSPodRecordsInsecure DNSPodRecords = "Insecure"
	DNSPodRecordsVerified DNSPodRecords = "Verified"
	DNSPodRecordsDisabled DNSPodRecords = "Disabled"
)

// ForwardZone forwards one DNS zone to its own resolvers.
type ForwardZone struct {
	// Zone is the DNS zone, e.g. corp.example.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\.?$`
	Zone string `json:"zone"`

	// Upstreams are the resolvers of the zone.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="self.all(u, isIP(u))",message="forwardZones[].upstreams must be IP addresses"
	// +listType=atomic
	Upstreams []string `json:"upstreams"`
}

// IngressServiceType is how the ingress controller is exposed.
// +kubebuilder:validation:Enum=LoadBalancer;NodePort;ClusterIP
type IngressServiceType string

// Ingress configures the ingress controller.
type Ingress struct {
	// Enabled deploys the ingress controller. Default false.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// Controller names the implementation. Only "plexus" exists today. Default plexus.
	// +kubebuilder:validation:Enum=plexus
	// +optional
	Controller string `json:"controller,omitempty"`

	// Replicas of the ingress controller Deployment. Default 2.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// ServiceType of the ingress controller's Service. Default LoadBalancer.
	// +optional
	ServiceType IngressServiceType `json:"serviceType,omitempty"`

	// DefaultTLSSecret is served for TLS hosts that name no certificate of their own.
	// +optional
	DefaultTLSSecret *SecretReference `json:"defaultTLSSecret,omitempty"`

	// IngressClassName is the IngressClass the controller serves. Default plexus.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	IngressClassName string `json:"ingressClassName,omitempty"`

	// GatewayAPI serves Gateway API routes too.
	// +optional
	GatewayAPI *GatewayAPI `json:"gatewayAPI,omitempty"`

	// Metrics counts requests per route and status class, their latency (a histogram) and
	// upstream errors per route (plexus_ingress_requests_total,
	// plexus_ingress_request_duration_seconds, plexus_ingress_upstream_errors_total) on the
	// controller's metrics port, 10254. Default false: counting costs CPU on every request.
	// +optional
	Metrics *bool `json:"metrics,omitempty"`

	// AccessLog writes one JSON line per request (host, method, URI, status, size, duration,
	// upstream) to the controller's standard output. Default false.
	// +optional
	AccessLog *bool `json:"accessLog,omitempty"`
}

// SecretReference names a Secret in a namespace.
type SecretReference struct {
	// Namespace of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// GatewayAPI configures Gateway API support.
type GatewayAPI struct {
	// Enabled serves Gateway API resources. Default false.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// GatewayClassName is the GatewayClass the controller serves. Default plexus.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	GatewayClassName string `json:"gatewayClassName,omitempty"`
}

// Images overrides component images.
type Images struct {
	// Agent is the plexus-agent image.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Agent string `json:"agent,omitempty"`
	// DNS is the CoreDNS image.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	DNS string `json:"dns,omitempty"`
	// Ingress is the ingress controller image.
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Ingress string `json:"ingress,omitempty"`
}

// AgentPlacement decides which nodes run the agent. Nodes without the agent get no pod network.
type AgentPlacement struct {
	// NodeSelector restricts the agent to matching nodes. Default: every Linux node.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// Tolerations of the agent pods. Default: tolerate every taint, since a node without the agent
	// has no pod network.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// PriorityClassName of the agent pods. Default system-node-critical.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`
}

// ClusterNetworkStatus is what Plexus observed and serves.
type ClusterNetworkStatus struct {
	// ObservedGeneration is the spec generation the operator last evaluated.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// AppliedGeneration is the spec generation of the configuration being served (status.effective).
	// It lags observedGeneration while a change is refused.
	// +optional
	AppliedGeneration int64 `json:"appliedGeneration,omitempty"`

	// Conditions: Ready, Progressing, Degraded, ConfigValid, PodCIDRsAllocated.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Effective is the configuration being served, with every default filled in. A refused change
	// leaves it at the last good configuration.
	// +optional
	Effective *ClusterNetworkSpec `json:"effective,omitempty"`

	// Nodes rolls up the NodeNetwork status of every node.
	// +optional
	Nodes NodeRollup `json:"nodes,omitempty"`

	// PodCIDRUsage reports how much of each pod CIDR is allocated to nodes.
	// +listType=atomic
	// +optional
	PodCIDRUsage []CIDRUsage `json:"podCIDRUsage,omitempty"`

	// DNSServiceIP is the ClusterIP of the cluster DNS Service.
	// +optional
	DNSServiceIP string `json:"dnsServiceIP,omitempty"`
}

// NodeRollup counts nodes by state.
type NodeRollup struct {
	// Total is the number of Nodes.
	// +optional
	Total int32 `json:"total,omitempty"`
	// Allocated is the number of Nodes holding a pod CIDR of every family.
	// +optional
	Allocated int32 `json:"allocated,omitempty"`
	// Ready is the number of nodes whose agent reports Ready.
	// +optional
	Ready int32 `json:"ready,omitempty"`
	// AtGeneration is the number of nodes whose agent has programmed status.appliedGeneration.
	// +optional
	AtGeneration int32 `json:"atGeneration,omitempty"`
	// Summary is "ready/total", for kubectl get.
	// +optional
	Summary string `json:"summary,omitempty"`
}

// CIDRUsage is the allocation state of one pod CIDR.
type CIDRUsage struct {
	// CIDR is the pod CIDR.
	CIDR string `json:"cidr"`
	// NodeMaskSize is the prefix length of node CIDRs cut from it.
	NodeMaskSize int32 `json:"nodeMaskSize"`
	// Capacity is how many node CIDRs it holds.
	Capacity int64 `json:"capacity"`
	// Allocated is how many are in use.
	Allocated int64 `json:"allocated"`
}

// ClusterNetwork is the cluster's whole network, declared in one place. Only the one named
// "default" is reconciled.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=cnet;cn
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Pod CIDRs",type=string,JSONPath=`.spec.podNetwork.cidrs`
// +kubebuilder:printcolumn:name="Service CIDRs",type=string,JSONPath=`.spec.serviceNetwork.cidrs`
// +kubebuilder:printcolumn:name="Nodes",type=string,JSONPath=`.status.nodes.summary`,description="nodes ready/total"
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63",message="metadata.name must be at most 63 characters"
type ClusterNetwork struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the network the user wants.
	Spec ClusterNetworkSpec `json:"spec"`
	// Status is what Plexus serves and observes.
	// +optional
	Status ClusterNetworkStatus `json:"status,omitempty"`
}

// ClusterNetworkList is a list of ClusterNetworks.
//
// +kubebuilder:object:root=true
type ClusterNetworkList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the ClusterNetworks.
	Items []ClusterNetwork `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ClusterNetwork{}, &ClusterNetworkList{})
}
