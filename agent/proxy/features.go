package proxy

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Feature is a Service behaviour a backend may or may not honour. The
// values are stable: they appear in NodeNetwork status and in Events.
type Feature string

const (
	// FeatureClusterIP: traffic to the cluster IP is balanced over endpoints.
	FeatureClusterIP Feature = "ClusterIP"
	// FeatureNodePort: the node port on the node's (NodePort) addresses.
	FeatureNodePort Feature = "NodePort"
	// FeatureLoadBalancerIP: status.loadBalancer.ingress IPs.
	FeatureLoadBalancerIP Feature = "LoadBalancerIP"
	// FeatureExternalIP: spec.externalIPs.
	FeatureExternalIP Feature = "ExternalIP"
	// FeatureSessionAffinity: sessionAffinity ClientIP with its timeout.
	FeatureSessionAffinity Feature = "SessionAffinityClientIP"
	// FeatureSessionAffinityIPv6: the same for IPv6 service ports.
	FeatureSessionAffinityIPv6 Feature = "SessionAffinityClientIPv6"
	// FeatureExternalTrafficPolicyLocal: eTP Local, client source kept.
	FeatureExternalTrafficPolicyLocal Feature = "ExternalTrafficPolicyLocal"
	// FeatureHealthCheckNodePort: the eTP Local health check server.
	FeatureHealthCheckNodePort Feature = "HealthCheckNodePort"
	// FeatureInternalTrafficPolicyLocal: iTP Local, never leaves the node.
	FeatureInternalTrafficPolicyLocal Feature = "InternalTrafficPolicyLocal"
	// FeatureTerminatingFallback: terminating endpoints used only when no
	// ready one remains.
	FeatureTerminatingFallback Feature = "TerminatingEndpointFallback"
	// FeatureTopologyHints: zone hints of EndpointSlices.
	FeatureTopologyHints Feature = "TopologyHints"
	// FeatureRejectNoEndpoints: no endpoints → immediate reject.
	FeatureRejectNoEndpoints Feature = "RejectWithoutEndpoints"
	// FeatureHairpin: an endpoint reaching itself through its Service.
	FeatureHairpin Feature = "Hairpin"
	// FeatureTCP: TCP service ports.
	FeatureTCP Feature = "TCP"
	// FeatureUDP: UDP service ports.
	FeatureUDP Feature = "UDP"
	// FeatureSCTP: SCTP service ports.
	FeatureSCTP Feature = "SCTP"
	// FeatureIPv6: IPv6 service ports.
	FeatureIPv6 Feature = "IPv6"
	// FeatureDualStack: Services with both families.
	FeatureDualStack Feature = "DualStack"
	// FeatureUDPConntrackFlush: conntrack entries of removed UDP endpoints
	// are flushed.
	FeatureUDPConntrackFlush Feature = "UDPConntrackFlush"
)

// AllFeatures lists every Feature in a stable order (the rows of the table).
var AllFeatures = []Feature{
	FeatureClusterIP, FeatureNodePort, FeatureLoadBalancerIP, FeatureExternalIP,
	FeatureSessionAffinity, FeatureSessionAffinityIPv6, FeatureExternalTrafficPolicyLocal, FeatureHealthCheckNodePort,
	FeatureInternalTrafficPolicyLocal, FeatureTerminatingFallback, FeatureTopologyHints,
	FeatureRejectNoEndpoints, FeatureHairpin, FeatureTCP, FeatureUDP, FeatureSCTP,
	FeatureIPv6, FeatureDualStack, FeatureUDPConntrackFlush,
}

// FeatureTable is one backend's row of the feature table: which Service
// behaviours the serviceProxy mode Name honours.
type FeatureTable interface {
	// Name is the backend's serviceProxy.mode ("nftables", "ipvs").
	Name() string
	// Supports says whether the backend honours f; unknown features are
	// not supported.
	Supports(f Feature) bool
}

// FeatureSet is a FeatureTable held as a map.
type FeatureSet struct {
	// Mode is the backend's name.
	Mode string
	// Supported holds the features the backend honours.
	Supported map[Feature]bool
}

// Name returns Mode.
func (s FeatureSet) Name() string { return s.Mode }

// Supports looks f up in Supported.
func (s FeatureSet) Supports(f Feature) bool { return s.Supported[f] }

// Table returns the supported features of b in AllFeatures order, and the
// unsupported ones, for NodeNetwork status.
func Table(b FeatureTable) (supported, unsupported []Feature) {
	for _, f := range AllFeatures {
		if b.Supports(f) {
			supported = append(supported, f)
		} else {
			unsupported = append(unsupported, f)
		}
	}
	return supported, unsupported
}

// UsedFeatures lists the features svc relies on, in AllFeatures order.
// slices are the Service's EndpointSlices (for topology hints and
// terminating endpoints); nil is fine.
func UsedFeatures(svc *corev1.Service, epSlices []*discoveryv1.EndpointSlice) []Feature {
	if svc.Spec.Type == corev1.ServiceTypeExternalName || len(clusterIPs(svc)) == 0 || clusterIPs(svc)[0] == corev1.ClusterIPNone {
		return nil
	}
	used := map[Feature]bool{FeatureClusterIP: true, FeatureRejectNoEndpoints: true, FeatureHairpin: true}
	np := svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer
	used[FeatureNodePort] = np
	used[FeatureLoadBalancerIP] = svc.Spec.Type == corev1.ServiceTypeLoadBalancer && len(svc.Status.LoadBalancer.Ingress) > 0
	used[FeatureExternalIP] = len(svc.Spec.ExternalIPs) > 0
	used[FeatureSessionAffinity] = svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP
	etpLocal := svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal &&
		(np || len(svc.Spec.ExternalIPs) > 0)
	used[FeatureExternalTrafficPolicyLocal] = etpLocal
	used[FeatureHealthCheckNodePort] = etpLocal && svc.Spec.HealthCheckNodePort != 0
	used[FeatureInternalTrafficPolicyLocal] = svc.Spec.InternalTrafficPolicy != nil &&
		*svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal
	for _, p := range svc.Spec.Ports {
		switch p.Protocol {
		case corev1.ProtocolUDP:
			used[FeatureUDP], used[FeatureUDPConntrackFlush] = true, true
		case corev1.ProtocolSCTP:
			used[FeatureSCTP] = true
		default:
			used[FeatureTCP] = true
		}
	}
	for _, ip := range clusterIPs(svc) {
		if a, ok := parseFamily(ip, IPv6); ok && a.IsValid() {
			used[FeatureIPv6] = true
		}
	}
	used[FeatureDualStack] = len(clusterIPs(svc)) > 1
	used[FeatureSessionAffinityIPv6] = used[FeatureSessionAffinity] && used[FeatureIPv6]
	for _, s := range epSlices {
		for _, e := range s.Endpoints {
			if e.Hints != nil && len(e.Hints.ForZones) > 0 {
				used[FeatureTopologyHints] = true
			}
			if e.Conditions.Terminating != nil && *e.Conditions.Terminating {
				used[FeatureTerminatingFallback] = true
			}
		}
	}
	var out []Feature
	for _, f := range AllFeatures {
		if used[f] {
			out = append(out, f)
		}
	}
	return out
}

// Unsupported lists the features svc uses that b cannot honour, in
// AllFeatures order; empty when b honours everything svc needs. The agent
// turns a non-empty list into a Warning Event on the Service.
func Unsupported(b FeatureTable, svc *corev1.Service, epSlices []*discoveryv1.EndpointSlice) []Feature {
	return slices.DeleteFunc(UsedFeatures(svc, epSlices), b.Supports)
}

// EventReasonUnsupportedFeature is the reason of the Warning Event on a
// Service that uses features the active backend cannot honour.
const EventReasonUnsupportedFeature = "UnsupportedServiceFeature"

// EventMessage is the message of that Event, e.g. `serviceProxy mode
// "nftables" cannot honour SessionAffinityClientIPv6; the Service is
// proxied without it`. Empty when missing is empty.
func EventMessage(b FeatureTable, missing []Feature) string {
	if len(missing) == 0 {
		return ""
	}
	names := make([]string, len(missing))
	for i, f := range missing {
		names[i] = string(f)
	}
	return fmt.Sprintf("serviceProxy mode %q cannot honour %s; the Service is proxied without %s",
		b.Name(), strings.Join(names, ", "), map[bool]string{true: "it", false: "them"}[len(missing) == 1])
}
