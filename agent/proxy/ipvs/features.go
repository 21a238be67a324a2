package ipvs

import "github.com/plexus-net/plexus/agent/proxy"

// Mode is the backend's serviceProxy.mode.
const Mode = "ipvs"

// Features is the IPVS backend's column of the feature table: what this
// implementation honours today (virtual servers plus the masquerade rules of
// NFTTable), each shown in the VM tests. Two rows rest on more than IPVS:
//   - HealthCheckNodePort: the agent's IPVS backend (agent/proxy/manager) drives
//     the same health check servers as the nftables backend
//     (agent/proxy/healthcheck) after each sync and stops them when the mode
//     is turned off.
//   - UDPConntrackFlush: the flows of a removed UDP endpoint are expired by
//     the kernel, IPVS connections and their conntrack entries alike
//     (net/ipv4/vs/expire_nodest_conn in Sysctls, which says why that and not
//     conntrack(8)).
//
// Every feature of proxy.AllFeatures is honoured.
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
		proxy.FeatureHealthCheckNodePort:        true,
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
		proxy.FeatureUDPConntrackFlush:          true,
	},
}

var _ proxy.FeatureTable = Features
