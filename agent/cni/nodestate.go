package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
)

const (
	// DefaultNodeStatePath is where the plexus agent writes the node's [NodeState] and where the
	// plugin reads it unless the conflist says otherwise (field "nodeStatePath"). /run is a tmpfs:
	// after a reboot the file is absent until the agent has fetched the node's pod CIDRs again, so
	// the plugin never hands out addresses from a stale CIDR.
	DefaultNodeStatePath = "/run/plexus/node-state.json"
	// NodeStateVersion is the version of the NodeState format this package writes and reads.
	NodeStateVersion = 1
	// nodeStateMode lets the runtime (root) and humans read the file; only the agent writes it.
	nodeStateMode = 0o644
)

// ErrNodeStateMissing is returned (wrapped) by [ReadNodeState] when the file does not exist,
// i.e. the agent has not (yet) published the node's pod CIDRs.
var ErrNodeStateMissing = errors.New("node state file does not exist")

// NodeState is what the plexus agent tells the plugin about its node: the contract between the
// two, written as versioned JSON to a local file (not read from the API server: the runtime calls
// the plugin for every pod and must not depend on the control plane being reachable).
//
// Example:
//
//	{"version":1,"nodeName":"node-a","podCIDRs":{"ipv4":"10.244.1.0/24","ipv6":"fd10:244:0:1::/64"},"mtu":1450}
type NodeState struct {
	// Version is NodeStateVersion. A reader refuses a newer version rather than misread it.
	Version int `json:"version"`
	// NodeName is the Kubernetes node name; informational (error messages, debugging).
	NodeName string `json:"nodeName,omitempty"`
	// PodCIDRs are the node's pod CIDRs, at most one per family. A family without a CIDR gets no
	// address; a state with none means the agent is not ready for pods.
	PodCIDRs PodCIDRs `json:"podCIDRs"`
	// MTU is the MTU for pod interfaces (the uplink MTU minus any overlay overhead). A non-zero
	// "mtu" in the conflist takes precedence; 0 in both means 1500.
	MTU int `json:"mtu,omitempty"`
	// ReservedIPs are addresses inside the pod CIDRs the agent uses itself (for example on an
	// overlay device); the plugin never hands them to pods.
	ReservedIPs []netip.Addr `json:"reservedIPs,omitempty"`
	// PolicySocket, when set, says that NetworkPolicy is enforced on the node: ADD then asks the
	// agent at this unix socket to enforce the pod's policies at its new addresses and fails
	// unless the agent confirms (see docs/network-policy-cni.md). Empty: no policy, no wait.
	PolicySocket string `json:"policySocket,omitempty"`
}

// PodCIDRs holds a node's pod CIDR per IP family; an absent family is the zero Prefix.
type PodCIDRs struct {
	// IPv4 is the node's IPv4 pod CIDR, e.g. 10.244.1.0/24.
	IPv4 netip.Prefix `json:"ipv4,omitzero"`
	// IPv6 is the node's IPv6 pod CIDR, e.g. fd10:244:0:1::/64.
	IPv6 netip.Prefix `json:"ipv6,omitzero"`
}

// List returns the configured CIDRs, IPv4 first.
func (c PodCIDRs) List() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range []netip.Prefix{c.IPv4, c.IPv6} {
		if p.IsValid() {
			out = append(out, p)
		}
	}
	return out
}

// Validate reports the first problem that would make the plugin misbehave, naming the field.
// A state without CIDRs is valid (the agent may publish its MTU first); see [PodCIDRs.List].
func (st *NodeState) Validate() error {
	if st.Version != NodeStateVersion {
		return fmt.Errorf("field \"version\": %d is not supported (this plugin reads version %d; upgrade the plugin and the agent together)",
			st.Version, NodeStateVersion)
	}
	if err := validatePodCIDR("podCIDRs.ipv4", st.PodCIDRs.IPv4, true); err != nil {
		return err
	}
	if err := validatePodCIDR("podCIDRs.ipv6", st.PodCIDRs.IPv6, false); err != nil {
		return err
	}
	if err := validateMTU("mtu", st.MTU); err != nil {
		return err
	}
	if st.PolicySocket != "" {
		if err := validateAbsPath("policySocket", st.PolicySocket); err != nil {
			return err
		}
	}
	for _, ip := range st.ReservedIPs {
		if !ip.IsValid() {
			return fmt.Errorf("field \"reservedIPs\": empty address")
		}
	}
	return nil
}

func validatePodCIDR(field string, p netip.Prefix, wantIPv4 bool) error {
	if !p.IsValid() {
		return nil
	}
	family := "IPv6"
	if wantIPv4 {
		family = "IPv4"
	}
	if p.Addr().Is4() != wantIPv4 || p.Addr().Is4In6() {
		return fmt.Errorf("field %q: %s is not an %s prefix", field, p, family)
	}
	if p.Masked() != p {
		return fmt.Errorf("field %q: %s has host bits set (did you mean %s?)", field, p, p.Masked())
	}
	if UsableAddresses(p) == "0" {
		return fmt.Errorf("field %q: %s has no address to hand out (the network address is never used)", field, p)
	}
	return nil
}

// WriteNodeState validates st and writes it to path atomically (temporary file + rename), creating
// the directory if needed, so a plugin running concurrently reads the old or the new state, never
// a partial one. A zero Version is set to NodeStateVersion.
func WriteNodeState(path string, st NodeState) error {
	if st.Version == 0 {
		st.Version = NodeStateVersion
	}
	if err := st.Validate(); err != nil {
		return fmt.Errorf("invalid node state for %s: %w", path, err)
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode node state: %w", err)
	}
	if err := writeFileAtomic(path, append(data, '\n'), nodeStateMode); err != nil {
		return fmt.Errorf("write node state: %w", err)
	}
	return nil
}

// ReadNodeState reads and validates the node state at path. A missing file yields an error
// wrapping [ErrNodeStateMissing]; a malformed one an error naming the file and the field.
func ReadNodeState(path string) (*NodeState, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrNodeStateMissing)
	}
	if err != nil {
		return nil, fmt.Errorf("read node state: %w", err)
	}
	var st NodeState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("node state %s is not valid JSON: %w", path, err)
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("node state %s: %w", path, err)
	}
	return &st, nil
}
