package cni

import (
	"encoding/json"
	"fmt"
	"regexp"
)

const (
	// PluginType is the conflist "type" of plexus-cni and the name of its binary in the CNI bin
	// directory: the runtime execs <binDir>/<type>.
	PluginType = "plexus-cni"
	// DefaultNetworkName is the conflist "name" of the pod network.
	DefaultNetworkName = "plexus"
	// ConflistCNIVersion is the CNI spec version of the conflist the agent writes: 1.1.0 is the
	// first with GC and STATUS.
	ConflistCNIVersion = "1.1.0"
)

// networkNameRE is what libcni accepts as a network name.
var networkNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`)

// ConfigOptions are the knobs of the conflist the agent writes. Zero values mean the defaults.
type ConfigOptions struct {
	// NetworkName is the conflist "name"; default DefaultNetworkName.
	NetworkName string
	// NodeStatePath is where the agent writes the [NodeState]; default DefaultNodeStatePath.
	NodeStatePath string
	// DataDir is the allocation store; default DefaultDataDir.
	DataDir string
	// MTU, if non-zero, overrides the node state's MTU. Leave it 0 so MTU changes flow through the
	// node state file without rewriting the conflist.
	MTU int
}

// conflist is the rendered file, fields in the order a person reads them.
type conflist struct {
	CNIVersion string       `json:"cniVersion"`
	Name       string       `json:"name"`
	Plugins    []pluginConf `json:"plugins"`
}

type pluginConf struct {
	Type          string          `json:"type"`
	NodeStatePath string          `json:"nodeStatePath"`
	DataDir       string          `json:"dataDir"`
	MTU           int             `json:"mtu,omitempty"`
	Capabilities  map[string]bool `json:"capabilities"`
}

// PortMappingsCapability is the runtime capability through which plexus-cni receives a pod's
// host ports (runtimeConfig.portMappings).
const PortMappingsCapability = "portMappings"

// withDefaults fills in zero fields.
func (o ConfigOptions) withDefaults() ConfigOptions {
	if o.NetworkName == "" {
		o.NetworkName = DefaultNetworkName
	}
	if o.NodeStatePath == "" {
		o.NodeStatePath = DefaultNodeStatePath
	}
	if o.DataDir == "" {
		o.DataDir = DefaultDataDir
	}
	return o
}

// RenderConflist returns the conflist file for opts: cniVersion ConflistCNIVersion, one plugin of
// type PluginType. It is pure (same options, same bytes) so the agent can compare before writing.
func RenderConflist(opts ConfigOptions) ([]byte, error) {
	o := opts.withDefaults()
	if !networkNameRE.MatchString(o.NetworkName) {
		return nil, fmt.Errorf("network name %q: use letters, digits, '.', '_' and '-', starting with a letter or digit", o.NetworkName)
	}
	if err := validateAbsPath("nodeStatePath", o.NodeStatePath); err != nil {
		return nil, err
	}
	if err := validateAbsPath("dataDir", o.DataDir); err != nil {
		return nil, err
	}
	if err := validateMTU("mtu", o.MTU); err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(conflist{
		CNIVersion: ConflistCNIVersion,
		Name:       o.NetworkName,
		Plugins: []pluginConf{{
			Type:          PluginType,
			NodeStatePath: o.NodeStatePath,
			DataDir:       o.DataDir,
			MTU:           o.MTU,
			Capabilities:  map[string]bool{PortMappingsCapability: true},
		}},
	}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode conflist: %w", err)
	}
	return append(data, '\n'), nil
}
