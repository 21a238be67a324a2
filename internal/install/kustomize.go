// Package install turns the kustomize tree under config/ into the other two ways users install
// Plexus: the OLM bundle (bundle/) and the Helm chart's templates (config/helm/plexus). The
// kustomize tree is the one source; everything here is a pure function of what it builds, so the
// committed artifacts can be regenerated and compared byte for byte.
package install

import (
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Build runs kustomize over dir (e.g. config/default) as `kubectl apply -k` would and returns the
// objects it produces, in kustomize's output order.
func Build(dir string) ([]*unstructured.Unstructured, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resources, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var objs []*unstructured.Unstructured
	for _, r := range resources.Resources() {
		// Through JSON, so numbers are int64 and float64 as the apimachinery helpers expect
		// (kyaml's maps hold plain ints).
		j, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s: %w", dir, r.CurId(), err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(j); err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s: %w", dir, r.CurId(), err)
		}
		objs = append(objs, u)
	}
	return objs, nil
}

// Tree is what config/default builds, sorted by what the generators do with each kind.
type Tree struct {
	Namespace           *unstructured.Unstructured
	CRDs                []*unstructured.Unstructured
	ServiceAccounts     []*unstructured.Unstructured
	ClusterRoles        []*unstructured.Unstructured
	ClusterRoleBindings []*unstructured.Unstructured
	Roles               []*unstructured.Unstructured
	RoleBindings        []*unstructured.Unstructured
	Deployments         []*unstructured.Unstructured
}

// Classify sorts objs into a Tree; a kind the generators do not know is an error, so a new kind in
// config/ cannot silently go missing from the chart or the bundle.
func Classify(objs []*unstructured.Unstructured) (Tree, error) {
	var t Tree
	for _, o := range objs {
		switch o.GetKind() {
		case "Namespace":
			if t.Namespace != nil {
				return t, fmt.Errorf("two Namespaces in config: %s and %s", t.Namespace.GetName(), o.GetName())
			}
			t.Namespace = o
		case "CustomResourceDefinition":
			t.CRDs = append(t.CRDs, o)
		case "ServiceAccount":
			t.ServiceAccounts = append(t.ServiceAccounts, o)
		case "ClusterRole":
			t.ClusterRoles = append(t.ClusterRoles, o)
		case "ClusterRoleBinding":
			t.ClusterRoleBindings = append(t.ClusterRoleBindings, o)
		case "Role":
			t.Roles = append(t.Roles, o)
		case "RoleBinding":
			t.RoleBindings = append(t.RoleBindings, o)
		case "Deployment":
			t.Deployments = append(t.Deployments, o)
		default:
			return t, fmt.Errorf("config has a %s (%s) that neither the bundle nor the chart generator knows: teach internal/install about it", o.GetKind(), o.GetName())
		}
	}
	if t.Namespace == nil {
		return t, fmt.Errorf("config has no Namespace")
	}
	for _, list := range [][]*unstructured.Unstructured{t.CRDs, t.ServiceAccounts, t.ClusterRoles, t.ClusterRoleBindings, t.Roles, t.RoleBindings, t.Deployments} {
		sort.SliceStable(list, func(i, j int) bool { return list[i].GetName() < list[j].GetName() })
	}
	return t, nil
}

// marshal writes obj as YAML with sorted keys.
func marshal(obj any) ([]byte, error) {
	b, err := yaml.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("marshal: %w", err)
	}
	return b, nil
}
