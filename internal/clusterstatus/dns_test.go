package clusterstatus

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/render"
	"github.com/plexus-net/plexus/internal/golden"
)

func TestFormatDNS(t *testing.T) {
	serving := cond(v1.ConditionDNSAvailable, "True", v1.ReasonDNSServing, "2 of 2 CoreDNS replicas ready", time.Minute, 2)
	rolling := cond(v1.ConditionDNSAvailable, "False", v1.ReasonDNSRollingOut, "1 of 2 CoreDNS replicas ready", time.Minute, 3)
	disabled := cluster(3, 3, 3, cond(v1.ConditionDNSAvailable, "True", v1.ReasonDNSDisabled, "", time.Minute, 3))
	disabled.Status.Effective.DNS.Enabled = ptr.To(false)
	var b bytes.Buffer
	for _, tc := range []struct {
		title string
		cn    *v1.ClusterNetwork
		dns   *DNS
	}{
		{"serving, dual-stack", cluster(2, 2, 2, serving), &DNS{Deployment: true, Ready: 2, Want: 2, ServiceIPs: []string{"10.96.0.10", "fd00:10:96::a"}, CorefileGeneration: "2"}},
		{"rolling out a replacement", cluster(3, 3, 3, rolling), &DNS{Deployment: true, Ready: 1, Want: 2, ServiceIPs: []string{"10.96.0.10"}, CorefileGeneration: "3"}},
		{"nothing applied yet", cluster(1, 1, 1), &DNS{}},
		{"disabled", disabled, &DNS{}},
		{"no rights in kube-system", cluster(2, 2, 2, serving), &DNS{Unreadable: `*v1.Deployment coredns: deployments.apps "coredns" is forbidden`}},
	} {
		b.WriteString("# " + tc.title + "\n")
		FormatDNS(&b, tc.cn, tc.dns)
	}
	FormatDNS(&b, cluster(2, 2, 2, serving), nil) // writes nothing
	golden.Assert(t, filepath.Join("testdata", "dns.golden"), b.Bytes(), "./internal/clusterstatus/")
}

func TestFetchDNS(t *testing.T) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{v1.AddToScheme, corev1.AddToScheme, appsv1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns"}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2)},
		Status: appsv1.DeploymentStatus{ReadyReplicas: 1}}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-dns"}, Spec: corev1.ServiceSpec{ClusterIPs: []string{"10.96.0.10"}}}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns", Annotations: map[string]string{render.GenerationAnnotation: "4"}}}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(dep, svc, cm).WithStatusSubresource(dep).Build()
	got := fetchDNS(context.Background(), c)
	if !got.Deployment || got.Ready != 1 || got.Want != 2 || len(got.ServiceIPs) != 1 || got.CorefileGeneration != "4" || got.Unreadable != "" {
		t.Fatalf("fetchDNS = %+v", got)
	}
	if empty := fetchDNS(context.Background(), fake.NewClientBuilder().WithScheme(s).Build()); empty.Deployment || empty.Unreadable != "" {
		t.Fatalf("nothing there: %+v", empty)
	}
}
