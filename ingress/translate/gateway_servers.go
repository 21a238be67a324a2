package translate

import (
	"net"
	"strconv"
	"strings"
)

// addGatewayServers adds one proxy server per Gateway and listener port that has programmed
// listeners: it listens on the internal port allocated for them (on the host of
// Options.HTTPListen, through the fronts when that address is on the front network) and serves
// those listeners' routes, then a 404. Nothing else reaches it: no other Gateway's routes and no
// Ingress routes.
func addGatewayServers(cfg *Config, a *gatewayAnalysis, routes gatewayServerRoutes, plan tlsPlan, opts *Options, named map[string]*Route) {
	for gi := range a.api.Gateways {
		g := &a.api.Gateways[gi]
		byServer := map[string][]*ListenerResult{}
		var order []string
		for li := range g.Listeners {
			l := &g.Listeners[li]
			if !l.Programmed() {
				continue
			}
			if _, ok := byServer[l.server]; !ok {
				order = append(order, l.server)
			}
			byServer[l.server] = append(byServer[l.server], l)
		}
		for _, name := range order {
			ls := byServer[name]
			srv := &Server{
				Listen:         []string{gatewayListen(opts.HTTPListen, ls[0].internalPort)},
				Routes:         append(append([]Route(nil), routes[name]...), Route{Handle: []any{notFound()}, Terminal: true}),
				NamedRoutes:    named,
				AutomaticHTTPS: AutomaticHTTPS{Disable: true},
				Protocols:      []string{"h1"},
			}
			if ls[0].tls {
				srv.TLSConnectionPolicies = withClientAuth(gatewayTLSPolicies(plan, ls), ls)
				if ls[0].clientAuth != nil {
					// Every policy of the port validates alike and plexus_misdirected keeps
					// requests on the listener of their server name: Caddy's strict check
					// would also refuse clients without SNI and names of one wildcard listener.
					srv.StrictSNIHost = new(bool)
				}
				srv.Protocols = []string{"h1", "h2"}
				srv.Routes = append([]Route{misdirectedGuard(ls)}, srv.Routes...)
			}
			cfg.Apps.HTTP.Servers[name] = srv
		}
	}
}

// gatewayListen is the listen address of an internal port: the host of the HTTP listen address
// (all addresses when it has none) and the port, on the front network when that address is.
func gatewayListen(httpListen string, port int32) string {
	addr, front := strings.CutPrefix(httpListen, FrontNetwork+"/")
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = ""
	}
	out := net.JoinHostPort(host, strconv.Itoa(int(port)))
	if front {
		return FrontNetwork + "/" + out
	}
	return out
}

// gatewayOnFront says whether a Gateway server of cfg listens on the front network.
func gatewayOnFront(cfg *Config) bool {
	for _, s := range cfg.Apps.HTTP.Servers {
		for _, l := range s.Listen {
			if onFront(l) {
				return true
			}
		}
	}
	return false
}

// misdirectedGuard is the first route of an HTTPS port's server: requests whose Host selects
// another of the port's listeners than their TLS server name get 421
// (GatewayHTTPSListenerDetectMisdirectedRequests).
func misdirectedGuard(ls []*ListenerResult) Route {
	hostnames := make([]string, len(ls))
	for i, l := range ls {
		hostnames[i] = l.Hostname
	}
	return Route{Handle: []any{&Misdirected{Handler: "plexus_misdirected", Hostnames: hostnames}}}
}
