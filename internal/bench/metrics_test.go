package bench

import (
	"strings"
	"testing"
)

func TestParseCommits(t *testing.T) {
	const text = `# HELP switchboard_store_commit_writes Writes that shared one group commit.
# TYPE switchboard_store_commit_writes histogram
switchboard_store_commit_writes_bucket{le="1"} 3
switchboard_store_commit_writes_bucket{le="+Inf"} 1.234567e+06
switchboard_store_commit_writes_sum 2.5e+07
switchboard_store_commit_writes_count 1.234567e+06
switchboard_store_commit_seconds_count 99
# TYPE go_memstats_mallocs_total counter
go_memstats_mallocs_total 7.5e+06
# TYPE go_memstats_alloc_bytes_total counter
go_memstats_alloc_bytes_total 6.3e+08
`
	st, err := parseCommits(strings.NewReader(text))
	if err != nil || st.commits != 1234567 || st.writes != 25e6 || st.mallocs != 7.5e6 || st.allocBytes != 6.3e8 {
		t.Errorf("parseCommits = %+v, %v; want 1234567 commits, 25e6 writes, 7.5e6 mallocs, 6.3e8 bytes", st, err)
	}
	// Without the Go collector's counters the commits are still read.
	st, err = parseCommits(strings.NewReader(text[:strings.Index(text, "# TYPE go_")]))
	if err != nil || st.commits != 1234567 || st.mallocs != 0 || st.allocBytes != 0 {
		t.Errorf("parseCommits without the heap counters = %+v, %v; want the commits, no heap figures", st, err)
	}
	for _, bad := range []string{
		"switchboard_store_commit_seconds_count 3\n",                                                // not there
		"# TYPE switchboard_store_commit_writes counter\nswitchboard_store_commit_writes 3\n",       // not a histogram
		"# TYPE switchboard_store_commit_writes histogram\nswitchboard_store_commit_writes_sum x\n", // not a number
	} {
		if st, err := parseCommits(strings.NewReader(bad)); err == nil {
			t.Errorf("parseCommits(%q) = %+v, nil; want an error", bad, st)
		}
	}
}
