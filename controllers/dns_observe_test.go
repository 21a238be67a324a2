package controllers

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/netconfig"
	"github.com/plexus-net/plexus/controllers/render"
)

func renderedDNS(t *testing.T) []client.Object {
	t.Helper()
	spec := netconfig.Default(v1.ClusterNetworkSpec{
		IPFamilies:     []v1.IPFamily{v1.IPv4, v1.IPv6},
		PodNetwork:     v1.PodNetwork{CIDRs: []v1.CIDR{"10.244.0.0/16", "fd00:10:244::/56"}},
		ServiceNetwork: v1.ServiceNetwork{CIDRs: []v1.CIDR{"10.96.0.0/16", "fd00:10:96::/112"}},
	}, netconfig.Images{DNS: "plexus/coredns:dev"})
	objs := render.DNS(render.DNSConfig{Namespace: render.DNSNamespace, Spec: spec, Nodes: 3})
	render.Annotate(objs, 5)
	return objs
}

func TestLiveDNSObjectsFindsAKubeadmDNS(t *testing.T) {
	kubeadmSvc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-dns", Labels: map[string]string{"k8s-app": "kube-dns"}}}
	other := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "metrics-server"}}
	c := fake.NewClientBuilder().WithScheme(NewScheme()).WithObjects(kubeadmSvc, other).Build()
	rendered := renderedDNS(t)
	live, err := liveDNSObjects(context.Background(), c, rendered)
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 1 || live[0].Kind != "Service" || live[0].Name != "kube-dns" {
		t.Fatalf("live = %+v, want the kube-dns Service only", live)
	}
	if f := foreignDNSObjects(rendered, live); len(f) != 1 || !strings.HasPrefix(f[0], "Service kube-system/kube-dns exists") {
		t.Fatalf("foreign = %q", f)
	}
}

func TestObserveDNS(t *testing.T) {
	rendered := renderedDNS(t)
	ctx := context.Background()
	empty := fake.NewClientBuilder().WithScheme(NewScheme()).Build()
	obs, err := observeDNS(ctx, empty, rendered)
	if err != nil {
		t.Fatal(err)
	}
	if !obs.Enabled || obs.WantReplicas != 2 || obs.ReadyReplicas != 0 || len(obs.ServiceIPs) != 0 || strings.Join(obs.WantServiceIPs, ",") != "10.96.0.10,fd00:10:96::a" {
		t.Fatalf("nothing applied yet: %+v", obs)
	}

	var live []client.Object
	for _, o := range rendered {
		o = o.DeepCopyObject().(client.Object)
		switch v := o.(type) {
		case *appsv1.Deployment:
			v.Generation = 3
			v.Status = appsv1.DeploymentStatus{ObservedGeneration: 3, ReadyReplicas: 2, UpdatedReplicas: 1}
		case *corev1.Service:
			v.Spec.ClusterIPs = []string{"10.96.0.10", "fd00:10:96::a"}
		}
		live = append(live, o)
	}
	applied := fake.NewClientBuilder().WithScheme(NewScheme()).WithObjects(live...).WithStatusSubresource(&appsv1.Deployment{}).Build()
	obs, err = observeDNS(ctx, applied, rendered)
	if err != nil {
		t.Fatal(err)
	}
	if obs.ReadyReplicas != 2 || obs.UpdatedReplicas != 1 || obs.CorefileGeneration != 5 || strings.Join(obs.ServiceIPs, ",") != "10.96.0.10,fd00:10:96::a" {
		t.Fatalf("applied: %+v", obs)
	}
	if c := dnsAvailableCondition(5, obs); c.Reason != v1.ReasonDNSRollingOut {
		t.Fatalf("one of two replicas updated: %s %s", c.Reason, c.Message)
	}
	if obs, _ := observeDNS(ctx, empty, nil); obs.Enabled {
		t.Fatal("an empty render is a disabled DNS")
	}
}
