package cni

import (
	"path/filepath"
	"testing"

	"github.com/plexus-net/plexus/internal/golden"
)

// assertGolden compares got with testdata/<name>; UPDATE_GOLDEN=1 rewrites it.
func assertGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Assert(t, filepath.Join("testdata", name), got, "./agent/cni/...")
}
