package controllers

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// connectivityCondition rolls the nodes' ConnectivityHealthy up into the ClusterNetwork's: False
// while some node's agent reports peers (or the cluster DNS) it cannot reach, naming each
// unreachable node with the nodes that cannot reach it (a node that many peers cannot reach is
// the one to look at: it comes first). Only NodeNetworks of existing Nodes count.
//
// It feeds neither Ready nor Degraded, on purpose. Ready says the served configuration is
// programmed on every node: GitOps tools and the lab wait on it, and a probe result is an
// observation of the network (a node powered off, a switch port down), not of the
// configuration; one unreachable node would hold every rollout back, and probes that flap
// (a lossy link) would flip Ready for the whole cluster. Node readiness itself stays the
// kubelet's and the node lifecycle controller's. Alert on this condition instead.
func connectivityCondition(gen int64, in inputs) metav1.Condition {
	nodes := map[string]bool{}
	for _, n := range in.nodes {
		nodes[n.Name] = true
	}
	reporting := 0
	from := map[string][]string{} // unreachable node -> the nodes that cannot reach it
	var dnsFailing []string
	for _, nn := range in.nodeNetworks {
		c := meta.FindStatusCondition(nn.Status.Conditions, v1.ConditionConnectivityHealthy)
		if !nodes[nn.Name] || c == nil || c.Status == metav1.ConditionUnknown {
			continue
		}
		reporting++
		cs := nn.Status.Connectivity
		if c.Status != metav1.ConditionFalse || cs == nil {
			continue
		}
		for _, p := range cs.UnreachablePeers {
			from[p.Node] = append(from[p.Node], nn.Name)
		}
		if cs.DNSError != "" {
			dnsFailing = append(dnsFailing, nn.Name)
		}
	}
	t := v1.ConditionConnectivityHealthy
	switch {
	case reporting == 0:
		return newConditionStatus(gen, t, metav1.ConditionUnknown, v1.ReasonConnectivityNotProbed, "no node reports connectivity probes yet")
	case len(from) > 0:
		msg := unreachableText(from)
		if len(dnsFailing) > 0 {
			msg += "; the cluster DNS fails from " + namesText(dnsFailing)
		}
		return newCondition(gen, t, false, v1.ReasonPeersUnreachable, msg)
	case len(dnsFailing) > 0:
		return newCondition(gen, t, false, v1.ReasonDNSFailing, "the cluster DNS fails from "+namesText(dnsFailing))
	default:
		return newCondition(gen, t, true, v1.ReasonPeersReachable,
			fmt.Sprintf("all %d probing nodes reach every peer over the pod network, and the cluster DNS where probed", reporting))
	}
}

// unreachableText names the unreachable nodes, most reporters first, each with its reporters.
func unreachableText(from map[string][]string) string {
	names := make([]string, 0, len(from))
	for n := range from {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(from[b]), len(from[a])), strings.Compare(a, b))
	})
	more := ""
	if len(names) > maxNamed {
		more = fmt.Sprintf("; and %d more nodes", len(names)-maxNamed)
		names = names[:maxNamed]
	}
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s is unreachable from %s", n, namesText(from[n])))
	}
	return strings.Join(parts, "; ") + more
}

// namesText lists node names sorted, at most maxNamed of them.
func namesText(names []string) string {
	names = slices.Sorted(slices.Values(names))
	if len(names) > maxNamed {
		return fmt.Sprintf("%s and %d more", strings.Join(names[:maxNamed], ", "), len(names)-maxNamed)
	}
	return strings.Join(names, ", ")
}

// newConditionStatus builds a condition of generation gen with any status (Unknown included).
func newConditionStatus(gen int64, t string, s metav1.ConditionStatus, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen}
}
