package main

import (
	"context"
	"crypto/tls"
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

// adminPrefix is where the admin API hangs, apart from every Beyond Identity
// path.
const adminPrefix = "/_fake/"

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
	tlsConfig, err := loadTLS(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.listen, err)
	}
	base := baseURL(ln.Addr(), tlsConfig != nil)
	srv := newHTTPServer(cfg.app, tlsConfig, logger)
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
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
	return shutdown(srv, served, logger)
}

// newHTTPServer builds the server: the fake, with the admin API beside it.
func newHTTPServer(app fakebi.Application, tlsConfig *tls.Config, logger *log.Logger) *http.Server {
	fake := fakebi.New()
	fake.AddApplication(app)
	fake.SetCallObserver(func(c fakebi.Call) {
		// Only these fields: the call also holds the secrets the client sent.
		logger.Printf("op=%s method=%s path=%q status=%d", c.Op, c.Method, c.Path, c.Status)
	})
	admin := logAdmin(fake.AdminHandler(), logger)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Dispatched by hand rather than by http.ServeMux, which would
		// redirect unclean paths before the fake could answer them as the
		// real service does.
		if strings.HasPrefix(r.URL.Path, adminPrefix) {
			admin.ServeHTTP(w, r)
			return
		}
		fake.ServeHTTP(w, r)
	})
	return &http.Server{
		Handler:           handler,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          logger,
	}
}

// loadTLS reads the certificate and key, when HTTPS is asked for, before
// anything listens: a bad file should fail the start, not the first request.
func loadTLS(cfg config) (*tls.Config, error) {
	if cfg.tlsCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("loading the TLS certificate and key: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// baseURL is the URL clients use to reach the listener. A wildcard address
// is reached through loopback.
func baseURL(addr net.Addr, https bool) string {
	host, port, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip.To4() == nil {
			host = "::1"
		}
	}
	scheme := "http"
	if https {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
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

// logAdmin logs admin API requests the way the fake's calls are logged.
func logAdmin(next http.Handler, logger *log.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		logger.Printf("op=admin method=%s path=%q status=%d", r.Method, r.URL.Path, rec.status)
	})
}

// statusWriter remembers the status of an admin answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

// WriteHeader remembers and sends the status.
func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}
