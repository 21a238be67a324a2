package agent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestTrimNodeKeepsWhatSyncsRead(t *testing.T) {
	n := annotated(kubeNode("node-1", "10.99.0.11"), "10.99.0.21")
	n.Labels = map[string]string{ZoneLabel: "zone-a", "noise": "x"}
	n.Status.Images = []corev1.ContainerImage{{Names: []string{"big"}}}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady}}
	out, err := trimNode(&n)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.Node)
	if got.Name != "node-1" || got.Annotations[NodeIPAnnotation] != "10.99.0.21" || len(got.Status.Addresses) != 2 ||
		got.Status.Images != nil || got.Status.Conditions != nil || len(got.Labels) != 1 || got.Labels[ZoneLabel] != "zone-a" {
		t.Errorf("trimmed Node: %+v", got)
	}
	ips, err := NodeIPs(got, nil, false)
	if err != nil || len(ips) != 1 || ips[0].String() != "10.99.0.21" {
		t.Errorf("node IPs of the trimmed Node: %v, %v", ips, err)
	}
}
