package netconfig

import (
	"net/netip"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// TestChangeChecks runs each component's check alone: a change is refused by its own component's
// check and by no other.
func TestChangeChecks(t *testing.T) {
	base := Default(dualStack(), Images{})
	used := []netip.Prefix{netip.MustParsePrefix("10.244.3.0/24")}
	checks := map[string]changeCheck{"network": checkNetworkChange, "dns": checkDNSChange}
	cases := []struct {
		name    string
		mutate  func(*v1.ClusterNetworkSpec)
		refused string // the check that refuses it; "" for none
		want    string
	}{
		{"nothing", func(*v1.ClusterNetworkSpec) {}, "", ""},
		{"service cidrs", func(s *v1.ClusterNetworkSpec) { s.ServiceNetwork.CIDRs[1] = "fd00:10:97::/112" }, "network", "spec.serviceNetwork.cidrs: Forbidden"},
		{"families", func(s *v1.ClusterNetworkSpec) { s.IPFamilies = s.IPFamilies[:1] }, "network", "spec.ipFamilies: Forbidden"},
		{"cluster domain", func(s *v1.ClusterNetworkSpec) { s.DNS.ClusterDomain = "corp.local" }, "dns", `from "cluster.local" to "corp.local"`},
		{"dns service ip", func(s *v1.ClusterNetworkSpec) { s.DNS.ServiceIP = "10.96.0.53" }, "dns", "spec.dns.serviceIP: Forbidden"},
		{"dns replicas", func(s *v1.ClusterNetworkSpec) { s.DNS.Replicas = ptr.To[int32](5) }, "", ""},
		{"dns dropped from the spec", func(s *v1.ClusterNetworkSpec) { s.DNS = nil }, "", ""},
		{"ingress enabled", func(s *v1.ClusterNetworkSpec) { s.Ingress = &v1.Ingress{Enabled: ptr.To(true)} }, "", ""},
		{"policy disabled", func(s *v1.ClusterNetworkSpec) { s.NetworkPolicy = &v1.NetworkPolicy{Enabled: ptr.To(false)} }, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			next := *base.DeepCopy()
			c.mutate(&next)
			for name, check := range checks {
				errs := check(field.NewPath("spec"), base, next, used)
				if name != c.refused {
					if len(errs) > 0 {
						t.Errorf("%s check refused it: %v", name, errs)
					}
					continue
				}
				if len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), c.want) {
					t.Errorf("%s check: errors = %v, want one containing %q", name, errs, c.want)
				}
			}
		})
	}
}
