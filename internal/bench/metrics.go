package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"switchboard/internal/metrics"
)

// commitStats is what Switchboard's /metrics says of the store's group
// commits so far: how many ran and how many writes they held (the count
// and the sum of the commit-writes histogram); and of its heap: the
// objects and bytes allocated so far (the Go collector's counters; zero
// when they are missing).
type commitStats struct {
	commits, writes     float64
	mallocs, allocBytes float64
}

// readCommits reads commitStats from the metrics listener at addr.
func readCommits(ctx context.Context, addr string) (commitStats, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return commitStats{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return commitStats{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return commitStats{}, fmt.Errorf("bench: %s/metrics: %s", addr, resp.Status)
	}
	return parseCommits(resp.Body)
}

// parseCommits reads commitStats from Prometheus's text format.
func parseCommits(r io.Reader) (commitStats, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return commitStats{}, fmt.Errorf("bench: metrics: %w", err)
	}
	f := families[metrics.NameCommitWrites]
	if f == nil || len(f.GetMetric()) != 1 || f.GetMetric()[0].GetHistogram() == nil {
		return commitStats{}, fmt.Errorf("bench: metrics: no histogram %s", metrics.NameCommitWrites)
	}
	h := f.GetMetric()[0].GetHistogram()
	st := commitStats{commits: float64(h.GetSampleCount()), writes: h.GetSampleSum()}
	counter := func(name string) float64 {
		if f := families[name]; f != nil && len(f.GetMetric()) == 1 && f.GetMetric()[0].GetCounter() != nil {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
		return 0
	}
	st.mallocs, st.allocBytes = counter("go_memstats_mallocs_total"), counter("go_memstats_alloc_bytes_total")
	return st, nil
}
