package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Down removes everything the state file says Up made: processes (every one in the lab's cgroups,
// pods included), network namespaces (and with them every link, route and nftables table in them),
// cgroups, mount points made on the machine, changed sysctls (those two handed to another lab that
// still runs, see handOver), and the lab folder. It works after an
// aborted Up and does nothing when no lab exists.
func Down(c Config) error {
	if os.Geteuid() != 0 {
		return errors.New("removing the lab's namespaces, mounts and cgroups needs root")
	}
	if err := c.validate(); err != nil {
		return err
	}
	st, err := loadState(c.Dir)
	if err != nil {
		return err
	}
	if !st.exists() {
		c.step("no lab state in %s: nothing to remove", c.Dir)
		return nil
	}
	t0 := time.Now()
	var errs []error
	n, err := killLabProcesses(st)
	if err != nil {
		errs = append(errs, err)
	}
	c.step("stopped %d processes", n)
	for _, ns := range slices.Backward(st.Netns) {
		if netnsExists(ns) {
			if err := ip("netns", "delete", ns); err != nil {
				errs = append(errs, err)
			}
		}
	}
	c.step("removed %d network namespaces", len(st.Netns))
	for _, cg := range st.Cgroups {
		for _, h := range nodeCgroupHierarchies() {
			if err := removeCgroupTree(filepath.Join(h, cg)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if heir, err := c.handOver(st); err != nil {
		errs = append(errs, fmt.Errorf("hand the machine's mount points and sysctls to another lab: %w", err))
	} else if heir != "" {
		c.step("the lab in %s still runs: mount points and sysctls left for it to remove and restore", heir)
	} else {
		errs = append(errs, restoreMachine(st)...)
	}
	if len(errs) > 0 {
		return fmt.Errorf("lab down incomplete (state kept in %s): %w", st.path, errors.Join(errs...))
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		return fmt.Errorf("remove %s: %w", c.Dir, err)
	}
	c.step("lab removed in %s (%s)", time.Since(t0).Round(100*time.Millisecond), c.Dir)
	return nil
}

// restoreMachine restores the sysctls st recorded and removes the mount points it made.
func restoreMachine(st *State) []error {
	var errs []error
	for s, v := range st.Sysctls {
		if err := os.WriteFile("/proc/sys/"+s, []byte(v), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restore sysctl %s=%s: %w", s, v, err))
		}
	}
	for _, d := range slices.Backward(st.HostDirs) {
		if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove mount point %s: %w", d, err))
		}
	}
	return errs
}

// killLabProcesses kills every process in the lab's tracking cgroups (pods included), until none is
// left (bounded). It returns how many it killed.
func killLabProcesses(st *State) (int, error) {
	killed := map[int]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		pids := labPIDs(st)
		if len(pids) == 0 {
			waitReaped(killed, 10*time.Second)
			return len(killed), nil
		}
		if time.Now().After(deadline) {
			return len(killed), fmt.Errorf("processes still running after 30s: %v", pids)
		}
		for _, pid := range pids {
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				killed[pid] = true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// killCgroupTree kills every process in the tracking cgroup tree at rel (relative to the
// hierarchy's root) until none is left, bounded.
func killCgroupTree(rel string) (int, error) {
	return killLabProcesses(&State{Cgroups: []string{rel}})
}

// waitReaped waits (bounded) until the killed processes are gone from /proc: killed processes stay
// zombies until their parent, often init, reaps them.
func waitReaped(pids map[int]bool, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for pid := range pids {
		for time.Now().Before(deadline) {
			// Reap it if it is our own child (Up started it in this process); ECHILD otherwise.
			_, _ = syscall.Wait4(pid, nil, syscall.WNOHANG, nil)
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// labPIDs lists the live processes in the tracking cgroup trees.
func labPIDs(st *State) []int {
	var pids []int
	for _, cg := range st.Cgroups {
		_ = filepath.WalkDir(filepath.Join(trackingHierarchy, cg), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && alive(pid) {
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	// Recorded PIDs outside the cgroups are never killed: every lab process joins its cgroup
	// before it execs, so such a PID belongs to someone else by now.
	return pids
}

// removeCgroupTree removes a cgroup folder and its children, deepest first. A missing one is fine.
func removeCgroupTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeCgroupTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	var last error
	for i := 0; i < 50; i++ { // a cgroup whose last process just died can be busy for a moment
		if last = syscall.Rmdir(dir); last == nil || errors.Is(last, os.ErrNotExist) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("remove cgroup %s: %w", dir, last)
}
