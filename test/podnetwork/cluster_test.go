package podnetwork

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers"
	"github.com/plexus-net/plexus/controllers/netconfig"
	"github.com/plexus-net/plexus/internal/controlplane"
)

const (
	// agentUser is the identity the agents authenticate as: bound to the agent ClusterRole from
	// config/rbac, so the test also proves that role is enough.
	agentUser = "plexus-agent-e2e"
	// testFieldManager writes the ClusterNetwork spec, as a user's kubectl would.
	testFieldManager = "plexus-podnetwork-e2e"
)

// cluster is the control plane of the test: a real kube-apiserver and etcd, the operator in
// process, and a kubeconfig for the agents.
type cluster struct {
	client     client.Client
	kubeconfig string
}

// startCluster starts the API server, the operator and the agents' RBAC; all stop on cleanup.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	logf.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.Level(zapLevel()))))
	dir := controlplane.AssetsDir()
	if _, err := os.Stat(filepath.Join(dir, "kube-apiserver")); err != nil {
		t.Fatalf("no kube-apiserver in %s: run `make controlplane` first (%v)", dir, err)
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: dir,
	}
	// The test's dual-stack service network, so Services get a ClusterIP of each family.
	env.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", serviceCIDR4+","+serviceCIDR6)
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start the API server: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop the API server: %v", err)
		}
	})
	cfg.QPS, cfg.Burst = 500, 1000
	c, err := client.New(cfg, client.Options{Scheme: controllers.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	// The operator renders the agent DaemonSet into its namespace.
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: controllers.DefaultNamespace}}
	if err := c.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	startOperator(t, cfg)

	cl := &cluster{client: c}
	cl.bindAgentRole(t)
	user, err := env.AddUser(envtest.User{Name: agentUser}, cfg)
	if err != nil {
		t.Fatalf("add agent user: %v", err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	cl.kubeconfig = filepath.Join(t.TempDir(), "agent.kubeconfig")
	if err := os.WriteFile(cl.kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return cl
}

// zapLevel keeps the operator quiet unless PLEXUS_E2E_VERBOSE is set.
func zapLevel() int8 {
	if os.Getenv("PLEXUS_E2E_VERBOSE") != "" {
		return -2
	}
	return 2 // error and above
}

// startOperator runs the operator's controllers in this process, as its binary would.
func startOperator(t *testing.T, cfg *rest.Config) {
	t.Helper()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 controllers.NewScheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  controllers.CacheOptions(controllers.DefaultNamespace),
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := controllers.Setup(mgr, controllers.Options{Images: netconfig.Images{Agent: "plexus-agent:test"}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("operator: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("operator did not stop within 30s")
		}
	})
}

// bindAgentRole creates the agent's ClusterRole from config/rbac/agent_role.yaml and binds it to
// agentUser.
func (c *cluster) bindAgentRole(t *testing.T) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "agent_role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(data, &role); err != nil {
		t.Fatalf("agent_role.yaml: %v", err)
	}
	ctx := context.Background()
	if err := c.client.Create(ctx, &role); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: agentUser},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: agentUser}},
	}
	if err := c.client.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}
}

// setMode changes the ClusterNetwork's routing mode as a user would, retrying on conflicts, and
// returns the new generation.
func (c *cluster) setMode(t *testing.T, mode v1.RoutingMode) int64 {
	t.Helper()
	var gen int64
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cn := &v1.ClusterNetwork{}
		if err := c.client.Get(context.Background(), client.ObjectKey{Name: v1.DefaultClusterNetworkName}, cn); err != nil {
			return err
		}
		if cn.Spec.Routing == nil {
			cn.Spec.Routing = &v1.Routing{}
		}
		cn.Spec.Routing.Mode = mode
		if err := c.client.Update(context.Background(), cn, client.FieldOwner(testFieldManager)); err != nil {
			return err
		}
		gen = cn.Generation
		return nil
	})
	if err != nil {
		t.Fatalf("set routing mode %s: %v", mode, err)
	}
	return gen
}

// waitProgrammed waits until the operator serves generation gen, every NodeNetwork reports it
// programmed, and the ClusterNetwork rolls up the nodes' readiness. With wantReady every node and
// the ClusterNetwork must be Ready; without, every node must report unroutable peers
// (RoutesProgrammed=False, SomePeersUnroutable) and the ClusterNetwork Ready=False because of
// them. It returns how long that took.
func (c *cluster) waitProgrammed(t *testing.T, gen int64, nodes int, wantReady bool) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	ok := poll(readyBound, func() bool {
		cn := &v1.ClusterNetwork{}
		if err := c.client.Get(context.Background(), client.ObjectKey{Name: v1.DefaultClusterNetworkName}, cn); err != nil {
			last = err.Error()
			return false
		}
		if cn.Status.AppliedGeneration != gen {
			last = "operator has not applied the generation yet"
			return false
		}
		var nns v1.NodeNetworkList
		if err := c.client.List(context.Background(), &nns); err != nil {
			last = err.Error()
			return false
		}
		if len(nns.Items) != nodes {
			last = "waiting for NodeNetworks"
			return false
		}
		for _, nn := range nns.Items {
			r := meta.FindStatusCondition(nn.Status.Conditions, v1.ConditionNodeReady)
			rp := meta.FindStatusCondition(nn.Status.Conditions, v1.ConditionRoutesProgrammed)
			ok := r != nil && r.Status == metav1.ConditionTrue
			if !wantReady {
				ok = rp != nil && rp.Status == metav1.ConditionFalse && rp.Reason == v1.ReasonPartiallyRouted &&
					r != nil && r.Status == metav1.ConditionFalse
			}
			if !ok || nn.Status.ProgrammedGeneration != gen {
				last = "NodeNetwork " + nn.Name + " not as expected at the generation: " + describe(nn.Status)
				return false
			}
		}
		r := meta.FindStatusCondition(cn.Status.Conditions, v1.ConditionReady)
		if r == nil || (r.Status == metav1.ConditionTrue) != wantReady || !wantReady && r.Reason != v1.ReasonNodesNotReady {
			last = fmt.Sprintf("ClusterNetwork Ready condition %+v", r)
			return false
		}
		return true
	})
	if !ok {
		t.Fatalf("generation %d not programmed Ready on all nodes within %s: %s", gen, readyBound, last)
	}
	return time.Since(start)
}

func describe(s v1.NodeNetworkStatus) string {
	out, _ := yaml.Marshal(s)
	return string(out)
}
