// Package check is `plexusctl check`: it proves a cluster's network works by real traffic between
// short-lived probe pods (one pod-network server and client and one host-network client per node,
// running the agent image's `plexus-agent probe`), prints a matrix with latencies and removes
// everything it created, also when interrupted.
package check

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/plexus-net/plexus/internal/probe"
)

// Labels and names of what a check creates.
const (
	// ManagedByLabel marks a check's namespace, so a leftover one (a killed plexusctl) is easy to find.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	managedBy      = "plexusctl-check"
	roleLabel      = "plexus.dev/check-role"
	roleServer     = "server"
	roleIsolated   = "isolated"
	// ServerPort is where probe servers answer, TCP and UDP.
	ServerPort = 8080
	// ServerHTTPPort is where probe servers answer HTTP: the backend of the check's Ingress.
	ServerHTTPPort = 8081
	serviceName    = "check"
	agentBinary    = "/plexus-agent"
)

// Node is a node to check.
type Node struct {
	Name string
	// IPs are its InternalIPs (NodePort targets).
	IPs []string
}

// Namespace is the check's own namespace.
func Namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{ManagedByLabel: managedBy}}}
}

// probePod is the shape every probe pod shares: pinned to its node, tolerating every taint (a node
// is checked even when tainted), small, unprivileged.
func probePod(ns, name, node, image string, args []string, labels map[string]string) *corev1.Pod {
	l := map[string]string{ManagedByLabel: managedBy}
	for k, v := range labels {
		l[k] = v
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			AutomountServiceAccountToken:  ptr.To(false),
			Containers: []corev1.Container{{
				Name:    "probe",
				Image:   image,
				Command: []string{agentBinary},
				Args:    args,
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi"),
				}},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					RunAsNonRoot:             ptr.To(true),
					RunAsUser:                ptr.To[int64](65534),
				},
			}},
		},
	}
}

// ServerPod answers probes on node.
func ServerPod(ns, name, node, image, role string) *corev1.Pod {
	p := probePod(ns, name, node, image, []string{"probe", "serve", fmt.Sprintf("--listen=:%d", ServerPort), fmt.Sprintf("--http-listen=:%d", ServerHTTPPort)},
		map[string]string{roleLabel: role})
	p.Spec.Containers[0].Ports = []corev1.ContainerPort{
		{Name: "probe-tcp", ContainerPort: ServerPort, Protocol: corev1.ProtocolTCP},
		{Name: "probe-udp", ContainerPort: ServerPort, Protocol: corev1.ProtocolUDP},
		{Name: "probe-http", ContainerPort: ServerHTTPPort, Protocol: corev1.ProtocolTCP},
	}
	p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(ServerPort)}},
		PeriodSeconds: 1,
	}
	return p
}

// ClientPod probes targets once from node and exits; its log's last line is the results.
func ClientPod(ns, name, node, image string, hostNetwork bool, targets []probe.Target) (*corev1.Pod, error) {
	raw, err := json.Marshal(targets)
	if err != nil {
		return nil, err
	}
	p := probePod(ns, name, node, image, []string{"probe", "run", "--timeout=2s", "--targets=" + string(raw)}, nil)
	p.Spec.RestartPolicy = corev1.RestartPolicyNever
	if hostNetwork {
		p.Spec.HostNetwork = true
		p.Spec.DNSPolicy = corev1.DNSClusterFirstWithHostNet
	}
	return p, nil
}

// Service fronts the server pods: a ClusterIP of every family the cluster has and NodePorts.
func Service(ns string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: serviceName, Labels: map[string]string{ManagedByLabel: managedBy}},
		Spec: corev1.ServiceSpec{
			Type:           corev1.ServiceTypeNodePort,
			IPFamilyPolicy: ptr.To(corev1.IPFamilyPolicyPreferDualStack),
			Selector:       map[string]string{roleLabel: roleServer},
			Ports: []corev1.ServicePort{
				{Name: "tcp", Port: ServerPort, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(ServerPort)},
				{Name: "udp", Port: ServerPort, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(ServerPort)},
				{Name: "http", Port: ServerHTTPPort, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(ServerHTTPPort)},
			},
		},
	}
}

// IngressHost is the host of the check's Ingress rule: unique to the check's namespace, under a
// reserved top-level domain, so it never shadows a real route.
func IngressHost(ns string) string { return ns + ".check.plexus.invalid" }

// Ingress routes IngressHost(ns) to the check Service's HTTP port through the class className.
func Ingress(ns, className string) *networkingv1.Ingress {
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: serviceName, Labels: map[string]string{ManagedByLabel: managedBy}},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To(className),
			Rules: []networkingv1.IngressRule{{Host: IngressHost(ns), IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix), Backend: networkingv1.IngressBackend{
					Service: &networkingv1.IngressServiceBackend{Name: serviceName, Port: networkingv1.ServiceBackendPort{Name: "http"}},
				}}},
			}}}},
		},
	}
}

// IsolationPolicy denies all ingress to the isolated pod: probes to it must fail.
func IsolationPolicy(ns string) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "isolate", Labels: map[string]string{ManagedByLabel: managedBy}},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{roleLabel: roleIsolated}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		},
	}
}
