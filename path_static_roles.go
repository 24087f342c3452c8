package beyondidentity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/internal/biclient"
)

func (b *backend) pathStaticRoles() []*framework.Path {
	name := map[string]*framework.FieldSchema{
		"name": {Type: framework.TypeString, Description: "Name of the static role, at most 128 characters. Case-sensitive.", Required: true},
	}
	return []*framework.Path{
		{
			Pattern:      staticRolePrefix + "?$",
			DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: "beyond-identity", OperationSuffix: "static-roles"},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: &framework.PathOperation{Callback: b.pathStaticRoleList, Summary: "List the static roles."},
			},
			HelpSynopsis:    staticRoleListHelpSynopsis,
			HelpDescription: staticRoleListHelpDescription,
		},
		{
			Pattern:        staticRolePrefix + framework.GenericNameRegex("name"),
			DisplayAttrs:   &framework.DisplayAttributes{OperationPrefix: "beyond-identity", OperationSuffix: "static-role"},
			Fields:         staticRoleFields(name),
			ExistenceCheck: b.staticRoleExists,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: &framework.PathOperation{
					Callback:  b.pathStaticRoleRead,
					Summary:   "Read a static role and the state of its rotation; never its token.",
					Responses: map[int][]framework.Response{http.StatusOK: {{Description: "OK", Fields: staticRoleResponseFields}}},
				},
				logical.CreateOperation: forwarded(b.pathStaticRoleWrite, "Create a static role; its first token is minted at once."),
				logical.UpdateOperation: forwarded(b.pathStaticRoleWrite, "Update a static role; a change of scopes or custom_claims rotates its token at once."),
				logical.DeleteOperation: forwarded(b.pathStaticRoleDelete, "Delete a static role and revoke its tokens."),
			},
			HelpSynopsis:    staticRoleHelpSynopsis,
			HelpDescription: staticRoleHelpDescription,
		},
	}
}

func staticRoleFields(name map[string]*framework.FieldSchema) map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"name": name["name"],
		"scopes": {
			Type: framework.TypeCommaStringSlice,
			Description: "Management API scopes the role's token carries, as a list or comma-separated. Required. " +
				"Each is colon-separated segments of a-z, 0-9 and '-', at most 128 characters; at most 64 scopes.",
		},
		"rotation_period": {
			Type: framework.TypeDurationSecond,
			Description: "How often the token is replaced, without any request. At least 10s; with grace_period, at most " +
				"7776000s (90 days), the longest a Beyond Identity token lives. Mutually exclusive with rotation_schedule: " +
				"writing one replaces the other. Default: 24h unless rotation_schedule is set.",
		},
		"rotation_schedule": {
			Type: framework.TypeString,
			Description: "Instead of rotation_period: a standard five-field cron expression (minute hour day-of-month month " +
				"day-of-week), in UTC, at whose times the token is replaced, e.g. \"0 2 * * 1-5\" (02:00 UTC on weekdays), " +
				"or one of @monthly, @weekly, @daily, @hourly (from the vault CLI, write '\\@daily', quoted: a bare @ names a file). " +
				"@every is refused: use rotation_period. A scheduled token lives until the next scheduled time, plus " +
				"rotation_window, plus grace_period. Its shortest interval between two times, over a whole cycle of it (a year; " +
				"four years when it names 29 February; 28 years when it names days of the week), plus rotation_window and " +
				"grace_period, must be at most 7776000s (so @yearly is refused). Mutually exclusive with rotation_period. " +
				"Empty clears it (back to a 24h period).",
		},
		"rotation_window": {
			Type: framework.TypeDurationSecond,
			Description: "Only with rotation_schedule: how long after a scheduled time a rotation may still run, retries " +
				"included; at least 1h, and at most the shortest interval between two scheduled times over a whole cycle of " +
				"the schedule, since every token lives that much longer. Past it the role waits for the next scheduled time, unless its " +
				"current token would end first: then it rotates at once and last_rotation_error says the window was missed. " +
				"Default (or 0): no window, a late rotation runs as soon as it can.",
		},
		"grace_period": {
			Type: framework.TypeDurationSecond,
			Description: "How long a replaced token keeps working, so that a consumer re-reading on schedule never holds " +
				"a dead one; then it is revoked. Each token is minted to live until the next rotation is due, plus " +
				"rotation_window, plus grace_period: rotation_period (or the schedule's shortest interval) plus rotation_window " +
				"plus grace_period must be at most 7776000s, and the refusal says which to shorten. At most rotation_period " +
				"(or the schedule's shortest interval). Default (or 0): a tenth of rotation_period, or of the schedule's " +
				"shortest interval over a whole cycle of it, and at least 10s.",
		},
		"custom_claims": {
			Type:        framework.TypeMap,
			Description: "JSON object (or a string holding one) sent as Beyond Identity custom_claims; at most 8 KiB of JSON, nested at most 32 levels. " + claimsNumbersHelp + " Default: none.",
		},
		"description": {Type: framework.TypeString, Description: "Free text describing the role, at most 1024 characters. Default: empty."},
	}
}

var staticRoleResponseFields = map[string]*framework.FieldSchema{
	"scopes":              {Type: framework.TypeCommaStringSlice, Description: "Scopes of the role's token, sorted."},
	"rotation_period":     {Type: framework.TypeDurationSecond, Description: "How often the token is replaced, in seconds (roles with a period)."},
	"rotation_schedule":   {Type: framework.TypeString, Description: "The cron expression (UTC) of the rotations (roles with a schedule)."},
	"rotation_window":     {Type: framework.TypeDurationSecond, Description: "How long after a scheduled time a rotation may still run, in whole seconds (the vault CLI shows the number as is); 0: no window (roles with a schedule)."},
	"grace_period":        {Type: framework.TypeDurationSecond, Description: "How long a replaced token keeps working, in seconds."},
	"custom_claims":       {Type: framework.TypeMap, Description: "Custom claims sent with each mint."},
	"description":         {Type: framework.TypeString, Description: "Free text."},
	"last_vault_rotation": {Type: framework.TypeString, Description: "RFC 3339 time the current token was minted."},
	"next_vault_rotation": {Type: framework.TypeString, Description: "RFC 3339 time of the next rotation, or of the next attempt while rotations fail."},
	"token_id":            {Type: framework.TypeString, Description: "The current token's jti."},
	"last_rotation_error": {Type: framework.TypeString, Description: "Why the last rotation failed; empty when it succeeded."},
}

func (b *backend) staticRoleExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	r, err := readStaticRole(ctx, req.Storage, d.Get("name").(string))
	return r != nil, err
}

func (b *backend) pathStaticRoleList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, staticRolePrefix)
	if err != nil {
		return nil, fmt.Errorf("listing static roles: %w", err)
	}
	return logical.ListResponse(names), nil
}

func (b *backend) pathStaticRoleRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	r, err := readStaticRole(ctx, req.Storage, d.Get("name").(string))
	if err != nil || r == nil {
		return nil, err
	}
	return &logical.Response{Data: r.operatorView()}, nil
}

// operatorView is what reading a static role shows: never its token.
func (r *staticRole) operatorView() map[string]any {
	data := map[string]any{
		"scopes":              r.Scopes,
		"grace_period":        int64(r.grace().Seconds()),
		"description":         r.Description,
		"last_vault_rotation": rfc3339(r.LastRotation),
		"next_vault_rotation": rfc3339(r.NextRotation),
		"token_id":            r.Current.TokenID,
		"last_rotation_error": r.LastRotationError,
	}
	if len(r.CustomClaims) > 0 {
		data["custom_claims"] = r.CustomClaims
	}
	r.addTiming(data)
	return data
}

// addTiming adds how the role rotates, as static-creds/ shows it too:
// rotation_period, or rotation_schedule and rotation_window; never the
// fields of the other kind, which would read 0 or empty.
func (r *staticRole) addTiming(data map[string]any) {
	if r.RotationSchedule != "" {
		data["rotation_schedule"], data["rotation_window"] = r.RotationSchedule, int64(r.RotationWindow.Seconds())
		return
	}
	data["rotation_period"] = int64(r.RotationPeriod.Seconds())
}

// pathStaticRoleWrite answers with the role's operator view, and the
// warnings of its rotation when the write rotated it.
func (b *backend) pathStaticRoleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	if len(name) > maxRoleNameLen {
		return logical.ErrorResponse("'name' must be at most %d characters, got %d", maxRoleNameLen, len(name)), nil
	}
	defer b.lockStaticRole(name)()
	if err := nameTakenByRole(ctx, req, name); err != nil {
		return nil, err
	}
	existing, err := readStaticRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	now := b.clock.Now()
	r, tokenChanged, err := staticRoleFromRequest(existing, d, now)
	if err != nil {
		return logical.ErrorResponse(err.Error()), nil
	}
	if existing == nil || tokenChanged {
		// A failing mint leaves the role as it was: absent, or unchanged.
		warnings, err := b.rotate(ctx, req.Storage, name, r)
		if err != nil {
			return nil, err // HandleRequest answers it
		}
		b.event("static-role-write", true, logical.EventMetadataPath, staticRolePrefix+name, "role", name)
		return &logical.Response{Data: r.operatorView(), Warnings: warnings}, nil
	}
	if r.FailedRotations == 0 && !r.sameTiming(existing) {
		// A new period counts from the last rotation, a new schedule from
		// now; either way the current token must outlive its grace. A write
		// that keeps the timing keeps the schedule, an overdue rotation too.
		from := r.LastRotation
		if r.RotationSchedule != "" {
			from = now
		}
		r.scheduleNext(from, now, r.Current.expiresAt())
	}
	if err := writeStaticRole(ctx, req.Storage, name, r); err != nil {
		return nil, err
	}
	b.pushItem(staticRolePrefix+name, r.nextDue())
	b.Logger().Info("static role saved", "role", name, "rotation_period", r.RotationPeriod.String(),
		"rotation_schedule", r.RotationSchedule, "next_rotation", r.NextRotation)
	b.event("static-role-write", true, logical.EventMetadataPath, staticRolePrefix+name, "role", name)
	return &logical.Response{Data: r.operatorView()}, nil
}

func (b *backend) pathStaticRoleDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.Get("name").(string)
	defer b.lockStaticRole(name)()
	r, err := readStaticRole(ctx, req.Storage, name)
	if err != nil || r == nil {
		return nil, err
	}
	if err := b.revokeStaticRoleTokens(ctx, req.Storage, r); err != nil {
		return nil, fmt.Errorf("deleting static role %q: revoking its tokens failed, so the role stays: %w", name, err)
	}
	if err := req.Storage.Delete(ctx, staticRolePrefix+name); err != nil {
		return nil, fmt.Errorf("deleting static role %q: %w", name, err)
	}
	b.popFromQueueByKey(staticRolePrefix + name)
	b.Logger().Info("static role deleted; its tokens are revoked", "role", name)
	b.event("static-role-delete", true, logical.EventMetadataPath, staticRolePrefix+name, "role", name)
	return nil, nil
}

// staticRoleFromRequest merges the request into a copy of the existing
// static role (or the defaults) and validates it, at now. It also reports
// whether what the token carries changed, which calls for a new token at
// once.
func staticRoleFromRequest(existing *staticRole, d *framework.FieldData, now time.Time) (*staticRole, bool, error) {
	r := &staticRole{RotationPeriod: defaultRotationPeriod}
	if existing != nil {
		copied := *existing
		r = &copied
	}
	changed := false
	if raw, ok := d.GetOk("scopes"); ok {
		scopes, err := parseScopes(raw.([]string))
		if err != nil {
			return nil, false, err
		}
		changed = changed || !slices.Equal(scopes, r.Scopes)
		r.Scopes = scopes
	}
	if len(r.Scopes) == 0 {
		return nil, false, errors.New("'scopes' is required: list at least one scope, e.g. identities:read")
	}
	if err := r.mergeTiming(d, now); err != nil {
		return nil, false, err
	}
	if raw, ok := d.GetOk("custom_claims"); ok {
		claims, err := parseCustomClaims(raw.(map[string]any))
		if err != nil {
			return nil, false, err
		}
		changed = changed || !sameJSON(claims, r.CustomClaims)
		r.CustomClaims = claims
	}
	if raw, ok := d.GetOk("description"); ok {
		description, err := parseDescription(raw.(string))
		if err != nil {
			return nil, false, err
		}
		r.Description = description
	}
	return r, changed, nil
}

// mergeTiming merges when the role rotates: a period, or a schedule with
// its window, never both; and the grace.
func (r *staticRole) mergeTiming(d *framework.FieldData, now time.Time) error {
	rawPeriod, periodGiven := d.GetOk("rotation_period")
	rawSchedule, scheduleGiven := d.GetOk("rotation_schedule")
	if periodGiven && scheduleGiven && rawSchedule.(string) != "" {
		return errors.New("'rotation_period' and 'rotation_schedule' are mutually exclusive: set one of them " +
			"(writing one replaces the other)")
	}
	switch {
	case periodGiven:
		r.RotationPeriod = time.Duration(rawPeriod.(int)) * time.Second
		r.RotationSchedule, r.RotationWindow, r.ScheduleInterval = "", 0, 0
	case scheduleGiven && rawSchedule.(string) == "":
		r.RotationSchedule, r.RotationWindow, r.ScheduleInterval = "", 0, 0
	case scheduleGiven:
		schedule, err := parseSchedule(rawSchedule.(string))
		if err != nil {
			return fmt.Errorf("'rotation_schedule' %w", err)
		}
		r.RotationSchedule, r.RotationPeriod = strings.TrimSpace(rawSchedule.(string)), 0
		if r.ScheduleInterval = shortestInterval(schedule, now); r.ScheduleInterval == 0 {
			return fmt.Errorf("'rotation_schedule' %q names no time that ever comes, such as 30 February: the role would "+
				"never rotate", biclient.CleanText(r.RotationSchedule, 64))
		}
	}
	if r.RotationPeriod == 0 && r.RotationSchedule == "" {
		r.RotationPeriod = defaultRotationPeriod
	}
	if raw, ok := d.GetOk("rotation_window"); ok {
		if window := time.Duration(raw.(int)) * time.Second; window > 0 && r.RotationSchedule == "" {
			return errors.New("'rotation_window' applies only with 'rotation_schedule': a period has no window")
		}
		r.RotationWindow = time.Duration(raw.(int)) * time.Second
	}
	if raw, ok := d.GetOk("grace_period"); ok {
		r.GracePeriod = time.Duration(raw.(int)) * time.Second
	}
	return r.validateTiming()
}

// sameJSON reports whether two claim sets encode alike, whatever Go types
// their numbers decoded into.
func sameJSON(a, b map[string]any) bool {
	encodedA, _ := json.Marshal(a)
	encodedB, _ := json.Marshal(b)
	return bytes.Equal(encodedA, encodedB)
}

const staticRoleListHelpSynopsis = "List the static roles."

const staticRoleListHelpDescription = `
Lists the names of the static roles defined on this mount.
`

const staticRoleHelpSynopsis = "Define a static role: one token, replaced on a schedule, for consumers that cannot hold a lease."

var staticRoleHelpDescription = strings.TrimSpace(`
A static role keeps one Beyond Identity token and replaces it on the active
node, without any request: every rotation_period (default 24h, at least
10s), or at the times of rotation_schedule, a five-field cron expression in
UTC ("0 2 * * 1-5": 02:00 on weekdays) or @monthly, @weekly, @daily or
@hourly (@every is refused: that is rotation_period, and so is @yearly: no
token lives a year), within
rotation_window of each (at least 1h, at most the schedule's shortest
interval; past it the role waits for the next time unless its token would
end first). Readers get the current token at static-creds/<name>,
with no lease: External Secrets Operator, Terraform data sources, Vault
Secrets Operator (allowStaticCreds), CI systems that read once and cache.

A replaced token keeps working for grace_period (default a tenth of the
period, or of the schedule's shortest interval, and at least 10s), then is
revoked at Beyond Identity. Each token is minted to live until the next
rotation is due, plus rotation_window, plus grace_period: with a period,
rotation_period plus grace_period; with a schedule, until the next
scheduled time plus rotation_window plus grace_period. The interval (the
period, or the schedule's shortest) plus the window plus the grace must be
at most 7776000s (90 days), the longest a Beyond Identity token lives.

A role never rotates more often than its interval allows. When Beyond
Identity issues a token that ends before its grace would be over (it gives
tokens a shorter life than asked), the role keeps its due time and says so
in last_rotation_error: rotating sooner would only get another short token.

A role has at most 5 live tokens as far as the plugin knows: its current
one, its replaced ones in their grace, and those whose revocation is still
pending (revocations/). While Beyond Identity refuses revocations, a
rotation past that bound is not made: rotate-role answers 503, whatever
the tokens' lifetimes, and a scheduled rotation waits until the
revocations drain, unless the current token would end before its next
retry.

Writing a static role mints its first token at once; if that fails, nothing
is stored. Changing scopes or custom_claims rotates the token at once; a
change that removes a scope revokes the tokens carrying it at once. A role
keeps at most three replaced tokens. Every write answers with the role as
reading it shows it: last_vault_rotation, next_vault_rotation, the current
token_id and last_rotation_error, never the token. Deleting it revokes its
tokens. A failed rotation is retried with backoff and shown in
last_rotation_error.
`)
