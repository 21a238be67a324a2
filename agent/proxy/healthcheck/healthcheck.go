// Package healthcheck serves the health check node ports of Services with
// externalTrafficPolicy Local: an HTTP server per port that answers 200
// while the node has local endpoints for the Service and 503 otherwise, so
// a cloud load balancer sends traffic only to nodes that can serve it
// without leaving the node. Both service-proxy backends (nftables and IPVS)
// drive it; Ports turns a proxy.Model into what Sync takes.
package healthcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// readHeaderTimeout bounds a client's request headers.
	readHeaderTimeout = 5 * time.Second
	// shutdownTimeout bounds stopping one server.
	shutdownTimeout = 2 * time.Second
)

// ListenFunc opens the listener of a port (tests open it in a namespace).
type ListenFunc func(port uint16) (net.Listener, error)

// ListenAll listens on every address of the caller's namespace.
func ListenAll(port uint16) (net.Listener, error) {
	return net.Listen("tcp", ":"+strconv.Itoa(int(port)))
}

// Servers runs one HTTP server per health check node port.
type Servers struct {
	listen ListenFunc

	mu      sync.Mutex
	servers map[uint16]*server
}

type server struct {
	count atomic.Int64
	http  *http.Server
}

// New returns Servers that open listeners with listen (ListenAll when nil).
func New(listen ListenFunc) *Servers {
	if listen == nil {
		listen = ListenAll
	}
	return &Servers{listen: listen, servers: map[uint16]*server{}}
}

// Response is the JSON body of a health check answer.
type Response struct {
	// LocalEndpoints is the number of endpoints of the Service on this node.
	LocalEndpoints int `json:"localEndpoints"`
}

// Sync starts servers for new ports, updates counts, and stops servers of
// ports no longer wanted. Ports that fail to listen are reported together;
// the others are served anyway.
func (s *Servers) Sync(localEndpoints map[uint16]int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for port, srv := range s.servers {
		if _, ok := localEndpoints[port]; !ok {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			_ = srv.http.Shutdown(ctx)
			cancel()
			delete(s.servers, port)
		}
	}
	for port, n := range localEndpoints {
		srv, ok := s.servers[port]
		if !ok {
			ln, err := s.listen(port)
			if err != nil {
				errs = append(errs, fmt.Errorf("listen on health check node port %d: %w", port, err))
				continue
			}
			srv = &server{}
			srv.http = &http.Server{Handler: srv, ReadHeaderTimeout: readHeaderTimeout}
			s.servers[port] = srv
			go func() { _ = srv.http.Serve(ln) }()
		}
		srv.count.Store(int64(n))
	}
	return errors.Join(errs...)
}

// Close stops every server.
func (s *Servers) Close() error { return s.Sync(nil) }

// ServeHTTP answers 200 with local endpoints, 503 without.
func (srv *server) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	n := int(srv.count.Load())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if n > 0 {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(Response{LocalEndpoints: n})
}
