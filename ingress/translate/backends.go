package translate

import (
	"fmt"
	"net"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
)

// backendIndex finds Services and their EndpointSlices by namespace/name.
type backendIndex struct {
	services map[types.NamespacedName]*corev1.Service
	slices   map[types.NamespacedName][]*discoveryv1.EndpointSlice
}

func newBackendIndex(services []corev1.Service, slices []discoveryv1.EndpointSlice) backendIndex {
	idx := backendIndex{
		services: make(map[types.NamespacedName]*corev1.Service, len(services)),
		slices:   make(map[types.NamespacedName][]*discoveryv1.EndpointSlice, len(services)),
	}
	for i := range services {
		s := &services[i]
		idx.services[types.NamespacedName{Namespace: s.Namespace, Name: s.Name}] = s
	}
	for i := range slices {
		es := &slices[i]
		svc := es.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		key := types.NamespacedName{Namespace: es.Namespace, Name: svc}
		idx.slices[key] = append(idx.slices[key], es)
	}
	return idx
}

// resolvedBackend is a backend's upstream addresses (host:port, sorted, unique), or, when it
// cannot be served, the problem that says why (reason and message).
type resolvedBackend struct {
	// id names the backend (namespace/service:port) for its named route.
	id        string
	upstreams []string
	// h2c says the Service port's appProtocol is kubernetes.io/h2c: HTTP/2 over cleartext with
	// prior knowledge (Gateway API backends honour it; Ingress, which has no such notion, not).
	h2c bool
	// tls is the BackendTLSPolicy applying to a Gateway backend (nil for none).
	tls     *backendTLS
	reason  string
	message string
}

// AppProtocolH2C is the Service port appProtocol of HTTP/2 over cleartext (prior knowledge).
const AppProtocolH2C = "kubernetes.io/h2c"

// resolve finds the ready endpoints of an Ingress backend in namespace ns.
func (idx backendIndex) resolve(ns string, b *networkingv1.IngressBackend) resolvedBackend {
	if b.Service == nil {
		return resolvedBackend{reason: ReasonBackendUnsupported, message: "resource backends are not supported; only service backends"}
	}
	key := types.NamespacedName{Namespace: ns, Name: b.Service.Name}
	svc, ok := idx.services[key]
	if !ok {
		return resolvedBackend{reason: ReasonServiceNotFound, message: fmt.Sprintf("service %s not found", key)}
	}
	portDesc := b.Service.Port.Name
	if portDesc == "" {
		portDesc = strconv.Itoa(int(b.Service.Port.Number))
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return resolvedBackend{reason: ReasonBackendUnsupported, message: fmt.Sprintf("service %s is of type ExternalName, which is not supported", key)}
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if (b.Service.Port.Name != "" && p.Name == b.Service.Port.Name) ||
			(b.Service.Port.Name == "" && p.Port == b.Service.Port.Number) {
			sp = p
			break
		}
	}
	if sp == nil || sp.Protocol == corev1.ProtocolUDP || sp.Protocol == corev1.ProtocolSCTP {
		return resolvedBackend{reason: ReasonServicePortNotFound, message: fmt.Sprintf("service %s has no TCP port %s", key, portDesc)}
	}
	seen := map[string]bool{}
	var ups []string
	for _, es := range idx.slices[key] {
		port := slicePort(es, sp.Name)
		if port == 0 {
			continue
		}
		for _, ep := range es.Endpoints {
			// Ready unset means ready (EndpointSlice API); terminating endpoints are not ready.
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, addr := range ep.Addresses {
				dial := net.JoinHostPort(addr, strconv.Itoa(int(port)))
				if !seen[dial] {
					seen[dial] = true
					ups = append(ups, dial)
				}
			}
		}
	}
	if len(ups) == 0 {
		return resolvedBackend{reason: ReasonNoReadyEndpoints, message: fmt.Sprintf("service %s port %s has no ready endpoints", key, portDesc)}
	}
	sort.Strings(ups)
	return resolvedBackend{id: key.String() + ":" + portDesc, upstreams: ups, h2c: sp.AppProtocol != nil && *sp.AppProtocol == AppProtocolH2C}
}

// slicePort is the TCP port number of the slice's port named name (the Service port's name,
// "" for an unnamed port), or 0.
func slicePort(es *discoveryv1.EndpointSlice, name string) int32 {
	for _, p := range es.Ports {
		pn := ""
		if p.Name != nil {
			pn = *p.Name
		}
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		if pn == name && proto == corev1.ProtocolTCP && p.Port != nil {
			return *p.Port
		}
	}
	return 0
}
