package trace

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// Scheme returns a scheme with the types Fetch reads.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// Fetch lists what a trace reads: every Pod, Namespace, NetworkPolicy, Node and Service, and the
// NodeNetworks (none when Plexus' API is not installed: node addresses then come from the Nodes).
func Fetch(ctx context.Context, c client.Reader) (*Cluster, error) {
	out := &Cluster{}
	var pods corev1.PodList
	if err := c.List(ctx, &pods); err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	for i := range pods.Items {
		out.Pods = append(out.Pods, &pods.Items[i])
	}
	var nss corev1.NamespaceList
	if err := c.List(ctx, &nss); err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	for i := range nss.Items {
		out.Namespaces = append(out.Namespaces, &nss.Items[i])
	}
	var nps networkingv1.NetworkPolicyList
	if err := c.List(ctx, &nps); err != nil {
		return nil, fmt.Errorf("list networkpolicies: %w", err)
	}
	for i := range nps.Items {
		out.Policies = append(out.Policies, &nps.Items[i])
	}
	var nodes corev1.NodeList
	if err := c.List(ctx, &nodes); err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	for i := range nodes.Items {
		out.Nodes = append(out.Nodes, &nodes.Items[i])
	}
	var svcs corev1.ServiceList
	if err := c.List(ctx, &svcs); err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	for i := range svcs.Items {
		out.Services = append(out.Services, &svcs.Items[i])
	}
	var nns v1.NodeNetworkList
	if err := c.List(ctx, &nns); err != nil && !meta.IsNoMatchError(err) {
		return nil, fmt.Errorf("list nodenetworks: %w", err)
	}
	for i := range nns.Items {
		out.NodeNetworks = append(out.NodeNetworks, &nns.Items[i])
	}
	return out, nil
}
