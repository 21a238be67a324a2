// Package clusterstatus reads and formats what `plexusctl status` shows: the ClusterNetwork's
// conditions, its effective configuration and one row per NodeNetwork, with a verdict on whether
// the network is Ready and, if not, why. Formatting is pure (Format, Verdict); Fetch is the only
// part that talks to the API server.
package clusterstatus

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// maxErrorWidth bounds a node's last error in the node table; the full text is in its status.
const maxErrorWidth = 60

// Snapshot is everything the status report is made from, read at one moment.
type Snapshot struct {
	// Cluster is the ClusterNetwork "default".
	Cluster *v1.ClusterNetwork
	// Nodes are the NodeNetworks (any order; Format sorts them by name).
	Nodes []v1.NodeNetwork
	// Now is when the snapshot was read; ages are relative to it.
	Now time.Time
	// DNS is the cluster DNS as read from its objects; nil leaves its block out.
	DNS *DNS
}

// Verdict says whether the cluster network is Ready and, when it is not, why, in one line.
// Ready means: the Ready condition is True and describes the current generation of the spec.
func Verdict(s Snapshot) (ready bool, why string) {
	cn := s.Cluster
	if cn == nil {
		return false, "no ClusterNetwork " + v1.DefaultClusterNetworkName
	}
	c := findCondition(cn.Status.Conditions, v1.ConditionReady)
	switch {
	case c == nil:
		return false, "the ClusterNetwork has no Ready condition yet (is the operator running?)"
	case c.Status != metav1.ConditionTrue:
		why := fmt.Sprintf("Ready is %s (%s)", c.Status, c.Reason)
		if c.Message != "" {
			why += ": " + oneLine(c.Message)
		}
		if bad := notReadyNodes(s.Nodes); len(bad) > 0 {
			why += "; nodes not Ready: " + strings.Join(bad, ", ")
		}
		return false, why
	case cn.Status.ObservedGeneration < cn.Generation:
		return false, fmt.Sprintf("the operator has not yet observed generation %d (status describes generation %d)",
			cn.Generation, cn.Status.ObservedGeneration)
	case c.ObservedGeneration != 0 && c.ObservedGeneration < cn.Generation:
		return false, fmt.Sprintf("Ready describes generation %d, the spec is at generation %d", c.ObservedGeneration, cn.Generation)
	}
	return true, ""
}

// notReadyNodes names the NodeNetworks whose Ready condition is not True, sorted.
func notReadyNodes(nodes []v1.NodeNetwork) []string {
	var out []string
	for _, n := range nodes {
		if c := findCondition(n.Status.Conditions, v1.ConditionNodeReady); c == nil || c.Status != metav1.ConditionTrue {
			out = append(out, n.Name)
		}
	}
	sort.Strings(out)
	return out
}

// Format writes the whole report: header, conditions, effective configuration, node table and,
// last, the verdict line ("Ready: ..." or "NOT READY: <why>").
func Format(w io.Writer, s Snapshot) {
	cn := s.Cluster
	if cn == nil {
		fmt.Fprintf(w, "NOT READY: no ClusterNetwork %s (create one: config/samples)\n", v1.DefaultClusterNetworkName)
		return
	}
	st := cn.Status
	fmt.Fprintf(w, "ClusterNetwork %s: generation %d, observed %d, applied %d\n\n",
		cn.Name, cn.Generation, st.ObservedGeneration, st.AppliedGeneration)
	FormatConditions(w, cn.Status.Conditions, cn.Generation, s.Now)
	fmt.Fprintln(w)
	FormatEffective(w, cn)
	fmt.Fprintln(w)
	if s.DNS != nil {
		FormatDNS(w, cn, s.DNS)
		fmt.Fprintln(w)
	}
	FormatNodes(w, s.Nodes, st.AppliedGeneration)
	fmt.Fprintln(w)
	if ok, why := Verdict(s); ok {
		fmt.Fprintf(w, "Ready: %s\n", readySummary(cn, s.Nodes))
	} else {
		fmt.Fprintf(w, "NOT READY: %s\n", why)
	}
}

// readySummary is the verdict line's text when the network is Ready.
func readySummary(cn *v1.ClusterNetwork, nodes []v1.NodeNetwork) string {
	at := 0
	for _, n := range nodes {
		if n.Status.ProgrammedGeneration >= cn.Status.AppliedGeneration && cn.Status.AppliedGeneration > 0 {
			at++
		}
	}
	return fmt.Sprintf("%d of %d nodes Ready, %d at applied generation %d",
		len(nodes)-len(notReadyNodes(nodes)), len(nodes), at, cn.Status.AppliedGeneration)
}

// FormatConditions writes the conditions as a table (Ready first, then by type). A condition whose
// observedGeneration lags the object's generation is marked "(gen N)".
func FormatConditions(w io.Writer, conds []metav1.Condition, generation int64, now time.Time) {
	if len(conds) == 0 {
		fmt.Fprintln(w, "Conditions: none yet")
		return
	}
	cs := append([]metav1.Condition(nil), conds...)
	sort.SliceStable(cs, func(i, j int) bool {
		if (cs[i].Type == v1.ConditionReady) != (cs[j].Type == v1.ConditionReady) {
			return cs[i].Type == v1.ConditionReady
		}
		return cs[i].Type < cs[j].Type
	})
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONDITION\tSTATUS\tREASON\tAGE\tMESSAGE")
	for _, c := range cs {
		status := string(c.Status)
		if c.ObservedGeneration != 0 && c.ObservedGeneration < generation {
			status += fmt.Sprintf(" (gen %d)", c.ObservedGeneration)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Type, status, dash(c.Reason), age(c.LastTransitionTime, now), dash(oneLine(c.Message)))
	}
	_ = tw.Flush()
}

// FormatEffective writes the effective (defaulted) configuration in brief, with the pod CIDRs'
// allocation use. Without status.effective it says so.
func FormatEffective(w io.Writer, cn *v1.ClusterNetwork) {
	st := cn.Status
	e := st.Effective
	if e == nil {
		fmt.Fprintln(w, "Effective configuration: not computed yet (the operator has not accepted a spec)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	fmt.Fprintln(tw, "Effective configuration")
	var fams []string
	for _, f := range e.IPFamilies {
		fams = append(fams, string(f))
	}
	fmt.Fprintf(tw, "  families:\t%s\n", dash(strings.Join(fams, ", ")))
	usage := map[string]v1.CIDRUsage{}
	for _, u := range st.PodCIDRUsage {
		usage[u.CIDR] = u
	}
	label := "  pod CIDRs:"
	if len(e.PodNetwork.CIDRs) == 0 {
		fmt.Fprintf(tw, "%s\t-\n", label)
	}
	for _, c := range e.PodNetwork.CIDRs {
		line := string(c)
		if u, ok := usage[string(c)]; ok {
			line += fmt.Sprintf("  /%d per node, %d of %d allocated (%s)", u.NodeMaskSize, u.Allocated, u.Capacity, percent(u.Allocated, u.Capacity))
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, line)
		label = ""
	}
	var svc []string
	for _, c := range e.ServiceNetwork.CIDRs {
		svc = append(svc, string(c))
	}
	fmt.Fprintf(tw, "  service CIDRs:\t%s\n", dash(strings.Join(svc, ", ")))
	if e.ServiceNetwork.NodePortRange != "" {
		fmt.Fprintf(tw, "  node ports:\t%s\n", e.ServiceNetwork.NodePortRange)
	}
	fmt.Fprintf(tw, "  routing:\t%s\n", routing(e.Routing))
	proxy := "-"
	if e.ServiceProxy != nil && e.ServiceProxy.Mode != "" {
		proxy = string(e.ServiceProxy.Mode)
		if e.ServiceProxy.IPVS != nil && e.ServiceProxy.IPVS.Scheduler != "" && e.ServiceProxy.Mode == v1.ServiceProxyIPVS {
			proxy += " (scheduler " + e.ServiceProxy.IPVS.Scheduler + ")"
		}
	}
	fmt.Fprintf(tw, "  service proxy:\t%s\n", proxy)
	dnsIP := st.DNSServiceIP
	if dnsIP == "" && e.DNS != nil {
		dnsIP = e.DNS.ServiceIP
	}
	if e.DNS != nil && e.DNS.Enabled != nil && !*e.DNS.Enabled {
		dnsIP = "disabled"
	}
	fmt.Fprintf(tw, "  DNS service IP:\t%s\n", dash(dnsIP))
	fmt.Fprintf(tw, "  generation:\tapplied %d, observed %d, spec %d\n", st.AppliedGeneration, st.ObservedGeneration, cn.Generation)
	r := st.Nodes
	nodes := fmt.Sprintf("%d total, %d allocated, %d Ready, %d at applied generation", r.Total, r.Allocated, r.Ready, r.AtGeneration)
	if r.Summary != "" {
		nodes += " (" + oneLine(r.Summary) + ")"
	}
	fmt.Fprintf(tw, "  nodes:\t%s\n", nodes)
	_ = tw.Flush()
}

// routing describes the routing settings in one phrase.
func routing(r *v1.Routing) string {
	if r == nil || r.Mode == "" {
		return "-"
	}
	out := string(r.Mode)
	var extra []string
	if r.MTU != nil {
		extra = append(extra, fmt.Sprintf("MTU %d", *r.MTU))
	}
	if r.Masquerade != nil {
		if *r.Masquerade {
			extra = append(extra, "masquerade on")
		} else {
			extra = append(extra, "masquerade off")
		}
	}
	if r.VXLAN != nil && r.Mode != v1.RoutingDirect {
		if r.VXLAN.VNI != nil {
			extra = append(extra, fmt.Sprintf("VNI %d", *r.VXLAN.VNI))
		}
		if r.VXLAN.Port != nil {
			extra = append(extra, fmt.Sprintf("port %d", *r.VXLAN.Port))
		}
	}
	if len(extra) > 0 {
		out += " (" + strings.Join(extra, ", ") + ")"
	}
	return out
}

// FormatNodes writes one row per NodeNetwork, sorted by name: pod CIDRs, Ready, programmed
// generation against the applied one ("behind" when it lags), uplink, route and service counts and
// the last error (shortened).
func FormatNodes(w io.Writer, nodes []v1.NodeNetwork, applied int64) {
	if len(nodes) == 0 {
		fmt.Fprintln(w, "Nodes: no NodeNetworks yet")
		return
	}
	ns := append([]v1.NodeNetwork(nil), nodes...)
	sort.Slice(ns, func(i, j int) bool { return ns[i].Name < ns[j].Name })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tPOD-CIDRS\tREADY\tGENERATION\tUPLINK\tROUTES\tSERVICES\tLAST-ERROR")
	for _, n := range ns {
		var cidrs []string
		for _, c := range n.Spec.PodCIDRs {
			cidrs = append(cidrs, string(c))
		}
		ready := "Unknown"
		if c := findCondition(n.Status.Conditions, v1.ConditionNodeReady); c != nil {
			ready = string(c.Status)
			if c.Status != metav1.ConditionTrue && c.Reason != "" {
				ready += " (" + c.Reason + ")"
			}
		}
		gen := fmt.Sprintf("%d/%d", n.Status.ProgrammedGeneration, applied)
		if n.Status.ProgrammedGeneration < applied {
			gen += " behind"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", n.Name, dash(strings.Join(cidrs, ",")), ready, gen,
			dash(n.Status.UplinkInterface), n.Status.Routes, n.Status.Services, dash(shorten(oneLine(n.Status.LastError), maxErrorWidth)))
	}
	_ = tw.Flush()
}

func findCondition(cs []metav1.Condition, t string) *metav1.Condition {
	for i := range cs {
		if cs[i].Type == t {
			return &cs[i]
		}
	}
	return nil
}

// age is kubectl's short age of t relative to now ("-" for an unset time).
func age(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

func percent(n, of int64) string {
	if of <= 0 {
		return "-"
	}
	p := float64(n) * 100 / float64(of)
	if p > 0 && p < 1 {
		return "<1%"
	}
	return fmt.Sprintf("%.0f%%", p)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine joins a multi-line message so a table row stays one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func shorten(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
