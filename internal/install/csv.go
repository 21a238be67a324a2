package install

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/blang/semver/v4"
	"github.com/operator-framework/api/pkg/lib/version"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// PackageName is the OLM package (and Helm chart) name.
const PackageName = "plexus"

// Channel is the one OLM channel the bundle is published in. "candidate" follows OLM's channel
// naming convention for a pre-1.0 operator (the good-practices validator warns on other names).
const Channel = "candidate"

// CSVInputs is everything the ClusterServiceVersion is made from.
type CSVInputs struct {
	Tree     Tree
	Samples  []*unstructured.Unstructured
	Version  string
	Images   Images
	IconSVG  []byte
	Metadata Metadata
}

// Metadata is what OperatorHub shows about Plexus that config/ does not say.
type Metadata struct {
	DisplayName    string
	Summary        string
	Description    string
	MinKubeVersion string
	Keywords       []string
	Maintainers    []operatorsv1alpha1.Maintainer
	Links          []operatorsv1alpha1.AppLink
	Repository     string
	Support        string
	Provider       string
}

// CSV builds the ClusterServiceVersion: the operator Deployment and the RBAC bound to service
// accounts as the install strategy, the CRDs as owned APIs, config/samples as alm-examples.
func CSV(in CSVInputs) (*operatorsv1alpha1.ClusterServiceVersion, error) {
	v, err := semver.Parse(in.Version)
	if err != nil {
		return nil, fmt.Errorf("bundle version %q: %w", in.Version, err)
	}
	strategy, err := installStrategy(in.Tree, in.Images)
	if err != nil {
		return nil, err
	}
	owned, err := ownedCRDs(in.Tree.CRDs)
	if err != nil {
		return nil, err
	}
	internal, err := json.Marshal(internalCRDs)
	if err != nil {
		return nil, err
	}
	examples, err := json.MarshalIndent(objectsOf(in.Samples), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("alm-examples: %w", err)
	}
	csv := &operatorsv1alpha1.ClusterServiceVersion{
		TypeMeta: metav1.TypeMeta{APIVersion: operatorsv1alpha1.SchemeGroupVersion.String(), Kind: operatorsv1alpha1.ClusterServiceVersionKind},
		ObjectMeta: metav1.ObjectMeta{
			Name: PackageName + ".v" + in.Version,
			Annotations: map[string]string{
				"alm-examples":   string(examples),
				"capabilities":   "Basic Install",
				"categories":     "Networking",
				"containerImage": in.Images.Operator,
				"description":    in.Metadata.Summary,
				"repository":     in.Metadata.Repository,
				"support":        in.Metadata.Support,
				// Operators in AllNamespaces mode still need one namespace for their own pods.
				"operatorframework.io/suggested-namespace":        in.Tree.Namespace.GetName(),
				"operators.operatorframework.io/internal-objects": string(internal),
			},
			Labels: platformLabels(),
		},
		Spec: operatorsv1alpha1.ClusterServiceVersionSpec{
			DisplayName:    in.Metadata.DisplayName,
			Description:    in.Metadata.Description,
			Keywords:       in.Metadata.Keywords,
			Maintainers:    in.Metadata.Maintainers,
			Links:          in.Metadata.Links,
			Provider:       operatorsv1alpha1.AppLink{Name: in.Metadata.Provider},
			Maturity:       "alpha",
			Version:        version.OperatorVersion{Version: v},
			MinKubeVersion: in.Metadata.MinKubeVersion,
			Icon:           []operatorsv1alpha1.Icon{{Data: base64.StdEncoding.EncodeToString(in.IconSVG), MediaType: "image/svg+xml"}},
			// The operator watches cluster-scoped objects (Nodes, the ClusterNetwork) and renders
			// into its own namespace: it serves the whole cluster or nothing.
			InstallModes: []operatorsv1alpha1.InstallMode{
				{Type: operatorsv1alpha1.InstallModeTypeOwnNamespace, Supported: false},
				{Type: operatorsv1alpha1.InstallModeTypeSingleNamespace, Supported: false},
				{Type: operatorsv1alpha1.InstallModeTypeMultiNamespace, Supported: false},
				{Type: operatorsv1alpha1.InstallModeTypeAllNamespaces, Supported: true},
			},
			InstallStrategy:           operatorsv1alpha1.NamedInstallStrategy{StrategyName: operatorsv1alpha1.InstallStrategyNameDeployment, StrategySpec: strategy},
			CustomResourceDefinitions: operatorsv1alpha1.CustomResourceDefinitions{Owned: owned},
			RelatedImages:             in.Images.related(),
		},
	}
	return csv, nil
}

// platformLabels are OLM's operatorframework.io/os.<os> and /arch.<arch> labels.
func platformLabels() map[string]string {
	labels := map[string]string{}
	for _, os := range supportedPlatforms.OS {
		labels["operatorframework.io/os."+os] = "supported"
	}
	for _, arch := range supportedPlatforms.Arch {
		labels["operatorframework.io/arch."+arch] = "supported"
	}
	return labels
}

func objectsOf(us []*unstructured.Unstructured) []map[string]any {
	out := make([]map[string]any, 0, len(us))
	for _, u := range us {
		out = append(out, u.Object)
	}
	return out
}

// installStrategy turns the Deployments and the RBAC bound to service accounts into OLM's
// deployment strategy. ClusterRoles bound to nobody (the user roles) are shipped as plain
// manifests beside the CSV instead.
func installStrategy(t Tree, images Images) (operatorsv1alpha1.StrategyDetailsDeployment, error) {
	var s operatorsv1alpha1.StrategyDetailsDeployment
	for _, d := range t.Deployments {
		var dep appsv1.Deployment
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(d.Object, &dep); err != nil {
			return s, fmt.Errorf("deployment %s: %w", d.GetName(), err)
		}
		spec := withPlatformAffinity(operatorDeploymentSpec(dep.Spec, images))
		s.DeploymentSpecs = append(s.DeploymentSpecs, operatorsv1alpha1.StrategyDeploymentSpec{Name: dep.Name, Spec: spec, Label: dep.Labels})
	}
	clusterRules, err := rulesByName(t.ClusterRoles)
	if err != nil {
		return s, err
	}
	roleRules, err := rulesByName(t.Roles)
	if err != nil {
		return s, err
	}
	cp, err := permissionsFromBindings(t.ClusterRoleBindings, clusterRules)
	if err != nil {
		return s, err
	}
	p, err := permissionsFromBindings(t.RoleBindings, roleRules)
	if err != nil {
		return s, err
	}
	s.ClusterPermissions, s.Permissions = cp, p
	return s, nil
}

// rulesByName maps each (Cluster)Role's name to its rules.
func rulesByName(roles []*unstructured.Unstructured) (map[string][]rbacv1.PolicyRule, error) {
	out := map[string][]rbacv1.PolicyRule{}
	for _, r := range roles {
		var role rbacv1.ClusterRole // Role and ClusterRole share the rules field
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(r.Object, &role); err != nil {
			return nil, fmt.Errorf("%s %s: %w", r.GetKind(), r.GetName(), err)
		}
		out[r.GetName()] = role.Rules
	}
	return out, nil
}

// permissionsFromBindings gives each bound service account the rules of its roles, in the order
// the bindings come (sorted by name), one entry per service account.
func permissionsFromBindings(bindings []*unstructured.Unstructured, rules map[string][]rbacv1.PolicyRule) ([]operatorsv1alpha1.StrategyDeploymentPermissions, error) {
	var out []operatorsv1alpha1.StrategyDeploymentPermissions
	index := map[string]int{}
	for _, b := range bindings {
		var rb rbacv1.RoleBinding // RoleBinding and ClusterRoleBinding share subjects and roleRef
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(b.Object, &rb); err != nil {
			return nil, fmt.Errorf("%s %s: %w", b.GetKind(), b.GetName(), err)
		}
		r, ok := rules[rb.RoleRef.Name]
		if !ok {
			return nil, fmt.Errorf("%s %s refers to %s %s, which config does not have", b.GetKind(), b.GetName(), rb.RoleRef.Kind, rb.RoleRef.Name)
		}
		for _, sub := range rb.Subjects {
			if sub.Kind != rbacv1.ServiceAccountKind {
				return nil, fmt.Errorf("%s %s binds a %s: OLM can only grant service accounts", b.GetKind(), b.GetName(), sub.Kind)
			}
			i, seen := index[sub.Name]
			if !seen {
				i = len(out)
				index[sub.Name] = i
				out = append(out, operatorsv1alpha1.StrategyDeploymentPermissions{ServiceAccountName: sub.Name})
			}
			out[i].Rules = append(out[i].Rules, r...)
		}
	}
	return out, nil
}

// boundClusterRoles is the set of ClusterRole names some ClusterRoleBinding grants.
func boundClusterRoles(t Tree) map[string]bool {
	out := map[string]bool{}
	for _, b := range t.ClusterRoleBindings {
		name, _, _ := unstructured.NestedString(b.Object, "roleRef", "name")
		out[name] = true
	}
	return out
}
