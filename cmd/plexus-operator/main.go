// Command plexus-operator runs the Plexus operator: it reconciles the ClusterNetwork "default" and
// the cluster's Nodes into NodeNetworks and status.
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/plexus-net/plexus/controllers"
	"github.com/plexus-net/plexus/controllers/netconfig"
)

// Default images; the release build overrides them with -ldflags -X.
var (
	defaultAgentImage   = "plexus/plexus-agent:dev"
	defaultDNSImage     = "plexus/coredns:dev"
	defaultIngressImage = "plexus/plexus-ingress:dev"
)

// settings are the operator's command-line settings.
type settings struct {
	metricsAddr, probeAddr string
	leaderElect            bool
	controllers            controllers.Options
	qps                    float32
	burst                  int
}

func main() {
	var (
		s     settings
		qps   float64
		image netconfig.Images
	)
	flag.StringVar(&s.metricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint; 0 disables it")
	flag.StringVar(&s.probeAddr, "health-probe-bind-address", ":8081", "address of the /healthz and /readyz endpoints; 0 disables them")
	flag.BoolVar(&s.leaderElect, "leader-elect", false, "elect a leader so that only one replica reconciles")
	flag.StringVar(&image.Agent, "agent-image", defaultAgentImage, "plexus-agent image used when spec.images.agent is empty")
	flag.StringVar(&image.DNS, "dns-image", defaultDNSImage, "CoreDNS image used when spec.images.dns is empty")
	flag.StringVar(&image.Ingress, "ingress-image", defaultIngressImage, "ingress controller image used when spec.images.ingress is empty")
	flag.StringVar(&s.controllers.Namespace, "namespace", envOr("POD_NAMESPACE", controllers.DefaultNamespace), "namespace the operator runs in and renders the agent into")
	flag.Float64Var(&qps, "kube-api-qps", 100, "steady requests per second to the API server (a burst of node joins is served at this rate)")
	flag.IntVar(&s.burst, "kube-api-burst", 200, "request burst to the API server")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	s.controllers.Images, s.qps = image, float32(qps)
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("setup")

	if err := run(ctrl.SetupSignalHandler(), s); err != nil {
		log.Error(err, "operator stopped")
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// restartBackoff paces manager (re)starts while the API server cannot be reached: 1 s doubling to
// 30 s. It never runs out: the operator waits for the API server as long as it takes.
func restartBackoff() wait.Backoff {
	return wait.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.1, Cap: 30 * time.Second, Steps: math.MaxInt32}
}

// run serves the health probes and keeps a manager running until ctx ends. A manager that cannot be
// built (the API server is unreachable: creating the cache resolves REST mappings), or that stops
// (the lease was lost, a cache could not sync), is replaced by a new one after a backoff instead of
// the process exiting: a restart would meet the same outage, and restarts pile up back-off delays.
func run(ctx context.Context, s settings) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("find the API server: %w", err)
	}
	cfg.QPS, cfg.Burst = s.qps, s.burst
	p := newProbes()
	if err := p.serve(ctx, s.probeAddr); err != nil {
		return err
	}
	log := ctrl.Log.WithName("setup")
	backoff := restartBackoff()
	for attempt := 1; ; attempt++ {
		started := time.Now()
		err := runManager(ctx, cfg, s, p)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(started) > backoff.Cap {
			backoff = restartBackoff() // it ran a while: this is a new outage
		}
		delay := backoff.Step()
		p.setReady(false, fmt.Sprintf("attempt %d failed, next in %s: %v", attempt, delay.Round(time.Second), err))
		log.Info("operator manager not running; waiting for the API server and starting it again",
			"attempt", attempt, "retryIn", delay.Round(time.Second).String(), "error", err.Error())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
}

// runManager builds a manager with the operator's controllers and runs it until it stops.
func runManager(ctx context.Context, cfg *rest.Config, s settings, p *probes) error {
	if err := checkAccess(ctx, cfg, s.controllers.Namespace); err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  controllers.NewScheme(),
		Cache:   controllers.CacheOptions(s.controllers.Namespace),
		Metrics: metricsserver.Options{BindAddress: s.metricsAddr},
		// The probes are served by the process (probes.go), not by one manager.
		HealthProbeBindAddress:  "0",
		LeaderElection:          s.leaderElect,
		LeaderElectionID:        "plexus-operator.plexus.dev",
		LeaderElectionNamespace: s.controllers.Namespace,
		// The lease is handed over at once on a rolling update or a drain instead of expiring.
		LeaderElectionReleaseOnCancel: true,
		// A process runs one manager after another (see run): each registers the same controller.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return fmt.Errorf("create the manager: %w", err)
	}
	if err := controllers.Setup(mgr, s.controllers); err != nil {
		return err
	}
	if err := mgr.Add(readyMarker{p: p}); err != nil {
		return fmt.Errorf("add the readiness marker: %w", err)
	}
	// When the lease is lost, Start returns without waiting for the controllers: their context is
	// cancelled already, so a reconcile still in flight fails its next API call instead of writing
	// beside the new leader, and the next manager has to win the lease before it reconciles.
	return mgr.Start(ctx)
}

// checkAccess returns an error naming every list and watch permission the manager's caches need
// and the operator's identity lacks: without one, a cache would never sync and the operator would
// wait without saying why.
func checkAccess(ctx context.Context, cfg *rest.Config, namespace string) error {
	if namespace == "" {
		namespace = controllers.DefaultNamespace
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return fmt.Errorf("discover the API server's resources: %w", err)
	}
	kube, err := kubernetes.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return err
	}
	want, err := controllers.CacheAccess(mapper, namespace)
	if err != nil {
		return err
	}
	missing, err := controllers.MissingAccess(ctx, kube, want)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return controllers.MissingAccessError(missing)
	}
	return nil
}
