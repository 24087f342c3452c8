package main

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestDriveCountsEveryRequest(t *testing.T) {
	var calls atomic.Int64
	r := drive(context.Background(), "op", 4, 200*time.Millisecond, func(context.Context) error {
		n := calls.Add(1)
		time.Sleep(time.Millisecond)
		if n%10 == 0 {
			return errors.New("every tenth fails")
		}
		return nil
	})
	if int64(r.requests) != calls.Load() || r.requests == 0 {
		t.Fatalf("counted %d requests, op ran %d times", r.requests, calls.Load())
	}
	if r.errors != int(calls.Load()/10) || r.firstErr == nil || len(r.latencies) != r.requests-r.errors {
		t.Fatalf("errors %d (first %v), latencies %d, of %d requests", r.errors, r.firstErr, len(r.latencies), r.requests)
	}
	if !slices.IsSorted(r.latencies) || r.percentile(0.5) < time.Millisecond || r.elapsed < 200*time.Millisecond {
		t.Fatalf("p50 %s, elapsed %s", r.percentile(0.5), r.elapsed)
	}
}

func TestDriveStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r := drive(ctx, "op", 2, time.Hour, func(context.Context) error { return nil }); r.requests != 0 {
		t.Fatalf("%d requests after cancel", r.requests)
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	r := result{}
	for i := 1; i <= 100; i++ {
		r.latencies = append(r.latencies, time.Duration(i)*time.Millisecond)
	}
	if p50, p99 := r.percentile(0.5), r.percentile(0.99); p50 != 50*time.Millisecond || p99 != 99*time.Millisecond {
		t.Fatalf("p50 %s p99 %s", p50, p99)
	}
	if (result{}).percentile(0.99) != 0 {
		t.Fatal("no latencies, no percentile")
	}
}

func TestRunnerCleansUpAfterFatalf(t *testing.T) {
	r := &runner{}
	var cleaned []int
	msg, ok := r.do(func() {
		r.Cleanup(func() { cleaned = append(cleaned, 1) })
		r.Cleanup(func() { cleaned = append(cleaned, 2) })
		r.Fatalf("vault %s", "died")
		t.Error("Fatalf returned")
	})
	if ok || msg != "vault died" || !slices.Equal(cleaned, []int{2, 1}) || !r.Failed() {
		t.Fatalf("do = %q, %v; cleanups ran %v", msg, ok, cleaned)
	}
}

func TestRatioAndTable(t *testing.T) {
	m := measurement{setup: setup{name: "s"}, rssPeak: 24 << 20, results: []result{
		{name: "creds", requests: 300, elapsed: time.Second, latencies: []time.Duration{time.Millisecond}},
		{name: "token-create", requests: 1000, elapsed: time.Second, latencies: []time.Duration{time.Millisecond}},
	}}
	if got := m.ratio("creds", "token-create"); got != "0.30" {
		t.Fatalf("creds/token-create = %s", got)
	}
	if got := m.ratio("creds", "roles-read"); got != "-" {
		t.Fatalf("a workload not measured gives %s", got)
	}
	var out strings.Builder
	printTables(&out, []measurement{m})
	for _, want := range []string{"creds/token-create", "0.30", "24.0 MiB", "1.00ms"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the tables lack %q:\n%s", want, out.String())
		}
	}
}

// The attributed workload has its row, and its ratios to roles-read and
// to the same login's plain creds columns of their own: the plain creds
// ratios stay what they were.
func TestAttributedRatio(t *testing.T) {
	m := measurement{setup: setup{name: "dev"}, results: []result{
		{name: "creds", requests: 300, elapsed: time.Second, latencies: []time.Duration{time.Millisecond}},
		{name: "roles-read", requests: 1000, elapsed: time.Second, latencies: []time.Duration{time.Millisecond}},
		{name: "creds-userpass", requests: 200, elapsed: time.Second, latencies: []time.Duration{time.Millisecond}},
		{name: "creds-attributed", requests: 250, elapsed: time.Second, latencies: []time.Duration{2 * time.Millisecond}},
	}}
	if got := m.ratio("creds", "roles-read"); got != "0.30" {
		t.Fatalf("creds/roles-read = %s", got)
	}
	if got := m.ratio("creds-attributed", "roles-read"); got != "0.25" {
		t.Fatalf("attributed creds/roles-read = %s", got)
	}
	if got := m.ratio("creds-attributed", "creds-userpass"); got != "1.25" {
		t.Fatalf("attributed/userpass creds = %s", got)
	}
	var out strings.Builder
	printTables(&out, []measurement{m, {setup: setup{name: "slow"}, results: m.results[:1]}})
	lines := strings.Split(out.String(), "\n")
	header := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, "attributed creds/roles-read") })
	if header < 0 || !strings.Contains(out.String(), "creds-attributed  250") {
		t.Fatalf("no attributed row or column:\n%s", out.String())
	}
	// The columns line up: each setup's ratios start under their headers.
	for title, want := range map[string]string{"attributed creds/roles-read": "0.25", "attributed/userpass creds": "1.25"} {
		column := strings.Index(lines[header], title)
		if row := lines[header+1]; column < 0 || !strings.HasPrefix(row[column:], want) {
			t.Errorf("dev's %s is not %s under its header:\n%s", title, want, out.String())
		}
		if row := lines[header+2]; column < 0 || !strings.HasPrefix(row[column:], "-") {
			t.Errorf("a setup without the attributed workloads shows more than - for %s:\n%s", title, out.String())
		}
	}
}

func TestParseFlagsRefusesNonsense(t *testing.T) {
	for args, says := range map[string]string{
		"-vault vault -readers 0":         "-readers",
		"-vault vault -duration 0s":       "-duration",
		"-vault vault -plugin /nonexist":  "-plugin",
		"-vault vault stray":              "unexpected arguments",
		"-vault vault -setups dev,nope":   "unknown setup \"nope\"",
		"-readers 4 -plugin /nonexistent": "no Vault",
	} {
		t.Setenv("VAULT_BIN", "")
		if _, err := parseFlags(strings.Fields(args)); err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("parseFlags(%q) = %v, want an error about %s", args, err, says)
		}
	}
}

func TestAddMergesRounds(t *testing.T) {
	r := result{name: "creds"}
	r.add(result{requests: 3, errors: 1, elapsed: time.Second, latencies: []time.Duration{3, 1}})
	r.add(result{requests: 2, errors: 1, firstErr: errors.New("second round"), elapsed: time.Second, latencies: []time.Duration{2}})
	if r.requests != 5 || r.errors != 2 || r.rate() != 1.5 || !slices.Equal(r.latencies, []time.Duration{1, 2, 3}) ||
		r.firstErr == nil {
		t.Fatalf("merged %+v", r)
	}
}

// The journal's commits are summed from the exposition, and its covered
// tokens counted; other series are ignored.
func TestJournalStatsFromExposition(t *testing.T) {
	var s journalStats
	for _, line := range strings.Split(`# HELP beyondidentity_journal_commits_total Storage writes.
# TYPE beyondidentity_journal_commits_total counter
beyondidentity_journal_commits_total{op="cover"} 10
beyondidentity_journal_commits_total{op="handover"} 15
beyondidentity_journal_tokens_total{op="cover"} 60
beyondidentity_journal_tokens_total{op="handover"} 60
beyondidentity_tokens_issued_total{role="r"} 60`, "\n") {
		s.add(line)
	}
	if got := s.String(); got != "2.4 (60 tokens covered, 25 commits)" {
		t.Fatalf("journal stats %q", got)
	}
	if got := (journalStats{}).String(); got != "-" {
		t.Fatalf("no journal writes shown as %q", got)
	}
}
