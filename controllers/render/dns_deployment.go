package render

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// Sizing of the CoreDNS Deployment when dns.replicas is unset.
const (
	// DNSNodesPerReplica: one CoreDNS replica per this many nodes.
	DNSNodesPerReplica = 16
	// DNSMinReplicas keeps a second replica to fail over to, where there is a second node.
	DNSMinReplicas = 2
)

const (
	dnsContainerName = "coredns"
	dnsConfigDir     = "/etc/coredns"
	// dnsRunAsUser is an unprivileged user: CoreDNS needs no root, only port 53 (see the sysctl below).
	dnsRunAsUser = 65532
	// dnsTerminationGrace outlasts the health plugin's lameduck, so a stopping pod is never killed
	// while it still answers.
	dnsTerminationGrace = 30
)

// DNSReplicas is the size of the CoreDNS Deployment: dns.replicas when set; otherwise one per
// DNSNodesPerReplica nodes, at least DNSMinReplicas, but never more than there are nodes (more
// replicas than nodes would only stack on one node), and at least one.
func DNSReplicas(replicas *int32, nodes int32) int32 {
	if replicas != nil {
		return *replicas
	}
	n := (nodes + DNSNodesPerReplica - 1) / DNSNodesPerReplica
	n = max(n, DNSMinReplicas)
	n = min(n, nodes)
	return max(n, 1)
}

func dnsDeployment(cfg DNSConfig) *appsv1.Deployment {
	labels := DNSLabels()
	image := ""
	if cfg.Spec.Images != nil {
		image = cfg.Spec.Images.DNS
	}
	replicas := DNSReplicas(cfg.Spec.DNS.Replicas, cfg.Nodes)
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: DNSDeploymentName, Namespace: cfg.Namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: dnsSelector()},
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				// A new pod must be ready before an old one goes: a rollout never takes the last
				// ready replica away, and never lowers the number answering.
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: ptr.To(intstr.FromInt32(0)),
					MaxSurge:       ptr.To(intstr.FromInt32(1)),
				},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName: DNSServiceAccount,
					// Default: the node's resolv.conf, which `forward . /etc/resolv.conf` reads;
					// ClusterFirst would point CoreDNS at itself.
					DNSPolicy:                     corev1.DNSDefault,
					PriorityClassName:             "system-cluster-critical",
					NodeSelector:                  map[string]string{"kubernetes.io/os": "linux"},
					Tolerations:                   dnsTolerations(),
					Affinity:                      dnsAffinity(replicas, cfg.Nodes),
					TopologySpreadConstraints:     dnsSpread(),
					TerminationGracePeriodSeconds: ptr.To[int64](dnsTerminationGrace),
					SecurityContext: &corev1.PodSecurityContext{
						// Ports below 1024 are privileged by default; opening 53 in the pod's own
						// network namespace lets CoreDNS run without root or capabilities. The
						// sysctl is namespaced and on the kubelet's safe list.
						Sysctls:        []corev1.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "53"}},
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To[int64](dnsRunAsUser),
						RunAsGroup:     ptr.To[int64](dnsRunAsUser),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{dnsContainer(image)},
					Volumes: []corev1.Volume{{
						Name: "config",
						VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: DNSConfigMapName},
							Items:                []corev1.KeyToPath{{Key: DNSCorefileKey, Path: DNSCorefileKey}},
						}},
					}},
				},
			},
		},
	}
}

func dnsContainer(image string) corev1.Container {
	return corev1.Container{
		Name:  dnsContainerName,
		Image: image,
		Args:  []string{"-conf", dnsConfigDir + "/" + DNSCorefileKey},
		Ports: []corev1.ContainerPort{
			{Name: "dns", ContainerPort: DNSPort, Protocol: corev1.ProtocolUDP},
			{Name: "dns-tcp", ContainerPort: DNSPort, Protocol: corev1.ProtocolTCP},
			{Name: "metrics", ContainerPort: DNSMetricsPort, Protocol: corev1.ProtocolTCP},
			{Name: "health", ContainerPort: DNSHealthPort, Protocol: corev1.ProtocolTCP},
			{Name: "ready", ContainerPort: DNSReadyPort, Protocol: corev1.ProtocolTCP},
		},
		// Ready once the kubernetes plugin has synced its caches: a pod that would answer
		// NXDOMAIN for every Service never joins kube-dns.
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  httpGet("/ready", "ready"),
			PeriodSeconds: 2,
		},
		LivenessProbe: &corev1.Probe{
			ProbeHandler:        httpGet("/health", "health"),
			InitialDelaySeconds: 60,
			PeriodSeconds:       10,
			TimeoutSeconds:      5,
			FailureThreshold:    5,
		},
		Resources:       requests("100m", "70Mi", "170Mi"),
		SecurityContext: unprivileged(),
		VolumeMounts:    []corev1.VolumeMount{{Name: "config", MountPath: dnsConfigDir, ReadOnly: true}},
	}
}

// dnsTolerations let CoreDNS run on control-plane nodes and on nodes reserved for critical add-ons.
func dnsTolerations() []corev1.Toleration {
	return []corev1.Toleration{
		{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists},
		{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	}
}

// dnsAffinity keeps CoreDNS replicas on different nodes, so that losing one node never takes
// cluster DNS away with it.
//
// Topology spread alone (dnsSpread) is a preference: the scheduler weighs it against everything
// else, and replicas created while only one node is Ready (a cluster coming up, a node rebooting)
// all land on that node and stay there, since nothing reschedules running pods. So when there are
// more nodes than replicas the rule is required: a replica that cannot get a node of its own
// waits Pending until one is Ready, which is what we want. It is strictly more: a rollout surges
// one new pod (maxSurge 1, maxUnavailable 0) before an old one goes, and that pod needs a node of
// its own too; with exactly as many nodes as replicas (or fewer) a required rule would leave it
// unschedulable and the rollout stuck forever, so there the rule stays a preference.
func dnsAffinity(replicas, nodes int32) *corev1.Affinity {
	term := corev1.PodAffinityTerm{
		LabelSelector: &metav1.LabelSelector{MatchLabels: dnsSelector()},
		TopologyKey:   corev1.LabelHostname,
	}
	if nodes > replicas {
		return &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{term},
		}}
	}
	return &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 100, PodAffinityTerm: term}},
	}}
}

// dnsSpread keeps replicas spread over nodes and zones as the Deployment grows.
func dnsSpread() []corev1.TopologySpreadConstraint {
	spread := func(key string) corev1.TopologySpreadConstraint {
		return corev1.TopologySpreadConstraint{
			MaxSkew:           1,
			TopologyKey:       key,
			WhenUnsatisfiable: corev1.ScheduleAnyway,
			LabelSelector:     &metav1.LabelSelector{MatchLabels: dnsSelector()},
		}
	}
	return []corev1.TopologySpreadConstraint{spread(corev1.LabelTopologyZone), spread(corev1.LabelHostname)}
}

// dnsDisruptionBudget lets voluntary disruptions (drains) take one replica at a time, and none
// while another is not ready: with two or more replicas a drain never removes the last ready one.
// Unhealthy pods may always be evicted, so a broken replica never blocks a drain.
func dnsDisruptionBudget(ns string) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: metav1.ObjectMeta{Name: DNSDeploymentName, Namespace: ns, Labels: DNSLabels()},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable:             ptr.To(intstr.FromInt32(1)),
			Selector:                   &metav1.LabelSelector{MatchLabels: dnsSelector()},
			UnhealthyPodEvictionPolicy: ptr.To(policyv1.AlwaysAllow),
		},
	}
}
