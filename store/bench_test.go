package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"switchboard/internal/testenv"
	"switchboard/store"
)

// benchEngines runs f against a fresh SQLite file (durable: WAL,
// synchronous FULL) and a fresh PostgreSQL database (testenv's throwaway
// server runs with fsync off: its figures are CPU and round trips, not disk).
func benchEngines(b *testing.B, f func(b *testing.B, s *store.Store)) {
	b.Run("sqlite", func(b *testing.B) {
		s, err := store.Open(context.Background(), "sqlite:"+filepath.Join(b.TempDir(), "sb.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		f(b, s)
	})
	b.Run("postgres", func(b *testing.B) {
		s, err := store.Open(context.Background(), testenv.StartPostgres(b))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		f(b, s)
	})
}

func benchMessages(n int, from int) []*store.Outbound {
	out := make([]*store.Outbound, n)
	for i := range out {
		out[i] = &store.Outbound{
			SenderJID: "alice@example.com/phone", SenderNumber: "+12015550100",
			Dest: fmt.Sprintf("+1201555%04d", 100+(from+i)%8000), StanzaID: "m" + strconv.Itoa(from+i), WantReceipt: true,
			Body: "benchmark message of a typical length, sixty-odd characters.", Parts: 1,
			ExpiresAt: time.Now().Add(48 * time.Hour),
		}
	}
	return out
}

// benchAccept stores n messages in batches of batch.
func benchAccept(b *testing.B, s *store.Store, n, batch int) {
	for i := 0; i < n; i += batch {
		if err := s.AcceptOutbound(context.Background(), benchMessages(min(batch, n-i), i)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAcceptOutbound stores messages as the router does: one
// transaction per batch.
func BenchmarkAcceptOutbound(b *testing.B) {
	benchEngines(b, func(b *testing.B, s *store.Store) {
		for _, batch := range []int{1, 64, 512} {
			b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
				msgs := benchMessages(batch, 0)
				b.ResetTimer()
				for b.Loop() {
					for _, m := range msgs {
						m.ID = 0
					}
					if err := s.AcceptOutbound(context.Background(), msgs); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "msg/s")
			})
		}
	})
}

// BenchmarkClaimOutbound leases queued messages 64 at a time, as the SMS
// gateway does.
func BenchmarkClaimOutbound(b *testing.B) {
	benchEngines(b, func(b *testing.B, s *store.Store) {
		const limit = 64
		benchAccept(b, s, b.N*limit, 512)
		b.ResetTimer() // not the database's creation and the queue's filling
		got := 0
		for range b.N {
			ms, err := s.ClaimOutbound(context.Background(), "bench", limit, time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			got += len(ms)
		}
		b.ReportMetric(float64(got)/b.Elapsed().Seconds(), "msg/s")
	})
}

// BenchmarkReceipt records, per message, the SMSC id of its one part and
// then its delivery receipt: the two transactions every SMS costs after it
// is claimed. "parallel" runs 16 at once, like the SMPP dispatch workers.
func BenchmarkReceipt(b *testing.B) {
	benchEngines(b, func(b *testing.B, s *store.Store) {
		var next atomic.Int64
		prepare := func(b *testing.B) []*store.Outbound {
			defer b.ResetTimer()
			benchAccept(b, s, b.N, 512)
			var claimed []*store.Outbound
			for len(claimed) < b.N {
				ms, err := s.ClaimOutbound(context.Background(), "bench", 512, time.Hour)
				if err != nil {
					b.Fatal(err)
				}
				if len(ms) == 0 {
					b.Fatalf("claimed %d of %d", len(claimed), b.N)
				}
				claimed = append(claimed, ms...)
			}
			return claimed
		}
		one := func(b *testing.B, m *store.Outbound) {
			ctx := context.Background()
			n := next.Add(1)
			forms := []string{strconv.FormatInt(0x1A2B3C00+n, 16), strconv.FormatInt(0x1A2B3C00+n, 10)}
			if _, err := s.PartSubmitted(ctx, m.ID, 1, "", forms); err != nil {
				b.Fatal(err)
			}
			r, err := s.Receipt(ctx, "", forms, "DELIVRD", "")
			if err != nil || !r.Matched || !r.Final {
				b.Fatalf("Receipt = %+v, %v", r, err)
			}
		}
		b.Run("serial", func(b *testing.B) {
			ms := prepare(b)
			for i := range b.N {
				one(b, ms[i])
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
		b.Run("parallel", func(b *testing.B) {
			ms := prepare(b)
			var i atomic.Int64
			b.SetParallelism(8) // 16 goroutines on 2 cores
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					one(b, ms[i.Add(1)-1])
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	})
}

// BenchmarkPrune times a Prune among 100,000 finished messages: with
// nothing old enough ("none"), and deleting one batch of 1,000 ("batch").
// Each call on SQLite holds the writer, so every other write waits for it.
func BenchmarkPrune(b *testing.B) {
	const kept = 100000
	benchEngines(b, func(b *testing.B, s *store.Store) {
		b.Run("none", func(b *testing.B) {
			start := fillFinished(b, s, kept, 100, 8000)
			b.ResetTimer()
			for range b.N {
				if n, err := s.Prune(context.Background(), time.UnixMilli(start)); err != nil || n != 0 {
					b.Fatalf("Prune = %d, %v", n, err)
				}
			}
		})
		b.Run("batch", func(b *testing.B) {
			start := fillFinished(b, s, kept+b.N*1000, 100, 8000)
			b.ResetTimer()
			for i := range b.N {
				if n, err := s.Prune(context.Background(), time.UnixMilli(start+int64(i+1)*1000+1)); err != nil || n != 1000 {
					b.Fatalf("Prune = %d, %v", n, err)
				}
			}
		})
	})
}

// BenchmarkArchive times the latest page (50) of a user's archive of
// 50,000 messages among 200,000, and of one conversation in it (2,000).
// It reads on its own handle beside the writer (see
// TestReadsBesideWriter), but it counts the whole set once.
func BenchmarkArchive(b *testing.B) {
	benchEngines(b, func(b *testing.B, s *store.Store) {
		fillFinished(b, s, 200000, 4, 50)
		for _, q := range []struct {
			name string
			q    store.ArchiveQuery
			n    int
		}{
			{"all", store.ArchiveQuery{User: "u1@example.com", Max: 50, Backward: true}, 50000},
			{"with", store.ArchiveQuery{User: "u1@example.com", With: "+12015551011", Max: 50, Backward: true}, 2000},
		} {
			b.Run(q.name, func(b *testing.B) {
				for range b.N {
					p, err := s.Archive(context.Background(), q.q)
					if err != nil || p.Count != q.n || len(p.Items) != 50 {
						b.Fatalf("Archive = %d of %d, %v", len(p.Items), p.Count, err)
					}
				}
			})
		}
	})
}

// fillFinished replaces every message with n delivered ones, from users
// u0…u(users-1)@example.com in turn to peers numbers +12015551000 and on,
// accepted a millisecond apart from an hour ago, and returns when the
// first was (less a millisecond). The framework calls each benchmark more
// than once, hence the delete.
func fillFinished(b *testing.B, s *store.Store, n, users, peers int) (start int64) {
	b.Helper()
	if err := store.Exec(s, `DELETE FROM messages`); err != nil {
		b.Fatal(err)
	}
	start = time.Now().Add(-time.Hour).UnixMilli()
	err := store.Exec(s, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
		INSERT INTO messages (direction, route, state, user_jid, user_bare, user_number, peer_number, body, parts, created_at, updated_at)
		SELECT 'out', 'sms', 'delivered', 'u' || (i % $2) || '@example.com', 'u' || (i % $2) || '@example.com',
			'+12015550100', '+1201555' || (1000 + i % $3), 'finished', 1, CAST($4 AS BIGINT) + i, CAST($4 AS BIGINT) + i FROM n`,
		n, users, peers, start)
	if err != nil {
		b.Fatal(err)
	}
	return start
}
