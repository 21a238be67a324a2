package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/controllers/render"
	"github.com/plexus-net/plexus/internal/check"
	"github.com/plexus-net/plexus/internal/lab"
)

// The ingress spec's namespace, hosts and objects.
const (
	ingressTestNS = "ingress-e2e"
	appHost       = "app.ingress.test"
	secureHost    = "secure.ingress.test"
	// otherHost is a TLS host without a Secret of its own: it gets the default certificate.
	otherHost     = "other.ingress.test"
	defaultCertCN = "default.ingress.test"
)

// selfSigned returns a PEM certificate and key for the hosts, the first one its common name.
func selfSigned(hosts ...string) (certPEM, keyPEM []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: hosts[0]},
		DNSNames:     hosts,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	Expect(err).NotTo(HaveOccurred())
	kb, err := x509.MarshalECPrivateKey(key)
	Expect(err).NotTo(HaveOccurred())
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

func tlsSecret(name string, hosts ...string) *corev1.Secret {
	crt, key := selfSigned(hosts...)
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ingressTestNS, Name: name},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key},
	}
}

// echoBackend is a Deployment of the lab's echo server and its Service. The preStop pause keeps a
// terminating pod serving until its endpoint is out of every proxy's config: the usual way a
// backend rolls without refusing requests.
func echoBackend(name string, replicas int32) (*appsv1.Deployment, *corev1.Service) {
	labels := map[string]string{"app": name}
	env := func(n, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: n, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ingressTestNS, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxUnavailable: ptr.To(intstr.FromInt32(0)), MaxSurge: ptr.To(intstr.FromInt32(1)),
			}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](10),
					Containers: []corev1.Container{{
						Name: "echo", Image: lab.EchoImage, ImagePullPolicy: corev1.PullNever,
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
						Env:   []corev1.EnvVar{env("POD_NAME", "metadata.name"), env("POD_IP", "status.podIP"), env("NODE_NAME", "spec.nodeName")},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
							PeriodSeconds: 1,
						},
						Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 3}}},
					}},
				},
			},
		},
	}
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ingressTestNS, Name: name},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
	return d, s
}

func prefix(path, svc string) networkingv1.HTTPIngressPath {
	return ingressPath(path, networkingv1.PathTypePrefix, svc)
}

func ingressPath(path string, t networkingv1.PathType, svc string) networkingv1.HTTPIngressPath {
	return networkingv1.HTTPIngressPath{Path: path, PathType: ptr.To(t), Backend: networkingv1.IngressBackend{
		Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Name: "http"}},
	}}
}

func rule(host string, paths ...networkingv1.HTTPIngressPath) networkingv1.IngressRule {
	return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}}}
}

// testIngresses: app host with Exact beside Prefix and a missing backend; TLS hosts with their
// own and with the default certificate.
func testIngresses() []*networkingv1.Ingress {
	class := ptr.To("plexus")
	return []*networkingv1.Ingress{
		{
			ObjectMeta: metav1.ObjectMeta{Namespace: ingressTestNS, Name: "routes"},
			Spec: networkingv1.IngressSpec{IngressClassName: class, Rules: []networkingv1.IngressRule{rule(appHost,
				prefix("/", "alpha"),
				prefix("/beta", "beta"),
				ingressPath("/beta/exact", networkingv1.PathTypeExact, "alpha"),
				prefix("/missing", "nope"),
			)}},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Namespace: ingressTestNS, Name: "secure"},
			Spec: networkingv1.IngressSpec{
				IngressClassName: class,
				TLS:              []networkingv1.IngressTLS{{Hosts: []string{secureHost}, SecretName: "secure-cert"}, {Hosts: []string{otherHost}}},
				Rules:            []networkingv1.IngressRule{rule(secureHost, prefix("/", "beta")), rule(otherHost, prefix("/", "alpha"))},
			},
		},
	}
}

// ingressAnswer is one response through the ingress.
type ingressAnswer struct {
	status   int
	body     string
	location string
	// certNames are the served certificate's common name and DNS names (HTTPS only).
	certNames []string
}

// ingressClient sends requests for any host to addr (the ingress' load-balancer address) from the
// lab's underlay namespace, which is no node: the way a client outside the cluster arrives.
func ingressClient(addr string, keepAlive bool) *http.Client {
	nsPath := filepath.Join("/run/netns", labCfg.UnderlayNetns())
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, hostPort string) (net.Conn, error) {
			_, port, err := net.SplitHostPort(hostPort)
			if err != nil {
				return nil, err
			}
			return lab.DialInNetns(ctx, nsPath, network, net.JoinHostPort(addr, port))
		},
		// The certificates are checked by name below; the chain is self-signed.
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // test certificates
		DisableKeepAlives: !keepAlive,
	}
	return &http.Client{
		Transport: tr, Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func ingressGet(c *http.Client, url string) (ingressAnswer, error) {
	resp, err := c.Get(url)
	if err != nil {
		return ingressAnswer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	a := ingressAnswer{status: resp.StatusCode, body: string(b), location: resp.Header.Get("Location")}
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		leaf := resp.TLS.PeerCertificates[0]
		a.certNames = append([]string{leaf.Subject.CommonName}, leaf.DNSNames...)
	}
	return a, err
}

func netipOf(s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	Expect(err).NotTo(HaveOccurred())
	return a
}

// setIngress sets spec.ingress; a nil in leaves it disabled.
func setIngress(in *v1.Ingress) {
	Eventually(func() error {
		cn := clusterNetwork()
		cn.Spec.Ingress = in
		return k8s.Update(ctx, cn)
	}, 30*time.Second, time.Second).Should(Succeed(), "update spec.ingress")
}

func ingressCondition() *metav1.Condition {
	cn := clusterNetwork()
	c := meta.FindStatusCondition(cn.Status.Conditions, v1.ConditionIngressAvailable)
	if c == nil || c.ObservedGeneration != cn.Generation {
		return nil
	}
	return c
}

// renderedIngressObjects are the keys of what the operator renders for ingress.
func renderedIngressObjects() []client.Object {
	ns, name := plexusNamespace, render.IngressName
	return []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
		&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "plexus"}},
	}
}

// streamRequests GETs url with c until stop is closed and counts requests and failures (errors
// and 5xx), keeping the first few failures' texts.
func streamRequests(c *http.Client, url string, stop <-chan struct{}) (total, failed *atomic.Int64, samples func() []string) {
	total, failed = &atomic.Int64{}, &atomic.Int64{}
	var mu sync.Mutex
	var texts []string
	go func() {
		defer GinkgoRecover()
		for {
			select {
			case <-stop:
				return
			default:
			}
			a, err := ingressGet(c, url)
			total.Add(1)
			if err != nil || a.status >= 500 {
				failed.Add(1)
				mu.Lock()
				if len(texts) < 5 {
					texts = append(texts, fmt.Sprintf("%v status %d %s", err, a.status, strings.TrimSpace(a.body)))
				}
				mu.Unlock()
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return total, failed, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), texts...) }
}

var _ = Describe("Ingress through plexus-ingress", Ordered, func() {
	var lbIP string
	var saved *v1.Ingress

	BeforeAll(func() {
		saved = clusterNetwork().Spec.Ingress.DeepCopy()
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ingressTestNS}}
		Expect(client.IgnoreAlreadyExists(k8s.Create(ctx, ns))).To(Succeed())
		DeferCleanup(func() {
			Expect(client.IgnoreNotFound(k8s.Delete(ctx, ns))).To(Succeed())
		})
		for _, name := range []string{"alpha", "beta"} {
			d, s := echoBackend(name, 2)
			Expect(k8s.Create(ctx, d)).To(Succeed())
			Expect(k8s.Create(ctx, s)).To(Succeed())
		}
		Expect(k8s.Create(ctx, tlsSecret("secure-cert", secureHost))).To(Succeed())
		Expect(k8s.Create(ctx, tlsSecret("default-cert", defaultCertCN))).To(Succeed())

		By("enabling ingress in the ClusterNetwork")
		t0 := time.Now()
		setIngress(&v1.Ingress{Enabled: ptr.To(true), DefaultTLSSecret: &v1.SecretReference{Namespace: ingressTestNS, Name: "default-cert"}})
		var c *metav1.Condition
		Eventually(func(g Gomega) {
			c = ingressCondition()
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue), "%s: %s", c.Reason, c.Message)
			g.Expect(c.Reason).To(Equal(v1.ReasonIngressServing))
		}, 4*time.Minute, time.Second).Should(Succeed())
		took := time.Since(t0).Round(100 * time.Millisecond)
		fmt.Fprintf(GinkgoWriter, "IngressAvailable after %s: %s\n", took, c.Message)
		AddReportEntry("time to IngressAvailable", fmt.Sprintf("%s (%s)", took, c.Message))
		Expect(c.Message).To(ContainSubstring("2 of 2 plexus-ingress replicas ready"))

		Eventually(func(g Gomega) {
			var svc corev1.Service
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: plexusNamespace, Name: render.IngressName}, &svc)).To(Succeed())
			g.Expect(svc.Status.LoadBalancer.Ingress).NotTo(BeEmpty(), "no load-balancer address yet")
			lbIP = svc.Status.LoadBalancer.Ingress[0].IP
		}, time.Minute, time.Second).Should(Succeed())
		Expect(labCfg.LoadBalancerPool().Contains(netipOf(lbIP))).To(BeTrue(), "address %s outside the lab pool %s", lbIP, labCfg.LoadBalancerPool())
		Eventually(func() string { return ingressCondition().Message }, time.Minute, time.Second).Should(ContainSubstring(lbIP + " (LoadBalancer)"))

		for _, in := range testIngresses() {
			Expect(k8s.Create(ctx, in)).To(Succeed())
		}
	})

	AfterAll(func() {
		By("disabling ingress: everything the operator made for it goes")
		setIngress(saved)
		Eventually(func(g Gomega) {
			for _, o := range renderedIngressObjects() {
				err := k8s.Get(ctx, client.ObjectKeyFromObject(o), o)
				g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%T %s still there (%v)", o, o.GetName(), err)
			}
			var pods corev1.PodList
			g.Expect(k8s.List(ctx, &pods, client.InNamespace(plexusNamespace), client.MatchingLabels{"app.kubernetes.io/component": "ingress"})).To(Succeed())
			g.Expect(pods.Items).To(BeEmpty(), "plexus-ingress pods left")
		}, 2*time.Minute, time.Second).Should(Succeed())
		c := ingressCondition()
		Expect(c).NotTo(BeNil())
		Expect(c.Reason).To(Equal(v1.ReasonIngressDisabled))
	})

	It("routes hosts and paths to two Services, Exact before Prefix, 503 and an Event for a missing backend", func() {
		c := ingressClient(lbIP, false)
		want := map[string]string{
			"/":              "pod=alpha-",
			"/beta":          "pod=beta-",
			"/beta/x":        "pod=beta-",
			"/beta/exact":    "pod=alpha-", // Exact wins over the longer-matching Prefix /beta
			"/beta/exactly":  "pod=beta-",  // Prefix matches path elements: /beta/exact is not its prefix
			"/betamax":       "pod=alpha-", // nor is /beta one of /betamax
			"/beta/exact/no": "pod=beta-",  // Exact matches nothing below it
		}
		for path, in := range want {
			Eventually(func(g Gomega) {
				a, err := ingressGet(c, "http://"+appHost+path)
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(a.status).To(Equal(http.StatusOK))
				g.Expect(a.body).To(ContainSubstring(in))
			}, time.Minute, 500*time.Millisecond).Should(Succeed(), "GET %s%s", appHost, path)
		}
		a, err := ingressGet(c, "http://"+appHost+"/missing/x")
		Expect(err).NotTo(HaveOccurred())
		Expect(a.status).To(Equal(http.StatusServiceUnavailable), a.body)
		a, err = ingressGet(c, "http://unknown.ingress.test/")
		Expect(err).NotTo(HaveOccurred())
		Expect(a.status).To(Equal(http.StatusNotFound), "a host no Ingress names: %s", a.body)

		Eventually(func(g Gomega) {
			var events corev1.EventList
			g.Expect(k8s.List(ctx, &events, client.InNamespace(ingressTestNS))).To(Succeed())
			var seen []string
			for _, e := range events.Items {
				if e.InvolvedObject.Kind == "Ingress" && e.InvolvedObject.Name == "routes" && e.Type == corev1.EventTypeWarning {
					seen = append(seen, e.Reason+": "+e.Message)
				}
			}
			g.Expect(strings.Join(seen, "\n")).To(ContainSubstring("nope"), "Warning Events of Ingress routes")
		}, time.Minute, time.Second).Should(Succeed())
	})

	It("serves TLS by SNI with a host's own and the default certificate, and redirects HTTP to HTTPS", func() {
		c := ingressClient(lbIP, false)
		Eventually(func(g Gomega) {
			a, err := ingressGet(c, "https://"+secureHost+"/")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(a.status).To(Equal(http.StatusOK))
			g.Expect(a.body).To(ContainSubstring("pod=beta-"))
			g.Expect(a.certNames).To(ContainElement(secureHost))
		}, time.Minute, 500*time.Millisecond).Should(Succeed())
		Eventually(func(g Gomega) {
			a, err := ingressGet(c, "https://"+otherHost+"/")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(a.status).To(Equal(http.StatusOK))
			g.Expect(a.body).To(ContainSubstring("pod=alpha-"))
			g.Expect(a.certNames).To(HaveExactElements(defaultCertCN, defaultCertCN), "the default certificate")
		}, time.Minute, 500*time.Millisecond).Should(Succeed())

		a, err := ingressGet(c, "http://"+secureHost+"/some/path?q=1")
		Expect(err).NotTo(HaveOccurred())
		Expect(a.status).To(Equal(http.StatusPermanentRedirect))
		Expect(a.location).To(Equal("https://" + secureHost + "/some/path?q=1"))
	})

	It("publishes the load-balancer address in every Ingress' status", func() {
		Eventually(func(g Gomega) {
			for _, name := range []string{"routes", "secure"} {
				var in networkingv1.Ingress
				g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ingressTestNS, Name: name}, &in)).To(Succeed())
				g.Expect(in.Status.LoadBalancer.Ingress).To(HaveLen(1), name)
				g.Expect(in.Status.LoadBalancer.Ingress[0].IP).To(Equal(lbIP), name)
			}
		}, time.Minute, time.Second).Should(Succeed())
	})

	It("is probed by plexusctl check: HTTP from every node's pods through the ingress Service", func() {
		var progress bytes.Buffer
		rep, err := check.Run(ctx, checkClient(), k8s, check.Options{Progress: &progress})
		Expect(err).NotTo(HaveOccurred(), progress.String())
		var out bytes.Buffer
		check.Format(&out, rep)
		AddReportEntry("plexusctl check with ingress", out.String())
		fmt.Fprintln(GinkgoWriter, out.String())
		Expect(rep.Failures()).To(BeEmpty(), out.String())
		Expect(rep.Columns).To(ContainElement(check.CheckPodToIngress))
		through := map[string]bool{}
		for _, row := range rep.Rows {
			for _, r := range row.Results {
				if r.Check == check.CheckPodToIngress {
					Expect(r.OK).To(BeTrue(), "%s → %s: %s", row.Source, r.Name, r.Error)
					through[strings.Fields(r.Name)[0]] = true
				}
			}
		}
		Expect(through).To(HaveKey(net.JoinHostPort(lbIP, "80")), "the load-balancer address is probed")
		Expect(checkNamespaces()).To(BeEmpty())
	})

	It("answers every request while a backend Deployment rolls and its routes change 100 times", func() {
		stop := make(chan struct{})
		// One client reuses its connections, one dials for every request: a reload must lose neither.
		kaTotal, kaFailed, kaSamples := streamRequests(ingressClient(lbIP, true), "http://"+appHost+"/", stop)
		newTotal, newFailed, newSamples := streamRequests(ingressClient(lbIP, false), "http://"+appHost+"/beta", stop)
		defer func() {
			select {
			case <-stop:
			default:
				close(stop)
			}
		}()
		Eventually(kaTotal.Load, 10*time.Second, 100*time.Millisecond).Should(BeNumerically(">", 20))
		var d appsv1.Deployment
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ingressTestNS, Name: "alpha"}, &d)).To(Succeed())
		old := map[string]bool{}
		var pods corev1.PodList
		Expect(k8s.List(ctx, &pods, client.InNamespace(ingressTestNS), client.MatchingLabels{"app": "alpha"})).To(Succeed())
		for _, p := range pods.Items {
			old[p.Name] = true
		}
		d.Spec.Template.Annotations = map[string]string{"plexus.dev/restartedAt": time.Now().Format(time.RFC3339Nano)}
		Expect(k8s.Update(ctx, &d)).To(Succeed())

		// 100 route changes during the rollout: an Ingress of its own gains and loses a path each
		// time, so every change is a new proxy configuration.
		churn := &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Namespace: ingressTestNS, Name: "churn"},
			Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("plexus"), Rules: []networkingv1.IngressRule{
				rule("churn.ingress.test", prefix("/", "alpha")),
			}},
		}
		Expect(k8s.Create(ctx, churn)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(context.Background(), churn) })
		for i := range 100 {
			Eventually(func() error {
				var cur networkingv1.Ingress
				if err := k8s.Get(ctx, client.ObjectKeyFromObject(churn), &cur); err != nil {
					return err
				}
				cur.Spec.Rules = []networkingv1.IngressRule{rule("churn.ingress.test",
					prefix("/", "alpha"), prefix(fmt.Sprintf("/change-%d", i), "beta"))}
				return k8s.Update(ctx, &cur)
			}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
			time.Sleep(100 * time.Millisecond)
		}
		Eventually(func() (int, error) {
			a, err := ingressGet(ingressClient(lbIP, false), "http://churn.ingress.test/change-99")
			return a.status, err
		}, 30*time.Second, 200*time.Millisecond).Should(Equal(http.StatusOK), "the last route change is served")

		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ingressTestNS, Name: "alpha"}, &d)).To(Succeed())
			g.Expect(d.Status.ObservedGeneration).To(Equal(d.Generation))
			g.Expect(d.Status.UpdatedReplicas).To(Equal(int32(2)))
			g.Expect(d.Status.ReadyReplicas).To(Equal(int32(2)))
			g.Expect(d.Status.Replicas).To(Equal(int32(2)), "old pods still terminating")
		}, 3*time.Minute, 500*time.Millisecond).Should(Succeed())
		// Let the proxies see the last old endpoint go.
		time.Sleep(3 * time.Second)
		close(stop)
		n, f := kaTotal.Load()+newTotal.Load(), kaFailed.Load()+newFailed.Load()
		msg := fmt.Sprintf("%d of %d requests failed while alpha rolled (2 replicas, maxSurge 1, preStop 3 s) and its routes changed 100 times: %v %v",
			f, n, kaSamples(), newSamples())
		fmt.Fprintln(GinkgoWriter, msg)
		AddReportEntry("ingress rollout and route changes", msg)

		a, err := ingressGet(ingressClient(lbIP, false), "http://"+appHost+"/")
		Expect(err).NotTo(HaveOccurred())
		Expect(a.status).To(Equal(http.StatusOK))
		name := strings.Fields(strings.SplitAfter(a.body, "pod=")[1])[0]
		Expect(old).NotTo(HaveKey(name), "answered by an old pod after the rollout: %s", a.body)
		Expect(kaTotal.Load()).To(BeNumerically(">", 100), "the keep-alive client kept sending")
		Expect(newTotal.Load()).To(BeNumerically(">", 100), "the new-connection client kept sending")
		Expect(f).To(BeZero(), msg)
	})
})
