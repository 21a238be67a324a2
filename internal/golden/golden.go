// Package golden compares test output with golden files and text, reporting the first differing
// line, so a failing exact-output test reads like a diff.
package golden

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// UpdateEnv, when set to 1, makes Assert rewrite golden files instead of comparing.
const UpdateEnv = "UPDATE_GOLDEN"

// FirstDiff returns "" when got equals want, otherwise the first differing line of both.
func FirstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n  got:  %q\n  want: %q", i+1, gl, wl)
		}
	}
	return ""
}

// Assert compares got with the golden file at path (relative to the test's package). With
// UPDATE_GOLDEN=1 it rewrites the file instead. On a mismatch it names the first differing line and
// the command that accepts the new output, `UPDATE_GOLDEN=1 go test <pkg>`.
func Assert(t testing.TB, path string, got []byte, pkg string) {
	t.Helper()
	accept := fmt.Sprintf("%s=1 go test %s", UpdateEnv, pkg)
	if os.Getenv(UpdateEnv) == "1" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("update golden file %s: %v", path, err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file %s: %v (create it with: %s)", path, err, accept)
	}
	if d := FirstDiff(string(got), string(want)); d != "" {
		t.Fatalf("%s differs at %s\nif the change is intended, accept it with: %s", path, d, accept)
	}
}
