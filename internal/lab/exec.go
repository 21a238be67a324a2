package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netns"
)

// Kubectl runs the lab's kubectl as the lab admin (stdin if not empty) and returns its standard
// output; the error carries its standard error.
func Kubectl(c Config, stdin string, args ...string) (string, error) {
	return c.kubectl(stdin, args...)
}

// EchoPodNetns returns the network namespace path (/proc/<pid>/ns/net) of the echo process of the
// pod named pod in this lab (lab pods are processes of this machine, in the lab's cgroup), or ""
// when no such process runs.
func (c Config) EchoPodNetns(pod string) string { return c.podNetns(pod) }

// LogDir is the folder of the control plane's logs; each node's logs are in NodeDir(node).
func (c Config) LogDir() string { return filepath.Join(c.Dir, "logs") }

// NodeDir is the folder of a lab node: its configuration, logs (containerd.log, kubelet.log) and
// the folders bound into its mount namespace.
func (c Config) NodeDir(n Node) string { return c.nodeDir(n) }

// InNetns runs fn on a thread that is inside the network namespace at nsPath; sockets fn opens stay
// in that namespace. The thread is dropped afterwards if it could not be switched back.
func InNetns(nsPath string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPath(nsPath)
		if err != nil {
			errc <- fmt.Errorf("open %s: %w", nsPath, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			errc <- fmt.Errorf("enter %s: %w", nsPath, err)
			return
		}
		ferr := fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}

// Exists says whether a lab's state file is in dir.
func Exists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, stateFile))
	return err == nil
}
