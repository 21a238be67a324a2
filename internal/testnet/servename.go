package testnet

import (
	"fmt"
	"net"
	"sync"
	"testing"
)

// ServeName answers, in ns on port (TCP and UDP, both families; 0: a port the kernel picks for
// TCP, and UDP on the same one), every request with "<name> <peer address>", so a test sees which
// backend answered and the source address it saw. It returns the port and stops on cleanup.
func ServeName(t testing.TB, ns *Netns, name string, port uint16) uint16 {
	t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	err := ns.Do(func() (err error) {
		if ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port)); err != nil {
			return err
		}
		// A throwaway namespace has no other sockets: the TCP port is free for UDP too.
		port = uint16(ln.Addr().(*net.TCPAddr).Port)
		pc, err = net.ListenPacket("udp", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		t.Fatalf("in %s: serve on %d: %v", ns, port, err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			peer := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
			fmt.Fprintf(c, "%s %s\n", name, peer)
			_ = c.Close()
		}
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			peer := from.(*net.UDPAddr).AddrPort().Addr().Unmap()
			_, _ = pc.WriteTo(fmt.Appendf(nil, "%s %s\n", name, peer), from)
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); _ = pc.Close(); wg.Wait() })
	return port
}
