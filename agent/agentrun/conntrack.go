package agentrun

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Conntrack timeouts the agent sets on its node, as kube-proxy does (its conntrack
// configuration's tcpEstablishedTimeout and tcpCloseWaitTimeout defaults):
//
//   - established TCP connections are forgotten after 24 h of silence rather than the kernel's
//     5 days, so a node does not fill its table with connections whose peers vanished;
//   - CLOSE_WAIT entries live 1 h rather than 60 s: an application that keeps a half-closed
//     connection open (the peer sent FIN, the application has not closed) keeps its NAT
//     mapping, so its late packets are not sent un-NATed to a Service VIP.
//
// Zero leaves the kernel's value. The sysctls are per network namespace; the agent writes them
// in the namespace it programs (--netns), on a thread of that namespace.
const (
	// DefaultConntrackTCPEstablishedTimeout is kube-proxy's default.
	DefaultConntrackTCPEstablishedTimeout = 24 * time.Hour
	// DefaultConntrackTCPCloseWaitTimeout is kube-proxy's default.
	DefaultConntrackTCPCloseWaitTimeout = time.Hour

	sysctlTCPEstablished = "net/netfilter/nf_conntrack_tcp_timeout_established"
	sysctlTCPCloseWait   = "net/netfilter/nf_conntrack_tcp_timeout_close_wait"
)

// procSysDir is where sysctls live; /proc/sys/net is the network namespace of the thread that
// opens the file.
const procSysDir = "/proc/sys"

// sysctl is one kernel setting: a key below /proc/sys and its value.
type sysctl struct{ key, value string }

// conntrackSysctls returns the settings for the given timeouts, in a fixed order; a zero
// timeout is left out.
func conntrackSysctls(established, closeWait time.Duration) []sysctl {
	var out []sysctl
	for _, s := range []struct {
		key string
		d   time.Duration
	}{{sysctlTCPEstablished, established}, {sysctlTCPCloseWait, closeWait}} {
		if s.d > 0 {
			out = append(out, sysctl{s.key, strconv.FormatInt(int64(s.d/time.Second), 10)})
		}
	}
	return out
}

// errConntrackNotLoaded says the conntrack sysctls do not exist yet: nf_conntrack is loaded
// with the first table that uses it (the service proxy's), so the caller tries again later.
var errConntrackNotLoaded = errors.New("nf_conntrack is not loaded yet")

// writeSysctls writes settings below root (procSysDir) in the calling thread's network
// namespace, skipping those that already hold their value.
func writeSysctls(root string, settings []sysctl) error {
	for _, s := range settings {
		path := filepath.Join(root, s.key)
		cur, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("sysctl %s: %w", s.key, errConntrackNotLoaded)
		}
		if err != nil {
			return fmt.Errorf("read sysctl %s: %w", s.key, err)
		}
		if string(trimNewline(cur)) == s.value {
			continue
		}
		if err := os.WriteFile(path, []byte(s.value), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", s.key, s.value, err)
		}
	}
	return nil
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}
