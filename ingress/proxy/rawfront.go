package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The raw path: a front's plain-text connections are read here first, one goroutine per
// connection, and a request whose route is an Ingress path to a plain backend (rawTable) is
// forwarded by its FastProxy straight from and to the connection's buffers. Everything else,
// and every connection from its first such request on, is handed to the front's http.Server
// with the bytes read so far, and Caddy serves it as before.
//
// Why: net/http's server and Caddy's server cost more per request than the proxying itself: a
// background read and its goroutine hand-off, a read that fails with EAGAIN, a context, a
// header map and a request clone, a replacer. With them, plexus-ingress used about twice
// nginx's CPU per request (issue #12); the raw path does what nginx does per request: one
// read and one write on each side.
//
// What it leaves out, compared with the handed-over path: a client that goes away while its
// backend has not answered is noticed only when the answer is written (as with any
// synchronous proxy), and a response without a Content-Type is passed on without one (net/http
// would guess one).

// Sizes and times of the raw path.
const (
	// rawReadBuffer holds a request head; a larger head is handed over to net/http.
	rawReadBuffer = 8 << 10
	// rawWriteBuffer holds a typical response head and body, written with one system call.
	rawWriteBuffer = 4 << 10
	// rawIdleTimeout is how long a connection may wait for its next request, as the front's
	// http.Server's IdleTimeout; rawHeadTimeout how long a head that began may take to be
	// complete, as its ReadHeaderTimeout.
	rawIdleTimeout = 5 * time.Minute
	rawHeadTimeout = time.Minute
	// rawDeadlineSlack is how stale the idle deadline may get before it is moved: moving it is
	// a timer update, not worth making per request.
	rawDeadlineSlack = time.Second
	// rawLinger is how long a connection closed with a request body left unread keeps
	// discarding it (net/http's server waits as long).
	rawLinger = 500 * time.Millisecond
)

// The states of a raw connection, for a graceful shutdown.
const (
	rawIdle    int32 = iota // between requests: may be closed
	rawBusy                 // serving a request: finishes it
	rawClosing              // shut down
)

// rawConn is one client connection on the raw path.
type rawConn struct {
	f        *front
	nc       net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	send     *sender
	head     rawHead
	headBuf  []byte
	clientIP string
	state    atomic.Int32
	// table is the raw table of the request being served.
	table *rawTable
	// deadline is the read deadline set last (zero: none); writeSet is when the write deadline
	// was set last.
	deadline time.Time
	writeSet time.Time
	// unreadBody says that the client may still be sending a body nobody reads.
	unreadBody bool
}

// rawRequests counts the requests the raw path took (the rest went to the http.Server).
var rawRequests atomic.Int64

var rawReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, rawReadBuffer) }}

func newRawConn(f *front, nc net.Conn) *rawConn {
	c := &rawConn{f: f, nc: nc}
	var raw syscall.RawConn
	if sc, ok := nc.(syscall.Conn); ok {
		raw, _ = sc.SyscallConn()
	}
	c.send = newSender(nc, raw)
	c.send.written = c.responseWritten
	c.bw = bufio.NewWriterSize(deadlineWriter{c}, rawWriteBuffer)
	c.br = rawReaders.Get().(*bufio.Reader)
	c.br.Reset(nc)
	if host, _, err := net.SplitHostPort(nc.RemoteAddr().String()); err == nil {
		c.clientIP, _, _ = strings.Cut(host, "%") // a zone is not part of the address
	}
	return c
}

// responseWritten is called when a response's last bytes are out and before the connection waits
// for the next request (sender): from here on the connection is idle, and a shutdown that
// began already means no wait.
func (c *rawConn) responseWritten() bool {
	c.state.CompareAndSwap(rawBusy, rawIdle)
	return !c.f.isStopping()
}

// acceptLoop accepts the front's connections: TLS ones and those of a config without a raw
// table go to the http.Server at once, the others to the raw path.
func (f *front) acceptLoop() {
	var pause time.Duration
	for {
		nc, err := f.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				close(f.accepted)
				return
			}
			// Out of descriptors or buffers, or an aborted connection: wait a little longer
			// each time, as net/http's server does, then try again.
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			time.Sleep(pause)
			continue
		}
		pause = 0
		st := f.state.Load()
		switch {
		case st == nil || st.handler == nil:
			_ = nc.Close()
		case st.tls != nil:
			f.handOver(tlsServer(f, nc))
		case st.raw == nil:
			f.handOver(nc)
		default:
			go f.serveRaw(nc)
		}
	}
}

// handOver gives nc to the front's http.Server.
func (f *front) handOver(nc net.Conn) {
	select {
	case f.handoff <- nc:
	case <-f.stopping:
		_ = nc.Close()
	}
}

// serveRaw serves nc's requests until one is not the raw path's.
func (f *front) serveRaw(nc net.Conn) {
	c := newRawConn(f, nc)
	if !f.track(c) {
		c.close()
		return
	}
	defer f.untrack(c)
	defer func() {
		// A panic ends this connection only, as in net/http's server.
		if v := recover(); v != nil {
			log.Printf("plexus-ingress: raw path: panic serving %s: %v\n%s", nc.RemoteAddr(), v, debug.Stack())
			_ = nc.Close()
		}
	}()
	for {
		st := f.state.Load()
		if st == nil || st.handler == nil {
			c.close()
			return
		}
		if st.raw == nil || accessLog.Load() != nil {
			c.handOver()
			return
		}
		c.keepIdleDeadline()
		if c.state.Load() == rawClosing {
			// A stop set its deadline before keepIdleDeadline moved it.
			c.close()
			return
		}
		n, err := c.peekHead()
		if errors.Is(err, bufio.ErrBufferFull) {
			c.handOver()
			return
		}
		if err != nil {
			c.close() // the client closed, went quiet for too long, or the front shuts down
			return
		}
		// The config may have changed while the request came.
		if st = f.state.Load(); st == nil || st.raw == nil {
			c.handOver()
			return
		}
		fp := c.route(st.raw, n)
		if fp == nil {
			c.handOver()
			return
		}
		c.table = st.raw
		if !c.state.CompareAndSwap(rawIdle, rawBusy) {
			c.close()
			return
		}
		_, _ = c.br.Discard(n)
		rawRequests.Add(1)
		keep := fp.serveRaw(c)
		// An armed flush made the connection idle already (responseWritten).
		c.state.CompareAndSwap(rawBusy, rawIdle)
		if !keep || c.head.close || c.state.Load() != rawIdle || f.isStopping() {
			c.close()
			return
		}
	}
}

// peekHead waits for a complete request head in the read buffer and returns its length, without
// consuming it; bufio.ErrBufferFull when it does not fit.
func (c *rawConn) peekHead() (int, error) {
	from, timed := 0, false
	for {
		buf, _ := c.br.Peek(c.br.Buffered())
		if n := headEnd(buf, from); n > 0 {
			return n, nil
		}
		if len(buf) == c.br.Size() {
			return 0, bufio.ErrBufferFull
		}
		from = max(0, len(buf)-3)
		if len(buf) > 0 && !timed {
			// A head that came in parts: the rest must come within the head timeout of its
			// first part (once: trickling bytes does not extend it).
			timed = true
			c.deadline = time.Now().Add(rawHeadTimeout)
			_ = c.nc.SetReadDeadline(c.deadline)
		}
		if _, err := c.br.Peek(len(buf) + 1); err != nil {
			return 0, err
		}
	}
}

// headEnd returns the length of the head at the start of buf (searching from from), 0 when its
// end has not come. A head that ends in bare line feeds ends here too, for net/http to judge.
func headEnd(buf []byte, from int) int {
	end := 0
	if i := bytes.Index(buf[from:], []byte("\n\r\n")); i >= 0 {
		end = from + i + 3
	}
	if i := bytes.Index(buf[from:], []byte("\n\n")); i >= 0 && (end == 0 || from+i+2 < end) {
		end = from + i + 2
	}
	return end
}

// route parses the head of n bytes and finds its FastProxy; nil when the request is not the raw
// path's to serve.
func (c *rawConn) route(t *rawTable, n int) *FastProxy {
	buf, _ := c.br.Peek(n)
	c.headBuf = append(c.headBuf[:0], buf...)
	if !parseRawHead(c.headBuf, &c.head) {
		return nil
	}
	host := hostname(c.head.host)
	var lower [128]byte
	if len(host) > len(lower) {
		return nil
	}
	for i, b := range host {
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		lower[i] = b
	}
	paths := t.route(lower[:len(host)])
	if paths == nil || (paths.Metrics && metrics.Load() != nil) {
		return nil
	}
	route, _, ok := paths.lookup(cleanPath(string(c.head.path)))
	if !ok {
		return nil
	}
	return t.proxies[route]
}

// keepIdleDeadline moves the read deadline to the idle timeout from now, when it is stale.
func (c *rawConn) keepIdleDeadline() {
	now := time.Now()
	if !c.deadline.IsZero() && c.deadline.Sub(now) > rawIdleTimeout-rawDeadlineSlack {
		return
	}
	c.deadline = now.Add(rawIdleTimeout)
	_ = c.nc.SetReadDeadline(c.deadline)
}

// clearDeadline lifts the read deadline (before a hand-over: net/http sets its own).
func (c *rawConn) clearDeadline() {
	if !c.deadline.IsZero() {
		c.deadline = time.Time{}
		_ = c.nc.SetReadDeadline(time.Time{})
	}
}

// keepBodyDeadline gives each read of a request body the server's read idle timeout, as Caddy's
// server does (an upload may take any time as long as it keeps coming); none without one.
func (c *rawConn) keepBodyDeadline() {
	idle := c.table.readIdle
	if idle <= 0 { // 0: not set; negative: disabled
		c.clearDeadline()
		return
	}
	now := time.Now()
	if left := c.deadline.Sub(now); left > idle-deadlineSlack(idle) && left <= idle {
		return
	}
	c.deadline = now.Add(idle)
	_ = c.nc.SetReadDeadline(c.deadline)
}

// keepWriteDeadline gives each write to the client the server's write idle timeout; it moves the
// deadline at most once per rawDeadlineSlack, so that a fast connection pays for it rarely.
func (c *rawConn) keepWriteDeadline() {
	idle := c.table.writeIdle
	if idle <= 0 {
		return
	}
	now := time.Now()
	if now.Sub(c.writeSet) < deadlineSlack(idle) {
		return
	}
	c.writeSet = now
	_ = c.nc.SetWriteDeadline(now.Add(idle))
}

// deadlineWriter is what the response buffer writes to: each write gets the server's write idle
// timeout, as Caddy's IdleTimeoutWriter gives it, so a long download that keeps moving is not
// cut; the raw path writes at most a buffer's worth at a time (see newRawTable).
type deadlineWriter struct{ c *rawConn }

func (w deadlineWriter) Write(p []byte) (int, error) {
	w.c.keepWriteDeadline()
	return w.c.send.Write(p)
}

// deadlineSlack is how stale a deadline of timeout may get before it is moved: a second, or a
// tenth of a short timeout.
func deadlineSlack(timeout time.Duration) time.Duration {
	return min(rawDeadlineSlack, timeout/10)
}

// bodyReader reads a request body from the client's buffer under the body's read deadline.
type bodyReader struct{ c *rawConn }

func (r bodyReader) Read(p []byte) (int, error) {
	r.c.keepBodyDeadline()
	return r.c.br.Read(p)
}

// handOver gives the connection, with what was read of it, to the front's http.Server.
func (c *rawConn) handOver() {
	c.clearDeadline()
	if !c.writeSet.IsZero() {
		_ = c.nc.SetWriteDeadline(time.Time{})
	}
	var nc net.Conn = c.nc
	if c.br.Buffered() > 0 {
		nc = &replayConn{Conn: c.nc, br: c.br}
	} else {
		c.releaseReader()
	}
	c.f.handOver(nc)
}

// close closes the connection. When the client may still be sending a body nobody will read
// (an upstream answered early), it first half-closes and discards what comes for a while, as
// net/http's server does: closing with unread bytes would reset the connection, and the
// client would lose the answer it has not read yet.
func (c *rawConn) close() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok && c.unreadBody {
		_ = cw.CloseWrite()
		_ = c.nc.SetReadDeadline(time.Now().Add(rawLinger))
		_, _ = io.Copy(io.Discard, c.nc)
	}
	_ = c.nc.Close()
	c.releaseReader()
}

func (c *rawConn) releaseReader() {
	if c.br != nil {
		c.br.Reset(nil)
		rawReaders.Put(c.br)
		c.br = nil
	}
}

// replayConn is a connection handed over with bytes already read into br: they are read first.
type replayConn struct {
	net.Conn
	br *bufio.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.br.Read(p) }

// CloseWrite lets net/http half-close the connection as it does a TCP connection's.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// track registers c for a graceful shutdown; false when the front is stopping.
func (f *front) track(c *rawConn) bool {
	f.rawMu.Lock()
	defer f.rawMu.Unlock()
	if f.isStopping() {
		return false
	}
	f.rawConns[c] = struct{}{}
	return true
}

func (f *front) untrack(c *rawConn) {
	f.rawMu.Lock()
	delete(f.rawConns, c)
	n := len(f.rawConns)
	f.rawMu.Unlock()
	if n == 0 && f.isStopping() {
		f.rawDrained.Do(func() { close(f.rawDone) })
	}
}

func (f *front) isStopping() bool {
	select {
	case <-f.stopping:
		return true
	default:
		return false
	}
}

// shutdownRaw closes the raw connections that wait for a request and waits up to ctx for the
// ones serving one; the rest are closed when ctx ends.
func (f *front) shutdownRaw(ctx context.Context) error {
	f.rawMu.Lock()
	f.stopOnce.Do(func() { close(f.stopping) })
	for c := range f.rawConns {
		if c.state.CompareAndSwap(rawIdle, rawClosing) {
			_ = c.nc.SetReadDeadline(aLongTimeAgo)
		}
	}
	if len(f.rawConns) == 0 {
		f.rawDrained.Do(func() { close(f.rawDone) })
	}
	f.rawMu.Unlock()
	select {
	case <-f.rawDone:
		return nil
	case <-ctx.Done():
		f.rawMu.Lock()
		for c := range f.rawConns {
			_ = c.nc.Close()
		}
		f.rawMu.Unlock()
		return ctx.Err()
	}
}
