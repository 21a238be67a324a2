package netconfig

import (
	"net/netip"
	"strings"
	"testing"

	"k8s.io/utils/ptr"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

func dualStack() v1.ClusterNetworkSpec {
	return v1.ClusterNetworkSpec{
		IPFamilies:     []v1.IPFamily{v1.IPv4, v1.IPv6},
		PodNetwork:     v1.PodNetwork{CIDRs: []v1.CIDR{"10.244.0.0/16", "fd00:10:244::/56"}},
		ServiceNetwork: v1.ServiceNetwork{CIDRs: []v1.CIDR{"10.96.0.0/12", "fd00:10:96::/112"}},
	}
}

func TestDefaultFillsEverythingAndKeepsInput(t *testing.T) {
	in := dualStack()
	out := Default(in, Images{Agent: "plexus-agent:dev"})
	if in.Routing != nil || in.DNS != nil {
		t.Fatal("Default modified its input")
	}
	checks := map[string]bool{
		"nodeMaskSizeIPv4=24":      *out.PodNetwork.NodeMaskSizeIPv4 == 24,
		"nodeMaskSizeIPv6=64":      *out.PodNetwork.NodeMaskSizeIPv6 == 64,
		"routing.mode=Auto":        out.Routing.Mode == v1.RoutingAuto,
		"masquerade=true":          *out.Routing.Masquerade,
		"serviceProxy=nftables":    out.ServiceProxy.Mode == v1.ServiceProxyNFTables,
		"dns.serviceIP=10.96.0.10": out.DNS.ServiceIP == "10.96.0.10",
		"clusterDomain":            out.DNS.ClusterDomain == "cluster.local",
		"nodePortRange":            out.ServiceNetwork.NodePortRange == "30000-32767",
		"images.agent":             out.Images.Agent == "plexus-agent:dev",
		"ingress off":              !*out.Ingress.Enabled,
		"agent tolerates all":      len(out.Agent.Tolerations) == 1,
	}
	for name, ok := range checks {
		if !ok {
			t.Errorf("default %s not applied", name)
		}
	}
	if errs := Validate(out); len(errs) > 0 {
		t.Fatalf("defaulted dual-stack spec is invalid: %v", errs)
	}
	again := Default(out, Images{Agent: "other"})
	if again.Images.Agent != "plexus-agent:dev" {
		t.Fatal("Default overwrote a set image")
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*v1.ClusterNetworkSpec)
		want   string // substring of the first error; "" = valid
	}{
		{"valid", func(*v1.ClusterNetworkSpec) {}, ""},
		{"bad cidr", func(s *v1.ClusterNetworkSpec) { s.PodNetwork.CIDRs[0] = "10.244.0.0/33" }, "spec.podNetwork.cidrs[0]"},
		{"host bits", func(s *v1.ClusterNetworkSpec) { s.PodNetwork.CIDRs[0] = "10.244.1.0/16" }, "e.g. 10.244.0.0/16"},
		{"family not listed", func(s *v1.ClusterNetworkSpec) {
			s.IPFamilies = []v1.IPFamily{v1.IPv4}
			s.ServiceNetwork.CIDRs = s.ServiceNetwork.CIDRs[:1]
		}, "which ipFamilies does not list"},
		{"missing family", func(s *v1.ClusterNetworkSpec) { s.PodNetwork.CIDRs = s.PodNetwork.CIDRs[:1] }, "no IPv6 pod CIDR"},
		{"primary order", func(s *v1.ClusterNetworkSpec) { s.PodNetwork.CIDRs = []v1.CIDR{"fd00:10:244::/56", "10.244.0.0/16"} }, "primary family IPv4"},
		{"service order", func(s *v1.ClusterNetworkSpec) { s.ServiceNetwork.CIDRs = []v1.CIDR{"fd00:10:96::/112", "10.96.0.0/12"} }, "one CIDR per entry of ipFamilies"},
		{"mask too short", func(s *v1.ClusterNetworkSpec) { s.PodNetwork.NodeMaskSizeIPv4 = ptr.To[int32](12) }, "nodeMaskSizeIPv4"},
		{"mask too many nodes", func(s *v1.ClusterNetworkSpec) { s.PodNetwork.NodeMaskSizeIPv6 = ptr.To[int32](80) }, "more than 65536"},
		{"pod overlaps service", func(s *v1.ClusterNetworkSpec) { s.PodNetwork.CIDRs[0] = "10.96.0.0/16" }, "overlaps service CIDR"},
		{"pods overlap", func(s *v1.ClusterNetworkSpec) { s.PodNetwork.CIDRs = append(s.PodNetwork.CIDRs, "10.244.128.0/17") }, "overlaps pod CIDR 10.244.0.0/16"},
		{"node port syntax", func(s *v1.ClusterNetworkSpec) { s.ServiceNetwork.NodePortRange = "30000:32767" }, "30000-32767"},
		{"node port bounds", func(s *v1.ClusterNetworkSpec) { s.ServiceNetwork.NodePortRange = "32767-30000" }, "first < last"},
		{"dns outside", func(s *v1.ClusterNetworkSpec) { s.DNS = &v1.DNS{ServiceIP: "10.244.0.10"} }, "inside one of serviceNetwork.cidrs"},
		{"ipv6 mtu", func(s *v1.ClusterNetworkSpec) { s.Routing = &v1.Routing{MTU: ptr.To[int32](1000)} }, "1280"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := dualStack()
			c.mutate(&s)
			errs := Validate(Default(s, Images{}))
			if c.want == "" {
				if len(errs) > 0 {
					t.Fatalf("unexpected errors: %v", errs)
				}
				return
			}
			if len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), c.want) {
				t.Fatalf("errors = %v, want one containing %q", errs, c.want)
			}
		})
	}
}

func TestIsChangeSafe(t *testing.T) {
	base := Default(dualStack(), Images{})
	used := []netip.Prefix{netip.MustParsePrefix("10.244.3.0/24"), netip.MustParsePrefix("fd00:10:244::/64")}
	cases := []struct {
		name   string
		mutate func(*v1.ClusterNetworkSpec)
		want   string
	}{
		{"no change", func(*v1.ClusterNetworkSpec) {}, ""},
		{"add pod cidr", func(s *v1.ClusterNetworkSpec) { s.PodNetwork.CIDRs = append(s.PodNetwork.CIDRs, "10.245.0.0/16") }, ""},
		{"grow pod cidr", func(s *v1.ClusterNetworkSpec) { s.PodNetwork.CIDRs[0] = "10.244.0.0/15" }, ""},
		{"switch routing", func(s *v1.ClusterNetworkSpec) { s.Routing.Mode = v1.RoutingVXLAN }, ""},
		{"remove used", func(s *v1.ClusterNetworkSpec) { s.PodNetwork.CIDRs[0] = "10.250.0.0/16" }, "removes or shrinks 10.244.0.0/16, which holds the pod CIDRs of 1 nodes (10.244.3.0/24)"},
		{"shrink used", func(s *v1.ClusterNetworkSpec) { s.PodNetwork.CIDRs[0] = "10.244.0.0/23" }, "removes or shrinks 10.244.0.0/16"},
		{"mask change", func(s *v1.ClusterNetworkSpec) { s.PodNetwork.NodeMaskSizeIPv4 = ptr.To[int32](25) }, "spec.podNetwork.nodeMaskSizeIPv4: Forbidden: cannot change to /25 while 1 nodes hold /24"},
		{"service change", func(s *v1.ClusterNetworkSpec) { s.ServiceNetwork.CIDRs[0] = "10.97.0.0/16" }, "spec.serviceNetwork.cidrs: Forbidden"},
		{"domain change", func(s *v1.ClusterNetworkSpec) { s.DNS.ClusterDomain = "corp.local" }, "spec.dns.clusterDomain"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			next := *base.DeepCopy()
			c.mutate(&next)
			errs := IsChangeSafe(&base, next, used)
			if c.want == "" {
				if len(errs) > 0 {
					t.Fatalf("unexpected refusal: %v", errs)
				}
				return
			}
			if len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), c.want) {
				t.Fatalf("errors = %v, want one containing %q", errs, c.want)
			}
		})
	}
	// Without a record of what was applied, allocations still guard the pools.
	next := *base.DeepCopy()
	next.PodNetwork.CIDRs[0] = "10.250.0.0/16"
	if errs := IsChangeSafe(nil, next, used); len(errs) == 0 {
		t.Fatal("removing a used pod CIDR was allowed when lastApplied is unknown")
	}
}

func TestCheckNodeOverlap(t *testing.T) {
	spec := Default(dualStack(), Images{})
	nodes := []NodeAddresses{
		{Name: "n1", Addresses: []netip.Addr{netip.MustParseAddr("192.168.1.10")}},
		{Name: "n2", Addresses: []netip.Addr{netip.MustParseAddr("10.244.7.1")}},
	}
	errs := CheckNodeOverlap(spec, nodes)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "spec.podNetwork.cidrs[0]") || !strings.Contains(errs[0].Error(), "n2 (10.244.7.1)") {
		t.Fatalf("errs = %v, want one naming podNetwork.cidrs[0] and n2 (10.244.7.1)", errs)
	}
	if errs := CheckNodeOverlap(spec, nodes[:1]); len(errs) != 0 {
		t.Fatalf("no overlap expected: %v", errs)
	}
}
