// Command bi-introspect asks Beyond Identity whether access tokens are still
// active (RFC 7662 introspection), with the client credentials of the
// application that issued them. It reads one token per line on standard
// input and prints, per token, its id, whether it is active and, for an
// active one, its custom claims (bi_custom), never the token itself. The demo
// uses it to show that a revoked lease's token is dead at Beyond Identity;
// the README uses it to show who asked for a token.
//
// Each flag defaults to a BEYOND_IDENTITY_* variable, the ones the README's
// config command reads and make dev's banner exports, so that in that shell
//
//	bi-introspect < token
//
// asks the fake Beyond Identity make dev runs. The client secret is read
// from BEYOND_IDENTITY_CLIENT_SECRET only, never from a flag, so that it
// stays out of process listings.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

// secretEnv names the variable holding the client secret.
const secretEnv = "BEYOND_IDENTITY_CLIENT_SECRET"

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errReported) {
			fmt.Fprintln(os.Stderr, "bi-introspect:", err)
		}
		os.Exit(1)
	}
}

// errReported is a command-line mistake the flag package has already
// explained, with the usage.
var errReported = errors.New("invalid command line")

// stringFlag is a flag whose default comes from an environment variable.
type stringFlag struct {
	target *string
	name   string
	env    string
	usage  string
}

func run(args []string, getenv func(string) string, in io.Reader, out, stderr io.Writer) error {
	cfg := biclient.Config{Timeout: 30 * time.Second, UserAgent: "bi-introspect"}
	var region string
	flags := flag.NewFlagSet("bi-introspect", flag.ContinueOnError)
	var usage bytes.Buffer
	flags.SetOutput(&usage)
	flags.Usage = func() {
		fmt.Fprintf(&usage, "Usage: bi-introspect [flags] < tokens\n\n"+
			"Asks Beyond Identity whether each token on standard input (one per line) is active, and\n"+
			"prints its id, its end and its custom claims (bi_custom); never the token. The client\n"+
			"secret comes from $%s. Each flag defaults to the variable named\n"+
			"beside it, as make dev's banner exports them.\n\nFlags:\n", secretEnv)
		flags.PrintDefaults()
	}
	for _, f := range []stringFlag{
		{&cfg.TenantID, "tenant-id", "BEYOND_IDENTITY_TENANT_ID", "tenant id"},
		{&cfg.RealmID, "realm-id", "BEYOND_IDENTITY_REALM_ID", "realm id"},
		{&cfg.ApplicationID, "application-id", "BEYOND_IDENTITY_APPLICATION_ID", "application id"},
		{&cfg.ClientID, "client-id", "BEYOND_IDENTITY_CLIENT_ID", "client id"},
		{&region, "region", "BEYOND_IDENTITY_REGION", "Beyond Identity region: " + strings.Join(biclient.Regions(), ", ") + " (default " + biclient.DefaultRegion + ")"},
		{&cfg.AuthURL, "auth-url", "BEYOND_IDENTITY_AUTH_URL", "auth host base URL, overriding -region (make dev: the fake Beyond Identity)"},
	} {
		flags.StringVar(f.target, f.name, getenv(f.env), f.usage+" ($"+f.env+")")
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			// Asked for: the usage is the answer, on standard output.
			_, werr := out.Write(usage.Bytes())
			return werr
		}
		_, _ = stderr.Write(usage.Bytes())
		return errReported
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: the tokens come on standard input", flags.Args())
	}
	if err := requireIDs(cfg); err != nil {
		return err
	}
	if cfg.AuthURL == "" {
		if region == "" {
			region = biclient.DefaultRegion
		}
		url, err := biclient.AuthURLForRegion(region)
		if err != nil {
			return err
		}
		cfg.AuthURL = url
	}
	cfg.ClientSecret = biclient.NewSecret(getenv(secretEnv))
	if cfg.ClientSecret.IsZero() {
		return errors.New("set " + secretEnv)
	}
	client, err := biclient.New(cfg)
	if err != nil {
		return err
	}
	scanner := bufio.NewScanner(in)
	scanner.Buffer(make([]byte, 64<<10), 64<<10)
	for scanner.Scan() {
		token := strings.TrimSpace(scanner.Text())
		if token == "" {
			continue
		}
		if err := report(client, biclient.NewSecret(token), out); err != nil {
			return err
		}
	}
	return scanner.Err()
}

// requireIDs names every id that neither a flag nor its variable gave.
func requireIDs(cfg biclient.Config) error {
	var missing []string
	for _, id := range []struct{ value, flag, env string }{
		{cfg.TenantID, "-tenant-id", "BEYOND_IDENTITY_TENANT_ID"},
		{cfg.RealmID, "-realm-id", "BEYOND_IDENTITY_REALM_ID"},
		{cfg.ApplicationID, "-application-id", "BEYOND_IDENTITY_APPLICATION_ID"},
		{cfg.ClientID, "-client-id", "BEYOND_IDENTITY_CLIENT_ID"},
	} {
		if id.value == "" {
			missing = append(missing, id.flag+" (or $"+id.env+")")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("set %s", strings.Join(missing, ", "))
	}
	return nil
}

// report prints one token's state by its id or, without one, its last
// characters.
func report(client *biclient.Client, token biclient.Secret, out io.Writer) error {
	info, err := client.Introspect(context.Background(), token)
	if err != nil {
		return err
	}
	name := "token ..." + suffix(token.Reveal())
	if claims, ok := biclient.ReadClaims(token.Reveal()); ok && claims.ID != "" {
		name = "token " + claims.ID
	}
	if !info.Active {
		_, err = fmt.Fprintf(out, "%s: active=false (revoked, expired or unknown at Beyond Identity)\n", name)
		return err
	}
	custom := ""
	if len(info.Custom) > 0 {
		// The custom claims it was minted with: who asked for it, with a
		// role's claims_template. Claims, never a secret.
		custom = ", bi_custom " + string(info.Custom)
	}
	_, err = fmt.Fprintf(out, "%s: active=true, expires %s%s\n", name, info.ExpiresAt.Format(time.RFC3339), custom)
	return err
}

func suffix(token string) string {
	if len(token) <= 4 {
		return ""
	}
	return token[len(token)-4:]
}
