package lab

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// trackingHierarchy is the cgroup v1 hierarchy whose Config.CgroupRoot subtree lists every process
// of a lab; Down kills what it lists. (Kubelets put their pods below CgroupRoot in every hierarchy.)
const trackingHierarchy = "/sys/fs/cgroup/pids"

// cgroupDir returns the tracking cgroup folder of a role.
func (c Config) cgroupDir(role string) string {
	return filepath.Join(trackingHierarchy, c.CgroupRoot(), role)
}

// alive says whether pid runs (and is not a zombie).
func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	if i := bytes.LastIndexByte(b, ')'); i > 0 && i+2 < len(b) {
		return b[i+2] != 'Z'
	}
	return true
}

// startProcess starts a long-running lab process detached from plexusctl, in the tracking cgroup of
// its role and, if netns is set, in that network namespace; output goes to logFile. A process of
// the role that still runs is kept.
func (c Config) startProcess(st *State, role, netns, logFile string, argv ...string) error {
	if pid := st.Processes[role]; alive(pid) {
		c.step("%s already running (pid %d)", role, pid)
		return nil
	}
	if err := st.record(&st.Cgroups, c.CgroupRoot()); err != nil {
		return err
	}
	cg := c.cgroupDir(role)
	if err := os.MkdirAll(cg, 0o755); err != nil {
		return fmt.Errorf("create cgroup %s: %w", cg, err)
	}
	if netns != "" {
		argv = append([]string{"ip", "netns", "exec", netns}, argv...)
	}
	// The shell joins the cgroup before it execs, so every child is tracked from its start.
	args := append([]string{"-c", `echo $$ > "$0" && exec "$@"`, filepath.Join(cg, "cgroup.procs")}, argv...)
	cmd := exec.Command("/bin/sh", args...)
	log, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", role, err)
	}
	st.Processes[role] = cmd.Process.Pid
	_ = cmd.Process.Release()
	c.step("%s started (pid %d, log %s)", role, st.Processes[role], logFile)
	return st.save()
}

// waitFor polls check every 200ms until it succeeds, the role's process exits (then the end of its
// log is returned in the error) or timeout passes.
func (c Config) waitFor(st *State, role, logFile string, timeout time.Duration, what string, check func() error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if last = check(); last == nil {
			return nil
		}
		if role != "" && !alive(st.Processes[role]) {
			return fmt.Errorf("%s exited before %s; the end of %s:\n%s", role, what, logFile, tail(logFile, 15))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not done after %s: %v (log %s)", what, timeout, last, logFile)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// tail returns the last n lines of a file.
func tail(file string, n int) string {
	b, _ := os.ReadFile(file)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
