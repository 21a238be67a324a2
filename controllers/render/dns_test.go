package render

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/netconfig"
)

const testDNSImage = "plexus/coredns:dev"

func dnsConfig(families []v1.IPFamily, nodes int32, mutate func(*v1.ClusterNetworkSpec)) DNSConfig {
	spec := v1.ClusterNetworkSpec{IPFamilies: families}
	for _, f := range families {
		if f == v1.IPv4 {
			spec.PodNetwork.CIDRs = append(spec.PodNetwork.CIDRs, "10.244.0.0/16")
			spec.ServiceNetwork.CIDRs = append(spec.ServiceNetwork.CIDRs, "10.96.0.0/16")
		} else {
			spec.PodNetwork.CIDRs = append(spec.PodNetwork.CIDRs, "fd00:10:244::/56")
			spec.ServiceNetwork.CIDRs = append(spec.ServiceNetwork.CIDRs, "fd00:10:96::/112")
		}
	}
	if mutate != nil {
		mutate(&spec)
	}
	eff := netconfig.Default(spec, netconfig.Images{Agent: "plexus/plexus-agent:dev", DNS: testDNSImage})
	return DNSConfig{Namespace: DNSNamespace, Spec: eff, Nodes: nodes}
}

func TestDNSGolden(t *testing.T) {
	ipv4 := []v1.IPFamily{v1.IPv4}
	expectGolden(t, "dns-defaults", DNS(dnsConfig(ipv4, 3, func(s *v1.ClusterNetworkSpec) {
		s.DNS = &v1.DNS{Replicas: ptr.To[int32](2)}
	})))
	expectGolden(t, "dns-dual-stack", DNS(dnsConfig([]v1.IPFamily{v1.IPv6, v1.IPv4}, 3, func(s *v1.ClusterNetworkSpec) {
		s.DNS = &v1.DNS{Replicas: ptr.To[int32](2), PodRecords: v1.DNSPodRecordsVerified}
	})))
	expectGolden(t, "dns-upstreams-forward-zones", DNS(dnsConfig(ipv4, 3, func(s *v1.ClusterNetworkSpec) {
		s.DNS = &v1.DNS{
			Replicas:     ptr.To[int32](3),
			Upstreams:    []string{"192.0.2.53", "2001:db8::53"},
			CacheSeconds: ptr.To[int32](120),
			ForwardZones: []v1.ForwardZone{
				{Zone: "lab.plexus.test", Upstreams: []string{"10.99.0.53"}},
				{Zone: "corp.example.", Upstreams: []string{"192.0.2.1", "192.0.2.2"}},
			},
		}
		s.Images = &v1.Images{DNS: "registry.invalid/coredns:1.15.0"}
	})))
	expectGolden(t, "dns-replicas-auto", DNS(dnsConfig(ipv4, 40, nil)))
}

func TestDNSReplicas(t *testing.T) {
	for _, tc := range []struct {
		name     string
		replicas *int32
		nodes    int32
		want     int32
	}{
		{"set wins over the node count", ptr.To[int32](5), 1, 5},
		{"set to zero scales DNS away", ptr.To[int32](0), 100, 0},
		{"no nodes yet: one, to be scheduled once a node joins", nil, 0, 1},
		{"one node: one", nil, 1, 1},
		{"two nodes: two", nil, 2, 2},
		{"three nodes: the minimum of two", nil, 3, 2},
		{"32 nodes: two", nil, 32, 2},
		{"33 nodes: three", nil, 33, 3},
		{"40 nodes: three", nil, 40, 3},
		{"1000 nodes: 63", nil, 1000, 63},
	} {
		if got := DNSReplicas(tc.replicas, tc.nodes); got != tc.want {
			t.Errorf("%s: DNSReplicas(%v, %d) = %d, want %d", tc.name, ptr.Deref(tc.replicas, -1), tc.nodes, got, tc.want)
		}
	}
}

func TestDNSDisabledRendersNothing(t *testing.T) {
	cfg := dnsConfig([]v1.IPFamily{v1.IPv4}, 3, func(s *v1.ClusterNetworkSpec) { s.DNS = &v1.DNS{Enabled: ptr.To(false)} })
	if objs := DNS(cfg); len(objs) != 0 {
		t.Fatalf("disabled DNS rendered %d objects; it must render none so pruning removes them", len(objs))
	}
}

func TestDNSLeastPrivilege(t *testing.T) {
	for _, tc := range []struct {
		mode     v1.DNSPodRecords
		wantPods bool
	}{{v1.DNSPodRecordsInsecure, false}, {v1.DNSPodRecordsDisabled, false}, {v1.DNSPodRecordsVerified, true}} {
		objs := DNS(dnsConfig([]v1.IPFamily{v1.IPv4}, 3, func(s *v1.ClusterNetworkSpec) { s.DNS = &v1.DNS{PodRecords: tc.mode} }))
		role := find[*rbacv1.ClusterRole](t, objs)
		var resources []string
		for _, r := range role.Rules {
			if strings.Join(r.Verbs, ",") != "list,watch" {
				t.Errorf("%s: rule %v grants %v, want list and watch only", tc.mode, r.Resources, r.Verbs)
			}
			resources = append(resources, r.Resources...)
		}
		hasPods := strings.Contains(strings.Join(resources, ","), "pods")
		if hasPods != tc.wantPods {
			t.Errorf("pod records %s: ClusterRole reads pods = %v, want %v", tc.mode, hasPods, tc.wantPods)
		}
		if !strings.Contains(find[*corev1.ConfigMap](t, objs).Data[DNSCorefileKey], "pods "+strings.ToLower(string(tc.mode))) {
			t.Errorf("pod records %s: Corefile does not say so", tc.mode)
		}
	}
	pod := find[*appsv1.Deployment](t, DNS(dnsConfig([]v1.IPFamily{v1.IPv4}, 3, nil))).Spec.Template.Spec
	c := pod.Containers[0]
	if !*pod.SecurityContext.RunAsNonRoot || c.SecurityContext.Capabilities.Add != nil || *c.SecurityContext.AllowPrivilegeEscalation {
		t.Fatal("CoreDNS must run as non-root without any capability")
	}
}

func TestDNSRolloutKeepsAReadyReplica(t *testing.T) {
	d := find[*appsv1.Deployment](t, DNS(dnsConfig([]v1.IPFamily{v1.IPv4}, 3, nil)))
	ru := d.Spec.Strategy.RollingUpdate
	if ru.MaxUnavailable.IntValue() != 0 || ru.MaxSurge.IntValue() < 1 {
		t.Fatalf("rolling update %v/%v: a rollout must add a ready pod before removing one", ru.MaxUnavailable, ru.MaxSurge)
	}
	if d.Spec.Template.Spec.Containers[0].ReadinessProbe.HTTPGet.Path != "/ready" {
		t.Fatal("readiness must come from CoreDNS' ready plugin")
	}
}

func TestDNSServiceIPs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		families []v1.IPFamily
		ip       string
		want     string
	}{
		{"IPv4", []v1.IPFamily{v1.IPv4}, "", "10.96.0.10"},
		{"IPv6", []v1.IPFamily{v1.IPv6}, "", "fd00:10:96::a"},
		{"dual-stack, IPv4 first", []v1.IPFamily{v1.IPv4, v1.IPv6}, "", "10.96.0.10,fd00:10:96::a"},
		{"dual-stack, IPv6 first", []v1.IPFamily{v1.IPv6, v1.IPv4}, "", "fd00:10:96::a,10.96.0.10"},
		{"dual-stack, chosen IP", []v1.IPFamily{v1.IPv4, v1.IPv6}, "10.96.3.3", "10.96.3.3,fd00:10:96::a"},
	} {
		cfg := dnsConfig(tc.families, 3, func(s *v1.ClusterNetworkSpec) { s.DNS = &v1.DNS{ServiceIP: tc.ip} })
		svc := find[*corev1.Service](t, DNS(cfg))
		if got := strings.Join(svc.Spec.ClusterIPs, ","); got != tc.want || svc.Spec.ClusterIP != svc.Spec.ClusterIPs[0] {
			t.Errorf("%s: kube-dns ClusterIPs = %s (clusterIP %s), want %s", tc.name, got, svc.Spec.ClusterIP, tc.want)
		}
		if len(svc.Spec.IPFamilies) != len(tc.families) {
			t.Errorf("%s: kube-dns families %v, want %d", tc.name, svc.Spec.IPFamilies, len(tc.families))
		}
	}
}

// find returns the one rendered object of type T.
func find[T client.Object](t *testing.T, objs []client.Object) T {
	t.Helper()
	for _, o := range objs {
		if v, ok := o.(T); ok {
			return v
		}
	}
	var zero T
	t.Fatalf("no %T rendered", zero)
	return zero
}

// TestDNSAntiAffinity: a replica per node is required while there is a spare node for the
// rollout's surge pod, and only preferred when there is not (the rollout could never finish).
func TestDNSAntiAffinity(t *testing.T) {
	for _, tc := range []struct {
		name            string
		replicas, nodes int32
		required        bool
	}{
		{"more nodes than replicas: required", 2, 3, true},
		{"as many nodes as replicas: preferred, or the surge pod never schedules", 3, 3, false},
		{"fewer nodes than replicas: preferred", 5, 2, false},
		{"no nodes known yet: preferred", 1, 0, false},
	} {
		d := dnsDeployment(dnsConfig([]v1.IPFamily{v1.IPv4}, tc.nodes, func(s *v1.ClusterNetworkSpec) {
			s.DNS = &v1.DNS{Replicas: ptr.To(tc.replicas)}
		}))
		anti := d.Spec.Template.Spec.Affinity.PodAntiAffinity
		gotRequired := len(anti.RequiredDuringSchedulingIgnoredDuringExecution) == 1 && len(anti.PreferredDuringSchedulingIgnoredDuringExecution) == 0
		gotPreferred := len(anti.PreferredDuringSchedulingIgnoredDuringExecution) == 1 && len(anti.RequiredDuringSchedulingIgnoredDuringExecution) == 0
		if gotRequired != tc.required || gotPreferred == tc.required {
			t.Errorf("%s: anti-affinity %+v", tc.name, anti)
		}
	}
}
