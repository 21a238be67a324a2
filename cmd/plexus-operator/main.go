// Command plexus-operator runs the Plexus operator: it reconciles the ClusterNetwork "default" and
// the cluster's Nodes into NodeNetworks and status.
package main

import (
	"flag"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
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

func main() {
	var (
		metricsAddr, probeAddr string
		leaderElect            bool
		images                 netconfig.Images
		namespace              string
		qps                    float64
		burst                  int
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint; 0 disables it")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "address of the /healthz and /readyz endpoints")
	flag.BoolVar(&leaderElect, "leader-elect", false, "elect a leader so that only one replica reconciles")
	flag.StringVar(&images.Agent, "agent-image", defaultAgentImage, "plexus-agent image used when spec.images.agent is empty")
	flag.StringVar(&images.DNS, "dns-image", defaultDNSImage, "CoreDNS image used when spec.images.dns is empty")
	flag.StringVar(&images.Ingress, "ingress-image", defaultIngressImage, "ingress controller image used when spec.images.ingress is empty")
	flag.StringVar(&namespace, "namespace", envOr("POD_NAMESPACE", controllers.DefaultNamespace), "namespace the operator runs in and renders the agent into")
	flag.Float64Var(&qps, "kube-api-qps", 100, "steady requests per second to the API server (a burst of node joins is served at this rate)")
	flag.IntVar(&burst, "kube-api-burst", 200, "request burst to the API server")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("setup")

	if err := run(metricsAddr, probeAddr, leaderElect, controllers.Options{Images: images, Namespace: namespace}, float32(qps), burst); err != nil {
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

func run(metricsAddr, probeAddr string, leaderElect bool, opts controllers.Options, qps float32, burst int) error {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = qps, burst
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  controllers.NewScheme(),
		Cache:                   controllers.CacheOptions(opts.Namespace),
		Metrics:                 metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress:  probeAddr,
		LeaderElection:          leaderElect,
		LeaderElectionID:        "plexus-operator.plexus.dev",
		LeaderElectionNamespace: opts.Namespace,
		// The process exits when the manager stops, so the lease can be handed over at once on a
		// rolling update or a drain instead of expiring.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return err
	}
	if err := controllers.Setup(mgr, opts); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	return mgr.Start(ctrl.SetupSignalHandler())
}
