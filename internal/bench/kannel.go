package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"switchboard/smsgw/smsc"
)

// KannelOptions configure a Kannel run: bearerbox and smsbox against the
// same sink, messages injected through smsbox's HTTP sendsms, each asking
// for a delivery receipt (dlr-mask 1) reported to a dlr-url.
type KannelOptions struct {
	N          int
	MaxPending int // bearerbox's max-pending-submits
	Clients    int // concurrent HTTP sendsms requests; default 64
	Log        io.Writer
	Timeout    time.Duration
}

// KannelResult is what a Kannel run measured.
type KannelResult struct {
	N, MaxPending      int
	Submitted, DLRs    int
	Elapsed            time.Duration // first sendsms → last submit_sm at the sink
	MsgsPerSec         float64
	CPUPer1k           float64 // bearerbox + smsbox, seconds per 1,000 messages
	LoadStart, LoadEnd float64
}

// RunKannel runs Kannel's bearerbox and smsbox (Debian package kannel,
// installed by scripts/bench-deps.sh) with a file store.
func RunKannel(ctx context.Context, o KannelOptions) (*KannelResult, error) {
	if o.Clients <= 0 {
		o.Clients = 64
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Timeout <= 0 {
		o.Timeout = 2*time.Minute + time.Duration(o.N)*5*time.Millisecond
	}
	bearerbox, err1 := exec.LookPath("bearerbox")
	smsbox, err2 := exec.LookPath("smsbox")
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("bench: kannel is not installed (scripts/bench-deps.sh): %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "switchboard-kannel-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	rec := newRecorder(o.N, 0)
	sink, sinkAddr, closeSink, err := startSink(rec, smsc.OutcomeDelivered, 0)
	if err != nil {
		return nil, err
	}
	defer closeSink()

	var dlrs atomic.Int64
	dln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	dsrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dlrs.Add(1)
		rec.mu.Lock()
		rec.progressed()
		rec.mu.Unlock()
	})}
	dlrServed := make(chan struct{})
	go func() {
		defer close(dlrServed)
		dsrv.Serve(dln)
	}()
	defer func() { dsrv.Close(); <-dlrServed }()

	ports := make([]int, 3)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	_, sinkPort, _ := net.SplitHostPort(sinkAddr)
	conf := fmt.Sprintf(`group = core
admin-port = %d
admin-password = bench
admin-interface = 127.0.0.1
smsbox-port = %d
smsbox-interface = 127.0.0.1
box-allow-ip = 127.0.0.1
log-file = %q
log-level = 4
store-type = file
store-location = %q
dlr-storage = internal

group = smsc
smsc = smpp
smsc-id = sink
host = 127.0.0.1
port = %s
transceiver-mode = true
smsc-username = bench
smsc-password = bench
system-type = ""
max-pending-submits = %d
msg-id-type = 0x03
source-addr-ton = 1
source-addr-npi = 1
dest-addr-ton = 1
dest-addr-npi = 1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = %d
sendsms-port = %d
sendsms-interface = 127.0.0.1
log-file = %q
log-level = 4

group = sendsms-user
username = bench
password = bench
max-messages = 1
`, ports[0], ports[1], filepath.Join(dir, "bearerbox.log"), filepath.Join(dir, "kannel.store"),
		sinkPort, o.MaxPending, ports[1], ports[2], filepath.Join(dir, "smsbox.log"))
	confPath := filepath.Join(dir, "kannel.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	start := func(bin string) (*child, error) {
		out, err := os.Create(filepath.Join(dir, filepath.Base(bin)+".out"))
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, confPath)
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		return startChild(cmd, out)
	}
	bb, err := start(bearerbox)
	if err != nil {
		return nil, err
	}
	var sb *child
	defer func() {
		if sb != nil {
			sb.stop(10 * time.Second)
		}
		bb.stop(10 * time.Second)
	}()
	for sink.Bound() == 0 {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("bench: bearerbox did not bind to the sink: %s", tail(filepath.Join(dir, "bearerbox.log"), 3))
		case <-bb.done:
			return nil, fmt.Errorf("bench: bearerbox exited: %s", tail(filepath.Join(dir, "bearerbox.log"), 3))
		case <-time.After(20 * time.Millisecond):
		}
	}
	if sb, err = start(smsbox); err != nil {
		return nil, err
	}
	sendURL := fmt.Sprintf("http://127.0.0.1:%d/cgi-bin/sendsms", ports[2])
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.Clients}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	for {
		resp, err := client.Get(sendURL)
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("bench: smsbox did not come up: %s", tail(filepath.Join(dir, "smsbox.log"), 3))
		case <-sb.done:
			return nil, fmt.Errorf("bench: smsbox exited: %s", tail(filepath.Join(dir, "smsbox.log"), 3))
		case <-time.After(20 * time.Millisecond):
		}
	}
	fmt.Fprintf(o.Log, "bench: kannel, %d messages, max-pending-submits %d, file store, %d HTTP clients\n", o.N, o.MaxPending, o.Clients)
	dlrURL := fmt.Sprintf("http://%s/dlr?t=%%d", dln.Addr())
	res := &KannelResult{N: o.N, MaxPending: o.MaxPending, LoadStart: loadAvg()}
	pids := []int{bb.cmd.Process.Pid, sb.cmd.Process.Pid}
	cpu0 := cpuTotal(pids...)

	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	for range o.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= o.N || ctx.Err() != nil {
					return
				}
				q := url.Values{"username": {"bench"}, "password": {"bench"}, "from": {userNumber(i % 100)[1:]},
					"to": {phoneNumber(i)[1:]}, "text": {body(i)}, "dlr-mask": {"1"}, "dlr-url": {dlrURL}}
				rec.mu.Lock()
				rec.written[i] = rec.now()
				rec.mu.Unlock()
				resp, err := client.Get(sendURL + "?" + q.Encode())
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode/100 != 2 {
						err = fmt.Errorf("sendsms: %s", resp.Status)
					}
				}
				if err != nil {
					select {
					case errc <- err:
					default:
					}
					cancel()
					return
				}
			}
		}()
	}
	waitErr := rec.wait(ctx, func() bool { return rec.nSubmit >= o.N && int(dlrs.Load()) >= o.N })
	wg.Wait()
	select {
	case err := <-errc:
		return nil, fmt.Errorf("bench: kannel: %w", err)
	default:
	}
	cpu1 := cpuTotal(pids...)
	res.LoadEnd = loadAvg()
	rec.mu.Lock()
	res.Submitted = rec.nSubmit
	var first, last int64 = -1, 0
	for i := range o.N {
		if rec.written[i] != 0 && (first < 0 || rec.written[i] < first) {
			first = rec.written[i]
		}
		last = max(last, rec.submit[i])
	}
	rec.mu.Unlock()
	res.DLRs = int(dlrs.Load())
	res.Elapsed = time.Duration(last - first)
	if res.Elapsed > 0 {
		res.MsgsPerSec = float64(res.Submitted) / res.Elapsed.Seconds()
	}
	res.CPUPer1k = (cpu1 - cpu0).Seconds() / float64(o.N) * 1000
	if waitErr != nil {
		fmt.Fprintf(o.Log, "bench: kannel: %v (%d submitted, %d receipts)\n", waitErr, res.Submitted, res.DLRs)
	}
	return res, nil
}

// PrintKannel prints Kannel's runs beside Switchboard's, with ratios
// (Switchboard ÷ Kannel for msg/s, Kannel ÷ Switchboard for CPU).
func PrintKannel(w io.Writer, kr []*KannelResult, rs []*Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(tw, "run\t msg/s\t CPU s / 1,000\t submitted / receipts\t load before → after\t")
	for _, r := range rs {
		fmt.Fprintf(tw, "switchboard %s/%s (smpp window %d)\t %.0f\t %.3f\t %d / %d\t %.2f → %.2f\t\n",
			r.Mode, r.Store, r.SMPPWindow, r.MsgsPerSec, r.CPUPer1k, r.Submitted, r.Receipts, r.LoadStart, r.LoadEnd)
	}
	for _, k := range kr {
		fmt.Fprintf(tw, "kannel 1.4.5 file store (max-pending-submits %d)\t %.0f\t %.3f\t %d / %d\t %.2f → %.2f\t\n",
			k.MaxPending, k.MsgsPerSec, k.CPUPer1k, k.Submitted, k.DLRs, k.LoadStart, k.LoadEnd)
	}
	tw.Flush()
	for _, r := range rs {
		for _, k := range kr {
			if k.MsgsPerSec > 0 && r.CPUPer1k > 0 {
				fmt.Fprintf(w, "switchboard %s/%s ÷ kannel max-pending-submits %d: msg/s %.2f×, CPU per message %.2f×\n",
					r.Mode, r.Store, k.MaxPending, r.MsgsPerSec/k.MsgsPerSec, r.CPUPer1k/k.CPUPer1k)
			}
		}
	}
}
