// Command dnsupstream is the lab's upstream DNS server: it answers one test zone and refuses every
// other name, so a lookup made inside the lab never leaves the machine. The lab runs it in its own
// namespace as the resolver every node (and so CoreDNS' `forward`) uses.
//
//	dnsupstream -listen 10.99.0.1:53 -listen [fd10:99::1]:53 -zone lab.plexus.test. \
//	    -identity lab-upstream -host echo=10.99.0.80,fd10:99::80
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/plexus-net/plexus/internal/dnsupstream"
)

// list is a repeatable flag.
type list []string

func (l *list) String() string     { return strings.Join(*l, " ") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var listen, hosts list
	flag.Var(&listen, "listen", "address to serve on, host:port (repeatable)")
	flag.Var(&hosts, "host", "name=addr[,addr...] relative to the zone, @ for its apex (repeatable)")
	zone := flag.String("zone", dnsupstream.DefaultZone, "the zone answered; every other name is refused")
	identity := flag.String("identity", "", "TXT answer of every name in the zone (default: the hostname)")
	flag.Parse()
	if len(listen) == 0 {
		log.Fatal("dnsupstream: give at least one -listen address")
	}
	z, err := parseZone(*zone, *identity, hosts)
	if err != nil {
		log.Fatalf("dnsupstream: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g, ctx := errgroup.WithContext(ctx)
	for _, addr := range listen {
		g.Go(func() error {
			return dnsupstream.Serve(ctx, addr, z, func(u, _ net.Addr) { log.Printf("serving %s on %s (udp, tcp)", z.Origin, u) })
		})
	}
	if err := g.Wait(); err != nil {
		log.Fatalf("dnsupstream: %v", err)
	}
}

func parseZone(origin, identity string, hosts []string) (dnsupstream.Zone, error) {
	if identity == "" {
		identity, _ = os.Hostname()
	}
	z := dnsupstream.Zone{Origin: origin, Identity: identity, Hosts: map[string][]netip.Addr{}}
	for _, h := range hosts {
		name, addrs, ok := strings.Cut(h, "=")
		if !ok || name == "" {
			return z, fmt.Errorf("-host %q: want name=addr[,addr...]", h)
		}
		for _, a := range strings.Split(addrs, ",") {
			ip, err := netip.ParseAddr(a)
			if err != nil {
				return z, fmt.Errorf("-host %q: %w", h, err)
			}
			z.Hosts[name] = append(z.Hosts[name], ip)
		}
	}
	return z, nil
}
