// Package render turns the operator's gathered configuration into the Kubernetes objects it runs.
// Every function here is pure: it reads no client, clock or environment, so its output is pinned by
// golden files in testdata/.
package render

import (
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/component"
)

// Names and labels of the agent's objects.
const (
	AgentName           = "plexus-agent"
	AgentServiceAccount = "plexus-agent"
	// APIServerEndpointConfigMap optionally carries KUBERNETES_SERVICE_HOST and _PORT: host-network
	// components cannot use the kubernetes Service before Plexus programs Services.
	APIServerEndpointConfigMap = "plexus-apiserver-endpoint"
	agentMetricsPort           = 9462
	agentHealthPort            = 9463
	// agentProxyHealthPort is kube-proxy's healthz port, where tools and load balancers probe a
	// node's service proxy.
	agentProxyHealthPort = 10256
	agentContainerName   = "agent"
)

// Host paths the agent works on.
const (
	hostCNIBinDir   = "/opt/cni/bin"
	hostCNIConfDir  = "/etc/cni/net.d"
	hostRunDir      = "/run/plexus"
	hostCNIStoreDir = "/var/lib/cni/plexus"
	// agentProcSysDir is where the agent container sees the host's /proc/sys/net (below it).
	agentProcSysDir = "/host/proc/sys"
)

// AgentConfig is everything the agent DaemonSet depends on.
type AgentConfig struct {
	// Namespace the operator and the agent run in.
	Namespace string
	// Spec is the served (effective) ClusterNetwork spec. Only placement and the image reach the
	// DaemonSet: the agent reads the rest from the ClusterNetwork, so config changes restart no pod.
	Spec v1.ClusterNetworkSpec
}

// Agent renders the node agent's DaemonSet.
func Agent(cfg AgentConfig) []client.Object {
	labels := component.Labels(component.Agent)
	selector := map[string]string{component.LabelName: labels[component.LabelName]}
	placement := cfg.Spec.Agent
	if placement == nil {
		placement = &v1.AgentPlacement{}
	}
	image := ""
	if cfg.Spec.Images != nil {
		image = cfg.Spec.Images.Agent
	}
	ds := &appsv1.DaemonSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: metav1.ObjectMeta{Name: AgentName, Namespace: cfg.Namespace, Labels: labels},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
				Type: appsv1.RollingUpdateDaemonSetStrategyType,
				// One node at a time: the agent leaves the data plane in place while it restarts,
				// but a bad image should stop at the first node.
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: ptr.To(intstr.FromInt32(1))},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName:            AgentServiceAccount,
					HostNetwork:                   true,
					DNSPolicy:                     corev1.DNSClusterFirstWithHostNet,
					PriorityClassName:             placement.PriorityClassName,
					NodeSelector:                  placement.NodeSelector,
					Tolerations:                   placement.Tolerations,
					TerminationGracePeriodSeconds: ptr.To[int64](30),
					InitContainers:                []corev1.Container{sysctlContainer(image)},
					Containers:                    []corev1.Container{agentContainer(image)},
					Volumes:                       agentVolumes(),
				},
			},
		},
	}
	return []client.Object{ds}
}

// sysctlContainer turns on forwarding in the host's network namespace. It is the only privileged
// part of the agent: container runtimes mount /proc/sys read-only for everything else, and the
// agent itself then runs with NET_ADMIN and NET_RAW only.
func sysctlContainer(image string) corev1.Container {
	return corev1.Container{
		Name:    "enable-forwarding",
		Image:   image,
		Command: []string{"/plexus-agent", "sysctl", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"},
		SecurityContext: &corev1.SecurityContext{
			Privileged: ptr.To(true),
		},
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi"),
		}},
	}
}

func agentContainer(image string) corev1.Container {
	return corev1.Container{
		Name:    agentContainerName,
		Image:   image,
		Command: []string{"/plexus-agent"},
		Args: []string{
			"--cni-bin-dir=" + hostCNIBinDir,
			"--cni-conf-dir=" + hostCNIConfDir,
			"--cni-plugin-binary=/plexus-cni",
			fmt.Sprintf("--metrics-bind-address=:%d", agentMetricsPort),
			fmt.Sprintf("--health-probe-bind-address=:%d", agentHealthPort),
			fmt.Sprintf("--proxy-healthz-bind-address=:%d", agentProxyHealthPort),
			"--proc-sys-dir=" + agentProcSysDir,
		},
		Env: []corev1.EnvVar{{
			Name:      "NODE_NAME",
			ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}},
		}, {
			// The container's memory limit in bytes: the agent keeps the Go heap under 90% of it
			// (plexus-agent --memory-limit), so a large cluster makes it collect garbage more
			// often rather than be OOM-killed.
			Name: "PLEXUS_MEMORY_LIMIT",
			ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{
				ContainerName: agentContainerName, Resource: "limits.memory", Divisor: resource.MustParse("1"),
			}},
		}},
		EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: APIServerEndpointConfigMap},
			Optional:             ptr.To(true),
		}}},
		Ports: []corev1.ContainerPort{
			{Name: "metrics", ContainerPort: agentMetricsPort},
			{Name: "health", ContainerPort: agentHealthPort},
			{Name: "proxy-healthz", ContainerPort: agentProxyHealthPort},
		},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  httpGet("/readyz", "health"),
			PeriodSeconds: 5,
		},
		LivenessProbe: &corev1.Probe{
			ProbeHandler:     httpGet("/healthz", "health"),
			PeriodSeconds:    20,
			FailureThreshold: 6,
		},
		Resources: requests("50m", "64Mi", "512Mi"),
		SecurityContext: &corev1.SecurityContext{
			// Root without privilege: netlink and nftables need NET_ADMIN, raw sockets (ICMP
			// rejects, health checks) NET_RAW; root is needed to write the host's CNI folders.
			RunAsUser:                ptr.To[int64](0),
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities: &corev1.Capabilities{
				Drop: []corev1.Capability{"ALL"},
				Add:  []corev1.Capability{"NET_ADMIN", "NET_RAW"},
			},
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "cni-bin", MountPath: hostCNIBinDir},
			{Name: "cni-conf", MountPath: hostCNIConfDir},
			{Name: "run-plexus", MountPath: hostRunDir},
			// Read-write: counting pods takes the CNI store's lock file.
			{Name: "cni-store", MountPath: hostCNIStoreDir},
			// The conntrack timeouts: the container's own /proc/sys is read-only. Writing a net
			// sysctl takes NET_ADMIN only, and acts on the writer's (the host's) namespace.
			{Name: "host-proc-sys-net", MountPath: agentProcSysDir + "/net"},
		},
	}
}

func agentVolumes() []corev1.Volume {
	hostPath := func(name, path string, t corev1.HostPathType) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path, Type: &t}}}
	}
	return []corev1.Volume{
		hostPath("cni-bin", hostCNIBinDir, corev1.HostPathDirectoryOrCreate),
		hostPath("cni-conf", hostCNIConfDir, corev1.HostPathDirectoryOrCreate),
		hostPath("run-plexus", hostRunDir, corev1.HostPathDirectoryOrCreate),
		hostPath("cni-store", hostCNIStoreDir, corev1.HostPathDirectoryOrCreate),
		hostPath("host-proc-sys-net", "/proc/sys/net", corev1.HostPathDirectory),
		// No /lib/modules: nftables and VXLAN modules are loaded by the kernel's own module
		// helper, which runs in the host's namespaces, not by the agent.
	}
}

// GenerationAnnotation records on rendered objects the ClusterNetwork generation they come from.
const GenerationAnnotation = "plexus.dev/cluster-network-generation"

// Annotate stamps the generation on every object (not on pod templates: that would restart pods).
func Annotate(objs []client.Object, generation int64) {
	for _, o := range objs {
		a := o.GetAnnotations()
		if a == nil {
			a = map[string]string{}
		}
		a[GenerationAnnotation] = strconv.FormatInt(generation, 10)
		o.SetAnnotations(a)
	}
}
