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
)

const (
	ingressContainerName = "plexus-ingress"
	// ingressStateDir is the proxy's writable state (TLS locks): an emptyDir, since the root
	// filesystem is read-only.
	ingressStateDir = "/var/lib/plexus-ingress"
	// ingressRunAsUser is an unprivileged user: the proxy listens above 1024 and needs nothing else.
	ingressRunAsUser = 65532
	// ingressTerminationGrace lets in-flight requests finish after SIGTERM.
	ingressTerminationGrace = 30
)

// ingressArgs are plexus-ingress' flags: serve the class's controller name on the pod ports,
// publish the Service's addresses, redirect plain HTTP to the Service's HTTPS port.
func ingressArgs(ns string, cfg IngressConfig) []string {
	args := []string{
		"-controller-name=" + IngressControllerName,
		fmt.Sprintf("-http-listen=:%d", IngressHTTPPort),
		fmt.Sprintf("-https-listen=:%d", IngressHTTPSPort),
		"-https-redirect-port=" + strconv.Itoa(IngressServiceHTTPSPort),
		"-publish-service=" + IngressServiceRef(ns),
		"-leader-elect=true",
		"-leader-election-namespace=" + ns,
		fmt.Sprintf("-metrics-bind-address=:%d", IngressMetricsPort),
		fmt.Sprintf("-health-probe-bind-address=:%d", IngressHealthPort),
		"-storage-dir=" + ingressStateDir,
	}
	if s := cfg.Spec.Ingress.DefaultTLSSecret; s != nil {
		args = append(args, "-default-tls-secret="+s.Namespace+"/"+s.Name)
	}
	if ptr.Deref(cfg.Spec.Ingress.Metrics, false) {
		args = append(args, "-metrics")
	}
	if ptr.Deref(cfg.Spec.Ingress.AccessLog, false) {
		args = append(args, "-access-log")
	}
	return append(args, GatewayIngressArgs(cfg.Spec)...)
}

func ingressDeployment(cfg IngressConfig) *appsv1.Deployment {
	labels := IngressLabels()
	image := ""
	if cfg.Spec.Images != nil {
		image = cfg.Spec.Images.Ingress
	}
	replicas := int32(1)
	if cfg.Spec.Ingress.Replicas != nil {
		replicas = *cfg.Spec.Ingress.Replicas
	}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: IngressName, Namespace: cfg.Namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: ingressSelector()},
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				// A new replica must be ready (its config loaded) before an old one goes.
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: ptr.To(intstr.FromInt32(0)),
					MaxSurge:       ptr.To(intstr.FromInt32(1)),
				},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName:            IngressName,
					NodeSelector:                  map[string]string{"kubernetes.io/os": "linux"},
					Affinity:                      spreadAffinity(ingressSelector(), replicas, cfg.Nodes),
					TopologySpreadConstraints:     spreadConstraints(ingressSelector()),
					TerminationGracePeriodSeconds: ptr.To[int64](ingressTerminationGrace),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To[int64](ingressRunAsUser),
						RunAsGroup:     ptr.To[int64](ingressRunAsUser),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{ingressContainer(image, ingressArgs(cfg.Namespace, cfg))},
					Volumes: []corev1.Volume{{
						Name:         "state",
						VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}},
					}},
				},
			},
		},
	}
}

func ingressContainer(image string, args []string) corev1.Container {
	return corev1.Container{
		Name:  ingressContainerName,
		Image: image,
		Args:  args,
		// Caddy falls back to $HOME and the XDG folders for anything not configured: keep them in
		// the writable state folder.
		Env: []corev1.EnvVar{
			{Name: "HOME", Value: ingressStateDir},
			{Name: "XDG_CONFIG_HOME", Value: ingressStateDir},
			{Name: "XDG_DATA_HOME", Value: ingressStateDir},
			// The container's memory limit in bytes: plexus-ingress keeps the Go heap under 90%
			// of it and, with that limit behind it, collects garbage less often under load
			// (plexus-ingress -memory-limit).
			{Name: "PLEXUS_MEMORY_LIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{
				ContainerName: ingressContainerName, Resource: "limits.memory", Divisor: resource.MustParse("1"),
			}}},
		},
		Ports: []corev1.ContainerPort{
			{Name: "http", ContainerPort: IngressHTTPPort, Protocol: corev1.ProtocolTCP},
			{Name: "https", ContainerPort: IngressHTTPSPort, Protocol: corev1.ProtocolTCP},
			{Name: "metrics", ContainerPort: IngressMetricsPort, Protocol: corev1.ProtocolTCP},
			{Name: "health", ContainerPort: IngressHealthPort, Protocol: corev1.ProtocolTCP},
		},
		// Ready once this replica has loaded its first config: before that it would refuse every
		// request the Service sends it.
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  httpGet("/readyz", "health"),
			PeriodSeconds: 2,
		},
		LivenessProbe: &corev1.Probe{
			ProbeHandler:        httpGet("/healthz", "health"),
			InitialDelaySeconds: 30,
			PeriodSeconds:       10,
			TimeoutSeconds:      5,
			FailureThreshold:    5,
		},
		Resources:       requests("100m", "64Mi", "512Mi"),
		SecurityContext: unprivileged(),
		VolumeMounts:    []corev1.VolumeMount{{Name: "state", MountPath: ingressStateDir}},
	}
}

// spreadAffinity keeps the replicas of a Deployment on different nodes: required when there are
// more nodes than replicas (so a surge pod of a rollout still finds a node of its own), preferred
// otherwise (a required rule would leave a surge pod unschedulable). See dnsAffinity for why
// spreading alone is not enough.
func spreadAffinity(selector map[string]string, replicas, nodes int32) *corev1.Affinity {
	term := corev1.PodAffinityTerm{
		LabelSelector: &metav1.LabelSelector{MatchLabels: selector},
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

// spreadConstraints spread the replicas over nodes and zones as the Deployment grows.
func spreadConstraints(selector map[string]string) []corev1.TopologySpreadConstraint {
	spread := func(key string) corev1.TopologySpreadConstraint {
		return corev1.TopologySpreadConstraint{
			MaxSkew:           1,
			TopologyKey:       key,
			WhenUnsatisfiable: corev1.ScheduleAnyway,
			LabelSelector:     &metav1.LabelSelector{MatchLabels: selector},
		}
	}
	return []corev1.TopologySpreadConstraint{spread(corev1.LabelTopologyZone), spread(corev1.LabelHostname)}
}
