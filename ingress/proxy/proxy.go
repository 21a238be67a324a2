// Package proxy runs a Caddy configuration made by ingress/translate inside this process and
// replaces it only when it changed.
//
// Caddy keeps one running configuration per process, so a process has one Proxy. Replacing the
// configuration loses no request: the sockets, TLS handshakes and client connections belong to
// persistent fronts (see Listen and front.go) that switch to the new config's handlers when it
// starts; requests in flight finish on the config they started on.
package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/plexus-net/plexus/ingress/translate"
)

// Proxy loads configurations into the process's Caddy. The zero value is ready to use; it is safe
// for concurrent use.
type Proxy struct {
	mu      sync.Mutex
	running string   // sha256 of the running config, "" before the first load
	fronts  []*front // listening sockets opened by Listen
	// dynamic are the fronts opened because a config listens on them (the Gateways' internal
	// ports), by address; they close when a loaded config no longer does.
	dynamic map[string]*front
	// unserved are the addresses the running config listens on whose socket could not be opened.
	unserved []string
}

// LoadResult says what a Load did.
type LoadResult struct {
	// Changed is false when the config equals the running one and nothing was done.
	Changed bool
	// Hash is the sha256 of the config now running (hex).
	Hash string
	// Duration is how long Caddy took to start the new config and stop the old one.
	Duration time.Duration
	// Unserved are the listen addresses of the config whose socket could not be opened (a port
	// taken by something else); everything else is served, and every later Load tries them again.
	Unserved []string
	// UnservedErr says why, nil when Unserved is empty.
	UnservedErr error
}

// Load runs cfg unless it is the config already running. On error the previous config keeps
// running unchanged and the next Load of the same cfg tries again.
func (p *Proxy) Load(cfg translate.Config) (LoadResult, error) {
	b, err := cfg.JSON()
	if err != nil {
		return LoadResult{}, err
	}
	return p.LoadJSON(b)
}

// LoadJSON is Load for a config already encoded as Caddy JSON.
func (p *Proxy) LoadJSON(cfgJSON []byte) (LoadResult, error) {
	sum := sha256.Sum256(cfgJSON)
	hash := hex.EncodeToString(sum[:])
	p.mu.Lock()
	defer p.mu.Unlock()
	if hash == p.running && len(p.unserved) == 0 {
		return LoadResult{Hash: hash}, nil
	}
	start := time.Now()
	// A socket that cannot be opened costs its own server only, not the whole config: one
	// Gateway's port taken by something else must not freeze every other change.
	opened, unserved, openErr := p.openFronts(cfgJSON)
	if hash == p.running && len(opened) == 0 {
		p.unserved = unserved
		return LoadResult{Hash: hash, Unserved: unserved, UnservedErr: openErr}, nil
	}
	// forceReload: our own hash already said the config changed; Caddy's comparison of its
	// re-encoded JSON must not second-guess it.
	if err := caddy.Load(cfgJSON, true); err != nil {
		p.closeDynamic(opened)
		return LoadResult{Hash: p.running}, fmt.Errorf("load caddy config %.12s: %w", hash, err)
	}
	p.running, p.unserved = hash, unserved
	p.closeUnused(cfgJSON)
	return LoadResult{Changed: true, Hash: hash, Duration: time.Since(start), Unserved: unserved, UnservedErr: openErr}, nil
}

// Running is the hash of the running config, "" when none was loaded.
func (p *Proxy) Running() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running
}

// stopGrace bounds how long Stop waits for requests in flight.
const stopGrace = 5 * time.Second

// Stop stops the running config and closes the sockets opened by Listen after the requests in
// flight finish (at most stopGrace). The Proxy cannot serve again.
func (p *Proxy) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running = ""
	frontErr := p.closeFronts(stopGrace)
	if err := caddy.Stop(); err != nil {
		return fmt.Errorf("stop caddy: %w", err)
	}
	return frontErr
}
