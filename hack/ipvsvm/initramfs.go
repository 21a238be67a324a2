package ipvsvm

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

const (
	// ResultMarker starts the console line /init prints after the binary
	// returns: "PLEXUS-IPVSVM-RESULT exit=<code>".
	ResultMarker = "PLEXUS-IPVSVM-RESULT"
	// initStartedLine is the first line /init prints: the end of the boot.
	initStartedLine = "ipvsvm: init started"
	// guestBinary is where the test binary sits in the guest.
	guestBinary = "/plexus.test"
)

// initScript is the guest's /init, run by busybox sh. %s are the module
// list, the environment exports and the quoted command line.
const initScript = `#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
echo "` + initStartedLine + `"
for ko in %s; do
  insmod "/$ko" || echo "ipvsvm: insmod $ko failed"
done
ip link set lo up
%s
cd /tmp
%s
echo "` + ResultMarker + ` exit=$?"
poweroff -f
`

// buildInitramfs returns the gzipped newc archive: busybox with an applet
// symlink per command, sbin -> bin, the modules tree, the binary and /init.
func (vm *VM) buildInitramfs(opts RunOptions) ([]byte, error) {
	busybox := filepath.Join(vm.Dir, busyboxFile)
	applets, err := busyboxApplets(busybox)
	if err != nil {
		return nil, err
	}
	bbData, err := os.ReadFile(busybox)
	if err != nil {
		return nil, fmt.Errorf("read busybox: %w", err)
	}
	bin, err := os.ReadFile(opts.Binary)
	if err != nil {
		return nil, fmt.Errorf("read test binary: %w", err)
	}

	var buf bytes.Buffer
	// BestSpeed: the archive is rebuilt for every run; the guest unpacks a
	// slightly larger one faster than the host compresses a smaller one.
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	c := &cpioWriter{w: gz}
	for _, d := range []string{"bin", "dev", "proc", "sys", "tmp", "run", "etc", "lib"} {
		c.Dir(d, 0o755)
	}
	// moby/ipvs execs "modprobe", which busybox provides only in bin.
	c.Symlink("sbin", "bin")
	c.File("bin/busybox", 0o755, bbData)
	for _, a := range applets {
		// The busybox applet itself would replace the binary with a
		// symlink to itself.
		if a != "busybox" {
			c.Symlink("bin/"+a, "busybox")
		}
	}
	if err := vm.addModules(c); err != nil {
		return nil, err
	}
	for _, hb := range opts.HostBinaries {
		if err := addHostBinary(c, hb); err != nil {
			return nil, err
		}
	}
	c.File(strings.TrimPrefix(guestBinary, "/"), 0o755, bin)
	c.File("init", 0o755, []byte(vm.initScript(opts)))
	if err := c.Close(); err != nil {
		return nil, fmt.Errorf("write initramfs: %w", err)
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("compress initramfs: %w", err)
	}
	return buf.Bytes(), nil
}

// addHostBinary copies a dynamically linked host program into bin/ with
// the shared libraries ldd names (and the loader), at their host paths.
// The guest's userland is busybox only; this brings e.g. nft along.
func addHostBinary(c *cpioWriter, name string) error {
	p, err := exec.LookPath(name)
	if err != nil {
		return fmt.Errorf("host binary %s: %w", name, err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("read host binary: %w", err)
	}
	c.File("bin/"+filepath.Base(p), 0o755, data)
	// ldd fails on a static binary: then there is nothing more to copy.
	out, _ := exec.Command("ldd", p).Output()
	for _, line := range strings.Split(string(out), "\n") {
		lib := ""
		fields := strings.Fields(line)
		switch {
		case len(fields) >= 3 && fields[1] == "=>" && strings.HasPrefix(fields[2], "/"):
			lib = fields[2]
		case len(fields) >= 1 && strings.HasPrefix(fields[0], "/"):
			lib = fields[0] // the loader
		default:
			continue
		}
		data, err := os.ReadFile(lib)
		if err != nil {
			return fmt.Errorf("read %s (for %s): %w", lib, name, err)
		}
		rel := strings.TrimPrefix(path.Clean(lib), "/")
		c.MkdirAll(path.Dir(rel))
		c.File(rel, 0o755, data)
	}
	return nil
}

// busyboxApplets lists the applet names the static busybox provides.
func busyboxApplets(busybox string) ([]string, error) {
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("list busybox applets: %w", err)
	}
	return strings.Fields(string(out)), nil
}

// addModules copies the modules tree (directories first, as the unpacker
// needs them before their files).
func (vm *VM) addModules(c *cpioWriter) error {
	root := filepath.Join(vm.Dir, modulesDir)
	var dirs, files []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			dirs = append(dirs, rel)
		} else {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read modules tree: %w", err)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		c.MkdirAll(filepath.ToSlash(d))
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return fmt.Errorf("read module file: %w", err)
		}
		c.File(path.Clean(filepath.ToSlash(f)), 0o644, data)
	}
	return nil
}

// initScript fills initScript for opts.
func (vm *VM) initScript(opts RunOptions) string {
	var env strings.Builder
	keys := make([]string, 0, len(opts.Env))
	for k := range opts.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&env, "export %s=%s\n", k, shellQuote(opts.Env[k]))
	}
	cmd := []string{guestBinary}
	for _, a := range opts.Args {
		cmd = append(cmd, shellQuote(a))
	}
	return fmt.Sprintf(initScript, strings.Join(vm.Modules, " "), env.String(), strings.Join(cmd, " "))
}

// shellQuote quotes s for sh in single quotes.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// parseResult finds the marker line in console output and returns the exit
// code it carries.
func parseResult(line string) (int, bool) {
	i := strings.Index(line, ResultMarker+" exit=")
	if i < 0 {
		return 0, false
	}
	code, err := strconv.Atoi(strings.TrimSpace(line[i+len(ResultMarker)+len(" exit="):]))
	if err != nil {
		return 0, false
	}
	return code, true
}
