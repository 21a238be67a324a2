package render

import (
	"bytes"
	"path/filepath"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/plexus-net/plexus/internal/golden"
)

// expectGolden compares rendered objects with testdata/<name>.golden.yaml.
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
	golden.Assert(t, filepath.Join("testdata", name+".golden.yaml"), buf.Bytes(), "./controllers/render/...")
}
