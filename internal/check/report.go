package check

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/plexus-net/plexus/internal/probe"
)

// Row is one probe client's results.
type Row struct {
	// Source is "<node> pod" or "<node> host".
	Source  string
	Results []probe.Result
	// Err is set when the client produced no results (it did not start, or its log is unreadable).
	Err string
}

// Report is a whole check.
type Report struct {
	// Columns are the checks that apply to the cluster (ColumnsFor); empty means all of Columns.
	Columns []string
	Rows    []Row
}

func (r Report) columns() []string {
	if len(r.Columns) > 0 {
		return r.Columns
	}
	return Columns
}

// Failures lists every probe whose outcome was not the expected one, and every client that failed.
func (r Report) Failures() []string {
	var out []string
	for _, row := range r.Rows {
		if row.Err != "" {
			out = append(out, fmt.Sprintf("%s: %s", row.Source, row.Err))
		}
		for _, res := range row.Results {
			switch {
			case res.Passed():
			case res.ExpectDenied:
				out = append(out, fmt.Sprintf("%s → %s [%s]: answered, but a NetworkPolicy denies it", row.Source, res.Name, res.Check))
			default:
				out = append(out, fmt.Sprintf("%s → %s [%s]: %s", row.Source, res.Name, res.Check, res.Error))
			}
		}
	}
	return out
}

// OK reports whether every probe had the expected outcome.
func (r Report) OK() bool { return len(r.Failures()) == 0 }

// cell is one matrix cell: passed of total, with the median latency of the passed probes that
// got an answer.
func cell(results []probe.Result, check string) string {
	var total, passed int
	var lat []int64
	for _, res := range results {
		if res.Check != check {
			continue
		}
		total++
		if res.Passed() {
			passed++
			if res.OK {
				lat = append(lat, res.LatencyMicros)
			}
		}
	}
	if total == 0 {
		return "·"
	}
	mark := "✓"
	if passed < total {
		mark = "✗"
	}
	s := fmt.Sprintf("%s %d/%d", mark, passed, total)
	if len(lat) > 0 {
		slices.Sort(lat)
		s += " " + (time.Duration(lat[len(lat)/2]) * time.Microsecond).Round(10*time.Microsecond).String()
	}
	return s
}

// Format prints the matrix (rows: probe clients; columns: checks; cells: passed/total and the
// median latency), the failures, and a summary line.
func Format(w io.Writer, r Report) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	cols := r.columns()
	fmt.Fprintln(tw, "FROM\t"+strings.Join(cols, "\t"))
	for _, row := range r.Rows {
		cells := make([]string, len(cols))
		for i, c := range cols {
			cells[i] = cell(row.Results, c)
			if row.Err != "" {
				cells[i] = "✗ no results"
			}
		}
		fmt.Fprintln(tw, row.Source+"\t"+strings.Join(cells, "\t"))
	}
	_ = tw.Flush()
	fails := r.Failures()
	if len(fails) > 0 {
		fmt.Fprintln(w, "\nfailures:")
		for _, f := range fails {
			fmt.Fprintln(w, "  "+f)
		}
	}
	probes := 0
	for _, row := range r.Rows {
		probes += len(row.Results)
	}
	if len(fails) == 0 {
		fmt.Fprintf(w, "\ncheck: OK, %d probes from %d clients (· = not applicable; latency = median)\n", probes, len(r.Rows))
		return
	}
	fmt.Fprintf(w, "\ncheck: FAILED, %d of %d probes (or clients) failed\n", len(fails), probes)
}
