package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
)

// shutdownGrace bounds how long requests in flight (a delayed fault, say)
// may hold up the exit.
const shutdownGrace = 5 * time.Second

// run serves until ctx ends and returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, getenv, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errReported):
		return 2
	case err != nil:
		fmt.Fprintln(stderr, "fake-beyondidentity:", err)
		return 2
	}
	logger := log.New(stderr, "fake-beyondidentity: ", log.LstdFlags)
	if err := serve(ctx, cfg, stdout, logger); err != nil {
		logger.Printf("error=%q", err.Error())
		return 1
	}
	return 0
}

// serve listens, announces the base URL, and serves until ctx ends.
func serve(ctx context.Context, cfg config, stdout io.Writer, logger *log.Logger) error {
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.listen, err)
	}
	base := baseURL(ln.Addr())
	srv := newHTTPServer(cfg.app, logger)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	if err := announce(cfg, base, stdout, logger); err != nil {
		_ = srv.Close()
		return err
	}
	defer removeReadyFile(cfg.readyFile)
	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	// ctx has ended: the shutdown gets a grace of its own.
	return shutdown(srv, served, logger)
}

// newHTTPServer builds the server of the fake, which logs every call.
func newHTTPServer(app fakebi.Application, logger *log.Logger) *http.Server {
	fake := fakebi.New()
	fake.AddApplication(app)
	fake.SetCallObserver(func(c fakebi.Call) {
		// Only these fields: the call also holds the secrets the client sent.
		logger.Printf("op=%s method=%s path=%q status=%d", c.Op, c.Method, c.Path, c.Status)
	})
	// The fake is the whole handler, not behind an http.ServeMux, which
	// would redirect unclean paths before the fake could answer them as the
	// real service does.
	return &http.Server{
		Handler:           fake,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          logger,
	}
}

// baseURL is the URL clients use to reach the listener. A wildcard address
// is reached through loopback.
func baseURL(addr net.Addr) string {
	host, port, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip.To4() == nil {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}

// announce tells the world the fake is up: the ready file first, so a
// script that waits for it can rely on the stdout line too.
func announce(cfg config, base string, stdout io.Writer, logger *log.Logger) error {
	if cfg.readyFile != "" {
		if err := writeFileAtomic(cfg.readyFile, base+"\n"); err != nil {
			return fmt.Errorf("writing the ready file: %w", err)
		}
	}
	fmt.Fprintf(stdout, "fake Beyond Identity listening on %s\n", base)
	app := cfg.app
	logger.Printf("issuer=%s/v1/tenants/%s/realms/%s/applications/%s client_id=%q token_format=%s scopes=%q",
		base, app.TenantID, app.RealmID, app.ID, app.ClientID, app.TokenFormat, strings.Join(app.AllowedScopes, " "))
	return nil
}

// writeFileAtomic writes content to path through a temporary file in the
// same folder and a rename, so a reader never sees a partial file.
func writeFileAtomic(path, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// removeReadyFile deletes the ready file on exit, so a stale one never
// points a script at a fake that is gone.
func removeReadyFile(path string) {
	if path != "" {
		_ = os.Remove(path)
	}
}

// shutdown stops accepting requests and waits, within shutdownGrace, for
// those in flight.
func shutdown(srv *http.Server, served <-chan error, logger *log.Logger) error {
	logger.Printf("shutting down")
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving: %w", err)
	}
	return nil
}
