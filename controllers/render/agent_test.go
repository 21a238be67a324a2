package render

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/netconfig"
)

func agentConfig(mutate func(*v1.ClusterNetworkSpec)) AgentConfig {
	spec := v1.ClusterNetworkSpec{
		IPFamilies:     []v1.IPFamily{v1.IPv4, v1.IPv6},
		PodNetwork:     v1.PodNetwork{CIDRs: []v1.CIDR{"10.244.0.0/16", "fd00:10:244::/56"}},
		ServiceNetwork: v1.ServiceNetwork{CIDRs: []v1.CIDR{"10.96.0.0/16", "fd00:10:96::/112"}},
	}
	if mutate != nil {
		mutate(&spec)
	}
	return AgentConfig{Namespace: "plexus-system", Spec: netconfig.Default(spec, netconfig.Images{Agent: "plexus/plexus-agent:dev"})}
}

func TestAgentGolden(t *testing.T) {
	expectGolden(t, "agent-defaults", Agent(agentConfig(nil)))
	expectGolden(t, "agent-placement", Agent(agentConfig(func(s *v1.ClusterNetworkSpec) {
		s.Images = &v1.Images{Agent: "registry.invalid/plexus-agent:1.2.3"}
		s.Agent = &v1.AgentPlacement{
			NodeSelector:      map[string]string{"plexus.dev/networked": "true"},
			Tolerations:       []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "net", Effect: corev1.TaintEffectNoSchedule}},
			PriorityClassName: "plexus-critical",
		}
	})))
}

func TestAgentLeastPrivilege(t *testing.T) {
	ds := Agent(agentConfig(nil))[0].(*appsv1.DaemonSet)
	spec := ds.Spec.Template.Spec
	if !spec.HostNetwork {
		t.Fatal("the agent programs the host's network and must run on it")
	}
	c := spec.Containers[0]
	if c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
		t.Fatal("the agent container must not be privileged")
	}
	add := c.SecurityContext.Capabilities.Add
	if len(add) != 2 || add[0] != "NET_ADMIN" || add[1] != "NET_RAW" {
		t.Fatalf("capabilities = %v, want exactly NET_ADMIN and NET_RAW", add)
	}
	if len(c.SecurityContext.Capabilities.Drop) != 1 || c.SecurityContext.Capabilities.Drop[0] != "ALL" {
		t.Fatal("the agent must drop every other capability")
	}
}
