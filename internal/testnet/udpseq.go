package testnet

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"
)

// UDPSequence is a loss meter: it sends sequence-numbered 8-byte datagrams over tx at a fixed
// interval and records which of them arrive on rx, and the longest gap between two arrivals.
// Tests open tx and rx wherever the path under test starts and ends (e.g. inside two pods'
// namespaces); the sockets stay where they were opened.
type UDPSequence struct {
	tx       net.Conn
	rx       net.PacketConn
	stop     chan struct{}
	sendDone chan struct{}
	wg       sync.WaitGroup

	mu        sync.Mutex
	sent      uint64
	sendFails int
	received  map[uint64]bool
	lastRx    time.Time
	maxGap    time.Duration
}

// StartUDPSequence starts sending and receiving; Close stops both and closes the sockets.
func StartUDPSequence(tx net.Conn, rx net.PacketConn, interval time.Duration) *UDPSequence {
	s := &UDPSequence{tx: tx, rx: rx, stop: make(chan struct{}), sendDone: make(chan struct{}), received: map[uint64]bool{}}
	s.wg.Add(2)
	go s.receive()
	go s.send(interval)
	return s
}

func (s *UDPSequence) receive() {
	defer s.wg.Done()
	buf := make([]byte, 64)
	for {
		n, _, err := s.rx.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil || n != 8 {
			continue
		}
		now := time.Now()
		s.mu.Lock()
		s.received[binary.BigEndian.Uint64(buf)] = true
		if !s.lastRx.IsZero() {
			s.maxGap = max(s.maxGap, now.Sub(s.lastRx))
		}
		s.lastRx = now
		s.mu.Unlock()
	}
}

func (s *UDPSequence) send(interval time.Duration) {
	defer s.wg.Done()
	defer close(s.sendDone)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	buf := make([]byte, 8)
	for seq := uint64(0); ; seq++ {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		binary.BigEndian.PutUint64(buf, seq)
		_, err := s.tx.Write(buf) // a failed send is a lost datagram, counted as such
		s.mu.Lock()
		s.sent = seq + 1
		if err != nil {
			s.sendFails++
		}
		s.mu.Unlock()
	}
}

// UDPCounts are a UDPSequence's figures so far.
type UDPCounts struct {
	// Sent is the number of datagrams sent (the next sequence number), Received how many
	// distinct ones arrived, SendFails how many sends returned an error.
	Sent, Received uint64
	SendFails      int
	// MaxGap is the longest time between two arrivals since the start or the last ResetMaxGap.
	MaxGap time.Duration
}

// Counts returns the figures so far.
func (s *UDPSequence) Counts() UDPCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return UDPCounts{Sent: s.sent, Received: uint64(len(s.received)), SendFails: s.sendFails, MaxGap: s.maxGap}
}

// ResetMaxGap starts a new measurement of the longest gap (e.g. for one disruption's window).
func (s *UDPSequence) ResetMaxGap() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxGap = 0
}

// Missing counts the datagrams with sequence numbers in [from, to) that have not arrived.
func (s *UDPSequence) Missing(from, to uint64) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n uint64
	for seq := from; seq < to; seq++ {
		if !s.received[seq] {
			n++
		}
	}
	return n
}

// StopSending stops the sender and waits until it has (Sent is final then); the receiver
// keeps counting until Close.
func (s *UDPSequence) StopSending() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.sendDone
}

// Close stops sending and receiving and closes both sockets.
func (s *UDPSequence) Close() {
	s.StopSending()
	_ = s.tx.Close()
	_ = s.rx.Close()
	s.wg.Wait()
}
