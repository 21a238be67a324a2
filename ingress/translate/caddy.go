package translate

// The subset of Caddy's JSON configuration (github.com/caddyserver/caddy/v2, v2.11) that the
// translation emits, as plain structs: this package stays free of Caddy itself, so the controller
// and its tests can translate without linking the proxy. Field names are Caddy's JSON keys; every
// handler and matcher used here must be registered by ingress/proxy/modules.go.

// Config is a whole Caddy configuration.
type Config struct {
	Admin   Admin    `json:"admin"`
	Logging *Logging `json:"logging,omitempty"`
	Storage *Storage `json:"storage,omitempty"`
	Apps    Apps     `json:"apps"`
}

// Admin turns Caddy's admin endpoint off and keeps Caddy from writing its config to disk: the
// controller is the only source of configuration.
type Admin struct {
	Disabled bool        `json:"disabled"`
	Config   AdminConfig `json:"config"`
}

// AdminConfig controls config persistence (autosave.json).
type AdminConfig struct {
	Persist bool `json:"persist"`
}

// Logging sets the level of Caddy's default logger.
type Logging struct {
	Logs map[string]Log `json:"logs"`
}

// Log is one Caddy logger. The translation's default log discards through Caddy's own core and
// writes through ingress/proxy's LogCoreModule instead, which encodes a logger's context fields
// only for entries it writes (Caddy's reverse proxy adds them to every request's logger).
type Log struct {
	Level  string     `json:"level,omitempty"`
	Writer *LogWriter `json:"writer,omitempty"`
	Core   *LogCore   `json:"core,omitempty"`
}

// LogWriter is where a Caddy log writes ("discard", "stderr", "stdout").
type LogWriter struct {
	Output string `json:"output"`
}

// LogCore is a log core module and its level.
type LogCore struct {
	Module string `json:"module"`
	Level  string `json:"level,omitempty"`
}

// LogCoreModule is ingress/proxy's log core: JSON to stderr, fields encoded only when written.
const LogCoreModule = "plexus_log"

// Storage is where Caddy's TLS machinery may keep state (locks); nothing is issued here.
type Storage struct {
	Module string `json:"module"`
	Root   string `json:"root"`
}

// Apps holds the http and tls apps, and the proxy's front app when a server listens on the
// front network.
type Apps struct {
	HTTP  HTTPApp         `json:"http"`
	TLS   *TLSApp         `json:"tls,omitempty"`
	Front *FrontAppConfig `json:"plexus_front,omitempty"`
}

// FrontNetwork is the Caddy network of listen addresses served by ingress/proxy's persistent
// fronts ("plexus/<host:port>"); FrontApp is the app that connects the fronts to a config.
const (
	FrontNetwork = "plexus"
	FrontApp     = "plexus_front"
)

// FrontAppConfig configures the front app; it has no settings.
type FrontAppConfig struct{}

// HTTPApp is Caddy's http app.
type HTTPApp struct {
	// GracePeriod bounds how long a replaced server waits for in-flight requests.
	GracePeriod string             `json:"grace_period,omitempty"`
	Servers     map[string]*Server `json:"servers"`
}

// Server is one listener set with its route list.
type Server struct {
	Listen                []string              `json:"listen"`
	Routes                []Route               `json:"routes"`
	NamedRoutes           map[string]*Route     `json:"named_routes,omitempty"`
	TLSConnectionPolicies []TLSConnectionPolicy `json:"tls_connection_policies,omitempty"`
	AutomaticHTTPS        AutomaticHTTPS        `json:"automatic_https"`
	Protocols             []string              `json:"protocols"`
	// StrictSNIHost false keeps Caddy from answering 421 to every request whose Host differs
	// from its TLS server name, which it does by default once a policy authenticates clients.
	StrictSNIHost *bool `json:"strict_sni_host,omitempty"`
}

// AutomaticHTTPS is always disabled: certificates come from Secrets only and Caddy must never
// reach an ACME CA or add redirects of its own.
type AutomaticHTTPS struct {
	Disable bool `json:"disable"`
}

// Route is a matcher sets / handlers pair. Handle holds *Subroute, *StaticResponse, *Invoke or
// *ReverseProxy values.
type Route struct {
	Match    []MatcherSet `json:"match,omitempty"`
	Handle   []any        `json:"handle"`
	Terminal bool         `json:"terminal,omitempty"`
}

// MatcherSet is a set of matchers that must all match (sets of a route are ORed).
type MatcherSet struct {
	Host       []string            `json:"host,omitempty"`
	PathRegexp *Regexp             `json:"path_regexp,omitempty"`
	Method     []string            `json:"method,omitempty"`
	Header     map[string][]string `json:"header,omitempty"`
	HeaderRE   map[string]*Regexp  `json:"header_regexp,omitempty"`
	Query      map[string][]string `json:"query,omitempty"`
}

// Regexp is a Go regular expression matcher (path_regexp, header_regexp).
type Regexp struct {
	Pattern string `json:"pattern"`
}

// Subroute runs its own route list; when none matches, the outer list continues.
type Subroute struct {
	Handler string  `json:"handler"`
	Routes  []Route `json:"routes"`
}

// Invoke runs the server's named route Name: every path to one backend shares one reverse_proxy
// (one transport and pool) instead of provisioning its own, which keeps big configs fast to load.
type Invoke struct {
	Handler string `json:"handler"`
	Name    string `json:"name"`
}

// StaticResponse writes a fixed response (redirects, 404, 503).
type StaticResponse struct {
	Handler    string              `json:"handler"`
	StatusCode int                 `json:"status_code"`
	Headers    map[string][]string `json:"headers,omitempty"`
	Body       string              `json:"body,omitempty"`
}

// ReverseProxy proxies to a fixed upstream list.
type ReverseProxy struct {
	Handler       string         `json:"handler"`
	Upstreams     []Upstream     `json:"upstreams"`
	LoadBalancing *LoadBalancing `json:"load_balancing,omitempty"`
	HealthChecks  *HealthChecks  `json:"health_checks,omitempty"`
	Transport     *Transport     `json:"transport,omitempty"`
	Headers       *ProxyHeaders  `json:"headers,omitempty"`
}

// Upstream is one backend address, host:port.
type Upstream struct {
	Dial string `json:"dial"`
}

// LoadBalancing selects upstreams and retries the next one when a connection fails.
type LoadBalancing struct {
	SelectionPolicy SelectionPolicy `json:"selection_policy"`
	Retries         int             `json:"retries,omitempty"`
	TryDuration     string          `json:"try_duration,omitempty"`
	TryInterval     string          `json:"try_interval,omitempty"`
}

// SelectionPolicy names a load-balancing policy (round_robin, weighted_round_robin, ...).
type SelectionPolicy struct {
	Policy  string `json:"policy"`
	Weights []int  `json:"weights,omitempty"`
}

// HealthChecks holds the passive health check.
type HealthChecks struct {
	Passive PassiveHealthCheck `json:"passive"`
}

// PassiveHealthCheck marks an upstream down for FailDuration after MaxFails failed requests.
type PassiveHealthCheck struct {
	FailDuration string `json:"fail_duration"`
	MaxFails     int    `json:"max_fails"`
}

// Transport is the http transport to upstreams.
type Transport struct {
	Protocol     string        `json:"protocol"`
	DialTimeout  string        `json:"dial_timeout,omitempty"`
	ReadTimeout  string        `json:"read_timeout,omitempty"`
	WriteTimeout string        `json:"write_timeout,omitempty"`
	Versions     []string      `json:"versions,omitempty"`
	TLS          *TransportTLS `json:"tls,omitempty"`
	KeepAlive    *KeepAlive    `json:"keep_alive,omitempty"`
	// Compression false stops Go's transport from asking the upstream for gzip when the client
	// did not and then unzipping the answer itself (Caddy's default): the upstream gets the
	// client's Accept-Encoding as sent, as behind nginx.
	Compression *bool `json:"compression,omitempty"`
	// VerifySubjectAltNames and ClientCertificate are plexus-ingress's transport
	// "plexus_http" (Protocol): the upstream's certificate must carry one of these names
	// instead of the server name; the certificate is presented to upstreams that ask for one.
	VerifySubjectAltNames *SANVerification   `json:"verify_subject_alt_names,omitempty"`
	ClientCertificate     *ClientCertificate `json:"client_certificate,omitempty"`
}

// KeepAlive sizes the pool of idle connections to upstreams.
type KeepAlive struct {
	MaxIdleConnsPerHost int `json:"max_idle_conns_per_host,omitempty"`
}

// TLSApp holds the certificates and turns off every background task that could reach out of
// the cluster (OCSP stapling) or write to storage (storage cleaning).
type TLSApp struct {
	Certificates        *Certificates `json:"certificates,omitempty"`
	DisableOCSPStapling bool          `json:"disable_ocsp_stapling"`
	DisableStorageClean bool          `json:"disable_storage_clean"`
}

// Certificates loads PEM pairs straight from the config (no files).
type Certificates struct {
	LoadPEM []PEMCertificate `json:"load_pem"`
}

// PEMCertificate is a certificate chain and key; Tags select it in a connection policy.
type PEMCertificate struct {
	Certificate string   `json:"certificate"`
	Key         string   `json:"key"`
	Tags        []string `json:"tags"`
}

// TLSConnectionPolicy picks the certificate for handshakes whose SNI it matches (no Match: all).
type TLSConnectionPolicy struct {
	Match                *TLSMatch             `json:"match,omitempty"`
	CertificateSelection *CertificateSelection `json:"certificate_selection,omitempty"`
	FallbackSNI          string                `json:"fallback_sni,omitempty"`
	// ClientAuthentication validates client certificates (gateway_frontend.go).
	ClientAuthentication *ClientAuthentication `json:"client_authentication,omitempty"`
}

// TLSMatch matches handshakes by SNI (a leading "*." matches one label).
type TLSMatch struct {
	SNI []string `json:"sni,omitempty"`
	// SNIRegexp matches the SNI by expression (Gateway wildcards cover several labels).
	SNIRegexp *Regexp `json:"sni_regexp,omitempty"`
}

// CertificateSelection restricts the candidate certificates to those with one of the tags.
type CertificateSelection struct {
	AnyTag []string `json:"any_tag"`
}

// defaultLogging is Caddy's default log at level: written by LogCoreModule alone (Caddy's own
// core, eager with every request's fields, discards).
func defaultLogging(level string) *Logging {
	return &Logging{Logs: map[string]Log{"default": {
		Level:  level,
		Writer: &LogWriter{Output: "discard"},
		Core:   &LogCore{Module: LogCoreModule, Level: level},
	}}}
}
