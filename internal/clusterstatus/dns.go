package clusterstatus

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/render"
)

// DNS is what the report shows of the cluster DNS Plexus runs, read from its objects in
// kube-system (the DNSAvailable condition says what the operator concluded from them).
type DNS struct {
	// Deployment says whether the CoreDNS Deployment exists; Ready and Want are its ready
	// replicas and spec.replicas.
	Deployment  bool
	Ready, Want int32
	// ServiceIPs are the kube-dns Service's ClusterIPs (empty without a Service).
	ServiceIPs []string
	// CorefileGeneration is the ClusterNetwork generation the live Corefile was rendered from
	// ("" without the ConfigMap).
	CorefileGeneration string
	// Unreadable names what could not be read (no rights to kube-system, say); "" when all was.
	Unreadable string
}

// fetchDNS reads the CoreDNS Deployment, the kube-dns Service and the Corefile's ConfigMap. Absent
// objects leave their fields empty; objects the caller may not read are named in Unreadable, so
// the rest of the report still shows.
func fetchDNS(ctx context.Context, c client.Reader) *DNS {
	d := &DNS{}
	var unreadable []string
	get := func(name string, obj client.Object) bool {
		err := c.Get(ctx, client.ObjectKey{Namespace: render.DNSNamespace, Name: name}, obj)
		if err != nil && !apierrors.IsNotFound(err) {
			unreadable = append(unreadable, fmt.Sprintf("%T %s: %v", obj, name, err))
		}
		return err == nil
	}
	var dep appsv1.Deployment
	if get(render.DNSDeploymentName, &dep) {
		d.Deployment, d.Ready = true, dep.Status.ReadyReplicas
		if dep.Spec.Replicas != nil {
			d.Want = *dep.Spec.Replicas
		}
	}
	var svc corev1.Service
	if get(render.DNSServiceName, &svc) {
		d.ServiceIPs = svc.Spec.ClusterIPs
	}
	var cm corev1.ConfigMap
	if get(render.DNSConfigMapName, &cm) {
		d.CorefileGeneration = cm.Annotations[render.GenerationAnnotation]
	}
	d.Unreadable = strings.Join(unreadable, "; ")
	return d
}

// FormatDNS writes the cluster DNS block: CoreDNS replicas ready of wanted, the kube-dns
// Service's IPs, the Corefile's generation and the DNSAvailable condition's status and reason.
// Without a DNS reading (d nil) it writes nothing.
func FormatDNS(w io.Writer, cn *v1.ClusterNetwork, d *DNS) {
	if d == nil {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	defer func() { _ = tw.Flush() }()
	fmt.Fprintln(tw, "Cluster DNS")
	if e := cn.Status.Effective; e != nil && e.DNS != nil && e.DNS.Enabled != nil && !*e.DNS.Enabled {
		fmt.Fprintf(tw, "  CoreDNS:\tdisabled (spec.dns.enabled is false)\n")
	} else {
		replicas := "no Deployment " + render.DNSNamespace + "/" + render.DNSDeploymentName
		if d.Deployment {
			replicas = fmt.Sprintf("%d of %d replicas ready", d.Ready, d.Want)
		}
		fmt.Fprintf(tw, "  CoreDNS:\t%s\n", replicas)
		fmt.Fprintf(tw, "  kube-dns:\t%s\n", dash(strings.Join(d.ServiceIPs, ", ")))
		fmt.Fprintf(tw, "  Corefile:\t%s\n", map[bool]string{true: "generation " + d.CorefileGeneration, false: "-"}[d.CorefileGeneration != ""])
	}
	available := "not reported yet"
	if c := findCondition(cn.Status.Conditions, v1.ConditionDNSAvailable); c != nil {
		available = fmt.Sprintf("%s (%s)", c.Status, c.Reason)
	}
	fmt.Fprintf(tw, "  DNSAvailable:\t%s\n", available)
	if d.Unreadable != "" {
		fmt.Fprintf(tw, "  not readable:\t%s\n", oneLine(d.Unreadable))
	}
}
