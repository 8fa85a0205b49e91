package store

import (
	"testing"
	"time"
)

// TestOutboundColumnsTyped checks outboundText against the values
// outboundArgs gives, for messages that set every field: a column typed
// wrong would reach PostgreSQL as an empty array, its rows as NULLs.
func TestOutboundColumnsTyped(t *testing.T) {
	for _, m := range []*Outbound{
		{SenderJID: "alice@example.com/phone", SenderNumber: "+12015550100", Dest: "+12015550199", StanzaID: "a1",
			WantReceipt: true, Body: "hi", Parts: 1, ExpiresAt: time.Now(), LeaseOwner: "i1", LeaseUntil: time.Now(),
			DestTON: 1, DestNPI: 1, SMSC: "b", PeerLocal: "2015550199", Extra: "x"},
		{SenderJID: "bob@example.com/pc", Dest: "+12015550100", PeerJID: "alice@example.com", FallbackAt: time.Now(), Body: "relay"},
	} {
		row := outboundArgs(nil, m, nil, 1)
		if len(row) != outboundCols {
			t.Fatalf("%d arguments, want %d", len(row), outboundCols)
		}
		for c, v := range row[:outboundCols-1] {
			if _, isText := v.(string); isText != outboundText[c] {
				t.Errorf("column %d: %T, outboundText says text %v", c, v, outboundText[c])
			}
		}
		args := outboundColumns([]*Outbound{m, m}, 1)
		if len(args) != outboundCols {
			t.Fatalf("outboundColumns: %d arguments, want %d", len(args), outboundCols)
		}
	}
}
