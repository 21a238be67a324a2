package cachetrim

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The informer transforms of the NetworkPolicy engine's objects. Every agent caches every Pod of
// the cluster (a rule's peers live on any node) and every Namespace, so it keeps only what
// policy.Compile reads (TestTrimmedPolicyInputsCompileTheSameModel proves a trimmed input
// compiles to the same model): a Pod's name, labels, node, host-network flag, phase, addresses
// and named container ports; a Namespace's name and labels; a NetworkPolicy's name and spec.
// A field the model starts reading must be added here, with its test.

// Pod is the informer transform of Pods: it keeps the parts of a Pod the NetworkPolicy model
// reads; anything else passes through unchanged.
func Pod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &corev1.Pod{
		// resourceVersion: the handlers skip informer resyncs by it.
		ObjectMeta: metav1.ObjectMeta{
			Namespace: internString(p.Namespace), Name: p.Name, UID: p.UID, ResourceVersion: p.ResourceVersion,
			Labels: p.Labels,
		},
		Spec: corev1.PodSpec{NodeName: internString(p.Spec.NodeName), HostNetwork: p.Spec.HostNetwork},
		Status: corev1.PodStatus{
			Phase: p.Status.Phase, PodIP: p.Status.PodIP, PodIPs: p.Status.PodIPs,
		},
	}
	// spec.containers is read for its named ports only: a container without named ports (most
	// of them) is left out, and of those with some only the ports that have a name.
	for _, c := range p.Spec.Containers {
		var ports []corev1.ContainerPort
		for _, cp := range c.Ports {
			if cp.Name != "" {
				ports = append(ports, corev1.ContainerPort{Name: cp.Name, ContainerPort: cp.ContainerPort, Protocol: cp.Protocol})
			}
		}
		if len(ports) > 0 {
			out.Spec.Containers = append(out.Spec.Containers, corev1.Container{Ports: ports})
		}
	}
	// status.podIP repeats status.podIPs[0]: keep one string.
	if len(out.Status.PodIPs) > 0 && out.Status.PodIP == out.Status.PodIPs[0].IP {
		out.Status.PodIP = out.Status.PodIPs[0].IP
	}
	return out, nil
}

// Namespace is the informer transform of Namespaces: it keeps their name and labels (what a
// namespaceSelector matches); anything else passes through unchanged.
func Namespace(obj any) (any, error) {
	n, ok := obj.(*corev1.Namespace)
	if !ok {
		return obj, nil
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: internString(n.Name), UID: n.UID, ResourceVersion: n.ResourceVersion, Labels: n.Labels,
	}}, nil
}

// NetworkPolicy is the informer transform of NetworkPolicies: it keeps their name and spec and
// drops the rest (managedFields, annotations such as kubectl's last-applied copy of the whole
// object); anything else passes through unchanged.
func NetworkPolicy(obj any) (any, error) {
	np, ok := obj.(*networkingv1.NetworkPolicy)
	if !ok {
		return obj, nil
	}
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: internString(np.Namespace), Name: np.Name, UID: np.UID, ResourceVersion: np.ResourceVersion,
			Generation: np.Generation,
		},
		Spec: np.Spec,
	}, nil
}
