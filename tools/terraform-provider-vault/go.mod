// Pins HashiCorp's Vault provider for Terraform v5.9.0, which the end-to-end
// suite's Terraform test runs, by version here and by the checksum of its
// source in go.sum.
//
// The module's path has no /v5 suffix, so the Go module proxy serves the tag
// v5.9.0 only as the pseudo-version of its commit (5e9fcd457a99, whose
// version/VERSION reads 5.9.0; scripts/tofu.sh checks that file).
//
// Nothing imports it, and `go mod tidy` here would drop the pin.
// scripts/tofu.sh downloads the module, checked against this go.sum, and
// builds it inside the download, with the provider's own go.mod and go.sum.
module github.com/beyondidentity-vault/vault-plugin-secrets-beyondidentity/tools/terraform-provider-vault

go 1.26

require github.com/hashicorp/terraform-provider-vault v1.9.1-0.20260422134934-5e9fcd457a99
