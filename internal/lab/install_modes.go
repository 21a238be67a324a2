package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// InstallMode is how the lab installs Plexus: each is one of the install paths the README gives a
// user, run as the user runs it.
type InstallMode string

const (
	// InstallKustomize applies config/default with kubectl, then config/samples (the default).
	InstallKustomize InstallMode = "kustomize"
	// InstallHelm installs the chart (HelmChart, config/helm/plexus unless set) as release
	// HelmRelease with the lab's images as values, then applies config/samples.
	InstallHelm InstallMode = "helm"
	// InstallManifests applies the rendered dist/install.yaml with kubectl, then config/samples.
	InstallManifests InstallMode = "manifests"
)

// InstallModes are the modes ParseInstallMode accepts, the default first.
var InstallModes = []InstallMode{InstallKustomize, InstallHelm, InstallManifests}

const (
	// HelmRelease is the release name of a Helm install, in PlexusNamespace.
	HelmRelease = "plexus"
	// PlexusNamespace is where every install path puts the operator.
	PlexusNamespace = "plexus-system"
	// helmVersion is the helm CLI make helm builds into the tools cache (Makefile HELM_VERSION).
	helmVersion = "v4.3.2"
	// helmChartDir and distManifest are the chart and the rendered install, relative to the repository.
	helmChartDir = "config/helm/plexus"
	distManifest = "dist/install.yaml"
)

// ParseInstallMode reads the value of plexusctl lab up --install; the empty string is the default.
func ParseInstallMode(s string) (InstallMode, error) {
	if s == "" {
		return InstallKustomize, nil
	}
	for _, m := range InstallModes {
		if string(m) == s {
			return m, nil
		}
	}
	names := make([]string, len(InstallModes))
	for i, m := range InstallModes {
		names[i] = string(m)
	}
	return "", fmt.Errorf("--install %q: want one of %s", s, strings.Join(names, ", "))
}

// installMode is c.Install with the default filled in.
func (c Config) installMode() InstallMode {
	if c.Install == "" {
		return InstallKustomize
	}
	return c.Install
}

// installPlexus installs the operator and the ClusterNetwork default the way c.Install says and
// waits until the CRDs are established; install waits for the rest.
func (c Config) installPlexus() error {
	switch mode := c.installMode(); mode {
	case InstallKustomize:
		c.step("installing Plexus: kubectl apply --server-side -k config/default")
		if _, err := c.kubectl("", "apply", "--server-side", "-k", filepath.Join(c.RepoRoot, "config/default")); err != nil {
			return err
		}
	case InstallManifests:
		c.step("installing Plexus: kubectl apply --server-side -f %s", distManifest)
		if _, err := c.kubectl("", "apply", "--server-side", "-f", filepath.Join(c.RepoRoot, distManifest)); err != nil {
			return err
		}
	case InstallHelm:
		if err := c.helmInstall(); err != nil {
			return err
		}
	default:
		_, err := ParseInstallMode(string(mode))
		return err
	}
	if err := c.waitCRDs(); err != nil {
		return err
	}
	c.step("applying config/samples (ClusterNetwork default)")
	_, err := c.kubectl("", "apply", "--server-side", "-k", filepath.Join(c.RepoRoot, "config/samples"))
	return err
}

func (c Config) waitCRDs() error {
	_, err := c.kubectl("", "wait", "--for", "condition=established", "--timeout", "60s",
		"crd/clusternetworks.plexus.dev", "crd/nodenetworks.plexus.dev")
	return err
}

// helmInstall installs (or upgrades to) the chart with the lab's images as values, then applies
// config/samples, as the README's Helm path does. The chart's clusterNetwork.create is left off: on
// a first install the CRDs are templates of the same release, and Helm maps every object of a
// release before it creates any, so it would refuse the ClusterNetwork ("ensure CRDs are installed
// first").
func (c Config) helmInstall() error {
	values, err := c.WriteHelmValues()
	if err != nil {
		return err
	}
	chart := c.HelmChart
	if chart == "" {
		chart = filepath.Join(c.RepoRoot, helmChartDir)
	}
	c.step("installing Plexus: helm upgrade --install %s %s -n %s -f %s", HelmRelease, chart, PlexusNamespace, values)
	if _, err := c.Helm("upgrade", "--install", HelmRelease, chart, "-n", PlexusNamespace, "-f", values); err != nil {
		return err
	}
	return c.waitCRDs()
}

// HelmValuesFile is the values file of the lab's Helm install, in the lab's folder.
func (c Config) HelmValuesFile() string { return filepath.Join(c.Dir, "helm-values.json") }

// WriteHelmValues writes HelmValuesFile, the lab's images, and returns its path.
func (c Config) WriteHelmValues() (string, error) {
	values := map[string]any{
		"images": map[string]string{"operator": OperatorImage, "agent": AgentImage, "dns": DNSImage},
	}
	j, err := json.MarshalIndent(values, "", "  ")
	if err != nil {
		return "", fmt.Errorf("helm values: %w", err)
	}
	// JSON is YAML: helm reads the file as is.
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return "", fmt.Errorf("helm values: %w", err)
	}
	if err := os.WriteFile(c.HelmValuesFile(), j, 0o644); err != nil {
		return "", fmt.Errorf("helm values: %w", err)
	}
	return c.HelmValuesFile(), nil
}

// HelmBinary is the helm CLI the lab runs: $PLEXUS_HELM, else what make helm built into the tools
// cache.
func (c Config) HelmBinary() string {
	return envOr("PLEXUS_HELM", filepath.Join(c.CacheDir, "tools", "helm-"+helmVersion, "helm"))
}

// Helm runs the helm CLI against the lab as its admin, with Helm's cache, config and data inside
// the lab's folder (nothing under the user's home), and returns its output.
func (c Config) Helm(args ...string) (string, error) {
	bin := c.HelmBinary()
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("helm CLI %s: %w (make helm builds it)", bin, err)
	}
	cmd := exec.Command(bin, append([]string{"--kubeconfig", c.AdminKubeconfig()}, args...)...)
	home := filepath.Join(c.Dir, "helm")
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"), "HELM_DATA_HOME="+filepath.Join(home, "data"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}
