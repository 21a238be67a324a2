package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/plexus-net/plexus/ingress/translate"
)

// Listen opens a TCP listening socket on addr (host:port) and serves it until Stop with a
// persistent front (see front.go); it returns the Caddy listen address ("plexus/<addr>") to put
// in translate.Options. Every config loaded later serves the socket's requests through the
// front, so a config change never closes the socket nor a client's connection.
func (p *Proxy) Listen(addr string) (string, error) {
	f, err := registerFront(addr, false)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	p.fronts = append(p.fronts, f)
	p.mu.Unlock()
	return translate.FrontNetwork + "/" + addr, nil
}

// registerFront opens the front of addr (see newFront for h2c), once per process.
func registerFront(addr string, h2c bool) (*front, error) {
	frontsMu.Lock()
	defer frontsMu.Unlock()
	if _, ok := fronts[addr]; ok {
		return nil, fmt.Errorf("listen on %s: already served by this process", addr)
	}
	f, err := newFront(addr, h2c)
	if err != nil {
		return nil, err
	}
	fronts[addr] = f
	return f, nil
}

// frontAddresses are the addresses of the front network that cfgJSON's servers listen on.
func frontAddresses(cfgJSON []byte) (map[string]bool, error) {
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Listen []string `json:"listen"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		return nil, fmt.Errorf("read the listen addresses: %w", err)
	}
	out := map[string]bool{}
	for _, srv := range cfg.Apps.HTTP.Servers {
		for _, l := range srv.Listen {
			if addr, ok := strings.CutPrefix(l, translate.FrontNetwork+"/"); ok {
				out[addr] = true
			}
		}
	}
	return out, nil
}

// openFronts opens a front for every front address of cfgJSON that has none yet (a Gateway's
// internal port) and returns those it opened, and the addresses it could not open with the
// reasons.
func (p *Proxy) openFronts(cfgJSON []byte) ([]*front, []string, error) {
	addrs, err := frontAddresses(cfgJSON)
	if err != nil {
		return nil, nil, err
	}
	static := map[string]bool{}
	for _, f := range p.fronts {
		static[f.addr] = true
	}
	var (
		opened   []*front
		unserved []string
		errs     []error
	)
	for _, addr := range slices.Sorted(maps.Keys(addrs)) {
		if static[addr] || p.dynamic[addr] != nil {
			continue
		}
		f, err := registerFront(addr, true)
		if err != nil {
			unserved = append(unserved, addr)
			errs = append(errs, err)
			continue
		}
		if p.dynamic == nil {
			p.dynamic = map[string]*front{}
		}
		p.dynamic[addr] = f
		opened = append(opened, f)
	}
	return opened, unserved, errors.Join(errs...)
}

// closeUnused closes the dynamic fronts that the running config cfgJSON no longer listens on; the
// requests they are serving finish first (at most stopGrace).
func (p *Proxy) closeUnused(cfgJSON []byte) {
	addrs, err := frontAddresses(cfgJSON)
	if err != nil {
		return // Caddy loaded it, so it parses; keep every front rather than guess
	}
	var unused []*front
	for addr, f := range p.dynamic {
		if !addrs[addr] {
			unused = append(unused, f)
		}
	}
	p.closeDynamic(unused)
}

// closeDynamic forgets the dynamic fronts fs, closes their sockets at once (a later config may
// listen on the port again) and lets their requests in flight finish in the background.
func (p *Proxy) closeDynamic(fs []*front) {
	for _, f := range fs {
		delete(p.dynamic, f.addr)
		frontsMu.Lock()
		delete(fronts, f.addr)
		frontsMu.Unlock()
		_ = f.ln.Close()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), stopGrace)
			defer cancel()
			_ = f.shutdown(ctx)
		}()
	}
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
	for _, f := range p.dynamic {
		frontsMu.Lock()
		delete(fronts, f.addr)
		frontsMu.Unlock()
		if err := f.shutdown(ctx); err != nil && first == nil {
			first = fmt.Errorf("stop serving %s: %w", f.addr, err)
		}
	}
	p.fronts, p.dynamic = nil, nil
	return first
}
