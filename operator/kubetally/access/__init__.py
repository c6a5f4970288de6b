"""Who may see what: the caller's identity and the apiserver's verdicts, for every HTTP route.

- `identity`: `Identity` (a user as the apiserver knows it) and `FrontProxy` (the aggregator's
  client-certificate CA and the request headers that carry the user on its connections).
- `reviews`: `Reviews`, TokenReview and SubjectAccessReview with a deadline, a bounded TTL cache and
  shared in-flight lookups; `visible` turns "may get costs in N" into the namespaces a caller sees.
  Anything that cannot be asked raises `AccessUnavailable` (fail closed: 503, never data).
- `kubeapi`: the httpx client to the apiserver (kubeconfig or in-cluster) and the front-proxy ConfigMap.
- `tls`: the HTTPS server context (files or a self-made certificate) and the verified peer's CN.

The layer sits just below `kubetally.api` and knows nothing of the HTTP app or the handlers. The
package itself imports nothing, so importing `identity` does not load httpx or cryptography.
"""
