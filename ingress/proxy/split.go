package proxy

import (
	"fmt"
	"net/http"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Split is the Caddy handler "plexus_split" (translate.Split in the config): each request goes
// to one of Groups, chosen by smooth weighted round-robin (exact per cycle of the weights' sum,
// and interleaved), and runs that group's routes. It implements HTTPRoute backendRefs that have
// filters of their own: each group is one backend with its filters, so a backend's request and
// response header changes apply exactly to the requests it serves, which one reverse proxy
// choosing among all backends' endpoints cannot do.
type Split struct {
	Groups []SplitGroup `json:"groups"`

	mu      sync.Mutex
	current []int
}

// SplitGroup is one weighted choice of a Split.
type SplitGroup struct {
	Weight int                 `json:"weight"`
	Routes caddyhttp.RouteList `json:"routes"`
}

func init() { caddy.RegisterModule(&Split{}) }

// CaddyModule implements caddy.Module.
func (*Split) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.plexus_split", New: func() caddy.Module { return new(Split) }}
}

// Provision implements caddy.Provisioner.
func (s *Split) Provision(ctx caddy.Context) error {
	if len(s.Groups) == 0 {
		return fmt.Errorf("plexus_split: no groups")
	}
	for i := range s.Groups {
		if s.Groups[i].Weight <= 0 {
			return fmt.Errorf("plexus_split: group %d: weight %d, want > 0", i, s.Groups[i].Weight)
		}
		if err := s.Groups[i].Routes.Provision(ctx); err != nil {
			return fmt.Errorf("plexus_split: group %d: %w", i, err)
		}
	}
	s.current = make([]int, len(s.Groups))
	return nil
}

// pick returns the next group: each gains its weight, the largest is chosen and loses the sum.
func (s *Split) pick() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	best, total := 0, 0
	for i, g := range s.Groups {
		s.current[i] += g.Weight
		total += g.Weight
		if s.current[i] > s.current[best] {
			best = i
		}
	}
	s.current[best] -= total
	return best
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (s *Split) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return s.Groups[s.pick()].Routes.Compile(next).ServeHTTP(w, r)
}

var (
	_ caddy.Provisioner           = (*Split)(nil)
	_ caddyhttp.MiddlewareHandler = (*Split)(nil)
)
