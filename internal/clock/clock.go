// Package clock is the plugin's view of time, injected wherever behaviour
// depends on it, so that tests can walk a lease or a revocation schedule
// through hours in milliseconds.
package clock

import (
	"sort"
	"sync"
	"time"
)

// Clock tells the time and makes timers.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once, d from now.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer.
type Timer interface {
	// C delivers the time once the timer fires.
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it did.
	Stop() bool
}

// Real is the system clock.
type Real struct{}

// Now implements Clock.
func (Real) Now() time.Time { return time.Now() }

// NewTimer implements Clock.
func (Real) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }

// Fake is a clock that moves only when told to. Its timers fire during
// Advance, in order of their deadlines.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	// added is closed, and replaced, whenever a timer is created, so a test
	// can wait for a goroutine to start waiting.
	added chan struct{}
}

// NewFake returns a fake clock set to start.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start, added: make(chan struct{})}
}

// Now implements Clock.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer implements Clock.
func (f *Fake) NewTimer(d time.Duration) Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{clock: f, deadline: f.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.fire(f.now)
	} else {
		f.timers = append(f.timers, t)
	}
	close(f.added)
	f.added = make(chan struct{})
	return t
}

// TimerCreated returns a channel closed when the next timer is created.
func (f *Fake) TimerCreated() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.added
}

// Advance moves the clock forward by d, firing every timer due by then.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	sort.Slice(f.timers, func(i, j int) bool { return f.timers[i].deadline.Before(f.timers[j].deadline) })
	kept := f.timers[:0]
	for _, t := range f.timers {
		if t.deadline.After(f.now) {
			kept = append(kept, t)
			continue
		}
		t.fire(f.now)
	}
	f.timers = kept
}

// Set moves the clock to at, which must not be in its past.
func (f *Fake) Set(at time.Time) {
	f.Advance(at.Sub(f.Now()))
}

type fakeTimer struct {
	clock    *Fake
	deadline time.Time
	c        chan time.Time
	fired    bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

// fire delivers the time; the caller holds the clock's lock.
func (t *fakeTimer) fire(now time.Time) {
	t.fired = true
	t.c <- now
}

func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	if t.fired {
		return false
	}
	for i, other := range t.clock.timers {
		if other == t {
			t.clock.timers = append(t.clock.timers[:i], t.clock.timers[i+1:]...)
			break
		}
	}
	t.fired = true
	return true
}

// NoWait tells the real time but fires every timer at once: for tests of
// code that waits between attempts, which then runs through its backoff and
// Retry-After waits without sleeping.
type NoWait struct{}

// Now implements Clock.
func (NoWait) Now() time.Time { return time.Now() }

// NewTimer implements Clock: the timer has already fired.
func (NoWait) NewTimer(time.Duration) Timer {
	c := make(chan time.Time, 1)
	c <- time.Now()
	return firedTimer{c}
}

type firedTimer struct{ c chan time.Time }

func (f firedTimer) C() <-chan time.Time { return f.c }
func (f firedTimer) Stop() bool          { return false }
