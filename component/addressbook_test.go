package component

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestFetchPrivateRefused: unless fetching from private networks is
// allowed, a URL on loopback is refused, and the user is told that such
// addresses are not allowed, not only that the file could not be fetched —
// without the dialer's words.
func TestFetchPrivateRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "Bob, +12015550177") }))
	t.Cleanup(srv.Close)
	for _, private := range []bool{false, true} {
		c := &Component{fetcher: newFetchClient(private), log: zerolog.New(zerolog.NewTestWriter(t))}
		data, err := c.fetch(context.Background(), srv.URL+"/book.txt")
		if private {
			if err != nil || !strings.Contains(string(data), "Bob") {
				t.Errorf("fetch_private: %q, %v", data, err)
			}
			continue
		}
		if err == nil {
			t.Fatalf("loopback fetched: %q", data)
		}
		if msg := err.Error(); !strings.Contains(msg, "private") || !strings.Contains(msg, "loopback") ||
			strings.Contains(msg, "dial") || strings.Contains(msg, "not allowed\"") {
			t.Errorf("refusal = %q", msg)
		}
	}
}
