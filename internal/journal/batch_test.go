package journal

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The batcher serves every caller, in batches no larger than its bound,
// whatever their number: callers that wait while a batch runs share the
// next ones.
func TestBatcherServesEveryCaller(t *testing.T) {
	t.Parallel()
	const most, callers = 16, 200
	var batches, served, oversized, first atomic.Int32
	var b batcher[int]
	b.most = most
	b.run = func(items []*batchItem[int]) {
		if batches.Add(1) == 1 {
			// Hold the first batch until every other caller waits for the
			// next ones.
			first.Store(int32(len(items)))
			for deadline := time.Now().Add(10 * time.Second); len(items)+b.waiting() < callers; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Error("the callers never all waited for a batch")
					break
				}
			}
		}
		if len(items) > most {
			oversized.Add(1)
		}
		for _, item := range items {
			served.Add(1)
			item.finish(nil)
		}
	}
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			if _, err := b.do(i); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// The first batch, then full ones for the rest.
	rest := callers - int(first.Load())
	if want := 1 + (rest+most-1)/most; served.Load() != callers || batches.Load() != int32(want) {
		t.Fatalf("%d callers served in %d batches, want %d in %d", served.Load(), batches.Load(), callers, want)
	}
	if oversized.Load() > 0 {
		t.Fatalf("%d batches held more than %d items", oversized.Load(), most)
	}
	if b.busy || len(b.pending) != 0 {
		t.Fatal("the batcher did not come to rest")
	}
}

// waiting counts the items waiting for the next batch.
func (b *batcher[T]) waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}

// MinAge is 15 minutes unless a test build sets a positive duration.
func TestMinAge(t *testing.T) {
	t.Parallel()
	for override, want := range map[string]time.Duration{"": 15 * time.Minute, "20s": 20 * time.Second,
		"-5s": 15 * time.Minute, "0s": 15 * time.Minute, "soon": 15 * time.Minute} {
		if got := minAge(override); got != want {
			t.Errorf("minAge(%q) = %v, want %v", override, got, want)
		}
	}
	if MinAge != minAge(minAgeOverride) {
		t.Errorf("MinAge = %v, the build says %v", MinAge, minAge(minAgeOverride))
	}
}
