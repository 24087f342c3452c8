// Command bi-introspect asks Beyond Identity whether access tokens are still
// active (RFC 7662 introspection), with the client credentials of the
// application that issued them. It reads one token per line on standard
// input and prints, per token, its id, whether it is active and, for an
// active one, its custom claims (bi_custom), never the token itself. The demo uses it to show that a revoked lease's token is
// dead at Beyond Identity.
//
//	BEYOND_IDENTITY_CLIENT_SECRET=... bi-introspect -tenant-id T -realm-id R \
//	    -application-id A -client-id C [-region us | -auth-url URL] < tokens
package main

import (
	"bufio"
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

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bi-introspect:", err)
		os.Exit(1)
	}
}

func run(args []string, in io.Reader, out io.Writer) error {
	flags := flag.NewFlagSet("bi-introspect", flag.ContinueOnError)
	cfg := biclient.Config{Timeout: 30 * time.Second, UserAgent: "bi-introspect"}
	region := flags.String("region", biclient.DefaultRegion, "Beyond Identity region: "+strings.Join(biclient.Regions(), ", "))
	flags.StringVar(&cfg.AuthURL, "auth-url", "", "auth host base URL, overriding -region")
	flags.StringVar(&cfg.TenantID, "tenant-id", "", "tenant id")
	flags.StringVar(&cfg.RealmID, "realm-id", "", "realm id")
	flags.StringVar(&cfg.ApplicationID, "application-id", "", "application id")
	flags.StringVar(&cfg.ClientID, "client-id", "", "client id (the secret comes from $BEYOND_IDENTITY_CLIENT_SECRET)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if cfg.AuthURL == "" {
		url, err := biclient.AuthURLForRegion(*region)
		if err != nil {
			return err
		}
		cfg.AuthURL = url
	}
	cfg.ClientSecret = biclient.NewSecret(os.Getenv("BEYOND_IDENTITY_CLIENT_SECRET"))
	if cfg.ClientSecret.IsZero() {
		return errors.New("set BEYOND_IDENTITY_CLIENT_SECRET")
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
