package nftables

import "github.com/plexus-net/plexus/agent/proxy"

// Features is the nftables backend's row of the feature table.
var Features = proxy.FeatureSet{Mode: "nftables", Supported: map[proxy.Feature]bool{
	proxy.FeatureClusterIP: true, proxy.FeatureNodePort: true, proxy.FeatureLoadBalancerIP: true,
	proxy.FeatureExternalIP: true, proxy.FeatureSessionAffinity: true, proxy.FeatureSessionAffinityIPv6: true,
	proxy.FeatureExternalTrafficPolicyLocal: true, proxy.FeatureHealthCheckNodePort: true,
	proxy.FeatureInternalTrafficPolicyLocal: true, proxy.FeatureTerminatingFallback: true,
	proxy.FeatureTopologyHints: true, proxy.FeatureRejectNoEndpoints: true, proxy.FeatureHairpin: true,
	proxy.FeatureTCP: true, proxy.FeatureUDP: true, proxy.FeatureSCTP: true,
	proxy.FeatureIPv6: true, proxy.FeatureDualStack: true, proxy.FeatureUDPConntrackFlush: true,
}}
