package cni

import (
	"fmt"
	"path/filepath"
)

const (
	// DefaultBinDir is where container runtimes look for CNI plugin binaries.
	DefaultBinDir = "/opt/cni/bin"
	// DefaultConfDir is where container runtimes look for CNI network configurations.
	DefaultConfDir = "/etc/cni/net.d"
	// ConflistFileName is the conflist's file name. Runtimes use the lexically first file in the
	// conf directory; "10-" sorts before most other plugins' files.
	ConflistFileName = "10-plexus.conflist"
	// binaryMode: executable by the runtime, writable only by root.
	binaryMode = 0o755
	// conflistMode: readable by everyone, like other CNI configs.
	conflistMode = 0o644
)

// Install puts plexus-cni in place for the node's container runtime: it copies srcBinary to
// <binDir>/plexus-cni and writes <confDir>/10-plexus.conflist rendered from conf. Empty binDir
// and confDir mean DefaultBinDir and DefaultConfDir.
//
// Both files are replaced atomically (temporary file + rename): the runtime may exec the plugin
// or read the conf directory at any moment, and an in-place write would expose a half-written
// file (or fail with ETXTBSY while the old binary runs). The binary goes first because the
// runtime treats the network as ready as soon as a conflist appears.
func Install(srcBinary, binDir, confDir string, conf ConfigOptions) error {
	if binDir == "" {
		binDir = DefaultBinDir
	}
	if confDir == "" {
		confDir = DefaultConfDir
	}
	data, err := RenderConflist(conf)
	if err != nil {
		return fmt.Errorf("install plexus-cni: render conflist: %w", err)
	}
	dst := filepath.Join(binDir, PluginType)
	if err := copyFileAtomic(srcBinary, dst, binaryMode); err != nil {
		return fmt.Errorf("install plexus-cni binary to %s: %w", dst, err)
	}
	confPath := filepath.Join(confDir, ConflistFileName)
	if err := writeFileAtomic(confPath, data, conflistMode); err != nil {
		return fmt.Errorf("install plexus-cni conflist %s: %w", confPath, err)
	}
	return nil
}
