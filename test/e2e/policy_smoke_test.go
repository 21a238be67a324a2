package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/internal/lab"
)

// smokeNamespace holds the NetworkPolicy smoke spec's pods and policy.
const smokeNamespace = "e2e-policy-smoke"

// smokePod creates an echo pod named name on node in smokeNamespace and returns it running.
func smokePod(name, node string) podRef {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: smokeNamespace, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			TerminationGracePeriodSeconds: new(int64),
			Containers: []corev1.Container{{
				Name: "echo", Image: lab.EchoImage, ImagePullPolicy: corev1.PullNever,
				// POD_NAME lets the suite find the pod's network namespace (lab.EchoPodNetns).
				Env: []corev1.EnvVar{{Name: "POD_NAME", Value: name}},
			}},
		},
	}
	ExpectWithOffset(1, k8s.Create(ctx, pod)).To(Succeed())
	var ref podRef
	EventuallyWithOffset(1, func(g Gomega) {
		var p corev1.Pod
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(pod), &p)).To(Succeed())
		g.Expect(p.Status.Phase).To(Equal(corev1.PodRunning))
		g.Expect(p.Status.PodIP).NotTo(BeEmpty())
		g.Expect(labCfg.EchoPodNetns(name)).NotTo(BeEmpty())
		ref = podRef{name: name, node: node, ip: p.Status.PodIP}
	}, convergeBound, 200*time.Millisecond).Should(Succeed(), "pod %s running on %s", name, node)
	return ref
}

// echoRoundTrip sends one line on c and waits (bounded) for it to come back.
func echoRoundTrip(c net.Conn, line string) error {
	if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return err
	}
	if _, err := io.WriteString(c, line); err != nil {
		return err
	}
	buf := make([]byte, len(line))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != line {
		return fmt.Errorf("echoed %q, sent %q", buf, line)
	}
	return nil
}

// dialEcho opens a TCP connection from the pod namespace nsPath to dst's echo port.
func dialEcho(nsPath string, dst podRef) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return lab.DialInNetns(ctx, nsPath, "tcp", net.JoinHostPort(dst.ip, strconv.Itoa(echoTCPPort)))
}

// policiesProgrammed checks that every node's agent reports PoliciesProgrammed=True and Ready.
func policiesProgrammed(g Gomega) {
	nns := nodeNetworks()
	g.Expect(nns).NotTo(BeEmpty())
	for name, nn := range nns {
		g.Expect(meta.IsStatusConditionTrue(nn.Status.Conditions, v1.ConditionPoliciesProgrammed)).To(BeTrue(),
			"node %s: %s", name, describeNN(nn))
		g.Expect(meta.IsStatusConditionTrue(nn.Status.Conditions, v1.ConditionNodeReady)).To(BeTrue(), "node %s: %s", name, describeNN(nn))
	}
}

var _ = Describe("NetworkPolicy (smoke)", func() {
	It("stops a pod-to-pod TCP connection across nodes under default-deny ingress, cuts the established one, and restores on delete", func() {
		Eventually(policiesProgrammed, convergeBound, time.Second).Should(Succeed(), "every agent enforces NetworkPolicies")

		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: smokeNamespace}}
		Expect(k8s.Create(ctx, ns)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8s.Delete(ctx, ns))).To(Succeed()) })
		server := smokePod("smoke-server", labCfg.NodeAt(1).Name)
		clientPod := smokePod("smoke-client", labCfg.NodeAt(2).Name)
		from := labCfg.EchoPodNetns(clientPod.name)

		By("connecting " + clientPod.String() + " → " + server.String() + " with no policy")
		var established net.Conn
		Eventually(func() (err error) {
			if established, err = dialEcho(from, server); err != nil {
				return err
			}
			return echoRoundTrip(established, "before\n")
		}, convergeBound, 200*time.Millisecond).Should(Succeed())
		defer established.Close()

		By("applying default-deny ingress in " + smokeNamespace)
		deny := &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "default-deny-ingress", Namespace: smokeNamespace},
			Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
		}
		t0 := time.Now()
		Expect(k8s.Create(ctx, deny)).To(Succeed())
		Eventually(func() error {
			c, err := dialEcho(from, server)
			if err == nil {
				c.Close()
				return fmt.Errorf("a new connection to %s still opens", server)
			}
			return nil
		}, convergeBound, 200*time.Millisecond).Should(Succeed())
		denied := time.Since(t0)
		// The established connection is cut (networkPolicy.keepEstablishedConnections is false):
		// its packets meet the policy again.
		Eventually(func() error { return echoRoundTrip(established, "after\n") }, 30*time.Second, 200*time.Millisecond).
			ShouldNot(Succeed(), "the established connection still carries traffic")
		Eventually(func(g Gomega) {
			policiesProgrammed(g)
			nn := nodeNetworks()[server.node]
			g.Expect(nn.Status.Policies).To(BeNumerically(">=", 1), describeNN(nn))
			g.Expect(nn.Status.IsolatedPods).To(BeNumerically(">=", 1), describeNN(nn))
		}, convergeBound, time.Second).Should(Succeed())

		By("deleting the policy")
		t1 := time.Now()
		Expect(k8s.Delete(ctx, deny)).To(Succeed())
		Eventually(func() error {
			c, err := dialEcho(from, server)
			if err != nil {
				return err
			}
			defer c.Close()
			return echoRoundTrip(c, "again\n")
		}, convergeBound, 200*time.Millisecond).Should(Succeed())
		AddReportEntry("NetworkPolicy smoke", fmt.Sprintf("%s → %s: denied %s after the create, open again %s after the delete",
			clientPod, server, denied.Round(10*time.Millisecond), time.Since(t1).Round(10*time.Millisecond)))
	})
})
