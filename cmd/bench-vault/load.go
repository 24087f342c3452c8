package main

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/vaulttest"
)

// result is one workload measured for a fixed time.
type result struct {
	name     string
	requests int
	errors   int
	firstErr error
	elapsed  time.Duration
	// latencies of the successful requests, sorted.
	latencies []time.Duration
}

// add merges another measurement of the same workload into r.
func (r *result) add(other result) {
	r.requests += other.requests
	r.errors += other.errors
	r.elapsed += other.elapsed
	if r.firstErr == nil {
		r.firstErr = other.firstErr
	}
	r.latencies = append(r.latencies, other.latencies...)
	slices.Sort(r.latencies)
}

// rate is successful requests per second.
func (r result) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.requests-r.errors) / r.elapsed.Seconds()
}

// percentile is the latency below which fraction p of the successful
// requests finished (nearest rank); zero when none succeeded.
func (r result) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	rank := int(p*float64(len(r.latencies))+0.5) - 1
	return r.latencies[min(max(rank, 0), len(r.latencies)-1)]
}

// drive runs op from readers goroutines, each sending its next request as
// soon as the previous one is answered, until d has passed or ctx ends.
// Requests answered after the deadline still count: each reader stops
// sending at the deadline, and elapsed runs until the last one is back.
func drive(ctx context.Context, name string, readers int, d time.Duration, op func(context.Context) error) result {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type tally struct {
		latencies []time.Duration
		errors    int
		firstErr  error
	}
	tallies := make([]tally, readers)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for i := range tallies {
		wg.Add(1)
		go func(t *tally) {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				began := time.Now()
				if err := op(ctx); err != nil {
					t.errors++
					if t.firstErr == nil {
						t.firstErr = err
					}
					continue
				}
				t.latencies = append(t.latencies, time.Since(began))
			}
		}(&tallies[i])
	}
	wg.Wait()
	r := result{name: name, elapsed: time.Since(start)}
	for _, t := range tallies {
		r.latencies = append(r.latencies, t.latencies...)
		r.errors += t.errors
		if r.firstErr == nil {
			r.firstErr = t.firstErr
		}
	}
	r.requests = len(r.latencies) + r.errors
	slices.Sort(r.latencies)
	return r
}

// rssSampler records the peak resident memory of the processes running one
// executable, summed, while a workload runs.
type rssSampler struct {
	exe  string
	stop chan struct{}
	done chan struct{}
	peak int64
}

// sampleRSS starts sampling every interval until the sampler is stopped.
func sampleRSS(exe string, interval time.Duration) *rssSampler {
	s := &rssSampler{exe: exe, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			s.sample()
			select {
			case <-s.stop:
				return
			case <-ticker.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) sample() {
	var total int64
	for _, pid := range vaulttest.PIDsOf(s.exe) {
		if rss, err := vaulttest.RSS(pid); err == nil {
			total += rss
		}
	}
	s.peak = max(s.peak, total)
}

// Stop ends the sampling and returns the peak in bytes; 0 when no process
// was found (not on Linux, or the plugin was not running).
func (s *rssSampler) Stop() int64 {
	close(s.stop)
	<-s.done
	return s.peak
}
