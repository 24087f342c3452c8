package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/fakebi"
	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/scope"
)

// secretEnv names the environment variable holding the client secret, kept
// out of flags so that it never shows in a process listing.
const secretEnv = "FAKE_BI_CLIENT_SECRET"

// demoSecret is the client secret when secretEnv is unset. It is published
// here on purpose: it is not a secret and protects nothing.
const demoSecret = "fake-bi-demo-secret-not-a-secret"

// defaultScopes is a realistic Management API application with read access
// to the directory. The plugin needs no token scope of its own: it revokes
// and introspects with the application's client credentials.
var defaultScopes = []string{
	"applications:read", "groups:read", "identities:read", "realms:read",
	"scim:groups:read", "scim:users:read", "tenants:read",
}

// errReported is a command-line mistake the flag package has already
// explained to the user.
var errReported = errors.New("invalid command line")

// config is what the command serves, read from flags and the environment.
type config struct {
	listen    string
	app       fakebi.Application
	readyFile string
}

// parseConfig reads the flags and the environment. Every error it returns
// is a command-line mistake.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var cfg config
	var scopes, format string
	fs := flag.NewFlagSet("fake-beyondidentity", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:8300", "address to listen on; port 0 picks a free port")
	fs.StringVar(&cfg.app.TenantID, "tenant-id", "tenant-demo", "tenant id of the application")
	fs.StringVar(&cfg.app.RealmID, "realm-id", "realm-demo", "realm id of the application")
	fs.StringVar(&cfg.app.ID, "application-id", "app-demo", "application id")
	fs.StringVar(&cfg.app.ClientID, "client-id", "client-demo", "client id of the application (the secret comes from $"+secretEnv+")")
	fs.StringVar(&scopes, "scopes", strings.Join(defaultScopes, ","), "comma-separated scopes the application allows")
	fs.DurationVar(&cfg.app.ExpiresAfter, "expires-after", 2160*time.Hour, "token lifetime and upper bound of expiration_time (token_configuration.expires_after)")
	fs.StringVar(&format, "token-format", string(fakebi.SelfContained), "token format: self_contained or referential")
	fs.StringVar(&cfg.readyFile, "ready-file", "", "once listening, write the base URL to this file (atomically)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config{}, err
		}
		return config{}, errReported
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.app.ClientSecret = getenv(secretEnv)
	if cfg.app.ClientSecret == "" {
		cfg.app.ClientSecret = demoSecret
	}
	cfg.app.TokenFormat = fakebi.TokenFormat(format)
	var err error
	if cfg.app.AllowedScopes, err = parseScopes(scopes); err != nil {
		return config{}, err
	}
	return cfg, cfg.validate()
}

// parseScopes splits and checks the -scopes flag.
func parseScopes(list string) ([]string, error) {
	var scopes []string
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !scope.Valid(s) {
			return nil, fmt.Errorf("-scopes: %q is not a scope (%s)", s, scope.Syntax)
		}
		scopes = append(scopes, s)
	}
	return scopes, nil
}

// validate checks the flags that depend on each other.
func (c config) validate() error {
	switch {
	case c.app.TenantID == "" || c.app.RealmID == "" || c.app.ID == "" || c.app.ClientID == "":
		return errors.New("-tenant-id, -realm-id, -application-id and -client-id must not be empty")
	case c.app.TokenFormat != fakebi.SelfContained && c.app.TokenFormat != fakebi.Referential:
		return errors.New("-token-format must be self_contained or referential")
	case c.app.ExpiresAfter < time.Second:
		return errors.New("-expires-after must be at least 1s")
	}
	return nil
}
