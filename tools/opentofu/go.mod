// Pins OpenTofu, the Terraform CLI the end-to-end suite's Terraform test
// runs, by version here and by the checksum of its source in go.sum.
//
// Nothing imports it, and `go mod tidy` here would drop the pin: the module
// is never built from this one. `go install` and a build from here would
// both ignore OpenTofu's replace directives (its go.mod replaces
// github.com/hashicorp/hcl/v2 with OpenTofu's fork), so scripts/tofu.sh
// downloads the module, checked against this go.sum, and builds cmd/tofu
// inside it, with OpenTofu's own go.mod and go.sum, as its release does.
module github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/tools/opentofu

go 1.26

require github.com/opentofu/opentofu v1.12.6
