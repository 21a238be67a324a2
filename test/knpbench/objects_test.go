package knpbench

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pt "github.com/plexus-net/plexus/agent/policy/policytest"
)

// pauseImage only fills the required field: no container ever runs.
const pauseImage = "registry.invalid/pause:3.10"

// createWorkers is the number of parallel clients that create objects.
const createWorkers = 48

// ensureNode creates the Node KNP runs as (the fixture's pods are all on it).
func (cp *controlPlane) ensureNode(b *testing.B) {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: pt.NodeName, Labels: map[string]string{"kubernetes.io/hostname": pt.NodeName}},
		Status:     corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: nodeIP}}},
	}
	if _, err := cp.cs.CoreV1().Nodes().Create(context.Background(), node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		b.Fatal(err)
	}
}

// ensureNamespaces creates the fixture's namespaces with their labels.
func (cp *controlPlane) ensureNamespaces(b *testing.B, nss []*corev1.Namespace) {
	parallel(b, len(nss), func(i int) error {
		_, err := cp.cs.CoreV1().Namespaces().Create(context.Background(), nss[i].DeepCopy(), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	})
}

// createPod creates a fixture pod and then, through the status subresource as a kubelet does,
// its phase and IPs. It returns when the IPs are written.
func (cp *controlPlane) createPod(ctx context.Context, p *corev1.Pod) error {
	created, err := cp.createPodWithoutIPs(ctx, p)
	if err != nil || created == nil {
		return err
	}
	return cp.setPodIPs(ctx, created, p.Status)
}

// createPodWithoutIPs creates a fixture pod (the API server drops the status of a create); it
// returns nil if the pod exists.
func (cp *controlPlane) createPodWithoutIPs(ctx context.Context, p *corev1.Pod) (*corev1.Pod, error) {
	want := p.DeepCopy()
	for i := range want.Spec.Containers {
		want.Spec.Containers[i].Image = pauseImage
	}
	want.Status = corev1.PodStatus{}
	created, err := cp.cs.CoreV1().Pods(want.Namespace).Create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("create pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	return created, nil
}

// setPodIPs writes a running phase and st's IPs into the status of the created pod.
func (cp *controlPlane) setPodIPs(ctx context.Context, created *corev1.Pod, st corev1.PodStatus) error {
	created.Status = st
	created.Status.Phase = corev1.PodRunning
	if len(st.PodIPs) > 0 {
		created.Status.PodIP = st.PodIPs[0].IP // the API requires podIP == podIPs[0]
	}
	if _, err := cp.cs.CoreV1().Pods(created.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("set status of pod %s/%s: %w", created.Namespace, created.Name, err)
	}
	return nil
}

// ensurePods creates pods [from, len(pods)) with parallel clients and returns how long it took.
func (cp *controlPlane) ensurePods(b *testing.B, pods []*corev1.Pod, from int) time.Duration {
	start := time.Now()
	rest := pods[from:]
	parallel(b, len(rest), func(i int) error { return cp.createPod(context.Background(), rest[i]) })
	return time.Since(start)
}

// ensurePolicies creates the fixture's policies.
func (cp *controlPlane) ensurePolicies(b *testing.B, pols []*networkingv1.NetworkPolicy) {
	parallel(b, len(pols), func(i int) error {
		_, err := cp.cs.NetworkingV1().NetworkPolicies(pols[i].Namespace).Create(context.Background(), pols[i].DeepCopy(), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	})
}

// parallel runs fn(0 … n-1) on createWorkers goroutines and fails b on the first error.
func parallel(b *testing.B, n int, fn func(i int) error) {
	idx := make(chan int)
	errc := make(chan error, createWorkers)
	var wg sync.WaitGroup
	for w := 0; w < createWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				if err := fn(i); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	var failed error
feed:
	for i := 0; i < n; i++ {
		select {
		case idx <- i:
		case failed = <-errc:
			break feed
		}
	}
	close(idx)
	wg.Wait()
	close(errc)
	if failed == nil {
		failed = <-errc
	}
	if failed != nil {
		b.Fatal(failed)
	}
}
