package main

import (
	"flag"
	"fmt"
	"net/http"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/plexus-net/plexus/ingress/controller"
	"github.com/plexus-net/plexus/ingress/proxy"
	"github.com/plexus-net/plexus/ingress/translate"
)

// clusterFlags are the settings of the cluster mode.
type clusterFlags struct {
	publishService   string
	leaderElect      bool
	leaderElectionNS string
	metricsAddr      string
	probeAddr        string
}

func (c *clusterFlags) bind() {
	flag.StringVar(&c.publishService, "publish-service", "", "namespace/name of the controller's own Service, whose addresses the served Ingresses publish in status.loadBalancer")
	flag.BoolVar(&c.leaderElect, "leader-elect", true, "elect the replica that writes status and Events (every replica serves traffic)")
	flag.StringVar(&c.leaderElectionNS, "leader-election-namespace", "", "namespace of the leader lease (default: the Pod's namespace)")
	flag.StringVar(&c.metricsAddr, "metrics-bind-address", ":10254", "address of the Prometheus metrics endpoint; 0 disables it")
	flag.StringVar(&c.probeAddr, "health-probe-bind-address", ":10256", "address of /healthz and /readyz (ready once a config is loaded); 0 disables them")
}

// check refuses settings the cluster mode cannot run with.
func (c *clusterFlags) check() error {
	if c.publishService != "" {
		if _, err := namespacedName("-publish-service", c.publishService); err != nil {
			return err
		}
	}
	return nil
}

func namespacedName(flagName, v string) (types.NamespacedName, error) {
	ns, name, ok := strings.Cut(v, "/")
	if !ok || ns == "" || name == "" {
		return types.NamespacedName{}, fmt.Errorf("%s %q: want namespace/name", flagName, v)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}

// runCluster serves the cluster's Ingresses until SIGTERM.
func runCluster(f flags, fallback *translate.PEMPair) error {
	ctrl.SetLogger(zap.New())
	var p proxy.Proxy
	if err := listenAll(&p, &f.opts); err != nil {
		return err
	}
	if f.opts.Metrics {
		// On controller-runtime's registry, so they are served by its metrics endpoint.
		m := proxy.NewMetrics()
		if err := m.Register(ctrlmetrics.Registry); err != nil {
			return fmt.Errorf("register proxy metrics: %w", err)
		}
		proxy.UseMetrics(m)
	}
	var publish types.NamespacedName
	if f.cluster.publishService != "" {
		publish, _ = namespacedName("-publish-service", f.cluster.publishService)
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("find the API server: %w", err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        controller.NewScheme(),
		Cache:                         controller.CacheOptions(),
		Metrics:                       metricsserver.Options{BindAddress: f.cluster.metricsAddr},
		HealthProbeBindAddress:        f.cluster.probeAddr,
		LeaderElection:                f.cluster.leaderElect,
		LeaderElectionID:              "plexus-ingress.plexus.dev",
		LeaderElectionNamespace:       f.cluster.leaderElectionNS,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("create the manager: %w", err)
	}
	loader := controller.LoaderFunc(func(c translate.Config) (controller.LoadOutcome, error) {
		r, err := p.Load(c)
		return controller.LoadOutcome{Changed: r.Changed, Took: r.Duration, Unserved: r.Unserved, Err: r.UnservedErr}, err
	})
	cr, err := controller.Setup(mgr, controller.Settings{Options: f.opts, Fallback: fallback, PublishService: publish, Loader: loader})
	if err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	// Ready once this replica serves a config: before that it would answer every request with
	// a connection refused.
	if err := mgr.AddReadyzCheck("config-loaded", func(*http.Request) error {
		if !cr.Loaded() {
			return fmt.Errorf("no config loaded yet")
		}
		return nil
	}); err != nil {
		return err
	}
	ctx := ctrl.SetupSignalHandler()
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("controller stopped: %w", err)
	}
	// The manager stopped (SIGTERM): in-flight requests finish within the grace period.
	return p.Stop()
}
