package proxy

import (
	"bytes"
)

// rawHead is a request head the raw path (rawfront.go) understands completely, as slices of
// its own copy of the head's bytes. parseRawHead accepts only the common, unambiguous subset
// of HTTP/1.1; everything else is handed to net/http, which knows every rule and every error
// answer, so the raw path never has to decide a hard case.
type rawHead struct {
	buf    []byte // the head, request line to the empty line (a copy, reused per connection)
	method []byte
	target []byte // the origin-form request-target, query included
	path   []byte // target up to '?'
	host   []byte // the Host value (one, not empty)
	// fields are the other header fields in order, except the framing and connection fields
	// that parseRawHead reads into the fields below.
	fields []rawField
	// length is Content-Length, -1 when the request did not send one.
	length  int64
	chunked bool // Transfer-Encoding: chunked (and no Content-Length)
	close   bool // Connection: close
	// connection are the Connection values: the headers they name are hop-by-hop.
	connection [][]byte
	teTrailers bool // TE names trailers
}

// rawField is one request header field: its name as the client spelt it and its value without
// surrounding whitespace.
type rawField struct{ name, value []byte }

// reset empties h for the next head, keeping its slices' storage.
func (h *rawHead) reset() {
	h.method, h.target, h.path, h.host = nil, nil, nil, nil
	h.fields = h.fields[:0]
	h.connection = h.connection[:0]
	h.length, h.chunked, h.close, h.teTrailers = -1, false, false, false
}

// parseRawHead parses head (ending in an empty line) into h. It returns false for anything the
// raw path leaves to net/http: another version than HTTP/1.1, CONNECT or the HTTP/2 preface,
// a target that is not an origin-form path of plain characters (percent-encoding included:
// routing decodes it), a missing or repeated or unusual Host, obsolete line folding, bare line
// feeds, invalid names or values, conflicting or unusual body framing, and the requests that
// change the exchange (Upgrade, Expect, Trailer).
func parseRawHead(head []byte, h *rawHead) bool {
	h.reset()
	h.buf = head
	line, rest, ok := cutLine(head)
	if !ok || !parseRequestLine(line, h) {
		return false
	}
	sawLength := false
	for {
		if line, rest, ok = cutLine(rest); !ok {
			return false
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := splitField(line)
		if !ok || bytes.IndexByte(name, '_') >= 0 || bytes.IndexByte(name, '.') >= 0 {
			// Caddy drops fields with '_' or '.' in their names (they would alias others
			// where backends turn '-' into '_', as CGI does); the raw path leaves them to it.
			return false
		}
		switch {
		case equalFoldName(name, "host"):
			if h.host != nil || !plainHost(value) {
				return false
			}
			h.host = value
			continue
		case equalFoldName(name, "content-length"):
			n, ok := parseLength(value)
			if !ok || sawLength {
				return false
			}
			h.length, sawLength = n, true
			continue
		case equalFoldName(name, "transfer-encoding"):
			if h.chunked || !bytes.EqualFold(value, []byte("chunked")) {
				return false
			}
			h.chunked = true
			continue
		case equalFoldName(name, "connection"):
			h.connection = append(h.connection, value)
			if hasTokenBytes(value, "close") {
				h.close = true
			}
			continue
		case equalFoldName(name, "te"):
			if hasTokenBytes(value, "trailers") {
				h.teTrailers = true
			}
			continue
		case equalFoldName(name, "upgrade"), equalFoldName(name, "expect"), equalFoldName(name, "trailer"):
			return false
		}
		h.fields = append(h.fields, rawField{name, value})
	}
	if len(rest) != 0 || h.host == nil || (h.chunked && sawLength) {
		return false
	}
	return true
}

// maxMethod is the longest method the raw path forwards; longer ones are left to Caddy.
const maxMethod = 32

// parseRequestLine reads "METHOD /target HTTP/1.1".
func parseRequestLine(line []byte, h *rawHead) bool {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return false
	}
	h.method = line[:sp]
	if len(h.method) > maxMethod {
		return false
	}
	rest := line[sp+1:]
	sp = bytes.IndexByte(rest, ' ')
	if sp <= 0 || string(rest[sp+1:]) != "HTTP/1.1" {
		return false
	}
	h.target = rest[:sp]
	for _, c := range h.method {
		if !isTokenChar(c) {
			return false
		}
	}
	if m := string(h.method); m == "CONNECT" || m == "PRI" {
		return false
	}
	if h.target[0] != '/' {
		return false
	}
	q := bytes.IndexByte(h.target, '?')
	if q < 0 {
		q = len(h.target)
	}
	h.path = h.target[:q]
	for _, c := range h.path {
		if !isPathChar(c) {
			return false
		}
	}
	for _, c := range h.target[q:] {
		if c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	return true
}

// cutLine splits off the first CRLF-terminated line; a bare LF is not accepted.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 1 || b[i-1] != '\r' {
		return nil, nil, false
	}
	line = b[:i-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, nil, false
	}
	return line, b[i+1:], true
}

// splitField splits "name: value" into a token name and its value without the surrounding
// whitespace; a line that starts with whitespace (obsolete folding) or holds a control
// character is refused.
func splitField(line []byte) (name, value []byte, ok bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return nil, nil, false
	}
	name = line[:colon]
	for _, c := range name {
		if !isTokenChar(c) {
			return nil, nil, false
		}
	}
	value = line[colon+1:]
	for _, c := range value {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return nil, nil, false
		}
	}
	return name, bytes.Trim(value, " \t"), true
}

// parseLength reads a Content-Length: digits only, at most 18 of them.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// plainHost says whether a Host value is a name or IPv4 address with an optional port: the
// IPv6 literals and anything stranger are left to net/http and Caddy's matchers.
func plainHost(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	colons := 0
	for _, c := range v {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
		case c == ':':
			colons++
		default:
			return false
		}
	}
	return colons <= 1
}

// hostname is the Host value without its port.
func hostname(host []byte) []byte {
	if i := bytes.IndexByte(host, ':'); i >= 0 {
		return host[:i]
	}
	return host
}

// hasTokenBytes says whether a comma-separated list holds token (case-insensitive).
func hasTokenBytes(list []byte, token string) bool { return namedByBytes(list, []byte(token)) }

// equalFoldName compares a header name with a lower-case ASCII name, ignoring case.
func equalFoldName(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// isTokenChar says whether c may appear in an HTTP token (RFC 9110 tchar).
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// isPathChar says whether c may appear as it is in a path that net/url keeps byte for byte
// (RFC 3986 pchar and '/', without percent-encoding).
func isPathChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '/', '-', '.', '_', '~', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@':
		return true
	}
	return false
}

// forwardedLine says whether a request header line goes to the upstream as it is: not the
// framing, Host and X-Forwarded headers the proxy writes itself, not a hop-by-hop header (as
// isHopHeader), not one the Connection header names.
func (h *rawHead) forwardedLine(name []byte) bool {
	switch len(name) {
	case 7:
		if equalFoldName(name, "alt-svc") {
			return false
		}
	case 10:
		if equalFoldName(name, "keep-alive") {
			return false
		}
	case 15:
		if equalFoldName(name, "x-forwarded-for") {
			return false
		}
	case 16:
		if equalFoldName(name, "proxy-connection") || equalFoldName(name, "x-forwarded-host") {
			return false
		}
	case 17:
		if equalFoldName(name, "x-forwarded-proto") {
			return false
		}
	case 18:
		if equalFoldName(name, "proxy-authenticate") {
			return false
		}
	case 19:
		if equalFoldName(name, "proxy-authorization") {
			return false
		}
	}
	for _, v := range h.connection {
		if namedByBytes(v, name) {
			return false
		}
	}
	return true
}

// namedByBytes says whether a comma-separated list (a Connection value) holds name, ignoring
// case.
func namedByBytes(list, name []byte) bool {
	for len(list) > 0 {
		var tok []byte
		if i := bytes.IndexByte(list, ','); i >= 0 {
			tok, list = list[:i], list[i+1:]
		} else {
			tok, list = list, nil
		}
		if bytes.EqualFold(bytes.Trim(tok, " \t"), name) {
			return true
		}
	}
	return false
}
