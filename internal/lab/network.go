package lab

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/internal/hostnet"
)

// sampleClusterNetwork is the ClusterNetwork the lab applies; its ranges configure the control plane.
const sampleClusterNetwork = "config/samples/plexus_v1alpha1_clusternetwork.yaml"

// sample reads the sample ClusterNetwork of the checkout.
func (c Config) sample() (*v1.ClusterNetwork, error) {
	b, err := os.ReadFile(filepath.Join(c.RepoRoot, sampleClusterNetwork))
	if err != nil {
		return nil, fmt.Errorf("read the sample ClusterNetwork: %w", err)
	}
	var cn v1.ClusterNetwork
	if err := yaml.Unmarshal(b, &cn); err != nil {
		return nil, fmt.Errorf("parse %s: %w", sampleClusterNetwork, err)
	}
	return &cn, nil
}

// serviceCIDRs are the sample's service ranges (the API server's --service-cluster-ip-range).
func (c Config) serviceCIDRs() ([]string, error) {
	cn, err := c.sample()
	if err != nil {
		return nil, err
	}
	if len(cn.Spec.ServiceNetwork.CIDRs) == 0 {
		return nil, fmt.Errorf("%s sets no serviceNetwork.cidrs", sampleClusterNetwork)
	}
	out := make([]string, 0, len(cn.Spec.ServiceNetwork.CIDRs))
	for _, c := range cn.Spec.ServiceNetwork.CIDRs {
		out = append(out, string(c))
	}
	return out, nil
}

// labRanges are every range the lab puts addresses or routes in.
func (c Config) labRanges() ([]netip.Prefix, error) {
	cn, err := c.sample()
	if err != nil {
		return nil, err
	}
	out := []netip.Prefix{c.UnderlayV4, c.UnderlayV6}
	for _, s := range append(append([]v1.CIDR{}, cn.Spec.PodNetwork.CIDRs...), cn.Spec.ServiceNetwork.CIDRs...) {
		p, err := netip.ParsePrefix(string(s))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sampleClusterNetwork, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// CheckRanges refuses, naming the clash, when any lab range overlaps an address or route of the
// machine itself.
func CheckRanges(c Config) error {
	ranges, err := c.labRanges()
	if err != nil {
		return err
	}
	if err := hostnet.CheckNoOverlap(ranges...); err != nil {
		return fmt.Errorf("lab ranges %v: %w", ranges, err)
	}
	return nil
}

// ip runs an ip(8) command.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// netnsExists says whether /run/netns/name exists.
func netnsExists(name string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", name))
	return err == nil
}

// linkExists says whether a link exists in a namespace.
func linkExists(ns, link string) bool {
	return exec.Command("ip", "-n", ns, "link", "show", "dev", link).Run() == nil
}

// addNetns creates a network namespace (recorded first) with its loopback up.
func addNetns(st *State, name string) error {
	if err := st.record(&st.Netns, name); err != nil {
		return err
	}
	if !netnsExists(name) {
		if err := ip("netns", "add", name); err != nil {
			return err
		}
	}
	return ip("-n", name, "link", "set", "lo", "up")
}

// setupNetwork creates the underlay namespace with its bridge and one namespace per node, wired to
// the bridge by a veth, with the node's addresses and default routes through the underlay. Nothing
// here touches the machine's own namespace.
func setupNetwork(c Config, st *State) error {
	if err := addNetns(st, c.UnderlayNetns()); err != nil {
		return err
	}
	// Links are made once; addresses and routes are replaced, so an Up aborted halfway through
	// wiring is completed by the next.
	if !linkExists(c.UnderlayNetns(), BridgeName) {
		if err := ip("-n", c.UnderlayNetns(), "link", "add", BridgeName, "type", "bridge"); err != nil {
			return err
		}
	}
	for _, s := range [][]string{
		{"-n", c.UnderlayNetns(), "addr", "replace", netip.PrefixFrom(c.gatewayV4(), c.UnderlayV4.Bits()).String(), "dev", BridgeName},
		{"-n", c.UnderlayNetns(), "addr", "replace", netip.PrefixFrom(c.gatewayV6(), c.UnderlayV6.Bits()).String(), "dev", BridgeName, "nodad"},
		{"-n", c.UnderlayNetns(), "link", "set", BridgeName, "up"},
	} {
		if err := ip(s...); err != nil {
			return err
		}
	}
	for _, n := range c.nodes() {
		if err := c.wireNode(st, n); err != nil {
			return fmt.Errorf("wire node %s: %w", n.Name, err)
		}
	}
	c.step("network: underlay %s (%s, %s) and %d node namespaces", c.UnderlayNetns(), c.UnderlayV4, c.UnderlayV6, c.Nodes)
	return nil
}
