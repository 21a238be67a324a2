package proxy

import (
	"context"
	"fmt"
	"time"

	"github.com/plexus-net/plexus/ingress/translate"
)

// Listen opens a TCP listening socket on addr (host:port) and serves it until Stop with a
// persistent front (see front.go); it returns the Caddy listen address ("plexus/<addr>") to put
// in translate.Options. Every config loaded later serves the socket's requests through the
// front, so a config change never closes the socket nor a client's connection.
func (p *Proxy) Listen(addr string) (string, error) {
	f, err := registerFront(addr)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	p.fronts = append(p.fronts, f)
	p.mu.Unlock()
	return translate.FrontNetwork + "/" + addr, nil
}

// registerFront opens the front of addr, once per process.
func registerFront(addr string) (*front, error) {
	frontsMu.Lock()
	defer frontsMu.Unlock()
	if _, ok := fronts[addr]; ok {
		return nil, fmt.Errorf("listen on %s: already served by this process", addr)
	}
	f, err := newFront(addr)
	if err != nil {
		return nil, err
	}
	fronts[addr] = f
	return f, nil
}

// closeFronts stops the proxy's fronts, letting requests in flight finish for up to grace.
func (p *Proxy) closeFronts(grace time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	var first error
	for _, f := range p.fronts {
		frontsMu.Lock()
		delete(fronts, f.addr)
		frontsMu.Unlock()
		if err := f.shutdown(ctx); err != nil && first == nil {
			first = fmt.Errorf("stop serving %s: %w", f.addr, err)
		}
	}
	p.fronts = nil
	return first
}
