package controllers

import (
	"strings"
	"testing"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/netconfig"
	"github.com/plexus-net/plexus/controllers/render"
)

func TestForeignDNSObjects(t *testing.T) {
	spec := netconfig.Default(v1.ClusterNetworkSpec{
		IPFamilies:     []v1.IPFamily{v1.IPv4},
		PodNetwork:     v1.PodNetwork{CIDRs: []v1.CIDR{"10.244.0.0/16"}},
		ServiceNetwork: v1.ServiceNetwork{CIDRs: []v1.CIDR{"10.96.0.0/16"}},
	}, netconfig.Images{DNS: "plexus/coredns:dev"})
	rendered := render.DNS(render.DNSConfig{Namespace: render.DNSNamespace, Spec: spec, Nodes: 3})
	kubeadm := map[string]string{"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}
	for _, tc := range []struct {
		name string
		live []liveObject
		want []string
	}{
		{"a fresh cluster", nil, nil},
		{"Plexus' own objects", []liveObject{
			{Kind: "Service", Namespace: "kube-system", Name: "kube-dns", Labels: render.DNSLabels()},
			{Kind: "Deployment", Namespace: "kube-system", Name: "coredns", Labels: render.DNSLabels()},
		}, nil},
		{"a kubeadm cluster's DNS", []liveObject{
			{Kind: "Service", Namespace: "kube-system", Name: "kube-dns", Labels: kubeadm},
			{Kind: "Deployment", Namespace: "kube-system", Name: "coredns", Labels: map[string]string{"k8s-app": "kube-dns"}},
			{Kind: "ConfigMap", Namespace: "kube-system", Name: "coredns"},
			{Kind: "ClusterRole", Name: "system:coredns"},
		}, []string{
			"ConfigMap kube-system/coredns exists and was not created by Plexus (hand it over with `kubectl -n kube-system annotate configmap coredns plexus.dev/adopt=true`)",
			"Deployment kube-system/coredns exists and was not created by Plexus (hand it over by deleting it, `kubectl -n kube-system delete deployment coredns`",
			"Service kube-system/kube-dns exists",
		}},
		{"handed over", []liveObject{
			{Kind: "Service", Namespace: "kube-system", Name: "kube-dns", Labels: kubeadm, Annotations: map[string]string{v1.AdoptAnnotation: "true"}},
		}, nil},
		{"same name, other namespace", []liveObject{{Kind: "Service", Namespace: "default", Name: "kube-dns"}}, nil},
		{"same name, other kind", []liveObject{{Kind: "Secret", Namespace: "kube-system", Name: "coredns"}}, nil},
	} {
		got := foreignDNSObjects(rendered, tc.live)
		if len(got) != len(tc.want) {
			t.Errorf("%s: %d foreign objects %q, want %d", tc.name, len(got), got, len(tc.want))
			continue
		}
		for i := range got {
			if !strings.HasPrefix(got[i], tc.want[i]) {
				t.Errorf("%s: [%d] = %q, want prefix %q", tc.name, i, got[i], tc.want[i])
			}
		}
	}
}
