package routing

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRouteMessagesRoundTrip: what routeRequest writes, parseRoute reads
// back (the kernel echoes the same layout in dumps).
func TestRouteMessagesRoundTrip(t *testing.T) {
	tests := []struct {
		r    Route
		nhID uint32
	}{
		{Route{Dst: netip.MustParsePrefix("10.244.2.0/24"), Via: netip.MustParseAddr("10.99.0.12"), Dev: "eth0"}, 0},
		{Route{Dst: netip.MustParsePrefix("10.244.3.0/24"), Via: netip.MustParseAddr("10.244.3.0"), Dev: "vx", OnLink: true}, 0},
		{Route{Dst: netip.MustParsePrefix("fd10:244:0:2::/64"), Via: netip.MustParseAddr("fe80::1"), Dev: "vx"}, nexthopIDBase + 7},
	}
	for _, tt := range tests {
		req := routeRequest(unix.NLM_F_CREATE, tt.r, 42, tt.nhID)
		got, ok := parseRoute(req.body)
		if !ok || got.dst != tt.r.Dst || got.protocol != RouteProtocol || got.table != unix.RT_TABLE_MAIN || got.nhID != tt.nhID {
			t.Errorf("%s: parsed %+v", tt.r, got)
		}
		if tt.nhID == 0 && (got.gw != tt.r.Via || got.oif != 42 || got.onlink != tt.r.OnLink) {
			t.Errorf("%s: inline next hop parsed as %+v", tt.r, got)
		}
	}
	nh, ok := parseNexthop(nexthopRequest(9, netip.MustParseAddr("10.244.3.0"), 5, true).body)
	if !ok || nh.id != 9 || nh.oif != 5 || !nh.onlink || nh.gw != netip.MustParseAddr("10.244.3.0") || nh.protocol != RouteProtocol {
		t.Errorf("nexthop parsed as %+v", nh)
	}
}

// TestAckError decodes acks, errors and the kernel's extended message.
func TestAckError(t *testing.T) {
	msg := func(code int32, flags uint16, tlv []byte) syscall.NetlinkMessage {
		data := make([]byte, 4+unix.NLMSG_HDRLEN)
		binary.NativeEndian.PutUint32(data, uint32(code))
		return syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: unix.NLMSG_ERROR, Flags: flags}, Data: append(data, tlv...)}
	}
	if err := ackError(msg(0, 0, nil)); err != nil {
		t.Errorf("ack decoded as %v", err)
	}
	if err := ackError(msg(-int32(unix.EEXIST), 0, nil)); !errors.Is(err, unix.EEXIST) {
		t.Errorf("EEXIST decoded as %v", err)
	}
	tlv := appendAttr(nil, unix.NLMSGERR_ATTR_MSG, []byte("Nexthop has invalid gateway\x00"))
	err := ackError(msg(-int32(unix.EINVAL), unix.NLM_F_ACK_TLVS, tlv))
	if !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "Nexthop has invalid gateway") {
		t.Errorf("extended ack decoded as %v", err)
	}
}
