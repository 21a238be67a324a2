package controllers

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/plexus-net/plexus/ingress/translate"
)

// TestPruneGatewayServices: with the Gateway API off, the operator deletes the Services
// plexus-ingress made for Gateways in its namespace, and nothing else.
func TestPruneGatewayServices(t *testing.T) {
	gwSvc := func(ns, gw string) *corev1.Service {
		return translate.GatewayService(translate.GatewayServiceSpec{Gateway: types.NamespacedName{Namespace: "web", Name: gw}, Namespace: ns,
			Ports: []translate.ListenerPort{{Port: 80, Protocol: "HTTP"}}, Internal: translate.GatewayPorts{80: 20000}})
	}
	keep := []client.Object{
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "plexus-system", Name: "plexus-ingress"}},
		gwSvc("elsewhere", "b"),
	}
	objs := append([]client.Object{gwSvc("plexus-system", "a"), gwSvc("plexus-system", "c")}, keep...)
	c := fake.NewClientBuilder().WithScheme(NewScheme()).WithObjects(objs...).Build()
	if err := pruneGatewayServices(context.Background(), c, c, "plexus-system"); err != nil {
		t.Fatal(err)
	}
	var left corev1.ServiceList
	if err := c.List(context.Background(), &left); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range left.Items {
		names = append(names, s.Namespace+"/"+s.Name)
	}
	if len(names) != 2 || names[0] != "elsewhere/"+translate.GatewayServiceName(types.NamespacedName{Namespace: "web", Name: "b"}) || names[1] != "plexus-system/plexus-ingress" {
		t.Fatalf("left %v, want the controller's Service and the other namespace's", names)
	}
}
