package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/plexus-net/plexus/internal/lab"
	"github.com/plexus-net/plexus/internal/testnet"
)

const (
	// udpInterval is the UDP stream's fixed send interval (500 datagrams/s).
	udpInterval = 2 * time.Millisecond
	// tcpInterval spaces the TCP round trips on the one long-lived connection.
	tcpInterval = 5 * time.Millisecond
	// tcpRoundTripBound: a round trip slower than this counts as a broken connection.
	tcpRoundTripBound = 3 * time.Second
	// echoTCPPort is the echo image's TCP echo port (hack/images/echo).
	echoTCPPort = 9000
	// settlePackets are sent after a disruption has converged before its window closes, so loss
	// that comes late is counted too.
	settlePackets = 250
)

// streams is the long-running traffic between a pod on one node and a pod on another: one TCP
// connection from the source pod to the destination pod's echo server (the pod's own process
// answers), doing 8-byte round trips back to back, and a fixed-rate stream of sequence-numbered UDP
// datagrams. Both sockets of the UDP stream and the client socket are opened by the test process
// inside the pods' network namespaces, so every packet takes the pod network's real path: pod
// veth, node routes (direct or VXLAN), peer node, peer pod veth.
type streams struct {
	src, dst           podRef
	srcNetns, dstNetns string
	stop               chan struct{}
	wg                 sync.WaitGroup

	udp *testnet.UDPSequence

	mu sync.Mutex
	// TCP
	conn       net.Conn
	roundTrips int
	maxRTT     time.Duration // since the current window began
	breaks     int
	lastBreak  error
}

// podRef names a pod and its first (IPv4) address.
type podRef struct{ name, node, ip string }

func (p podRef) String() string { return p.name + "@" + p.node + " (" + p.ip + ")" }

// startStreams starts both streams from src to dst and waits, bounded, until both carry traffic.
func startStreams(src, dst podRef) *streams { return startStreamsIn(labCfg, src, dst) }

// startStreamsIn is startStreams between echo pods of the lab cfg (a spec's lab of its own).
func startStreamsIn(cfg lab.Config, src, dst podRef) *streams {
	s := &streams{src: src, dst: dst, stop: make(chan struct{})}
	s.srcNetns, s.dstNetns = cfg.EchoPodNetns(src.name), cfg.EchoPodNetns(dst.name)
	Expect(s.srcNetns).NotTo(BeEmpty(), "no process of pod %s found", src)
	Expect(s.dstNetns).NotTo(BeEmpty(), "no process of pod %s found", dst)
	dstIP := netip.MustParseAddr(dst.ip)

	var rx net.PacketConn
	var tx net.Conn
	Expect(lab.InNetns(s.dstNetns, func() (err error) {
		rx, err = net.ListenPacket("udp", netip.AddrPortFrom(dstIP, 0).String())
		return err
	})).To(Succeed())
	port := rx.LocalAddr().(*net.UDPAddr).Port
	Expect(lab.InNetns(s.srcNetns, func() (err error) {
		tx, err = net.Dial("udp", net.JoinHostPort(dst.ip, strconv.Itoa(port)))
		return err
	})).To(Succeed())
	conn, err := s.dialTCP()
	Expect(err).NotTo(HaveOccurred(), "TCP %s -> %s:%d", src, dst, echoTCPPort)
	s.conn = conn

	s.udp = testnet.StartUDPSequence(tx, rx, udpInterval)
	s.wg.Add(1)
	go s.runTCP()
	Eventually(func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.udp.Counts().Received >= 100 && s.roundTrips >= 20
	}).WithTimeout(15*time.Second).WithPolling(50*time.Millisecond).Should(BeTrue(), "streams %s -> %s did not get going", src, dst)
	return s
}

func (s *streams) dialTCP() (net.Conn, error) {
	var c net.Conn
	err := lab.InNetns(s.srcNetns, func() (err error) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", net.JoinHostPort(s.dst.ip, strconv.Itoa(echoTCPPort)))
		return err
	})
	return c, err
}

// runTCP does round trips until stopped. A failed round trip is a break: it is counted, and the
// connection is dialled again so later windows can still be measured.
func (s *streams) runTCP() {
	defer s.wg.Done()
	out, in := make([]byte, 8), make([]byte, 8)
	tick := time.NewTicker(tcpInterval)
	defer tick.Stop()
	for seq := uint64(0); ; seq++ {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		s.mu.Lock()
		c := s.conn
		s.mu.Unlock()
		if c == nil {
			nc, err := s.dialTCP()
			if err != nil {
				continue
			}
			s.mu.Lock()
			s.conn = nc
			s.mu.Unlock()
			c = nc
		}
		binary.BigEndian.PutUint64(out, seq)
		start := time.Now()
		_ = c.SetDeadline(start.Add(tcpRoundTripBound))
		_, err := c.Write(out)
		if err == nil {
			_, err = io.ReadFull(c, in)
		}
		if err == nil && binary.BigEndian.Uint64(in) != seq {
			err = fmt.Errorf("round trip %d echoed %d", seq, binary.BigEndian.Uint64(in))
		}
		s.mu.Lock()
		if err != nil {
			s.breaks++
			s.lastBreak = fmt.Errorf("TCP round trip %d: %w", seq, err)
			_ = c.Close()
			s.conn = nil
		} else {
			s.roundTrips++
			s.maxRTT = max(s.maxRTT, time.Since(start))
		}
		s.mu.Unlock()
	}
}

// window is the part of the streams that one disruption is measured over.
type window struct {
	name       string
	started    time.Time
	fromSeq    uint64
	roundTrips int
	breaks     int
	sendFails  int
}

// windowResult is what a disruption did to the streams.
type windowResult struct {
	Name           string
	Duration       time.Duration
	UDPSent        uint64
	UDPLost        uint64
	UDPMaxGap      time.Duration
	UDPSendErrors  int
	TCPRoundTrips  int
	TCPBreaks      int
	TCPSlowest     time.Duration
	TCPBreakReason error
}

func (r windowResult) String() string {
	reason := ""
	if r.TCPBreakReason != nil {
		reason = fmt.Sprintf(" (last break: %v)", r.TCPBreakReason)
	}
	return fmt.Sprintf("%s: over %s, UDP %d sent / %d lost (%.2f%%; %d send errors), longest gap between arrivals %s; "+
		"TCP %d round trips on one connection, %d breaks%s, slowest round trip %s",
		r.Name, r.Duration.Round(time.Millisecond), r.UDPSent, r.UDPLost, 100*float64(r.UDPLost)/float64(max(r.UDPSent, 1)), r.UDPSendErrors,
		r.UDPMaxGap.Round(time.Millisecond), r.TCPRoundTrips, r.TCPBreaks, reason, r.TCPSlowest.Round(time.Millisecond))
}

// begin opens a measurement window before a disruption.
func (s *streams) begin(name string) window {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxRTT = 0
	s.udp.ResetMaxGap()
	udp := s.udp.Counts()
	return window{name: name, started: time.Now(), fromSeq: udp.Sent, roundTrips: s.roundTrips, breaks: s.breaks, sendFails: udp.SendFails}
}

// end closes the window once the disruption has converged: it waits until settlePackets more
// datagrams are sent, then (bounded) for those to arrive, and reports every datagram of the window
// that never arrived. The result is printed and attached to the report.
func (s *streams) end(w window) windowResult {
	target := s.udp.Counts().Sent + settlePackets
	Eventually(func() uint64 { return s.udp.Counts().Sent }).
		WithTimeout(10*time.Second).WithPolling(20*time.Millisecond).Should(BeNumerically(">=", target), "UDP sender stalled")
	missing := func() uint64 { return s.udp.Missing(w.fromSeq, target) }
	// Datagrams still in flight arrive within milliseconds; what is missing after the bound is lost.
	// Not an assertion: loss is a figure the caller judges.
	pollUntil(2*time.Second, func() bool { return missing() == 0 })
	lost := missing()
	udp := s.udp.Counts()
	s.mu.Lock()
	defer s.mu.Unlock()
	r := windowResult{
		Name: w.name, Duration: time.Since(w.started), UDPSent: target - w.fromSeq, UDPLost: lost,
		UDPMaxGap: udp.MaxGap, UDPSendErrors: udp.SendFails - w.sendFails,
		TCPRoundTrips: s.roundTrips - w.roundTrips, TCPBreaks: s.breaks - w.breaks, TCPSlowest: s.maxRTT,
	}
	if r.TCPBreaks > 0 {
		r.TCPBreakReason = s.lastBreak
	}
	fmt.Fprintf(GinkgoWriter, "traffic %s -> %s during %s\n", s.src, s.dst, r)
	AddReportEntry("traffic: "+w.name, r.String())
	return r
}

// close stops the streams and closes their sockets.
func (s *streams) close() {
	close(s.stop)
	s.mu.Lock()
	if s.conn != nil {
		_ = s.conn.Close()
	}
	s.mu.Unlock()
	s.udp.Close()
	s.wg.Wait()
}
