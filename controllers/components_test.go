package controllers

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/fields"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/netconfig"
)

// TestComponentsRenderWhatPruneFinds holds every managed component's render to its kinds: each
// rendered object is of a listed kind, in the component's namespace, named as allowed and labelled,
// so prune finds it again once it is no longer rendered.
func TestComponentsRenderWhatPruneFinds(t *testing.T) {
	served := netconfig.Default(servedSpec("10.244.0.0/16"), netconfig.Images{Agent: "plexus-agent:test"})
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
// namespace, the admission policy pair by its one name.
func TestCacheOptions(t *testing.T) {
	opts := CacheOptions("plexus-system")
	got := map[string]string{}
	for o, by := range opts.ByObject {
		var ns []string
		for n := range by.Namespaces {
			ns = append(ns, n)
		}
		field := ""
		if by.Field != nil {
			field = by.Field.String()
		}
		got[reflect.TypeOf(o).Elem().Name()] = strings.Join(ns, ",") + "|" + field
	}
	byName := "|" + fields.OneTermEqualSelector("metadata.name", "plexus-agent-own-nodenetwork").String()
	named := func(n string) string { return "|" + fields.OneTermEqualSelector("metadata.name", n).String() }
	want := map[string]string{
		"DaemonSet": "plexus-system|", "ValidatingAdmissionPolicy": byName, "ValidatingAdmissionPolicyBinding": byName,
		// Cluster DNS: every kind by its one name, the namespaced ones in kube-system only.
		"ServiceAccount": "kube-system" + named("coredns"), "ConfigMap": "kube-system" + named("coredns"), "Deployment": "kube-system" + named("coredns"),
		"PodDisruptionBudget": "kube-system" + named("coredns"), "Service": "kube-system" + named("kube-dns"),
		"ClusterRole": named("plexus-coredns"), "ClusterRoleBinding": named("plexus-coredns"),
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
	if strings.Join(names, ",") != "ipam,agent,dns" {
		t.Fatalf("phases = %v, want ipam, then agent, then dns", names)
	}
}
