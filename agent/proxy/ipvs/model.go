package ipvs

import (
	"net/netip"
	"slices"
	"time"

	"github.com/plexus-net/plexus/agent/proxy"
	corev1 "k8s.io/api/core/v1"
)

// Config is what the IPVS backend takes from the ClusterNetwork besides
// the model.
type Config struct {
	// Scheduler is serviceProxy.ipvs.scheduler; "" means DefaultScheduler.
	Scheduler string
}

// DesiredState turns the model into what IPVS and the dummy device should
// hold: per VIP of every service port one virtual server whose real servers
// are the endpoints traffic of that kind gets; ClusterIPs, load-balancer
// and external IPs bound on the dummy device; NodePorts on the node's
// addresses. It is pure.
//
// A VIP whose action is Reject or Drop gets a virtual server without real
// servers: IPVS answers new connections with ICMP port unreachable (a TCP
// client sees "connection refused"). For Drop, NFTTable drops the packets
// before IPVS sees them.
func DesiredState(m proxy.Model, cfg Config) State {
	sched := cfg.Scheduler
	if sched == "" {
		sched = DefaultScheduler
	}
	// The device is wanted even without virtual IPs: the mode is on.
	s := State{Device: true}
	seen := map[VirtualServerKey]bool{}
	for _, key := range m.Keys() {
		sp := m.Ports[key]
		proto := protocolOf(sp.Protocol)
		var persistence time.Duration
		if sp.SessionAffinity {
			persistence = time.Duration(sp.AffinityTimeoutSeconds) * time.Second
		}
		for _, vip := range sp.VIPs {
			vs := VirtualServer{Address: vip.Addr, Protocol: proto, Port: vip.Port, Scheduler: sched, Persistence: persistence}
			// Two Services claiming one external IP and port: the first
			// in key order wins, as the model's order is stable.
			if seen[vs.Key()] {
				continue
			}
			seen[vs.Key()] = true
			svc := Service{VirtualServer: vs}
			for _, ep := range sp.EndpointsFor(vip.Kind) {
				svc.RealServers = append(svc.RealServers, RealServer{Address: ep.Addr, Port: ep.Port, Weight: DefaultWeight})
			}
			s.Services = append(s.Services, svc)
			if vip.Kind == proxy.NodePort {
				s.NodeAddresses = appendUnique(s.NodeAddresses, vip.Addr)
			} else {
				s.Bound = appendUnique(s.Bound, vip.Addr)
			}
		}
	}
	s.Sort()
	return s
}

func appendUnique(to []netip.Addr, a netip.Addr) []netip.Addr {
	if slices.Contains(to, a) {
		return to
	}
	return append(to, a)
}

func protocolOf(p corev1.Protocol) Protocol {
	switch p {
	case corev1.ProtocolUDP:
		return UDP
	case corev1.ProtocolSCTP:
		return SCTP
	}
	return TCP
}
