// Package translate turns Kubernetes Ingress objects into one Caddy JSON configuration.
//
// Translate is a pure function: the controller gathers every input (IngressClasses, Ingresses,
// Services, EndpointSlices, TLS Secrets, options) and gets back the config and a list of problems
// per Ingress for Events. It never reads a client, the clock or the environment, and equal inputs
// give byte-equal output (everything is sorted), so the proxy can skip loading an unchanged config.
//
// Semantics (networking.k8s.io/v1):
//
//   - An Ingress is served when its class (spec.ingressClassName, else the kubernetes.io/ingress.class
//     annotation) names an IngressClass whose spec.controller is Options.ControllerName, or when it
//     names no class and such an IngressClass is annotated as the cluster default.
//   - Hosts: a precise host matches the Host header exactly (case-insensitive, port ignored);
//     "*.example.com" matches exactly one label ("a.example.com", not "a.b.example.com" nor
//     "example.com"); a rule without host matches every host.
//   - Paths: Exact matches the path exactly and case-sensitively; Prefix matches element-wise on
//     "/"-separated elements ("/foo" and "/foo/" match "/foo", "/foo/" and "/foo/bar", never
//     "/foobar"); ImplementationSpecific is treated as Prefix.
//   - Precedence, across all Ingresses of the class: host groups in the order precise hosts,
//     wildcard hosts, rules without host; inside a group Exact paths before Prefix paths, longer
//     prefixes first (this is the API's "longest match, Exact wins a tie"). A request that matches
//     no path of its host group falls through to the next group that matches its host, then to the
//     default backend, then to a 404.
//   - The same host, path and match kind in two places is a conflict: the oldest Ingress wins
//     (creationTimestamp, then namespace/name, then rule and path order) and the others get a
//     PathConflict problem. Likewise for defaultBackend and for a host's TLS secret.
//   - TLS: each spec.tls entry gives its hosts (all hosts of the Ingress's rules when it lists none)
//     the certificate of its Secret, or the default certificate when secretName is empty. Plain HTTP
//     to a TLS host is redirected (308) to HTTPS. TLS handshakes pick the certificate by SNI; an
//     unknown SNI, or none, gets the default certificate.
//   - A backend whose Service, port or ready endpoints are missing answers 503 on its own routes
//     only; a TLS host whose Secret is missing or invalid is served with the default certificate,
//     or, without one, answers 503 over plain HTTP. Each such case is a Problem for its Ingress.
//   - Backends are the Service's ready endpoints from its EndpointSlices (pod IP and the target
//     port of the named or numbered Service port), round-robin, with the next endpoint retried when
//     a connection fails.
package translate
