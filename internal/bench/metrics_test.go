package bench

import (
	"bufio"
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
	st, err := parseCommits(bufio.NewScanner(strings.NewReader(text)))
	if err != nil || st.commits != 1234567 || st.writes != 25e6 {
		t.Errorf("parseCommits = %+v, %v; want 1234567 commits, 25e6 writes", st, err)
	}
	for _, bad := range []string{
		"switchboard_store_commit_writes_count 3\n",                                        // no sum
		"switchboard_store_commit_writes_sum 3\n",                                          // no count
		"switchboard_store_commit_writes_sum x\nswitchboard_store_commit_writes_count 1\n", // not a number
	} {
		if st, err := parseCommits(bufio.NewScanner(strings.NewReader(bad))); err == nil {
			t.Errorf("parseCommits(%q) = %+v, nil; want an error", bad, st)
		}
	}
}
