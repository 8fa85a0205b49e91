// Command prosodyconf writes a throwaway Prosody 0.12 configuration and accounts from
// testdata/prosody/prosody.cfg.lua.tmpl, the template the integration tests use
// (switchboard/internal/testenv). scripts/demo.sh runs it; it must be run from inside the module.
//
//	go run ./scripts/prosodyconf -dir demo/prosody -secret S -user alice:alice -user bob:bob
//
// It writes DIR/prosody.cfg.lua and DIR/data; hand DIR to the prosody user before starting
// `prosody --config DIR/prosody.cfg.lua -F` as that user.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"switchboard/internal/testenv"
)

type users []string

func (u *users) String() string     { return strings.Join(*u, ",") }
func (u *users) Set(v string) error { *u = append(*u, v); return nil }

func main() {
	var (
		c       testenv.ProsodyConfig
		accts   users
		dir     string
		printIt bool
	)
	flag.StringVar(&dir, "dir", "", "directory for config, pid file, log and data (required)")
	flag.StringVar(&c.Domain, "domain", "localhost", "VirtualHost")
	flag.StringVar(&c.Component, "component", "sms.localhost", "XEP-0114 component domain")
	flag.StringVar(&c.Secret, "secret", "", "component secret (required)")
	flag.StringVar(&c.Interface, "interface", "127.0.0.1", "address to listen on")
	flag.IntVar(&c.C2SPort, "c2s-port", 5222, "client port")
	flag.IntVar(&c.ComponentPort, "component-port", 5347, "component port")
	flag.BoolVar(&c.Privilege, "privilege", false, "grant the component XEP-0356 privileges (needs prosody-modules)")
	flag.StringVar(&c.LogLevel, "log-level", "info", "minimum Prosody log level")
	flag.Var(&accts, "user", "account as local:password (repeatable)")
	flag.BoolVar(&printIt, "print", false, "print the configuration instead of writing anything")
	flag.Parse()

	if err := run(c, dir, accts, printIt); err != nil {
		fmt.Fprintln(os.Stderr, "prosodyconf:", err)
		os.Exit(1)
	}
}

func run(c testenv.ProsodyConfig, dir string, accts []string, printIt bool) error {
	if dir == "" || c.Secret == "" {
		return fmt.Errorf("-dir and -secret are required")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	c.Dir = abs
	if printIt {
		text, err := testenv.RenderProsodyConfig(c)
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(text)
		return err
	}
	if err := testenv.WriteProsodyConfig(c); err != nil {
		return err
	}
	for _, a := range accts {
		local, pass, ok := strings.Cut(a, ":")
		if !ok || local == "" {
			return fmt.Errorf("-user %q: want local:password", a)
		}
		if err := testenv.WriteProsodyAccount(c, local, pass); err != nil {
			return err
		}
	}
	fmt.Println(c.ConfigFile())
	return nil
}
