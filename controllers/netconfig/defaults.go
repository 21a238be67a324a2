// Package netconfig holds the pure functions that turn a ClusterNetwork spec into the configuration
// Plexus serves: Default, Validate, IsChangeSafe and the live overlap check. None of them reads the
// API server, the clock or the environment.
package netconfig

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// Defaults documented on the API fields.
const (
	DefaultNodeMaskSizeIPv4  = 24
	DefaultNodeMaskSizeIPv6  = 64
	DefaultNodePortRange     = "30000-32767"
	DefaultVXLANVNI          = 1
	DefaultVXLANPort         = 4789
	DefaultIPVSScheduler     = "rr"
	DefaultClusterDomain     = "cluster.local"
	DefaultDNSCacheSeconds   = 30
	DefaultIngressController = "plexus"
	DefaultIngressReplicas   = 2
	DefaultIngressClassName  = "plexus"
	DefaultGatewayClassName  = "plexus"
	DefaultPriorityClassName = "system-node-critical"
	dnsServiceIPOffset       = 10
	linuxNodeSelectorKey     = "kubernetes.io/os"
	linuxNodeSelectorValue   = "linux"
)

// Images are the component images the operator was built or configured with; they fill the fields
// of spec.images that the user left empty.
type Images struct {
	Agent   string
	DNS     string
	Ingress string
}

// Default returns the effective configuration: the spec with every optional field filled in. The
// input is not modified.
func Default(spec v1.ClusterNetworkSpec, images Images) v1.ClusterNetworkSpec {
	out := *spec.DeepCopy()

	pn := &out.PodNetwork
	if pn.NodeMaskSizeIPv4 == nil {
		pn.NodeMaskSizeIPv4 = ptr.To[int32](DefaultNodeMaskSizeIPv4)
	}
	if pn.NodeMaskSizeIPv6 == nil {
		pn.NodeMaskSizeIPv6 = ptr.To[int32](DefaultNodeMaskSizeIPv6)
	}
	if pn.WriteNodePodCIDRs == nil {
		pn.WriteNodePodCIDRs = ptr.To(false)
	}
	if out.ServiceNetwork.NodePortRange == "" {
		out.ServiceNetwork.NodePortRange = DefaultNodePortRange
	}

	if out.Routing == nil {
		out.Routing = &v1.Routing{}
	}
	if out.Routing.Mode == "" {
		out.Routing.Mode = v1.RoutingAuto
	}
	if out.Routing.Masquerade == nil {
		out.Routing.Masquerade = ptr.To(true)
	}
	if out.Routing.VXLAN == nil {
		out.Routing.VXLAN = &v1.VXLAN{}
	}
	if out.Routing.VXLAN.VNI == nil {
		out.Routing.VXLAN.VNI = ptr.To[int32](DefaultVXLANVNI)
	}
	if out.Routing.VXLAN.Port == nil {
		out.Routing.VXLAN.Port = ptr.To[int32](DefaultVXLANPort)
	}

	if out.ServiceProxy == nil {
		out.ServiceProxy = &v1.ServiceProxy{}
	}
	if out.ServiceProxy.Mode == "" {
		out.ServiceProxy.Mode = v1.ServiceProxyNFTables
	}
	if out.ServiceProxy.IPVS == nil {
		out.ServiceProxy.IPVS = &v1.IPVS{}
	}
	if out.ServiceProxy.IPVS.Scheduler == "" {
		out.ServiceProxy.IPVS.Scheduler = DefaultIPVSScheduler
	}

	if out.NetworkPolicy == nil {
		out.NetworkPolicy = &v1.NetworkPolicy{}
	}
	if out.NetworkPolicy.Enabled == nil {
		out.NetworkPolicy.Enabled = ptr.To(true)
	}

	defaultDNS(&out)
	defaultIngress(&out)

	if out.Images == nil {
		out.Images = &v1.Images{}
	}
	fill(&out.Images.Agent, images.Agent)
	fill(&out.Images.DNS, images.DNS)
	fill(&out.Images.Ingress, images.Ingress)

	if out.Agent == nil {
		out.Agent = &v1.AgentPlacement{}
	}
	if out.Agent.NodeSelector == nil {
		out.Agent.NodeSelector = map[string]string{linuxNodeSelectorKey: linuxNodeSelectorValue}
	}
	if out.Agent.Tolerations == nil {
		out.Agent.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
	}
	fill(&out.Agent.PriorityClassName, DefaultPriorityClassName)
	return out
}

func defaultDNS(out *v1.ClusterNetworkSpec) {
	if out.DNS == nil {
		out.DNS = &v1.DNS{}
	}
	d := out.DNS
	if d.Enabled == nil {
		d.Enabled = ptr.To(true)
	}
	fill(&d.ClusterDomain, DefaultClusterDomain)
	if d.ServiceIP == "" && len(out.ServiceNetwork.CIDRs) > 0 {
		if p, err := netip.ParsePrefix(string(out.ServiceNetwork.CIDRs[0])); err == nil {
			d.ServiceIP = NthAddress(p, dnsServiceIPOffset).String()
		}
	}
	// Replicas stay unset: the number then follows the node count (render.DNSReplicas).
	if d.PodRecords == "" {
		d.PodRecords = v1.DNSPodRecordsInsecure
	}
	if d.CacheSeconds == nil {
		d.CacheSeconds = ptr.To[int32](DefaultDNSCacheSeconds)
	}
}

func defaultIngress(out *v1.ClusterNetworkSpec) {
	if out.Ingress == nil {
		out.Ingress = &v1.Ingress{}
	}
	in := out.Ingress
	if in.Enabled == nil {
		in.Enabled = ptr.To(false)
	}
	fill(&in.Controller, DefaultIngressController)
	if in.Replicas == nil {
		in.Replicas = ptr.To[int32](DefaultIngressReplicas)
	}
	if in.ServiceType == "" {
		in.ServiceType = "LoadBalancer"
	}
	fill(&in.IngressClassName, DefaultIngressClassName)
	if in.GatewayAPI == nil {
		in.GatewayAPI = &v1.GatewayAPI{}
	}
	if in.GatewayAPI.Enabled == nil {
		in.GatewayAPI.Enabled = ptr.To(false)
	}
	fill(&in.GatewayAPI.GatewayClassName, DefaultGatewayClassName)
	if in.Metrics == nil {
		in.Metrics = ptr.To(false)
	}
	if in.AccessLog == nil {
		in.AccessLog = ptr.To(false)
	}
}

func fill(field *string, def string) {
	if *field == "" {
		*field = def
	}
}

// NthAddress returns the address n places after the network address of p (n small).
func NthAddress(p netip.Prefix, n int) netip.Addr {
	a := p.Masked().Addr()
	for i := 0; i < n; i++ {
		a = a.Next()
	}
	return a
}
