package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// stateFile is the record of everything Up created, inside Config.Dir.
const stateFile = "state.json"

// State is what Up created (each entry written before the thing itself is created), so Down can
// remove exactly that, also after an aborted Up.
type State struct {
	// Started is when the first Up of this lab began.
	Started time.Time `json:"started"`
	// Complete is set once Up got through.
	Complete bool `json:"complete"`
	// Nodes is the node count Up was asked for.
	Nodes int `json:"nodes"`
	// Netns are the network namespaces (names under /run/netns).
	Netns []string `json:"netns,omitempty"`
	// Cgroups are cgroup paths relative to each hierarchy's root (every process of the lab runs below).
	Cgroups []string `json:"cgroups,omitempty"`
	// HostDirs are folders Up created on the machine as mount points for the nodes' bind mounts.
	HostDirs []string `json:"hostDirs,omitempty"`
	// Sysctls are the machine's values of global sysctls before the kubelets changed them.
	Sysctls map[string]string `json:"sysctls,omitempty"`
	// Processes are the lab's long-running processes by role (the cgroups hold their children too).
	Processes map[string]int `json:"processes,omitempty"`
	// Kubeconfig is the admin kubeconfig written for the user.
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// HostAPIAddress is where the forwarder serves the API server on the machine.
	HostAPIAddress string `json:"hostAPIAddress,omitempty"`

	path string
}

// loadState reads the state file of the lab in dir; a missing file gives an empty state.
func loadState(dir string) (*State, error) {
	s := &State{path: filepath.Join(dir, stateFile), Processes: map[string]int{}, Sysctls: map[string]string{}}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lab state: %w", err)
	}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("parse lab state %s: %w", s.path, err)
	}
	if s.Processes == nil {
		s.Processes = map[string]int{}
	}
	if s.Sysctls == nil {
		s.Sysctls = map[string]string{}
	}
	return s, nil
}

// exists says whether a state file was found.
func (s *State) exists() bool {
	_, err := os.Stat(s.path)
	return err == nil
}

// save writes the state atomically.
func (s *State) save() error {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o755); err != nil {
		return fmt.Errorf("create lab folder: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	return os.Rename(tmp, s.path)
}

// record adds v to list (once) and saves: call it before creating the thing.
func (s *State) record(list *[]string, v string) error {
	if !slices.Contains(*list, v) {
		*list = append(*list, v)
	}
	return s.save()
}
