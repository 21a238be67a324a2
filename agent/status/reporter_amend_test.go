package status

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// recordingWriter records the statuses patched.
type recordingWriter struct{ patched []v1.NodeNetworkStatus }

func (w *recordingWriter) PatchStatus(_ context.Context, _ *v1.NodeNetwork, next v1.NodeNetworkStatus) error {
	w.patched = append(w.patched, next)
	return nil
}

// What Amend adds is part of the status compared and patched: a change of it alone is written,
// and kept by the next builds.
func TestReporterAmend(t *testing.T) {
	w := &recordingWriter{}
	healthy := metav1.ConditionTrue
	r := Reporter{Writer: w, Amend: func(s *v1.NodeNetworkStatus) {
		meta.SetStatusCondition(&s.Conditions, metav1.Condition{Type: v1.ConditionConnectivityHealthy, Status: healthy, Reason: "R", Message: "m"})
	}}
	nn := &v1.NodeNetwork{ObjectMeta: metav1.ObjectMeta{Name: "n1", UID: "u1"}}
	o := Observation{Waiting: v1.ReasonWaitingForClusterNetwork, WaitingMessage: "no ClusterNetwork", Finished: time.Unix(100, 0)}
	report := func() bool {
		t.Helper()
		patched, err := r.Report(context.Background(), nn, o)
		if err != nil {
			t.Fatal(err)
		}
		return patched
	}
	if !report() || !meta.IsStatusConditionTrue(w.patched[0].Conditions, v1.ConditionConnectivityHealthy) {
		t.Fatalf("first report: want a patch with the amended condition, got %+v", w.patched)
	}
	if report() {
		t.Fatal("nothing changed, but the status was patched again")
	}
	healthy = metav1.ConditionFalse
	if !report() || !meta.IsStatusConditionFalse(w.patched[1].Conditions, v1.ConditionConnectivityHealthy) {
		t.Fatalf("a change of the amended condition alone was not patched: %+v", w.patched)
	}
}
