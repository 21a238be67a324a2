package proxy

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Mirror is the Caddy handler "plexus_mirror" (translate.Mirror in the config): it sends a copy
// of a sampled share of requests to one of its upstreams and ignores the answer, then passes the
// request on unchanged. It implements the Gateway API's RequestMirror filter, which Caddy has no
// handler for. Copies are best effort: a request whose body is larger than MaxBody, or one that
// arrives while MaxInFlight copies are still under way, is not mirrored.
type Mirror struct {
	// Upstreams are host:port addresses; each copy goes to one, round-robin.
	Upstreams []string `json:"upstreams"`
	// Numerator/Denominator is the share of requests mirrored; Denominator 0 mirrors all.
	Numerator   int `json:"numerator,omitempty"`
	Denominator int `json:"denominator,omitempty"`

	client   *http.Client
	next     atomic.Uint64
	inFlight atomic.Int64
}

// Limits of mirroring: the body buffered for a copy, concurrent copies, time per copy.
const (
	mirrorMaxBody     = 1 << 20
	mirrorMaxInFlight = 256
	mirrorTimeout     = 10 * time.Second
)

func init() { caddy.RegisterModule(&Mirror{}) }

// CaddyModule implements caddy.Module.
func (*Mirror) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.plexus_mirror", New: func() caddy.Module { return new(Mirror) }}
}

// Provision implements caddy.Provisioner.
func (m *Mirror) Provision(caddy.Context) error {
	m.client = &http.Client{
		Timeout: mirrorTimeout,
		// Copies never follow redirects: the mirror's answer is thrown away anyway.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second},
	}
	return nil
}

// Cleanup implements caddy.CleanerUpper: the copies' idle connections close with the config.
func (m *Mirror) Cleanup() error {
	if m.client != nil {
		m.client.CloseIdleConnections()
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (m *Mirror) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if len(m.Upstreams) > 0 && m.sampled() {
		m.copyRequest(r)
	}
	return next.ServeHTTP(w, r)
}

func (m *Mirror) sampled() bool {
	if m.Denominator <= 0 {
		return true
	}
	return rand.IntN(m.Denominator) < m.Numerator
}

// copyRequest starts sending a copy of r; r's body stays readable for the next handler.
func (m *Mirror) copyRequest(r *http.Request) {
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		buf, err := io.ReadAll(io.LimitReader(r.Body, mirrorMaxBody+1))
		r.Body = readCloser{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
		if err != nil || len(buf) > mirrorMaxBody {
			return
		}
		body = buf
	}
	if m.inFlight.Add(1) > mirrorMaxInFlight {
		m.inFlight.Add(-1)
		return
	}
	upstream := m.Upstreams[m.next.Add(1)%uint64(len(m.Upstreams))]
	ctx, cancel := context.WithTimeout(context.Background(), mirrorTimeout)
	req, err := http.NewRequestWithContext(ctx, r.Method, "http://"+upstream+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		cancel()
		m.inFlight.Add(-1)
		return
	}
	req.Header = r.Header.Clone()
	req.Host = r.Host
	go func() {
		defer m.inFlight.Add(-1)
		defer cancel()
		resp, err := m.client.Do(req)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}()
}

// readCloser reads from a replayed body and closes the original.
type readCloser struct {
	io.Reader
	io.Closer
}

var (
	_ caddy.Provisioner           = (*Mirror)(nil)
	_ caddy.CleanerUpper          = (*Mirror)(nil)
	_ caddyhttp.MiddlewareHandler = (*Mirror)(nil)
)
