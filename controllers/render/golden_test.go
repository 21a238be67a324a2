package render

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// expectGolden compares rendered objects with testdata/<name>.golden.yaml. UPDATE_GOLDEN=1 rewrites
// the file; on a mismatch the test names the first differing line and the command that accepts it.
func expectGolden(t *testing.T, name string, objs []client.Object) {
	t.Helper()
	var buf bytes.Buffer
	for _, o := range objs {
		b, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	path := filepath.Join("testdata", name+".golden.yaml")
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (create it with: UPDATE_GOLDEN=1 go test ./controllers/render/...)", err)
	}
	if diff := firstDiff(string(want), buf.String()); diff != "" {
		t.Fatalf("%s differs from the rendered objects: %s\naccept the new output with: UPDATE_GOLDEN=1 go test ./controllers/render/...", path, diff)
	}
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d: want %q, got %q", i+1, wl, gl)
		}
	}
	return ""
}
