package install

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// ChartDir is the Helm chart's folder, relative to the repository root.
const ChartDir = "config/helm/plexus"

// GeneratedTemplatesDir holds the chart templates made from config/, relative to ChartDir; the
// chart's other templates (helpers, NOTES, the optional ClusterNetwork) are written by hand.
const GeneratedTemplatesDir = "templates/generated"

// labelsInclude adds the chart's standard labels (templates/_helpers.tpl) to an object's labels.
func labelsInclude(indent int) string {
	return fmt.Sprintf(`{{- include "plexus.labels" . | nindent %d }}`, indent)
}

// ChartInputs is everything the chart's generated files are made from.
type ChartInputs struct {
	Tree    Tree
	Version string
	Images  Images
}

// Chart returns the chart's generated files keyed by path relative to ChartDir: Chart.yaml,
// values.yaml (whose defaults are config/'s) and the templates made from config/.
func Chart(in ChartInputs) (map[string][]byte, error) {
	files := map[string][]byte{}
	crds, err := crdTemplates(in.Tree.CRDs)
	if err != nil {
		return nil, err
	}
	files[GeneratedTemplatesDir+"/crds.yaml"] = []byte(generatedHeader + crds)
	rbac, err := rbacTemplates(in.Tree)
	if err != nil {
		return nil, err
	}
	files[GeneratedTemplatesDir+"/rbac.yaml"] = []byte(generatedHeader + rbac)
	if len(in.Tree.Deployments) != 1 {
		return nil, fmt.Errorf("the chart expects one Deployment in config, found %d", len(in.Tree.Deployments))
	}
	var dep appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(in.Tree.Deployments[0].Object, &dep); err != nil {
		return nil, fmt.Errorf("deployment %s: %w", dep.Name, err)
	}
	op, err := operatorTemplate(dep, in.Images)
	if err != nil {
		return nil, err
	}
	files[GeneratedTemplatesDir+"/operator.yaml"] = []byte(generatedHeader + op)
	values, err := valuesYAML(dep, in.Images)
	if err != nil {
		return nil, err
	}
	files["values.yaml"] = []byte(values)
	files["Chart.yaml"] = []byte(chartYAML(in.Version))
	return files, nil
}

// crdTemplates ships the CRDs as templates, not in crds/, because Helm never upgrades crds/:
// crds.install turns them off (CRDs managed elsewhere), crds.keep keeps them, and with them every
// ClusterNetwork, when the release is uninstalled.
func crdTemplates(crds []*unstructured.Unstructured) (string, error) {
	var docs []string
	for _, crd := range crds {
		t := newTemplater()
		obj := crd.DeepCopy().Object
		ann, _, _ := unstructured.NestedStringMap(obj, "metadata", "annotations")
		anyAnn := map[string]any{}
		for k, v := range ann {
			anyAnn[k] = v
		}
		anyAnn[t.lineKey(func(indent int) string {
			return fmt.Sprintf("{{- if .Values.crds.keep }}\n%shelm.sh/resource-policy: keep\n{{- end }}", strings.Repeat(" ", indent))
		})] = "x"
		if err := unstructured.SetNestedField(obj, anyAnn, "metadata", "annotations"); err != nil {
			return "", err
		}
		addLabelsInclude(t, obj)
		s, err := t.render(obj)
		if err != nil {
			return "", fmt.Errorf("CRD %s: %w", crd.GetName(), err)
		}
		docs = append(docs, s)
	}
	return "{{- if .Values.crds.install }}\n---\n" + strings.Join(docs, "---\n") + "{{- end }}\n", nil
}

// addLabelsInclude puts the chart's labels beside the object's own.
func addLabelsInclude(t *templater, obj map[string]any) {
	md := obj["metadata"].(map[string]any)
	labels, _ := md["labels"].(map[string]any)
	if labels == nil {
		labels = map[string]any{}
	}
	labels[t.lineKey(labelsInclude)] = "x"
	md["labels"] = labels
}

// rbacTemplates are the service accounts, roles and bindings, moved into the release namespace.
func rbacTemplates(tree Tree) (string, error) {
	var groups [][]*unstructured.Unstructured
	groups = append(groups, tree.ServiceAccounts, tree.ClusterRoles, tree.ClusterRoleBindings, tree.Roles, tree.RoleBindings)
	var docs []string
	for _, group := range groups {
		for _, o := range group {
			t := newTemplater()
			obj := o.DeepCopy().Object
			releaseNamespaced(t, obj)
			addLabelsInclude(t, obj)
			s, err := t.render(obj)
			if err != nil {
				return "", fmt.Errorf("%s %s: %w", o.GetKind(), o.GetName(), err)
			}
			docs = append(docs, s)
		}
	}
	return "---\n" + strings.Join(docs, "---\n"), nil
}

// releaseNamespaced moves a namespaced object, and the service accounts a binding names, into
// the namespace Helm installs the release in.
func releaseNamespaced(t *templater, obj map[string]any) {
	md := obj["metadata"].(map[string]any)
	if _, ok := md["namespace"]; ok {
		md["namespace"] = t.value(".Release.Namespace")
	}
	subjects, _ := obj["subjects"].([]any)
	for _, s := range subjects {
		if m, ok := s.(map[string]any); ok && m["kind"] == "ServiceAccount" {
			m["namespace"] = t.value(".Release.Namespace")
		}
	}
}
