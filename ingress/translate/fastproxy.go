package translate

// FastProxyHandler is ingress/proxy's reverse proxy for plain HTTP/1.1 backends
// (ingress/proxy/fastproxy.go): it takes reverse_proxy's settings as they are, forwards on the
// request's own goroutine over its own keep-alive connections, and hands what it does not serve
// (upgrades, Expect: 100-continue, ...) to a reverse_proxy made from the same settings.
const FastProxyHandler = "plexus_proxy"

// fastPath makes rp the fast proxy when all its settings are ones the fast path serves: HTTP/1.1
// in clear text, no header operations, no read or write timeouts. Anything else stays Caddy's
// reverse_proxy.
func fastPath(rp *ReverseProxy) *ReverseProxy {
	if t := rp.Transport; t == nil || t.Protocol != "http" || t.TLS != nil || len(t.Versions) > 0 || t.ReadTimeout != "" || t.WriteTimeout != "" {
		return rp
	}
	if rp.Headers != nil {
		return rp
	}
	rp.Handler = FastProxyHandler
	return rp
}
