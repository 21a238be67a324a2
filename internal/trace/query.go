// Package trace answers "what does the NetworkPolicy data plane do with this flow, and why":
// for one connection from a pod to a pod or an address, the verdict of the source's egress on its
// node and of the destination's ingress on its node, with the policy and rule that decided each.
// It compiles the same model the agent programs (agent/policy) from the cluster's objects, one per
// node involved, so its answer is the data plane's.
package trace

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/plexus-net/plexus/agent/policy"
)

// PodName is namespace/name.
type PodName struct {
	Namespace, Name string
}

// String returns namespace/name.
func (p PodName) String() string { return p.Namespace + "/" + p.Name }

// Query is one flow to trace.
type Query struct {
	// Src is the client pod.
	Src PodName
	// DstPod is the server pod, or zero when DstIP names the destination.
	DstPod PodName
	// DstIP is the destination address when no pod is named.
	DstIP netip.Addr
	// Protocol and Port are the destination port.
	Protocol policy.Protocol
	Port     uint16
}

// InputError is a query that cannot be traced as given (bad syntax, a pod that does not exist or
// has no address): the command exits 2 with its message.
type InputError struct{ Msg string }

// Error returns the message.
func (e *InputError) Error() string { return e.Msg }

func inputErrorf(format string, args ...any) *InputError {
	return &InputError{Msg: fmt.Sprintf(format, args...)}
}

// ParseQuery reads the command's arguments: <ns>/<pod> <ns>/<pod>|<ip> <port>/<proto>. The port
// also reads as <proto>/<port>, and a bare number means TCP.
func ParseQuery(src, dst, port string) (Query, error) {
	var q Query
	var err error
	if q.Src, err = parsePodName("source", src); err != nil {
		return q, err
	}
	if ip, perr := netip.ParseAddr(dst); perr == nil {
		if ip.Zone() != "" {
			return q, inputErrorf("destination %q: an address with a zone cannot be a pod's peer", dst)
		}
		q.DstIP = ip.Unmap()
	} else if q.DstPod, err = parsePodName("destination", dst); err != nil {
		return q, err
	}
	q.Protocol, q.Port, err = parsePort(port)
	return q, err
}

func parsePodName(what, s string) (PodName, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return PodName{}, inputErrorf("%s %q: want <namespace>/<pod>%s", what, s, map[bool]string{true: " or an IP address", false: ""}[what == "destination"])
	}
	return PodName{ns, name}, nil
}

// parsePort reads 80/tcp, tcp/80 or 80.
func parsePort(s string) (policy.Protocol, uint16, error) {
	a, b, hasProto := strings.Cut(s, "/")
	num, proto := a, b
	if hasProto {
		if isProtocolName(a) {
			num, proto = b, a
		}
	} else {
		proto = "tcp"
	}
	var p policy.Protocol
	switch strings.ToLower(proto) {
	case "tcp":
		p = policy.TCP
	case "udp":
		p = policy.UDP
	case "sctp":
		p = policy.SCTP
	default:
		return 0, 0, inputErrorf("port %q: protocol %q is not tcp, udp or sctp", s, proto)
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > 65535 {
		return 0, 0, inputErrorf("port %q: want <port>/<proto> with a port 1-65535, e.g. 80/tcp (a named port: give the number the destination's container gives it)", s)
	}
	return p, uint16(n), nil
}

func isProtocolName(s string) bool {
	switch strings.ToLower(s) {
	case "tcp", "udp", "sctp":
		return true
	}
	return false
}
