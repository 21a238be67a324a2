package plan

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/plexus-net/plexus/controllers"
	"github.com/plexus-net/plexus/controllers/apply"
)

// Format prints the plan for a person: the verdict first, then what would change, then a summary
// line. Sections with nothing to say are left out.
func Format(w io.Writer, r *Result) {
	fmt.Fprintf(w, "plan: ClusterNetwork generation %d → %d\n\n", r.FromGeneration, r.ToGeneration)
	if r.APIRefusal != "" {
		fmt.Fprintf(w, "REFUSED by the API server (nothing would be stored):\n  %s\n", r.APIRefusal)
		fmt.Fprintln(w, "\nverdict: refused")
		return
	}
	p := r.Plan
	if !p.Accepted() {
		fmt.Fprintf(w, "REFUSED by the operator (%s): it would keep serving generation %d\n", p.Reason, r.FromGeneration)
		for _, e := range p.Errors {
			fmt.Fprintf(w, "  - %s\n", e.Error())
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintln(w, "accepted: the operator would serve it")
		fmt.Fprintln(w)
	}
	formatChanges(w, p.Changes)
	formatNodes(w, p.Nodes, p.Unallocated)
	formatComponents(w, p.Components)
	formatGaps(w, r)
	fmt.Fprintln(w, Summary(r))
}

// Summary is the plan's last line.
func Summary(r *Result) string {
	if r.Refused() {
		return "verdict: refused"
	}
	counts := map[controllers.Disruption]int{}
	for _, c := range r.Changes {
		counts[c.Disruption]++
	}
	objs := 0
	for _, c := range r.Components {
		for _, o := range c.Objects {
			if o.Action != apply.ActionUnchanged {
				objs++
			}
		}
	}
	if len(r.Changes) == 0 && objs == 0 {
		return "verdict: accepted, nothing changes"
	}
	var parts []string
	for _, d := range []controllers.Disruption{controllers.Hitless, controllers.Rolling, controllers.PodRestart, controllers.Outage} {
		if counts[d] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[d], d))
		}
	}
	return fmt.Sprintf("verdict: accepted; %d field change(s) (%s), %d object(s) created, changed or deleted",
		len(r.Changes), strings.Join(parts, ", "), objs)
}

func formatChanges(w io.Writer, changes []controllers.SpecChange) {
	if len(changes) == 0 {
		return
	}
	fmt.Fprintln(w, "changes:")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  FIELD\tFROM\tTO\tDISRUPTION\tEFFECT")
	for _, c := range changes {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", c.Field, c.From, c.To, c.Disruption, c.Effect)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
}

func formatNodes(w io.Writer, nodes []controllers.NodeCIDRPlan, unallocated []string) {
	if len(nodes) == 0 {
		return
	}
	fmt.Fprintln(w, "pod CIDRs:")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NODE\tKEEP\tALLOCATE\tRELEASE")
	for _, n := range nodes {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", n.Node, list(n.Keep), list(n.Allocate), list(n.Release))
	}
	_ = tw.Flush()
	for _, n := range nodes {
		if n.Note != "" {
			fmt.Fprintf(w, "  %s: %s\n", n.Node, n.Note)
		}
	}
	if len(unallocated) > 0 {
		fmt.Fprintf(w, "  without a pod CIDR of every family (pool exhausted or conflicting): %s\n", strings.Join(unallocated, ", "))
	}
	fmt.Fprintln(w)
}

func formatComponents(w io.Writer, comps []controllers.ComponentPlan) {
	if len(comps) == 0 {
		return
	}
	fmt.Fprintln(w, "objects:")
	for _, c := range comps {
		if len(c.Blocked) > 0 {
			fmt.Fprintf(w, "  %s: not applied, blocked by objects Plexus did not create:\n", c.Name)
			for _, b := range c.Blocked {
				fmt.Fprintf(w, "    %s\n", b)
			}
			continue
		}
		if len(c.Objects) == 0 {
			fmt.Fprintf(w, "  %s: nothing rendered, nothing to delete\n", c.Name)
			continue
		}
		for _, o := range c.Objects {
			fmt.Fprintf(w, "  %-6s %s\n", c.Name, o)
			for _, f := range o.Fields {
				fmt.Fprintf(w, "           %s\n", f)
			}
		}
	}
	fmt.Fprintln(w)
}

func formatGaps(w io.Writer, r *Result) {
	if r.NewBackend == "" {
		return
	}
	if len(r.BackendGaps) == 0 {
		fmt.Fprintf(w, "service proxy: every Service's features are honoured by %s\n\n", r.NewBackend)
		return
	}
	fmt.Fprintf(w, "service proxy: %d Service(s) use what %s does not honour (agents will report them in NodeNetwork status and Events):\n", len(r.BackendGaps), r.NewBackend)
	for _, g := range r.BackendGaps {
		names := make([]string, len(g.Features))
		for i, f := range g.Features {
			names[i] = string(f)
		}
		fmt.Fprintf(w, "  %s: %s\n", g.Service, strings.Join(names, ", "))
	}
	fmt.Fprintln(w)
}

func list(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}
