package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/netip"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/plexus-net/plexus/internal/lab"
)

const (
	// webhookNamespace holds the webhook pod and the objects it judges; the webhook is scoped to it.
	webhookNamespace = "e2e-controlplane"
	webhookName      = "echo-webhook"
	webhookPort      = 8443
	// webhookDenyLabel is the echo webhook's deny label (hack/images/echo/webhook.go).
	webhookDenyLabel = "echo.plexus.dev/deny"
	// controlPlaneBound bounds how long the API server may take to reach a new pod.
	controlPlaneBound = 2 * time.Minute
)

var _ = Describe("The control plane reaching pods", func() {
	var cs *kubernetes.Clientset
	BeforeEach(func() {
		rc, err := clientcmd.BuildConfigFromFlags("", labCfg.AdminKubeconfig())
		Expect(err).NotTo(HaveOccurred())
		cs, err = kubernetes.NewForConfig(rc)
		Expect(err).NotTo(HaveOccurred())
	})

	It("reads a pod and a Service through the API server's proxy, from the control plane's own address", func() {
		var pods map[string]podRef
		Eventually(func() int { pods = echoPods(); return len(pods) }, convergeBound, time.Second).Should(Equal(labNodes))
		gw4 := labCfg.UnderlayV4.Addr().As4()
		gw4[3] = 1 // the underlay bridge's address, where the API server runs (lab.Config)
		gw := netip.AddrFrom4(gw4).String()
		for node, p := range pods {
			var body string
			Eventually(func() error {
				b, err := cs.CoreV1().Pods(lab.WorkloadNamespace).ProxyGet("http", p.name, "8080", "/", nil).DoRaw(ctx)
				body = string(b)
				return err
			}, controlPlaneBound, time.Second).Should(Succeed(), "pods/%s:8080/proxy on %s", p.name, node)
			Expect(body).To(ContainSubstring("pod="+p.name+" "), "answer of %s", p.name)
			// The API server dials the pod from its own underlay address: routed, not masqueraded.
			Expect(body).To(ContainSubstring("client="+gw+":"), "the pod sees the API server's address")
		}
		seen := map[string]bool{}
		Eventually(func() int {
			b, err := cs.CoreV1().Services(lab.WorkloadNamespace).ProxyGet("http", lab.EchoName, "80", "/", nil).DoRaw(ctx)
			if err == nil {
				for _, p := range pods {
					if strings.Contains(string(b), "pod="+p.name+" ") {
						seen[p.name] = true
					}
				}
			}
			return len(seen)
		}, controlPlaneBound, 100*time.Millisecond).Should(BeNumerically(">=", 2), "services/%s:80/proxy answers from several endpoints", lab.EchoName)
		AddReportEntry("API server proxy", fmt.Sprintf("pods/proxy to %d pods, services/proxy reached %d endpoints", len(pods), len(seen)))
	})

	It("calls a validating admission webhook served by a pod", func() {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: webhookNamespace}}
		Expect(client.IgnoreAlreadyExists(k8s.Create(ctx, ns))).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8s.Delete(ctx, ns))).To(Succeed()) })

		caPEM, certPEM, keyPEM := webhookCerts(webhookName + "." + webhookNamespace + ".svc")
		secret := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: webhookName + "-tls", Namespace: webhookNamespace},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM},
		}
		Expect(k8s.Create(ctx, secret)).To(Succeed())
		labels := map[string]string{"app": webhookName}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: webhookName, Namespace: webhookNamespace, Labels: labels},
			Spec: corev1.PodSpec{
				TerminationGracePeriodSeconds: new(int64),
				Containers: []corev1.Container{{
					Name: "webhook", Image: lab.EchoImage, ImagePullPolicy: corev1.PullNever,
					Args:         []string{"-webhook", fmt.Sprintf(":%d", webhookPort), "-tls-cert", "/tls/tls.crt", "-tls-key", "/tls/tls.key"},
					Ports:        []corev1.ContainerPort{{Name: "webhook", ContainerPort: webhookPort}},
					VolumeMounts: []corev1.VolumeMount{{Name: "tls", MountPath: "/tls", ReadOnly: true}},
				}},
				Volumes: []corev1.Volume{{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret.Name}}}},
			},
		}
		// Refused until the namespace's default ServiceAccount exists (the controller manager makes it).
		Eventually(func() error { return k8s.Create(ctx, pod) }, controlPlaneBound, time.Second).Should(Succeed())
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: webhookName, Namespace: webhookNamespace},
			Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{
				{Name: "https", Port: 443, TargetPort: intstr.FromInt32(webhookPort)}}},
		}
		Expect(k8s.Create(ctx, svc)).To(Succeed())

		fail, none := admissionregistrationv1.Fail, admissionregistrationv1.SideEffectClassNone
		path, port, timeout := "/validate", int32(443), int32(5)
		vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "plexus-e2e-" + webhookName},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{{
				Name: webhookName + ".plexus.dev",
				ClientConfig: admissionregistrationv1.WebhookClientConfig{
					Service:  &admissionregistrationv1.ServiceReference{Namespace: webhookNamespace, Name: webhookName, Path: &path, Port: &port},
					CABundle: caPEM,
				},
				Rules: []admissionregistrationv1.RuleWithOperations{{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
				}},
				NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": webhookNamespace}},
				ObjectSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{"e2e.plexus.dev/judged": "true"}},
				FailurePolicy:           &fail,
				SideEffects:             &none,
				AdmissionReviewVersions: []string{"v1"},
				TimeoutSeconds:          &timeout,
			}},
		}
		Expect(k8s.Create(ctx, vwc)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8s.Delete(ctx, vwc))).To(Succeed()) })

		configMap := func(name string, deny bool) *corev1.ConfigMap {
			l := map[string]string{"e2e.plexus.dev/judged": "true"}
			if deny {
				l[webhookDenyLabel] = "no-thanks"
			}
			return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: webhookNamespace, Labels: l}}
		}
		// The API server takes the new configuration up a moment later (until then a create is not
		// judged at all), and with failurePolicy Fail refuses creates until it reaches the webhook;
		// so poll until a denied object is refused with the webhook's own message.
		t0 := time.Now()
		var err error
		Eventually(func() string {
			err = k8s.Create(ctx, configMap("refused", true))
			if err == nil { // not judged yet: remove it and try again
				Expect(k8s.Delete(ctx, configMap("refused", true))).To(Succeed())
				return "created"
			}
			return err.Error()
		}, controlPlaneBound, time.Second).Should(ContainSubstring("denied by the echo webhook: no-thanks"))
		reached := time.Since(t0)
		Expect(err.Error()).To(ContainSubstring(webhookName + ".plexus.dev"))
		var cm corev1.ConfigMap
		Expect(apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Namespace: webhookNamespace, Name: "refused"}, &cm))).To(BeTrue(), "the refused object was not stored")
		// The webhook now judges every create in the namespace, and allows an object without the label.
		Expect(k8s.Create(ctx, configMap("allowed", false))).To(Succeed())
		AddReportEntry("admission webhook in a pod", fmt.Sprintf("API server reached it %s after its configuration was created; deny message: %s", reached.Round(100*time.Millisecond), err))
	})
})

// webhookCerts makes a CA and a serving certificate for dnsName signed by it, all PEM.
func webhookCerts(dnsName string) (caPEM, certPEM, keyPEM []byte) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "plexus-e2e-webhook-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	Expect(err).NotTo(HaveOccurred())
	ca, err := x509.ParseCertificate(caDER)
	Expect(err).NotTo(HaveOccurred())
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: dnsName}, DNSNames: []string{dnsName},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	Expect(err).NotTo(HaveOccurred())
	keyDER, err := x509.MarshalECPrivateKey(key)
	Expect(err).NotTo(HaveOccurred())
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}
