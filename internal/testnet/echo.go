package testnet

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// echoGreeting starts every request line; the server answers
	// "<peer address> <request line>".
	echoGreeting = "plexus-echo"
	// echoAttemptTimeout bounds one connect-send-receive attempt.
	echoAttemptTimeout = time.Second
	// echoRetryInterval is the pause between attempts of EchoEventually.
	echoRetryInterval = 50 * time.Millisecond
)

// EchoServer is a TCP server inside a namespace that answers each request
// line with the peer address it saw followed by the line.
type EchoServer struct {
	ln   net.Listener
	port uint16
	wg   sync.WaitGroup
}

// StartEchoServer listens on all addresses of ns (both families) on a
// random port. It stops on cleanup.
func StartEchoServer(t testing.TB, ns *Netns) *EchoServer {
	t.Helper()
	s := &EchoServer{}
	err := ns.Do(func() error {
		// The socket belongs to the namespace of the thread that created it,
		// and stays there: Accept may then run on any thread.
		ln, err := net.Listen("tcp", ":0")
		s.ln = ln
		return err
	})
	if err != nil {
		t.Fatalf("in %s: start echo server: %v", ns, err)
	}
	s.port = uint16(s.ln.Addr().(*net.TCPAddr).Port)
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(func() {
		_ = s.ln.Close()
		s.wg.Wait()
	})
	return s
}

// Port is the server's TCP port.
func (s *EchoServer) Port() uint16 { return s.port }

func (s *EchoServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(echoAttemptTimeout))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil {
				return
			}
			peer := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
			fmt.Fprintf(c, "%s %s", peer, line)
		}()
	}
}

// Echo connects from ns to target once, and returns the address the server
// saw as the client's (the source address after any NAT on the way).
func Echo(ns *Netns, target netip.AddrPort) (netip.Addr, error) {
	var c net.Conn
	err := ns.Do(func() error {
		var err error
		c, err = net.DialTimeout("tcp", target.String(), echoAttemptTimeout)
		return err
	})
	if err != nil {
		return netip.Addr{}, fmt.Errorf("from %s: connect to %s: %w", ns, target, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(echoAttemptTimeout))
	var nonce [4]byte
	_, _ = rand.Read(nonce[:])
	req := echoGreeting + " " + hex.EncodeToString(nonce[:]) + "\n"
	if _, err := c.Write([]byte(req)); err != nil {
		return netip.Addr{}, fmt.Errorf("from %s: send to %s: %w", ns, target, err)
	}
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return netip.Addr{}, fmt.Errorf("from %s: read reply of %s: %w", ns, target, err)
	}
	peer, rest, ok := strings.Cut(reply, " ")
	if !ok || rest != req {
		return netip.Addr{}, fmt.Errorf("from %s: unexpected reply %q from %s", ns, reply, target)
	}
	addr, err := netip.ParseAddr(peer)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("from %s: bad peer address in reply %q: %w", ns, reply, err)
	}
	return addr, nil
}

// EchoEventually retries Echo until it succeeds or bound passes (routes,
// neighbours and bridges may take a moment to settle), and fails the test
// with the last error if it never does.
func EchoEventually(t testing.TB, ns *Netns, target netip.AddrPort, bound time.Duration) netip.Addr {
	t.Helper()
	peer, err := PollEcho(ns, target, bound)
	if err != nil {
		t.Fatal(err)
	}
	return peer
}

// PollEcho is EchoEventually returning the error instead of failing.
func PollEcho(ns *Netns, target netip.AddrPort, bound time.Duration) (netip.Addr, error) {
	deadline := time.Now().Add(bound)
	for attempt := 1; ; attempt++ {
		peer, err := Echo(ns, target)
		if err == nil {
			return peer, nil
		}
		if time.Now().After(deadline) {
			return netip.Addr{}, fmt.Errorf("no echo within %s after %d attempts, last: %w", bound, attempt, err)
		}
		time.Sleep(echoRetryInterval) // pause between polls, not a synchronisation
	}
}
