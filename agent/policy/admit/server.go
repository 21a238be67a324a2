package admit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/plexus-net/plexus/agent/policy/admit/wire"
)

const (
	// DefaultTimeout bounds one request on the agent's side. A request that says how long the
	// plugin waits gets its answer answerMargin before that, so the agent's reason for refusing
	// (rather than the plugin's timeout) is what the kubelet reports.
	DefaultTimeout = 30 * time.Second
	answerMargin   = time.Second
	// requestReadTimeout bounds reading the request line: the plugin writes it at once.
	requestReadTimeout = 5 * time.Second
	// socketMode lets only root (the runtime that runs plexus-cni) connect.
	socketMode = 0o600
)

// Server answers plexus-cni's admission requests on a unix socket with a Tracker.
type Server struct {
	// Tracker decides; required.
	Tracker *Tracker
	// Timeout bounds a request; zero means DefaultTimeout.
	Timeout time.Duration
}

// Listen creates the socket at path: it makes the directory, removes a socket a previous agent
// left (a unix socket file outlives its listener) and restricts the socket to root.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("policy admission socket: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("policy admission socket: remove stale %s: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("policy admission socket: %w", err)
	}
	if err := os.Chmod(path, socketMode); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("policy admission socket: %w", err)
	}
	return ln, nil
}

// Serve answers requests on ln until ctx ends, then closes ln (which removes the socket file)
// and waits for the requests in progress. It returns nil after ctx ended, or the accept error.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("policy admission socket: accept: %w", err)
		}
		wg.Go(func() {
			defer conn.Close()
			s.handle(ctx, conn)
		})
	}
}

// handle serves one request: read it, admit the pod, answer.
func (s *Server) handle(ctx context.Context, conn net.Conn) {
	log := crlog.FromContext(ctx).WithName("policy-admission")
	_ = conn.SetReadDeadline(time.Now().Add(requestReadTimeout))
	r := bufio.NewReader(conn)
	var req wire.Request
	if err := wire.ReadLine(r, &req); err != nil {
		_ = wire.WriteLine(conn, wire.Response{Error: "bad request: " + err.Error()})
		return
	}
	if err := req.Validate(); err != nil {
		_ = wire.WriteLine(conn, wire.Response{Error: "bad request: " + err.Error()})
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	timeout := requestTimeout(s.Timeout, req.WaitMillis)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The plugin closes the connection when it gives up (or is killed): stop waiting then.
	go func() {
		_, _ = r.ReadByte()
		cancel()
	}()
	start := time.Now()
	pod := PodRef{Namespace: req.Namespace, Name: req.Name, UID: types.UID(req.UID)}
	err := s.Tracker.Admit(ctx, pod, req.IPs)
	resp := wire.Response{Enforced: err == nil}
	if err != nil {
		resp.Error = err.Error()
		log.Info("pod not admitted", "pod", pod.String(), "ips", req.IPs, "containerID", req.ContainerID, "err", err.Error())
	} else {
		log.V(2).Info("pod admitted", "pod", pod.String(), "ips", req.IPs, "wait", time.Since(start))
	}
	_ = conn.SetWriteDeadline(time.Now().Add(requestReadTimeout))
	_ = wire.WriteLine(conn, resp)
}

// requestTimeout is how long the agent works on a request: its own bound (DefaultTimeout when
// zero), shortened to answer answerMargin before the plugin stops waiting (never below half of
// what the plugin waits).
func requestTimeout(own time.Duration, waitMillis int64) time.Duration {
	if own == 0 {
		own = DefaultTimeout
	}
	if waitMillis <= 0 {
		return own
	}
	wait := time.Duration(waitMillis) * time.Millisecond
	return min(own, max(wait-answerMargin, wait/2))
}
