// Command fake-beyondidentity serves the fake Beyond Identity of package
// fakebi on its own port, for local development, demos and end-to-end tests
// that run the plugin inside a real Vault.
//
// It holds one application, described by flags. The client secret comes
// from the environment variable FAKE_BI_CLIENT_SECRET; without it the fake
// uses a fixed demo value that is printed here and is not a secret. It
// serves plain HTTP and logs each call's op, method, path and status, never
// a secret or a token.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
