package apply

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-net/plexus/controllers/component"
)

func TestComponentCheck(t *testing.T) {
	comp := Component{Name: "dns", Namespace: "plexus-system", Kinds: []Kind{
		{GVK: appsv1.SchemeGroupVersion.WithKind("Deployment"), Namespaced: true},
		{GVK: corev1.SchemeGroupVersion.WithKind("Namespace"), Names: []string{"only-this"}},
	}}
	apiVersions := map[string]string{"Deployment": "apps/v1", "Namespace": "v1", "ConfigMap": "v1"}
	obj := func(kind, ns, name string, labels map[string]string) client.Object {
		return &metav1.PartialObjectMetadata{
			TypeMeta:   metav1.TypeMeta{APIVersion: apiVersions[kind], Kind: kind},
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		}
	}
	own := component.Labels("dns")
	cases := []struct {
		name string
		obj  client.Object
		want string
	}{
		{"fine namespaced", obj("Deployment", "plexus-system", "coredns", own), ""},
		{"fine by name", obj("Namespace", "", "only-this", own), ""},
		{"unlisted kind", obj("ConfigMap", "plexus-system", "corefile", own), "not in component dns's kinds"},
		{"other namespace", obj("Deployment", "kube-system", "coredns", own), `keeps its objects in namespace "plexus-system"`},
		{"namespace on cluster kind", obj("Namespace", "x", "only-this", own), "is cluster-scoped"},
		{"unlisted name", obj("Namespace", "", "other", own), "may only name its Namespace objects [only-this]"},
		{"other component's labels", obj("Deployment", "plexus-system", "coredns", component.Labels("agent")), "lacks the labels of component dns"},
		{"no labels", obj("Deployment", "plexus-system", "coredns", nil), "lacks the labels"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := comp.Check([]client.Object{c.obj})
			if c.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
		})
	}
}
