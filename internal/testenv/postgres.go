package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/lib/pq" // the "postgres" database/sql driver
)

// pgShared is the one PostgreSQL server of this test binary. It starts on first use and
// stops when the last test using it has cleaned up, or, under Main, when all tests are done.
var pgShared struct {
	mu   sync.Mutex
	srv  *pgServer
	refs int  // tests holding the server
	held bool // Main is running: keep the server until m.Run returns
}

type pgServer struct {
	dir  string
	port int
	proc *process
	db   *sql.DB // maintenance connection to the "postgres" database
}

// StartPostgres returns the DSN of a fresh, empty database (CREATE DATABASE t_<random>) on a
// throwaway PostgreSQL listening on 127.0.0.1, for example
// "postgres://postgres@127.0.0.1:PORT/t_0123abcd?sslmode=disable", usable with lib/pq.
// The server is shared by the tests of the binary (see Main); the database is dropped on cleanup.
// Without PostgreSQL binaries the test is skipped, or fails when SWITCHBOARD_REQUIRE_SERVERS=1.
func StartPostgres(t testing.TB) (dsn string) {
	t.Helper()
	initdb, postgres := findPostgres(t)

	pgShared.mu.Lock()
	if pgShared.srv == nil {
		srv, err := startPostgres(t, initdb, postgres)
		if err != nil {
			pgShared.mu.Unlock()
			t.Fatal(err)
		}
		pgShared.srv = srv
	}
	pgShared.refs++
	srv := pgShared.srv
	pgShared.mu.Unlock()
	t.Cleanup(releasePostgres)

	name := srv.createDatabase(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := srv.db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("testenv: drop database %s: %v", name, err)
		}
	})
	return srv.dsn(name)
}

// Main runs the tests and then stops the servers shared by the test binary. Call it from
// TestMain so that one PostgreSQL serves every test of the package:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// Without it, the shared server stops whenever no test holds it and the next one starts a new one.
func Main(m *testing.M) {
	pgShared.mu.Lock()
	pgShared.held = true
	pgShared.mu.Unlock()

	code := m.Run()

	pgShared.mu.Lock()
	pgShared.held = false
	if pgShared.refs == 0 {
		stopSharedPostgres()
	}
	pgShared.mu.Unlock()
	os.Exit(code)
}

func releasePostgres() {
	pgShared.mu.Lock()
	defer pgShared.mu.Unlock()
	pgShared.refs--
	if pgShared.refs == 0 && !pgShared.held {
		stopSharedPostgres()
	}
}

// stopSharedPostgres stops the shared server; pgShared.mu must be held.
func stopSharedPostgres() {
	srv := pgShared.srv
	if srv == nil {
		return
	}
	pgShared.srv = nil
	srv.db.Close()
	if err := srv.proc.stop(syscall.SIGINT, 15*time.Second); err != nil { // SIGINT: fast shutdown
		fmt.Fprintln(os.Stderr, err)
	}
	os.RemoveAll(srv.dir)
}

// findPostgres returns the paths of initdb and postgres, or skips or fails t without them.
func findPostgres(t testing.TB) (initdb, postgres string) {
	t.Helper()
	return PostgresProgram(t, "initdb"), PostgresProgram(t, "postgres")
}

// PostgresProgram returns the path of one of the PostgreSQL server's
// programs (postgres, pgbench…), next to the initdb that StartPostgres
// uses, or skips or fails t without it.
func PostgresProgram(t testing.TB, name string) string {
	t.Helper()
	initdb := findBinary("/usr/lib/postgresql/*/bin/initdb", "initdb")
	if initdb == "" {
		missingBinary(t, "PostgreSQL (initdb)", "apt-get install postgresql")
	}
	p := filepath.Join(filepath.Dir(initdb), name)
	if !isExecutable(p) {
		missingBinary(t, "PostgreSQL ("+name+" next to "+initdb+")", "apt-get install postgresql")
	}
	return p
}

// createDatabase creates an empty database with a random name and returns the name.
func (s *pgServer) createDatabase(t testing.TB) string {
	t.Helper()
	name := "t_" + randomHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testenv: create database %s: %v", name, err)
	}
	return name
}

func (s *pgServer) dsn(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, database)
}

func startPostgres(t testing.TB, initdb, postgres string) (*pgServer, error) {
	t.Helper()
	begin := time.Now()
	acct, err := serviceAccount("postgres")
	if err != nil {
		return nil, err
	}
	dir, err := acct.tempDir("switchboard-pg-")
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	srv := &pgServer{dir: dir}
	fail := func(err error) (*pgServer, error) {
		logTail(t, 40, filepath.Join(dir, "postgres.log"))
		if srv.proc != nil {
			srv.proc.stop(syscall.SIGQUIT, 5*time.Second)
		}
		os.RemoveAll(dir)
		return nil, err
	}

	data := filepath.Join(dir, "data")
	cmd, err := acct.command(0, dir, filepath.Join(dir, "initdb.log"), initdb,
		"-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions")
	if err != nil {
		return fail(fmt.Errorf("testenv: %w", err))
	}
	if err := runLogged(cmd); err != nil {
		logTail(t, 40, filepath.Join(dir, "initdb.log"))
		return fail(fmt.Errorf("testenv: initdb: %w", err))
	}

	// A server whose port was taken exits at once, saying "could not bind".
	err = onFreshPorts(t, "postgres", filepath.Join(dir, "postgres.log"), "could not bind", func() error {
		if srv.port, err = FreePort(); err != nil {
			return fmt.Errorf("testenv: %w", err)
		}
		if srv.db, err = sql.Open("postgres", srv.dsn("postgres")); err != nil {
			return fmt.Errorf("testenv: %w", err)
		}
		return srv.launch(acct, postgres)
	}, func() {
		if srv.db != nil {
			srv.db.Close()
		}
	})
	if err != nil {
		return fail(err)
	}
	t.Logf("testenv: postgres on 127.0.0.1:%d (dir %s), ready in %v", srv.port, dir, time.Since(begin).Round(time.Millisecond))
	return srv, nil
}

// launch starts the server on srv.port with the data directory under srv.dir and waits
// until srv.db answers.
func (srv *pgServer) launch(acct account, postgres string) error {
	cmd, err := acct.command(syscall.SIGQUIT, srv.dir, filepath.Join(srv.dir, "postgres.log"), postgres,
		"-D", filepath.Join(srv.dir, "data"),
		"-k", srv.dir,
		"-p", strconv.Itoa(srv.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "max_connections=200",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
	)
	if err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	if srv.proc, err = startProcess(cmd); err != nil {
		return fmt.Errorf("testenv: start postgres: %w", err)
	}
	data := filepath.Join(srv.dir, "data")
	err = srv.proc.waitReady(30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return srv.db.PingContext(ctx)
	})
	if err == nil {
		// The server answering may be another one on the port this one
		// could not bind.
		var got string
		if err = srv.db.QueryRow("SELECT current_setting('data_directory')").Scan(&got); err == nil && got != data {
			err = fmt.Errorf("testenv: port %d answered by another server (data directory %s): %w", srv.port, got, errPortTaken)
		}
	}
	if err != nil {
		srv.proc.stop(syscall.SIGQUIT, 5*time.Second)
		srv.proc = nil
		return err
	}
	return nil
}

// Postgres is a PostgreSQL server of its own for one test, unlike the shared server behind
// StartPostgres: a test may stop and restart it (to see what its clients do meanwhile)
// without disturbing other tests.
type Postgres struct {
	DSN string // of a database created for the test, as StartPostgres returns

	srv      *pgServer
	acct     account
	postgres string

	mu      sync.Mutex
	running bool
}

// StartPrivatePostgres starts a throwaway PostgreSQL for t alone, creates a database in it and
// stops it on cleanup. Without PostgreSQL binaries the test is skipped, or fails when
// SWITCHBOARD_REQUIRE_SERVERS=1.
func StartPrivatePostgres(t testing.TB) *Postgres {
	t.Helper()
	initdb, postgres := findPostgres(t)
	acct, err := serviceAccount("postgres")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := startPostgres(t, initdb, postgres)
	if err != nil {
		t.Fatal(err)
	}
	p := &Postgres{srv: srv, acct: acct, postgres: postgres, running: true}
	t.Cleanup(func() {
		p.Stop(t)
		srv.db.Close()
		os.RemoveAll(srv.dir)
	})
	name := srv.createDatabase(t)
	p.DSN = srv.dsn(name)
	return p
}

// Stop shuts the server down the way pg_ctl stop -m fast does (SIGINT: clients are
// disconnected, transactions in progress roll back) and waits for it to exit. Its port
// then refuses connections until Start.
func (p *Postgres) Stop(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		return
	}
	p.running = false
	begin := time.Now()
	if err := p.srv.proc.stop(syscall.SIGINT, 15*time.Second); err != nil {
		t.Error(err)
	}
	t.Logf("testenv: postgres on 127.0.0.1:%d stopped in %v", p.srv.port, time.Since(begin).Round(time.Millisecond))
}

// Start starts a stopped server again on the same port with the same data.
func (p *Postgres) Start(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running {
		return
	}
	begin := time.Now()
	if err := p.srv.launch(p.acct, p.postgres); err != nil {
		logTail(t, 40, filepath.Join(p.srv.dir, "postgres.log"))
		t.Fatal(err)
	}
	p.running = true
	t.Logf("testenv: postgres on 127.0.0.1:%d started again in %v", p.srv.port, time.Since(begin).Round(time.Millisecond))
}

// Restart is Stop then Start.
func (p *Postgres) Restart(t testing.TB) {
	t.Helper()
	p.Stop(t)
	p.Start(t)
}

func runLogged(cmd *exec.Cmd) error {
	p, err := startProcess(cmd)
	if err != nil {
		return err
	}
	<-p.exited
	return p.err
}
