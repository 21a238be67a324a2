package proxy

import (
	"net"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Misdirected is the Caddy handler "plexus_misdirected" (translate.Misdirected in the config) at
// the head of an HTTPS Gateway port: a request whose Host header selects another listener than
// the TLS server name (SNI) it came in with gets 421 Misdirected Request (RFC 9110, 15.5.20).
// An HTTP/2 client reuses a connection for every host its certificate covers, so without this a
// request for listener B's host, sent over a connection made for listener A, would be served
// with A's TLS settings and routes. Requests without a server name go on.
type Misdirected struct {
	// Hostnames are the port's listener hostnames, lower case: "" for a listener without one,
	// "*.example.com" for a wildcard.
	Hostnames []string `json:"hostnames"`
}

func init() { caddy.RegisterModule(&Misdirected{}) }

// CaddyModule implements caddy.Module.
func (*Misdirected) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.plexus_misdirected", New: func() caddy.Module { return new(Misdirected) }}
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (m *Misdirected) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if r.TLS == nil || r.TLS.ServerName == "" {
		return next.ServeHTTP(w, r)
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if bestListener(m.Hostnames, r.TLS.ServerName) != bestListener(m.Hostnames, host) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusMisdirectedRequest)
		_, err := w.Write([]byte("misdirected request: this connection's TLS server name is for another listener\n"))
		return err
	}
	return next.ServeHTTP(w, r)
}

// bestListener returns the index of the listener hostname that serves name, as the Gateway API
// picks it: an equal hostname, else the wildcard with the longest suffix, else the listener
// without a hostname; -1 when none does.
func bestListener(hostnames []string, name string) int {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	best, bestLen := -1, -1
	for i, h := range hostnames {
		switch {
		case h == name:
			return i
		case h == "":
			if bestLen < 0 {
				best, bestLen = i, 0
			}
		case strings.HasPrefix(h, "*."):
			suffix := h[1:] // ".example.com"
			if strings.HasSuffix(name, suffix) && len(name) > len(suffix) && len(suffix) > bestLen {
				best, bestLen = i, len(suffix)
			}
		}
	}
	return best
}

var _ caddyhttp.MiddlewareHandler = (*Misdirected)(nil)
