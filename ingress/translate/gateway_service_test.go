package translate

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func nn(ns, name string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: name} }

func TestAllocateGatewayPorts(t *testing.T) {
	a, b, c := nn("shop", "a"), nn("shop", "b"), nn("zoo", "c")
	for _, tc := range []struct {
		name        string
		want        map[types.NamespacedName][]int32
		have        PortAllocation
		first, last int32
		out         PortAllocation
	}{{
		name: "fresh: Gateways in name order, ports ascending, lowest free first",
		want: map[types.NamespacedName][]int32{b: {443, 80}, a: {80}},
		out:  PortAllocation{a: {80: 100}, b: {80: 101, 443: 102}},
	}, {
		name: "existing pairs keep their ports; a new one takes the lowest free",
		want: map[types.NamespacedName][]int32{a: {80, 8080}, b: {80}},
		have: PortAllocation{b: {80: 100}, a: {80: 103}},
		out:  PortAllocation{a: {80: 103, 8080: 101}, b: {80: 100}},
	}, {
		name: "a port no longer wanted is freed for others",
		want: map[types.NamespacedName][]int32{a: {8090}, c: {80}},
		have: PortAllocation{a: {80: 100}, c: {80: 101}},
		out:  PortAllocation{a: {8090: 100}, c: {80: 101}},
	}, {
		name: "a port outside the range is reallocated",
		want: map[types.NamespacedName][]int32{a: {80}},
		have: PortAllocation{a: {80: 9999}},
		out:  PortAllocation{a: {80: 100}},
	}, {
		name: "two pairs claiming one port: the first in order keeps it",
		want: map[types.NamespacedName][]int32{a: {80}, b: {80}},
		have: PortAllocation{a: {80: 101}, b: {80: 101}},
		out:  PortAllocation{a: {80: 101}, b: {80: 100}},
	}, {
		name: "exhausted: the pairs left over get no port",
		want: map[types.NamespacedName][]int32{a: {80, 81}, b: {80}},
		last: 101,
		out:  PortAllocation{a: {80: 100, 81: 101}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			first, last := tc.first, tc.last
			if first == 0 {
				first = 100
			}
			if last == 0 {
				last = 199
			}
			got := AllocateGatewayPorts(tc.want, tc.have, first, last)
			if !reflect.DeepEqual(got, tc.out) {
				t.Fatalf("got %v, want %v", got, tc.out)
			}
			// Stable: allocating again from the result changes nothing.
			if again := AllocateGatewayPorts(tc.want, got, first, last); !reflect.DeepEqual(again, got) {
				t.Fatalf("allocating again moved ports: %v -> %v", got, again)
			}
		})
	}
}

func TestGatewayServiceName(t *testing.T) {
	long := strings.Repeat("a.b-", 60)
	names := map[string]bool{}
	for _, key := range []types.NamespacedName{nn("shop", "edge"), nn("shop2", "edge"), nn("shop", "Edge.Example.COM"), nn("x", long), nn("x", "...")} {
		n := GatewayServiceName(key)
		if len(n) > 63 || !strings.HasPrefix(n, "gw-") || strings.HasSuffix(n, "-") {
			t.Errorf("%s: name %q is no DNS label of the expected form", key, n)
		}
		for _, r := range n {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				t.Errorf("%s: name %q has %q", key, n, r)
			}
		}
		if names[n] {
			t.Errorf("%s: name %q given twice", key, n)
		}
		names[n] = true
	}
	if got := GatewayServiceName(nn("shop", "edge")); got != GatewayServiceName(nn("shop", "edge")) || !strings.HasPrefix(got, "gw-edge-") {
		t.Errorf("name of shop/edge %q", got)
	}
}

// TestPlanGatewayServices: the leader's step, twice over, as Gateways come and go.
func TestPlanGatewayServices(t *testing.T) {
	o := gwOpts.Defaults()
	o.GatewayPortFirst, o.GatewayPortLast = 20000, 20009
	base := GatewayServiceSpec{Namespace: gatewayServiceNS, Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": "plexus-ingress"},
		Owner: &metav1.OwnerReference{APIVersion: "v1", Kind: "Service", Name: "plexus-ingress", UID: "u1"}}
	conflict := httpsListener("https-on-80", "secure.example.com", "", "absent")
	conflict.Port = 80
	odd := httpListener("odd", "")
	odd.Port = 8080
	tcp := httpListener("tcp", "")
	tcp.Protocol = gwv1.TCPProtocolType
	in := gatewayInput([]gwv1.Gateway{
		gateway("shop", "b", httpListener("http", ""), odd, conflict),
		gateway("shop", "a", httpListener("http", "a.example.com"), httpListener("http2", "b.example.com")),
		gateway("shop", "only-tcp", tcp),
	})
	want, stale := PlanGatewayServices(Translate(in, o).Gateway, in.Services, o, base)
	if len(stale) != 0 {
		t.Fatalf("stale %v with no Service yet", stale)
	}
	got := servicePorts(want)
	if exp := []string{"shop/a: http-80 80->20000", "shop/b: http-80 80->20001, http-8080 8080->20002"}; !reflect.DeepEqual(got, exp) {
		t.Fatalf("services\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(exp, "\n"))
	}
	svc := want[0]
	if svc.Namespace != gatewayServiceNS || svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Spec.Selector["app"] != "plexus-ingress" ||
		len(svc.OwnerReferences) != 1 || svc.Labels[GatewayServiceLabel] != "true" || svc.Kind != "Service" {
		t.Fatalf("service %+v", svc)
	}
	if !GatewayServiceCurrent(svc, svc) {
		t.Fatal("a Service is not current against itself")
	}
	// The Services exist now: a's listeners move, a new Gateway comes, b goes.
	existing := append([]corev1.Service(nil), in.Services...)
	for _, s := range want {
		existing = append(existing, *s)
	}
	in.Services = existing
	in.Gateways = []gwv1.Gateway{
		gateway("shop", "a", httpListener("http", "a.example.com"), odd),
		gateway("shop", "0-new", httpListener("http", "")),
	}
	res := Translate(in, o)
	if l := res.Gateway.Gateways[1].Listeners[0]; !l.Programmed() || l.internalPort != 20000 {
		t.Fatalf("a's port-80 listener is not served on its allocated port: %+v", l)
	}
	want2, stale := PlanGatewayServices(res.Gateway, existing, o, base)
	got = servicePorts(want2)
	if exp := []string{"shop/0-new: http-80 80->20001", "shop/a: http-80 80->20000, http-8080 8080->20002"}; !reflect.DeepEqual(got, exp) {
		t.Fatalf("after changes\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(exp, "\n"))
	}
	if len(stale) != 1 || stale[0].Name != GatewayServiceName(nn("shop", "b")) {
		t.Fatalf("stale %v, want b's Service", stale)
	}
	if GatewayServiceCurrent(&existing[len(existing)-2], want2[1]) {
		t.Fatal("a's Service with a new port counts as current")
	}
}

func servicePorts(svcs []*corev1.Service) []string {
	var out []string
	for _, s := range svcs {
		key, _ := GatewayServiceOf(s)
		var ps []string
		for _, p := range s.Spec.Ports {
			ps = append(ps, fmt.Sprintf("%s %d->%s", p.Name, p.Port, p.TargetPort.String()))
		}
		if s.Name != GatewayServiceName(key) {
			ps = append(ps, "wrong name "+s.Name)
		}
		out = append(out, key.String()+": "+strings.Join(ps, ", "))
	}
	return out
}

func TestReadGatewayPortsIgnoresOthers(t *testing.T) {
	mk := func(ns string, gw types.NamespacedName, target intstr.IntOrString) corev1.Service {
		s := GatewayService(GatewayServiceSpec{Gateway: gw, Namespace: ns, Ports: []ListenerPort{{80, gwv1.HTTPProtocolType}}, Internal: GatewayPorts{80: 1}})
		s.Spec.Ports[0].TargetPort = target
		return *s
	}
	plain := service("plexus-system", "web", "http", 80, 20000)
	renamed := mk("plexus-system", nn("shop", "d"), intstr.FromInt32(20004))
	renamed.Name = "hand-made"
	svcs := []corev1.Service{
		mk("plexus-system", nn("shop", "a"), intstr.FromInt32(20000)),
		mk("elsewhere", nn("shop", "b"), intstr.FromInt32(20001)),
		mk("plexus-system", nn("shop", "c"), intstr.FromString("http")),
		renamed, plain,
	}
	outside := mk("plexus-system", nn("shop", "e"), intstr.FromInt32(8443))
	svcs = append(svcs, outside)
	got := ReadGatewayPorts(svcs, "plexus-system", 20000, 29999)
	if exp := (PortAllocation{nn("shop", "a"): {80: 20000}}); !reflect.DeepEqual(got, exp) {
		t.Fatalf("got %v, want %v", got, exp)
	}
}
