package clusterstatus

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// RESTConfig finds the API server as kubectl does: the kubeconfig file if given, else KUBECONFIG
// or ~/.kube/config, else the in-cluster service account.
func RESTConfig(kubeconfig string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		if kubeconfig == "" {
			if ic, icErr := rest.InClusterConfig(); icErr == nil {
				return ic, nil
			}
		}
		if clientcmd.IsEmptyConfig(err) {
			return nil, fmt.Errorf("no cluster to ask: no kubeconfig (--kubeconfig, KUBECONFIG, ~/.kube/config) and not running in a cluster")
		}
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	return cfg, nil
}

// NewClient returns a client that knows the Plexus types.
func NewClient(cfg *rest.Config) (client.Client, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{v1.AddToScheme, corev1.AddToScheme, appsv1.AddToScheme} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return client.New(cfg, client.Options{Scheme: s})
}

// Fetch reads the ClusterNetwork "default", every NodeNetwork and the cluster DNS objects. A missing ClusterNetwork gives a
// Snapshot with a nil Cluster (Format and Verdict say so); a missing CRD is an error naming it.
func Fetch(ctx context.Context, c client.Reader, now time.Time) (Snapshot, error) {
	s := Snapshot{Now: now}
	cn := &v1.ClusterNetwork{}
	err := c.Get(ctx, client.ObjectKey{Name: v1.DefaultClusterNetworkName}, cn)
	switch {
	case meta.IsNoMatchError(err):
		return s, fmt.Errorf("the ClusterNetwork API (plexus.dev/v1alpha1) is not installed: is Plexus installed? %w", err)
	case apierrors.IsNotFound(err):
		cn = nil
	case err != nil:
		return s, fmt.Errorf("get ClusterNetwork %s: %w", v1.DefaultClusterNetworkName, err)
	}
	s.Cluster = cn
	var nns v1.NodeNetworkList
	if err := c.List(ctx, &nns); err != nil {
		return s, fmt.Errorf("list NodeNetworks: %w", err)
	}
	s.Nodes = nns.Items
	if cn != nil {
		s.DNS = fetchDNS(ctx, c)
	}
	return s, nil
}
