package golden

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFirstDiff(t *testing.T) {
	if d := FirstDiff("a\nb\n", "a\nb\n"); d != "" {
		t.Fatalf("equal texts differ: %s", d)
	}
	d := FirstDiff("a\nx\nc", "a\nb\nc")
	if !strings.Contains(d, "line 2") || !strings.Contains(d, `"x"`) || !strings.Contains(d, `"b"`) {
		t.Fatalf("FirstDiff = %q, want line 2 with both sides", d)
	}
	if d := FirstDiff("a", "a\nb"); !strings.Contains(d, "line 2") {
		t.Fatalf("a missing last line: %q", d)
	}
}

func TestAssertUpdateThenCompare(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.golden")
	t.Setenv(UpdateEnv, "1")
	Assert(t, path, []byte("hello\n"), "./x")
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "hello\n" {
		t.Fatalf("golden file = %q, %v", b, err)
	}
	t.Setenv(UpdateEnv, "")
	Assert(t, path, []byte("hello\n"), "./x")
}
