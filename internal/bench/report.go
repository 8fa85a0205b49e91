package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }

func pct(p Percentiles) string {
	if p.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%s / %s / %s / %s", ms(p.P50), ms(p.P90), ms(p.P99), ms(p.Max))
}

// Print writes a table of results, one column per run.
func Print(w io.Writer, rs []*Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	row := func(name string, f func(r *Result) string) {
		fmt.Fprintf(tw, "%s\t", name)
		for _, r := range rs {
			fmt.Fprintf(tw, " %s\t", f(r))
		}
		fmt.Fprintln(tw)
	}
	row("run", func(r *Result) string {
		if r.C2STLS {
			return r.Mode + " (c2s TLS)/" + r.Store
		}
		return r.Mode + "/" + r.Store
	})
	row("rate (window, smpp window)", func(r *Result) string {
		s := fmt.Sprintf("%s (%d, %d)", rateText(r.Rate), r.Window, r.SMPPWindow)
		if r.ReceiptDelay > 0 {
			s += ", receipts after " + r.ReceiptDelay.String()
		}
		if r.Relay {
			s += ", relayed to users (submit_sm: the relay reaching its recipient)"
		}
		return s
	})
	row("messages submitted / receipts / errors", func(r *Result) string {
		return fmt.Sprintf("%d / %d / %d", r.Submitted, r.Receipts, r.Errors)
	})
	row("msg/s (whole run)", func(r *Result) string { return fmt.Sprintf("%.0f", r.MsgsPerSec) })
	row("msg/s (steady, 10–90 %)", func(r *Result) string { return fmt.Sprintf("%.0f", r.Steady) })
	row("XMPP→submit_sm ms p50/p90/p99/max", func(r *Result) string { return pct(r.ToSubmit) })
	row("receipt→client ms p50/p90/p99/max", func(r *Result) string { return pct(r.ReceiptToClient) })
	row("phone→client ms p50/p90/p99/max", func(r *Result) string {
		return fmt.Sprintf("%s (%d/%d)", pct(r.PhoneToClient), r.MOGot, r.MO)
	})
	row("phones' msg/s (rate) / Switchboard CPU s per 1,000", func(r *Result) string {
		if r.MOGot == 0 {
			return "-"
		}
		s := fmt.Sprintf("%.0f (%s) / %.3f", r.MOPerSec, rateText(r.MORate), r.MOCPUPer1k)
		if r.MOParts > 1 {
			s = fmt.Sprintf("%s, %d parts each", s, r.MOParts)
		}
		return s
	})
	row("Switchboard CPU s / 1,000 msgs", func(r *Result) string { return fmt.Sprintf("%.3f", r.CPUPer1k) })
	row("Switchboard disk KB / write calls per msg", func(r *Result) string {
		return fmt.Sprintf("%.1f / %.1f", r.DiskPerMsg/1024, r.WriteCallsPerMsg)
	})
	row("Switchboard group commits per 1,000 msgs (writes each)", func(r *Result) string {
		if r.CommitsPer1k == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f (%.1f)", r.CommitsPer1k, r.WritesPerCommit)
	})
	row("Switchboard heap allocations per msg (KB)", func(r *Result) string {
		if r.AllocsPerMsg == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f (%.1f)", r.AllocsPerMsg, r.AllocBytesPerMsg/1024)
	})
	row("Switchboard peak RSS MB", func(r *Result) string { return fmt.Sprintf("%.1f", float64(r.PeakRSS)/(1<<20)) })
	for _, name := range []string{"prosody", "postgres", "bench"} {
		has := false
		for _, r := range rs {
			_, ok := r.Others[name]
			has = has || ok
		}
		if has {
			label := name
			switch name {
			case "postgres":
				label = "PostgreSQL server (all its processes)"
			case "bench":
				label = "bench (its XMPP side, SMSC sink)"
			}
			row(label+" CPU s / 1,000 msgs", func(r *Result) string {
				if v, ok := r.Others[name]; ok {
					return fmt.Sprintf("%.3f", v)
				}
				return "-"
			})
		}
	}
	row("load average (1 min) before → after", func(r *Result) string { return fmt.Sprintf("%.2f → %.2f", r.LoadStart, r.LoadEnd) })
	tw.Flush()
	for _, r := range rs {
		if r.LastError != "" {
			fmt.Fprintf(w, "%s/%s: last error: %s\n", r.Mode, r.Store, r.LastError)
		}
		if r.DupSubmits > 0 {
			fmt.Fprintf(w, "%s/%s: %d submit_sm repeated (at-least-once resubmissions)\n", r.Mode, r.Store, r.DupSubmits)
		}
	}
}
