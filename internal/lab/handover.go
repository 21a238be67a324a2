package lab

import (
	"path/filepath"
	"slices"
)

// Labs side by side share two things of the machine: the mount points their nodes bind over
// (nodeBindMounts) and the global sysctls their kubelets change (kernelSysctls). The first lab up
// makes and records them; the lab that goes down last removes and restores them. A lab going down
// while another lab's state exists hands them over instead: removing a mount point here would
// detach the other lab's node mounts over it (the kernel lazily unmounts a folder removed in
// another mount namespace), and restoring the sysctls would undo what the other lab's kubelets set.
// (A lab whose up writes its state at that very moment could overwrite the handover; labs are
// started and stopped one at a time.)

// otherLabStates lists the state files of the other labs in the cache (folders lab and lab-*).
func (c Config) otherLabStates() []string {
	var out []string
	for _, pattern := range []string{filepath.Join(c.CacheDir, labDir(DefaultName), stateFile), filepath.Join(c.CacheDir, labDir("*"), stateFile)} {
		found, _ := filepath.Glob(pattern)
		for _, p := range found {
			if filepath.Dir(p) != filepath.Clean(c.Dir) {
				out = append(out, p)
			}
		}
	}
	return out
}

// handOver gives what st recorded of the machine (mount points it made, the sysctls' earlier
// values) to another lab's state, and returns that lab's folder, or "" when no other lab exists.
// The sysctl values st recorded replace the heir's only when st's lab started first: they are then
// the machine's own.
func (c Config) handOver(st *State) (string, error) {
	others := c.otherLabStates()
	if len(others) == 0 {
		return "", nil
	}
	heir, err := loadState(filepath.Dir(others[0]))
	if err != nil {
		return "", err
	}
	for _, d := range st.HostDirs {
		if !slices.Contains(heir.HostDirs, d) {
			heir.HostDirs = append(heir.HostDirs, d)
		}
	}
	for s, v := range st.Sysctls {
		if _, has := heir.Sysctls[s]; !has || (!st.Started.IsZero() && st.Started.Before(heir.Started)) {
			heir.Sysctls[s] = v
		}
	}
	return filepath.Dir(heir.path), heir.save()
}
