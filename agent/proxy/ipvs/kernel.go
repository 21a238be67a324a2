package ipvs

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	mobyipvs "github.com/moby/ipvs"
	"golang.org/x/sys/unix"
)

const (
	// procIPVS exists exactly when the kernel has IPVS (built in or the
	// ip_vs module loaded).
	procIPVS = "/proc/net/ip_vs"
	// svcFlagPersistent is IP_VS_SVC_F_PERSISTENT; the kernel also reports
	// IP_VS_SVC_F_HASHED on listed services, so only this bit is compared.
	svcFlagPersistent = 0x1
	// netmaskHost4 and netmaskHost6 are what the kernel expects in a
	// service's netmask field per family (a /32 mask, a prefix length 128);
	// they group persistent clients by their whole address.
	netmaskHost4 = 0xffffffff
	netmaskHost6 = 128
)

// ErrNoIPVS is returned by NewKernel when the kernel has no IPVS.
var ErrNoIPVS = errors.New("the kernel has no IPVS (no " + procIPVS + ")")

// Kernel is Interface on the kernel's IPVS through generic netlink
// (github.com/moby/ipvs).
type Kernel struct {
	h *mobyipvs.Handle
}

var _ Interface = &Kernel{}

// NewKernel opens IPVS in the network namespace at nsPath ("" for the
// caller's). Why the explicit check: moby/ipvs does not fail without IPVS,
// it logs and hands out a handle whose calls succeed doing nothing.
func NewKernel(nsPath string) (*Kernel, error) {
	h, err := mobyipvs.New(nsPath)
	if err != nil {
		return nil, fmt.Errorf("open IPVS netlink socket: %w", err)
	}
	if _, err := os.Stat(procIPVS); err != nil {
		h.Close()
		return nil, ErrNoIPVS
	}
	return &Kernel{h: h}, nil
}

// Close releases the netlink socket.
func (k *Kernel) Close() { k.h.Close() }

// ListVirtualServers implements Interface.
func (k *Kernel) ListVirtualServers() ([]VirtualServer, error) {
	svcs, err := k.h.GetServices()
	if err != nil {
		return nil, fmt.Errorf("list IPVS services: %w", err)
	}
	out := make([]VirtualServer, 0, len(svcs))
	for _, s := range svcs {
		if s.FWMark != 0 {
			continue // not address-based: never Plexus's
		}
		vs, err := fromService(s)
		if err != nil {
			return nil, err
		}
		out = append(out, vs)
	}
	return out, nil
}

// AddVirtualServer implements Interface.
func (k *Kernel) AddVirtualServer(vs VirtualServer) error {
	s, err := toService(vs)
	if err == nil {
		err = k.h.NewService(s)
	}
	return kernelError("add virtual server "+vs.String(), err)
}

// UpdateVirtualServer implements Interface.
func (k *Kernel) UpdateVirtualServer(vs VirtualServer) error {
	s, err := toService(vs)
	if err == nil {
		err = k.h.UpdateService(s)
	}
	return kernelError("update virtual server "+vs.String(), err)
}

// DeleteVirtualServer implements Interface.
func (k *Kernel) DeleteVirtualServer(key VirtualServerKey) error {
	s, err := toService(VirtualServer{Address: key.Address, Protocol: key.Protocol, Port: key.Port})
	if err == nil {
		err = k.h.DelService(s)
	}
	if isNotFound(err) {
		return nil
	}
	return kernelError("delete virtual server "+key.String(), err)
}

// ListRealServers implements Interface.
func (k *Kernel) ListRealServers(key VirtualServerKey) ([]RealServer, error) {
	s, err := toService(VirtualServer{Address: key.Address, Protocol: key.Protocol, Port: key.Port})
	if err != nil {
		return nil, err
	}
	dsts, err := k.h.GetDestinations(s)
	if err != nil {
		return nil, kernelError("list real servers of "+key.String(), err)
	}
	out := make([]RealServer, 0, len(dsts))
	for _, d := range dsts {
		a, ok := netip.AddrFromSlice(d.Address)
		if !ok {
			return nil, fmt.Errorf("list real servers of %s: bad address %v", key, d.Address)
		}
		out = append(out, RealServer{Address: a.Unmap(), Port: d.Port, Weight: d.Weight})
	}
	return out, nil
}

// AddRealServer implements Interface.
func (k *Kernel) AddRealServer(key VirtualServerKey, rs RealServer) error {
	s, d, err := toServiceDest(key, rs)
	if err == nil {
		err = k.h.NewDestination(s, d)
	}
	return kernelError(fmt.Sprintf("add real server %s to %s", rs, key), err)
}

// UpdateRealServer implements Interface.
func (k *Kernel) UpdateRealServer(key VirtualServerKey, rs RealServer) error {
	s, d, err := toServiceDest(key, rs)
	if err == nil {
		err = k.h.UpdateDestination(s, d)
	}
	return kernelError(fmt.Sprintf("update real server %s of %s", rs, key), err)
}

// DeleteRealServer implements Interface.
func (k *Kernel) DeleteRealServer(key VirtualServerKey, rs RealServer) error {
	s, d, err := toServiceDest(key, rs)
	if err == nil {
		err = k.h.DelDestination(s, d)
	}
	if isNotFound(err) {
		return nil
	}
	return kernelError(fmt.Sprintf("delete real server %s of %s", rs.AddrPort(), key), err)
}

// toService converts to moby's type.
func toService(vs VirtualServer) (*mobyipvs.Service, error) {
	proto, err := protocolNumber(vs.Protocol)
	if err != nil {
		return nil, err
	}
	s := &mobyipvs.Service{
		Address:   net.IP(vs.Address.AsSlice()),
		Protocol:  proto,
		Port:      vs.Port,
		SchedName: vs.Scheduler,
	}
	if vs.Address.Is4() {
		s.AddressFamily, s.Netmask = unix.AF_INET, netmaskHost4
	} else {
		s.AddressFamily, s.Netmask = unix.AF_INET6, netmaskHost6
	}
	if vs.Persistence > 0 {
		s.Flags = svcFlagPersistent
		s.Timeout = uint32(vs.Persistence / time.Second)
	}
	return s, nil
}

// fromService converts from moby's type.
func fromService(s *mobyipvs.Service) (VirtualServer, error) {
	a, ok := netip.AddrFromSlice(s.Address)
	if !ok {
		return VirtualServer{}, fmt.Errorf("IPVS service with bad address %v", s.Address)
	}
	vs := VirtualServer{Address: a.Unmap(), Port: s.Port, Scheduler: s.SchedName}
	switch s.Protocol {
	case unix.IPPROTO_TCP:
		vs.Protocol = TCP
	case unix.IPPROTO_UDP:
		vs.Protocol = UDP
	case unix.IPPROTO_SCTP:
		vs.Protocol = SCTP
	default:
		vs.Protocol = Protocol(fmt.Sprintf("proto-%d", s.Protocol))
	}
	if s.Flags&svcFlagPersistent != 0 {
		vs.Persistence = time.Duration(s.Timeout) * time.Second
	}
	return vs, nil
}

// toServiceDest converts a key and a real server; real servers are always
// masqueraded (NAT), the only forwarding method that works for pods.
func toServiceDest(key VirtualServerKey, rs RealServer) (*mobyipvs.Service, *mobyipvs.Destination, error) {
	s, err := toService(VirtualServer{Address: key.Address, Protocol: key.Protocol, Port: key.Port})
	if err != nil {
		return nil, nil, err
	}
	d := &mobyipvs.Destination{
		Address:         net.IP(rs.Address.AsSlice()),
		Port:            rs.Port,
		Weight:          rs.Weight,
		ConnectionFlags: mobyipvs.ConnFwdMasq,
		AddressFamily:   unix.AF_INET6,
	}
	if rs.Address.Is4() {
		d.AddressFamily = unix.AF_INET
	}
	return s, d, nil
}

func protocolNumber(p Protocol) (uint16, error) {
	switch p {
	case TCP:
		return unix.IPPROTO_TCP, nil
	case UDP:
		return unix.IPPROTO_UDP, nil
	case SCTP:
		return unix.IPPROTO_SCTP, nil
	}
	return 0, fmt.Errorf("unsupported protocol %q", p)
}

// isNotFound: IPVS answers ESRCH for an unknown service and ENOENT for an
// unknown destination.
func isNotFound(err error) bool {
	return errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT)
}

// kernelError wraps err with what was done and maps the kernel's errnos to
// ErrExists and ErrNotFound.
func kernelError(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EEXIST):
		return fmt.Errorf("%s: %w (%w)", what, ErrExists, err)
	case isNotFound(err):
		return fmt.Errorf("%s: %w (%w)", what, ErrNotFound, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
