package render

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/component"
)

// Names and labels of the cluster DNS objects. The Service, Deployment, ConfigMap and
// ServiceAccount keep the names a kubeadm cluster uses (kube-dns, coredns in kube-system), which is
// where tools and people look for them; the RBAC names are Plexus' own so they never collide with
// kubeadm's system:coredns.
const (
	DNSNamespace      = "kube-system"
	DNSServiceName    = "kube-dns"
	DNSDeploymentName = "coredns"
	DNSConfigMapName  = "coredns"
	DNSServiceAccount = "coredns"
	DNSClusterRole    = "plexus-coredns"
	// DNSAppLabel is the label every DNS tool selects CoreDNS pods and the Service by.
	DNSAppLabel      = "k8s-app"
	DNSAppLabelValue = "kube-dns"
	// DNSCorefileKey is the ConfigMap key holding the Corefile.
	DNSCorefileKey = "Corefile"
	// dnsServiceIPOffset is the host offset of the secondary family's Service IP on a dual-stack
	// cluster, the same offset that gives 10.96.0.10 for the primary one.
	dnsServiceIPOffset = 10
)

// Ports CoreDNS serves on, inside its pods.
const (
	DNSPort        = 53
	DNSMetricsPort = 9153
	DNSHealthPort  = 8080
	DNSReadyPort   = 8181
)

// DNSConfig is everything the cluster DNS objects depend on.
type DNSConfig struct {
	// Namespace CoreDNS and the kube-dns Service run in (kube-system: tools look there).
	Namespace string
	// Spec is the served (effective) ClusterNetwork spec.
	Spec v1.ClusterNetworkSpec
	// Nodes is the number of nodes in the cluster; it sizes the Deployment when dns.replicas is unset.
	Nodes int32
}

// DNSLabels are the labels of every cluster DNS object: the component labels pruning selects on,
// plus k8s-app=kube-dns, which tools expect.
func DNSLabels() map[string]string {
	l := component.Labels(component.DNS)
	l[DNSAppLabel] = DNSAppLabelValue
	return l
}

// dnsSelector picks Plexus' CoreDNS pods only: a CoreDNS left over from another installer also
// carries k8s-app=kube-dns and must never receive the Service's traffic.
func dnsSelector() map[string]string {
	return map[string]string{DNSAppLabel: DNSAppLabelValue, component.LabelName: component.Labels(component.DNS)[component.LabelName]}
}

// DNS renders the cluster DNS: CoreDNS' ServiceAccount and RBAC, the ConfigMap with its Corefile,
// the Deployment with its PodDisruptionBudget and the kube-dns Service. A disabled DNS renders
// nothing, so pruning removes whatever an earlier render made.
func DNS(cfg DNSConfig) []client.Object {
	d := cfg.Spec.DNS
	if d == nil || d.Enabled == nil || !*d.Enabled {
		return nil
	}
	ns := cfg.Namespace
	return []client.Object{
		&corev1.ServiceAccount{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: metav1.ObjectMeta{Name: DNSServiceAccount, Namespace: ns, Labels: DNSLabels()},
		},
		dnsClusterRole(d.PodRecords),
		&rbacv1.ClusterRoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
			ObjectMeta: metav1.ObjectMeta{Name: DNSClusterRole, Labels: DNSLabels()},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: DNSClusterRole},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: DNSServiceAccount, Namespace: ns}},
		},
		&corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Name: DNSConfigMapName, Namespace: ns, Labels: DNSLabels()},
			Data:       map[string]string{DNSCorefileKey: RenderCorefile(CorefileFor(cfg.Spec))},
		},
		dnsDeployment(cfg),
		dnsDisruptionBudget(ns),
		dnsService(ns, cfg.Spec),
	}
}

// dnsClusterRole grants what the kubernetes plugin watches: Services, EndpointSlices and
// Namespaces always, Pods only when pod records are verified against real pods.
func dnsClusterRole(podRecords v1.DNSPodRecords) *rbacv1.ClusterRole {
	listWatch := []string{"list", "watch"}
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"services", "namespaces"}, Verbs: listWatch},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: listWatch},
	}
	if podRecords == v1.DNSPodRecordsVerified {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: listWatch})
	}
	return &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: DNSClusterRole, Labels: DNSLabels()},
		Rules:      rules,
	}
}

// dnsService is the kube-dns Service at the effective DNS IP; on a dual-stack cluster it also gets
// the same host offset in the other family's service CIDR, so pods of either family reach it.
func dnsService(ns string, spec v1.ClusterNetworkSpec) *corev1.Service {
	ips, families := DNSServiceIPs(spec)
	policy := corev1.IPFamilyPolicySingleStack
	if len(ips) > 1 {
		policy = corev1.IPFamilyPolicyRequireDualStack
	}
	labels := DNSLabels()
	// kubernetes.io/name is what `kubectl cluster-info` prints a cluster service as.
	labels["kubernetes.io/name"] = "CoreDNS"
	svc := &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name: DNSServiceName, Namespace: ns, Labels: labels,
			Annotations: map[string]string{"prometheus.io/port": "9153", "prometheus.io/scrape": "true"},
		},
		Spec: corev1.ServiceSpec{
			Type:           corev1.ServiceTypeClusterIP,
			Selector:       dnsSelector(),
			IPFamilyPolicy: &policy,
			IPFamilies:     families,
			Ports: []corev1.ServicePort{
				{Name: "dns", Protocol: corev1.ProtocolUDP, Port: DNSPort, TargetPort: intstr.FromString("dns")},
				{Name: "dns-tcp", Protocol: corev1.ProtocolTCP, Port: DNSPort, TargetPort: intstr.FromString("dns-tcp")},
				{Name: "metrics", Protocol: corev1.ProtocolTCP, Port: DNSMetricsPort, TargetPort: intstr.FromString("metrics")},
			},
		},
	}
	if len(ips) > 0 {
		svc.Spec.ClusterIP = ips[0]
		svc.Spec.ClusterIPs = ips
	}
	return svc
}

// DNSServiceIPs returns the kube-dns Service's ClusterIPs and their families, dns.serviceIP first.
// On a dual-stack cluster the other family's address sits at the same offset (the tenth address)
// of that family's service CIDR.
func DNSServiceIPs(spec v1.ClusterNetworkSpec) ([]string, []corev1.IPFamily) {
	if spec.DNS == nil {
		return nil, nil
	}
	primary, err := netip.ParseAddr(spec.DNS.ServiceIP)
	if err != nil {
		return nil, nil
	}
	ips := []string{primary.String()}
	families := []corev1.IPFamily{familyOf(primary)}
	for _, c := range spec.ServiceNetwork.CIDRs {
		p, err := netip.ParsePrefix(string(c))
		if err != nil || p.Addr().Is4() == primary.Is4() {
			continue
		}
		a := p.Masked().Addr()
		for i := 0; i < dnsServiceIPOffset; i++ {
			a = a.Next()
		}
		ips = append(ips, a.String())
		families = append(families, familyOf(a))
		break
	}
	return ips, families
}

func familyOf(a netip.Addr) corev1.IPFamily {
	if a.Is4() {
		return corev1.IPv4Protocol
	}
	return corev1.IPv6Protocol
}
