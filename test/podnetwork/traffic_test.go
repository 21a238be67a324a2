package podnetwork

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/plexus-net/plexus/internal/testnet"
)

const (
	// udpInterval is the UDP stream's fixed send interval (500 packets/s).
	udpInterval = 2 * time.Millisecond
	// tcpInterval spaces the TCP stream's round trips.
	tcpInterval = 5 * time.Millisecond
	// tcpRoundTripBound is how long one TCP round trip may take before the connection counts as
	// broken.
	tcpRoundTripBound = 3 * time.Second
)

// listenIn opens a listener inside ns (the socket stays in ns after Do returns).
func listenIn(ns *testnet.Netns, network string, at netip.AddrPort) (ln net.Listener, pc net.PacketConn, err error) {
	err = ns.Do(func() error {
		if network == "tcp" {
			ln, err = net.Listen("tcp", at.String())
		} else {
			pc, err = net.ListenPacket("udp", at.String())
		}
		return err
	})
	return ln, pc, err
}

// dialIn dials from inside ns.
func dialIn(ns *testnet.Netns, network string, to netip.AddrPort) (c net.Conn, err error) {
	err = ns.Do(func() error {
		c, err = net.DialTimeout(network, to.String(), 5*time.Second)
		return err
	})
	return c, err
}

// tcpStream is one long-lived TCP connection doing 8-byte echo round trips back to back.
type tcpStream struct {
	ln   net.Listener
	conn net.Conn
	stop chan struct{}
	done chan struct{}

	mu         sync.Mutex
	roundTrips int
	maxRTT     time.Duration
	err        error
}

// startTCPStream connects src to an echo server in dst and keeps round trips going.
func startTCPStream(src, dst *pod) (*tcpStream, error) {
	ln, _, err := listenIn(dst.ns, "tcp", netip.AddrPortFrom(dst.ip4, 0))
	if err != nil {
		return nil, err
	}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	port := ln.Addr().(*net.TCPAddr).AddrPort().Port()
	conn, err := dialIn(src.ns, "tcp", netip.AddrPortFrom(dst.ip4, port))
	if err != nil {
		ln.Close()
		return nil, err
	}
	s := &tcpStream{ln: ln, conn: conn, stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s, nil
}

func (s *tcpStream) run() {
	defer close(s.done)
	out, in := make([]byte, 8), make([]byte, 8)
	tick := time.NewTicker(tcpInterval)
	defer tick.Stop()
	for seq := uint64(0); ; seq++ {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		binary.BigEndian.PutUint64(out, seq)
		start := time.Now()
		_ = s.conn.SetDeadline(start.Add(tcpRoundTripBound))
		_, err := s.conn.Write(out)
		if err == nil {
			_, err = io.ReadFull(s.conn, in)
		}
		if err == nil && binary.BigEndian.Uint64(in) != seq {
			err = fmt.Errorf("round trip %d echoed %d", seq, binary.BigEndian.Uint64(in))
		}
		s.mu.Lock()
		if err != nil {
			s.err = fmt.Errorf("TCP round trip %d: %w", seq, err)
			s.mu.Unlock()
			return
		}
		s.roundTrips++
		s.maxRTT = max(s.maxRTT, time.Since(start))
		s.mu.Unlock()
	}
}

// stats returns the round trips so far, the slowest one, and the error that broke the
// connection (nil if it is alive).
func (s *tcpStream) stats() (int, time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.roundTrips, s.maxRTT, s.err
}

// close stops the stream.
func (s *tcpStream) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	_ = s.conn.Close()
	_ = s.ln.Close()
}

// startUDPStream sends from src to a receiver in dst.
func startUDPStream(src, dst *pod) (*testnet.UDPSequence, error) {
	_, rx, err := listenIn(dst.ns, "udp", netip.AddrPortFrom(dst.ip4, 0))
	if err != nil {
		return nil, err
	}
	port := rx.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	tx, err := dialIn(src.ns, "udp", netip.AddrPortFrom(dst.ip4, port))
	if err != nil {
		rx.Close()
		return nil, err
	}
	return testnet.StartUDPSequence(tx, rx, udpInterval), nil
}
