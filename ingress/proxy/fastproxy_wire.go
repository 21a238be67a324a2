package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// HTTP/1.1 on the wire for FastProxy: the request as the upstream gets it, the response head
// as the client gets it, and the body copies between them.

// isHopHeader says whether a canonical header name is hop-by-hop: it concerns one connection
// and is never forwarded (Caddy's list: RFC 9110's and the Proxy- ones, plus Alt-Svc, which
// names the proxy's own endpoints).
func isHopHeader(k string) bool {
	switch k {
	case "Alt-Svc", "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// namedBy says whether one of the Connection header values names header k, which makes k
// hop-by-hop too.
func namedBy(connection []string, k string) bool {
	for _, v := range connection {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(textproto.TrimString(tok), k) {
				return true
			}
		}
	}
	return false
}

// hasToken says whether a comma-separated header value list holds token (case-insensitive).
func hasToken(values []string, token string) bool { return namedBy(values, token) }

// The X-Forwarded headers, set as Caddy's reverse_proxy sets them.
const (
	xForwardedFor   = "X-Forwarded-For"
	xForwardedProto = "X-Forwarded-Proto"
	xForwardedHost  = "X-Forwarded-Host"
)

// reqState is what one proxied request did to its body across tries.
type reqState struct {
	// bodyRead is how many body bytes were taken from the client: after the first, the request
	// cannot be sent again.
	bodyRead int64
	// bodyEnded says that the end of a chunked body was taken from the client (an empty one
	// ends without a byte read): the request cannot be sent again either.
	bodyEnded bool
}

// bodyTaken says whether any of the request's body, or its end, was taken from the client.
func (st *reqState) bodyTaken() bool { return st.bodyRead > 0 || st.bodyEnded }

// sendError is a failure to write the request to the upstream.
type sendError struct{ err error }

func (e sendError) Error() string { return "send request upstream: " + e.err.Error() }
func (e sendError) Unwrap() error { return e.err }

// recvError is a failure to read the response head; first says that not one byte of it came.
type recvError struct {
	err   error
	first bool
}

func (e recvError) Error() string { return "read upstream response: " + e.err.Error() }
func (e recvError) Unwrap() error { return e.err }

// clientBodyError is a failure to read the request body from the client: the upstream is not
// to blame and nothing is retried.
type clientBodyError struct{ err error }

func (e clientBodyError) Error() string { return "read request body: " + e.err.Error() }
func (e clientBodyError) Unwrap() error { return e.err }

// writeRequest writes r's head and body to c (flushed). The head is r's with the hop-by-hop
// headers dropped, Host kept and the X-Forwarded headers set; the body goes with its length,
// or chunked when the length is unknown.
func writeRequest(c *upConn, r *http.Request, st *reqState) error {
	bw := c.bw
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	if r.URL.Opaque != "" {
		bw.WriteString(r.URL.RequestURI())
	} else {
		p := r.URL.EscapedPath()
		if p == "" {
			p = "/"
		}
		bw.WriteString(p)
		if r.URL.ForceQuery || r.URL.RawQuery != "" {
			bw.WriteByte('?')
			bw.WriteString(r.URL.RawQuery)
		}
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	host := r.Host
	if host == "" {
		host = c.up.addr
	}
	if !validValue(host) {
		return invalidRequestError{"Host", host}
	}
	bw.WriteString(host)
	bw.WriteString("\r\n")

	connection := r.Header["Connection"]
	_, hadLength := r.Header["Content-Length"]
	for k, vv := range r.Header {
		if isHopHeader(k) || k == "Content-Length" || k == "Host" || k == xForwardedFor || k == xForwardedProto || k == xForwardedHost {
			continue
		}
		if len(connection) > 0 && namedBy(connection, k) {
			continue
		}
		if !validName(k) {
			return invalidRequestError{k, ""}
		}
		for _, v := range vv {
			if !validValue(v) {
				return invalidRequestError{k, v}
			}
			writeHeaderLine(bw, k, v)
		}
	}
	// Tell the upstream that trailers are welcome when the client said so (as Caddy does).
	if hasToken(r.Header["Te"], "trailers") {
		bw.WriteString("Te: trailers\r\n")
	}
	writeForwarded(bw, r, host)

	switch {
	case r.ContentLength > 0:
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), r.ContentLength, 10))
		bw.WriteString("\r\n\r\n")
		if err := copyLength(bw, r.Body, r.ContentLength, st); err != nil {
			return err
		}
	case r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody:
		bw.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		if err := copyChunked(bw, r.Body, st); err != nil {
			return err
		}
	default:
		// Go's transport sends a zero length for the methods that usually carry a body.
		if hadLength || r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
			bw.WriteString("Content-Length: 0\r\n")
		}
		bw.WriteString("\r\n")
	}
	// The last write also waits for the response (sender).
	c.send.armed = true
	err := bw.Flush()
	c.send.armed = false
	if err != nil {
		return sendError{err}
	}
	return nil
}

// invalidRequestError is a header that cannot go on the wire as it is: a handler before the
// proxy (a header filter) set a name or value that would end the line or the head early. The
// request is refused, as net/http's Transport refuses it, rather than split into another.
type invalidRequestError struct{ name, value string }

func (e invalidRequestError) Error() string {
	return fmt.Sprintf("invalid request header %q: %q", e.name, e.value)
}

// validName says whether k is an HTTP token (RFC 9110 field-name).
func validName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// validValue says whether v can be a field value: no line break or NUL (the characters that
// would let a value start another header or end the head).
func validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\r' || c == '\n' || c == 0 {
			return false
		}
	}
	return true
}

func writeHeaderLine(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

// writeForwarded writes X-Forwarded-For, -Proto and -Host as Caddy's reverse_proxy does: the
// client's values are kept only when the client is a trusted proxy, a header set to nil by an
// earlier handler is left out, and a client address that does not parse sends none.
func writeForwarded(bw *bufio.Writer, r *http.Request, host string) {
	clientIP, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return
	}
	clientIP, _, _ = strings.Cut(clientIP, "%")
	trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool)

	if prior, ok := r.Header[xForwardedFor]; !ok || prior != nil {
		bw.WriteString("X-Forwarded-For: ")
		if trusted && len(prior) > 0 && strings.Join(prior, "") != "" {
			for i, v := range prior {
				if i > 0 {
					bw.WriteString(", ")
				}
				bw.WriteString(v)
			}
			bw.WriteString(", ")
		}
		bw.WriteString(clientIP)
		bw.WriteString("\r\n")
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	if prior, ok := r.Header[xForwardedProto]; !ok || prior != nil {
		if trusted && len(prior) > 0 && prior[len(prior)-1] != "" {
			proto = prior[len(prior)-1]
		}
		writeHeaderLine(bw, xForwardedProto, proto)
	}
	if prior, ok := r.Header[xForwardedHost]; !ok || prior != nil {
		if trusted && len(prior) > 0 && prior[len(prior)-1] != "" {
			host = prior[len(prior)-1]
		}
		writeHeaderLine(bw, xForwardedHost, host)
	}
}

// copyLength copies exactly n body bytes from body into bw.
func copyLength(bw *bufio.Writer, body io.Reader, n int64, st *reqState) error {
	for n > 0 {
		if bw.Available() == 0 {
			if err := bw.Flush(); err != nil {
				return sendError{err}
			}
		}
		buf := bw.AvailableBuffer()
		buf = buf[:min(int64(cap(buf)), n)]
		m, err := body.Read(buf)
		st.bodyRead += int64(m)
		n -= int64(m)
		bw.Write(buf[:m])
		if err == io.EOF && n > 0 {
			return clientBodyError{io.ErrUnexpectedEOF}
		}
		if err != nil && err != io.EOF {
			return clientBodyError{err}
		}
	}
	return nil
}

// copyChunked copies body into bw in chunked encoding, one chunk per read, and ends it.
func copyChunked(bw *bufio.Writer, body io.Reader, st *reqState) error {
	const maxChunk = fastWriteBuffer - 16 // room for the size line and the CRLF
	var buf [maxChunk]byte
	for {
		m, err := body.Read(buf[:])
		st.bodyRead += int64(m)
		if m > 0 {
			bw.Write(strconv.AppendUint(bw.AvailableBuffer(), uint64(m), 16))
			bw.WriteString("\r\n")
			bw.Write(buf[:m])
			bw.WriteString("\r\n")
		}
		if err == io.EOF {
			bw.WriteString("0\r\n\r\n")
			return nil
		}
		if err != nil {
			return clientBodyError{err}
		}
	}
}

// respHead is what the response head says about the body and the connection.
type respHead struct {
	status     int
	length     int64 // -1 when not given
	chunked    bool
	keepAlive  bool
	streaming  bool // text/event-stream, or no length: flushed as it comes
	connection []string
}

// headerField is one response header line.
type headerField struct{ k, v string }

// readResponseHead reads the upstream's response head into fields (skipping interim 1xx
// responses) and says how to read the body.
func readResponseHead(br *bufio.Reader, fields []headerField) ([]headerField, respHead, error) {
	if _, err := br.Peek(1); err != nil {
		return fields, respHead{}, recvError{err: err, first: true}
	}
	for {
		line, err := readLine(br)
		if err != nil {
			return fields, respHead{}, recvError{err: err}
		}
		h, err := parseStatusLine(line)
		if err != nil {
			return fields, respHead{}, recvError{err: err}
		}
		fields = fields[:0]
		for {
			line, err := readLine(br)
			if err != nil {
				return fields, respHead{}, recvError{err: err}
			}
			if len(line) == 0 {
				break
			}
			if f, ok, err := parseField(line, &h); err != nil {
				return fields, respHead{}, recvError{err: err}
			} else if ok {
				fields = append(fields, f)
			}
		}
		if h.status >= 100 && h.status < 200 {
			if h.status == http.StatusSwitchingProtocols {
				return fields, h, recvError{err: errors.New("101 Switching Protocols to a request that asked for no upgrade")}
			}
			continue // 100 Continue, 103 Early Hints: the final response follows
		}
		if h.chunked {
			h.length = -1
		}
		h.streaming = h.streaming || h.length < 0
		return fields, h, nil
	}
}

// readLine reads one head line without its CRLF.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if err == bufio.ErrBufferFull {
			err = errors.New("response header line too long")
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// parseStatusLine reads "HTTP/1.x NNN reason".
func parseStatusLine(line []byte) (respHead, error) {
	h := respHead{length: -1}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return h, fmt.Errorf("malformed status line %q", line)
	}
	switch line[7] {
	case '1':
		h.keepAlive = true
	case '0':
	default:
		return h, fmt.Errorf("malformed status line %q", line)
	}
	code := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return h, fmt.Errorf("malformed status line %q", line)
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 || (len(line) > 12 && line[12] != ' ') {
		return h, fmt.Errorf("malformed status line %q", line)
	}
	h.status = code
	return h, nil
}

// parseField reads one header line into a field, or into h when it frames the body or the
// connection (ok false: such fields are not forwarded).
func parseField(line []byte, h *respHead) (f headerField, ok bool, err error) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 || line[0] == ' ' || line[0] == '\t' {
		return f, false, fmt.Errorf("malformed header line %q", line)
	}
	k := canonicalKey(line[:i])
	v := string(bytes.Trim(line[i+1:], " \t"))
	switch k {
	case "Content-Length":
		n, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil || n < 0 || (h.length >= 0 && h.length != n) {
			return f, false, fmt.Errorf("bad Content-Length %q", v)
		}
		h.length = n
	case "Transfer-Encoding":
		// Only chunked frames a body; anything else is read until the upstream closes.
		h.chunked = strings.EqualFold(textproto.TrimString(v[strings.LastIndexByte(v, ',')+1:]), "chunked")
		if !h.chunked {
			h.keepAlive = false
		}
		return f, false, nil
	case "Connection":
		if hasToken([]string{v}, "close") {
			h.keepAlive = false
		} else if hasToken([]string{v}, "keep-alive") && !h.keepAlive {
			h.keepAlive = true // an HTTP/1.0 upstream that keeps the connection
		}
		h.connection = append(h.connection, v)
		return f, false, nil
	case "Content-Type":
		h.streaming = len(v) >= 17 && strings.EqualFold(v[:17], "text/event-stream")
	}
	if isHopHeader(k) {
		return f, false, nil
	}
	return headerField{k, v}, true, nil
}

// commonKeys are the canonical forms of frequent header names, so that reading them costs no
// allocation.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"Accept-Ranges", "Age", "Alt-Svc", "Cache-Control", "Connection",
		"Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
		"Content-Location", "Content-Range", "Content-Security-Policy", "Content-Type", "Date",
		"Etag", "Expires", "Keep-Alive", "Last-Modified", "Link", "Location", "Server",
		"Set-Cookie", "Strict-Transport-Security", "Trailer", "Transfer-Encoding", "Upgrade",
		"Vary", "Via", "Www-Authenticate", "X-Content-Type-Options", "X-Frame-Options",
		"X-Request-Id"} {
		m[k] = k
		m[strings.ToLower(k)] = k
	}
	m["ETag"] = "Etag"
	m["WWW-Authenticate"] = "Www-Authenticate"
	return m
}()

func canonicalKey(b []byte) string {
	if k, ok := commonKeys[string(b)]; ok {
		return k
	}
	return textproto.CanonicalMIMEHeaderKey(string(b))
}

// copyHead sets the response's fields on w's header (after the fields the handlers before the
// proxy set, as Caddy does) without the ones named by Connection.
func copyHead(dst http.Header, fields []headerField, h *respHead) {
	// Caddy's server names itself; the upstream's Server header is the one passed on.
	delete(dst, "Server")
	vals := make([]string, len(fields))
	for i, f := range fields {
		if len(h.connection) > 0 && namedBy(h.connection, f.k) {
			continue
		}
		vals[i] = f.v
		if prior, ok := dst[f.k]; ok {
			dst[f.k] = append(prior, f.v)
		} else {
			dst[f.k] = vals[i : i+1 : i+1]
		}
	}
}

// bodyCopy is the state of copying a response body to the client.
type bodyCopy struct {
	w     http.ResponseWriter
	flush bool
	// clientErr is set when writing to the client failed (as opposed to reading upstream).
	clientErr bool
}

// write sends p to the client, flushing when streaming and nothing more is at hand.
func (bc *bodyCopy) write(p []byte, more bool) error {
	if _, err := bc.w.Write(p); err != nil {
		bc.clientErr = true
		return err
	}
	if bc.flush && !more {
		if err := http.NewResponseController(bc.w).Flush(); err != nil {
			bc.clientErr = true
			return err
		}
	}
	return nil
}

// copyBodyLength copies n bytes from br straight out of its buffer.
func (bc *bodyCopy) copyBodyLength(br *bufio.Reader, n int64) error {
	for n > 0 {
		if br.Buffered() == 0 {
			if _, err := br.Peek(1); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
		}
		m := int64(br.Buffered())
		if m > n {
			m = n
		}
		p, _ := br.Peek(int(m))
		n -= m
		if err := bc.write(p, br.Buffered() > int(m) || n == 0); err != nil {
			return err
		}
		_, _ = br.Discard(int(m))
	}
	return nil
}

// copyBodyToEOF copies br until the upstream closes the connection.
func (bc *bodyCopy) copyBodyToEOF(br *bufio.Reader) error {
	for {
		if _, err := br.Peek(1); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		m := br.Buffered()
		p, _ := br.Peek(m)
		if err := bc.write(p, false); err != nil {
			return err
		}
		_, _ = br.Discard(m)
	}
}

// copyBodyChunked decodes a chunked body from br to the client and sets its trailers on the
// response (http.TrailerPrefix).
func (bc *bodyCopy) copyBodyChunked(br *bufio.Reader) error {
	cr := httputil.NewChunkedReader(br)
	var buf [fastReadBuffer]byte
	for {
		m, err := cr.Read(buf[:])
		if m > 0 {
			if werr := bc.write(buf[:m], br.Buffered() > 0 && err == nil); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	// The trailer section, up to its empty line.
	var h respHead
	hdr := bc.w.Header()
	for {
		line, err := readLine(br)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
		f, ok, err := parseField(line, &h)
		if err != nil {
			return err
		}
		if ok {
			hdr[http.TrailerPrefix+f.k] = append(hdr[http.TrailerPrefix+f.k], f.v)
		}
	}
}
