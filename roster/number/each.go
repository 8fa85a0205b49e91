package number

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Each calls f(i) for every i below n, spread over the available CPUs
// with at least per calls each: libphonenumber's regular expressions make
// work over a whole address book CPU-bound. f must be safe to call
// concurrently for different i.
func Each(n, per int, f func(i int)) {
	var next atomic.Int64
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			f(i)
		}
	}
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n/max(per, 1)+1) - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
}
