package render

import (
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/utils/ptr"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/netconfig"
)

const testIngressImage = "plexus/plexus-ingress:dev"

func ingressConfig(nodes int32, in *v1.Ingress) IngressConfig {
	spec := v1.ClusterNetworkSpec{IPFamilies: []v1.IPFamily{v1.IPv4}, Ingress: in}
	spec.PodNetwork.CIDRs = []v1.CIDR{"10.244.0.0/16"}
	spec.ServiceNetwork.CIDRs = []v1.CIDR{"10.96.0.0/16"}
	eff := netconfig.Default(spec, netconfig.Images{Agent: "plexus/plexus-agent:dev", Ingress: testIngressImage})
	return IngressConfig{Namespace: "plexus-system", Spec: eff, Nodes: nodes}
}

func TestIngressGolden(t *testing.T) {
	expectGolden(t, "ingress-defaults", Ingress(ingressConfig(3, &v1.Ingress{Enabled: ptr.To(true)})))
	expectGolden(t, "ingress-nodeport-default-tls", Ingress(ingressConfig(2, &v1.Ingress{
		Enabled: ptr.To(true), Replicas: ptr.To[int32](3), ServiceType: "NodePort", IngressClassName: "edge",
		DefaultTLSSecret: &v1.SecretReference{Namespace: "certs", Name: "wildcard"},
	})))
}

// TestIngressGatewayAPI: with the Gateway API on, plexus-ingress is told to serve it and its
// ClusterRole gains the Gateway API rules; off, neither.
func TestIngressGatewayAPI(t *testing.T) {
	for _, on := range []bool{false, true} {
		objs := Ingress(ingressConfig(3, &v1.Ingress{Enabled: ptr.To(true), GatewayAPI: &v1.GatewayAPI{Enabled: ptr.To(on)}}))
		var args []string
		var gatewayRules, serviceWrites int
		for _, o := range objs {
			switch r := o.(type) {
			case *appsv1.Deployment:
				args = r.Spec.Template.Spec.Containers[0].Args
			case *rbacv1.Role:
				for _, rule := range r.Rules {
					if slices.Contains(rule.Resources, "services") && slices.Contains(rule.Verbs, "create") {
						serviceWrites++
					}
				}
			case *rbacv1.ClusterRole:
				for _, rule := range r.Rules {
					if slices.Contains(rule.APIGroups, "gateway.networking.k8s.io") {
						gatewayRules++
					}
				}
			}
		}
		if got := slices.Contains(args, "-gateway-api"); got != on {
			t.Errorf("gatewayAPI.enabled=%v: -gateway-api in args %v is %v", on, args, got)
		}
		if got := gatewayRules > 0; got != on {
			t.Errorf("gatewayAPI.enabled=%v: %d Gateway API rules in the ClusterRole", on, gatewayRules)
		}
		// The per-Gateway Services: written in the controller's namespace only (its Role).
		if got := serviceWrites > 0; got != on {
			t.Errorf("gatewayAPI.enabled=%v: %d Service write rules in the Role", on, serviceWrites)
		}
	}
}

// TestIngressMetricsAndAccessLog: spec.ingress.metrics and accessLog turn plexus-ingress's -metrics
// and -access-log on; by default neither is passed.
func TestIngressMetricsAndAccessLog(t *testing.T) {
	for _, c := range []struct {
		metrics, accessLog *bool
		want               []string
	}{
		{nil, nil, nil},
		{ptr.To(true), nil, []string{"-metrics"}},
		{nil, ptr.To(true), []string{"-access-log"}},
		{ptr.To(true), ptr.To(true), []string{"-metrics", "-access-log"}},
	} {
		var args []string
		for _, o := range Ingress(ingressConfig(3, &v1.Ingress{Enabled: ptr.To(true), Metrics: c.metrics, AccessLog: c.accessLog})) {
			if d, ok := o.(*appsv1.Deployment); ok {
				args = d.Spec.Template.Spec.Containers[0].Args
			}
		}
		var got []string
		for _, a := range args {
			if a == "-metrics" || a == "-access-log" {
				got = append(got, a)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("metrics=%v accessLog=%v: flags %v, want %v (args %v)", ptr.Deref(c.metrics, false), ptr.Deref(c.accessLog, false), got, c.want, args)
		}
	}
}

func TestIngressDisabledRendersNothing(t *testing.T) {
	for _, in := range []*v1.Ingress{nil, {}, {Enabled: ptr.To(false), Replicas: ptr.To[int32](3)}} {
		if objs := Ingress(ingressConfig(3, in)); len(objs) != 0 {
			t.Errorf("ingress %+v renders %d objects, want none", in, len(objs))
		}
	}
}

// TestIngressLeastPrivilege: the controller may write only Ingress status, Events and its Lease;
// it may not read a Secret by name, and its Lease rights stay in its namespace.
func TestIngressLeastPrivilege(t *testing.T) {
	objs := Ingress(ingressConfig(3, &v1.Ingress{Enabled: ptr.To(true)}))
	writes := map[string]bool{"create": true, "update": true, "patch": true, "delete": true}
	for _, o := range objs {
		var rules []rbacv1.PolicyRule
		switch r := o.(type) {
		case *rbacv1.ClusterRole:
			rules = r.Rules
		case *rbacv1.Role:
			if r.Namespace != "plexus-system" {
				t.Errorf("Role in %q, want the controller's namespace", r.Namespace)
			}
			continue
		default:
			continue
		}
		for _, rule := range rules {
			for _, res := range rule.Resources {
				if res == "secrets" && slices.Contains(rule.Verbs, "get") {
					t.Errorf("ClusterRole may get Secrets by name: %v", rule)
				}
				if slices.ContainsFunc(rule.Verbs, func(v string) bool { return writes[v] }) && res != "ingresses/status" && res != "events" {
					t.Errorf("ClusterRole writes %s: %v", res, rule)
				}
			}
		}
	}
}

// TestIngressDeploymentServesWithoutPrivilege: non-root, no capabilities, read-only root with a
// writable state folder, readiness on the health port.
func TestIngressDeploymentServesWithoutPrivilege(t *testing.T) {
	var d *appsv1.Deployment
	var svc *corev1.Service
	for _, o := range Ingress(ingressConfig(3, &v1.Ingress{Enabled: ptr.To(true)})) {
		switch x := o.(type) {
		case *appsv1.Deployment:
			d = x
		case *corev1.Service:
			svc = x
		}
	}
	if d == nil || svc == nil {
		t.Fatal("no Deployment or Service rendered")
	}
	c := d.Spec.Template.Spec.Containers[0]
	if !*d.Spec.Template.Spec.SecurityContext.RunAsNonRoot || len(c.SecurityContext.Capabilities.Add) != 0 || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("container runs with privilege: %+v", c.SecurityContext)
	}
	if c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.ReadinessProbe.HTTPGet.Port.StrVal != "health" {
		t.Errorf("readiness %+v, want /readyz on the health port", c.ReadinessProbe.HTTPGet)
	}
	if *d.Spec.Replicas != 2 || svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		t.Errorf("replicas %d, Service %s; want the defaults 2 and LoadBalancer", *d.Spec.Replicas, svc.Spec.Type)
	}
	if !slices.Contains(c.Args, "-publish-service=plexus-system/plexus-ingress") {
		t.Errorf("args %v do not publish the Service", c.Args)
	}
}
