package translate

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/plexus-net/plexus/internal/golden"
)

// Builders of Gateway API test objects.

const gatewayController = "plexus.dev/gateway"

var gwOpts = Options{ControllerName: controller, GatewayControllerName: gatewayController, GatewayServiceNamespace: gatewayServiceNS}

func gatewayClass(name, controllerName string) gwv1.GatewayClass {
	return gwv1.GatewayClass{ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1},
		Spec: gwv1.GatewayClassSpec{ControllerName: gwv1.GatewayController(controllerName)}}
}

func gateway(ns, name string, listeners ...gwv1.Listener) gwv1.Gateway {
	return gwv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 2},
		Spec: gwv1.GatewaySpec{GatewayClassName: "plexus", Listeners: listeners}}
}

func httpListener(name, hostname string) gwv1.Listener {
	l := gwv1.Listener{Name: gwv1.SectionName(name), Port: 80, Protocol: gwv1.HTTPProtocolType}
	if hostname != "" {
		l.Hostname = ptr(gwv1.Hostname(hostname))
	}
	return l
}

func httpsListener(name, hostname, secretNS, secret string) gwv1.Listener {
	l := httpListener(name, hostname)
	l.Port, l.Protocol = 443, gwv1.HTTPSProtocolType
	ref := gwv1.SecretObjectReference{Name: gwv1.ObjectName(secret)}
	if secretNS != "" {
		ref.Namespace = ptr(gwv1.Namespace(secretNS))
	}
	l.TLS = &gwv1.ListenerTLSConfig{CertificateRefs: []gwv1.SecretObjectReference{ref}}
	return l
}

func allowFrom(l gwv1.Listener, from gwv1.FromNamespaces, sel map[string]string) gwv1.Listener {
	l.AllowedRoutes = &gwv1.AllowedRoutes{Namespaces: &gwv1.RouteNamespaces{From: &from}}
	if sel != nil {
		l.AllowedRoutes.Namespaces.Selector = &metav1.LabelSelector{MatchLabels: sel}
	}
	return l
}

// httpRoute makes a route created ageMinutes after the epoch with parentRefs to gateways
// ("ns/name" or "ns/name/section").
func httpRoute(ns, name string, ageMinutes int, hostnames []string, parents []gwv1.ParentReference, rules ...gwv1.HTTPRouteRule) gwv1.HTTPRoute {
	r := gwv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: 3,
		CreationTimestamp: metav1.NewTime(epoch.Add(time.Duration(ageMinutes) * time.Minute))},
		Spec: gwv1.HTTPRouteSpec{CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: parents}, Rules: rules}}
	for _, h := range hostnames {
		r.Spec.Hostnames = append(r.Spec.Hostnames, gwv1.Hostname(h))
	}
	return r
}

func parent(ns, name, section string) gwv1.ParentReference {
	p := gwv1.ParentReference{Name: gwv1.ObjectName(name), Namespace: ptr(gwv1.Namespace(ns))}
	if section != "" {
		p.SectionName = ptr(gwv1.SectionName(section))
	}
	return p
}

func backendRef(ns, name string, port int32, weight int32) gwv1.HTTPBackendRef {
	b := gwv1.HTTPBackendRef{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{
		Name: gwv1.ObjectName(name), Port: ptr(port)}, Weight: ptr(weight)}}
	if ns != "" {
		b.Namespace = ptr(gwv1.Namespace(ns))
	}
	return b
}

func withFilters(b gwv1.HTTPBackendRef, fs ...gwv1.HTTPRouteFilter) gwv1.HTTPBackendRef {
	b.Filters = fs
	return b
}

func pathMatch(t gwv1.PathMatchType, v string) gwv1.HTTPRouteMatch {
	return gwv1.HTTPRouteMatch{Path: &gwv1.HTTPPathMatch{Type: &t, Value: &v}}
}

func grant(ns, fromKind, fromNS, toKind string) gwv1.ReferenceGrant {
	return gwv1.ReferenceGrant{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "allow-" + fromNS},
		Spec: gwv1.ReferenceGrantSpec{
			From: []gwv1.ReferenceGrantFrom{{Group: gwv1.GroupName, Kind: gwv1.Kind(fromKind), Namespace: gwv1.Namespace(fromNS)}},
			To:   []gwv1.ReferenceGrantTo{{Group: "", Kind: gwv1.Kind(toKind)}}}}
}

func namespace(name string, labels map[string]string) corev1.Namespace {
	return corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

// gatewayGoldenView is the golden file of a Gateway translation: the config (PEMs masked as in
// assertGolden) and every status the controller would write, with fixed addresses.
type gatewayGoldenView struct {
	Classes  map[string][]metav1.Condition          `json:"classes"`
	Gateways map[string]gwv1.GatewayStatus          `json:"gateways"`
	Routes   map[string][]gwv1.RouteParentStatus    `json:"routes"`
	Policies map[string][]gwv1.PolicyAncestorStatus `json:"backendTLSPolicies,omitempty"`
	Config   Config                                 `json:"config"`
	Problems []string                               `json:"problems,omitempty"`
}

func assertGatewayGolden(t *testing.T, name string, res Result) {
	t.Helper()
	ip := gwv1.IPAddressType
	addrs := []gwv1.GatewayStatusAddress{{Type: &ip, Value: "192.0.2.10"}}
	v := gatewayGoldenView{Classes: map[string][]metav1.Condition{}, Gateways: map[string]gwv1.GatewayStatus{},
		Routes: map[string][]gwv1.RouteParentStatus{}}
	for _, c := range res.Gateway.Classes {
		v.Classes[c.Name] = GatewayClassConditions(c, "v1.6.3")
	}
	for _, g := range res.Gateway.Gateways {
		v.Gateways[g.Key.String()] = GatewayStatus(g, addrs)
	}
	for _, r := range res.Gateway.Routes {
		v.Routes[r.Key.String()] = RouteParentStatuses(r, gatewayController)
	}
	for _, p := range res.Gateway.BackendTLSPolicies {
		if v.Policies == nil {
			v.Policies = map[string][]gwv1.PolicyAncestorStatus{}
		}
		v.Policies[p.Key.String()] = BackendTLSPolicyAncestors(p, gatewayController)
	}
	for _, p := range res.Problems {
		v.Problems = append(v.Problems, p.Ingress.String()+" "+p.Reason+": "+p.Message)
	}
	cfg := res.Config
	if tlsApp := cfg.Apps.TLS; tlsApp != nil && tlsApp.Certificates != nil {
		masked := *tlsApp
		masked.Certificates = &Certificates{}
		for _, c := range tlsApp.Certificates.LoadPEM {
			masked.Certificates.LoadPEM = append(masked.Certificates.LoadPEM, PEMCertificate{
				Certificate: "<certificate " + c.Tags[0] + ">", Key: "<key " + c.Tags[0] + ">", Tags: c.Tags})
		}
		cfg.Apps.TLS = &masked
	}
	v.Config = cfg
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		t.Setenv(golden.UpdateEnv, "1")
	}
	golden.Assert(t, filepath.Join("testdata", name+".golden"), append(b, '\n'), "./ingress/translate/ -run "+t.Name())
}

// withGatewayServices adds to in the per-Gateway Services the leader would make for it, as the
// controller does: translate, plan the Services, translate again with them.
func withGatewayServices(in Input, o Options) Input {
	o = o.Defaults()
	want, _ := PlanGatewayServices(Translate(in, o).Gateway, in.Services, o, GatewayServiceSpec{
		Namespace: gatewayServiceNS, Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": "plexus-ingress"}})
	for _, s := range want {
		in.Services = append(in.Services, *s)
	}
	return in
}

// gatewayServiceNS is the controller's namespace in these tests.
const gatewayServiceNS = "plexus-system"
