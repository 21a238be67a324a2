package trace

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Format writes r for a person:
//
//	flow    default/client (10.244.1.5, node-b) -> prod/web (10.244.2.7, node-c) tcp/80
//	egress  default/client: not isolated -> allow
//	ingress prod/web: isolated by prod/allow-frontend, prod/deny-all
//	        prod/allow-frontend ingress rule 0 matches (from podSelector app=frontend, port tcp/80) -> allow
//	verdict ALLOW
func Format(w io.Writer, r *Report) {
	fmt.Fprintf(w, "flow    %s -> %s %s/%d\n", endpointText(r.Src), endpointText(r.Dst), r.Protocol, r.Port)
	writeSide(w, "egress ", r.Egress)
	if r.Ingress == nil {
		fmt.Fprintf(w, "ingress %s: not a pod of the cluster, no ingress policy applies\n", r.Dst.IP)
	} else {
		writeSide(w, "ingress", r.Ingress)
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "warning %s\n", warn)
	}
	fmt.Fprintf(w, "verdict %s\n", r.Verdict)
}

// FormatJSON writes r as indented JSON.
func FormatJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func endpointText(e Endpoint) string {
	if e.Pod == "" {
		return e.IP
	}
	return fmt.Sprintf("%s (%s, %s)", e.Pod, e.IP, e.Node)
}

func writeSide(w io.Writer, label string, s *Side) {
	if len(s.IsolatedBy) == 0 {
		fmt.Fprintf(w, "%s %s: not isolated -> %s\n", label, s.Pod, s.Verdict)
		return
	}
	fmt.Fprintf(w, "%s %s: isolated by %s\n", label, s.Pod, strings.Join(s.IsolatedBy, ", "))
	dir := strings.TrimSpace(label)
	switch {
	case s.Rule >= 0:
		fmt.Fprintf(w, "        %s %s rule %d matches (%s) -> %s\n", s.Policy, dir, s.Rule, s.RuleText, s.Verdict)
	case s.Verdict == "deny" && s.Tier == "networkpolicy":
		fmt.Fprintf(w, "        no %s rule of these policies matches -> deny\n", dir)
	default:
		fmt.Fprintf(w, "        %s -> %s\n", s.Reason, s.Verdict)
	}
}
