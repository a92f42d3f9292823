package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// pacer spreads events evenly over time. It schedules by the count already
// reserved rather than refilling tokens, so all workers together hold the
// rate without a burst at each tick.
type pacer struct {
	mu       sync.Mutex
	rate     float64 // events per second; 0 = unlimited
	start    time.Time
	reserved float64
}

func (p *pacer) wait(ctx context.Context, n int) error {
	if p.rate <= 0 {
		return ctx.Err()
	}
	p.mu.Lock()
	now := time.Now()
	if p.start.IsZero() {
		p.start = now
	}
	at := p.start.Add(time.Duration(p.reserved / p.rate * float64(time.Second)))
	// After a stall (collector back-pressure) do not catch up in one burst:
	// forget the debt beyond a second.
	if at.Before(now.Add(-time.Second)) {
		p.start = now.Add(-time.Duration(p.reserved / p.rate * float64(time.Second)))
		at = now
	}
	p.reserved += float64(n)
	p.mu.Unlock()
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// budget hands out the --events limit in batch-sized pieces.
type budget struct {
	left atomic.Int64 // < 0 means unlimited
}

func (b *budget) take(n int) int {
	for {
		left := b.left.Load()
		if left < 0 {
			return n
		}
		if left == 0 {
			return 0
		}
		k := min(int64(n), left)
		if b.left.CompareAndSwap(left, left-k) {
			return int(k)
		}
	}
}

type runConfig struct {
	gen     genConfig
	batch   int
	workers int
	rate    float64
	events  int64 // 0 = unlimited
	deliver deliverer
}

// run generates and sends until ctx ends or the event budget is spent.
func run(ctx context.Context, rc runConfig, st *stats) {
	sh := newShared(rc.gen)
	pc := &pacer{rate: rc.rate}
	bg := &budget{}
	bg.left.Store(-1)
	if rc.events > 0 {
		bg.left.Store(rc.events)
	}
	var wg sync.WaitGroup
	for w := 0; w < rc.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := newGenerator(sh, w)
			d := rc.deliver
			d.st = st
			for ctx.Err() == nil {
				n := bg.take(rc.batch)
				if n == 0 {
					return
				}
				if err := pc.wait(ctx, n); err != nil {
					return
				}
				b := g.fill(n, time.Now())
				st.decisions.Add(int64(b.decisions))
				d.send(ctx, b)
			}
		}()
	}
	wg.Wait()
}
