package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// printTables prints every measurement, then the ratios and memory per
// setup, then the first error of any workload that had some.
func printTables(out io.Writer, ms []measurement) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "\nsetup\tworkload\treq/s\tp50\tp99\terrors")
	for _, m := range ms {
		for i, r := range m.results {
			name := m.name
			if i > 0 {
				name = ""
			}
			fmt.Fprintf(w, "%s\t%s\t%.0f\t%s\t%s\t%d\n", name, r.name, r.rate(),
				formatDuration(r.percentile(0.50)), formatDuration(r.percentile(0.99)), r.errors)
		}
	}
	fmt.Fprintln(w, "\nsetup\tcreds/token-create\tcreds/roles-read\tattributed creds/roles-read\t"+
		"attributed/userpass creds\tcontainer/process creds\tcontainer/process roles-read\tplugin RSS peak under creds\ttokens covered per journal commit")
	for _, m := range ms {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.name, m.ratio("creds", "token-create"), m.ratio("creds", "roles-read"),
			m.ratio("creds-attributed", "roles-read"), m.ratio("creds-attributed", "creds-userpass"),
			m.ratio("creds-container", "creds"), m.ratio("roles-read-container", "roles-read"),
			formatBytes(m.rssPeak), m.journal)
	}
	_ = w.Flush()
	for _, m := range ms {
		for _, r := range m.results {
			if r.firstErr != nil {
				fmt.Fprintf(out, "\n%s, %s: %d errors, the first: %s\n", m.name, r.name, r.errors,
					strings.TrimSpace(r.firstErr.Error()))
			}
		}
	}
}

// ratio is one workload's requests per second over another's, or "-"
// when either was not measured.
func (m measurement) ratio(name, other string) string {
	numerator, ok := m.result(name)
	denominator, found := m.result(other)
	if !ok || !found || denominator.rate() == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", numerator.rate()/denominator.rate())
}

func formatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func formatBytes(n int64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
