package lab

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"sort"
	"strings"
	"text/tabwriter"

	corev1 "k8s.io/api/core/v1"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// Status prints the lab summary: control-plane processes, then one row per node (Ready, addresses,
// pod CIDRs Plexus allocated, pod routes programmed in the node), then how to use the lab.
func Status(c Config) error {
	st, err := loadState(c.Dir)
	if err != nil {
		return err
	}
	if !st.exists() {
		fmt.Fprintln(c.Out, "no lab (plexusctl lab up starts one)")
		return nil
	}
	w := tabwriter.NewWriter(c.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(c.Out)
	roles := make([]string, 0, len(st.Processes))
	for r := range st.Processes {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	fmt.Fprintln(w, "PROCESS\tPID\tRUNNING")
	for _, r := range roles {
		fmt.Fprintf(w, "%s\t%d\t%v\n", r, st.Processes[r], alive(st.Processes[r]))
	}
	_ = w.Flush()
	fmt.Fprintln(c.Out)

	nodes := map[string]corev1.Node{}
	if out, err := c.kubectl("", "get", "nodes", "-o", "json"); err == nil {
		var l corev1.NodeList
		if json.Unmarshal([]byte(out), &l) == nil {
			for _, n := range l.Items {
				nodes[n.Name] = n
			}
		}
	} else {
		fmt.Fprintf(c.Out, "API server not reachable: %v\n\n", err)
	}
	nns := map[string]v1.NodeNetwork{}
	if out, err := c.kubectl("", "get", "nodenetworks", "-o", "json"); err == nil {
		var l v1.NodeNetworkList
		if json.Unmarshal([]byte(out), &l) == nil {
			for _, n := range l.Items {
				nns[n.Name] = n
			}
		}
	}
	podRanges, _ := c.podRanges()
	fmt.Fprintln(w, "NODE\tREADY\tNODE-IPS\tPOD-CIDRS\tPOD-ROUTES\tNETNS")
	for i := 1; i <= st.Nodes; i++ {
		n := c.NodeAt(i)
		ready := "unregistered"
		if node, ok := nodes[n.Name]; ok {
			ready = "False"
			for _, cond := range node.Status.Conditions {
				if cond.Type == corev1.NodeReady {
					ready = string(cond.Status)
				}
			}
		}
		var cidrs []string
		for _, p := range nns[n.Name].Spec.PodCIDRs {
			cidrs = append(cidrs, string(p))
		}
		fmt.Fprintf(w, "%s\t%s\t%s,%s\t%s\t%s\t%s\n", n.Name, ready, n.IPv4, n.IPv6, orNone(cidrs), orNone(podRoutes(n.Netns, podRanges)), n.Netns)
	}
	_ = w.Flush()
	if out, err := c.kubectl("", "get", "clusternetwork", "default", "-o",
		`jsonpath={range .status.conditions[*]}{.type}={.status} {end}`); err == nil {
		fmt.Fprintf(c.Out, "\nClusterNetwork default: %s\n", strings.TrimSpace(out))
	}
	fmt.Fprintf(c.Out, "\nkubeconfig: %s (API server https://%s on this machine, %s inside the lab)\n", st.Kubeconfig, st.HostAPIAddress, c.APIServerURL())
	fmt.Fprintf(c.Out, "  %s --kubeconfig %s get nodes,clusternetwork,nodenetworks\n", c.binaries().kubectl, st.Kubeconfig)
	fmt.Fprintf(c.Out, "  a node's shell: ip netns exec %s bash    logs: %s/{logs,nodes}\n", c.NodeAt(1).Netns, c.Dir)
	if !st.Complete {
		fmt.Fprintln(c.Out, "\nthe last lab up did not finish: run plexusctl lab up again, or plexusctl lab down")
		return nil
	}
	if _, err := c.PrintMatrix(); err != nil {
		fmt.Fprintf(c.Out, "\nconnectivity matrix: %v\n", err)
	}
	return nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, " ")
}

// podRanges are the sample ClusterNetwork's pod ranges.
func (c Config) podRanges() ([]netip.Prefix, error) {
	cn, err := c.sample()
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, s := range cn.Spec.PodNetwork.CIDRs {
		if p, err := netip.ParsePrefix(string(s)); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// podRoutes lists the routes inside a node's namespace towards other pod ranges (not single pods),
// as "dst via gateway" or "dst dev link".
func podRoutes(netns string, ranges []netip.Prefix) []string {
	var out []string
	for _, fam := range []string{"-4", "-6"} {
		b, err := exec.Command("ip", "-n", netns, "-j", fam, "route", "show").Output()
		if err != nil {
			continue
		}
		var routes []struct {
			Dst     string `json:"dst"`
			Gateway string `json:"gateway"`
			Dev     string `json:"dev"`
		}
		if json.Unmarshal(b, &routes) != nil {
			continue
		}
		for _, r := range routes {
			p, err := netip.ParsePrefix(r.Dst)
			if err != nil || p.IsSingleIP() {
				continue // pod host routes (and bare addresses) are per pod
			}
			for _, pr := range ranges {
				if pr.Overlaps(p) {
					if r.Gateway != "" {
						out = append(out, r.Dst+" via "+r.Gateway)
					} else {
						out = append(out, r.Dst+" dev "+r.Dev)
					}
					break
				}
			}
		}
	}
	return out
}
