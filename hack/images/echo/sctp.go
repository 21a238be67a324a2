package main

// A minimal SCTP, enough to tell "an SCTP association to this port can start" from "it cannot".
//
// Why not the kernel's SCTP: the machines the lab runs on have a kernel without SCTP
// (CONFIG_IP_SCTP unset, no module to load), so socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) fails
// with EPROTONOSUPPORT; Go's net package has no SCTP either. Netfilter does know SCTP there
// (conntrack tracks it, nftables matches `sctp dport`), which is all a NetworkPolicy needs. So the
// server and the probe speak the first two packets of the association handshake (RFC 9260 5.1)
// over raw IP sockets of protocol 132: the probe sends INIT, the server answers INIT-ACK, the probe
// counts the answer as "reachable" and closes the half-open association with ABORT. That is the
// exchange a policy decides on (the first packet is evaluated, the reply passes as conntrack's
// established), and conntrack validates it exactly as it validates a kernel's: the INIT carries
// verification tag 0, the INIT-ACK the INIT's initiate tag, both a correct CRC32c.
//
// A raw socket receives a copy of every SCTP packet that reaches the namespace; the server answers
// INITs to the ports it serves and ignores the rest, a probe keeps the one answer to its own INIT.
// While a raw socket of the protocol is open the kernel sends no "protocol unreachable".

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"
)

const (
	// sctpProtocol is IPPROTO_SCTP; "ip4:132" opens a raw IPv4 socket of that protocol.
	sctpProtocol = 132

	sctpCommonHeaderLen = 12
	chunkInit           = 1
	chunkInitAck        = 2
	chunkAbort          = 6
	// initChunkLen is an INIT without optional parameters: chunk header and the fixed fields.
	initChunkLen = 20
	// paramStateCookie is the one parameter an INIT-ACK must carry.
	paramStateCookie = 7
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// sctpHeader is the SCTP common header and the type of the first chunk.
type sctpHeader struct {
	srcPort, dstPort uint16
	vtag             uint32
	chunk            byte
	// initTag is the initiate tag of an INIT or INIT-ACK chunk (0 for other chunks).
	initTag uint32
}

// parseSCTP reads the common header and the first chunk of a packet; it refuses a packet whose
// checksum is wrong.
func parseSCTP(b []byte) (sctpHeader, error) {
	if len(b) < sctpCommonHeaderLen+4 {
		return sctpHeader{}, errors.New("short SCTP packet")
	}
	sum := binary.LittleEndian.Uint32(b[8:12])
	if checksum(b) != sum {
		return sctpHeader{}, errors.New("bad SCTP checksum")
	}
	h := sctpHeader{
		srcPort: binary.BigEndian.Uint16(b[0:2]),
		dstPort: binary.BigEndian.Uint16(b[2:4]),
		vtag:    binary.BigEndian.Uint32(b[4:8]),
		chunk:   b[12],
	}
	if (h.chunk == chunkInit || h.chunk == chunkInitAck) && len(b) >= sctpCommonHeaderLen+initChunkLen {
		h.initTag = binary.BigEndian.Uint32(b[16:20])
	}
	return h, nil
}

// checksum is the CRC32c of the packet with its checksum field taken as zero. RFC 9260 appendix A
// puts the CRC's least significant byte first, hence little endian where it is stored.
func checksum(b []byte) uint32 {
	c := crc32.Update(0, castagnoli, b[:8])
	c = crc32.Update(c, castagnoli, []byte{0, 0, 0, 0})
	return crc32.Update(c, castagnoli, b[12:])
}

// sctpPacket builds a packet of one chunk (value after the chunk header) and sets its checksum.
func sctpPacket(src, dst uint16, vtag uint32, chunk byte, value []byte) []byte {
	n := 4 + len(value)
	b := make([]byte, sctpCommonHeaderLen+(n+3)&^3)
	binary.BigEndian.PutUint16(b[0:2], src)
	binary.BigEndian.PutUint16(b[2:4], dst)
	binary.BigEndian.PutUint32(b[4:8], vtag)
	b[12] = chunk
	binary.BigEndian.PutUint16(b[14:16], uint16(n))
	copy(b[16:], value)
	binary.LittleEndian.PutUint32(b[8:12], checksum(b))
	return b
}

// initFields are the fixed fields of INIT and INIT-ACK: initiate tag, receiver window, outbound
// and inbound streams, initial TSN.
func initFields(tag uint32) []byte {
	v := make([]byte, 16)
	binary.BigEndian.PutUint32(v[0:4], tag)
	binary.BigEndian.PutUint32(v[4:8], 64<<10)
	binary.BigEndian.PutUint16(v[8:10], 1)
	binary.BigEndian.PutUint16(v[10:12], 1)
	binary.BigEndian.PutUint32(v[12:16], rand.Uint32())
	return v
}

// nonZeroTag is a random initiate tag; RFC 9260 forbids 0.
func nonZeroTag() uint32 {
	for {
		if t := rand.Uint32(); t != 0 {
			return t
		}
	}
}

// serveSCTP answers every INIT to one of ports, arriving at a raw socket of network ("ip4:132" or
// "ip6:132"), with an INIT-ACK. It returns when the socket cannot be opened or read.
func serveSCTP(network string, ports map[uint16]bool) error {
	pc, err := net.ListenPacket(network, "")
	if err != nil {
		return fmt.Errorf("SCTP listener (%s raw socket): %w", network, err)
	}
	defer pc.Close()
	buf := make([]byte, 64<<10)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("read SCTP (%s): %w", network, err)
		}
		h, err := parseSCTP(buf[:n])
		if err != nil || h.chunk != chunkInit || h.vtag != 0 || h.initTag == 0 || !ports[h.dstPort] {
			continue
		}
		// The state cookie is opaque to the peer; the probe never echoes it back.
		cookie := []byte{0, paramStateCookie, 0, 8, 'p', 'l', 'x', 's'}
		ack := sctpPacket(h.dstPort, h.srcPort, h.initTag, chunkInitAck, append(initFields(nonZeroTag()), cookie...))
		_, _ = pc.WriteTo(ack, from)
	}
}

// probeSCTP sends an INIT to target and waits until timeout for the INIT-ACK: nil means the
// association could start. It aborts the half-open association afterwards.
func probeSCTP(target netip.AddrPort, timeout time.Duration) error {
	network := "ip4:132"
	if target.Addr().Is6() {
		network = "ip6:132"
	}
	pc, err := net.ListenPacket(network, "")
	if err != nil {
		return fmt.Errorf("SCTP probe (%s raw socket): %w", network, err)
	}
	defer pc.Close()
	// Ports 32768-60999, the kernel's default ephemeral range.
	src := uint16(32768 + rand.IntN(28232))
	tag := nonZeroTag()
	dst := &net.IPAddr{IP: target.Addr().AsSlice()}
	if _, err := pc.WriteTo(sctpPacket(src, target.Port(), 0, chunkInit, initFields(tag)), dst); err != nil {
		return fmt.Errorf("send INIT: %w", err)
	}
	_ = pc.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 64<<10)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("no INIT-ACK: %w", err)
		}
		fa, ok := netip.AddrFromSlice(from.(*net.IPAddr).IP)
		if !ok || fa.Unmap() != target.Addr().Unmap() {
			continue
		}
		h, err := parseSCTP(buf[:n])
		if err != nil || h.srcPort != target.Port() || h.dstPort != src || h.vtag != tag {
			continue
		}
		switch h.chunk {
		case chunkInitAck:
			_, _ = pc.WriteTo(sctpPacket(src, target.Port(), h.initTag, chunkAbort, nil), dst)
			return nil
		case chunkAbort:
			return errors.New("ABORT: port not served")
		}
	}
}
