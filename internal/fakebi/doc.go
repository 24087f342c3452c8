// Package fakebi is an in-process fake of the Beyond Identity endpoints the
// plugin talks to: the client-credentials token endpoint, RFC 7009
// revocation, RFC 7662 introspection, the JWKS and discovery documents, and
// the Management API token list and delete calls.
//
// It follows docs/beyond-identity-api.md: where that page records a fact
// about the real service the fake does the same, and where the page records
// one of the project's own assumptions the fake implements that assumption.
//
// A Server is an http.Handler. Tests serve it with net/http/httptest, add
// applications with AddApplication, and then inspect what the client sent
// (Calls) and what the fake minted (Tokens). Faults and a rate limit let a
// test provoke the failures a real deployment can show.
//
// # Choices where the API page is silent
//
//   - A wrong method answers 405 with an Allow header and the Management API
//     error shape, code "method_not_allowed".
//   - Every request is recorded first; then the rate limit is applied, then
//     any fault, then the normal handling. A request refused by the rate
//     limit therefore does not use up a fault's Times.
//   - A fault that sets nothing but Delay (and perhaps AfterMint and Times)
//     slows the endpoint down and keeps its normal answer.
//   - HTTP Basic credentials are accepted both raw and form-encoded
//     (RFC 6749 §2.3.1). A form client_id or client_secret beside an
//     Authorization header is 400 invalid_request.
//   - Repeating an OAuth parameter is 400 invalid_request (RFC 6749 §3.2).
//   - An empty expiration_time or custom_claims is 400 invalid_request; an
//     empty scope means every allowed scope.
//   - With NarrowScopes, a request none of whose scopes is allowed is still
//     400 invalid_scope: there would be nothing to grant.
//   - Revocation and introspection with a Bearer token that is unknown, of
//     another tenant or without the needed scope answer 401 invalid_client.
//   - Introspection by a Bearer token sees the tokens of the path's realm;
//     by an application, only that application's tokens.
//   - The list call requires principal_type=application and principal_id
//     equal to the path's application (400 bad_request otherwise). Its
//     display_name is the client id, and next_page_token is omitted on the
//     last page. Deleting a revoked or expired token is 404, like an unknown
//     one.
//   - Answers within a rate limit carry RateLimit-Reset as well.
package fakebi
