package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/plexus-net/plexus/agent/hostport"
	"github.com/plexus-net/plexus/agent/policy/admit/wire"
)

const (
	// DefaultDataDir is where the plugin keeps one file per allocated address plus its lock file,
	// unless the conflist says otherwise (field "dataDir"). It is on persistent storage so
	// allocations outlive the plugin process and the agent.
	DefaultDataDir = "/var/lib/cni/plexus"
	// DefaultMTU is used when neither the conflist nor the node state sets an MTU.
	DefaultMTU = 1500
	// minMTU is the smallest MTU an IPv4 host must accept (RFC 791); minIPv6MTU the IPv6 minimum
	// (RFC 8200), below which the kernel removes IPv6 from the link.
	minMTU     = 576
	minIPv6MTU = 1280
	maxMTU     = 65535
	// DefaultPolicyTimeout is how long ADD waits for the agent to enforce NetworkPolicy for a new
	// pod before it fails (and the kubelet retries).
	DefaultPolicyTimeout = wire.DefaultClientTimeout
	// maxPolicyTimeoutSeconds keeps ADD well inside the kubelet's sandbox creation timeout.
	maxPolicyTimeoutSeconds = 120
)

// Config is the plugin's view of its network configuration: the conflist entry for plexus-cni
// plus what the runtime injects (cniVersion, name, prevResult, valid attachments).
type Config struct {
	// Net is the standard part, with PrevResult parsed for CHECK and ValidAttachments for GC.
	Net types.PluginConf
	// NodeStatePath is the agent's [NodeState] file (conflist "nodeStatePath").
	NodeStatePath string
	// DataDir is the allocation store directory (conflist "dataDir").
	DataDir string
	// MTU overrides the node state's MTU when non-zero (conflist "mtu").
	MTU int
	// PolicyTimeout bounds ADD's wait for the agent to enforce NetworkPolicy for the pod
	// (conflist "policyTimeoutSeconds"; 0 means DefaultPolicyTimeout).
	PolicyTimeout time.Duration
	// PortMappings are the pod's host ports, from the runtime's "runtimeConfig.portMappings"
	// (the portMappings capability the conflist declares).
	PortMappings []hostport.RuntimePortMapping
}

// pluginFields are the conflist fields specific to plexus-cni.
type pluginFields struct {
	NodeStatePath string `json:"nodeStatePath"`
	DataDir       string `json:"dataDir"`
	MTU           int    `json:"mtu"`
	// PolicyTimeoutSeconds: see Config.PolicyTimeout.
	PolicyTimeoutSeconds int `json:"policyTimeoutSeconds"`
	RuntimeConfig        struct {
		PortMappings []hostport.RuntimePortMapping `json:"portMappings"`
	} `json:"runtimeConfig"`
}

// ParseConfig decodes and validates the configuration the runtime passes on stdin, applying
// defaults. Errors are *types.Error: ErrDecodingFailure for JSON that does not parse,
// ErrInvalidNetworkConfig naming the field for values that are wrong. Unknown fields are allowed
// because runtimes inject their own (runtimeConfig, args, capabilities).
func ParseConfig(data []byte) (*Config, error) {
	var net types.PluginConf
	if err := json.Unmarshal(data, &net); err != nil {
		return nil, configError(err)
	}
	var f pluginFields
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, configError(err)
	}
	if err := version.ParsePrevResult(&net); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "invalid plexus-cni config: field \"prevResult\": "+err.Error(), "")
	}
	c := &Config{Net: net, NodeStatePath: f.NodeStatePath, DataDir: f.DataDir, MTU: f.MTU, PortMappings: f.RuntimeConfig.PortMappings}
	if c.NodeStatePath == "" {
		c.NodeStatePath = DefaultNodeStatePath
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if f.PolicyTimeoutSeconds < 0 || f.PolicyTimeoutSeconds > maxPolicyTimeoutSeconds {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf(
			"invalid plexus-cni config: field \"policyTimeoutSeconds\": %d is out of range (1-%d, or 0 for the default)",
			f.PolicyTimeoutSeconds, maxPolicyTimeoutSeconds), "")
	}
	c.PolicyTimeout = time.Duration(f.PolicyTimeoutSeconds) * time.Second
	if c.PolicyTimeout == 0 {
		c.PolicyTimeout = DefaultPolicyTimeout
	}
	if err := c.validate(); err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "invalid plexus-cni config: "+err.Error(), "")
	}
	return c, nil
}

func (c *Config) validate() error {
	if c.Net.Name == "" {
		return errors.New(`field "name": missing (the network name the runtime uses)`)
	}
	if err := validateAbsPath("nodeStatePath", c.NodeStatePath); err != nil {
		return err
	}
	if err := validateAbsPath("dataDir", c.DataDir); err != nil {
		return err
	}
	return validateMTU("mtu", c.MTU)
}

func validateAbsPath(field, p string) error {
	if !filepath.IsAbs(p) {
		return fmt.Errorf("field %q: %q is not an absolute path", field, p)
	}
	if filepath.Clean(p) != p {
		return fmt.Errorf("field %q: %q is not a clean path (did you mean %q?)", field, p, filepath.Clean(p))
	}
	return nil
}

// validateMTU accepts 0 (unset) or an MTU between 576 and 65535.
func validateMTU(field string, mtu int) error {
	if mtu != 0 && (mtu < minMTU || mtu > maxMTU) {
		return fmt.Errorf("field %q: %d is out of range (%d-%d, or 0 for the default)", field, mtu, minMTU, maxMTU)
	}
	return nil
}

// effectiveMTU picks the MTU for a pod: the conflist's if set, else the node state's, else
// DefaultMTU; IPv6 needs at least 1280 or the kernel silently drops IPv6 from the link.
func effectiveMTU(c *Config, st *NodeState) (int, error) {
	mtu, from := DefaultMTU, "the default"
	switch {
	case c.MTU != 0:
		mtu, from = c.MTU, `the config's "mtu"`
	case st.MTU != 0:
		mtu, from = st.MTU, `the node state's "mtu"`
	}
	if st.PodCIDRs.IPv6.IsValid() && mtu < minIPv6MTU {
		return 0, fmt.Errorf("MTU %d (from %s) is below %d, the minimum for IPv6, and the node has IPv6 pod CIDR %s",
			mtu, from, minIPv6MTU, st.PodCIDRs.IPv6)
	}
	return mtu, nil
}

// configError turns a JSON decoding error into a CNI error that names the field.
func configError(err error) *types.Error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		field := typeErr.Field
		if field == "" {
			field = "(top level)"
		}
		return types.NewError(types.ErrInvalidNetworkConfig,
			fmt.Sprintf("invalid plexus-cni config: field %q: want %s, got a JSON %s", field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value), "")
	}
	return types.NewError(types.ErrDecodingFailure, "plexus-cni config is not valid JSON: "+err.Error(), "")
}

// jsonKind names a Go kind the way a person editing JSON thinks of it.
func jsonKind(goKind string) string {
	switch {
	case strings.HasPrefix(goKind, "int"), strings.HasPrefix(goKind, "uint"), strings.HasPrefix(goKind, "float"):
		return "a number"
	case goKind == "string":
		return "a string"
	case goKind == "bool":
		return "true or false"
	case goKind == "slice", goKind == "array":
		return "a list"
	case goKind == "map", goKind == "struct":
		return "an object"
	}
	return goKind
}
