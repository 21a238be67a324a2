package apply

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Action is what apply-and-prune does, or would do, to one object.
type Action string

// Actions of a preview.
const (
	ActionCreate    Action = "create"
	ActionUpdate    Action = "update"
	ActionUnchanged Action = "unchanged"
	ActionDelete    Action = "delete"
)

// ObjectChange is one object of a component's preview.
type ObjectChange struct {
	Action                Action
	Kind, Namespace, Name string
	// Fields are the paths an update changes, as "path: old → new" (values shortened), sorted.
	Fields []string
}

// String returns "update Deployment kube-system/coredns".
func (c ObjectChange) String() string {
	id := c.Name
	if c.Namespace != "" {
		id = c.Namespace + "/" + c.Name
	}
	return fmt.Sprintf("%s %s %s", c.Action, c.Kind, id)
}

// Preview reports what Reconcile would do with the same arguments, writing nothing: every object
// is server-side applied as a dry run (so the API server's defaulting, validation and admission
// decide, as they would for the real apply) and compared with the live object; prune's candidates
// are found by the same search Reconcile uses and reported as deletes. Annotations named in
// ignoreAnnotations (a generation stamp every accepted edit moves) do not count as a change.
func Preview(ctx context.Context, c client.Client, comp Component, owner client.Object, objs []client.Object, ignoreAnnotations ...string) ([]ObjectChange, error) {
	return run(ctx, c, comp, owner, objs, &dryRun{ignore: ignoreAnnotations})
}

// dryRun configures a preview.
type dryRun struct{ ignore []string }

// previewObject dry-runs the apply of obj and compares the result with the live object.
func previewObject(ctx context.Context, c client.Client, fieldOwner string, obj client.Object, ignore []string) (ObjectChange, error) {
	gvk := obj.GetObjectKind().GroupVersionKind()
	change := ObjectChange{Kind: gvk.Kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(gvk)
	err := c.Get(ctx, client.ObjectKeyFromObject(obj), live)
	switch {
	case apierrors.IsNotFound(err):
		live = nil
	case err != nil:
		return change, fmt.Errorf("get %s %s: %w", gvk.Kind, client.ObjectKeyFromObject(obj), err)
	}
	u, err := toApplyConfiguration(obj)
	if err != nil {
		return change, err
	}
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(fieldOwner), client.ForceOwnership, client.DryRunAll); err != nil {
		return change, fmt.Errorf("dry-run apply %s %s: %w", gvk.Kind, client.ObjectKeyFromObject(obj), err)
	}
	if live == nil {
		change.Action = ActionCreate
		return change, nil
	}
	change.Fields = diffFields(comparable(live.Object, ignore), comparable(u.Object, ignore))
	change.Action = ActionUpdate
	if len(change.Fields) == 0 {
		change.Action = ActionUnchanged
	}
	return change, nil
}

// comparable drops what the server sets or what a preview ignores: status, server-managed
// metadata and the ignored annotations.
func comparable(obj map[string]any, ignore []string) map[string]any {
	out := runtime.DeepCopyJSON(obj)
	delete(out, "status")
	if meta, ok := out["metadata"].(map[string]any); ok {
		for _, k := range []string{"creationTimestamp", "resourceVersion", "uid", "generation", "managedFields", "selfLink"} {
			delete(meta, k)
		}
		if ann, ok := meta["annotations"].(map[string]any); ok {
			for _, k := range ignore {
				delete(ann, k)
			}
			if len(ann) == 0 {
				delete(meta, "annotations")
			}
		}
	}
	return out
}

// diffFields lists the leaf paths whose values differ between a and b.
func diffFields(a, b any) []string {
	var out []string
	walkDiff("", a, b, &out)
	sort.Strings(out)
	return out
}

func walkDiff(path string, a, b any, out *[]string) {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		for k := range keys {
			walkDiff(joinPath(path, k), am[k], bm[k], out)
		}
		return
	}
	al, aok := a.([]any)
	bl, bok := b.([]any)
	if aok && bok && len(al) == len(bl) {
		for i := range al {
			walkDiff(fmt.Sprintf("%s[%d]", path, i), al[i], bl[i], out)
		}
		return
	}
	if reflect.DeepEqual(a, b) {
		return
	}
	as, aok := a.(string)
	bs, bok := b.(string)
	if aok && bok && (strings.Contains(as, "\n") || strings.Contains(bs, "\n")) {
		*out = append(*out, lineDiff(path, as, bs)...)
		return
	}
	*out = append(*out, fmt.Sprintf("%s: %s → %s", path, short(a), short(b)))
}

// lineDiff shows a multi-line value's change (a Corefile) as its removed and added lines.
func lineDiff(path, a, b string) []string {
	count := func(s string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(s, "\n") {
			m[strings.TrimSpace(l)]++
		}
		return m
	}
	ac, bc := count(a), count(b)
	var out []string
	for _, l := range strings.Split(a, "\n") {
		if t := strings.TrimSpace(l); bc[t] < ac[t] {
			out = append(out, fmt.Sprintf("%s: - %s", path, shorten(t, 200)))
			ac[t]--
		}
	}
	ac = count(a)
	for _, l := range strings.Split(b, "\n") {
		if t := strings.TrimSpace(l); ac[t] < bc[t] {
			out = append(out, fmt.Sprintf("%s: + %s", path, shorten(t, 200)))
			bc[t]--
		}
	}
	return out
}

func joinPath(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// short renders a value in at most 60 characters.
func short(v any) string { return shorten(v, 60) }

// shorten renders a value in at most n characters.
func shorten(v any, n int) string {
	if v == nil {
		return "(none)"
	}
	s := fmt.Sprint(v)
	if m, ok := v.(map[string]any); ok {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		s = "{" + strings.Join(keys, ",") + "}"
	}
	if len(s) > n {
		s = s[:n-3] + "..."
	}
	return s
}
