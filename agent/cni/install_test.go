package cni

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInstall(t *testing.T) {
	root := t.TempDir()
	src := filepath.Join(root, "build", "plexus-cni")
	binDir, confDir := filepath.Join(root, "opt", "cni", "bin"), filepath.Join(root, "etc", "cni", "net.d")
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		t.Fatal(err)
	}
	for i, content := range []string{"binary v1", "binary v2, longer than v1"} {
		if err := os.WriteFile(src, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		opts := ConfigOptions{MTU: 1400 + i}
		if err := Install(src, binDir, confDir, opts); err != nil {
			t.Fatalf("Install #%d: %v", i+1, err)
		}
		bin := filepath.Join(binDir, PluginType)
		got, err := os.ReadFile(bin)
		if err != nil || string(got) != content {
			t.Fatalf("installed binary = %q, %v; want %q", got, err, content)
		}
		if fi, _ := os.Stat(bin); fi.Mode().Perm() != 0o755 {
			t.Errorf("binary mode = %v, want 0755", fi.Mode().Perm())
		}
		conf, err := os.ReadFile(filepath.Join(confDir, ConflistFileName))
		want, _ := RenderConflist(opts)
		if err != nil || string(conf) != string(want) {
			t.Fatalf("installed conflist = %s, %v; want %s", conf, err, want)
		}
		if fi, _ := os.Stat(filepath.Join(confDir, ConflistFileName)); fi.Mode().Perm() != 0o644 {
			t.Errorf("conflist mode = %v, want 0644", fi.Mode().Perm())
		}
	}
	for _, dir := range []string{binDir, confDir} {
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Errorf("%s holds %v, want exactly one file (no temporary leftovers)", dir, names)
		}
	}
}

func TestInstallFailsCleanly(t *testing.T) {
	root := t.TempDir()
	binDir, confDir := filepath.Join(root, "bin"), filepath.Join(root, "conf")
	err := Install(filepath.Join(root, "missing"), binDir, confDir, ConfigOptions{})
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("Install with missing source: error = %v", err)
	}
	if _, err := os.Stat(filepath.Join(confDir, ConflistFileName)); !os.IsNotExist(err) {
		t.Error("conflist written although the binary could not be installed")
	}
	err = Install(filepath.Join(root, "missing"), binDir, confDir, ConfigOptions{MTU: 1})
	if err == nil || !strings.Contains(err.Error(), "mtu") {
		t.Fatalf("Install with bad options: error = %v, want it to name the field", err)
	}
}
