package agentrun

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-net/plexus/agent/proxy"
	"github.com/plexus-net/plexus/agent/proxy/manager"
	"github.com/plexus-net/plexus/agent/status"
	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

const (
	// FieldManager is the agent's field manager for its status patches.
	FieldManager = "plexus-agent"
	// eventSource is the Events' reporting component.
	eventSource = "plexus-agent"
)

// apiStatus patches NodeNetwork status through the API and records an Event whenever the node's
// Ready condition changes.
type apiStatus struct {
	c      client.Client
	events record.EventRecorder
}

var _ status.Writer = apiStatus{}

// PatchStatus implements status.Writer with a JSON merge patch of the status subresource.
func (k apiStatus) PatchStatus(ctx context.Context, base *v1.NodeNetwork, next v1.NodeNetworkStatus) error {
	obj := base.DeepCopy()
	obj.Status = next
	if err := k.c.Status().Patch(ctx, obj, client.MergeFrom(base), client.FieldOwner(FieldManager)); err != nil {
		return err
	}
	was := meta.FindStatusCondition(base.Status.Conditions, v1.ConditionNodeReady)
	now := meta.FindStatusCondition(next.Conditions, v1.ConditionNodeReady)
	if now != nil && (was == nil || was.Status != now.Status || was.Reason != now.Reason) {
		typ := corev1.EventTypeNormal
		if now.Status != metav1.ConditionTrue {
			typ = corev1.EventTypeWarning
		}
		// The recorder puts the Events of cluster-scoped objects into namespace default.
		k.events.Event(obj, typ, now.Reason, fmt.Sprintf("Ready=%s: %s", now.Status, now.Message))
	}
	return nil
}

// serviceEvents returns the recorder of the Warning Events on Services that use a feature the
// active backend cannot honour.
func serviceEvents(events record.EventRecorder) manager.EventRecorder {
	return func(svc *corev1.Service, msg string) {
		events.Event(svc, corev1.EventTypeWarning, proxy.EventReasonUnsupportedFeature, msg)
	}
}
