package healthcheck

import "github.com/plexus-net/plexus/agent/proxy"

// Ports returns what Servers.Sync takes for model m: per health check node
// port, the Service's local endpoint count (the largest over its ports and
// families, as any of them serving locally makes the node worth sending
// traffic to). No such port is an empty map, which stops every server.
func Ports(m proxy.Model) map[uint16]int {
	out := map[uint16]int{}
	for _, sp := range m.Ports {
		if sp.HealthCheckNodePort == 0 {
			continue
		}
		if c, ok := out[sp.HealthCheckNodePort]; !ok || sp.LocalEndpoints > c {
			out[sp.HealthCheckNodePort] = sp.LocalEndpoints
		}
	}
	return out
}
