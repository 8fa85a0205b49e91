package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// commitStats is what Switchboard's /metrics says of the store's group
// commits so far: how many ran and how many writes they held (the count
// and the sum of switchboard_store_commit_writes).
type commitStats struct {
	commits, writes float64
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
	return parseCommits(bufio.NewScanner(resp.Body))
}

// parseCommits reads commitStats from Prometheus's text format.
func parseCommits(sc *bufio.Scanner) (commitStats, error) {
	var (
		st         commitStats
		count, sum bool
	)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		var dst *float64
		switch name {
		case "switchboard_store_commit_writes_count":
			dst, count = &st.commits, ok
		case "switchboard_store_commit_writes_sum":
			dst, sum = &st.writes, ok
		default:
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return commitStats{}, fmt.Errorf("bench: metrics: %s: %w", name, err)
		}
		*dst = v
	}
	if err := sc.Err(); err != nil {
		return commitStats{}, err
	}
	if !count || !sum {
		return commitStats{}, fmt.Errorf("bench: metrics: no switchboard_store_commit_writes")
	}
	return st, nil
}
