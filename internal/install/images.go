package install

import (
	"fmt"
	"strings"

	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// Images are the images a Plexus install runs. The operator's comes from config/operator; the
// others are what the operator renders, passed to it as flags so the bundle's relatedImages and
// the chart's values name exactly what runs.
type Images struct {
	Operator string
	Agent    string
	DNS      string
	Ingress  string
}

// DefaultImages are the images of a dev build (cmd/plexus-operator's flag defaults), with the
// operator's taken from config.
func DefaultImages(operator string) Images {
	return Images{Operator: operator, Agent: "plexus/plexus-agent:dev", DNS: "plexus/coredns:dev", Ingress: "plexus/plexus-ingress:dev"}
}

func (i Images) related() []operatorsv1alpha1.RelatedImage {
	return []operatorsv1alpha1.RelatedImage{
		{Name: "plexus-operator", Image: i.Operator},
		{Name: "plexus-agent", Image: i.Agent},
		{Name: "coredns", Image: i.DNS},
		{Name: "plexus-ingress", Image: i.Ingress},
	}
}

// imageFlags are the operator's flags naming the images it renders.
func (i Images) imageFlags() []string {
	return []string{"--agent-image=" + i.Agent, "--dns-image=" + i.DNS, "--ingress-image=" + i.Ingress}
}

// operatorContainer is the name of the operator's container in config/operator.
const operatorContainer = "operator"

// OperatorImage is the image of the operator container in the Deployments of t.
func OperatorImage(t Tree) (string, error) {
	for _, d := range t.Deployments {
		cs, _, _ := unstructuredContainers(d.Object)
		for _, c := range cs {
			if c["name"] == operatorContainer {
				img, _ := c["image"].(string)
				return img, nil
			}
		}
	}
	return "", fmt.Errorf("no Deployment in config has a container named %q", operatorContainer)
}

func unstructuredContainers(obj map[string]any) ([]map[string]any, bool, error) {
	spec, _ := obj["spec"].(map[string]any)
	tmpl, _ := spec["template"].(map[string]any)
	pod, _ := tmpl["spec"].(map[string]any)
	raw, _ := pod["containers"].([]any)
	var out []map[string]any
	for _, c := range raw {
		if m, ok := c.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out, len(out) > 0, nil
}

// operatorDeploymentSpec is the operator Deployment's spec as OLM and Helm run it: the operator
// learns its namespace from the downward API (OLM and Helm choose the namespace, not config/) and
// is told the images it renders.
func operatorDeploymentSpec(spec appsv1.DeploymentSpec, images Images) appsv1.DeploymentSpec {
	spec = *spec.DeepCopy()
	for i := range spec.Template.Spec.Containers {
		c := &spec.Template.Spec.Containers[i]
		if c.Name != operatorContainer {
			continue
		}
		c.Args = append(c.Args, missingFlags(c.Args, images.imageFlags())...)
		if !hasEnv(c.Env, podNamespaceEnv) {
			c.Env = append(c.Env, corev1.EnvVar{Name: podNamespaceEnv, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}})
		}
	}
	return spec
}

// podNamespaceEnv is the variable cmd/plexus-operator reads its namespace from.
const podNamespaceEnv = "POD_NAMESPACE"

func hasEnv(env []corev1.EnvVar, name string) bool {
	for _, e := range env {
		if e.Name == name {
			return true
		}
	}
	return false
}

// missingFlags are the flags of want whose name args does not set yet.
func missingFlags(args, want []string) []string {
	var out []string
	for _, w := range want {
		name, _, _ := strings.Cut(w, "=")
		found := false
		for _, a := range args {
			if a == name || strings.HasPrefix(a, name+"=") {
				found = true
			}
		}
		if !found {
			out = append(out, w)
		}
	}
	return out
}

// withPlatformAffinity requires nodes of the supported platforms for the operator's pods, so OLM
// schedules them only where the images run (the multi-architecture validator checks this).
func withPlatformAffinity(spec appsv1.DeploymentSpec) appsv1.DeploymentSpec {
	pod := &spec.Template.Spec
	if pod.Affinity == nil {
		pod.Affinity = &corev1.Affinity{}
	}
	if pod.Affinity.NodeAffinity == nil {
		pod.Affinity.NodeAffinity = &corev1.NodeAffinity{}
	}
	na := pod.Affinity.NodeAffinity
	if na.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		na.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{}}}
	}
	for i := range na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		term := &na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[i]
		term.MatchExpressions = append(term.MatchExpressions,
			corev1.NodeSelectorRequirement{Key: corev1.LabelOSStable, Operator: corev1.NodeSelectorOpIn, Values: supportedPlatforms.OS},
			corev1.NodeSelectorRequirement{Key: corev1.LabelArchStable, Operator: corev1.NodeSelectorOpIn, Values: supportedPlatforms.Arch})
	}
	return spec
}
