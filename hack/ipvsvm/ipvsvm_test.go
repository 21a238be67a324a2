package ipvsvm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseResult(t *testing.T) {
	for _, tc := range []struct {
		line string
		code int
		ok   bool
	}{
		{ResultMarker + " exit=0", 0, true},
		{"[    3.1] " + ResultMarker + " exit=2\r", 2, true},
		{ResultMarker + " exit=", 0, false},
		{"PASS", 0, false},
	} {
		code, ok := parseResult(tc.line)
		if code != tc.code || ok != tc.ok {
			t.Errorf("parseResult(%q) = %d, %v; want %d, %v", tc.line, code, ok, tc.code, tc.ok)
		}
	}
}

func TestInitScriptQuotes(t *testing.T) {
	vm := &VM{Modules: []string{"lib/modules/k/a.ko", "lib/modules/k/b.ko"}}
	s := vm.initScript(RunOptions{Args: []string{"-test.run", "^TestX$", "it's"}, Env: map[string]string{"B": "2", "A": "x y"}})
	for _, want := range []string{
		`for ko in lib/modules/k/a.ko lib/modules/k/b.ko; do`,
		"export A='x y'\nexport B='2'\n",
		`/plexus.test '-test.run' '^TestX$' 'it'\''s'`,
		`echo "` + ResultMarker + ` exit=$?"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("init script lacks %q:\n%s", want, s)
		}
	}
}

// TestCPIOLayout checks the archive with the host's cpio when there is one
// (the runner itself does not need it).
func TestCPIOLayout(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("cpio not installed: nothing to check the archive against")
	}
	var buf bytes.Buffer
	c := &cpioWriter{w: &buf}
	c.Dir("bin", 0o755)
	c.File("bin/hello", 0o755, []byte("hi\n"))
	c.Symlink("sbin", "bin")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command("cpio", "-idm", "--quiet")
	cmd.Dir, cmd.Stdin = dir, &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v: %s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "sbin", "hello")); err != nil || string(b) != "hi\n" {
		t.Fatalf("sbin/hello through the symlink = %q, %v", b, err)
	}
}

// TestRunExitCode boots a tiny static program that exits 3 and checks that
// the code comes back through the marker line. It needs root (the cache,
// and qemu installed on demand); the IPVS tests in agent/proxy/ipvs are the
// real users.
func TestRunExitCode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("boots a VM with a kernel fetched into root's cache: needs root")
	}
	if testing.Short() {
		t.Skip("boots a VM: skipped with -short")
	}
	ctx := context.Background()
	vm, err := Prepare(ctx, testWriter{t})
	if errors.Is(err, ErrNoQEMU) && os.Getenv(RequireEnv) == "" {
		t.Skipf("no VM here: %v (make test sets %s=1 and fails instead)", err, RequireEnv)
	}
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	prog := "package main\n\nimport (\"fmt\"; \"os\")\n\nfunc main() { fmt.Println(\"args\", os.Args[1:], os.Getenv(\"GREETING\")); os.Exit(3) }\n"
	if err := os.WriteFile(src, []byte(prog), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "prog")
	build := exec.Command("go", "build", "-o", bin, src)
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GO111MODULE=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v: %s", err, out)
	}
	var console bytes.Buffer
	res, err := vm.Run(ctx, RunOptions{Binary: bin, Args: []string{"a b"}, Env: map[string]string{"GREETING": "hello"}, Console: &console})
	if err != nil {
		t.Fatalf("%v\nconsole:\n%s", err, console.String())
	}
	t.Logf("accel %s, boot %s, total %s", res.Accel, res.Boot.Round(1e7), res.Total.Round(1e7))
	if res.ExitCode != 3 {
		t.Errorf("exit code %d, want 3\nconsole:\n%s", res.ExitCode, console.String())
	}
	if !strings.Contains(console.String(), "args [a b] hello") {
		t.Errorf("console lacks the program's output\n%s", console.String())
	}
}

// testWriter sends progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
