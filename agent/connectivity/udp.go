package connectivity

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// The probe message: magic, kind, sequence number. A responder answers a request with the same
// bytes and kind reply; anything else is dropped.
const (
	msgLen       = magicLen + 1 + 8
	kindRequest  = 1
	kindReply    = 2
	msgMagic     = "PLXPROBE"
	magicLen     = len(msgMagic)
	maxDatagrams = 64
)

// ListenFunc opens a UDP socket bound to laddr (the agent opens it in the node's namespace).
type ListenFunc func(network string, laddr *net.UDPAddr) (*net.UDPConn, error)

// Transport sends probes and answers the peers' (the Prober's view of UDP).
type Transport interface {
	// Listen makes the responder serve exactly the probe addresses addrs (opening and closing
	// sockets); the addresses must exist on the node.
	Listen(addrs []netip.Addr) error
	// Probe sends one probe from src (a listened address) to dst and returns the round trip
	// time, or why no answer came before ctx ended.
	Probe(ctx context.Context, src, dst netip.Addr) (time.Duration, error)
}

// UDP is the real Transport: one socket per probe address, which answers requests and receives
// the replies to this node's own probes. Safe for concurrent use.
type UDP struct {
	// Port is the responders' port (DefaultPort if 0).
	Port uint16
	// Listen opens the sockets (net.ListenUDP if nil).
	ListenUDP ListenFunc

	mu      sync.Mutex
	socks   map[netip.Addr]*udpSock
	seq     atomic.Uint64
	pending sync.Map // seq -> chan netip.Addr (the replier)
}

var _ Transport = (*UDP)(nil)

type udpSock struct {
	conn *net.UDPConn
	done chan struct{}
}

func (u *UDP) port() uint16 {
	if u.Port == 0 {
		return DefaultPort
	}
	return u.Port
}

// Listen implements Transport.
func (u *UDP) Listen(addrs []netip.Addr) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.socks == nil {
		u.socks = map[netip.Addr]*udpSock{}
	}
	want := map[netip.Addr]bool{}
	var errs []error
	for _, a := range addrs {
		want[a] = true
		if _, ok := u.socks[a]; ok {
			continue
		}
		listen := u.ListenUDP
		if listen == nil {
			listen = net.ListenUDP
		}
		network := "udp4"
		if a.Is6() {
			network = "udp6"
		}
		conn, err := listen(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, u.port())))
		if err != nil {
			errs = append(errs, fmt.Errorf("listen for probes on %s: %w", netip.AddrPortFrom(a, u.port()), err))
			continue
		}
		s := &udpSock{conn: conn, done: make(chan struct{})}
		u.socks[a] = s
		go u.serve(s)
	}
	for a, s := range u.socks {
		if !want[a] {
			_ = s.conn.Close()
			<-s.done
			delete(u.socks, a)
		}
	}
	return errors.Join(errs...)
}

// Close closes every socket.
func (u *UDP) Close() error { return u.Listen(nil) }

// serve answers requests and hands replies to the waiting probes until the socket closes.
func (u *UDP) serve(s *udpSock) {
	defer close(s.done)
	buf := make([]byte, 512)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. an ICMP error of an earlier send reported on this socket
		}
		kind, seq, ok := parseMsg(buf[:n])
		switch {
		case !ok:
		case kind == kindRequest:
			// Best effort, like any echo: a lost reply is the requester's failed probe.
			_, _ = s.conn.WriteToUDPAddrPort(encodeMsg(kindReply, seq), from)
		case kind == kindReply:
			if ch, ok := u.pending.Load(seq); ok {
				select {
				case ch.(chan netip.Addr) <- from.Addr().Unmap():
				default:
				}
			}
		}
	}
}

// Probe implements Transport. A reply counts only from dst and at dst's port.
func (u *UDP) Probe(ctx context.Context, src, dst netip.Addr) (time.Duration, error) {
	u.mu.Lock()
	s := u.socks[src]
	u.mu.Unlock()
	if s == nil {
		return 0, fmt.Errorf("no probe socket on %s", src)
	}
	seq := u.seq.Add(1)
	ch := make(chan netip.Addr, maxDatagrams)
	u.pending.Store(seq, ch)
	defer u.pending.Delete(seq)
	start := time.Now()
	if _, err := s.conn.WriteToUDPAddrPort(encodeMsg(kindRequest, seq), netip.AddrPortFrom(dst, u.port())); err != nil {
		return 0, fmt.Errorf("send: %w", err)
	}
	for {
		select {
		case from := <-ch:
			if from == dst {
				return time.Since(start), nil
			}
		case <-ctx.Done():
			return 0, errNoAnswer(ctx)
		}
	}
}

// errNoAnswer is the failure of a probe whose deadline passed: a stable text, so the status
// does not change with every probe.
func errNoAnswer(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errors.New("no answer to the UDP probe")
	}
	return ctx.Err()
}

func encodeMsg(kind byte, seq uint64) []byte {
	b := make([]byte, msgLen)
	copy(b, msgMagic)
	b[magicLen] = kind
	binary.BigEndian.PutUint64(b[magicLen+1:], seq)
	return b
}

func parseMsg(b []byte) (kind byte, seq uint64, ok bool) {
	if len(b) != msgLen || string(b[:magicLen]) != msgMagic {
		return 0, 0, false
	}
	kind = b[magicLen]
	if kind != kindRequest && kind != kindReply {
		return 0, 0, false
	}
	seq = binary.BigEndian.Uint64(b[magicLen+1:])
	return kind, seq, true
}
