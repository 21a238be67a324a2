package translate

// Caddy handlers the Gateway translation adds to the subset in caddy.go (modules registered by
// ingress/proxy/modules.go: headers, rewrite).

// Headers is Caddy's "headers" handler: request header changes before the next handler, response
// header changes when the response is written (Deferred, so the upstream's headers are there).
type Headers struct {
	Handler  string           `json:"handler"`
	Request  *HeaderOps       `json:"request,omitempty"`
	Response *ResponseHeaders `json:"response,omitempty"`
}

// HeaderOps sets, adds and deletes header fields ("Host" in a request's Set changes the host).
type HeaderOps struct {
	Set    map[string][]string `json:"set,omitempty"`
	Add    map[string][]string `json:"add,omitempty"`
	Delete []string            `json:"delete,omitempty"`
}

// ResponseHeaders are HeaderOps applied to the response.
type ResponseHeaders struct {
	HeaderOps
	Deferred bool `json:"deferred,omitempty"`
}

// Rewrite is Caddy's "rewrite" handler; PathRegexp replacements run in order over the path.
type Rewrite struct {
	Handler    string          `json:"handler"`
	PathRegexp []PathRegexpRep `json:"path_regexp,omitempty"`
}

// PathRegexpRep replaces matches of Find (a Go regular expression) with Replace, which may use
// $1-style groups (not ${1}: Caddy reads {1} as a placeholder) ($$ is a literal dollar) and Caddy placeholders.
type PathRegexpRep struct {
	Find    string `json:"find"`
	Replace string `json:"replace"`
}

// Mirror is plexus-ingress's own handler "plexus_mirror" (ingress/proxy/mirror.go): a copy of a
// sampled share (Numerator/Denominator; Denominator 0 is all) of requests goes to one of
// Upstreams and its answer is ignored.
type Mirror struct {
	Handler     string   `json:"handler"`
	Upstreams   []string `json:"upstreams"`
	Numerator   int      `json:"numerator,omitempty"`
	Denominator int      `json:"denominator,omitempty"`
}

// FailShare is plexus-ingress's handler "plexus_fail_share" (ingress/proxy/failshare.go): a
// random Numerator/Denominator share of requests gets a 500, the rest go on.
type FailShare struct {
	Handler     string `json:"handler"`
	Numerator   int    `json:"numerator"`
	Denominator int    `json:"denominator"`
}

// Misdirected is plexus-ingress's handler "plexus_misdirected" (ingress/proxy/misdirected.go) at
// the head of an HTTPS Gateway port: 421 for a request whose Host selects another of Hostnames
// (the port's listener hostnames, "" for none) than its TLS server name does.
type Misdirected struct {
	Handler   string   `json:"handler"`
	Hostnames []string `json:"hostnames"`
}

// Split is plexus-ingress's handler "plexus_split" (ingress/proxy/split.go): each request runs
// the routes of one group, chosen by smooth weighted round-robin (backendRefs with filters).
type Split struct {
	Handler string       `json:"handler"`
	Groups  []SplitGroup `json:"groups"`
}

// SplitGroup is one weighted choice of a Split.
type SplitGroup struct {
	Weight int     `json:"weight"`
	Routes []Route `json:"routes"`
}

// Timeout is plexus-ingress's handler "plexus_timeout" (ingress/proxy/timeout.go): the handlers
// after it must answer within Duration (a Caddy duration), else 504.
type Timeout struct {
	Handler  string `json:"handler"`
	Duration string `json:"duration"`
}
