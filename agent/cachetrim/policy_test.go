package cachetrim

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/plexus-net/plexus/agent/policy"
	pt "github.com/plexus-net/plexus/agent/policy/policytest"
)

// fullPods are the policy test cluster's pods with everything the API server adds: metadata,
// more containers (one without named ports, one with unnamed ports beside named ones), init
// containers, conditions, container statuses.
func fullPods() []*corev1.Pod {
	pods := pt.Pods()
	for _, p := range pods {
		p.ObjectMeta = fullMeta(p.Namespace, p.Name, p.Labels)
		p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox"}}
		p.Spec.Containers = append(p.Spec.Containers,
			corev1.Container{Name: "sidecar", Image: "proxy", Args: []string{"--verbose"}},
			corev1.Container{Name: "metrics", Ports: []corev1.ContainerPort{{ContainerPort: 9100}, pt.CPort("metrics", 9101, corev1.ProtocolTCP)}})
		p.Spec.ServiceAccountName = "default"
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", Ready: true, Image: "app"}}
		p.Status.HostIP = "10.0.0.1"
		if len(p.Status.PodIPs) > 0 {
			p.Status.PodIP = p.Status.PodIPs[0].IP
		}
	}
	return pods
}

// policyCases are policies reading every part of the inputs: pod and namespace labels, named
// ports of selected and peer pods, ipBlocks.
func policyCases() []*networkingv1.NetworkPolicy {
	return pt.NPs(
		pt.NP("a", "deny", "", nil, nil, nil),
		pt.NP("a", "named", "x", pt.Both,
			pt.IngressRules(pt.In(pt.Peers(pt.NSPeer("b")), pt.NamedPort(corev1.ProtocolTCP, "http"), pt.NamedPort(corev1.ProtocolTCP, "metrics"))),
			pt.EgressRules(pt.Out(pt.Peers(pt.NSPodPeer("", "z")), pt.NamedPort(corev1.ProtocolTCP, "http")), pt.Out(pt.BlockPeers(true)))),
		pt.NP("c", "from-a", "", pt.IngressOnly, pt.IngressRules(pt.In(pt.Peers(pt.NSPodPeer("a", "y")), pt.PortRange(corev1.ProtocolUDP, 80, 81))), nil),
	)
}

// A trimmed input compiles to the same model as the full one.
func TestTrimmedPolicyInputsCompileTheSameModel(t *testing.T) {
	full := policy.Input{NodeName: pt.NodeName, NodeIPs: pt.NodeIPs(), Pods: fullPods(), Namespaces: pt.Namespaces(), Policies: policyCases()}
	for _, ns := range full.Namespaces {
		ns.ObjectMeta = fullMeta("", ns.Name, ns.Labels)
		ns.Spec.Finalizers = []corev1.FinalizerName{corev1.FinalizerKubernetes}
		ns.Status.Phase = corev1.NamespaceActive
	}
	for _, np := range full.Policies {
		np.ObjectMeta = fullMeta(np.Namespace, np.Name, map[string]string{"team": "a"})
	}
	trimmed := policy.Input{NodeName: full.NodeName, NodeIPs: full.NodeIPs}
	for _, p := range full.Pods {
		trimmed.Pods = append(trimmed.Pods, mustTrim(t, Pod, p))
	}
	for _, ns := range full.Namespaces {
		trimmed.Namespaces = append(trimmed.Namespaces, mustTrim(t, Namespace, ns))
	}
	for _, np := range full.Policies {
		trimmed.Policies = append(trimmed.Policies, mustTrim(t, NetworkPolicy, np))
	}
	want, got := policy.Compile(full), policy.Compile(trimmed)
	if len(want.Errors) > 0 || len(want.Policies) != 3 {
		t.Fatalf("the full input compiles to %d policies, errors %v", len(want.Policies), want.Errors)
	}
	if !reflect.DeepEqual(want, got) {
		t.Errorf("the trimmed input compiles to another model:\nfull:    %+v\ntrimmed: %+v", want, got)
	}

	p := trimmed.Pods[0]
	if p.ManagedFields != nil || p.Annotations != nil || len(p.Status.Conditions) > 0 || len(p.Spec.InitContainers) > 0 ||
		len(p.Spec.Containers) != 2 || len(p.Spec.Containers[1].Ports) != 1 || p.Status.HostIP != "" {
		t.Errorf("trimmed pod keeps what the model does not read: %+v", p)
	}
	if np := trimmed.Policies[0]; np.ManagedFields != nil || np.Annotations != nil || np.Labels != nil {
		t.Errorf("trimmed policy keeps metadata: %+v", np.ObjectMeta)
	}
	if ns := trimmed.Namespaces[0]; ns.ManagedFields != nil || ns.Annotations != nil || len(ns.Spec.Finalizers) > 0 {
		t.Errorf("trimmed namespace keeps what the model does not read: %+v", ns)
	}
	// Anything else (a tombstone) passes through.
	for _, tr := range []func(any) (any, error){Pod, Namespace, NetworkPolicy} {
		if out, _ := tr("tombstone"); out != "tombstone" {
			t.Errorf("another type changed: %v", out)
		}
	}
}

func mustTrim[T any](t *testing.T, trim func(any) (any, error), in *T) *T {
	t.Helper()
	out, err := trim(in)
	if err != nil {
		t.Fatal(err)
	}
	return out.(*T)
}
