package e2e

import (
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
)

// failureDigest holds, after the suite, each failed spec with its failure message. TestE2E prints
// it after Ginkgo's own summary (which names a failed spec and its line but not why), so the last
// lines of a CI log, often all that is kept, say what went wrong.
var failureDigest []string

// digestLimit bounds one failure's message in the digest: the truth table's side-by-side matrix
// fits; a runaway dump does not drown the rest.
const digestLimit = 6000

var _ = ReportAfterSuite("failure digest", func(r Report) {
	for _, s := range r.SpecReports {
		if !s.State.Is(types.SpecStateFailureStates) {
			continue
		}
		msg := s.Failure.Message
		if len(msg) > digestLimit {
			msg = msg[:digestLimit] + "\n… (cut; the full message is above)"
		}
		failureDigest = append(failureDigest, fmt.Sprintf("%s [%s] at %s\n%s",
			s.FullText(), s.State, s.Failure.Location, msg))
	}
})

// printFailureDigest writes the digest to standard output.
func printFailureDigest() {
	if len(failureDigest) == 0 {
		return
	}
	fmt.Printf("\n=== e2e failure digest: %d spec(s) failed\n%s\n", len(failureDigest),
		strings.Join(failureDigest, "\n---\n"))
}
