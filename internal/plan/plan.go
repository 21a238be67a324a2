// Package plan is `plexusctl plan`: what applying a ClusterNetwork would do to a live cluster,
// without changing it. The decision is the operator's own (controllers.PlanChange runs the
// reconcile's validation, IPAM planner, renders and apply-and-prune as a dry run); this package
// reads the proposal, asks the API server to validate it (a dry-run write, so the CRD's OpenAPI and
// CEL rules speak exactly as they would on apply), checks the Services a proxy backend switch would
// serve less well, and formats the result.
package plan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/plexus-net/plexus/agent/proxy"
	ipvsproxy "github.com/plexus-net/plexus/agent/proxy/ipvs"
	nftproxy "github.com/plexus-net/plexus/agent/proxy/nftables"
	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers"
)

// Result is a plan with what only plexusctl adds to the operator's view.
type Result struct {
	*controllers.Plan
	// APIRefusal is the API server's refusal of the proposal (OpenAPI or CEL validation), empty
	// when it would store it. The operator never sees a proposal the API server refuses.
	APIRefusal string
	// Generation is the live generation and the one the proposal would get.
	FromGeneration, ToGeneration int64
	// BackendGaps lists, when the proposal switches the Service proxy backend, the Services that
	// use a feature the new backend does not honour.
	BackendGaps []ServiceGap
	// NewBackend is the backend the proposal switches to ("" when it does not switch).
	NewBackend string
}

// Refused reports whether the API server or the operator would refuse the proposal.
func (r *Result) Refused() bool { return r.APIRefusal != "" || (r.Plan != nil && !r.Accepted()) }

// ServiceGap is one Service a backend switch serves less well.
type ServiceGap struct {
	Service  string
	Features []proxy.Feature
}

// Proposal reads the ClusterNetwork to plan: a whole object from file, or the live one with a JSON
// merge patch (JSON or YAML) applied. Exactly one of file and patch is set.
func Proposal(live *v1.ClusterNetwork, file, patch string) (*v1.ClusterNetwork, error) {
	switch {
	case file != "" && patch != "":
		return nil, errors.New("-f and --patch exclude each other")
	case file != "":
		raw, err := readInput(file)
		if err != nil {
			return nil, err
		}
		cn := &v1.ClusterNetwork{}
		if err := yaml.UnmarshalStrict(raw, cn); err != nil {
			return nil, fmt.Errorf("%s: not a ClusterNetwork: %w", file, err)
		}
		if cn.Kind != "" && cn.Kind != "ClusterNetwork" {
			return nil, fmt.Errorf("%s: kind %s, want ClusterNetwork", file, cn.Kind)
		}
		if cn.Name == "" {
			cn.Name = v1.DefaultClusterNetworkName
		}
		return cn, nil
	case patch != "":
		if live == nil {
			return nil, errors.New("--patch needs a live ClusterNetwork to patch; there is none: use -f")
		}
		raw := []byte(patch)
		if len(patch) > 1 && patch[0] == '@' {
			var err error
			if raw, err = readInput(patch[1:]); err != nil {
				return nil, err
			}
		}
		pj, err := yaml.YAMLToJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("--patch: %w", err)
		}
		base := live.DeepCopy()
		base.ManagedFields = nil
		lj, err := yaml.Marshal(base)
		if err != nil {
			return nil, err
		}
		if lj, err = yaml.YAMLToJSON(lj); err != nil {
			return nil, err
		}
		merged, err := jsonpatch.MergePatch(lj, pj)
		if err != nil {
			return nil, fmt.Errorf("--patch: not a JSON merge patch: %w", err)
		}
		cn := &v1.ClusterNetwork{}
		if err := yaml.UnmarshalStrict(merged, cn); err != nil {
			return nil, fmt.Errorf("--patch makes no valid ClusterNetwork: %w", err)
		}
		return cn, nil
	}
	return nil, errors.New("say what to plan: -f clusternetwork.yaml or --patch '{\"spec\":...}'")
}

func readInput(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(os.Stdin)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return b, nil
}

// Make computes the plan of proposal against the cluster c reaches. c needs the scheme of
// controllers.NewScheme and read access to what the operator reads; it is only ever written with
// dry runs.
func Make(ctx context.Context, c client.Client, proposal *v1.ClusterNetwork) (*Result, error) {
	live := &v1.ClusterNetwork{}
	if err := c.Get(ctx, client.ObjectKey{Name: proposal.Name}, live); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("read ClusterNetwork %s: %w", proposal.Name, err)
		}
		live = nil
	}
	res := &Result{}
	if refusal, err := apiValidate(ctx, c, live, proposal); err != nil {
		return nil, err
	} else if refusal != "" {
		res.APIRefusal = refusal
		return res, nil
	}
	p, err := controllers.PlanChange(ctx, c, live, proposal, controllers.Options{})
	if err != nil {
		return nil, err
	}
	res.Plan = p
	if live != nil {
		res.FromGeneration, res.ToGeneration = live.Generation, live.Generation
		if !equalSpecs(live, proposal) {
			res.ToGeneration++
		}
	}
	if err := res.checkBackend(ctx, c); err != nil {
		return nil, err
	}
	return res, nil
}

// apiValidate writes the proposal as a dry run: the API server's answer is the CRD validation. A
// conflict (the operator wrote status in between) is retried with the newer resourceVersion.
func apiValidate(ctx context.Context, c client.Client, live, proposal *v1.ClusterNetwork) (string, error) {
	obj := proposal.DeepCopy()
	obj.Status = v1.ClusterNetworkStatus{}
	if live == nil {
		obj.ResourceVersion = ""
		return refusal(c.Create(ctx, obj, client.DryRunAll))
	}
	var err error
	for range 5 {
		obj.ResourceVersion, obj.UID = live.ResourceVersion, live.UID
		if err = c.Update(ctx, obj, client.DryRunAll); !apierrors.IsConflict(err) {
			break
		}
		if err := c.Get(ctx, client.ObjectKeyFromObject(live), live); err != nil {
			return "", fmt.Errorf("read ClusterNetwork %s: %w", live.Name, err)
		}
	}
	return refusal(err)
}

// refusal turns the API server's answer to a dry-run write into a refusal message.
func refusal(err error) (string, error) {
	switch {
	case err == nil:
		return "", nil
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
		return err.Error(), nil
	}
	return "", fmt.Errorf("dry-run write of the proposal: %w", err)
}

func equalSpecs(a, b *v1.ClusterNetwork) bool {
	return controllers.SpecChanges(&a.Spec, &b.Spec) == nil
}

// backendFeatures are the feature rows of the Service proxy backends.
func backendFeatures(mode v1.ServiceProxyMode) proxy.FeatureTable {
	switch mode {
	case v1.ServiceProxyIPVS:
		return ipvsproxy.Features
	case v1.ServiceProxyNFTables:
		return nftproxy.Features
	}
	return nil
}

// checkBackend lists the Services the new backend would serve less well.
func (r *Result) checkBackend(ctx context.Context, c client.Client) error {
	if r.Plan == nil || r.Effective == nil || r.Current == nil {
		return nil
	}
	from, to := proxyMode(r.Current), proxyMode(r.Effective)
	if from == to {
		return nil
	}
	r.NewBackend = string(to)
	table := backendFeatures(to)
	if table == nil {
		return nil
	}
	var svcs corev1.ServiceList
	if err := c.List(ctx, &svcs); err != nil {
		return fmt.Errorf("list Services: %w", err)
	}
	var slices discoveryv1.EndpointSliceList
	if err := c.List(ctx, &slices); err != nil {
		return fmt.Errorf("list EndpointSlices: %w", err)
	}
	bySvc := map[string][]*discoveryv1.EndpointSlice{}
	for i := range slices.Items {
		s := &slices.Items[i]
		key := s.Namespace + "/" + s.Labels[discoveryv1.LabelServiceName]
		bySvc[key] = append(bySvc[key], s)
	}
	for i := range svcs.Items {
		s := &svcs.Items[i]
		key := s.Namespace + "/" + s.Name
		if missing := proxy.Unsupported(table, s, bySvc[key]); len(missing) > 0 {
			r.BackendGaps = append(r.BackendGaps, ServiceGap{Service: key, Features: missing})
		}
	}
	return nil
}

func proxyMode(s *v1.ClusterNetworkSpec) v1.ServiceProxyMode {
	if s.ServiceProxy == nil || s.ServiceProxy.Mode == "" {
		return v1.ServiceProxyNFTables
	}
	return s.ServiceProxy.Mode
}
