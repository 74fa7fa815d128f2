"""The Docker Registry HTTP API v2 / OCI distribution client.

    config.py     ~/.config/rootless/registries.json: default and insecure registries
    auth.py       WWW-Authenticate challenges; Basic and Bearer (token) auth, tokens
                  cached per scope until they expire
    client.py     one registry: scheme and TLS choice, requests with auth and redirects,
                  manifests (size-capped, digest-checked), blobs, uploads, tags, search
    transport.py  RegistrySource / RegistryDestination over the client

`requests` is imported inside functions only: `rootless run` never loads this package.
"""
