package connectivity

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/miekg/dns"
)

// DialFunc dials a UDP "connection" (the agent dials in the node's namespace).
type DialFunc func(network, addr string) (net.Conn, error)

// DNSProbe asks a DNS server for one name and expects an answer: what a pod's first lookup of
// the API server needs. It queries from the node (the Service's ClusterIP is DNATed by the
// service proxy as for any host-originated packet).
type DNSProbe struct {
	// Dial opens the socket (net.Dial if nil).
	Dial DialFunc
}

// Probe asks t.Server for t.Name (A for an IPv4 server, AAAA for IPv6) and returns the round trip
// time, or why no positive answer came before ctx ended.
func (p DNSProbe) Probe(ctx context.Context, t DNSTarget) (time.Duration, error) {
	dial := p.Dial
	if dial == nil {
		dial = net.Dial
	}
	conn, err := dial("udp", t.Server.String())
	if err != nil {
		return 0, fmt.Errorf("dial %s: %w", t.Server, err)
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	qtype := dns.TypeA
	if t.Server.Addr().Is6() {
		qtype = dns.TypeAAAA
	}
	m := new(dns.Msg)
	m.SetQuestion(t.Name, qtype)
	c := &dns.Client{Net: "udp"}
	resp, rtt, err := c.ExchangeWithConnContext(ctx, m, &dns.Conn{Conn: conn})
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return 0, fmt.Errorf("no answer from %s for %s", t.Server, t.Name)
	case err != nil:
		return 0, fmt.Errorf("ask %s for %s: %w", t.Server, t.Name, err)
	case resp.Rcode != dns.RcodeSuccess:
		return 0, fmt.Errorf("%s answers %s for %s", t.Server, dns.RcodeToString[resp.Rcode], t.Name)
	case len(resp.Answer) == 0:
		return 0, fmt.Errorf("%s has no %s record of %s", t.Server, dns.TypeToString[qtype], t.Name)
	}
	return rtt, nil
}
