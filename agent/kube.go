package agent

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/plexus-net/plexus/agent/proxy"
	"github.com/plexus-net/plexus/agent/proxy/manager"
	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

const (
	// FieldManager is the agent's field manager for its status patches.
	FieldManager = "plexus-agent"
	// eventNamespace holds the agent's Events about cluster-scoped NodeNetworks.
	eventNamespace = metav1.NamespaceDefault
	// eventSource is the Events' reporting component.
	eventSource = "plexus-agent"
)

// NewScheme returns the scheme with the types the agent reads.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1.AddToScheme(s))
	return s
}

// CacheOptions are the informer cache options of the agent: Nodes are trimmed to what a sync
// reads (name, annotations, addresses), because every agent caches every Node and kubelets
// update theirs often with data (images, conditions) the agent never looks at. Services and
// EndpointSlices are trimmed to what the service proxy reads (trim.go): every agent caches all
// of them, and they are most of its memory in a large cluster. Whatever reads these objects
// from the agent's cache sees only the trimmed fields.
func CacheOptions(scheme *runtime.Scheme) cache.Options {
	return cache.Options{Scheme: scheme, ByObject: map[client.Object]cache.ByObject{
		&corev1.Node{}:               {Transform: trimNode},
		&corev1.Service{}:            {Transform: TrimService},
		&discoveryv1.EndpointSlice{}: {Transform: TrimEndpointSlice},
	}}
}

// trimNode keeps the parts of a Node the agent uses; anything else passes through unchanged.
func trimNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: n.Name, UID: n.UID, ResourceVersion: n.ResourceVersion, Generation: n.Generation,
			Annotations: n.Annotations, DeletionTimestamp: n.DeletionTimestamp, Labels: zoneOnly(n.Labels),
		},
		Status: corev1.NodeStatus{Addresses: n.Status.Addresses},
	}, nil
}

// zoneOnly keeps the zone label (topology hints of the service proxy) of a Node's labels.
func zoneOnly(labels map[string]string) map[string]string {
	if z, ok := labels[ZoneLabel]; ok {
		return map[string]string{ZoneLabel: z}
	}
	return nil
}

// cacheSource is the Source backed by controller-runtime informer caches.
type cacheSource struct{ c cache.Cache }

// Inputs implements Source from the caches.
func (s cacheSource) Inputs(ctx context.Context) (Inputs, error) {
	var in Inputs
	cn := &v1.ClusterNetwork{}
	switch err := s.c.Get(ctx, client.ObjectKey{Name: v1.DefaultClusterNetworkName}, cn); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return Inputs{}, fmt.Errorf("get ClusterNetwork %s: %w", v1.DefaultClusterNetworkName, err)
	default:
		in.ClusterNetwork = cn
	}
	var nns v1.NodeNetworkList
	if err := s.c.List(ctx, &nns); err != nil {
		return Inputs{}, fmt.Errorf("list NodeNetworks: %w", err)
	}
	in.NodeNetworks = nns.Items
	var nodes corev1.NodeList
	if err := s.c.List(ctx, &nodes); err != nil {
		return Inputs{}, fmt.Errorf("list Nodes: %w", err)
	}
	in.Nodes = nodes.Items
	return in, nil
}

// watch registers handlers that mark a dirty on every change a sync depends on. Changes that
// cannot alter the data plane (Node heartbeats, the operator's roll-up, other nodes' status) are
// dropped here, so they cost no sync.
func watch(ctx context.Context, c cache.Cache, a *Agent) error {
	handlers := []struct {
		obj     client.Object
		matters func(old, cur client.Object) bool
	}{
		{&v1.ClusterNetwork{}, func(old, cur client.Object) bool {
			o, n := old.(*v1.ClusterNetwork), cur.(*v1.ClusterNetwork)
			return o.Status.AppliedGeneration != n.Status.AppliedGeneration ||
				!equality.Semantic.DeepEqual(o.Status.Effective, n.Status.Effective)
		}},
		{&v1.NodeNetwork{}, func(old, cur client.Object) bool {
			o, n := old.(*v1.NodeNetwork), cur.(*v1.NodeNetwork)
			// Status is the agents' own output: a change of it needs no sync.
			return o.Generation != n.Generation || !equality.Semantic.DeepEqual(o.Spec, n.Spec)
		}},
		{&corev1.Node{}, func(old, cur client.Object) bool {
			o, n := old.(*corev1.Node), cur.(*corev1.Node)
			return o.Annotations[NodeIPAnnotation] != n.Annotations[NodeIPAnnotation] ||
				o.Labels[ZoneLabel] != n.Labels[ZoneLabel] ||
				!equality.Semantic.DeepEqual(o.Status.Addresses, n.Status.Addresses)
		}},
	}
	for _, h := range handlers {
		inf, err := c.GetInformer(ctx, h.obj)
		if err != nil {
			return fmt.Errorf("informer for %T: %w", h.obj, err)
		}
		matters := h.matters
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { a.MarkDirty() },
			DeleteFunc: func(any) { a.MarkDirty() },
			UpdateFunc: func(old, cur any) {
				o, ok1 := old.(client.Object)
				n, ok2 := cur.(client.Object)
				if !ok1 || !ok2 || matters(o, n) {
					a.MarkDirty()
				}
			},
		}); err != nil {
			return fmt.Errorf("watch %T: %w", h.obj, err)
		}
	}
	return nil
}

// watchServices feeds feed with the Services and EndpointSlices of the cache and marks a dirty on
// every change. Informer resyncs (same resourceVersion) cost nothing.
//
// It returns what says when the handlers have been given every object of the informers' initial
// lists: the first sync must not run before, or it would program (and, after a restart, rebuild
// the table for) only the Services delivered so far. An informer's own HasSynced says only that
// its store has them.
func watchServices(ctx context.Context, c cache.Cache, feed *manager.Feed, a *Agent) ([]toolscache.InformerSynced, error) {
	svcInf, err := c.GetInformer(ctx, &corev1.Service{})
	if err != nil {
		return nil, fmt.Errorf("informer for Services: %w", err)
	}
	svcReg, err := svcInf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if s, ok := obj.(*corev1.Service); ok {
				feed.SetService(s)
				a.MarkDirty()
			}
		},
		UpdateFunc: func(old, cur any) {
			o, ok1 := old.(*corev1.Service)
			s, ok2 := cur.(*corev1.Service)
			if ok1 && ok2 && o.ResourceVersion != s.ResourceVersion {
				feed.SetService(s)
				a.MarkDirty()
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if s, ok := obj.(*corev1.Service); ok {
				feed.DeleteService(s.Namespace, s.Name)
				a.MarkDirty()
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("watch Services: %w", err)
	}
	sliceInf, err := c.GetInformer(ctx, &discoveryv1.EndpointSlice{})
	if err != nil {
		return nil, fmt.Errorf("informer for EndpointSlices: %w", err)
	}
	sliceReg, err := sliceInf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if s, ok := obj.(*discoveryv1.EndpointSlice); ok {
				feed.SetSlice(s)
				a.MarkDirty()
			}
		},
		UpdateFunc: func(old, cur any) {
			o, ok1 := old.(*discoveryv1.EndpointSlice)
			s, ok2 := cur.(*discoveryv1.EndpointSlice)
			if ok1 && ok2 && o.ResourceVersion != s.ResourceVersion {
				feed.SetSlice(s)
				a.MarkDirty()
			}
		},
		DeleteFunc: func(obj any) {
			if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if s, ok := obj.(*discoveryv1.EndpointSlice); ok {
				feed.DeleteSlice(s)
				a.MarkDirty()
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("watch EndpointSlices: %w", err)
	}
	return []toolscache.InformerSynced{svcReg.HasSynced, sliceReg.HasSynced}, nil
}

// serviceEvents returns the recorder of the Warning Events on Services that use a feature the
// active backend cannot honour. Events are best effort: a failure only loses the Event.
func serviceEvents(ctx context.Context, c client.Client, node string) manager.EventRecorder {
	return func(svc *corev1.Service, msg string) {
		now := metav1.NewTime(time.Now())
		ev := &corev1.Event{
			ObjectMeta: metav1.ObjectMeta{GenerateName: svc.Name + ".", Namespace: svc.Namespace},
			InvolvedObject: corev1.ObjectReference{
				APIVersion: "v1", Kind: "Service", Namespace: svc.Namespace, Name: svc.Name, UID: svc.UID,
				ResourceVersion: svc.ResourceVersion,
			},
			Reason: proxy.EventReasonUnsupportedFeature, Message: msg, Type: corev1.EventTypeWarning,
			Source: corev1.EventSource{Component: eventSource, Host: node}, FirstTimestamp: now, LastTimestamp: now, Count: 1,
		}
		// The sync loop must not wait on the API for an Event.
		go func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statusPatchTimeout)
			defer cancel()
			if err := c.Create(cctx, ev); err != nil {
				log.FromContext(ctx).V(1).Info("Could not record an Event", "service", svc.Namespace+"/"+svc.Name, "error", err.Error())
			}
		}()
	}
}

// kubeStatus patches NodeNetwork status through the API and records an Event whenever the
// node's Ready condition changes.
type kubeStatus struct{ c client.Client }

// PatchStatus implements StatusWriter with a JSON merge patch of the status subresource.
func (k kubeStatus) PatchStatus(ctx context.Context, base *v1.NodeNetwork, next v1.NodeNetworkStatus) error {
	obj := base.DeepCopy()
	obj.Status = next
	if err := k.c.Status().Patch(ctx, obj, client.MergeFrom(base), client.FieldOwner(FieldManager)); err != nil {
		return err
	}
	was := meta.FindStatusCondition(base.Status.Conditions, v1.ConditionNodeReady)
	now := meta.FindStatusCondition(next.Conditions, v1.ConditionNodeReady)
	if now != nil && (was == nil || was.Status != now.Status || was.Reason != now.Reason) {
		k.event(ctx, base, now)
	}
	return nil
}

// event records c as an Event on nn. Events are best effort: a failure only loses the Event.
func (k kubeStatus) event(ctx context.Context, nn *v1.NodeNetwork, c *metav1.Condition) {
	typ := corev1.EventTypeNormal
	if c.Status != metav1.ConditionTrue {
		typ = corev1.EventTypeWarning
	}
	now := metav1.NewTime(time.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: nn.Name + ".", Namespace: eventNamespace},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: v1.GroupVersion.String(), Kind: "NodeNetwork", Name: nn.Name, UID: nn.UID,
		},
		Reason: c.Reason, Message: fmt.Sprintf("Ready=%s: %s", c.Status, c.Message), Type: typ,
		Source: corev1.EventSource{Component: eventSource, Host: nn.Name}, FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}
	if err := k.c.Create(ctx, ev); err != nil {
		log.FromContext(ctx).V(1).Info("Could not record an Event", "nodeNetwork", nn.Name, "error", err.Error())
	}
}
