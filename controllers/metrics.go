package controllers

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/plexus-net/plexus/controllers/ipam"
)

// Operator metrics, served on the manager's metrics endpoint.
var (
	allocations = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "plexus_ipam_allocations_total",
		Help: "Node pod CIDRs allocated or adopted since the operator started.",
	})
	releases = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "plexus_ipam_releases_total",
		Help: "Node pod CIDRs released because their node was deleted.",
	})
	poolAllocated = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "plexus_ipam_pool_allocated",
		Help: "Node CIDRs in use per pod CIDR.",
	}, []string{"pool"})
	poolCapacity = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "plexus_ipam_pool_capacity",
		Help: "Node CIDRs a pod CIDR holds.",
	}, []string{"pool"})
	reconcileErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "plexus_reconcile_errors_total",
		Help: "Failed reconcile phases of the ClusterNetwork controller.",
	}, []string{"phase"})
	reconcileDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "plexus_reconcile_duration_seconds",
		Help:    "Duration of ClusterNetwork reconciles.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	})
)

func init() {
	metrics.Registry.MustRegister(allocations, releases, poolAllocated, poolCapacity, reconcileErrors, reconcileDuration)
}

func recordUsage(usage []ipam.Usage) {
	poolAllocated.Reset()
	poolCapacity.Reset()
	for _, u := range usage {
		poolAllocated.WithLabelValues(u.CIDR.String()).Set(float64(u.Allocated))
		poolCapacity.WithLabelValues(u.CIDR.String()).Set(float64(u.Capacity))
	}
}

func observeReconcile(start time.Time, err error) {
	reconcileDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		reconcileErrors.WithLabelValues("reconcile").Inc()
	}
}
