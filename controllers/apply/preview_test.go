package apply

import (
	"slices"
	"testing"
)

func TestDiffFieldsListsChangedLeaves(t *testing.T) {
	live := map[string]any{
		"metadata": map[string]any{"name": "coredns", "resourceVersion": "7", "annotations": map[string]any{"gen": "1"}},
		"spec":     map[string]any{"replicas": int64(2), "template": map[string]any{"image": "a"}},
		"data":     map[string]any{"Corefile": ".:53 {\n  cache 30\n  errors\n}"},
		"status":   map[string]any{"ready": int64(2)},
	}
	next := map[string]any{
		"metadata": map[string]any{"name": "coredns", "resourceVersion": "8", "annotations": map[string]any{"gen": "2"}},
		"spec":     map[string]any{"replicas": int64(3), "template": map[string]any{"image": "a"}},
		"data":     map[string]any{"Corefile": ".:53 {\n  cache 60\n  errors\n}"},
		"status":   map[string]any{"ready": int64(0)},
	}
	got := diffFields(comparable(live, []string{"gen"}), comparable(next, []string{"gen"}))
	want := []string{"data.Corefile: + cache 60", "data.Corefile: - cache 30", "spec.replicas: 2 → 3"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := diffFields(comparable(live, []string{"gen"}), comparable(live, nil)); len(got) != 1 || got[0] != "metadata.annotations: (none) → {gen}" {
		t.Errorf("an annotation not ignored must show: %q", got)
	}
	if got := diffFields(comparable(live, nil), comparable(live, nil)); len(got) != 0 {
		t.Errorf("equal objects differ: %q", got)
	}
}
