package journal

import "sync"

// batcher runs a piece of work for many callers at once: a caller whose
// item arrives while no batch is under way runs one itself, with every item
// that came meanwhile, and hands the next batch to the first caller still
// waiting. So concurrent callers share one storage write (a group commit),
// while a lone caller waits for nothing.
type batcher[T any] struct {
	run func(items []*batchItem[T])
	// most bounds the items of a batch; the rest wait for the next one.
	most int

	mu      sync.Mutex
	pending []*batchItem[T]
	busy    bool
}

// batchItem is one caller's part of a batch; run sets err and calls finish.
type batchItem[T any] struct {
	value T
	err   error
	done  chan struct{}
	lead  chan struct{}
}

func (i *batchItem[T]) finish(err error) {
	i.err = err
	close(i.done)
}

// do adds value to the next batch and returns when that batch has run.
func (b *batcher[T]) do(value T) (*batchItem[T], error) {
	item := &batchItem[T]{value: value, done: make(chan struct{}), lead: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, item)
	leading := !b.busy
	b.busy = true
	b.mu.Unlock()
	if !leading {
		select {
		case <-item.done:
			return item, item.err
		case <-item.lead: // this caller runs the next batch, its own item in it
		}
	}
	b.mu.Lock()
	// The first pending item is this caller's: it leads the batch.
	batch := b.pending[:min(len(b.pending), b.most)]
	b.pending = b.pending[len(batch):]
	b.mu.Unlock()
	b.run(batch)
	b.mu.Lock()
	if len(b.pending) > 0 {
		close(b.pending[0].lead)
	} else {
		b.busy = false
	}
	b.mu.Unlock()
	return item, item.err
}
