package lab

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// kubectl runs the lab's kubectl as the lab admin, with stdin if given, and returns its output.
func (c Config) kubectl(stdin string, args ...string) (string, error) {
	// Its own discovery cache, inside the lab folder: nothing under the user's ~/.kube.
	cmd := exec.Command(c.binaries().kubectl, append([]string{"--kubeconfig", c.AdminKubeconfig(),
		"--cache-dir", filepath.Join(c.Dir, "kubectl-cache")}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// labObjects are what the lab adds besides Plexus: the API server's right to use kubelets (logs,
// exec), and the ConfigMap that points host-network Plexus pods at the API server's real address
// (they cannot use the kubernetes Service before Plexus programs Services).
func (c Config) labObjects() string {
	return fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: plexus-lab:kube-apiserver-kubelet-client
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:kubelet-api-admin}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: %s}
---
apiVersion: v1
kind: Namespace
metadata:
  name: plexus-system
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: plexus-apiserver-endpoint
  namespace: plexus-system
data:
  KUBERNETES_SERVICE_HOST: %q
  KUBERNETES_SERVICE_PORT: "%d"
`, apiserverKubeletUser, c.gatewayV4(), APIServerPort)
}

// waitNodesRegistered waits until every lab node has a Node object.
func (c Config) waitNodesRegistered(st *State) error {
	t0 := time.Now()
	err := c.waitFor(st, "", "", 90*time.Second, "nodes registered", func() error {
		out, err := c.kubectl("", "get", "nodes", "-o", "name")
		if err != nil {
			return err
		}
		if n := len(strings.Fields(out)); n < c.Nodes {
			return fmt.Errorf("%d of %d nodes registered", n, c.Nodes)
		}
		return nil
	})
	if err == nil {
		c.step("%d nodes registered in %s", c.Nodes, time.Since(t0).Round(100*time.Millisecond))
	}
	return err
}

// install installs Plexus as a user does (c.Install: config/default and the sample ClusterNetwork
// unless told otherwise); it waits
// for the operator Deployment and then for the nodes to turn Ready (which needs the agent).
func (c Config) install(st *State) error {
	if _, err := c.kubectl(c.labObjects(), "apply", "--server-side", "--field-manager", FieldManager, "-f", "-"); err != nil {
		return err
	}
	if err := c.installPlexus(); err != nil {
		return err
	}
	if c.AfterInstall != "" {
		c.step("applying the lab's extra manifests after the install")
		if _, err := c.kubectl(c.AfterInstall, "apply", "--server-side", "--field-manager", FieldManager, "-f", "-"); err != nil {
			return err
		}
	}
	t0 := time.Now()
	if _, err := c.kubectl("", "-n", "plexus-system", "rollout", "status", "deployment/plexus-operator", "--timeout", "120s"); err != nil {
		return fmt.Errorf("operator Deployment: %w", err)
	}
	c.step("operator Deployment available in %s", time.Since(t0).Round(100*time.Millisecond))
	t0 = time.Now()
	if _, err := c.kubectl("", "wait", "--for", "condition=Ready", "nodes", "--all", "--timeout", fmt.Sprintf("%ds", int(c.ReadyTimeout.Seconds()))); err != nil {
		ds, _ := c.kubectl("", "-n", "plexus-system", "get", "daemonset,pods", "-o", "wide")
		return fmt.Errorf("nodes did not turn Ready (Plexus networks them through the agent DaemonSet):\n%s%w", ds, err)
	}
	c.step("%d nodes Ready in %s", c.Nodes, time.Since(t0).Round(100*time.Millisecond))
	return nil
}
