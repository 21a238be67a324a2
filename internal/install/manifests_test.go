package install

import (
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestManifestsHoldConfigDefaultInApplyOrder: dist/install.yaml is every object config/default
// builds, each once, with the Namespace and the CRDs before anything that needs them (kubectl apply
// -f takes the documents in order).
func TestManifestsHoldConfigDefaultInApplyOrder(t *testing.T) {
	objs, err := Build(filepath.Join(repoRoot, "config/default"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := Manifests(objs, "9.9.9")
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(files[InstallManifest]), "\n---\n")[1:]
	if len(docs) != len(objs) {
		t.Fatalf("install.yaml has %d documents, config/default builds %d objects", len(docs), len(objs))
	}
	var kinds []string
	seen := map[string]bool{}
	for _, d := range docs {
		var m struct {
			Kind     string
			Metadata struct{ Name, Namespace string }
		}
		if err := yaml.Unmarshal([]byte(d), &m); err != nil {
			t.Fatalf("document %q: %v", d[:min(len(d), 80)], err)
		}
		kinds = append(kinds, m.Kind)
		seen[m.Kind+"/"+m.Metadata.Namespace+"/"+m.Metadata.Name] = true
	}
	for _, o := range objs {
		if !seen[o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName()] {
			t.Errorf("%s %s/%s of config/default is not in install.yaml", o.GetKind(), o.GetNamespace(), o.GetName())
		}
	}
	if kinds[0] != "Namespace" || kinds[1] != "CustomResourceDefinition" {
		t.Errorf("install.yaml starts with %v, want the Namespace, then the CRDs", kinds[:2])
	}
	if kinds[len(kinds)-1] != "Deployment" {
		t.Errorf("install.yaml ends with a %s, want the operator Deployment after its RBAC", kinds[len(kinds)-1])
	}
}
