package controller

import (
	"context"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/plexus-net/plexus/ingress/translate"
)

// configKey is the one key every watched change queues: the config is a function of everything,
// so there is nothing finer to reconcile, and a burst of changes coalesces into one reconcile.
var configKey = reconcile.Request{NamespacedName: types.NamespacedName{Name: "config"}}

// LoadOutcome says what a Loader did with a config.
type LoadOutcome struct {
	// Changed is false when the config equals the running one and nothing was done.
	Changed bool
	// Took is how long replacing the running config took.
	Took time.Duration
	// Unserved are listen addresses of the config whose socket could not be opened (a Gateway's
	// internal port taken by something else): everything else is served. Err says why.
	Unserved []string
	Err      error
}

// unservedRetry is how soon a config with unserved addresses is loaded again.
const unservedRetry = 10 * time.Second

// Loader runs a config in the process's proxy, replacing the running one only when it differs. On
// error the running config must stay as it was.
type Loader interface {
	Load(cfg translate.Config) (LoadOutcome, error)
}

// LoaderFunc adapts a function to Loader.
type LoaderFunc func(cfg translate.Config) (LoadOutcome, error)

// Load implements Loader.
func (f LoaderFunc) Load(cfg translate.Config) (LoadOutcome, error) { return f(cfg) }

// ConfigReconciler keeps the proxy serving the translation of the cluster's Ingresses. Every
// replica runs it.
type ConfigReconciler struct {
	// Reader is the manager's cache.
	Reader client.Reader
	// Options are the translation's settings.
	Options translate.Options
	// Fallback is the certificate served when no default TLS Secret is usable.
	Fallback *translate.PEMPair
	// Loader runs the config.
	Loader Loader
	// GatewayAPI adds the Gateway API objects to the inputs (their CRDs are installed).
	GatewayAPI bool
	// BackendTLS adds the BackendTLSPolicies too (their CRD is installed).
	BackendTLS bool

	loaded atomic.Bool
}

// Reconcile implements reconcile.Reconciler.
func (r *ConfigReconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	in, err := Gather(ctx, r.Reader)
	if err != nil {
		return reconcile.Result{}, err
	}
	if r.GatewayAPI {
		if err := GatherGateway(ctx, r.Reader, &in, r.BackendTLS); err != nil {
			return reconcile.Result{}, err
		}
	}
	in.FallbackCertificate = r.Fallback
	res := translate.Translate(in, r.Options)
	out, err := r.Loader.Load(res.Config)
	if err != nil {
		// The previous config keeps serving; the error requeues this key with backoff.
		return reconcile.Result{}, err
	}
	r.loaded.Store(true)
	if out.Changed {
		log.FromContext(ctx).Info("config loaded", "ingresses", len(res.Ingresses), "routes", res.Routes,
			"problems", len(res.Problems), "took", out.Took.String())
	}
	if len(out.Unserved) > 0 {
		log.FromContext(ctx).Error(out.Err, "listen addresses not served; trying again", "addresses", out.Unserved, "in", unservedRetry.String())
		return reconcile.Result{RequeueAfter: unservedRetry}, nil
	}
	return reconcile.Result{}, nil
}

// Loaded says whether a config has been loaded since the process started: a replica is ready for
// traffic only then (its readiness probe).
func (r *ConfigReconciler) Loaded() bool { return r.loaded.Load() }
