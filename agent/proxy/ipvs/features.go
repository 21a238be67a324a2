package ipvs

import "github.com/plexus-net/plexus/agent/proxy"

// Mode is the backend's serviceProxy.mode.
const Mode = "ipvs"

// Features is the IPVS backend's column of the feature table: what this
// implementation honours today (virtual servers plus the masquerade rules of
// NFTTable). Not (yet) honoured:
//   - HealthCheckNodePort: no health-check server in this backend.
//   - UDPConntrackFlush: stale UDP entries of removed endpoints stay until
//     they time out.
var Features = proxy.FeatureSet{
	Mode: Mode,
	Supported: map[proxy.Feature]bool{
		proxy.FeatureClusterIP:                  true,
		proxy.FeatureNodePort:                   true,
		proxy.FeatureLoadBalancerIP:             true,
		proxy.FeatureExternalIP:                 true,
		proxy.FeatureSessionAffinity:            true,
		proxy.FeatureSessionAffinityIPv6:        true,
		proxy.FeatureExternalTrafficPolicyLocal: true,
		proxy.FeatureInternalTrafficPolicyLocal: true,
		proxy.FeatureTerminatingFallback:        true,
		proxy.FeatureTopologyHints:              true,
		proxy.FeatureRejectNoEndpoints:          true,
		proxy.FeatureHairpin:                    true,
		proxy.FeatureTCP:                        true,
		proxy.FeatureUDP:                        true,
		proxy.FeatureSCTP:                       true,
		proxy.FeatureIPv6:                       true,
		proxy.FeatureDualStack:                  true,
	},
}

var _ proxy.Backend = Features
