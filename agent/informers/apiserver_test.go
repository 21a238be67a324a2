package informers

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/plexus-net/plexus/agent"
	"github.com/plexus-net/plexus/agent/proxy/manager"
	"github.com/plexus-net/plexus/internal/controlplane"
	"github.com/plexus-net/plexus/internal/testnet"
)

// agentUser is the identity the test's agent cache acts as, bound to the agent's ClusterRole.
const agentUser = "plexus-agent-informers-test"

// TestAgentCacheSeesPolicyInputsWithItsRBAC runs the agent's caches against a real API server as
// a user holding only the ClusterRole Plexus ships (config/rbac/agent_role.yaml): they sync (a
// forbidden list would keep them from it), a NetworkPolicy, a Pod and a Namespace label change
// each mark the agent dirty, and Inputs returns them trimmed.
func TestAgentCacheSeesPolicyInputsWithItsRBAC(t *testing.T) {
	dir := controlplane.AssetsDir()
	if _, err := os.Stat(filepath.Join(dir, "kube-apiserver")); err != nil {
		t.Fatalf("no kube-apiserver in %s: run `make controlplane` first (%v)", dir, err)
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: dir,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start the API server: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	admin, err := client.New(cfg, client.Options{Scheme: NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	bindAgentRole(ctx, t, admin)

	asAgent := rest.CopyConfig(cfg)
	asAgent.Impersonate = rest.ImpersonationConfig{UserName: agentUser}
	c, err := cache.New(asAgent, CacheOptions(NewScheme()))
	if err != nil {
		t.Fatal(err)
	}
	var dirty atomic.Int32
	if _, err := Watch(ctx, c, manager.NewFeed(), func() { dirty.Add(1) }); err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.Start(ctx) }()
	syncCtx, syncCancel := context.WithTimeout(ctx, 30*time.Second)
	defer syncCancel()
	if !c.WaitForCacheSync(syncCtx) {
		t.Fatal("the agent's caches did not sync with the agent's RBAC")
	}

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{"team": "a"}}}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web", Labels: map[string]string{"app": "web"},
			Annotations: map[string]string{"note": "dropped by the trim"}},
		Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "web", Image: "web",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}, {ContainerPort: 9090}}}}},
	}
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "deny", Annotations: map[string]string{"note": "dropped"}},
		Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
	}
	for _, o := range []client.Object{ns, pod, np} {
		before := dirty.Load()
		if err := admin.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a dirty mark for "+o.GetName(), func() bool { return dirty.Load() > before })
	}
	pod.Status.PodIPs = []corev1.PodIP{{IP: "10.244.0.5"}}
	pod.Status.PodIP = "10.244.0.5"
	pod.Status.Phase = corev1.PodRunning
	if err := admin.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}

	var in agent.Inputs
	waitFor(t, "the Pod's address in Inputs", func() bool {
		in, err = Source{Cache: c}.Inputs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p := find(in.Pods, "team-a", "web")
		return p != nil && len(p.Status.PodIPs) == 1
	})
	p := find(in.Pods, "team-a", "web")
	if p.Annotations != nil || p.Spec.NodeName != "node-1" || p.Labels["app"] != "web" ||
		len(p.Spec.Containers) != 1 || len(p.Spec.Containers[0].Ports) != 1 || p.Spec.Containers[0].Ports[0].Name != "http" {
		t.Errorf("the cached Pod is not trimmed to what the model reads: %+v", p)
	}
	if got := find(in.NetworkPolicies, "team-a", "deny"); got == nil || got.Annotations != nil || len(got.Spec.PolicyTypes) != 1 {
		t.Errorf("NetworkPolicy in Inputs: %+v", got)
	}
	if got := find(in.Namespaces, "", "team-a"); got == nil || got.Labels["team"] != "a" {
		t.Errorf("Namespace in Inputs: %+v", got)
	}

	before := dirty.Load()
	ns.Labels["team"] = "b"
	if err := admin.Update(ctx, ns); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a dirty mark for the relabelled Namespace", func() bool { return dirty.Load() > before })
}

// bindAgentRole creates the agent's ClusterRole as shipped and binds it to agentUser.
func bindAgentRole(ctx context.Context, t *testing.T, c client.Client) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "agent_role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(data, &role); err != nil {
		t.Fatalf("agent_role.yaml: %v", err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: agentUser},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: agentUser}},
	}
	for _, o := range []client.Object{&role, binding} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !testnet.Poll(30*time.Second, 50*time.Millisecond, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

func find[T any, P interface {
	*T
	client.Object
}](items []P, namespace, name string) P {
	for _, o := range items {
		if o.GetNamespace() == namespace && o.GetName() == name {
			return o
		}
	}
	return nil
}
