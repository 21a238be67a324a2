package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// procSys is where sysctls live; tests point it elsewhere.
var procSys = "/proc/sys"

// sysctlAllowed lists the only keys the sysctl subcommand may write: it runs privileged (in the
// agent DaemonSet's init container), so it must not become a general way to change the host.
var sysctlAllowed = map[string]bool{
	"net.ipv4.ip_forward":          true,
	"net.ipv6.conf.all.forwarding": true,
}

// parseSysctl turns "net.ipv4.ip_forward=1" into the /proc/sys path and the value.
func parseSysctl(arg string) (path, value string, err error) {
	key, value, ok := strings.Cut(arg, "=")
	if !ok || key == "" || value == "" {
		return "", "", fmt.Errorf("sysctl %q: want key=value, e.g. net.ipv4.ip_forward=1", arg)
	}
	if !sysctlAllowed[key] {
		return "", "", fmt.Errorf("sysctl %q: only net.ipv4.ip_forward and net.ipv6.conf.all.forwarding may be set", key)
	}
	return filepath.Join(procSys, strings.ReplaceAll(key, ".", "/")), value, nil
}

// runSysctl writes each key=value, for the init container that turns on forwarding in the host's
// network namespace (the agent container itself cannot: /proc/sys is read-only to it).
func runSysctl(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: plexus-agent sysctl key=value ...")
	}
	for _, a := range args {
		path, value, err := parseSysctl(a)
		if err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(value+"\n"), 0o644); err != nil {
			return fmt.Errorf("set %s: %w", a, err)
		}
		fmt.Printf("%s\n", a)
	}
	return nil
}
