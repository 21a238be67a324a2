package proxy

import (
	"fmt"
	"net"
)

// Listen opens a TCP listening socket on addr (host:port) for the life of the process and
// returns the Caddy listen address that serves it ("fd/N"), to put in translate.Options.
//
// Why not let Caddy bind addr itself: Caddy binds a new socket with SO_REUSEPORT for every config
// and closes the old one, and the kernel resets the connections still waiting in the old socket's
// accept queue, so a client connecting during a reload can see "connection reset". Every config
// served from one socket we own shares one accept queue, and a reload loses no connection.
func (p *Proxy) Listen(addr string) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("listen on %s: %w", addr, err)
	}
	defer l.Close() // the duplicate below keeps the socket open
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		return "", fmt.Errorf("socket of %s: %w", addr, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// Kept for the process's life: Caddy opens the descriptor by number at every load.
	p.sockets = append(p.sockets, f)
	return fmt.Sprintf("fd/%d", f.Fd()), nil
}
