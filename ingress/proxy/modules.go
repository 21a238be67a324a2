package proxy

// The Caddy modules the ingress configuration uses, and no others: importing a module package
// registers it with Caddy. Anything the translation emits must be registered here, or the load
// fails with "unknown module".
import (
	// http app, servers, routes, subroute, static_response, host/path matchers.
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp"
	// request/response header manipulation (handler "headers").
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/headers"
	// reverse_proxy with its http transport and load-balancing policies (also plexus_proxy's
	// fallback, fastproxy.go).
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	// rewrite (handler "rewrite"), for path and URI rewrites.
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/rewrite"
	// tls app with load_pem certificates and connection policies.
	_ "github.com/caddyserver/caddy/v2/modules/caddytls"
	// caddy.storage.file_system, so the storage root can be a writable dir of our choosing.
	_ "github.com/caddyserver/caddy/v2/modules/filestorage"
)
