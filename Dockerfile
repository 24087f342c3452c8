# The plugin as a containerized Vault plugin (Vault 1.15+ on Linux, with
# Docker and gVisor's runsc): see "Running as a containerized plugin" in the
# README. It packs the linux binary of a release, so run make release
# first, then, for the same version without its v:
#
#   docker build --build-arg VERSION=0.1.0 -t vault-plugin-secrets-beyondidentity:0.1.0 .
#
# BuildKit (Docker's default builder) sets TARGETARCH: amd64 or arm64.

# Distroless static: no shell or package manager, but the CA certificates
# the plugin needs to reach Beyond Identity over HTTPS, and a non-root user.
# Pin it by digest (gcr.io/distroless/static-debian12:nonroot@sha256:...)
# for byte-identical images.
FROM gcr.io/distroless/static-debian12:nonroot

ARG VERSION
ARG TARGETARCH

# ADD unpacks the release archive, which holds the binary alone, as it is
# listed in SHA256SUMS.
ADD dist/vault-plugin-secrets-beyondidentity_${VERSION}_linux_${TARGETARCH}.tar.gz /usr/local/bin/

# Vault gives the container its own group for the plugin's socket, so the
# plugin needs no root; a rootless Docker needs a non-root user anyway.
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/vault-plugin-secrets-beyondidentity"]
