package cachetrim

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestTrimNodeKeepsWhatSyncsRead(t *testing.T) {
	const nodeIPAnnotation = "plexus.dev/node-ip"
	n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", Annotations: map[string]string{nodeIPAnnotation: "10.99.0.21"},
		Labels: map[string]string{corev1.LabelTopologyZone: "zone-a", "noise": "x"}}}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.99.0.11"}, {Type: corev1.NodeHostName, Address: "node-1"}}
	n.Status.Images = []corev1.ContainerImage{{Names: []string{"big"}}}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady}}
	out, err := Node(&n)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.Node)
	if got.Name != "node-1" || got.Annotations[nodeIPAnnotation] != "10.99.0.21" || len(got.Status.Addresses) != 2 ||
		got.Status.Images != nil || got.Status.Conditions != nil || len(got.Labels) != 1 || got.Labels[corev1.LabelTopologyZone] != "zone-a" {
		t.Errorf("trimmed Node: %+v", got)
	}
}
