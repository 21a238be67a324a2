package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/plexus-net/plexus/internal/lab"
)

// testImage is one image the sig-network conformance specs pull. nameTag is the end of its name
// (repository and tag); the part before it comes from the e2e binary's own list (--list-images), so
// the image is imported under exactly the name the specs use.
type testImage struct {
	nameTag string
	// build returns the image's content and configuration; Ref and File are filled in by the caller.
	build func(m machineFiles) (lab.ExtraImage, error)
}

// testImages are the images the [sig-network] [Conformance] specs of v1.37.2 run, built here from
// the module's agnhost, the lab's pause and Debian's packages (see the README's Conformance section):
//   - agnhost: the upstream command plus the tools the specs call in its containers (dash as sh,
//     the coreutils from busybox, dig, OpenBSD's nc, curl, getent);
//   - busybox: Debian's busybox-static with every applet linked, as upstream;
//   - nginx: the endpoints specs only need a container that runs and serves HTTP on port 80, so
//     agnhost's test-webserver does that;
//   - glibc-dns-testing: glibc's getent and Debian's dig, dash as sh, coreutils, as upstream;
//   - pause: the lab's pause program (service latency runs it as a Deployment).
var testImages = []testImage{
	{nameTag: "agnhost:2.66.1", build: agnhostImage},
	{nameTag: "busybox:1.37.0-2", build: busyboxImage},
	{nameTag: "nginx:1.27.0-2", build: nginxImage},
	{nameTag: "glibc-dns-testing:2.1.1", build: glibcDNSImage},
	{nameTag: "pause:3.10.2", build: pauseImage},
}

// machineFiles says where the images' inputs are on this machine.
type machineFiles struct {
	agnhost string // the agnhost command hack/conformance/build.sh built, its test certificate beside it
	pause   string // the lab's pause program
	etcDir  string // a folder for the small configuration files the images carry
}

// busybox is Debian's static busybox (package busybox-static).
const busybox = "/bin/busybox"

// debianPackages are the packages the images copy programs from, by the program that needs them.
var debianPackages = map[string]string{
	busybox:           "busybox-static",
	"/usr/bin/dig":    "bind9-dnsutils",
	"/usr/bin/nc":     "netcat-openbsd",
	"/usr/bin/curl":   "curl",
	"/usr/bin/getent": "libc-bin",
	"/usr/bin/dash":   "dash",
	"/usr/bin/seq":    "coreutils",
}

// resolveImages pairs each test image with its full name from the e2e binary's image list.
func resolveImages(listed []string) (map[string]string, error) {
	refs := map[string]string{}
	for _, ti := range testImages {
		for _, l := range listed {
			if strings.HasSuffix(l, "/"+ti.nameTag) {
				refs[ti.nameTag] = l
				break
			}
		}
		if refs[ti.nameTag] == "" {
			return nil, fmt.Errorf("the e2e binary lists no image named .../%s: the suite's images changed, update testImages", ti.nameTag)
		}
	}
	return refs, nil
}

// listImages runs `e2e.test --list-images`: every image the suite can pull, one per line.
func listImages(e2eTest string) ([]string, error) {
	out, err := exec.Command(e2eTest, "--list-images").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list-images: %w", e2eTest, err)
	}
	return strings.Fields(string(out)), nil
}

// extraImages builds the lab's ExtraImages: every test image under the name the specs pull.
func extraImages(refs map[string]string, m machineFiles) ([]lab.ExtraImage, error) {
	var out []lab.ExtraImage
	for _, ti := range testImages {
		img, err := ti.build(m)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", ti.nameTag, err)
		}
		img.Ref = refs[ti.nameTag]
		img.File = "conformance-" + strings.NewReplacer(":", "-", "/", "-").Replace(ti.nameTag) + ".tar"
		out = append(out, img)
	}
	return out, nil
}

// program returns a program of the machine (with its libraries) placed at dst in the image.
func program(src, dst string) ([]lab.ImageFile, error) {
	if _, err := os.Stat(src); err != nil {
		return nil, fmt.Errorf("%s: install Debian's %s package: %w", src, debianPackages[src], err)
	}
	files, err := lab.ProgramFiles(src)
	if err != nil {
		return nil, err
	}
	files[0].Dst = dst
	return files, nil
}

// programs is program for several programs, each at its own path.
func programs(paths ...string) ([]lab.ImageFile, error) {
	var out []lab.ImageFile
	for _, p := range paths {
		f, err := program(p, p)
		if err != nil {
			return nil, err
		}
		out = append(out, f...)
	}
	return out, nil
}

// busyboxFiles is the static busybox at /bin/busybox with a link for each applet at the path
// busybox itself gives (busybox --list-full), as busybox's own images lay it out.
func busyboxFiles() ([]lab.ImageFile, []lab.ImageLink, error) {
	if _, err := os.Stat(busybox); err != nil {
		return nil, nil, fmt.Errorf("%s: install Debian's busybox-static package: %w", busybox, err)
	}
	out, err := exec.Command(busybox, "--list-full").Output()
	if err != nil {
		return nil, nil, fmt.Errorf("busybox --list-full: %w", err)
	}
	var links []lab.ImageLink
	for _, applet := range strings.Fields(string(out)) {
		if dst := "/" + applet; dst != busybox {
			links = append(links, lab.ImageLink{Dst: dst, Target: busybox})
		}
	}
	return []lab.ImageFile{{Src: busybox, Dst: busybox, Mode: 0o755}}, links, nil
}

// nsswitch is /etc/nsswitch.conf of the glibc programs: hosts from /etc/hosts (the kubelet writes
// the pod's own names there), then DNS, as Debian's default.
func nsswitch(m machineFiles) (lab.ImageFile, error) {
	p := filepath.Join(m.etcDir, "nsswitch.conf")
	if err := os.WriteFile(p, []byte("hosts: files dns\nnetworks: files\n"), 0o644); err != nil {
		return lab.ImageFile{}, err
	}
	return lab.ImageFile{Src: p, Dst: "/etc/nsswitch.conf", Mode: 0o644}, nil
}

// agnhostImage: /bin/sh is dash, not busybox, because Debian's static busybox runs its own applet
// for a command name before it looks at PATH: its nc lacks the -u, -v and -t the specs pass to
// OpenBSD's nc (Alpine's sh, upstream's, looks at PATH).
func agnhostImage(m machineFiles) (lab.ExtraImage, error) {
	files, links, err := busyboxFiles()
	if err != nil {
		return lab.ExtraImage{}, err
	}
	sh, err := program("/usr/bin/dash", "/bin/sh")
	if err != nil {
		return lab.ExtraImage{}, err
	}
	tools, err := programs("/usr/bin/dig", "/usr/bin/nc", "/usr/bin/curl", "/usr/bin/getent")
	if err != nil {
		return lab.ExtraImage{}, err
	}
	tools = append(tools, sh...)
	ns, err := nsswitch(m)
	if err != nil {
		return lab.ExtraImage{}, err
	}
	files = append(append(files, tools...), ns, lab.ImageFile{Src: m.agnhost, Dst: "/agnhost", Mode: 0o755})
	// porter's TLS ports read these from its working folder, /, as in the upstream image.
	for _, f := range []string{"localhost.crt", "localhost.key"} {
		files = append(files, lab.ImageFile{Src: filepath.Join(filepath.Dir(m.agnhost), f), Dst: "/" + f, Mode: 0o644})
	}
	return lab.ExtraImage{Files: files, Links: links, Entrypoint: []string{"/agnhost"}, Cmd: []string{"pause"}}, nil
}

func busyboxImage(machineFiles) (lab.ExtraImage, error) {
	files, links, err := busyboxFiles()
	if err != nil {
		return lab.ExtraImage{}, err
	}
	return lab.ExtraImage{Files: files, Links: links, Cmd: []string{"sh"}}, nil
}

func nginxImage(m machineFiles) (lab.ExtraImage, error) {
	files, links, err := busyboxFiles()
	if err != nil {
		return lab.ExtraImage{}, err
	}
	files = append(files, lab.ImageFile{Src: m.agnhost, Dst: "/agnhost", Mode: 0o755})
	return lab.ExtraImage{Files: files, Links: links, Entrypoint: []string{"/agnhost", "test-webserver", "--port=80"}}, nil
}

func glibcDNSImage(m machineFiles) (lab.ExtraImage, error) {
	sh, err := program("/usr/bin/dash", "/bin/sh")
	if err != nil {
		return lab.ExtraImage{}, err
	}
	tools, err := programs("/usr/bin/dig", "/usr/bin/getent", "/usr/bin/seq", "/usr/bin/sleep", "/usr/bin/cat", "/usr/bin/test")
	if err != nil {
		return lab.ExtraImage{}, err
	}
	ns, err := nsswitch(m)
	if err != nil {
		return lab.ExtraImage{}, err
	}
	return lab.ExtraImage{Files: append(append(sh, tools...), ns), Cmd: []string{"/bin/sh"}}, nil
}

// pauseImage is the lab's pause program, which lab.Up builds before it builds the images.
func pauseImage(m machineFiles) (lab.ExtraImage, error) {
	return lab.ExtraImage{Files: []lab.ImageFile{{Src: m.pause, Dst: "/pause", Mode: 0o755}}, Entrypoint: []string{"/pause"}}, nil
}
