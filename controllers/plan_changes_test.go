package controllers

import (
	"reflect"
	"strings"
	"testing"

	"k8s.io/utils/ptr"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// specFieldPaths walks the ClusterNetworkSpec type (not a value), so a field added to the API shows
// up here without anyone setting it in a fixture.
func specFieldPaths(path string, t reflect.Type, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if t.PkgPath() != reflect.TypeOf(v1.ClusterNetworkSpec{}).PkgPath() {
			*out = append(*out, path) // a foreign type (a toleration) is one leaf of ours
			return
		}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			specFieldPaths(path+"."+name, f.Type, out)
		}
	case reflect.Slice:
		if e := t.Elem(); e.Kind() == reflect.Struct {
			specFieldPaths(path+"[0]", e, out)
			return
		}
		*out = append(*out, path)
	default:
		*out = append(*out, path)
	}
}

func TestEveryFieldHasAChangeClass(t *testing.T) {
	var paths []string
	specFieldPaths("spec", reflect.TypeOf(v1.ClusterNetworkSpec{}), &paths)
	if len(paths) < 20 {
		t.Fatalf("walked only %d fields: %v", len(paths), paths)
	}
	for _, p := range paths {
		if _, ok := classify(p); !ok {
			t.Errorf("%s has no change class: add it to changeClasses (plan_changes.go)", p)
		}
	}
}

func TestSpecChangesClassifies(t *testing.T) {
	base := v1.ClusterNetworkSpec{
		IPFamilies: []v1.IPFamily{v1.IPv4},
		PodNetwork: v1.PodNetwork{CIDRs: []v1.CIDR{"10.244.0.0/16"}, NodeMaskSizeIPv4: ptr.To[int32](24)},
		Routing:    &v1.Routing{Mode: v1.RoutingAuto, Masquerade: ptr.To(true)},
		DNS:        &v1.DNS{Enabled: ptr.To(true), Upstreams: []string{"10.0.0.53"}},
	}
	cases := []struct {
		name  string
		edit  func(s *v1.ClusterNetworkSpec)
		field string
		from  string
		to    string
		class Disruption
	}{
		{"routing mode", func(s *v1.ClusterNetworkSpec) { s.Routing.Mode = v1.RoutingVXLAN }, "spec.routing.mode", "Auto", "VXLAN", Rolling},
		{"mtu set", func(s *v1.ClusterNetworkSpec) { s.Routing.MTU = ptr.To[int32](1400) }, "spec.routing.mtu", "(unset)", "1400", PodRestart},
		{"masquerade off", func(s *v1.ClusterNetworkSpec) { s.Routing.Masquerade = ptr.To(false) }, "spec.routing.masquerade", "true", "false", Hitless},
		{"pool added", func(s *v1.ClusterNetworkSpec) { s.PodNetwork.CIDRs = append(s.PodNetwork.CIDRs, "10.245.0.0/16") }, "spec.podNetwork.cidrs", "[10.244.0.0/16]", "[10.244.0.0/16 10.245.0.0/16]", Hitless},
		{"dns off", func(s *v1.ClusterNetworkSpec) { s.DNS.Enabled = ptr.To(false) }, "spec.dns.enabled", "true", "false", Outage},
		{"dns upstreams", func(s *v1.ClusterNetworkSpec) { s.DNS.Upstreams = []string{"10.0.0.54"} }, "spec.dns.upstreams", "[10.0.0.53]", "[10.0.0.54]", Hitless},
		{"dns image", func(s *v1.ClusterNetworkSpec) { s.Images = &v1.Images{DNS: "coredns:2"} }, "spec.images.dns", "(unset)", "coredns:2", Rolling},
		{"proxy backend", func(s *v1.ClusterNetworkSpec) { s.ServiceProxy = &v1.ServiceProxy{Mode: v1.ServiceProxyIPVS} }, "spec.serviceProxy.mode", "(unset)", "ipvs", Rolling},
		{"policy off", func(s *v1.ClusterNetworkSpec) { s.NetworkPolicy = &v1.NetworkPolicy{Enabled: ptr.To(false)} }, "spec.networkPolicy.enabled", "(unset)", "false", Hitless},
		{"agent selector", func(s *v1.ClusterNetworkSpec) {
			s.Agent = &v1.AgentPlacement{NodeSelector: map[string]string{"a": "b"}}
		}, "spec.agent.nodeSelector.a", "(unset)", "b", Rolling},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			next := base.DeepCopy()
			tc.edit(next)
			got := SpecChanges(&base, next)
			if len(got) != 1 {
				t.Fatalf("want one change, got %+v", got)
			}
			c := got[0]
			if c.Field != tc.field || c.From != tc.from || c.To != tc.to || c.Disruption != tc.class || c.Effect == "" {
				t.Errorf("got %+v, want %s %s → %s (%s)", c, tc.field, tc.from, tc.to, tc.class)
			}
		})
	}
	direct := base.DeepCopy()
	direct.Routing.Mode = v1.RoutingDirect
	if got := SpecChanges(direct, &base); len(got) != 1 || got[0].Disruption != PodRestart {
		t.Errorf("Direct → Auto with the automatic MTU changes pods' MTU: %+v", got)
	}
	direct.Routing.MTU, base.Routing.MTU = ptr.To[int32](1400), ptr.To[int32](1400)
	if got := SpecChanges(direct, &base); len(got) != 1 || got[0].Disruption != Rolling {
		t.Errorf("Direct → Auto with a fixed MTU keeps pods' MTU: %+v", got)
	}
	base.Routing.MTU = nil
	if got := SpecChanges(&base, base.DeepCopy()); len(got) != 0 {
		t.Errorf("an unchanged spec reports %+v", got)
	}
	if got := SpecChanges(nil, &base); len(got) == 0 {
		t.Error("a first spec reports no fields")
	}
}
