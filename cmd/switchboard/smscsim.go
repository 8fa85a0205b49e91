package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"switchboard/smsgw/smsc"
)

func cmdSMSCSim(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("smsc-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		smppAddr = fs.String("smpp", "127.0.0.1:2775", "SMPP listen address")
		httpAddr = fs.String("http", "127.0.0.1:8025", "HTTP listen address (page, POST /mo, GET /messages); empty disables")
		systemID = fs.String("system-id", "", "accept binds only with this system_id (empty accepts any)")
		password = fs.String("password", "", "password for -system-id")
		outcome  = fs.String("outcome", "delivered", "delivery receipt outcome: delivered, failed, rejected, expired, none")
		delay    = fs.Duration("receipt-delay", time.Second, "wait before sending a receipt")
		mode     = fs.String("receipt-mode", "text", "receipt form: text, tlv, data_sm")
		idFormat = fs.String("id-format", "hex", "message ids in submit_sm_resp: hex or decimal")
		level    = fs.String("log-level", "info", "log level")
		hosts    = fs.String("http-host", "", "comma-separated host names the page is reached by, besides IP addresses and localhost (others get 421)")
	)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log := newLogger(LogConfig{Level: *level, Format: "console"}, stderr)
	cfg := smsc.Config{
		SystemID:     *systemID,
		Password:     *password,
		Outcome:      smsc.Outcome(*outcome),
		ReceiptDelay: *delay,
		ReceiptMode:  smsc.ReceiptMode(*mode),
		IDFormat:     *idFormat,
		Logger:       log,
	}
	if err := cfg.Validate(); err != nil {
		return usageError{fmt.Sprintf("smsc-sim: %v", err)}
	}
	srv := smsc.NewServer(cfg)
	ln, err := net.Listen("tcp", *smppAddr)
	if err != nil {
		return err
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	var hs *http.Server
	if *httpAddr != "" {
		hln, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			srv.Close()
			return err
		}
		var names []string
		for n := range strings.SplitSeq(*hosts, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
		hs = &http.Server{Handler: srv.HTTPHandler(names...), ReadHeaderTimeout: 5 * time.Second}
		go func() { errc <- hs.Serve(hln) }()
		log.Info().Str("http", "http://"+hln.Addr().String()+"/").Msg("simulator page")
	}
	log.Info().Str("smpp", ln.Addr().String()).Str("outcome", *outcome).Msg("SMSC simulator listening")
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	if hs != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		_ = hs.Shutdown(sctx)
		cancel()
	}
	srv.Close()
	if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
