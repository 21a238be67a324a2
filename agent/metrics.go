package agent

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names, under the plexus_agent_ prefix.
const (
	metricNamespace    = "plexus"
	metricSubsystem    = "agent"
	metricSyncDuration = "sync_duration_seconds"
	metricRoutes       = "programmed_routes"
	metricSyncErrors   = "sync_errors_total"
	metricSyncs        = "syncs_total"
)

// Metrics are the agent's Prometheus metrics.
type Metrics struct {
	// SyncDuration observes every sync that got to program something.
	SyncDuration prometheus.Histogram
	// Routes is the number of routes programmed by the last good sync.
	Routes prometheus.Gauge
	// SyncErrors counts failed syncs (waiting for the control plane is not a failure).
	SyncErrors prometheus.Counter
	// Syncs counts syncs by kind: "full" (the kernel was read) or "partial".
	Syncs *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg (none if reg is nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		SyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricNamespace, Subsystem: metricSubsystem, Name: metricSyncDuration,
			Help:    "How long one sync of the node's data plane took.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15), // 1 ms .. 16 s
		}),
		Routes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metricNamespace, Subsystem: metricSubsystem, Name: metricRoutes,
			Help: "Routes to peers' pod CIDRs that the agent has programmed.",
		}),
		SyncErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricNamespace, Subsystem: metricSubsystem, Name: metricSyncErrors,
			Help: "Syncs that failed and were retried with backoff.",
		}),
		Syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricNamespace, Subsystem: metricSubsystem, Name: metricSyncs,
			Help: "Syncs run, by kind: full (kernel state read again) or partial.",
		}, []string{"kind"}),
	}
	if reg != nil {
		reg.MustRegister(m.SyncDuration, m.Routes, m.SyncErrors, m.Syncs)
	}
	return m
}
