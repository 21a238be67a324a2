package controllers

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/utils/ptr"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/netconfig"
)

// TestComponentsRenderWhatPruneFinds holds every managed component's render to its kinds: each
// rendered object is of a listed kind, in the component's namespace, named as allowed and labelled,
// so prune finds it again once it is no longer rendered.
func TestComponentsRenderWhatPruneFinds(t *testing.T) {
	served := netconfig.Default(servedSpec("10.244.0.0/16"), netconfig.Images{Agent: "plexus-agent:test"})
	served.Ingress.Enabled = ptr.To(true)
	for _, c := range ManagedComponents("plexus-system") {
		objs := c.Render(RenderInput{Served: served, Nodes: 3})
		if len(objs) == 0 {
			t.Errorf("component %s renders nothing for a served default spec", c.Name)
		}
		if err := c.Check(objs); err != nil {
			t.Errorf("component %s: %v", c.Name, err)
		}
	}
}

// TestCacheOptions: the cache reads only what the operator's RBAC grants: namespaced kinds in its
// namespace, the admission policy pair by its one name, each component's namespaced objects by
// their one name in its own namespace.
func TestCacheOptions(t *testing.T) {
	opts := CacheOptions("plexus-system")
	str := func(s fmt.Stringer) string {
		if s == nil || reflect.ValueOf(s).IsNil() {
			return ""
		}
		return s.String()
	}
	got := map[string]string{}
	for o, by := range opts.ByObject {
		var ns []string
		for n, c := range by.Namespaces {
			ns = append(ns, n+str(c.FieldSelector)+str(c.LabelSelector))
		}
		sort.Strings(ns)
		got[reflect.TypeOf(o).Elem().Name()] = strings.Join(ns, ",") + "|" + str(by.Field) + str(by.Label)
	}
	byName := "|" + fields.OneTermEqualSelector("metadata.name", "plexus-agent-own-nodenetwork").String()
	name := func(n string) string { return fields.OneTermEqualSelector("metadata.name", n).String() }
	dnsAndIngress := func(dns string) string {
		return "kube-system" + name(dns) + ",plexus-system" + name("plexus-ingress") + "|"
	}
	managed := "|app.kubernetes.io/managed-by=plexus"
	want := map[string]string{
		"DaemonSet": "plexus-system|", "ValidatingAdmissionPolicy": byName, "ValidatingAdmissionPolicyBinding": byName,
		// Cluster DNS in kube-system and ingress in plexus-system: each kind by its one name there.
		"ServiceAccount": dnsAndIngress("coredns"), "ConfigMap": "kube-system" + name("coredns") + "|", "Deployment": dnsAndIngress("coredns"),
		"PodDisruptionBudget": "kube-system" + name("coredns") + "|", "Service": dnsAndIngress("kube-dns"),
		"Role": "plexus-system" + name("plexus-ingress") + "|", "RoleBinding": "plexus-system" + name("plexus-ingress") + "|",
		// Two names (plexus-coredns, plexus-ingress): by label.
		"ClusterRole": managed, "ClusterRoleBinding": managed,
		// Named by the user: by label, prune lists them.
		"IngressClass": "|",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s cached as %q, want %q", k, got[k], w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected cached kind %s", k)
		}
	}
}

// TestRunPhasesRunsAllAndAggregates: a failing phase does not stop the next; every error is
// returned and kept for the status.
func TestRunPhasesRunsAllAndAggregates(t *testing.T) {
	var ran []string
	step := func(name string, err error) phase {
		return phase{name: name, run: func(context.Context, *phaseScope) error { ran = append(ran, name); return err }}
	}
	res := phaseResult{}
	err := runPhases(context.Background(), []phase{step("ipam", errors.New("ipam broke")), step("agent", nil), step("dns", errors.New("dns broke"))},
		&phaseScope{cn: &v1.ClusterNetwork{}, res: &res})
	if strings.Join(ran, ",") != "ipam,agent,dns" {
		t.Fatalf("ran %v, want every phase in order", ran)
	}
	if err == nil || !strings.Contains(err.Error(), "ipam broke") || !strings.Contains(err.Error(), "dns broke") {
		t.Fatalf("err = %v, want both failures", err)
	}
	if len(res.errs) != 2 {
		t.Fatalf("status keeps %d errors, want 2", len(res.errs))
	}
}

// TestPhasesOrder: pod CIDRs are allocated before any component is applied.
func TestPhasesOrder(t *testing.T) {
	r := &ClusterNetworkReconciler{Namespace: "plexus-system"}
	var names []string
	for _, p := range r.phases() {
		names = append(names, p.name)
	}
	if strings.Join(names, ",") != "ipam,agent,dns,ingress" {
		t.Fatalf("phases = %v, want ipam, then agent, dns and ingress", names)
	}
}
