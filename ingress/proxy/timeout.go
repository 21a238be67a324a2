package proxy

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Timeout is the Caddy handler "plexus_timeout" (translate.Timeout in the config): the rest of
// the route must answer within Duration, else the request is cancelled and gets 504 Gateway
// Timeout. It implements the Gateway API's HTTPRoute timeouts, which Caddy has no per-route
// setting for.
type Timeout struct {
	Duration caddy.Duration `json:"duration"`
}

func init() { caddy.RegisterModule(&Timeout{}) }

// CaddyModule implements caddy.Module.
func (*Timeout) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.plexus_timeout", New: func() caddy.Module { return new(Timeout) }}
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (t *Timeout) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if t.Duration <= 0 {
		return next.ServeHTTP(w, r)
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(t.Duration))
	defer cancel()
	err := next.ServeHTTP(w, r.WithContext(ctx))
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return caddyhttp.Error(http.StatusGatewayTimeout, err)
	}
	return err
}

var _ caddyhttp.MiddlewareHandler = (*Timeout)(nil)
