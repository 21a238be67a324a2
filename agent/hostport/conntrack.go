package hostport

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/plexus-net/plexus/internal/ipfamily"
)

// ClearUDP deletes the conntrack entries of UDP traffic to the frontends of mappings, in the
// calling thread's network namespace. Why: a UDP client that keeps sending to a host port keeps
// its conntrack entry alive, and the entry holds the NAT decision made for its first packet: to
// a pod that has since gone, or to no pod at all when it came before the host port existed. So a
// host port that is added or removed flushes its entries, and the next packet is NATed afresh.
// Entries of a specific host IP are matched by address and port, of a wildcard by port alone.
// TCP needs none of this: a new connection gets a new entry.
func ClearUDP(mappings []Mapping) error {
	var errs []error
	for _, m := range mappings {
		if m.Protocol != "udp" {
			continue
		}
		f := &netlink.ConntrackFilter{}
		err := errors.Join(f.AddProtocol(unix.IPPROTO_UDP), f.AddPort(netlink.ConntrackOrigDstPort, m.HostPort))
		if m.HostIP.IsValid() {
			err = errors.Join(err, f.AddIP(netlink.ConntrackOrigDstIP, m.HostIP.AsSlice()))
		}
		family := netlink.InetFamily(unix.AF_INET)
		if m.Family() == ipfamily.IPv6 {
			family = unix.AF_INET6
		}
		if err == nil {
			_, err = netlink.ConntrackDeleteFilters(netlink.ConntrackTable, family, f)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("clear conntrack entries of %s: %w", m.Frontend(), err))
		}
	}
	return errors.Join(errs...)
}
