package translate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Every served Gateway has a data-plane address of its own: a Service in the controller's
// namespace (Options.GatewayServiceNamespace) that selects the plexus-ingress pods, with one port
// per distinct listener port. Each of those ports targets an internal container port allocated for
// that (Gateway, listener port) pair, on which every replica's proxy serves that Gateway's
// listeners of that port and nothing else. The allocation is recorded in the Service itself
// (spec.ports[].targetPort): every replica reads it from its cache, so all of them serve the same
// internal ports, and it survives restarts and leader changes. The elected leader alone allocates
// and writes the Services (AllocateGatewayPorts, GatewayService) and deletes the Service of a
// Gateway that is gone.

// Labels and annotations of the per-Gateway Services. They deliberately differ from the labels the
// operator prunes its own objects by: the operator does not own these Services.
const (
	// GatewayServiceLabel marks a per-Gateway Service (value "true").
	GatewayServiceLabel = "ingress.plexus.dev/gateway-service"
	// GatewayNamespaceAnnotation and GatewayNameAnnotation name the Gateway a Service serves
	// (annotations: a Gateway's name may be longer than a label value).
	GatewayNamespaceAnnotation = "ingress.plexus.dev/gateway-namespace"
	GatewayNameAnnotation      = "ingress.plexus.dev/gateway-name"
	// ManagedByLabel and ManagedBy say who writes the Service.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "plexus-ingress"
)

// Default range of the internal container ports (Options.GatewayPortFirst, GatewayPortLast):
// above 1024 (the proxy runs without capabilities) and clear of the Ingress sockets (8080, 8443),
// the metrics (10254) and health (10256) ports.
const (
	DefaultGatewayPortFirst = 20000
	DefaultGatewayPortLast  = 29999
)

// ListenerPort is one distinct port of a Gateway's accepted listeners and the protocol the
// Gateway serves on it (HTTP or HTTPS).
type ListenerPort struct {
	Port     int32
	Protocol gwv1.ProtocolType
}

// GatewayPorts maps a Gateway's listener ports to the internal container ports serving them.
type GatewayPorts map[int32]int32

// PortAllocation is the internal ports of every Gateway that has them.
type PortAllocation map[types.NamespacedName]GatewayPorts

// ServicePorts are the distinct ports of the Gateway's accepted, unconflicted listeners, sorted:
// the ports its Service exposes. A Gateway that is not accepted has none.
func (g *GatewayResult) ServicePorts() []ListenerPort {
	if !g.Accepted.OK {
		return nil
	}
	seen := map[int32]bool{}
	var out []ListenerPort
	for i := range g.Listeners {
		l := &g.Listeners[i]
		if !l.Accepted.OK || l.Conflicted.OK || l.server == "" || seen[l.Port] {
			continue
		}
		seen[l.Port] = true
		p := gwv1.HTTPProtocolType
		if l.tls {
			p = gwv1.HTTPSProtocolType
		}
		out = append(out, ListenerPort{Port: l.Port, Protocol: p})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Port < out[j].Port })
	return out
}

// GatewayServiceName is the name of a Gateway's Service: "gw-", the Gateway's name made a DNS
// label and shortened, and a hash of namespace/name that keeps names of different Gateways apart.
func GatewayServiceName(gw types.NamespacedName) string {
	sum := sha256.Sum256([]byte(gw.Namespace + "/" + gw.Name))
	hash := hex.EncodeToString(sum[:])[:10]
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, strings.ToLower(gw.Name))
	// 63 characters at most: "gw-" + name + "-" + 10 hex digits.
	if len(name) > 63-3-1-10 {
		name = name[:63-3-1-10]
	}
	name = strings.Trim(name, "-")
	if name == "" {
		return "gw-" + hash
	}
	return "gw-" + name + "-" + hash
}

// GatewayServiceOf names the Gateway a per-Gateway Service serves; false for other Services.
func GatewayServiceOf(svc *corev1.Service) (types.NamespacedName, bool) {
	if svc.Labels[GatewayServiceLabel] != "true" {
		return types.NamespacedName{}, false
	}
	key := types.NamespacedName{Namespace: svc.Annotations[GatewayNamespaceAnnotation], Name: svc.Annotations[GatewayNameAnnotation]}
	return key, key.Namespace != "" && key.Name != ""
}

// ReadGatewayPorts reads the allocation recorded in the per-Gateway Services of namespace ns
// (every namespace when ns is ""): listener port → numeric targetPort. A port whose targetPort is
// not a number in [first, last], or that another Gateway's Service already claims, is left out:
// a hand-edited Service can never make the proxy listen on another of its ports.
func ReadGatewayPorts(svcs []corev1.Service, ns string, first, last int32) PortAllocation {
	sorted := make([]*corev1.Service, 0, len(svcs))
	for i := range svcs {
		if ns == "" || svcs[i].Namespace == ns {
			sorted = append(sorted, &svcs[i])
		}
	}
	// The older Service keeps an internal port two of them claim (a hand-edited Service).
	sort.Slice(sorted, func(i, j int) bool { return olderObject(&sorted[i].ObjectMeta, &sorted[j].ObjectMeta) })
	out := PortAllocation{}
	claimed := map[int32]bool{}
	for _, svc := range sorted {
		key, ok := GatewayServiceOf(svc)
		if !ok || GatewayServiceName(key) != svc.Name {
			continue
		}
		for _, p := range svc.Spec.Ports {
			ip := p.TargetPort.IntVal
			if p.TargetPort.Type != intstr.Int || ip < first || ip > last || claimed[ip] {
				continue
			}
			if out[key] == nil {
				out[key] = GatewayPorts{}
			}
			out[key][p.Port] = p.TargetPort.IntVal
			claimed[p.TargetPort.IntVal] = true
		}
	}
	return out
}

// AllocateGatewayPorts gives every wanted (Gateway, listener port) an internal port in
// [first, last]: the one it has in have when it still wants it, else the lowest port no other
// pair holds, Gateways in namespace/name order and ports ascending. A pair left out means the
// range is exhausted. It is pure and stable: the same wants keep the same ports.
func AllocateGatewayPorts(want map[types.NamespacedName][]int32, have PortAllocation, first, last int32) PortAllocation {
	out := PortAllocation{}
	used := map[int32]bool{}
	keys := slices.SortedFunc(maps.Keys(want), func(a, b types.NamespacedName) int { return strings.Compare(a.String(), b.String()) })
	for _, k := range keys {
		for _, p := range want[k] {
			if ip, ok := have[k][p]; ok && ip >= first && ip <= last && !used[ip] {
				if out[k] == nil {
					out[k] = GatewayPorts{}
				}
				out[k][p] = ip
				used[ip] = true
			}
		}
	}
	next := first
	for _, k := range keys {
		ports := slices.Clone(want[k])
		slices.Sort(ports)
		for _, p := range ports {
			if _, done := out[k][p]; done {
				continue
			}
			for next <= last && used[next] {
				next++
			}
			if next > last {
				return out
			}
			if out[k] == nil {
				out[k] = GatewayPorts{}
			}
			out[k][p] = next
			used[next] = true
		}
	}
	return out
}

// GatewayServiceSpec is what a Gateway's Service is made of.
type GatewayServiceSpec struct {
	// Gateway is the Gateway served.
	Gateway types.NamespacedName
	// Namespace is the controller's namespace, where the Service lives with the pods it selects.
	Namespace string
	// Ports are the Gateway's listener ports (GatewayResult.ServicePorts) and Internal their
	// allocated internal ports; a port without an internal port is left out.
	Ports    []ListenerPort
	Internal GatewayPorts
	// Type and Selector are copied from the controller's own Service: the Gateway is exposed as
	// the Ingresses are, by the same pods.
	Type     corev1.ServiceType
	Selector map[string]string
	// Owner, when set, is the controller's own Service: deleting it (turning ingress off) deletes
	// the per-Gateway Services too.
	Owner *metav1.OwnerReference
}

// GatewayService renders a Gateway's Service (TypeMeta set, for server-side apply); nil when no
// port has an internal port.
func GatewayService(s GatewayServiceSpec) *corev1.Service {
	var ports []corev1.ServicePort
	for _, p := range s.Ports {
		ip, ok := s.Internal[p.Port]
		if !ok {
			continue
		}
		ports = append(ports, corev1.ServicePort{
			Name:       fmt.Sprintf("%s-%d", strings.ToLower(string(p.Protocol)), p.Port),
			Protocol:   corev1.ProtocolTCP,
			Port:       p.Port,
			TargetPort: intstr.FromInt32(ip),
		})
	}
	if len(ports) == 0 {
		return nil
	}
	svc := &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name: GatewayServiceName(s.Gateway), Namespace: s.Namespace,
			Labels:      map[string]string{GatewayServiceLabel: "true", ManagedByLabel: ManagedBy},
			Annotations: map[string]string{GatewayNamespaceAnnotation: s.Gateway.Namespace, GatewayNameAnnotation: s.Gateway.Name},
		},
		Spec: corev1.ServiceSpec{Type: s.Type, Selector: maps.Clone(s.Selector), Ports: ports},
	}
	if s.Owner != nil {
		svc.OwnerReferences = []metav1.OwnerReference{*s.Owner}
	}
	return svc
}

// GatewayServiceCurrent says whether existing already is what GatewayService rendered as want
// (the fields plexus-ingress sets), so an unchanged Service is not written again.
func GatewayServiceCurrent(existing, want *corev1.Service) bool {
	if existing.Spec.Type != want.Spec.Type || !maps.Equal(existing.Spec.Selector, want.Spec.Selector) ||
		len(existing.Spec.Ports) != len(want.Spec.Ports) {
		return false
	}
	for k, v := range want.Labels {
		if existing.Labels[k] != v {
			return false
		}
	}
	for k, v := range want.Annotations {
		if existing.Annotations[k] != v {
			return false
		}
	}
	for i, p := range want.Spec.Ports {
		e := existing.Spec.Ports[i]
		if e.Name != p.Name || e.Port != p.Port || e.Protocol != p.Protocol || e.TargetPort != p.TargetPort {
			return false
		}
	}
	if len(want.OwnerReferences) > 0 && !slices.ContainsFunc(existing.OwnerReferences, func(o metav1.OwnerReference) bool {
		return o.UID == want.OwnerReferences[0].UID
	}) {
		return false
	}
	return true
}

// GatewayAddressesOf are the addresses a Gateway is reached at through its Service: the
// load-balancer addresses of a LoadBalancer Service (none until it has one), else its external
// IPs, else its cluster IPs. nil when the Service does not exist.
func GatewayAddressesOf(svc *corev1.Service) []gwv1.GatewayStatusAddress {
	if svc == nil {
		return nil
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		return lbAddresses(svc)
	}
	return GatewayAddresses(svc)
}

// PlanGatewayServices is the leader's whole allocation step: the Service each served Gateway of
// api needs (GatewayService, with the ports of existing Services kept and new ones allocated in
// opts' range) and the existing per-Gateway Services of base.Namespace that no Gateway needs any
// more. base gives the namespace, type, selector and owner of every Service. opts must have its
// defaults (Options.Defaults).
func PlanGatewayServices(api GatewayAPI, existing []corev1.Service, opts Options, base GatewayServiceSpec) (want, stale []*corev1.Service) {
	have := ReadGatewayPorts(existing, base.Namespace, opts.GatewayPortFirst, opts.GatewayPortLast)
	wanted := map[types.NamespacedName][]int32{}
	ports := map[types.NamespacedName][]ListenerPort{}
	for i := range api.Gateways {
		g := &api.Gateways[i]
		lp := g.ServicePorts()
		if len(lp) == 0 {
			continue
		}
		ports[g.Key] = lp
		for _, p := range lp {
			wanted[g.Key] = append(wanted[g.Key], p.Port)
		}
	}
	alloc := AllocateGatewayPorts(wanted, have, opts.GatewayPortFirst, opts.GatewayPortLast)
	keep := map[string]bool{}
	for _, key := range slices.SortedFunc(maps.Keys(ports), func(a, b types.NamespacedName) int { return strings.Compare(a.String(), b.String()) }) {
		s := base
		s.Gateway, s.Ports, s.Internal = key, ports[key], alloc[key]
		if svc := GatewayService(s); svc != nil {
			want = append(want, svc)
			keep[svc.Name] = true
		}
	}
	for i := range existing {
		svc := &existing[i]
		if _, ours := GatewayServiceOf(svc); ours && svc.Namespace == base.Namespace && !keep[svc.Name] {
			stale = append(stale, svc)
		}
	}
	return want, stale
}
