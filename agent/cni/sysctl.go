package cni

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/plugins/pkg/ns"
)

// procSys is where sysctls live. Entries under net/ belong to the network namespace of the
// thread that opens them, so a sysctl of a pod's namespace is read inside ns.WithNetNSPath.
const procSys = "/proc/sys"

// Sysctl keys, in /proc/sys path form ("/" separated) because interface names may contain dots.
const (
	sysctlIPv4Forward    = "net/ipv4/ip_forward"
	sysctlIPv6ForwardAll = "net/ipv6/conf/all/forwarding"
	sysctlProxyARPFmt    = "net/ipv4/conf/%s/proxy_arp"
	sysctlProxyDelayFmt  = "net/ipv4/neigh/%s/proxy_delay"
	sysctlDisableIPv6Fmt = "net/ipv6/conf/%s/disable_ipv6"
)

// readSysctl returns the value of key in the calling thread's network namespace.
func readSysctl(key string) (string, error) {
	data, err := os.ReadFile(filepath.Join(procSys, key))
	if err != nil {
		return "", fmt.Errorf("read sysctl %s: %w", key, err)
	}
	return strings.TrimSpace(string(data)), nil
}

// ensureSysctl sets key to value unless it already has it. Not writing an unchanged value
// matters for net/ipv6/conf/all/forwarding: every write of it re-applies the value to all
// interfaces and resets their router state.
func ensureSysctl(key, value string) error {
	cur, err := readSysctl(key)
	if err != nil {
		return err
	}
	if cur == value {
		return nil
	}
	if err := os.WriteFile(filepath.Join(procSys, key), []byte(value), 0o644); err != nil {
		return fmt.Errorf("set sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

// ensureSysctlIn is ensureSysctl inside the network namespace at nsPath.
func ensureSysctlIn(nsPath, key, value string) error {
	return ns.WithNetNSPath(nsPath, func(ns.NetNS) error { return ensureSysctl(key, value) })
}
