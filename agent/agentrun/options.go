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
	"github.com/plexus-net/plexus/agent/connectivity"
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
	// PolicySocket is where the agent answers plexus-cni's pod admission requests (package
	// agent/policy/admit); empty: policy.sock next to NodeStateFile; "none": no admission.
	PolicySocket string
	// NodeIP is the --node-ip override, as given.
	NodeIP string
	// MetricsAddress and HealthAddress are the servers' listen addresses ("0": off).
	MetricsAddress, HealthAddress string
	// ResyncPeriod is the period of full resyncs.
	ResyncPeriod time.Duration
	// ProxyHealthAddress serves the service proxy's /healthz and /livez ("0": off).
	ProxyHealthAddress string
	// ProxyHealthTimeout is how long a change may wait for a successful sync before those
	// answer 503; zero: twice ResyncPeriod.
	ProxyHealthTimeout time.Duration
	// ConntrackTCPEstablishedTimeout and ConntrackTCPCloseWaitTimeout are written to the
	// node's conntrack sysctls; zero leaves the kernel's.
	ConntrackTCPEstablishedTimeout, ConntrackTCPCloseWaitTimeout time.Duration
	// ProcSysDir is where the agent writes sysctls (its /proc/sys, or the host's /proc/sys/net
	// mounted below it: a container's own /proc/sys is read-only).
	ProcSysDir string
	// ConnectivityProbeInterval is the period of the connectivity probes of peers and DNS (0:
	// off); ConnectivityFailureThreshold the failed probes in a row that make a peer unreachable;
	// ConnectivityProbePort the UDP port of every node's probe responder.
	ConnectivityProbeInterval    time.Duration
	ConnectivityFailureThreshold int
	ConnectivityProbePort        uint
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
	fs.StringVar(&o.PolicySocket, "policy-socket", "",
		"Unix socket on which plexus-cni's ADD asks the agent to enforce NetworkPolicy on a new pod before the pod gets its "+
			"interface (default: policy.sock beside --node-state-file; \"none\": ADD does not wait, and a new pod may accept "+
			"traffic for a moment before its policies are in force).")
	fs.StringVar(&o.NodeIP, "node-ip", "",
		"Node IPs to use, comma-separated, at most one per family. Rule: the Node's "+agent.NodeIPAnnotation+
			" annotation, else this flag, else the Node's first InternalIP of each family.")
	fs.StringVar(&o.MetricsAddress, "metrics-bind-address", DefaultMetricsAddress, "Address of the Prometheus /metrics endpoint; \"0\" turns it off.")
	fs.StringVar(&o.HealthAddress, "health-probe-bind-address", DefaultHealthAddress,
		"Address of /healthz and /readyz (ready after the first successful sync); \"0\" turns it off.")
	fs.DurationVar(&o.ResyncPeriod, "resync-period", agent.DefaultResyncPeriod, "Period of full resyncs, which repair drift of the data plane.")
	fs.StringVar(&o.ProxyHealthAddress, "proxy-healthz-bind-address", DefaultProxyHealthAddress,
		"Address of the service proxy's /healthz and /livez, as kube-proxy serves them (503 when a change has waited longer "+
			"than --proxy-healthz-timeout for a successful sync; /healthz also while the Node is being deleted); \"0\" turns it off.")
	fs.DurationVar(&o.ProxyHealthTimeout, "proxy-healthz-timeout", 0,
		"How long a change may wait for a successful sync before the service proxy reports unhealthy (0: twice --resync-period).")
	fs.DurationVar(&o.ConntrackTCPEstablishedTimeout, "conntrack-tcp-timeout-established", DefaultConntrackTCPEstablishedTimeout,
		"nf_conntrack_tcp_timeout_established to set in the node's network namespace (kube-proxy's default); 0 leaves the kernel's.")
	fs.DurationVar(&o.ConntrackTCPCloseWaitTimeout, "conntrack-tcp-timeout-close-wait", DefaultConntrackTCPCloseWaitTimeout,
		"nf_conntrack_tcp_timeout_close_wait to set in the node's network namespace (kube-proxy's default); 0 leaves the kernel's.")
	fs.StringVar(&o.ProcSysDir, "proc-sys-dir", procSysDir,
		"Directory of the sysctls the agent writes (net/netfilter/...). A container's own /proc/sys is read-only: the DaemonSet "+
			"mounts the host's /proc/sys/net below /host/proc/sys and passes that.")
	fs.DurationVar(&o.ConnectivityProbeInterval, "connectivity-probe-interval", DefaultConnectivityProbeInterval,
		"Period of the UDP probes of every peer node's probe address over the pod network and of the cluster DNS "+
			"(ConnectivityHealthy condition); 0 turns them off.")
	fs.IntVar(&o.ConnectivityFailureThreshold, "connectivity-failure-threshold", connectivity.DefaultFailureThreshold,
		"Probes in a row a peer (or DNS) must fail to be reported in ConnectivityHealthy.")
	fs.UintVar(&o.ConnectivityProbePort, "connectivity-probe-port", connectivity.DefaultPort,
		"UDP port of the connectivity probe responder on the node's probe addresses; the same on every node.")
}

// proxyHealthTimeout returns --proxy-healthz-timeout, or its default.
func (o *Options) proxyHealthTimeout() time.Duration {
	if o.ProxyHealthTimeout > 0 {
		return o.ProxyHealthTimeout
	}
	return proxyHealthTimeoutFactor * o.ResyncPeriod
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
	switch o.PolicySocket {
	case "":
		o.PolicySocket = filepath.Join(filepath.Dir(o.NodeStateFile), "policy.sock")
	case "none":
		o.PolicySocket = ""
	}
	if o.ConntrackTCPEstablishedTimeout < 0 || o.ConntrackTCPCloseWaitTimeout < 0 || o.ProxyHealthTimeout < 0 {
		return fmt.Errorf("--conntrack-tcp-timeout-*, --proxy-healthz-timeout: a duration may not be negative")
	}
	if o.ConnectivityProbeInterval != 0 && o.ConnectivityProbeInterval < connectivityMinInterval {
		return fmt.Errorf("--connectivity-probe-interval: at least %v (or 0: off)", connectivityMinInterval)
	}
	if o.ConnectivityFailureThreshold < 0 || o.ConnectivityProbePort > 65535 {
		return fmt.Errorf("--connectivity-failure-threshold may not be negative and --connectivity-probe-port must be a UDP port")
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
