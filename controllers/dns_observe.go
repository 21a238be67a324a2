package controllers

import (
	"context"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-net/plexus/controllers/render"
)

// liveDNSObjects reads the metadata of the live object behind every rendered one (absent ones are
// left out), for foreignDNSObjects. It reads through r directly: the API server's reader, so that
// objects outside what the operator's cache holds (a kubeadm kube-dns carries none of Plexus'
// labels) are seen.
func liveDNSObjects(ctx context.Context, r client.Reader, rendered []client.Object) ([]liveObject, error) {
	var out []liveObject
	for _, o := range rendered {
		gvk := o.GetObjectKind().GroupVersionKind()
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(gvk)
		if err := r.Get(ctx, client.ObjectKeyFromObject(o), m); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("read %s %s: %w", gvk.Kind, client.ObjectKeyFromObject(o), err)
		}
		out = append(out, liveObject{Kind: gvk.Kind, Namespace: m.Namespace, Name: m.Name, Labels: m.Labels, Annotations: m.Annotations})
	}
	return out, nil
}

// observeDNS reads what dnsAvailableCondition needs from the live Deployment, Service and
// ConfigMap of an applied render. A missing object counts as nothing ready.
func observeDNS(ctx context.Context, r client.Reader, rendered []client.Object) (dnsObservation, error) {
	obs := dnsObservation{Enabled: len(rendered) > 0}
	for _, o := range rendered {
		key := client.ObjectKeyFromObject(o)
		switch want := o.(type) {
		case *appsv1.Deployment:
			d, err := observeDeployment(ctx, r, want)
			if err != nil {
				return obs, err
			}
			obs.WantReplicas, obs.ReadyReplicas, obs.UpdatedReplicas = d.want, d.ready, d.updated
		case *corev1.Service:
			obs.WantServiceIPs = want.Spec.ClusterIPs
			var live corev1.Service
			if err := r.Get(ctx, key, &live); err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				return obs, fmt.Errorf("read Service %s: %w", key, err)
			}
			obs.ServiceIPs = live.Spec.ClusterIPs
		case *corev1.ConfigMap:
			var live corev1.ConfigMap
			if err := r.Get(ctx, key, &live); err != nil {
				if apierrors.IsNotFound(err) {
					continue
				}
				return obs, fmt.Errorf("read ConfigMap %s: %w", key, err)
			}
			if live.Data[render.DNSCorefileKey] == want.Data[render.DNSCorefileKey] {
				obs.CorefileGeneration, _ = strconv.ParseInt(live.Annotations[render.GenerationAnnotation], 10, 64)
			}
		}
	}
	return obs, nil
}

// deploymentReplicas are a rendered Deployment's wanted replicas and its live ready and updated
// ones.
type deploymentReplicas struct{ want, ready, updated int32 }

// observeDeployment reads the live Deployment of a rendered one. A missing Deployment has nothing
// ready, and the status of an older spec says nothing about this one.
func observeDeployment(ctx context.Context, r client.Reader, want *appsv1.Deployment) (deploymentReplicas, error) {
	var d deploymentReplicas
	if want.Spec.Replicas != nil {
		d.want = *want.Spec.Replicas
	}
	key := client.ObjectKeyFromObject(want)
	var live appsv1.Deployment
	if err := r.Get(ctx, key, &live); err != nil {
		if apierrors.IsNotFound(err) {
			return d, nil
		}
		return d, fmt.Errorf("read Deployment %s: %w", key, err)
	}
	if live.Status.ObservedGeneration >= live.Generation {
		d.ready, d.updated = live.Status.ReadyReplicas, live.Status.UpdatedReplicas
	}
	return d, nil
}
