package render

import (
	"strings"
	"testing"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

func TestCorefile(t *testing.T) {
	base := CorefileConfig{ClusterDomain: "cluster.local", ReverseCIDRs: []string{"10.244.0.0/16", "10.96.0.0/16"}, CacheSeconds: 30, Port: 53, HealthPort: 8080, ReadyPort: 8181, MetricsPort: 9153}
	for _, tc := range []struct {
		name      string
		mutate    func(*CorefileConfig)
		want, not []string
	}{
		{"defaults forward to the node's resolvers", nil,
			[]string{".:53 {", "forward . /etc/resolv.conf {", "kubernetes cluster.local 10.244.0.0/16 10.96.0.0/16 {", "pods insecure", "cache 30", "health :8080 {", "lameduck 10s", "ready :8181", "prometheus :9153", "loop", "reload", "loadbalance", "errors"},
			[]string{"fallthrough", "bind", "kubeconfig"}},
		{"upstreams replace resolv.conf", func(c *CorefileConfig) { c.Upstreams = []string{"192.0.2.53", "2001:db8::53"} },
			[]string{"forward . 192.0.2.53 2001:db8::53 {"}, []string{"/etc/resolv.conf"}},
		{"cache 0 turns the cache off", func(c *CorefileConfig) { c.CacheSeconds = 0 }, nil, []string{"cache"}},
		{"one block per forward zone, sorted", func(c *CorefileConfig) {
			c.ForwardZones = []v1.ForwardZone{{Zone: "z.example.", Upstreams: []string{"192.0.2.9"}}, {Zone: "a.example", Upstreams: []string{"192.0.2.8"}}}
		}, []string{"a.example:53 {\n    errors\n    prometheus :9153\n    forward . 192.0.2.8 {", "z.example:53 {\n    errors\n    prometheus :9153\n    forward . 192.0.2.9 {"}, nil},
		{"outside a cluster", func(c *CorefileConfig) { c.ListenIP = "127.0.0.1"; c.Kubeconfig = "/tmp/kc" },
			[]string{"bind 127.0.0.1", "health 127.0.0.1:8080 {", "kubeconfig /tmp/kc"}, nil},
	} {
		cfg := base
		if tc.mutate != nil {
			tc.mutate(&cfg)
		}
		got := RenderCorefile(cfg)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: Corefile lacks %q:\n%s", tc.name, w, got)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(got, n) {
				t.Errorf("%s: Corefile has %q:\n%s", tc.name, n, got)
			}
		}
	}
	a := RenderCorefile(CorefileConfig{ForwardZones: []v1.ForwardZone{{Zone: "b"}, {Zone: "a"}}})
	b := RenderCorefile(CorefileConfig{ForwardZones: []v1.ForwardZone{{Zone: "a"}, {Zone: "b"}}})
	if a != b {
		t.Error("reordering forward zones must not change the Corefile (it would reload CoreDNS for nothing)")
	}
}
