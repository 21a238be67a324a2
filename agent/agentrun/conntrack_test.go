package agentrun

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/plexus-net/plexus/agent/nsthread"
	"github.com/plexus-net/plexus/internal/testnet"
)

// TestConntrackSysctls: kube-proxy's defaults in seconds; zero leaves a setting out.
func TestConntrackSysctls(t *testing.T) {
	got := conntrackSysctls(DefaultConntrackTCPEstablishedTimeout, DefaultConntrackTCPCloseWaitTimeout)
	want := []sysctl{{sysctlTCPEstablished, "86400"}, {sysctlTCPCloseWait, "3600"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults: %v, want %v", got, want)
	}
	if got := conntrackSysctls(0, 90*time.Second); !reflect.DeepEqual(got, []sysctl{{sysctlTCPCloseWait, "90"}}) {
		t.Errorf("established 0, close-wait 90 s: %v", got)
	}
	if got := conntrackSysctls(0, 0); got != nil {
		t.Errorf("both 0: %v, want nothing", got)
	}
}

// TestWriteSysctlsWithoutConntrack: a missing sysctl (nf_conntrack not loaded) is the error the
// caller retries on.
func TestWriteSysctlsWithoutConntrack(t *testing.T) {
	err := writeSysctls(t.TempDir(), conntrackSysctls(time.Hour, time.Hour))
	if err == nil || !strings.Contains(err.Error(), errConntrackNotLoaded.Error()) {
		t.Errorf("error %v, want %v", err, errConntrackNotLoaded)
	}
}

// TestKernelConntrackTimeouts writes the defaults into a throwaway network namespace through an
// nsthread, as the agent does with --netns, and checks them there, and that the test's own
// namespace kept its values.
func TestKernelConntrackTimeouts(t *testing.T) {
	testnet.RequireRoot(t)
	read := func(key string) string {
		b, err := os.ReadFile(filepath.Join(procSysDir, key))
		if err != nil {
			t.Fatalf("read %s: %v", key, err)
		}
		return strings.TrimSpace(string(b))
	}
	// The sysctls exist only once nf_conntrack is loaded; on a fresh machine nothing may have
	// loaded it yet when this package runs, so load it rather than skip.
	if _, err := os.Stat(filepath.Join(procSysDir, sysctlTCPEstablished)); err != nil {
		if out, err := exec.Command("modprobe", "nf_conntrack").CombinedOutput(); err != nil {
			t.Fatalf("load nf_conntrack for the conntrack sysctls: %v: %s", err, out)
		}
	}
	hostEstablished, hostCloseWait := read(sysctlTCPEstablished), read(sysctlTCPCloseWait)
	ns := testnet.NewNetns(t, "conntrack")
	thread, err := nsthread.Start(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer thread.Stop()
	settings := conntrackSysctls(DefaultConntrackTCPEstablishedTimeout, DefaultConntrackTCPCloseWaitTimeout)
	for i := range 2 { // the second write finds the values in place
		if err := thread.Run(func() error { return writeSysctls(procSysDir, settings) }); err != nil {
			t.Fatalf("write %d: %v", i+1, err)
		}
	}
	var established, closeWait string
	_ = thread.Run(func() error {
		established, closeWait = read(sysctlTCPEstablished), read(sysctlTCPCloseWait)
		return nil
	})
	if established != "86400" || closeWait != "3600" {
		t.Errorf("in the namespace: established %s, close_wait %s; want 86400, 3600", established, closeWait)
	}
	if e, c := read(sysctlTCPEstablished), read(sysctlTCPCloseWait); e != hostEstablished || c != hostCloseWait {
		t.Errorf("the test's own namespace changed: established %s → %s, close_wait %s → %s", hostEstablished, e, hostCloseWait, c)
	}
}
