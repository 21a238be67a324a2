package proxy

import (
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

const (
	// defaultAffinityTimeoutSeconds is Kubernetes' default ClientIP
	// affinity timeout (3 hours).
	defaultAffinityTimeoutSeconds = 10800

	// LabelServiceProxyName on a Service hands it to another service
	// proxy: this one programs nothing for it (kube-proxy's informers
	// select "this label does not exist").
	LabelServiceProxyName = "service.kubernetes.io/service-proxy-name"
	// LabelHeadless on an EndpointSlice (or Service) marks it as belonging
	// to a headless Service: no proxy uses it, whatever the Service says.
	LabelHeadless = corev1.IsHeadlessService
)

// OtherProxy says whether svc belongs to another service proxy (it
// carries LabelServiceProxyName) or is labelled headless: the proxy
// programs nothing for it, and starts as soon as the label goes.
func OtherProxy(svc *corev1.Service) bool {
	_, named := svc.Labels[LabelServiceProxyName]
	_, headless := svc.Labels[LabelHeadless]
	return named || headless
}

// ignoredSlice says whether an EndpointSlice is left out of every Service:
// one labelled headless.
func ignoredSlice(s *discoveryv1.EndpointSlice) bool {
	_, headless := s.Labels[LabelHeadless]
	return headless
}

// sliceKey groups EndpointSlices by the Service they belong to.
type sliceKey struct{ namespace, service string }

// Build computes the model for node from all Services and EndpointSlices.
// It is pure: the same input gives the same Model. Services that the proxy
// does not program (ExternalName, headless, another proxy's: OtherProxy)
// are left out; EndpointSlices without a Service, and those labelled
// headless, are ignored.
func Build(services []*corev1.Service, slices []*discoveryv1.EndpointSlice, node NodeInfo) Model {
	bySvc := make(map[sliceKey][]*discoveryv1.EndpointSlice, len(services))
	for _, s := range slices {
		name := s.Labels[discoveryv1.LabelServiceName]
		if name == "" {
			continue
		}
		k := sliceKey{s.Namespace, name}
		bySvc[k] = append(bySvc[k], s)
	}
	m := Model{Ports: make(map[Key]*ServicePort, len(services))}
	for _, svc := range services {
		for _, sp := range buildService(svc, bySvc[sliceKey{svc.Namespace, svc.Name}], node) {
			m.Ports[sp.Key] = sp
		}
	}
	return m
}

// buildService returns the service ports (per family) of one Service.
func buildService(svc *corev1.Service, slices []*discoveryv1.EndpointSlice, node NodeInfo) []*ServicePort {
	if svc.Spec.Type == corev1.ServiceTypeExternalName || OtherProxy(svc) {
		return nil
	}
	var out []*ServicePort
	for _, ipStr := range clusterIPs(svc) {
		cip, err := netip.ParseAddr(ipStr)
		if err != nil {
			continue // "None" (headless) or garbage: nothing to proxy
		}
		cip = cip.Unmap()
		fam := FamilyOf(cip)
		for i := range svc.Spec.Ports {
			out = append(out, buildPort(svc, &svc.Spec.Ports[i], cip, fam, slices, node))
		}
	}
	return out
}

// clusterIPs returns spec.clusterIPs, or spec.clusterIP for objects written
// before dual-stack.
func clusterIPs(svc *corev1.Service) []string {
	if len(svc.Spec.ClusterIPs) > 0 {
		return svc.Spec.ClusterIPs
	}
	if svc.Spec.ClusterIP != "" {
		return []string{svc.Spec.ClusterIP}
	}
	return nil
}

func buildPort(svc *corev1.Service, p *corev1.ServicePort, cip netip.Addr, fam Family,
	slices []*discoveryv1.EndpointSlice, node NodeInfo) *ServicePort {
	proto := p.Protocol
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	sp := &ServicePort{
		Key:       Key{ServicePortName{svc.Namespace, svc.Name, p.Name}, fam},
		Protocol:  proto,
		ClusterIP: cip,
		Port:      uint16(p.Port),
	}
	sp.VIPs = append(sp.VIPs, VIP{ClusterIP, cip, sp.Port})
	if (svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer) && p.NodePort > 0 {
		sp.NodePort = uint16(p.NodePort)
		for _, a := range nodePortAddresses(node, fam) {
			sp.VIPs = append(sp.VIPs, VIP{NodePort, a, sp.NodePort})
		}
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			// ipMode Proxy: the load balancer itself delivers to the node,
			// so the proxy must not capture the address (KEP-1860).
			if ing.IPMode != nil && *ing.IPMode == corev1.LoadBalancerIPModeProxy {
				continue
			}
			if a, ok := parseFamily(ing.IP, fam); ok {
				sp.VIPs = append(sp.VIPs, VIP{LoadBalancerIP, a, sp.Port})
			}
		}
	}
	for _, s := range svc.Spec.ExternalIPs {
		if a, ok := parseFamily(s, fam); ok {
			sp.VIPs = append(sp.VIPs, VIP{ExternalIP, a, sp.Port})
		}
	}
	sp.VIPs = sortVIPs(sp.VIPs)

	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		sp.SessionAffinity = true
		sp.AffinityTimeoutSeconds = defaultAffinityTimeoutSeconds
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			sp.AffinityTimeoutSeconds = *c.ClientIP.TimeoutSeconds
		}
	}
	sp.InternalPolicyLocal = svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal
	externalReachable := sp.NodePort != 0 || len(sp.VIPs) > 1
	sp.ExternalPolicyLocal = externalReachable && svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	if sp.ExternalPolicyLocal && svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		sp.HealthCheckNodePort = uint16(svc.Spec.HealthCheckNodePort)
	}

	sp.Endpoints = endpointsOf(p, proto, fam, slices, node.Name)
	selectEndpoints(sp, node.Zone)
	sp.hash = hashPort(sp)
	return sp
}

// nodePortAddresses returns the node's addresses of fam that NodePorts
// listen on.
func nodePortAddresses(node NodeInfo, fam Family) []netip.Addr {
	var out []netip.Addr
	for _, a := range node.Addresses {
		a = a.Unmap()
		if FamilyOf(a) != fam {
			continue
		}
		if len(node.NodePortAddresses) > 0 && !slices.ContainsFunc(node.NodePortAddresses, func(p netip.Prefix) bool { return p.Contains(a) }) {
			continue
		}
		out = append(out, a)
	}
	return out
}

func parseFamily(s string, fam Family) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	a = a.Unmap()
	return a, FamilyOf(a) == fam
}

func sortVIPs(v []VIP) []VIP {
	slices.SortFunc(v, func(a, b VIP) int {
		if a.Kind != b.Kind {
			return int(a.Kind) - int(b.Kind)
		}
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		return int(a.Port) - int(b.Port)
	})
	return slices.CompactFunc(v, func(a, b VIP) bool { return a == b })
}

// endpointsOf collects the endpoints of service port p in family fam from
// the Service's slices: the slice port with p's name and protocol gives the
// target port. An address listed twice (slices overlap while the
// controller moves endpoints) is kept once, preferring the ready copy.
func endpointsOf(p *corev1.ServicePort, proto corev1.Protocol, fam Family, slices []*discoveryv1.EndpointSlice, nodeName string) []Endpoint {
	want := discoveryv1.AddressTypeIPv4
	if fam == IPv6 {
		want = discoveryv1.AddressTypeIPv6
	}
	n := 0
	for _, s := range slices {
		n += len(s.Endpoints)
	}
	out := make([]Endpoint, 0, n)
	for _, s := range slices {
		if s.AddressType != want || ignoredSlice(s) {
			continue
		}
		port, ok := slicePort(s, p.Name, proto)
		if !ok {
			continue
		}
		for i := range s.Endpoints {
			if e := endpointOf(&s.Endpoints[i], port, nodeName); e.Addr.IsValid() {
				out = append(out, e)
			}
		}
	}
	slicesSortEndpoints(out)
	// Duplicates sort next to each other, ready copies first.
	return slicesCompactEndpoints(out)
}

func slicesCompactEndpoints(eps []Endpoint) []Endpoint {
	if len(eps) < 2 {
		return eps
	}
	w := 1
	for _, e := range eps[1:] {
		if e.AddrPort() == eps[w-1].AddrPort() {
			continue
		}
		eps[w] = e
		w++
	}
	return eps[:w]
}

func slicePort(s *discoveryv1.EndpointSlice, name string, proto corev1.Protocol) (uint16, bool) {
	for _, sp := range s.Ports {
		n, pr := "", corev1.ProtocolTCP
		if sp.Name != nil {
			n = *sp.Name
		}
		if sp.Protocol != nil {
			pr = *sp.Protocol
		}
		if n == name && pr == proto && sp.Port != nil && *sp.Port > 0 {
			return uint16(*sp.Port), true
		}
	}
	return 0, false
}

func endpointOf(se *discoveryv1.Endpoint, port uint16, nodeName string) Endpoint {
	if len(se.Addresses) == 0 {
		return Endpoint{}
	}
	// Only the first address counts: the API says consumers use it.
	a, err := netip.ParseAddr(se.Addresses[0])
	if err != nil {
		return Endpoint{}
	}
	e := Endpoint{Addr: a.Unmap(), Port: port, Ready: true}
	if c := se.Conditions.Ready; c != nil {
		e.Ready = *c
	}
	e.Serving = e.Ready
	if c := se.Conditions.Serving; c != nil {
		e.Serving = *c
	}
	if c := se.Conditions.Terminating; c != nil {
		e.Terminating = *c
	}
	if se.NodeName != nil {
		e.NodeName = *se.NodeName
		e.Local = nodeName != "" && e.NodeName == nodeName
	}
	if se.Hints != nil {
		for _, z := range se.Hints.ForZones {
			e.ZoneHints = append(e.ZoneHints, z.Name)
		}
		slices.Sort(e.ZoneHints)
	}
	return e
}

func slicesSortEndpoints(eps []Endpoint) {
	slices.SortFunc(eps, func(a, b Endpoint) int {
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		if a.Port != b.Port {
			return int(a.Port) - int(b.Port)
		}
		if a.Ready != b.Ready {
			if a.Ready {
				return -1
			}
			return 1
		}
		return strings.Compare(a.NodeName, b.NodeName)
	})
}
