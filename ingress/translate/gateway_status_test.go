package translate

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// brief is a condition as the tables compare it (no times).
type brief struct {
	Type, Status, Reason string
	Gen                  int64
}

func briefs(cs []metav1.Condition) []brief {
	out := make([]brief, 0, len(cs))
	for _, c := range cs {
		out = append(out, brief{c.Type, string(c.Status), c.Reason, c.ObservedGeneration})
	}
	return out
}

func sameBriefs(t *testing.T, what string, got []metav1.Condition, want []brief) {
	t.Helper()
	g := briefs(got)
	if len(g) != len(want) {
		t.Fatalf("%s: got %+v, want %+v", what, g, want)
	}
	for i := range g {
		if g[i] != want[i] {
			t.Fatalf("%s: condition %d is %+v, want %+v", what, i, g[i], want[i])
		}
	}
}

func TestGatewayClassConditions(t *testing.T) {
	withParams := gatewayClass("params", gatewayController)
	withParams.Spec.ParametersRef = &gwv1.ParametersReference{Group: "example.com", Kind: "Config", Name: "x"}
	for _, tc := range []struct {
		name    string
		class   gwv1.GatewayClass
		version string
		want    []brief
	}{
		{"accepted", gatewayClass("plexus", gatewayController), "v1.6.3", []brief{{"Accepted", "True", "Accepted", 1}, {"SupportedVersion", "True", "SupportedVersion", 1}}},
		{"older CRDs", gatewayClass("plexus", gatewayController), "v1.4.1", []brief{{"Accepted", "True", "Accepted", 1}, {"SupportedVersion", "True", "SupportedVersion", 1}}},
		{"unknown version", gatewayClass("plexus", gatewayController), "", []brief{{"Accepted", "True", "Accepted", 1}, {"SupportedVersion", "True", "SupportedVersion", 1}}},
		{"newer CRDs", gatewayClass("plexus", gatewayController), "v1.7.0", []brief{{"Accepted", "False", "UnsupportedVersion", 1}, {"SupportedVersion", "False", "UnsupportedVersion", 1}}},
		{"parameters", withParams, "v1.6.3", []brief{{"Accepted", "False", "InvalidParameters", 1}, {"SupportedVersion", "True", "SupportedVersion", 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := Translate(Input{GatewayClasses: []gwv1.GatewayClass{tc.class, gatewayClass("theirs", "example.com/x")}}, gwOpts)
			if len(res.Gateway.Classes) != 1 {
				t.Fatalf("classes %+v, want only ours", res.Gateway.Classes)
			}
			sameBriefs(t, "class", GatewayClassConditions(res.Gateway.Classes[0], tc.version), tc.want)
		})
	}
}

func TestGatewayProgrammedAndAddresses(t *testing.T) {
	lbSvc := &corev1.Service{Spec: corev1.ServiceSpec{ClusterIPs: []string{"10.96.0.50"}},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "192.0.2.7"}, {Hostname: "lb.example.net"}}}}}
	if got := GatewayAddresses(lbSvc); len(got) != 2 || got[0].Value != "192.0.2.7" || *got[1].Type != gwv1.HostnameAddressType {
		t.Fatalf("load-balancer addresses %+v", got)
	}
	lbSvc.Status = corev1.ServiceStatus{}
	if got := GatewayAddresses(lbSvc); len(got) != 1 || got[0].Value != "10.96.0.50" {
		t.Fatalf("cluster IP address %+v", got)
	}
	// A Gateway's own LoadBalancer Service has no address until the load balancer gives one.
	lbSvc.Spec.Type = corev1.ServiceTypeLoadBalancer
	if got := GatewayAddressesOf(lbSvc); len(got) != 0 {
		t.Fatalf("a LoadBalancer Service without load-balancer address gave %+v", got)
	}
	lbSvc.Spec.Type = corev1.ServiceTypeClusterIP
	if got := GatewayAddressesOf(lbSvc); len(got) != 1 || got[0].Value != "10.96.0.50" {
		t.Fatalf("ClusterIP Service address %+v", got)
	}
	if got := GatewayAddressesOf(nil); got != nil {
		t.Fatalf("no Service gave %+v", got)
	}
	withAddr := gateway("shop", "asks-address", httpListener("http", ""))
	withAddr.Spec.Addresses = []gwv1.GatewaySpecAddress{{Value: "192.0.2.99"}}
	// GatewayAddressEmpty: an IPAddress entry without a value is the Service's address.
	anyAddr := gateway("shop", "any-address", httpListener("http", ""))
	anyAddr.Spec.Addresses = []gwv1.GatewaySpecAddress{{Type: ptr(gwv1.IPAddressType)}, {}}
	withHostname := gateway("shop", "hostname", httpListener("http", ""))
	withHostname.Spec.Addresses = []gwv1.GatewaySpecAddress{{Type: ptr(gwv1.HostnameAddressType)}}
	tcp := httpListener("tcp", "")
	tcp.Protocol = gwv1.TCPProtocolType
	ip := gwv1.IPAddressType
	addrs := []gwv1.GatewayStatusAddress{{Type: &ip, Value: "10.96.0.50"}}
	for _, tc := range []struct {
		name     string
		gw       gwv1.Gateway
		services bool // the Gateway's Service exists (its ports allocated)
		addrs    []gwv1.GatewayStatusAddress
		want     []brief
	}{
		{"served", gateway("shop", "g", httpListener("http", "")), true, addrs, []brief{{"Accepted", "True", "Accepted", 2}, {"Programmed", "True", "Programmed", 2}}},
		{"no address yet", gateway("shop", "g", httpListener("http", "")), true, nil, []brief{{"Accepted", "True", "Accepted", 2}, {"Programmed", "False", "AddressNotAssigned", 2}}},
		{"no Service yet", gateway("shop", "g", httpListener("http", "")), false, nil, []brief{{"Accepted", "True", "Accepted", 2}, {"Programmed", "False", "Pending", 2}}},
		{"spec.addresses", withAddr, true, addrs, []brief{{"Accepted", "False", "UnsupportedAddress", 2}, {"Programmed", "False", "Invalid", 2}}},
		{"spec.addresses of another type", withHostname, true, addrs, []brief{{"Accepted", "False", "UnsupportedAddress", 2}, {"Programmed", "False", "Invalid", 2}}},
		{"spec.addresses without value", anyAddr, true, addrs, []brief{{"Accepted", "True", "Accepted", 2}, {"Programmed", "True", "Programmed", 2}}},
		{"no valid listener", gateway("shop", "g", tcp), true, addrs, []brief{{"Accepted", "False", "ListenersNotValid", 2}, {"Programmed", "False", "Invalid", 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := gatewayInput([]gwv1.Gateway{tc.gw})
			if tc.services {
				in = withGatewayServices(in, gwOpts)
			}
			res := Translate(in, gwOpts)
			st := GatewayStatus(res.Gateway.Gateways[0], tc.addrs)
			sameBriefs(t, "gateway", st.Conditions, tc.want)
			if len(st.Addresses) != len(tc.addrs) {
				t.Fatalf("addresses %+v, want %+v", st.Addresses, tc.addrs)
			}
		})
	}
}

func TestMergeKeepsTransitionTimesAndOthers(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Hour))
	res := Translate(gatewayInput([]gwv1.Gateway{gateway("shop", "edge", httpListener("http", ""))},
		httpRoute("shop", "r", 0, nil, []gwv1.ParentReference{parent("shop", "edge", "")}, gwv1.HTTPRouteRule{BackendRefs: []gwv1.HTTPBackendRef{backendRef("", "web", 80, 1)}})), gwOpts)
	desired := GatewayStatus(res.Gateway.Gateways[0], []gwv1.GatewayStatusAddress{{Value: "10.0.0.1"}})
	first, changed := MergeGatewayStatus(gwv1.GatewayStatus{}, desired, t0)
	if !changed {
		t.Fatal("an empty status did not change")
	}
	again, changed := MergeGatewayStatus(first, desired, t1)
	if changed {
		t.Fatalf("the same status again is a change:\n%+v\n%+v", first, again)
	}
	if lt := again.Listeners[0].Conditions[0].LastTransitionTime; !lt.Equal(&t0) {
		t.Fatalf("transition time moved to %v without a status change", lt)
	}

	other := gwv1.RouteParentStatus{ParentRef: parent("shop", "elsewhere", ""), ControllerName: "example.com/other",
		Conditions: []metav1.Condition{{Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", LastTransitionTime: t0}}}
	ours := RouteParentStatuses(res.Gateway.Routes[0], gatewayController)
	merged, changed := MergeRouteParents([]gwv1.RouteParentStatus{other}, ours, gatewayController, t0)
	if !changed || len(merged) != 2 || merged[0].ControllerName != "example.com/other" {
		t.Fatalf("merged parents %+v, want the other controller's entry kept and ours added", merged)
	}
	if _, changed := MergeRouteParents(merged, ours, gatewayController, t1); changed {
		t.Fatal("the same route status again is a change")
	}
	dropped, changed := MergeRouteParents(merged, nil, gatewayController, t1)
	if !changed || len(dropped) != 1 || dropped[0].ControllerName != "example.com/other" {
		t.Fatalf("without our parents: %+v, want only the other controller's entry", dropped)
	}
}

func TestIntersectHostnames(t *testing.T) {
	for _, tc := range []struct {
		listener string
		route    []gwv1.Hostname
		want     string
	}{
		{"", nil, ""},
		{"", []gwv1.Hostname{"A.example.com"}, "a.example.com"},
		{"shop.example.com", nil, "shop.example.com"},
		{"shop.example.com", []gwv1.Hostname{"shop.example.com", "other.test"}, "shop.example.com"},
		{"*.example.com", []gwv1.Hostname{"a.b.example.com"}, "a.b.example.com"},
		{"*.example.com", []gwv1.Hostname{"example.com"}, "<none>"},
		{"a.example.com", []gwv1.Hostname{"*.example.com"}, "a.example.com"},
		{"*.example.com", []gwv1.Hostname{"*.shop.example.com"}, "*.shop.example.com"},
		{"*.shop.example.com", []gwv1.Hostname{"*.example.com"}, "*.shop.example.com"},
		{"*.example.com", []gwv1.Hostname{"*.other.test"}, "<none>"},
	} {
		got := strings.Join(intersectHostnames(tc.listener, tc.route), ",")
		if got == "" && len(intersectHostnames(tc.listener, tc.route)) == 0 {
			got = "<none>"
		}
		if got != tc.want {
			t.Errorf("listener %q, route %v: %q, want %q", tc.listener, tc.route, got, tc.want)
		}
	}
}
