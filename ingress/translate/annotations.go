package translate

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Annotation prefixes: ingress-nginx's, for migration, and ours; each supported annotation is
// read under both (ours wins when both are set).
const (
	AnnotationPrefixNginx  = "nginx.ingress.kubernetes.io/"
	AnnotationPrefixPlexus = "plexus.dev/"
)

// Annotation names (after the prefix) that the translation honours; docs/ingress-annotations.md
// lists them with their Gateway API equivalents.
const (
	annRewriteTarget       = "rewrite-target"
	annUseRegex            = "use-regex"
	annPermanentRedirect   = "permanent-redirect"
	annPermanentRedirCode  = "permanent-redirect-code"
	annTemporalRedirect    = "temporal-redirect"
	annSSLRedirect         = "ssl-redirect"
	annForceSSLRedirect    = "force-ssl-redirect"
	annBackendProtocol     = "backend-protocol"
	annProxyConnectTimeout = "proxy-connect-timeout"
	annProxyReadTimeout    = "proxy-read-timeout"
	annProxySendTimeout    = "proxy-send-timeout"
	annUpstreamVhost       = "upstream-vhost"
	annXForwardedPrefix    = "x-forwarded-prefix"
	annRequestHeaders      = "request-headers"  // plexus.dev only: "Name: value" lines
	annResponseHeaders     = "response-headers" // plexus.dev only: "Name: value" lines
)

// supportedAnnotations are the names read under both prefixes; plexusOnly only under ours.
var (
	supportedAnnotations = []string{
		annRewriteTarget, annUseRegex, annPermanentRedirect, annPermanentRedirCode, annTemporalRedirect,
		annSSLRedirect, annForceSSLRedirect, annBackendProtocol, annProxyConnectTimeout,
		annProxyReadTimeout, annProxySendTimeout, annUpstreamVhost, annXForwardedPrefix,
	}
	plexusOnly = []string{annRequestHeaders, annResponseHeaders}
)

// Reasons of annotation Problems.
const (
	ReasonUnsupportedAnnotation = "UnsupportedAnnotation"
	ReasonInvalidAnnotation     = "InvalidAnnotation"
)

// ingressAnnotations are an Ingress's supported annotations, parsed. The zero value changes
// nothing.
type ingressAnnotations struct {
	rewriteTarget   string
	useRegex        bool
	redirectURL     string
	redirectCode    int
	sslRedirect     *bool // nil: the default (redirect TLS hosts)
	forceSSL        bool
	backendProtocol string // HTTP, HTTPS, GRPC, GRPCS, H2C
	connectTimeout  string // Caddy durations
	readTimeout     string
	sendTimeout     string
	requestHeaders  map[string]string
	responseHeaders map[string]string
}

// proxyChanges says whether the annotations change how a path is proxied (its named route).
func (a *ingressAnnotations) proxyChanges() bool {
	return a != nil && (a.rewriteTarget != "" || a.redirectURL != "" || a.backendProtocol != "" ||
		a.connectTimeout != "" || a.readTimeout != "" || a.sendTimeout != "" ||
		len(a.requestHeaders) > 0 || len(a.responseHeaders) > 0)
}

// parseAnnotations reads ing's annotations, reporting unsupported and invalid ones to p. It
// returns nil when no supported annotation is set.
func parseAnnotations(ing *networkingv1.Ingress, p *problems) *ingressAnnotations {
	id := types.NamespacedName{Namespace: ing.Namespace, Name: ing.Name}
	get := func(name string) (string, bool) {
		if v, ok := ing.Annotations[AnnotationPrefixPlexus+name]; ok {
			return v, true
		}
		v, ok := ing.Annotations[AnnotationPrefixNginx+name]
		return v, ok
	}
	var unsupported []string
	for k := range ing.Annotations {
		name, ours := strings.CutPrefix(k, AnnotationPrefixPlexus)
		if !ours {
			var nginx bool
			if name, nginx = strings.CutPrefix(k, AnnotationPrefixNginx); !nginx {
				continue
			}
		}
		if !contains(supportedAnnotations, name) && !(ours && contains(plexusOnly, name)) && !(ours && isPlexusMeta(name)) {
			unsupported = append(unsupported, k)
		}
	}
	if len(unsupported) > 0 {
		sort.Strings(unsupported)
		p.add(id, ReasonUnsupportedAnnotation, fmt.Sprintf("annotations not supported, ignored: %s (see docs/ingress-annotations.md)", strings.Join(unsupported, ", ")))
	}
	invalid := func(name, v, why string) {
		p.add(id, ReasonInvalidAnnotation, fmt.Sprintf("annotation %s=%q: %s; ignored", name, v, why))
	}

	a := &ingressAnnotations{}
	set := false
	if v, ok := get(annRewriteTarget); ok {
		if strings.HasPrefix(v, "/") {
			a.rewriteTarget, set = v, true
		} else {
			invalid(annRewriteTarget, v, "must be a path starting with /")
		}
	}
	if v, ok := get(annUseRegex); ok {
		a.useRegex, set = v == "true", true
	}
	for _, r := range []struct {
		name string
		code int
	}{{annPermanentRedirect, 301}, {annTemporalRedirect, 302}} {
		v, ok := get(r.name)
		if !ok || a.redirectURL != "" {
			continue
		}
		if !strings.Contains(v, "://") && !strings.HasPrefix(v, "/") {
			invalid(r.name, v, "must be a URL or an absolute path")
			continue
		}
		a.redirectURL, a.redirectCode, set = v, r.code, true
		if r.code == 301 {
			if c, ok := get(annPermanentRedirCode); ok {
				if n, err := strconv.Atoi(c); err == nil && n >= 300 && n <= 308 {
					a.redirectCode = n
				} else {
					invalid(annPermanentRedirCode, c, "must be a 3xx status code")
				}
			}
		}
	}
	if v, ok := get(annSSLRedirect); ok {
		b := v == "true"
		a.sslRedirect, set = &b, true
	}
	if v, ok := get(annForceSSLRedirect); ok {
		a.forceSSL, set = v == "true", true
	}
	if v, ok := get(annBackendProtocol); ok {
		switch up := strings.ToUpper(v); up {
		case "HTTP", "HTTPS", "GRPC", "GRPCS", "H2C":
			a.backendProtocol, set = up, true
		default:
			invalid(annBackendProtocol, v, "supported: HTTP, HTTPS, GRPC, GRPCS, H2C")
		}
	}
	for _, t := range []struct {
		name string
		dst  *string
	}{{annProxyConnectTimeout, &a.connectTimeout}, {annProxyReadTimeout, &a.readTimeout}, {annProxySendTimeout, &a.sendTimeout}} {
		v, ok := get(t.name)
		if !ok {
			continue
		}
		d, err := nginxDuration(v)
		if err != nil {
			invalid(t.name, v, err.Error())
			continue
		}
		*t.dst, set = d, true
	}
	if v, ok := get(annUpstreamVhost); ok {
		a.requestHeaders, set = map[string]string{"Host": v}, true
	}
	if v, ok := get(annXForwardedPrefix); ok {
		if a.requestHeaders == nil {
			a.requestHeaders = map[string]string{}
		}
		a.requestHeaders["X-Forwarded-Prefix"], set = v, true
	}
	for _, h := range []struct {
		name string
		dst  *map[string]string
	}{{annRequestHeaders, &a.requestHeaders}, {annResponseHeaders, &a.responseHeaders}} {
		v, ok := ing.Annotations[AnnotationPrefixPlexus+h.name]
		if !ok {
			continue
		}
		hs, err := headerLines(v)
		if err != nil {
			invalid(h.name, v, err.Error())
			continue
		}
		if *h.dst == nil {
			*h.dst = map[string]string{}
		}
		for k, val := range hs {
			(*h.dst)[k] = val
		}
		set = true
	}
	if !set {
		return nil
	}
	return a
}

// isPlexusMeta are plexus.dev annotations that are not routing settings (e.g. the operator's
// own labels); none so far.
func isPlexusMeta(string) bool { return false }

// nginxDuration turns an ingress-nginx timeout (seconds, "60" or "60s") into a Caddy duration.
func nginxDuration(v string) (string, error) {
	if n, err := strconv.Atoi(v); err == nil {
		if n <= 0 {
			return "", fmt.Errorf("must be positive")
		}
		return strconv.Itoa(n) + "s", nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return "", fmt.Errorf("want seconds, e.g. 60 or 60s")
	}
	return d.String(), nil
}

// headerLines parses "Name: value" lines.
func headerLines(v string) (map[string]string, error) {
	out := map[string]string{}
	for _, line := range strings.Split(v, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, val, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("want lines of \"Name: value\"")
		}
		out[name] = strings.TrimSpace(val)
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
