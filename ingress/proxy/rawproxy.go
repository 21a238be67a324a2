package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// The FastProxy's half of the raw path (rawfront.go): the same endpoint choice, retries,
// passive health and upstream connections as serve, with the request read from the client
// connection's buffer and the response written to it.

// rawPathOff turns the raw path off for the configs loaded after it is set (SetRawPath).
var rawPathOff atomic.Bool

// SetRawPath turns the raw path on (the default) or off; off, every request is served by Go's
// http.Server and Caddy's server, as before the raw path existed.
func SetRawPath(on bool) { rawPathOff.Store(!on) }

// rawAbort is a failure after the response head went to the client: the connection is closed
// so that the client sees the response cut short.
type rawAbort struct{ err error }

func (e rawAbort) Error() string { return "response cut short: " + e.err.Error() }
func (e rawAbort) Unwrap() error { return e.err }

// serveRaw forwards c's current request and writes its response to c; false when c must close.
func (f *FastProxy) serveRaw(c *rawConn) bool {
	start := time.Now()
	var st reqState
	var proxyErr error
	isGet := string(c.head.method) == http.MethodGet
	for tries := 0; ; tries++ {
		up := f.pick()
		if up == nil {
			if proxyErr == nil {
				proxyErr = caddyhttp.Error(http.StatusServiceUnavailable, errNoUpstream)
			}
		} else {
			err := f.tryRaw(c, up, &st)
			if err == nil {
				// The upstream connection is back in its pool: the last write may now wait
				// for the client's next request.
				return c.flushLast() == nil
			}
			var abort rawAbort
			var cbe clientBodyError
			if errors.As(err, &abort) {
				return false
			}
			if errors.As(err, &cbe) {
				return c.writeError(f, http.StatusBadGateway, err, st)
			}
			f.fail(up)
			proxyErr = err
		}
		if !f.tryAgain(isGet, nil, start, tries, proxyErr, &st) {
			return c.writeError(f, errorStatus(proxyErr), proxyErr, st)
		}
	}
}

// errorStatus is the status of a proxy error, as statusError gives it.
func errorStatus(err error) int {
	var he caddyhttp.HandlerError
	if errors.As(statusError(err), &he) {
		return he.StatusCode
	}
	return http.StatusBadGateway
}

// tryRaw sends c's request to u, once more on a new connection when a reused one failed
// before any response byte came and that is safe (see try).
func (f *FastProxy) tryRaw(c *rawConn, u *upstream, st *reqState) error {
	ctx := context.Background()
	uc, reused, err := f.pool.get(ctx, u)
	if err != nil {
		return err
	}
	err = f.exchangeRaw(c, uc, st)
	if err == nil || !reused || !resendable(c.head.idempotent(), err, st) {
		return err
	}
	if uc, err = f.pool.dial(ctx, u); err != nil {
		return err
	}
	return f.exchangeRaw(c, uc, st)
}

// idempotent says whether the request may be sent again without asking: its method, or an
// idempotency key.
func (h *rawHead) idempotent() bool {
	if idempotentMethod(string(h.method)) {
		return true
	}
	for _, fl := range h.fields {
		if equalFoldName(fl.name, "idempotency-key") || equalFoldName(fl.name, "x-idempotency-key") {
			return true
		}
	}
	return false
}

// exchangeRaw sends c's request on uc and writes the response to c. It returns an error without
// having written anything to c, or a rawAbort once the response head is out.
func (f *FastProxy) exchangeRaw(c *rawConn, uc *upConn, st *reqState) error {
	reusable := false
	defer func() {
		if reusable {
			f.pool.put(uc)
		} else {
			uc.nc.Close()
		}
	}()
	sendErr := writeRawRequest(uc, c, st)
	var se sendError
	if sendErr != nil && (st.bodyRead == 0 || !errors.As(sendErr, &se)) {
		return sendErr
	}
	fp := fieldsPool.Get().(*[]headerField)
	fields, h, err := readResponseHead(uc.br, *fp)
	defer func() {
		clear(fields)
		*fp = fields[:0]
		fieldsPool.Put(fp)
	}()
	if err != nil {
		if sendErr != nil {
			return sendErr
		}
		return err
	}
	if sendErr != nil {
		// The upstream answered before it took the whole body: neither connection can carry
		// another request.
		h.keepAlive = false
		c.head.close = true
		c.unreadBody = true
	}
	if err := c.writeResponse(fields, &h, uc.br); err != nil {
		return rawAbort{err}
	}
	reusable = h.keepAlive
	return nil
}

// writeRawRequest writes c's request to uc (flushed): the head as the client sent it without
// its hop-by-hop fields, with Host kept and the X-Forwarded fields set as writeRequest does;
// the body with its length or chunked.
func writeRawRequest(uc *upConn, c *rawConn, st *reqState) error {
	h := &c.head
	bw := uc.bw
	bw.Write(h.method)
	bw.WriteByte(' ')
	bw.Write(h.target)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.Write(h.host)
	bw.WriteString("\r\n")
	for _, fl := range h.fields {
		if !h.forwardedLine(fl.name) {
			continue
		}
		bw.Write(fl.name)
		bw.WriteString(": ")
		bw.Write(fl.value)
		bw.WriteString("\r\n")
	}
	if h.teTrailers {
		bw.WriteString("Te: trailers\r\n")
	}
	if c.clientIP != "" {
		writeHeaderLine(bw, xForwardedFor, c.clientIP)
	}
	bw.WriteString("X-Forwarded-Proto: http\r\nX-Forwarded-Host: ")
	bw.Write(h.host)
	bw.WriteString("\r\n")

	switch {
	case h.length > 0:
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), h.length, 10))
		bw.WriteString("\r\n\r\n")
		if err := copyLength(bw, bodyReader{c}, h.length, st); err != nil {
			return err
		}
	case h.chunked:
		bw.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		if err := copyChunked(bw, &chunkedBody{c: c, st: st}, st); err != nil {
			return err
		}
	default:
		m := string(h.method)
		if h.length == 0 || m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch {
			bw.WriteString("Content-Length: 0\r\n")
		}
		bw.WriteString("\r\n")
	}
	uc.send.armed = true
	err := bw.Flush()
	uc.send.armed = false
	if err != nil {
		return sendError{err}
	}
	return nil
}

// chunkedBody reads a chunked request body from the client, and its trailer section (dropped,
// as the Trailer field that would announce it sends the request to net/http).
type chunkedBody struct {
	c  *rawConn
	st *reqState // bodyEnded once the last chunk and the trailers are read
	cr io.Reader
}

func (b *chunkedBody) Read(p []byte) (int, error) {
	b.c.keepBodyDeadline()
	if b.cr == nil {
		b.cr = httputil.NewChunkedReader(b.c.br)
	}
	n, err := b.cr.Read(p)
	if err == io.EOF {
		for {
			line, lerr := readLine(b.c.br)
			if lerr != nil {
				return n, lerr
			}
			if len(line) == 0 {
				break
			}
		}
		b.st.bodyEnded = true
	}
	return n, err
}

// writeResponse writes the upstream's response (head read into fields and h, body in ubr) to
// the client: the fields as copyHead passes them, the body with its length, or chunked when
// it has none. What is left in the write buffer is flushed by the caller, once the upstream
// connection is released.
func (c *rawConn) writeResponse(fields []headerField, h *respHead, ubr *bufio.Reader) error {
	if c.f.isStopping() {
		c.head.close = true // as net/http's server, no keep-alive once the front stops
	}
	bw := c.bw
	bodyless := string(c.head.method) == http.MethodHead || h.status == http.StatusNoContent || h.status == http.StatusNotModified
	chunkedOut := (h.chunked || h.length < 0) && !bodyless
	writeStatusLine(bw, h.status)
	hasDate := false
	for _, fl := range fields {
		// The framing is the proxy's own (below); fields the upstream's Connection names are
		// hop-by-hop.
		if fl.k == "Content-Length" || (len(h.connection) > 0 && namedBy(h.connection, fl.k)) {
			continue
		}
		if fl.k == "Date" {
			hasDate = true
		}
		writeResponseField(bw, fl.k, fl.v)
	}
	if !hasDate {
		bw.WriteString("Date: ")
		bw.Write(httpDate())
		bw.WriteString("\r\n")
	}
	switch {
	case chunkedOut:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	case !h.chunked && h.length >= 0 && h.status != http.StatusNoContent:
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), h.length, 10))
		bw.WriteString("\r\n")
	}
	if c.head.close {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")

	var err error
	switch {
	case bodyless:
	case h.chunked:
		err = c.copyChunkedOut(ubr, httputil.NewChunkedReader(ubr), h.streaming, true)
	case h.length >= 0:
		err = c.copyLengthOut(ubr, h.length, h.streaming)
	default:
		h.keepAlive = false
		err = c.copyChunkedOut(ubr, ubr, true, false)
	}
	return err
}

// flushLast sends what is buffered; when the client may send another request and has not yet,
// the write also waits for it (sender).
func (c *rawConn) flushLast() error {
	c.send.armed = !c.head.close && c.br.Buffered() == 0
	err := c.bw.Flush()
	c.send.armed = false
	return err
}

// copyLengthOut copies n body bytes from ubr to the client, flushing as they come when
// streaming.
func (c *rawConn) copyLengthOut(ubr *bufio.Reader, n int64, streaming bool) error {
	for n > 0 {
		if ubr.Buffered() == 0 {
			if _, err := ubr.Peek(1); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
		}
		m := min(int64(ubr.Buffered()), n)
		p, _ := ubr.Peek(int(m))
		if _, err := c.bw.Write(p); err != nil {
			return err
		}
		_, _ = ubr.Discard(int(m))
		n -= m
		if streaming && n > 0 && ubr.Buffered() == 0 {
			if err := c.bw.Flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyChunkedOut copies body (the upstream's decoded chunked body, or its bytes up to the end
// of the connection) to the client in chunks, then the last chunk and, for a chunked upstream
// body, its trailer fields.
func (c *rawConn) copyChunkedOut(ubr *bufio.Reader, body io.Reader, streaming, trailers bool) error {
	var buf [fastReadBuffer]byte
	bw := c.bw
	for {
		m, err := body.Read(buf[:])
		if m > 0 {
			bw.Write(strconv.AppendUint(bw.AvailableBuffer(), uint64(m), 16))
			bw.WriteString("\r\n")
			bw.Write(buf[:m])
			bw.WriteString("\r\n")
			if streaming && ubr.Buffered() == 0 && err == nil {
				if ferr := bw.Flush(); ferr != nil {
					return ferr
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	bw.WriteString("0\r\n")
	for trailers {
		line, err := readLine(ubr)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			break
		}
		var rh respHead
		f, ok, err := parseField(line, &rh)
		if err != nil {
			return err
		}
		if ok {
			writeResponseField(bw, f.k, f.v)
		}
	}
	_, err := bw.WriteString("\r\n")
	return err
}

// writeResponseField writes an upstream's response field as net/http's server would: a name
// that is not a token is dropped, a line break inside a value becomes a space.
func writeResponseField(bw *bufio.Writer, k, v string) {
	if !validName(k) {
		return
	}
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
	}
	writeHeaderLine(bw, k, v)
}

// writeError answers with status and an empty body, as Caddy's server answers a handler error
// when no error routes are configured, and logs err as Caddy does. The connection stays open
// when the request's body was not left half read.
func (c *rawConn) writeError(f *FastProxy, status int, err error, st reqState) bool {
	if ce := f.logger.Check(zap.ErrorLevel, "handled request"); ce != nil {
		ce.Write(zap.Int("status", status), zap.ByteString("host", c.head.host),
			zap.ByteString("uri", c.head.target), zap.Error(err))
	}
	bodyDone := st.bodyEnded || (!c.head.chunked && (c.head.length <= 0 || st.bodyRead == c.head.length))
	keep := !c.head.close && bodyDone
	if c.f.isStopping() {
		c.head.close = true
	}
	bw := c.bw
	writeStatusLine(bw, status)
	bw.WriteString("Server: Caddy\r\nDate: ")
	bw.Write(httpDate())
	bw.WriteString("\r\nContent-Length: 0\r\n")
	if !keep {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	if !keep {
		_ = bw.Flush()
		return false
	}
	return c.flushLast() == nil
}

// writeStatusLine writes "HTTP/1.1 NNN Reason", the reason as net/http's server writes it.
func writeStatusLine(bw *bufio.Writer, status int) {
	bw.WriteString("HTTP/1.1 ")
	bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(status), 10))
	bw.WriteByte(' ')
	if text := http.StatusText(status); text != "" {
		bw.WriteString(text)
	} else {
		bw.WriteString("status code ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(status), 10))
	}
	bw.WriteString("\r\n")
}

// dateCache is the Date field value of the current second.
type dateCache struct {
	sec  int64
	text []byte
}

var lastDate atomic.Pointer[dateCache]

// httpDate is the current time as an HTTP date, formatted once a second.
func httpDate() []byte {
	now := time.Now()
	if d := lastDate.Load(); d != nil && d.sec == now.Unix() {
		return d.text
	}
	d := &dateCache{sec: now.Unix(), text: now.UTC().AppendFormat(nil, http.TimeFormat)}
	lastDate.Store(d)
	return d.text
}
