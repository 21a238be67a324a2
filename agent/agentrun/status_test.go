package agentrun

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/plexus-net/plexus/agent/informers"
	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// A status patch records an Event when, and only when, Ready changes status or reason.
func TestPatchStatusRecordsReadyChanges(t *testing.T) {
	ctx := context.Background()
	nn := &v1.NodeNetwork{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}
	c := fake.NewClientBuilder().WithScheme(informers.NewScheme()).WithObjects(nn).WithStatusSubresource(nn).Build()
	events := record.NewFakeRecorder(10)
	w := apiStatus{c: c, events: events}
	ready := func(s metav1.ConditionStatus, reason string) v1.NodeNetworkStatus {
		return v1.NodeNetworkStatus{Conditions: []metav1.Condition{{Type: v1.ConditionNodeReady, Status: s, Reason: reason, Message: "m"}}}
	}
	steps := []struct {
		next v1.NodeNetworkStatus
		want string // the Event, empty: none
	}{
		{ready(metav1.ConditionFalse, v1.ReasonMasqueradeFailed), "Warning MasqueradeFailed Ready=False: m"},
		{ready(metav1.ConditionFalse, v1.ReasonMasqueradeFailed), ""},
		{ready(metav1.ConditionFalse, v1.ReasonRoutingFailed), "Warning RoutingFailed Ready=False: m"},
		{ready(metav1.ConditionTrue, v1.ReasonProgrammed), "Normal Programmed Ready=True: m"},
	}
	for i, s := range steps {
		base := &v1.NodeNetwork{}
		if err := c.Get(ctx, client.ObjectKey{Name: "node-1"}, base); err != nil {
			t.Fatal(err)
		}
		if err := w.PatchStatus(ctx, base, s.next); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		var got string
		select {
		case got = <-events.Events:
		default:
		}
		if got != s.want {
			t.Errorf("step %d: Event %q, want %q", i, got, s.want)
		}
	}
}
