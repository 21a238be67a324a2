// Package agentrun is plexus-agent's wiring: it opens the API caches, the node's data planes
// (in the --netns namespace, through package nsthread), the Event recorder and the HTTP servers,
// gives them to an agent.Agent and runs it. The list of planes is Planes.
package agentrun

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/plexus-net/plexus/agent"
	"github.com/plexus-net/plexus/agent/cni"
	"github.com/plexus-net/plexus/agent/informers"
	"github.com/plexus-net/plexus/agent/masquerade"
	"github.com/plexus-net/plexus/agent/nfttable"
	"github.com/plexus-net/plexus/agent/nsthread"
	"github.com/plexus-net/plexus/agent/proxy/healthcheck"
	"github.com/plexus-net/plexus/agent/proxy/ipvs"
	"github.com/plexus-net/plexus/agent/proxy/manager"
	"github.com/plexus-net/plexus/agent/proxy/nftables"
	"github.com/plexus-net/plexus/agent/routing"
	"github.com/plexus-net/plexus/agent/status"
	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// serverShutdownTimeout bounds the graceful stop of the HTTP servers.
const serverShutdownTimeout = 5 * time.Second

// Run is plexus-agent: it wires the API caches, the node's data plane and the HTTP servers to an
// Agent and runs it until ctx ends. Stopping leaves the data plane programmed.
func Run(ctx context.Context, o Options) error {
	logger := log.FromContext(ctx).WithValues("node", o.NodeName)
	ctx = log.IntoContext(ctx, logger)
	restCfg, err := restConfig(o.Kubeconfig)
	if err != nil {
		return err
	}
	scheme := informers.NewScheme()
	c, err := cache.New(restCfg, informers.CacheOptions(scheme))
	if err != nil {
		return fmt.Errorf("create informer cache: %w", err)
	}
	cl, err := client.New(restCfg, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("create API client: %w", err)
	}
	events, stopEvents, err := eventRecorder(ctx, restCfg, scheme, o.NodeName)
	if err != nil {
		return err
	}
	defer stopEvents()

	ns, thread := netns.None(), (*nsthread.Thread)(nil)
	if o.Netns != "" {
		if ns, err = netns.GetFromPath(o.Netns); err != nil {
			return fmt.Errorf("open --netns %s: %w", o.Netns, err)
		}
		defer ns.Close()
		if thread, err = nsthread.Start(o.Netns); err != nil {
			return err
		}
		defer thread.Stop()
	}
	nl, err := routing.NewNetlink(ns)
	if err != nil {
		return fmt.Errorf("open the routing data plane: %w", err)
	}
	defer nl.Close()
	nft, err := nsthread.NFTables(thread, nfttable.Opener(masquerade.TableFamily, masquerade.TableName))
	if err != nil {
		return err
	}
	feed := manager.NewFeed()
	svcProxy, closeProxy, err := newServiceProxy(ctx, o, thread, ns, feed, serviceEvents(events))
	if err != nil {
		return err
	}
	defer closeProxy()

	proxyHealth := newProxyHealth(o.proxyHealthTimeout(), time.Now)
	proxyHealth.nodeEligible = func() bool { return nodeEligible(ctx, c, o.NodeName) }
	conntrack := conntrackSysctls(o.ConntrackTCPEstablishedTimeout, o.ConntrackTCPCloseWaitTimeout)
	plane := &trackedProxy{ServiceProxy: svcProxy, health: proxyHealth}
	if len(conntrack) > 0 {
		// /proc/sys/net is the namespace of the writing thread.
		plane.tune = func() error { return thread.Run(func() error { return writeSysctls(o.ProcSysDir, conntrack) }) }
	}

	policies, closePolicies, err := newPolicyPlane(thread)
	if err != nil {
		return err
	}
	defer closePolicies()
	if err := serveAdmission(ctx, policies, o.PolicySocket); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := agent.NewMetrics(reg)
	reg.MustRegister(agent.NewPolicyPacketsCollector(policies))
	prober, closeProber, err := newConnectivityProber(o, thread, ns, c, reg)
	if err != nil {
		return err
	}
	defer closeProber()
	a := &agent.Agent{
		NodeName:       o.NodeName,
		NodeIPOverride: o.nodeIPOverride(),
		Source:         informers.Source{Cache: c},
		Uplinks:        nl,
		Pods:           agent.CNIStorePods(o.CNIDataDir),
		Planes:         Planes(routing.NewSyncer(nl), masquerade.New(nft), o.NodeStateFile, o.PolicySocket, plane, policies, metrics),
		Reporter:       status.Reporter{Writer: apiStatus{c: cl, events: events}, Amend: prober.Apply},
		Metrics:        metrics,
		ResyncPeriod:   o.ResyncPeriod,
		Install: func() error {
			return cni.Install(o.CNIPluginBinary, o.CNIBinDir, o.CNIConfDir,
				cni.ConfigOptions{NodeStatePath: o.NodeStateFile, DataDir: o.CNIDataDir})
		},
	}

	health := http.NewServeMux()
	health.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	health.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.Ready() {
			http.Error(w, "no successful sync yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	metricsMux := http.NewServeMux()
	metricsMux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	for _, s := range []struct {
		addr string
		h    http.Handler
	}{{o.HealthAddress, health}, {o.MetricsAddress, metricsMux}} {
		if err := serve(ctx, s.addr, s.h, net.Listen); err != nil {
			return err
		}
	}
	if err := serve(ctx, o.ProxyHealthAddress, proxyHealth.handler(), listenIn(thread)); err != nil {
		return err
	}

	handlersSynced, err := informers.Watch(ctx, c, feed, func() { proxyHealth.queued(); a.MarkDirty() })
	if err != nil {
		return err
	}
	cacheErr := make(chan error, 1)
	go func() { cacheErr <- c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) || !toolscache.WaitForCacheSync(ctx.Done(), handlersSynced...) {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("informer caches did not sync: %w", <-cacheErr)
	}
	logger.Info("Caches synced; starting the sync loop", "netns", o.Netns)
	if prober != nil {
		prober.Changed = a.MarkDirty
		go prober.Run(ctx)
	}
	return a.Run(ctx)
}

// nodeEligible says whether the Node may receive load-balanced traffic: not while it is being
// deleted (kube-proxy's /healthz rule). A Node the cache cannot read counts as eligible: the
// proxy's own health says the rest.
func nodeEligible(ctx context.Context, c cache.Cache, name string) bool {
	n := &corev1.Node{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, n); err != nil {
		return true
	}
	return n.DeletionTimestamp == nil
}

// Planes is the one list of the node's data planes, in the order every sync runs them: a new
// plane is added here (and nowhere else in the loop). Each fails alone and reports in its own
// NodeNetwork condition.
func Planes(routes agent.RouteSyncer, masq agent.Masquerader, nodeStateFile, policySocket string, svc agent.ServiceProxy,
	policies *agent.PolicyPlane, metrics *agent.Metrics) []agent.Plane {
	return []agent.Plane{
		agent.NewRoutesPlane(routes, metrics),
		agent.NewMasqueradePlane(masq),
		agent.NewCNIPlaneWithAdmission(nodeStateFile, policySocket),
		agent.NewServicesPlane(svc),
		policies,
	}
}

// eventRecorder returns the recorder of the agent's Events (client-go's, which aggregates
// repeats) and what stops it. Events are best effort: the recorder never blocks the sync loop,
// and a failed write only loses the Event.
func eventRecorder(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme, node string) (record.EventRecorder, func(), error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("create the Events client: %w", err)
	}
	b := record.NewBroadcaster(record.WithContext(ctx))
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	return b.NewRecorder(scheme, corev1.EventSource{Component: eventSource, Host: node}), b.Shutdown, nil
}

// newServiceProxy builds the service proxy with both backends in the data plane's namespace:
// nftables (with conntrack cleanup and the eTP Local health check servers, which stop when the
// agent stops) and IPVS (opened lazily: only a node told to use it needs kernel IPVS; with its
// own health check servers, and its sysctls written on the namespace's thread).
func newServiceProxy(ctx context.Context, o Options, thread *nsthread.Thread, ns netns.NsHandle, feed *manager.Feed,
	events manager.EventRecorder) (*manager.Manager, func(), error) {
	logger := log.FromContext(ctx)
	proxyNFT, err := nsthread.NFTables(thread, nfttable.Opener(nftables.TableFamily, nftables.TableName))
	if err != nil {
		return nil, nil, err
	}
	ipvsNFT, err := nsthread.NFTables(thread, nfttable.Opener(ipvs.NFTFamily, ipvs.NFTTable))
	if err != nil {
		return nil, nil, err
	}
	hc := healthcheck.New(nsthread.Listen(thread))
	// Element changes (almost every Service change) go through one lasting netlink socket.
	nl, err := nftables.NewNetlink(o.Netns)
	if err != nil {
		return nil, nil, err
	}
	nftBackend := manager.NewNFTables(proxyNFT, hc,
		nftables.WithConntrack(nsthread.Conntrack(thread, nftables.ExecConntrack{})), nftables.WithHealthChecker(hc),
		nftables.WithNetlink(nl))
	nftBackend.Errors = func(err error) { logger.Error(err, "Service proxy sync partly failed") }
	// The IPVS backend has health check servers of its own: the nftables backend's Remove, which
	// runs on every full sync in IPVS mode, closes those it was given.
	ipvsHC := healthcheck.New(nsthread.Listen(thread))
	ipvsBackend := manager.NewIPVS(manager.KernelIPVS(o.Netns, func() (ipvs.Binder, error) {
		return ipvs.NewDummyBinder(ns, ipvs.DummyDevice)
	}), ipvsNFT, manager.WithHealthChecker(ipvsHC), manager.WithSysctls(func() error {
		return thread.Run(ipvs.SetSysctls) // /proc/sys/net is the namespace of the writing thread
	}))
	ipvsBackend.Errors = func(err error) { logger.Error(err, "Service proxy sync partly failed") }
	m := manager.NewManager(feed, map[v1.ServiceProxyMode]manager.Backend{
		v1.ServiceProxyNFTables: nftBackend,
		v1.ServiceProxyIPVS:     ipvsBackend,
	}, events)
	// The health check servers answer only while the agent runs; the tables stay.
	return m, func() { _ = hc.Close(); _ = ipvsHC.Close(); _ = nl.Close() }, nil
}

// restConfig loads the kubeconfig file, or the in-cluster config when it is empty.
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster API config (or pass --kubeconfig): %w", err)
		}
		return cfg, nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	return cfg, nil
}

// listenIn returns a listen function that opens its sockets in thread's namespace (the caller's
// when thread is nil). The service proxy's health server uses it: like kube-proxy's, it answers on
// the node's addresses, which live in --netns (the agent's own namespace serves the pod that
// runs it).
func listenIn(thread *nsthread.Thread) func(network, addr string) (net.Listener, error) {
	return func(network, addr string) (ln net.Listener, err error) {
		err = thread.Run(func() (err error) { ln, err = net.Listen(network, addr); return err })
		return ln, err
	}
}

// serve serves h on addr, listening through listen, until ctx ends; addr "0" (or empty) serves
// nothing.
func serve(ctx context.Context, addr string, h http.Handler, listen func(network, addr string) (net.Listener, error)) error {
	if addr == DisabledAddress || addr == "" {
		return nil
	}
	ln, err := listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.FromContext(ctx).Error(err, "HTTP server stopped", "address", addr)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), serverShutdownTimeout)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return nil
}
