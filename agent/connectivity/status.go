package connectivity

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// Apply writes r into s: status.connectivity and the ConnectivityHealthy condition (observed
// generation s.ObservedGeneration; its transition time is kept while its status does not
// change). A Report of no round yet changes nothing. Pure.
func Apply(s *v1.NodeNetworkStatus, r Report) {
	if !r.Probed && r.NotProbedReason == "" {
		return
	}
	c := Condition(r)
	c.ObservedGeneration = s.ObservedGeneration
	meta.SetStatusCondition(&s.Conditions, c)
	if !r.Probed {
		// No responder without a probe address: peers must not probe this node.
		s.Connectivity = nil
		return
	}
	cs := &v1.ConnectivityStatus{Peers: int32(r.Peers), DNSError: r.DNSError}
	for _, a := range r.LocalAddrs {
		cs.ProbeAddresses = append(cs.ProbeAddresses, a.String())
	}
	for _, u := range r.Unreachable {
		p := v1.UnreachablePeer{Node: u.Peer}
		for _, a := range u.Addrs {
			p.Addresses = append(p.Addresses, a.String())
		}
		cs.UnreachablePeers = append(cs.UnreachablePeers, p)
	}
	s.Connectivity = cs
}

// Condition is the ConnectivityHealthy condition of r (without generation and time).
func Condition(r Report) metav1.Condition {
	c := metav1.Condition{Type: v1.ConditionConnectivityHealthy}
	dns := "DNS is not probed (Plexus runs no cluster DNS)"
	if r.DNSProbed {
		dns = "the cluster DNS answers"
	}
	switch {
	case !r.Probed:
		c.Status, c.Reason, c.Message = metav1.ConditionUnknown, v1.ReasonConnectivityNotProbed, r.NotProbedReason
	case len(r.Unreachable) > 0:
		parts := make([]string, 0, len(r.Unreachable))
		for _, u := range r.Unreachable {
			addrs := make([]string, 0, len(u.Addrs))
			for i, a := range u.Addrs {
				addrs = append(addrs, fmt.Sprintf("%s: %s", a, u.Errs[i]))
			}
			parts = append(parts, fmt.Sprintf("%s (%s)", u.Peer, strings.Join(addrs, "; ")))
		}
		c.Status, c.Reason = metav1.ConditionFalse, v1.ReasonPeersUnreachable
		c.Message = fmt.Sprintf("%d of %d peers unreachable over the pod network: %s", len(r.Unreachable), r.Peers, strings.Join(parts, ", "))
		if r.DNSError != "" {
			c.Message += "; the cluster DNS fails: " + r.DNSError
		}
	case r.DNSError != "":
		c.Status, c.Reason = metav1.ConditionFalse, v1.ReasonDNSFailing
		c.Message = fmt.Sprintf("all %d peers reachable, but the cluster DNS fails: %s", r.Peers, r.DNSError)
	default:
		c.Status, c.Reason = metav1.ConditionTrue, v1.ReasonPeersReachable
		c.Message = fmt.Sprintf("all %d peers reachable over the pod network; %s", r.Peers, dns)
	}
	return c
}
