package routing

import (
	"encoding/binary"
	"net/netip"

	"golang.org/x/sys/unix"
)

// rtaNHID is RTA_NH_ID, the attribute naming a route's nexthop object
// (Linux 5.3), which golang.org/x/sys does not define.
const rtaNHID = 30

// kernelRoute is a route as rtnetlink carries it, reduced to what Plexus
// reads and writes.
type kernelRoute struct {
	dst      netip.Prefix
	table    uint32
	protocol uint8
	typ      uint8
	nhID     uint32     // nexthop object, 0 for none
	gw       netip.Addr // inline next hop (no nexthop object)
	oif      uint32
	onlink   bool
	// multipath marks a route with several inline next hops: never ours.
	multipath bool
}

// kernelNexthop is a nexthop object.
type kernelNexthop struct {
	id       uint32
	protocol uint8
	gw       netip.Addr
	oif      uint32
	onlink   bool
	// group marks a nexthop group or a blackhole: never ours.
	group bool
}

func family(a netip.Addr) uint8 {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// rtmsgBody encodes struct rtmsg.
func rtmsgBody(fam, dstLen, protocol, scope, typ uint8, flags uint32) []byte {
	b := make([]byte, unix.SizeofRtMsg, 64)
	b[0], b[1] = fam, dstLen
	b[4] = unix.RT_TABLE_MAIN
	b[5], b[6], b[7] = protocol, scope, typ
	binary.NativeEndian.PutUint32(b[8:], flags)
	return b
}

// routeRequest encodes a new or replaced route of Plexus: through nexthop
// object nhID if it is not 0, else with the next hop inline.
func routeRequest(flags uint16, r Route, oif, nhID uint32) nlRequest {
	var rtFlags uint32
	if nhID == 0 && r.OnLink {
		rtFlags = unix.RTNH_F_ONLINK
	}
	b := rtmsgBody(family(r.Dst.Addr()), uint8(r.Dst.Bits()), RouteProtocol, unix.RT_SCOPE_UNIVERSE, unix.RTN_UNICAST, rtFlags)
	b = appendAttr(b, unix.RTA_DST, r.Dst.Addr().AsSlice())
	if nhID != 0 {
		b = appendU32Attr(b, rtaNHID, nhID)
	} else {
		b = appendAttr(b, unix.RTA_GATEWAY, r.Via.AsSlice())
		b = appendU32Attr(b, unix.RTA_OIF, oif)
	}
	return nlRequest{typ: unix.RTM_NEWROUTE, flags: flags, body: b}
}

// routeDelRequest encodes the deletion of Plexus's route to dst. Giving the
// protocol makes the kernel delete only a route carrying it.
func routeDelRequest(dst netip.Prefix) nlRequest {
	b := rtmsgBody(family(dst.Addr()), uint8(dst.Bits()), RouteProtocol, unix.RT_SCOPE_NOWHERE, 0, 0)
	b = appendAttr(b, unix.RTA_DST, dst.Addr().AsSlice())
	return nlRequest{typ: unix.RTM_DELROUTE, body: b}
}

// parseRoute decodes an RTM_NEWROUTE message.
func parseRoute(data []byte) (kernelRoute, bool) {
	if len(data) < unix.SizeofRtMsg {
		return kernelRoute{}, false
	}
	fam, dstLen := data[0], int(data[1])
	r := kernelRoute{
		table:    uint32(data[4]),
		protocol: data[5],
		typ:      data[7],
		onlink:   binary.NativeEndian.Uint32(data[8:])&unix.RTNH_F_ONLINK != 0,
	}
	var dst netip.Addr
	for typ, val := range attrs(data[unix.SizeofRtMsg:]) {
		switch typ {
		case unix.RTA_DST:
			dst, _ = netip.AddrFromSlice(val)
		case unix.RTA_TABLE:
			if len(val) == 4 {
				r.table = binary.NativeEndian.Uint32(val)
			}
		case unix.RTA_GATEWAY:
			r.gw, _ = netip.AddrFromSlice(val)
		case unix.RTA_OIF:
			if len(val) == 4 {
				r.oif = binary.NativeEndian.Uint32(val)
			}
		case rtaNHID:
			if len(val) == 4 {
				r.nhID = binary.NativeEndian.Uint32(val)
			}
		case unix.RTA_MULTIPATH:
			r.multipath = true
		}
	}
	if !dst.IsValid() {
		dst = netip.IPv4Unspecified()
		if fam == unix.AF_INET6 {
			dst = netip.IPv6Unspecified()
		}
	}
	r.dst = netip.PrefixFrom(dst.Unmap(), dstLen)
	r.gw = r.gw.Unmap()
	return r, r.dst.IsValid()
}

// nhmsgBody encodes struct nhmsg.
func nhmsgBody(fam, protocol uint8, flags uint32) []byte {
	b := make([]byte, 8, 48)
	b[0], b[2] = fam, protocol
	binary.NativeEndian.PutUint32(b[4:], flags)
	return b
}

// nexthopRequest encodes a new nexthop object of Plexus.
func nexthopRequest(id uint32, gw netip.Addr, oif uint32, onlink bool) nlRequest {
	var flags uint32
	if onlink {
		flags = unix.RTNH_F_ONLINK
	}
	b := nhmsgBody(family(gw), RouteProtocol, flags)
	b = appendU32Attr(b, unix.NHA_ID, id)
	b = appendU32Attr(b, unix.NHA_OIF, oif)
	b = appendAttr(b, unix.NHA_GATEWAY, gw.AsSlice())
	return nlRequest{typ: unix.RTM_NEWNEXTHOP, flags: unix.NLM_F_CREATE | unix.NLM_F_EXCL, body: b}
}

// nexthopDelRequest encodes the deletion of nexthop object id.
func nexthopDelRequest(id uint32) nlRequest {
	b := appendU32Attr(nhmsgBody(unix.AF_UNSPEC, 0, 0), unix.NHA_ID, id)
	return nlRequest{typ: unix.RTM_DELNEXTHOP, body: b}
}

// parseNexthop decodes an RTM_NEWNEXTHOP message.
func parseNexthop(data []byte) (kernelNexthop, bool) {
	if len(data) < 8 {
		return kernelNexthop{}, false
	}
	nh := kernelNexthop{protocol: data[2], onlink: binary.NativeEndian.Uint32(data[4:])&unix.RTNH_F_ONLINK != 0}
	for typ, val := range attrs(data[8:]) {
		switch typ {
		case unix.NHA_ID:
			if len(val) == 4 {
				nh.id = binary.NativeEndian.Uint32(val)
			}
		case unix.NHA_OIF:
			if len(val) == 4 {
				nh.oif = binary.NativeEndian.Uint32(val)
			}
		case unix.NHA_GATEWAY:
			nh.gw, _ = netip.AddrFromSlice(val)
		case unix.NHA_GROUP, unix.NHA_BLACKHOLE:
			nh.group = true
		}
	}
	nh.gw = nh.gw.Unmap()
	return nh, nh.id != 0
}
