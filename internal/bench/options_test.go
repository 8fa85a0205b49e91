package bench

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestReceiptDelayOptions: a receipt delay needs the built-in sink's
// receipts; with -smsc (another SMSC's receipts) or -no-receipts it would
// be reported but never applied, so Run refuses it before starting
// anything, as it does a negative one.
func TestReceiptDelayOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"own SMSC", Options{ReceiptDelay: time.Second, SMSC: "127.0.0.1:1"}, "not with -smsc or -no-receipts"},
		{"no receipts", Options{ReceiptDelay: time.Second, NoReceipts: true}, "not with -smsc or -no-receipts"},
		{"negative", Options{ReceiptDelay: -time.Second}, "negative"},
		{"c2s TLS without Prosody", Options{C2STLS: true}, "-c2s-tls is for -mode prosody"},
	} {
		tc.o.Binary = "/nonexistent/switchboard"
		_, err := Run(context.Background(), tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Run = %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}
