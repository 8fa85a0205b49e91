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
`
	st, err := parseCommits(strings.NewReader(text))
	if err != nil || st.commits != 1234567 || st.writes != 25e6 {
		t.Errorf("parseCommits = %+v, %v; want 1234567 commits, 25e6 writes", st, err)
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
