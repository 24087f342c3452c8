// Package fakebi is an in-process fake of the Beyond Identity endpoints the
// plugin calls: the client-credentials grant POST {issuer}/token (JWT or
// opaque tokens, scope, expiration_time, custom_claims), RFC 7009 revocation
// POST {issuer}/revoke and RFC 7662 introspection POST
// /v1/tenants/{t}/realms/{r}/introspect, where the issuer is
// /v1/tenants/{t}/realms/{r}/applications/{a}. It answers as Beyond
// Identity's public API documentation (v1) says, with errors in both shapes
// a client must read: RFC 6749 {"error","error_description"} from the OAuth
// checks, Management API {"code","message","details"} otherwise. Discovery,
// the JWKS and the Management API token list and delete are not served.
//
// A Server is an http.Handler. Tests serve it with net/http/httptest, add
// applications, then inspect what the client sent (Calls, InFlight,
// MaxInFlight) and what the fake minted (Tokens). Faults make it misbehave
// as real servers and gateways do; Application.NarrowScopes and WidenScopes
// grant less or more than asked; SetClock gives it a clock of its own.
//
// Where the documentation is silent or loose:
//
//   - JWTs have the documented header and claims but a random signature:
//     the plugin reads claims without verifying them.
//   - HTTP Basic credentials are compared byte for byte, raw as `curl -u`
//     sends them: a client that form-encodes them first (RFC 6749 §2.3.1)
//     fails when they hold characters such as + / = %. Form fields
//     client_id and client_secret work too, but not beside an Authorization
//     header (400 invalid_request).
//   - A repeated OAuth parameter (RFC 6749 §3.2), an empty expiration_time
//     or custom_claims are 400 invalid_request; an empty scope means every
//     allowed scope; with NarrowScopes, a request none of whose scopes is
//     allowed is still 400 invalid_scope.
//   - Revocation and introspection accept application credentials only, not
//     Bearer tokens. Introspection accepts any application of the realm and
//     shows it only its own tokens; revocation revokes only tokens of the
//     application in its path.
//   - An unknown application or realm is 404 and a method other than POST
//     405, in the Management API shape (codes not_found, method_not_allowed).
package fakebi
