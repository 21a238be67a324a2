package lab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Identities of the control plane and the lab's admin. Each component has its own user, bound by the
// API server's bootstrap RBAC; only the human admin is in system:masters.
const (
	adminUser             = "plexus-lab-admin"
	controllerManagerUser = "system:kube-controller-manager"
	schedulerUser         = "system:kube-scheduler"
	// apiserverKubeletUser is the API server's client certificate towards kubelets (logs, exec).
	apiserverKubeletUser = "kube-apiserver-kubelet-client"
	etcdClientURL        = "http://127.0.0.1:2379"
)

// tokens maps users to their bearer tokens, kept in pki/tokens.json.
type tokens map[string]string

// identities creates (or reuses) the CA, certificates, tokens and kubeconfigs of the lab.
func (c Config) identities(st *State) (*pki, tokens, error) {
	p, err := loadOrCreatePKI(filepath.Join(c.Dir, "pki"))
	if err != nil {
		return nil, nil, err
	}
	svcIPs, err := c.firstServiceIPs()
	if err != nil {
		return nil, nil, err
	}
	ips := append([]net.IP{net.IP(c.gatewayV4().AsSlice()), net.IP(c.gatewayV6().AsSlice()), net.ParseIP("127.0.0.1")}, svcIPs...)
	dns := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	if err := p.issue("apiserver", "kube-apiserver", nil, ips, dns, true); err != nil {
		return nil, nil, err
	}
	if err := p.issue("apiserver-kubelet-client", apiserverKubeletUser, nil, nil, nil, false); err != nil {
		return nil, nil, err
	}
	for _, n := range c.nodes() {
		if err := p.issue("kubelet-"+n.Name, "system:node:"+n.Name, []string{"system:nodes"},
			[]net.IP{net.IP(n.IPv4.AsSlice()), net.IP(n.IPv6.AsSlice())}, []string{n.Name}, true); err != nil {
			return nil, nil, err
		}
	}
	if err := p.serviceAccountKey(); err != nil {
		return nil, nil, err
	}
	tk := tokens{}
	tokFile := p.path("tokens.json")
	if b, err := os.ReadFile(tokFile); err == nil {
		_ = json.Unmarshal(b, &tk)
	}
	users := []string{adminUser, controllerManagerUser, schedulerUser}
	for _, n := range c.nodes() {
		users = append(users, "system:node:"+n.Name)
	}
	for _, u := range users {
		if tk[u] == "" {
			tk[u] = randomToken()
		}
	}
	b, _ := json.Marshal(tk)
	if err := os.WriteFile(tokFile, b, 0o600); err != nil {
		return nil, nil, err
	}
	// The API server's static token file: token,user,uid,"groups".
	var csv strings.Builder
	names := make([]string, 0, len(tk))
	for u := range tk {
		names = append(names, u)
	}
	sort.Strings(names)
	for _, u := range names {
		groups := ""
		switch {
		case u == adminUser:
			groups = "system:masters"
		case strings.HasPrefix(u, "system:node:"):
			groups = "system:nodes"
		}
		fmt.Fprintf(&csv, "%s,%s,%s,\"%s\"\n", tk[u], u, u, groups)
	}
	if err := os.WriteFile(p.path("tokens.csv"), []byte(csv.String()), 0o600); err != nil {
		return nil, nil, err
	}
	st.Kubeconfig = c.AdminKubeconfig()
	st.HostAPIAddress = c.HostAPIAddress
	if err := writeKubeconfig(st.Kubeconfig, "https://"+c.HostAPIAddress, p.path("ca.crt"), tk[adminUser]); err != nil {
		return nil, nil, err
	}
	if err := writeKubeconfig(c.kubeconfigOf("kube-controller-manager"), c.APIServerURL(), p.path("ca.crt"), tk[controllerManagerUser]); err != nil {
		return nil, nil, err
	}
	if err := writeKubeconfig(c.kubeconfigOf("kube-scheduler"), c.APIServerURL(), p.path("ca.crt"), tk[schedulerUser]); err != nil {
		return nil, nil, err
	}
	return p, tk, st.save()
}

// AdminKubeconfig is the kubeconfig the lab writes for its user.
func (c Config) AdminKubeconfig() string { return filepath.Join(c.Dir, "kubeconfig") }

func (c Config) kubeconfigOf(component string) string {
	return filepath.Join(c.Dir, "pki", component+".kubeconfig")
}

// firstServiceIPs are the kubernetes Service's ClusterIPs (the first address of each service range).
func (c Config) firstServiceIPs() ([]net.IP, error) {
	cidrs, err := c.serviceCIDRs()
	if err != nil {
		return nil, err
	}
	var out []net.IP
	for _, s := range cidrs {
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, err
		}
		ip := append(net.IP{}, n.IP...)
		ip[len(ip)-1]++
		out = append(out, ip)
	}
	return out, nil
}

func writeKubeconfig(file, server, ca, token string) error {
	return os.WriteFile(file, []byte(tokenKubeconfig(server, ca, token)), 0o600)
}

// tokenKubeconfig is a kubeconfig that authenticates with a bearer token.
func tokenKubeconfig(server, ca, token string) string {
	return kubeconfigYAML(server, ca, fmt.Sprintf("{token: %s}", token))
}

// kubeconfigYAML is a one-cluster kubeconfig for the lab's API server; user is the YAML of the
// credential.
func kubeconfigYAML(server, ca, user string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: plexus-lab
  cluster:
    server: %s
    certificate-authority: %s
contexts:
- name: plexus-lab
  context: {cluster: plexus-lab, user: user}
current-context: plexus-lab
users:
- name: user
  user: %s
`, server, ca, user)
}

// startControlPlane starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler inside
// the underlay namespace, and the forwarder that serves the API server on the machine's loopback
// and keeps the underlay's routes to the pod CIDRs.
func (c Config) startControlPlane(st *State, p *pki) error {
	b := c.binaries()
	logs := filepath.Join(c.Dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return err
	}
	logOf := func(r string) string { return filepath.Join(logs, r+".log") }
	nsPath := filepath.Join("/run/netns", c.UnderlayNetns())
	client := c.underlayHTTP(p)

	if err := c.startProcess(st, "etcd", c.UnderlayNetns(), logOf("etcd"), b.etcd,
		"--data-dir", filepath.Join(c.Dir, "etcd"), "--name", "lab",
		"--listen-client-urls", etcdClientURL, "--advertise-client-urls", etcdClientURL,
		"--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", "lab=http://127.0.0.1:2380", "--unsafe-no-fsync", "--log-level", "warn"); err != nil {
		return err
	}
	if err := c.waitFor(st, "etcd", logOf("etcd"), 30*time.Second, "etcd healthy", func() error {
		return httpOK(client, etcdClientURL+"/health", "")
	}); err != nil {
		return err
	}
	svc, err := c.serviceCIDRs()
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := c.startProcess(st, "kube-apiserver", c.UnderlayNetns(), logOf("kube-apiserver"), b.apiserver,
		"--etcd-servers", etcdClientURL,
		"--bind-address", "0.0.0.0", "--advertise-address", c.gatewayV4().String(), "--secure-port", fmt.Sprint(APIServerPort),
		"--tls-cert-file", p.path("apiserver.crt"), "--tls-private-key-file", p.path("apiserver.key"),
		"--client-ca-file", p.path("ca.crt"),
		"--kubelet-client-certificate", p.path("apiserver-kubelet-client.crt"), "--kubelet-client-key", p.path("apiserver-kubelet-client.key"),
		"--kubelet-preferred-address-types", "InternalIP",
		"--service-cluster-ip-range", strings.Join(svc, ","),
		"--token-auth-file", p.path("tokens.csv"),
		"--authorization-mode", "Node,RBAC", "--enable-admission-plugins", "NodeRestriction",
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", p.path("sa.pub"), "--service-account-signing-key-file", p.path("sa.key"),
		// Webhooks and aggregated APIs served by pods are dialled at an endpoint's pod IP, not at the
		// Service's ClusterIP: the control plane's namespace has routes to the pods but no service
		// proxy (docs/pod-network.md, "A control plane off the pod network").
		"--enable-aggregator-routing",
		"--allow-privileged", "--profiling=false", "--cert-dir", filepath.Join(c.Dir, "pki", "apiserver-certs")); err != nil {
		return err
	}
	if err := c.startProcess(st, "api-forwarder", "", logOf("api-forwarder"), b.self, "lab", "forward",
		"-listen", c.HostAPIAddress, "-netns", nsPath, "-to", fmt.Sprintf("%s:%d", c.gatewayV4(), APIServerPort),
		// The control plane's namespace is no Plexus node: the forwarder keeps its routes to the
		// pods, as the agent would on a control-plane node (docs/pod-network.md).
		"-pod-routes", c.AdminKubeconfig(),
		// No cloud hands out load-balancer addresses here: the forwarder does, from a pool in the
		// underlay that it routes to a node (docs/ingress.md).
		"-lb-pool", c.LoadBalancerPool().String()); err != nil {
		return err
	}
	if err := c.waitFor(st, "kube-apiserver", logOf("kube-apiserver"), 90*time.Second, "kube-apiserver ready", func() error {
		return httpOK(client, c.APIServerURL()+"/readyz", c.adminToken())
	}); err != nil {
		return err
	}
	if err := c.waitFor(st, "api-forwarder", logOf("api-forwarder"), 10*time.Second, "API forwarder serving "+c.HostAPIAddress, func() error {
		conn, err := net.DialTimeout("tcp", c.HostAPIAddress, time.Second)
		if err == nil {
			conn.Close()
		}
		return err
	}); err != nil {
		return err
	}
	c.step("kube-apiserver ready at %s in %s (on the machine: https://%s)", c.APIServerURL(), time.Since(t0).Round(100*time.Millisecond), c.HostAPIAddress)
	if err := c.startProcess(st, "kube-controller-manager", c.UnderlayNetns(), logOf("kube-controller-manager"), b.controllerManager,
		"--kubeconfig", c.kubeconfigOf("kube-controller-manager"),
		"--authentication-kubeconfig", c.kubeconfigOf("kube-controller-manager"),
		"--authorization-kubeconfig", c.kubeconfigOf("kube-controller-manager"),
		// Plexus allocates pod CIDRs: no node IPAM here.
		"--controllers", "*,-nodeipam", "--use-service-account-credentials",
		"--service-account-private-key-file", p.path("sa.key"), "--root-ca-file", p.path("ca.crt"),
		"--bind-address", "127.0.0.1", "--leader-elect=false"); err != nil {
		return err
	}
	return c.startProcess(st, "kube-scheduler", c.UnderlayNetns(), logOf("kube-scheduler"), b.scheduler,
		"--kubeconfig", c.kubeconfigOf("kube-scheduler"),
		"--authentication-kubeconfig", c.kubeconfigOf("kube-scheduler"),
		"--authorization-kubeconfig", c.kubeconfigOf("kube-scheduler"),
		"--bind-address", "127.0.0.1", "--leader-elect=false")
}

func (c Config) adminToken() string {
	var tk tokens
	b, _ := os.ReadFile(filepath.Join(c.Dir, "pki", "tokens.json"))
	_ = json.Unmarshal(b, &tk)
	return tk[adminUser]
}

// underlayHTTP is an HTTP client whose connections start inside the underlay namespace and which
// trusts the lab CA.
func (c Config) underlayHTTP(p *pki) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(p.cert)
	nsPath := filepath.Join("/run/netns", c.UnderlayNetns())
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return DialInNetns(ctx, nsPath, network, addr)
			},
			TLSClientConfig:   &tls.Config{RootCAs: pool},
			DisableKeepAlives: true,
		},
	}
}

func httpOK(client *http.Client, url, token string) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}
