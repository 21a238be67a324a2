// Package dnsupstream is a tiny authoritative DNS server for one test zone. The lab runs it as its
// CoreDNS' upstream, in a namespace of the lab's own, so no lookup made inside the lab ever leaves
// the machine: it answers its zone and REFUSES every other name. Tests run it as the resolver of a
// forward zone.
package dnsupstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// DefaultZone is the zone the lab's upstream answers.
const DefaultZone = "lab.plexus.test."

// ttl of every answer: short, so a test that changes upstreams is not held up by caches.
const ttl = 5

// Zone is what one server answers.
type Zone struct {
	// Origin is the zone's name, e.g. lab.plexus.test. (a trailing dot is added when missing).
	Origin string
	// Identity is returned as the TXT record of every name in the zone, so a client can tell which
	// server answered (a test that switches upstreams checks it).
	Identity string
	// Hosts maps a name relative to Origin ("echo", or "@" for the apex) to its addresses; each
	// address answers A or AAAA by its family.
	Hosts map[string][]netip.Addr
}

// Handler answers queries for one Zone: A/AAAA/TXT for known names, NXDOMAIN (with the zone's
// SOA) for unknown names in the zone, REFUSED for any name outside it.
type Handler struct {
	origin   string
	identity string
	hosts    map[string][]netip.Addr // keyed by lower-case FQDN
}

// NewHandler returns the handler of z.
func NewHandler(z Zone) *Handler {
	origin := dns.Fqdn(strings.ToLower(z.Origin))
	h := &Handler{origin: origin, identity: z.Identity, hosts: map[string][]netip.Addr{}}
	for name, addrs := range z.Hosts {
		fqdn := origin
		if name != "@" {
			fqdn = dns.Fqdn(strings.ToLower(name)) + origin
		}
		h.hosts[fqdn] = addrs
	}
	return h
}

// ServeDNS implements dns.Handler.
func (h *Handler) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	_ = w.WriteMsg(h.Answer(req))
}

// Answer builds the reply to req; it is pure, so tests can check it without a socket.
func (h *Handler) Answer(req *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	if !dns.IsSubDomain(h.origin, name) {
		// Never recurse, never forward: everything outside the test zone is refused.
		m.Rcode = dns.RcodeRefused
		return m
	}
	m.Authoritative = true
	addrs, known := h.hosts[name]
	if !known && name != h.origin {
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{h.soa()}
		return m
	}
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
	}
	switch q.Qtype {
	case dns.TypeA, dns.TypeAAAA:
		for _, a := range addrs {
			if a.Is4() && q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: net.IP(a.AsSlice())})
			}
			if a.Is6() && !a.Is4In6() && q.Qtype == dns.TypeAAAA {
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: net.IP(a.AsSlice())})
			}
		}
	case dns.TypeTXT:
		m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr(dns.TypeTXT), Txt: []string{h.identity}})
	case dns.TypeSOA:
		if name == h.origin {
			m.Answer = append(m.Answer, h.soa())
		}
	}
	if len(m.Answer) == 0 {
		// NODATA: the name exists, the type does not.
		m.Ns = []dns.RR{h.soa()}
	}
	return m
}

func (h *Handler) soa() dns.RR {
	return &dns.SOA{
		Hdr: dns.RR_Header{Name: h.origin, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns:  "ns." + h.origin, Mbox: "hostmaster." + h.origin,
		Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: ttl,
	}
}

// Serve answers z on addr (host:port) over UDP and TCP until ctx ends. ready, when not nil, is
// called once both listeners are open, with the address they got (useful with port 0).
func Serve(ctx context.Context, addr string, z Zone, ready func(udp, tcp net.Addr)) error {
	pc, l, err := listenPair(addr)
	if err != nil {
		return err
	}
	handler := NewHandler(z)
	servers := []*dns.Server{
		{PacketConn: pc, Handler: handler},
		{Listener: l, Handler: handler},
	}
	var started sync.WaitGroup
	started.Add(len(servers))
	for _, s := range servers {
		s.NotifyStartedFunc = started.Done
	}
	errs := make(chan error, len(servers))
	for _, s := range servers {
		go func() { errs <- s.ActivateAndServe() }()
	}
	go func() {
		started.Wait()
		if ready != nil {
			ready(pc.LocalAddr(), l.Addr())
		}
	}()
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	for _, s := range servers {
		_ = s.Shutdown()
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("serve dns on %s: %w", addr, err)
	}
	return nil
}

// pairAttempts bounds the tries at one port for UDP and TCP when addr asks for any port.
const pairAttempts = 20

// listenPair opens UDP and TCP on addr. TCP takes the UDP socket's port, so an addr with port 0
// gets one port for both; the kernel picks the UDP port without looking at TCP, so that port can
// be taken for TCP (another test's connection): then another port is tried.
func listenPair(addr string) (net.PacketConn, net.Listener, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("address %q: %w", addr, err)
	}
	for attempt := 1; ; attempt++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("listen udp %s: %w", addr, err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		if port != "0" || attempt == pairAttempts {
			return nil, nil, fmt.Errorf("listen tcp %s: %w", pc.LocalAddr(), err)
		}
	}
}
