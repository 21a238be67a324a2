package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
	"github.com/plexus-net/plexus/internal/lab"
	"github.com/plexus-net/plexus/internal/suiterun"
)

// ingressService is the Service of plexus-ingress the operator renders: a Gateway's address is its
// load-balancer address.
const ingressNamespace, ingressService = "plexus-system", "plexus-ingress"

// suiteImageRefs reads the image names build.sh found in the suite's manifests: the echo-basic
// ones it built (images.txt lines "built NAME") and the CoreDNS one (a "not built" line).
func suiteImageRefs(imagesTxt string) (echo []string, coredns string, err error) {
	b, err := os.ReadFile(imagesTxt)
	if err != nil {
		return nil, "", fmt.Errorf("%s: run hack/gateway-conformance/build.sh: %w", imagesTxt, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if ref, ok := strings.CutPrefix(l, "built "); ok && ref != "" {
			echo = append(echo, ref)
		}
		if ref, ok := strings.CutPrefix(l, "not built "); ok && strings.Contains(ref, "/coredns:") {
			coredns = ref
		}
	}
	if len(echo) == 0 {
		return nil, "", fmt.Errorf("%s names no built echo-basic image", imagesTxt)
	}
	return echo, coredns, nil
}

// corednsImage is the suite's CoreDNS image (a UDP backend in the base manifests, whose pods the
// set-up waits for) made of the CoreDNS the lab builds (hack/coredns, a newer release than the
// name says: the Deployment only passes -conf and a Corefile, which it reads alike).
func corednsImage(ref, cacheDir string) (lab.ExtraImage, error) {
	bins, _ := filepath.Glob(filepath.Join(cacheDir, "coredns", "*", "coredns"))
	if len(bins) == 0 {
		return lab.ExtraImage{}, fmt.Errorf("no CoreDNS under %s/coredns: run make coredns", cacheDir)
	}
	return lab.ExtraImage{
		Ref:        ref,
		File:       "gwconf-" + strings.NewReplacer("/", "_", ":", "_").Replace(ref) + ".tar",
		Files:      []lab.ImageFile{{Src: bins[len(bins)-1], Dst: "/coredns", Mode: 0o755}},
		Entrypoint: []string{"/coredns"},
	}, nil
}

// echoImages are the lab images of the echo backend: the static echo-basic as the entrypoint,
// under each name the suite's manifests use.
func echoImages(refs []string, echoBin string) []lab.ExtraImage {
	var out []lab.ExtraImage
	for _, ref := range refs {
		out = append(out, lab.ExtraImage{
			Ref:        ref,
			File:       "gwconf-" + strings.NewReplacer("/", "_", ":", "_").Replace(ref) + ".tar",
			Files:      []lab.ImageFile{{Src: echoBin, Dst: "/echo-basic", Mode: 0o755}},
			Entrypoint: []string{"/echo-basic"},
		})
	}
	return out
}

// enableGatewayAPI turns on spec.ingress with the Gateway API and waits until the GatewayClass is
// accepted with its supported features and plexus-ingress's Service has a load-balancer address;
// it returns those features and that address.
func enableGatewayAPI(ctx context.Context, kubeconfig string) ([]string, string, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, "", fmt.Errorf("the lab's kubeconfig: %w", err)
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{v1.AddToScheme, gatewayv1.Install, corev1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, "", err
		}
	}
	k, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, "", fmt.Errorf("client of the lab: %w", err)
	}
	var cn v1.ClusterNetwork
	if err := k.Get(ctx, client.ObjectKey{Name: "default"}, &cn); err != nil {
		return nil, "", fmt.Errorf("get ClusterNetwork default: %w", err)
	}
	if cn.Spec.Ingress == nil {
		cn.Spec.Ingress = &v1.Ingress{}
	}
	cn.Spec.Ingress.Enabled = ptr.To(true)
	cn.Spec.Ingress.GatewayAPI = &v1.GatewayAPI{Enabled: ptr.To(true), GatewayClassName: gatewayClass}
	if err := k.Update(ctx, &cn); err != nil {
		return nil, "", fmt.Errorf("enable spec.ingress.gatewayAPI: %w", err)
	}

	var features []string
	var address, last string
	deadline := time.Now().Add(5 * time.Minute)
	for {
		features, address, last = gatewayReady(ctx, k)
		if last == "" {
			return features, address, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, "", fmt.Errorf("Gateway API not served 5 minutes after enabling it: %s", last)
		}
		time.Sleep(2 * time.Second)
	}
}

// gatewayReady reports the GatewayClass's features and the ingress Service's load-balancer address,
// or what is still missing.
func gatewayReady(ctx context.Context, k client.Client) (features []string, address, missing string) {
	var gc gatewayv1.GatewayClass
	if err := k.Get(ctx, client.ObjectKey{Name: gatewayClass}, &gc); err != nil {
		return nil, "", fmt.Sprintf("GatewayClass %s: %v", gatewayClass, err)
	}
	if c := meta.FindStatusCondition(gc.Status.Conditions, string(gatewayv1.GatewayClassConditionStatusAccepted)); c == nil || c.Status != "True" || c.ObservedGeneration != gc.Generation {
		return nil, "", fmt.Sprintf("GatewayClass %s not accepted yet (%v)", gatewayClass, c)
	}
	for _, f := range gc.Status.SupportedFeatures {
		features = append(features, string(f.Name))
	}
	if len(features) == 0 {
		return nil, "", fmt.Sprintf("GatewayClass %s lists no supported features", gatewayClass)
	}
	var svc corev1.Service
	if err := k.Get(ctx, client.ObjectKey{Namespace: ingressNamespace, Name: ingressService}, &svc); err != nil {
		return nil, "", fmt.Sprintf("Service %s/%s: %v", ingressNamespace, ingressService, err)
	}
	if len(svc.Status.LoadBalancer.Ingress) == 0 {
		return nil, "", fmt.Sprintf("Service %s/%s has no load-balancer address yet", ingressNamespace, ingressService)
	}
	return features, svc.Status.LoadBalancer.Ingress[0].IP, ""
}

// runSuite runs the conformance binary in the underlay namespace through `go tool test2json`,
// writing its events to eventsFile and a line a minute while it runs. Cancelling ctx interrupts it.
func runSuite(ctx context.Context, eventsFile, kubeconfig, netns, suiteBin string, args []string) error {
	cmdArgs := append([]string{"tool", "test2json", "-t", "-p", "gateway-conformance", "ip", "netns", "exec", netns, suiteBin}, args...)
	return suiterun.Run(ctx, eventsFile, []string{"KUBECONFIG=" + kubeconfig}, time.Minute, time.Minute,
		func(elapsed time.Duration) { step("%s: %s", elapsed, progress(eventsFile)) }, "go", cmdArgs...)
}

// progress counts the conformance tests finished so far in the events file.
func progress(eventsFile string) string {
	f, err := os.Open(eventsFile)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var pass, fail, skip int
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.Contains(l, `"Test":"`+suiteTest+"/") {
			continue
		}
		switch {
		case strings.Contains(l, `"Action":"pass"`):
			pass++
		case strings.Contains(l, `"Action":"fail"`):
			fail++
		case strings.Contains(l, `"Action":"skip"`):
			skip++
		}
	}
	return fmt.Sprintf("%d passed, %d failed, %d skipped so far (subtests included)", pass, fail, skip)
}
