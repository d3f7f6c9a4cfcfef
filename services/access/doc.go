// Package access decides who may call what on ledgerd (DESIGN.md section
// 10; docs/securing.md, "Identities and roles"): it verifies bearer JWTs
// against a JWKS, holds the role table (which RPC and which HTTP path each
// role may reach, and for which organizations and BANs), and enforces it
// as gRPC interceptors and an HTTP middleware, logging every decision and
// counting it by outcome.
//
// Its place in the architecture: it sits in front of the servers that
// services/daemon wires, and imports none of them. services/query asks it
// one thing from inside a call, the organizations the caller is limited to
// (Organizations), because only the query service, under the projection's
// read lock, knows which organization a BAN bills. The claims and roles
// themselves are in services/token, which ledgerctl links too.
//
// A call goes through three steps, and the first that fails answers:
//
//  1. Authentication: no token, or one that does not verify (signature,
//     algorithm, key id, issuer, audience, exp/nbf, claims), is
//     UNAUTHENTICATED (HTTP 401). Only RS256, ES256 and EdDSA are
//     accepted, so `alg: none` and HMAC never reach a key.
//  2. The role table: a role that may not call the method, ask for
//     lineage, or read the organization the request names is
//     PERMISSION_DENIED (HTTP 403), decided from the request alone, before
//     anything is looked up.
//  3. The BANs of an org_admin: the query service checks, before it looks
//     the invoice up, that the BAN is one of the caller's organizations',
//     and answers PERMISSION_DENIED alike for another organization's BAN
//     and for a BAN that does not exist (Google AIP-211): a denied caller
//     learns nothing of what exists.
//
// The health service, /healthz and /readyz stay open: balancers and
// orchestrators probe them without credentials. Their probes are neither
// logged nor counted. Messages name the role and the kind of resource,
// never a token.
//
// ledgerd wires it as:
//
//	g, err := access.New(access.Config{JWKS: path, Issuer: iss, Logger: log, Registerer: reg})
//	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(g.Unary), grpc.ChainStreamInterceptor(g.Stream))
//	httpSrv := &http.Server{Handler: g.HTTP(mux)}
package access
