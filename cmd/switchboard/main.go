// Command switchboard is an XMPP component (XEP-0114) that gives every phone
// number a JID and carries messages between XMPP users and phones over SMPP.
//
//	switchboard serve -config FILE          run the gateway
//	switchboard check -config FILE          test the configuration and every connection
//	switchboard numbers assign JID NUMBER   bind a number to a user (operator)
//	switchboard numbers list | release NUMBER
//	switchboard smsc-sim                    run the SMSC simulator
//	switchboard version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"switchboard/store"
)

// exitUsage is the exit status for a bad command line or configuration.
const exitUsage = 2

const usage = `usage: switchboard <command> [flags]

commands:
  serve -config FILE                      run the gateway
  check -config FILE                      test the configuration, store, XMPP server and SMSC
  numbers -config FILE assign JID NUMBER  bind NUMBER to JID without verification
  numbers -config FILE list               list bound numbers
  numbers -config FILE release NUMBER     remove a number's binding
  smsc-sim [flags]                        run the SMSC simulator (see smsc-sim -h)
  bench [flags]                           measure throughput, latency and cost (see bench -h, BENCHMARKS.md)
  version                                 print the version
`

func main() {
	os.Exit(mainErr(os.Args[1:], os.Stdout, os.Stderr))
}

func mainErr(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], stderr)
	case "check":
		err = cmdCheck(ctx, args[1:], stdout, stderr)
	case "numbers":
		err = cmdNumbers(ctx, args[1:], stdout)
	case "smsc-sim":
		err = cmdSMSCSim(ctx, args[1:], stderr)
	case "bench":
		err = cmdBench(ctx, args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintf(stdout, "switchboard %s (SQLite: %s)\n", version(), store.SQLiteLibrary)
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "switchboard: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0 // -h: the flag package printed the usage
	}
	fmt.Fprintln(stderr, "switchboard:", err)
	var ue usageError
	var ce configError
	if errors.As(err, &ue) || errors.As(err, &ce) {
		return exitUsage
	}
	return 1
}

// usageError is a bad command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// parseFlags parses a command's flags: a bad flag is a usageError, -h
// (after the flag package printed the usage) flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	return nil
}
