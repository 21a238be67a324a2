package check

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/internal/probe"
)

// Options configure a check.
type Options struct {
	// Image runs the probes (it must hold /plexus-agent); default: the agent image the
	// ClusterNetwork's status.effective names.
	Image string
	// Ready bounds the wait for the probe pods; the probes themselves retry for 15 s.
	Ready time.Duration
	// Keep leaves the namespace for a person to inspect.
	Keep bool
	// Progress gets one line per step.
	Progress io.Writer
}

// Run checks the cluster cs reaches and returns the report. Everything it creates is in one
// namespace that it deletes before returning — also when ctx is cancelled (Ctrl-C) — unless Keep.
func Run(ctx context.Context, cs kubernetes.Interface, c client.Reader, opts Options) (Report, error) {
	progress := func(format string, args ...any) {
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, format+"\n", args...)
		}
	}
	if opts.Ready == 0 {
		opts.Ready = 2 * time.Minute
	}
	cn := &v1.ClusterNetwork{}
	if err := c.Get(ctx, client.ObjectKey{Name: v1.DefaultClusterNetworkName}, cn); err != nil {
		return Report{}, fmt.Errorf("read ClusterNetwork %s (is Plexus installed?): %w", v1.DefaultClusterNetworkName, err)
	}
	eff := cn.Status.Effective
	if opts.Image == "" && eff != nil && eff.Images != nil {
		opts.Image = eff.Images.Agent
	}
	if opts.Image == "" {
		return Report{}, errors.New("no agent image in the ClusterNetwork's status.effective.images: pass --image")
	}
	nodes, err := readyNodes(ctx, cs)
	if err != nil {
		return Report{}, err
	}
	ns := "plexus-check-" + suffix()
	progress("check: namespace %s, %d ready nodes, image %s", ns, len(nodes), opts.Image)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, Namespace(ns), metav1.CreateOptions{}); err != nil {
		return Report{}, fmt.Errorf("create namespace %s: %w", ns, err)
	}
	defer func() {
		if opts.Keep {
			progress("check: keeping namespace %s (--keep)", ns)
			return
		}
		progress("check: removing namespace %s", ns)
		// The caller's context may be cancelled already (Ctrl-C): clean up with a fresh one.
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := removeNamespace(cctx, cs, ns); err != nil {
			progress("check: %v; remove it with: kubectl delete namespace %s", err, ns)
		}
	}()
	r := &runner{cs: cs, ns: ns, image: opts.Image, progress: progress, ready: opts.Ready}
	policy := eff == nil || eff.NetworkPolicy == nil || eff.NetworkPolicy.Enabled == nil || *eff.NetworkPolicy.Enabled
	cluster, err := r.startServers(ctx, nodes, policy)
	if err != nil {
		return Report{}, err
	}
	if eff != nil && (eff.DNS == nil || eff.DNS.Enabled == nil || *eff.DNS.Enabled) {
		domain := "cluster.local"
		if eff.DNS != nil && eff.DNS.ClusterDomain != "" {
			domain = eff.DNS.ClusterDomain
		}
		cluster.DNSNames = []string{"kubernetes.default.svc." + domain + ".", serviceName + "." + ns + ".svc." + domain + "."}
	}
	if eff != nil && eff.Ingress != nil && eff.Ingress.Enabled != nil && *eff.Ingress.Enabled {
		if err := r.routeThroughIngress(ctx, &cluster, eff.Ingress.IngressClassName); err != nil {
			return Report{}, err
		}
	}
	return r.runClients(ctx, cluster)
}

// runner holds what the steps of one check share.
type runner struct {
	cs       kubernetes.Interface
	ns       string
	image    string
	progress func(string, ...any)
	ready    time.Duration
}

func suffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// readyNodes lists the nodes whose Ready condition is True, with their InternalIPs.
func readyNodes(ctx context.Context, cs kubernetes.Interface) ([]Node, error) {
	list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	var out []Node
	for _, n := range list.Items {
		ready := false
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			continue
		}
		node := Node{Name: n.Name}
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				node.IPs = append(node.IPs, a.Address)
			}
		}
		out = append(out, node)
	}
	if len(out) == 0 {
		return nil, errors.New("no Ready node to check")
	}
	return out, nil
}

// startServers creates a server pod per node (and the isolated pod and its policy when
// NetworkPolicy is enforced) and the Service, waits for them and returns what the clients aim at.
func (r *runner) startServers(ctx context.Context, nodes []Node, policy bool) (Cluster, error) {
	pods := map[string]string{} // pod → node
	for i, n := range nodes {
		name := fmt.Sprintf("server-%d", i)
		if err := r.create(ctx, ServerPod(r.ns, name, n.Name, r.image, roleServer)); err != nil {
			return Cluster{}, err
		}
		pods[name] = n.Name
	}
	if policy {
		if _, err := r.cs.NetworkingV1().NetworkPolicies(r.ns).Create(ctx, IsolationPolicy(r.ns), metav1.CreateOptions{}); err != nil {
			return Cluster{}, fmt.Errorf("create the isolation policy: %w", err)
		}
		if err := r.create(ctx, ServerPod(r.ns, "isolated", nodes[0].Name, r.image, roleIsolated)); err != nil {
			return Cluster{}, err
		}
		pods["isolated"] = nodes[0].Name
	}
	if _, err := r.cs.CoreV1().Services(r.ns).Create(ctx, Service(r.ns), metav1.CreateOptions{}); err != nil {
		return Cluster{}, fmt.Errorf("create Service %s: %w", serviceName, err)
	}
	r.progress("check: waiting for %d probe servers", len(pods))
	ips, err := r.waitReady(ctx, pods)
	if err != nil {
		return Cluster{}, err
	}
	c := Cluster{Nodes: nodes, Servers: map[string][]string{}, IsolatedIPs: ips["isolated"]}
	for name, node := range pods {
		if name != "isolated" {
			c.Servers[node] = ips[name]
		}
	}
	svc, err := r.cs.CoreV1().Services(r.ns).Get(ctx, serviceName, metav1.GetOptions{})
	if err != nil {
		return Cluster{}, fmt.Errorf("read Service %s: %w", serviceName, err)
	}
	c.ClusterIPs = svc.Spec.ClusterIPs
	c.NodePortTCP = probeNodePort(svc)
	api, err := r.cs.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		return Cluster{}, fmt.Errorf("read Service default/kubernetes: %w", err)
	}
	c.APIServer = api.Spec.ClusterIPs
	c.APIPort = 443
	if len(api.Spec.Ports) > 0 {
		c.APIPort = api.Spec.Ports[0].Port
	}
	return c, nil
}

// probeNodePort is the node port of the Service's TCP probe port (not of its HTTP port, whose
// server sends no greeting).
func probeNodePort(svc *corev1.Service) int32 {
	for _, p := range svc.Spec.Ports {
		if p.Protocol == corev1.ProtocolTCP && p.Port == ServerPort {
			return p.NodePort
		}
	}
	return 0
}

func (r *runner) create(ctx context.Context, p *corev1.Pod) error {
	if _, err := r.cs.CoreV1().Pods(r.ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create pod %s on %s: %w", p.Name, p.Spec.NodeName, err)
	}
	return nil
}

// waitReady waits until every named pod is Ready and returns their IPs; a pod that cannot start
// (its image cannot be pulled, it crashes) fails the wait with the reason.
func (r *runner) waitReady(ctx context.Context, pods map[string]string) (map[string][]string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.ready)
	defer cancel()
	for {
		ips := map[string][]string{}
		var waiting []string
		for name := range pods {
			p, err := r.cs.CoreV1().Pods(r.ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("read pod %s: %w", name, err)
			}
			if why := stuck(p); why != "" {
				return nil, fmt.Errorf("probe pod %s on %s cannot start: %s", name, p.Spec.NodeName, why)
			}
			if !podReady(p) {
				waiting = append(waiting, name+" on "+p.Spec.NodeName)
				continue
			}
			for _, ip := range p.Status.PodIPs {
				ips[name] = append(ips[name], ip.IP)
			}
		}
		if len(waiting) == 0 {
			return ips, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("probe pods not ready: %v: %w", waiting, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// stuck returns why a pod will not start by itself, or "".
func stuck(p *corev1.Pod) string {
	for _, s := range p.Status.ContainerStatuses {
		if w := s.State.Waiting; w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff" || w.Reason == "CrashLoopBackOff" || w.Reason == "CreateContainerError") {
			return w.Reason + ": " + w.Message
		}
	}
	return ""
}

// ingressComponentLabels select the Service of the ingress controller Plexus runs.
var ingressComponentLabels = client.MatchingLabels{"app.kubernetes.io/component": "ingress", "app.kubernetes.io/managed-by": "plexus"}

// routeThroughIngress creates the check's Ingress (class className) and aims the ingress probes at
// the controller's Service: its ClusterIPs and load-balancer addresses, HTTP port. It waits (within
// the ready bound) until the controller has published the Ingress' status, its sign that it
// serves the route; the probes retry meanwhile anyway.
func (r *runner) routeThroughIngress(ctx context.Context, c *Cluster, className string) error {
	if _, err := r.cs.NetworkingV1().Ingresses(r.ns).Create(ctx, Ingress(r.ns, className), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create Ingress %s: %w", serviceName, err)
	}
	svcs, err := r.cs.CoreV1().Services("").List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(labels.Set(ingressComponentLabels)).String()})
	if err != nil {
		return fmt.Errorf("find the ingress controller's Service: %w", err)
	}
	for _, s := range svcs.Items {
		port := int32(80)
		for _, p := range s.Spec.Ports {
			if p.Name == "http" {
				port = p.Port
			}
		}
		addrs := append([]string(nil), s.Spec.ClusterIPs...)
		for _, in := range s.Status.LoadBalancer.Ingress {
			if in.IP != "" {
				addrs = append(addrs, in.IP)
			}
		}
		for _, a := range addrs {
			c.IngressAddresses = append(c.IngressAddresses, hostPort(a, port))
		}
	}
	if len(c.IngressAddresses) == 0 {
		return fmt.Errorf("spec.ingress is enabled but no Service of the ingress controller (labels %v) exists", ingressComponentLabels)
	}
	c.IngressHost = IngressHost(r.ns)
	r.progress("check: waiting for the ingress controller to take Ingress %s/%s", r.ns, serviceName)
	wctx, cancel := context.WithTimeout(ctx, r.ready)
	defer cancel()
	for wctx.Err() == nil {
		in, err := r.cs.NetworkingV1().Ingresses(r.ns).Get(wctx, serviceName, metav1.GetOptions{})
		if err == nil && len(in.Status.LoadBalancer.Ingress) > 0 {
			return nil
		}
		select {
		case <-wctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	r.progress("check: the ingress controller published no status for Ingress %s within %s; probing anyway", serviceName, r.ready)
	return nil
}

// runClients starts a pod-network and a host-network client on every node and collects their
// results.
func (r *runner) runClients(ctx context.Context, c Cluster) (Report, error) {
	type client struct{ name, source string }
	var clients []client
	for i, n := range c.Nodes {
		for _, host := range []bool{false, true} {
			targets, kind, prefix := PodTargets(c), "pod", "client"
			if host {
				targets, kind, prefix = HostTargets(c), "host", "hostclient"
			}
			p, err := ClientPod(r.ns, fmt.Sprintf("%s-%d", prefix, i), n.Name, r.image, host, targets)
			if err != nil {
				return Report{}, err
			}
			if err := r.create(ctx, p); err != nil {
				return Report{}, err
			}
			clients = append(clients, client{name: p.Name, source: n.Name + " " + kind})
		}
	}
	r.progress("check: probing from %d clients", len(clients))
	rep := Report{Columns: ColumnsFor(c)}
	for _, cl := range clients {
		row := Row{Source: cl.source}
		log, err := r.waitDone(ctx, cl.name)
		if err == nil {
			row.Results, err = probe.Decode(log)
		}
		if err != nil {
			row.Err = err.Error()
		}
		rep.Rows = append(rep.Rows, row)
	}
	return rep, nil
}

// waitDone waits until the client pod has finished and returns its log.
func (r *runner) waitDone(ctx context.Context, name string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.ready)
	defer cancel()
	for {
		p, err := r.cs.CoreV1().Pods(r.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("read pod %s: %w", name, err)
		}
		if why := stuck(p); why != "" {
			return "", fmt.Errorf("cannot start: %s", why)
		}
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			raw, err := r.cs.CoreV1().Pods(r.ns).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(ctx)
			if err != nil {
				return "", fmt.Errorf("read the log of %s: %w", name, err)
			}
			if p.Status.Phase == corev1.PodFailed {
				return "", fmt.Errorf("probe client failed: %s", lastLine(string(raw)))
			}
			return string(raw), nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("probe client %s did not finish: %w", name, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

func lastLine(s string) string {
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			return s[i+1:]
		}
	}
	return s
}

// removeNamespace deletes the namespace and waits until it is gone.
func removeNamespace(ctx context.Context, cs kubernetes.Interface, ns string) error {
	err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete namespace %s: %w", ns, err)
	}
	for {
		if _, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("namespace %s still terminating: %w", ns, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}
