package lab

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// The lab's upstream DNS server: hack/images/dnsupstream, run in the underlay namespace (the lab's
// own) on the bridge's addresses. Every node's kubelet hands its resolv.conf to pods with
// dnsPolicy Default, CoreDNS among them, so CoreDNS' `forward . /etc/resolv.conf` reaches this
// server, which answers LabDNSZone and refuses every other name: no lookup leaves the machine.
const (
	// DNSUpstreamRole is the process role of the upstream server in the lab's state.
	DNSUpstreamRole = "dns-upstream"
	// LabDNSZone is the zone the upstream answers (dnsupstream.DefaultZone; not imported, so
	// plexusctl does not link a DNS server library).
	LabDNSZone = "lab.plexus.test."
	// LabDNSIdentity is the TXT answer of every name in LabDNSZone.
	LabDNSIdentity = "plexus-lab-upstream"
	// nodeResolvConfFile is the resolv.conf the lab writes into every node's folder for its kubelet.
	nodeResolvConfFile = "resolv.conf"
)

// DNSUpstreamAddrs are where the lab's upstream listens: the underlay gateway's addresses, port 53.
func (c Config) DNSUpstreamAddrs() []netip.AddrPort {
	return []netip.AddrPort{netip.AddrPortFrom(c.gatewayV4(), 53), netip.AddrPortFrom(c.gatewayV6(), 53)}
}

// dnsUpstreamArgs is the upstream's command line: it answers the gateway's own name in the zone,
// so a lookup that crossed CoreDNS shows where it ended.
func (c Config) dnsUpstreamArgs() []string {
	args := []string{filepath.Join(c.CacheDir, "bin", "dnsupstream"), "-zone", LabDNSZone, "-identity", LabDNSIdentity,
		fmt.Sprintf("-host=gateway=%s,%s", c.gatewayV4(), c.gatewayV6())}
	for _, a := range c.DNSUpstreamAddrs() {
		args = append(args, "-listen", a.String())
	}
	return args
}

// startDNSUpstream runs the upstream in the underlay namespace (kept when it already runs).
func (c Config) startDNSUpstream(st *State) error {
	// It starts before the control plane, which otherwise makes the log folder.
	if err := os.MkdirAll(c.LogDir(), 0o755); err != nil {
		return err
	}
	return c.startProcess(st, DNSUpstreamRole, c.UnderlayNetns(), filepath.Join(c.LogDir(), "dns-upstream.log"), c.dnsUpstreamArgs()...)
}

// nodeResolvConf is the resolv.conf of every node's kubelet (its resolvConf setting): the lab's
// upstream only, never the machine's resolvers.
func (c Config) nodeResolvConf() string {
	var b strings.Builder
	for _, a := range c.DNSUpstreamAddrs() {
		fmt.Fprintf(&b, "nameserver %s\n", a.Addr())
	}
	return b.String()
}

// withLabResolvConf points a node's kubelet configuration at the lab's resolv.conf in nodeDir.
func withLabResolvConf(kubeletYAML, nodeDir string) string {
	return kubeletYAML + "resolvConf: " + filepath.Join(nodeDir, nodeResolvConfFile) + "\n"
}
