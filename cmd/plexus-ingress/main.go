// Command plexus-ingress is Plexus's ingress proxy: Caddy embedded in the process, configured from
// Ingress objects by ingress/translate.
//
// In a cluster (the default) it watches IngressClasses, Ingresses, Services, EndpointSlices and TLS
// Secrets (ingress/controller) and serves their translation; every replica serves, the elected
// leader writes status and Events. Standalone (-manifests) it reads the same objects from files,
// serves them, and re-reads them on SIGHUP.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/plexus-net/plexus/ingress/certs"
	"github.com/plexus-net/plexus/ingress/manifests"
	"github.com/plexus-net/plexus/ingress/proxy"
	"github.com/plexus-net/plexus/ingress/translate"
	"github.com/plexus-net/plexus/internal/memlimit"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "plexus-ingress:", err)
		os.Exit(1)
	}
}

// flags are the command line.
type flags struct {
	manifests   string
	printConfig bool
	accessLog   bool
	rawPath     bool
	gatewayAPI  bool
	defaultTLS  string
	opts        translate.Options
	cluster     clusterFlags
	memLimit    *memlimit.Flag
}

func parseFlags() (flags, error) {
	var f flags
	flag.StringVar(&f.manifests, "manifests", "", "comma-separated files or directories of IngressClass, Ingress, Service, EndpointSlice and Secret manifests to serve")
	flag.BoolVar(&f.printConfig, "print-config", false, "print the Caddy config and the problems, then exit")
	flag.StringVar(&f.defaultTLS, "default-tls-secret", "", "namespace/name of the TLS Secret served to hosts without their own (default: a self-signed certificate)")
	flag.StringVar(&f.opts.ControllerName, "controller-name", "plexus.dev/ingress", "spec.controller of the IngressClasses to serve")
	flag.StringVar(&f.opts.HTTPListen, "http-listen", ":80", "HTTP listen address")
	flag.StringVar(&f.opts.HTTPSListen, "https-listen", ":443", "HTTPS listen address")
	flag.IntVar(&f.opts.HTTPSRedirectPort, "https-redirect-port", 443, "port of the HTTPS URL that plain HTTP to TLS hosts is redirected to")
	flag.StringVar(&f.opts.StorageDir, "storage-dir", "/var/lib/plexus-ingress", "writable directory for the proxy's TLS state")
	flag.StringVar(&f.opts.LogLevel, "log-level", "INFO", "proxy log level: DEBUG, INFO, WARN or ERROR")
	flag.BoolVar(&f.opts.Metrics, "metrics", false, "count plexus_ingress_* request, latency and upstream error metrics per route, served on -metrics-bind-address (cluster mode)")
	flag.BoolVar(&f.rawPath, "raw-path", true, "serve plain HTTP/1.1 requests to plain Ingress backends on the raw path (one read and one write per request on each side) instead of Go's and Caddy's HTTP servers; false only to compare or to rule it out")
	flag.BoolVar(&f.accessLog, "access-log", false, "write an access log line (JSON) per request to stdout")
	flag.BoolVar(&f.gatewayAPI, "gateway-api", false, "serve the Gateway API (GatewayClass, Gateway, HTTPRoute, ReferenceGrant) when its CRDs are installed")
	gatewayName := flag.String("gateway-controller-name", "plexus.dev/gateway", "spec.controllerName of the GatewayClasses to serve (with -gateway-api)")
	f.memLimit = memlimit.Default()
	flag.Var(f.memLimit, "memory-limit", "memory limit of the container (a quantity like 512Mi, or bytes; default: $"+memlimit.EnvMemoryLimit+
		"). The Go runtime's soft memory limit is set to 90% of it and GOGC to 400 ($GOGC and $"+memlimit.EnvGoMemLimit+", when set, take precedence). Empty or 0: no limit, GOGC as the runtime's default")
	f.cluster.bind()
	flag.Parse()
	if f.gatewayAPI {
		f.opts.GatewayControllerName = *gatewayName
	}
	if f.manifests == "" {
		if f.printConfig {
			return f, fmt.Errorf("-print-config needs -manifests: it prints the config of manifest files")
		}
		if err := f.cluster.check(); err != nil {
			return f, err
		}
	}
	if f.defaultTLS != "" {
		ns, name, ok := strings.Cut(f.defaultTLS, "/")
		if !ok || ns == "" || name == "" {
			return f, fmt.Errorf("-default-tls-secret %q: want namespace/name", f.defaultTLS)
		}
		f.opts.DefaultTLSSecret = &types.NamespacedName{Namespace: ns, Name: name}
	}
	return f, nil
}

func run() error {
	f, err := parseFlags()
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "plexus-ingress:", applyGC(f.memLimit.Bytes))
	// The fallback default certificate, like other ingress controllers' "fake" certificate:
	// TLS clients get a handshake rather than a reset when nothing else fits.
	crt, key, err := certs.SelfSigned([]string{"plexus-ingress.invalid"}, time.Now().Add(-time.Hour), 365*24*time.Hour)
	if err != nil {
		return fmt.Errorf("fallback certificate: %w", err)
	}
	fallback := &translate.PEMPair{CertPEM: crt, KeyPEM: key}
	if f.accessLog {
		proxy.SetAccessLog(os.Stdout)
	}
	proxy.SetRawPath(f.rawPath)
	if f.manifests == "" {
		return runCluster(f, fallback)
	}

	translateFiles := func() (translate.Result, error) {
		in, err := manifests.Read(strings.Split(f.manifests, ",")...)
		if err != nil {
			return translate.Result{}, err
		}
		in.FallbackCertificate = fallback
		res := translate.Translate(in, f.opts)
		for _, p := range res.Problems {
			fmt.Fprintf(os.Stderr, "problem: %s %s: %s\n", p.Ingress, p.Reason, p.Message)
		}
		return res, nil
	}

	var p proxy.Proxy
	if !f.printConfig {
		// Before the first translation: the config names the sockets the fronts serve.
		if err := listenAll(&p, &f.opts); err != nil {
			return err
		}
	}
	res, err := translateFiles()
	if err != nil {
		return err
	}
	if f.printConfig {
		b, err := res.Config.JSON()
		if err != nil {
			return err
		}
		_, err = fmt.Println(string(b))
		return err
	}
	if err := load(&p, res); err != nil {
		return err
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	for sig := range sigs {
		if sig != syscall.SIGHUP {
			fmt.Fprintf(os.Stderr, "%v: stopping\n", sig)
			return p.Stop()
		}
		res, err := translateFiles()
		if err == nil {
			err = load(&p, res)
		}
		if err != nil {
			// Keep serving the last good config.
			fmt.Fprintf(os.Stderr, "reload: %v\n", err)
		}
	}
	return nil
}

// listenAll opens the HTTP and HTTPS sockets for the process's life and points opts at them: a
// config change then never closes a socket nor a client's connection (ingress/proxy.Listen).
func listenAll(p *proxy.Proxy, opts *translate.Options) error {
	for _, l := range []*string{&opts.HTTPListen, &opts.HTTPSListen} {
		addr, err := p.Listen(*l)
		if err != nil {
			return err
		}
		*l = addr
	}
	return nil
}

// load runs the translation's config and says what it did.
func load(p *proxy.Proxy, res translate.Result) error {
	r, err := p.Load(res.Config)
	if err != nil {
		return err
	}
	if r.Changed {
		fmt.Fprintf(os.Stderr, "loaded config %.12s: %d ingresses, %d routes in %v\n", r.Hash, len(res.Ingresses), res.Routes, r.Duration.Round(time.Microsecond))
	} else {
		fmt.Fprintf(os.Stderr, "config %.12s unchanged\n", r.Hash)
	}
	return nil
}
