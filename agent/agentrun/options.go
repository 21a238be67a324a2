package agentrun

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/plexus-net/plexus/agent"
	"github.com/plexus-net/plexus/agent/cni"
)

// Defaults of the agent's flags.
const (
	// EnvNodeName is the environment variable --node-name defaults to (the DaemonSet sets it
	// from spec.nodeName).
	EnvNodeName = "NODE_NAME"
	// DefaultMetricsAddress serves /metrics.
	DefaultMetricsAddress = ":9590"
	// DefaultHealthAddress serves /healthz and /readyz.
	DefaultHealthAddress = ":9591"
	// DisabledAddress turns a server off.
	DisabledAddress = "0"
)

// Options are plexus-agent's command-line options.
type Options struct {
	// NodeName is the node the agent runs on.
	NodeName string
	// Kubeconfig is a kubeconfig file; empty means in-cluster.
	Kubeconfig string
	// Netns is a network namespace path whose data plane the agent programs; empty: its own.
	Netns string
	// CNIBinDir, CNIConfDir and CNIDataDir are where the plugin, its conflist and its
	// allocation store go.
	CNIBinDir, CNIConfDir, CNIDataDir string
	// CNIPluginBinary is the plexus-cni binary to install.
	CNIPluginBinary string
	// NodeStateFile is the CNI node state file.
	NodeStateFile string
	// NodeIP is the --node-ip override, as given.
	NodeIP string
	// MetricsAddress and HealthAddress are the servers' listen addresses ("0": off).
	MetricsAddress, HealthAddress string
	// ResyncPeriod is the period of full resyncs.
	ResyncPeriod time.Duration
}

// BindFlags defines the flags on fs, with their defaults and help.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.NodeName, "node-name", os.Getenv(EnvNodeName),
		"Name of the Node this agent runs on (default: $"+EnvNodeName+").")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "",
		"Kubeconfig file to reach the API server; empty: the in-cluster service account.")
	fs.StringVar(&o.Netns, "netns", "",
		"Program the data plane (routes, nftables) of the network namespace bound at this path, while talking to the API "+
			"from the agent's own namespace. Empty: the agent's own namespace (the node's, with host networking).")
	fs.StringVar(&o.CNIBinDir, "cni-bin-dir", cni.DefaultBinDir, "Directory the container runtime execs CNI plugins from.")
	fs.StringVar(&o.CNIConfDir, "cni-conf-dir", cni.DefaultConfDir, "Directory the container runtime reads CNI network configurations from.")
	fs.StringVar(&o.CNIDataDir, "cni-data-dir", cni.DefaultDataDir, "Directory of plexus-cni's address allocation store (written into the conflist).")
	fs.StringVar(&o.CNIPluginBinary, "cni-plugin-binary", "",
		"plexus-cni binary to install into --cni-bin-dir (default: plexus-cni next to this executable).")
	fs.StringVar(&o.NodeStateFile, "node-state-file", cni.DefaultNodeStatePath,
		"File the agent writes the node's pod CIDRs and MTU to for plexus-cni (written into the conflist).")
	fs.StringVar(&o.NodeIP, "node-ip", "",
		"Node IPs to use, comma-separated, at most one per family. Rule: the Node's "+agent.NodeIPAnnotation+
			" annotation, else this flag, else the Node's first InternalIP of each family.")
	fs.StringVar(&o.MetricsAddress, "metrics-bind-address", DefaultMetricsAddress, "Address of the Prometheus /metrics endpoint; \"0\" turns it off.")
	fs.StringVar(&o.HealthAddress, "health-probe-bind-address", DefaultHealthAddress,
		"Address of /healthz and /readyz (ready after the first successful sync); \"0\" turns it off.")
	fs.DurationVar(&o.ResyncPeriod, "resync-period", agent.DefaultResyncPeriod, "Period of full resyncs, which repair drift of the data plane.")
}

// Complete checks the options and fills in derived defaults.
func (o *Options) Complete() error {
	if o.NodeName == "" {
		return fmt.Errorf("--node-name is required (or set $%s)", EnvNodeName)
	}
	if o.NodeIP != "" {
		if _, err := agent.ParseNodeIPs(o.NodeIP); err != nil {
			return fmt.Errorf("--node-ip: %w", err)
		}
	}
	if o.CNIPluginBinary == "" {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the agent's executable to locate plexus-cni (set --cni-plugin-binary): %w", err)
		}
		o.CNIPluginBinary = filepath.Join(filepath.Dir(self), cni.PluginType)
	}
	if _, err := os.Stat(o.CNIPluginBinary); err != nil {
		return fmt.Errorf("--cni-plugin-binary: %w", err)
	}
	return nil
}

// nodeIPOverride returns the parsed --node-ip (Complete has checked it).
func (o *Options) nodeIPOverride() []netip.Addr {
	if o.NodeIP == "" {
		return nil
	}
	ips, _ := agent.ParseNodeIPs(o.NodeIP)
	return ips
}
