package cni

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// updateGoldenEnv, when set to 1, makes golden tests rewrite their files instead of comparing.
const updateGoldenEnv = "UPDATE_GOLDEN"

// updateGoldenCmd is the command that accepts a changed rendering.
const updateGoldenCmd = "UPDATE_GOLDEN=1 go test ./agent/cni/..."

// assertGolden compares got with testdata/<name>; on mismatch it reports the first differing line
// and the command that accepts the new output.
func assertGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if os.Getenv(updateGoldenEnv) == "1" {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("update golden file: %v", err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file %s: %v (create it with: %s)", path, err, updateGoldenCmd)
	}
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(gl), len(wl)); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Fatalf("%s differs at line %d:\n  got:  %q\n  want: %q\nif the change is intended, accept it with: %s", path, i+1, g, w, updateGoldenCmd)
		}
	}
}
