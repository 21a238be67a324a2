package proxy

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Sizes and times of FastProxy's upstream connections.
const (
	// fastReadBuffer and fastWriteBuffer are each connection's buffers: a typical response head
	// and body fit the first, a request head the second.
	fastReadBuffer  = 8 << 10
	fastWriteBuffer = 4 << 10
	// fastProbeAfter is how long a connection may sit idle before it is checked for a close by
	// the upstream (one non-blocking peek) before its next use. Below it the check would cost a
	// syscall per request for nothing; above it, an upstream's idle timeout (1 s or more in
	// every server we know) has had time to close it, and a request sent on it would fail with
	// nothing to tell whether the upstream saw it.
	fastProbeAfter = time.Second
	// fastDefaultIdle and fastDefaultIdleTimeout are Caddy's defaults, used when the transport
	// does not set keep_alive.
	fastDefaultIdle        = 32
	fastDefaultIdleTimeout = 2 * time.Minute
)

// upstream is one endpoint of a FastProxy: its address, its passive health and its idle
// keep-alive connections.
type upstream struct {
	addr string
	// downUntil is when a failed endpoint may be chosen again (unix nanoseconds, 0 for never
	// failed).
	downUntil atomic.Int64

	mu     sync.Mutex
	idle   []*upConn // most recently used last
	closed bool
}

// available says whether the endpoint may be chosen at now (unix nanoseconds).
func (u *upstream) available(now int64) bool { return u.downUntil.Load() <= now }

// upConn is one HTTP/1.1 connection to an upstream, used by one request at a time.
type upConn struct {
	nc        net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	up        *upstream
	raw       syscall.RawConn // nil when nc has no file descriptor
	send      *sender
	idleSince time.Time
	// interrupted is set when the request's context ended while the connection was in use:
	// its deadline was moved to the past and it must not be used again.
	interrupted atomic.Bool
	// interrupt is the bound method value handed to context.AfterFunc, made once per
	// connection instead of once per request.
	interrupt func()
}

// aLongTimeAgo is a deadline that makes every blocked read and write return at once.
var aLongTimeAgo = time.Unix(1, 0)

func newUpConn(nc net.Conn, up *upstream) *upConn {
	c := &upConn{nc: nc, up: up, br: bufio.NewReaderSize(nc, fastReadBuffer)}
	if sc, ok := nc.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	c.send = newSender(nc, c.raw)
	c.bw = bufio.NewWriterSize(c.send, fastWriteBuffer)
	c.interrupt = func() {
		c.interrupted.Store(true)
		_ = c.nc.SetDeadline(aLongTimeAgo)
	}
	return c
}

// pool hands out connections to an upstream: the most recently used idle one, else a new one.
type pool struct {
	dialer      net.Dialer
	maxIdle     int
	idleTimeout time.Duration
}

// get returns an idle connection to u (reused true) or dials one. A dial error is a dialError.
func (p *pool) get(ctx context.Context, u *upstream) (c *upConn, reused bool, err error) {
	now := time.Now()
	for {
		u.mu.Lock()
		n := len(u.idle)
		if n == 0 {
			u.mu.Unlock()
			break
		}
		c = u.idle[n-1]
		u.idle[n-1] = nil
		u.idle = u.idle[:n-1]
		u.mu.Unlock()
		idle := now.Sub(c.idleSince)
		if idle > p.idleTimeout || (idle > fastProbeAfter && !c.alive()) {
			c.nc.Close()
			continue
		}
		return c, true, nil
	}
	c, err = p.dial(ctx, u)
	return c, false, err
}

// dial opens a new connection to u.
func (p *pool) dial(ctx context.Context, u *upstream) (*upConn, error) {
	nc, err := p.dialer.DialContext(ctx, "tcp", u.addr)
	if err != nil {
		return nil, dialError{err}
	}
	return newUpConn(nc, u), nil
}

// put keeps c for the next request to its upstream, or closes it when the pool is full or
// closed. The oldest idle connection is dropped when it outlived the idle timeout, so an
// upstream whose traffic fell keeps only the connections it still uses.
func (p *pool) put(c *upConn) {
	if c.br.Buffered() > 0 {
		// Bytes the upstream sent after a complete response: the connection is out of step.
		c.nc.Close()
		return
	}
	c.idleSince = time.Now()
	u := c.up
	u.mu.Lock()
	if u.closed || len(u.idle) >= p.maxIdle {
		u.mu.Unlock()
		c.nc.Close()
		return
	}
	var stale *upConn
	if len(u.idle) > 0 && c.idleSince.Sub(u.idle[0].idleSince) > p.idleTimeout {
		stale = u.idle[0]
		copy(u.idle, u.idle[1:])
		u.idle[len(u.idle)-1] = nil
		u.idle = u.idle[:len(u.idle)-1]
	}
	u.idle = append(u.idle, c)
	u.mu.Unlock()
	if stale != nil {
		stale.nc.Close()
	}
}

// closeIdle closes u's idle connections; connections in use close when they are put back.
func (u *upstream) closeIdle() {
	u.mu.Lock()
	idle := u.idle
	u.idle, u.closed = nil, true
	u.mu.Unlock()
	for _, c := range idle {
		c.nc.Close()
	}
}

// alive peeks at an idle connection without blocking: an upstream that closed it has left an
// end of file (or a reset) to read; one that keeps it has left nothing.
func (c *upConn) alive() bool {
	if c.raw == nil {
		return true
	}
	var buf [1]byte
	live := false
	err := c.raw.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Nothing to read is the only sign of a healthy idle connection; an end of file,
		// a reset or unsolicited bytes all mean it cannot carry a request.
		live = errors.Is(rerr, syscall.EAGAIN)
		return true
	})
	return err == nil && live
}

// dialError is a failure to connect: nothing was sent, so any request may go to another
// endpoint.
type dialError struct{ err error }

func (e dialError) Error() string { return "dial upstream: " + e.err.Error() }
func (e dialError) Unwrap() error { return e.err }
