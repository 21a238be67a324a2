package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// AddNode starts node i in a running lab, as a machine joining the cluster: its network namespace
// wired to the underlay, a kubelet client certificate (system:node:<name>, signed by the lab CA,
// since the API server's token file is read only at its start), its containerd with the lab images
// and its kubelet. It returns once containerd serves; the node registers itself and turns Ready
// when Plexus networks it. Everything it makes is recorded in the state file, so Down removes it
// too. i must be above the lab's node count.
func AddNode(c Config, i int) (Node, error) {
	n := c.NodeAt(i)
	if os.Geteuid() != 0 {
		return n, errors.New("adding a lab node needs root")
	}
	st, err := loadState(c.Dir)
	if err != nil {
		return n, err
	}
	if !st.exists() || !st.Complete {
		return n, fmt.Errorf("no complete lab in %s: run lab up first", c.Dir)
	}
	if i <= st.Nodes || i > 200 {
		return n, fmt.Errorf("node %d: want a number above the lab's %d nodes (and at most 200)", i, st.Nodes)
	}
	if err := c.wireNode(st, n); err != nil {
		return n, fmt.Errorf("wire node %s: %w", n.Name, err)
	}
	p, err := loadOrCreatePKI(filepath.Join(c.Dir, "pki"))
	if err != nil {
		return n, err
	}
	ips := []net.IP{net.IP(n.IPv4.AsSlice()), net.IP(n.IPv6.AsSlice())}
	if err := p.issue("kubelet-"+n.Name, "system:node:"+n.Name, []string{"system:nodes"}, ips, []string{n.Name}, true); err != nil {
		return n, err
	}
	if err := p.issue("kubelet-client-"+n.Name, "system:node:"+n.Name, []string{"system:nodes"}, nil, nil, false); err != nil {
		return n, err
	}
	_ = os.Remove(filepath.Join(c.nodeDir(n), imagesReady))
	if err := c.startJoiningNode(st, p, n); err != nil {
		return n, fmt.Errorf("node %s: %w", n.Name, err)
	}
	specs, err := c.imageSpecs()
	if err != nil {
		return n, err
	}
	if err := c.importImages(st, n, specs); err != nil {
		return n, err
	}
	// Only now may the kubelet start: the pods the cluster sends it (the agent) find their images.
	if err := os.WriteFile(filepath.Join(c.nodeDir(n), imagesReady), nil, 0o644); err != nil {
		return n, err
	}
	c.step("node %s added (%s, %s)", n.Name, n.IPv4, n.IPv6)
	return n, nil
}

// RemoveNode takes node i out of the lab as a decommissioned machine leaves: it stops every process
// of the node (kubelet, containerd, pods), deletes its network namespace, cgroups and folder, and
// then deletes its Node object, as an administrator does. Removing a node that is not there is not
// an error.
func RemoveNode(c Config, i int) error {
	if os.Geteuid() != 0 {
		return errors.New("removing a lab node needs root")
	}
	n := c.NodeAt(i)
	st, err := loadState(c.Dir)
	if err != nil {
		return err
	}
	if !st.exists() {
		return fmt.Errorf("no lab in %s", c.Dir)
	}
	t0 := time.Now()
	rel := filepath.Join(c.CgroupRoot(), n.Name)
	killed, err := killCgroupTree(rel)
	if err != nil {
		return fmt.Errorf("stop node %s: %w", n.Name, err)
	}
	c.step("node %s: %d processes stopped in %s", n.Name, killed, time.Since(t0).Round(100*time.Millisecond))
	if netnsExists(n.Netns) {
		// The veth goes with the namespace, and its underlay end with it.
		if err := ip("netns", "delete", n.Netns); err != nil {
			return err
		}
	}
	for _, h := range nodeCgroupHierarchies() {
		if err := removeCgroupTree(filepath.Join(h, rel)); err != nil {
			return err
		}
	}
	// The node's bind mounts lived in its own mount namespace, gone with its processes.
	if err := os.RemoveAll(c.nodeDir(n)); err != nil {
		return fmt.Errorf("remove %s: %w", c.nodeDir(n), err)
	}
	st.Netns = slices.DeleteFunc(st.Netns, func(s string) bool { return s == n.Netns })
	delete(st.Processes, n.Name)
	if err := st.save(); err != nil {
		return err
	}
	if _, err := c.kubectl("", "delete", "node", n.Name, "--ignore-not-found", "--timeout", "60s"); err != nil {
		return err
	}
	c.step("node %s removed in %s", n.Name, time.Since(t0).Round(100*time.Millisecond))
	return nil
}

// wireNode creates a node's network namespace and wires it to the underlay bridge: for the nodes
// lab up starts (setupNetwork) and for those joining later. Every step is idempotent, so an
// aborted up is completed by the next.
func (c Config) wireNode(st *State, n Node) error {
	if !netnsExists(c.UnderlayNetns()) {
		return fmt.Errorf("no underlay namespace %s", c.UnderlayNetns())
	}
	if err := addNetns(st, n.Netns); err != nil {
		return err
	}
	if !linkExists(n.Netns, NodeLink) {
		if err := ip("link", "add", n.Port, "netns", c.UnderlayNetns(), "type", "veth", "peer", "name", NodeLink, "netns", n.Netns); err != nil {
			return err
		}
	}
	for _, s := range [][]string{
		{"-n", c.UnderlayNetns(), "link", "set", n.Port, "master", BridgeName, "up"},
		{"-n", n.Netns, "addr", "replace", netip.PrefixFrom(n.IPv4, c.UnderlayV4.Bits()).String(), "dev", NodeLink},
		{"-n", n.Netns, "addr", "replace", netip.PrefixFrom(n.IPv6, c.UnderlayV6.Bits()).String(), "dev", NodeLink, "nodad"},
		{"-n", n.Netns, "link", "set", NodeLink, "up"},
		{"-n", n.Netns, "route", "replace", "default", "via", c.gatewayV4().String(), "dev", NodeLink},
		{"-n", n.Netns, "-6", "route", "replace", "default", "via", c.gatewayV6().String(), "dev", NodeLink},
	} {
		if err := ip(s...); err != nil {
			return err
		}
	}
	return nil
}

// startJoiningNode is startNode for a node added to a running lab: the kubelet authenticates with a
// client certificate (the API server reads its token file only at start) and waits for the images.
func (c Config) startJoiningNode(st *State, p *pki, n Node) error {
	kc := certKubeconfig(c.APIServerURL(), p.path("ca.crt"), p.path("kubelet-client-"+n.Name+".crt"), p.path("kubelet-client-"+n.Name+".key"))
	return c.startNode(st, p, n, kc, joiningNodeScript(c.nodeScript(st, n), filepath.Join(c.nodeDir(n), imagesReady)))
}

// imagesReady is the file, in a joining node's folder, that AddNode writes once the lab images are
// in the node's containerd.
const imagesReady = "images-imported"

// joiningNodeScript is the node script with one step more before the kubelet starts: wait (bounded)
// for the lab images. A kubelet that joins a running cluster gets the agent's pod at once; without
// its image (and the sandbox image) it would back off, or try to pull them.
func joiningNodeScript(script, marker string) string {
	wait := fmt.Sprintf(`i=0
until [ -e %[1]q ]; do
  i=$((i + 1)); [ $i -le 1200 ] || { echo "images not imported after 120s (%[1]s)" >&2; exit 1; }
  sleep 0.1
done
exec `, marker)
	return strings.Replace(script, "\nexec ", "\n"+wait, 1)
}

// certKubeconfig is a kubeconfig that authenticates with a client certificate.
func certKubeconfig(server, ca, cert, key string) string {
	return kubeconfigYAML(server, ca, fmt.Sprintf("{client-certificate: %s, client-key: %s}", cert, key))
}
