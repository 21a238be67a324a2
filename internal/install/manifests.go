package install

import (
	"bytes"
	"fmt"
	"slices"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// DistDir holds the rendered install manifests, relative to the repository root: one file a GitOps
// tool (or kubectl apply -f) applies without kustomize or Helm.
const DistDir = "dist"

// InstallManifest is the single-file install, relative to DistDir.
const InstallManifest = "install.yaml"

// applyOrder is the order of kinds in install.yaml: kubectl apply -f takes a file's documents in
// order, so the Namespace and the CRDs come before what lives in them or uses them. A kind not
// listed goes last.
var applyOrder = []string{"Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole",
	"ClusterRoleBinding", "Role", "RoleBinding", "Deployment"}

// Manifests returns the files of DistDir keyed by path relative to it: install.yaml, every object
// config/default builds as one multi-document YAML file, ordered by applyOrder (kustomize's order
// within a kind).
func Manifests(objs []*unstructured.Unstructured, version string) (map[string][]byte, error) {
	rank := func(o *unstructured.Unstructured) int {
		if i := slices.Index(applyOrder, o.GetKind()); i >= 0 {
			return i
		}
		return len(applyOrder)
	}
	objs = slices.Clone(objs)
	sort.SliceStable(objs, func(i, j int) bool { return rank(objs[i]) < rank(objs[j]) })
	var b bytes.Buffer
	b.WriteString(generatedHeader)
	fmt.Fprintf(&b, "# Plexus %s: everything `kubectl apply --server-side -k config/default` applies, rendered.\n", version)
	for _, o := range objs {
		y, err := marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("render %s %s: %w", o.GetKind(), o.GetName(), err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return map[string][]byte{InstallManifest: b.Bytes()}, nil
}
