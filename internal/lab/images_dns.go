package lab

import (
	"fmt"
	"path/filepath"
)

// DNSImage is the CoreDNS image: the operator's --dns-image default and what the lab imports into
// every node. It is named like the agent's image (plexus/<component>:dev).
const DNSImage = "plexus/coredns:dev"

// corednsVersion is the CoreDNS hack/coredns/build.sh pins.
const corednsVersion = "v1.15.0"

// corednsBinary is where hack/coredns/build.sh caches CoreDNS.
func (c Config) corednsBinary() string {
	return filepath.Join(c.CacheDir, "coredns", corednsVersion, "coredns")
}

// buildCoreDNS builds (or reuses from the cache) the pinned CoreDNS.
func (c Config) buildCoreDNS() error {
	c.step("building or reusing CoreDNS %s", corednsVersion)
	if err := c.run(filepath.Join(c.RepoRoot, "hack/coredns/build.sh")); err != nil {
		return fmt.Errorf("build CoreDNS: %w", err)
	}
	return nil
}

// dnsImageSpec is the CoreDNS image: the static binary alone. It runs as an unprivileged user the
// Deployment names by number, so the image needs no /etc/passwd; it needs no CA certificates
// either, since it forwards plain DNS only.
func (c Config) dnsImageSpec() imageSpec {
	return imageSpec{
		Ref:        DNSImage,
		File:       "coredns.tar",
		Files:      []imageFile{{Src: c.corednsBinary(), Dst: "/coredns", Mode: 0o755}},
		Entrypoint: []string{"/coredns"},
	}
}
