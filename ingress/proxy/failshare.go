package proxy

import (
	"math/rand/v2"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// FailShare is the Caddy handler "plexus_fail_share" (translate.FailShare in the config): it
// answers 500 to a random Numerator/Denominator share of requests and passes the others on. It
// gives the invalid backendRefs of a Gateway API rule their weight's share of 500s, as the API
// requires, while the valid ones share the rest.
type FailShare struct {
	Numerator   int `json:"numerator"`
	Denominator int `json:"denominator"`
}

func init() { caddy.RegisterModule(&FailShare{}) }

// CaddyModule implements caddy.Module.
func (*FailShare) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.plexus_fail_share", New: func() caddy.Module { return new(FailShare) }}
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (f *FailShare) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if f.Denominator > 0 && rand.IntN(f.Denominator) < f.Numerator {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("500 internal server error: invalid backend\n"))
		return nil
	}
	return next.ServeHTTP(w, r)
}

var _ caddyhttp.MiddlewareHandler = (*FailShare)(nil)
