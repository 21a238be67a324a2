package proxy

import (
	"strings"
	"testing"
)

// TestParseRawHeadAccepts: the common requests are read with their framing, connection and
// forwarded fields.
func TestParseRawHeadAccepts(t *testing.T) {
	for _, tc := range []struct {
		name, head         string
		method, target     string
		path, host         string
		length             int64
		chunked, close, te bool
		fields             []string // name=value, in order
		dropped, kept      []string // names forwardedLine refuses and accepts
		idempotent         bool
	}{
		{name: "GET", head: "GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n",
			method: "GET", target: "/", path: "/", host: "shop.test", length: -1, idempotent: true},
		{name: "query and port", head: "GET /a/b;c=d?q=%41&r HTTP/1.1\r\nhost: Shop.Test:8080\r\nAccept: */*\r\n\r\n",
			method: "GET", target: "/a/b;c=d?q=%41&r", path: "/a/b;c=d", host: "Shop.Test:8080", length: -1,
			fields: []string{"Accept=*/*"}, idempotent: true},
		{name: "POST with length", head: "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nX-Idempotency-Key: k\r\n\r\n",
			method: "POST", target: "/up", path: "/up", host: "a", length: 12, fields: []string{"X-Idempotency-Key=k"}, idempotent: true},
		{name: "chunked, close, TE", head: "PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\nConnection: close, X-Hop\r\nTE: trailers\r\nX-Hop: 1\r\nX-Keep:  v  \r\n\r\n",
			method: "PUT", target: "/x", path: "/x", host: "a", length: -1, chunked: true, close: true, te: true,
			fields: []string{"X-Hop=1", "X-Keep=v"}, dropped: []string{"X-Hop", "keep-alive", "Proxy-Authorization", "x-forwarded-for", "X-Forwarded-Proto", "X-Forwarded-Host", "Alt-Svc", "Proxy-Connection"},
			kept: []string{"X-Keep", "Cookie"}},
	} {
		var h rawHead
		if !parseRawHead([]byte(tc.head), &h) {
			t.Errorf("%s: refused %q", tc.name, tc.head)
			continue
		}
		got := []string{string(h.method), string(h.target), string(h.path), string(h.host)}
		want := []string{tc.method, tc.target, tc.path, tc.host}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: method, target, path, host = %q, want %q", tc.name, got, want)
		}
		if h.length != tc.length || h.chunked != tc.chunked || h.close != tc.close || h.teTrailers != tc.te {
			t.Errorf("%s: length %d chunked %v close %v te %v, want %d %v %v %v", tc.name, h.length, h.chunked, h.close, h.teTrailers, tc.length, tc.chunked, tc.close, tc.te)
		}
		var fields []string
		for _, f := range h.fields {
			fields = append(fields, string(f.name)+"="+string(f.value))
		}
		if strings.Join(fields, ",") != strings.Join(tc.fields, ",") {
			t.Errorf("%s: fields %q, want %q", tc.name, fields, tc.fields)
		}
		for _, n := range tc.dropped {
			if h.forwardedLine([]byte(n)) {
				t.Errorf("%s: %s would be forwarded", tc.name, n)
			}
		}
		for _, n := range tc.kept {
			if !h.forwardedLine([]byte(n)) {
				t.Errorf("%s: %s would not be forwarded", tc.name, n)
			}
		}
		if h.idempotent() != tc.idempotent {
			t.Errorf("%s: idempotent %v, want %v", tc.name, h.idempotent(), tc.idempotent)
		}
	}
}

// TestParseRawHeadRefuses: every head outside the plain subset goes to net/http, which knows
// how to answer it (or refuse it with the right status).
func TestParseRawHeadRefuses(t *testing.T) {
	for name, head := range map[string]string{
		"HTTP/1.0":                  "GET / HTTP/1.0\r\nHost: a\r\n\r\n",
		"HTTP/2 preface":            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"CONNECT":                   "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
		"absolute form":             "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
		"asterisk":                  "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		"percent-encoded path":      "GET /a%2Fb HTTP/1.1\r\nHost: a\r\n\r\n",
		"non-ASCII path":            "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
		"space in target":           "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
		"no Host":                   "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",
		"two Hosts":                 "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"empty Host":                "GET / HTTP/1.1\r\nHost: \r\n\r\n",
		"IPv6 Host":                 "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
		"Host with userinfo":        "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n",
		"folded line":               "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n",
		"bare LF":                   "GET / HTTP/1.1\nHost: a\n\n",
		"space before colon":        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
		"control in value":          "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\x002\r\n\r\n",
		"two lengths":               "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
		"signed length":             "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n",
		"length and chunked":        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"gzip transfer coding":      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"upgrade":                   "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"expect":                    "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n",
		"trailer":                   "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n",
		"bad method":                "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
		"unterminated request line": "GET / HTTP/1.1",
	} {
		var h rawHead
		if parseRawHead([]byte(head), &h) {
			t.Errorf("%s: accepted %q", name, head)
		}
	}
}

// TestWildMatch: a "*" label matches exactly one label, as Caddy's host matcher.
func TestWildMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, host string
		want          bool
	}{
		{"*.shop.test", "a.shop.test", true},
		{"*.shop.test", "shop.test", false},
		{"*.shop.test", "a.b.shop.test", false},
		{"*.shop.test", "a.shop.tes", false},
		{"a.*.test", "a.b.test", true},
		{"*", "localhost", true},
		{"*", "a.b", false},
	} {
		if got := wildMatch(strings.Split(tc.pattern, "."), []byte(tc.host)); got != tc.want {
			t.Errorf("%s vs %s: %v, want %v", tc.pattern, tc.host, got, tc.want)
		}
	}
}
