// Package audit is what lets an auditor prove, offline, from a copy of the
// history, that every issued invoice follows from it and that the history
// is the one ledgerd wrote (README, "Auditing"; DESIGN.md section 12).
//
// Three records do it, each catching what the others cannot:
//
//   - Signatures (sign.go): ledgerd signs every event it appends with
//     Ed25519, in the event's custom metadata. An event appended behind
//     its back, through the store's port and with the store's own
//     credentials, has none, even before the next seal.
//   - The seal chain (chain.go, sealer.go): a SHA-256 chain over every
//     billing event in $all order, recorded every 10,000 events or 60 s in
//     LogSealed events. A change to, removal of, or insertion among the
//     events a seal covers breaks it. It hashes stream names, event ids,
//     types and data, never store positions, so it survives a migration
//     to another store.
//   - DocumentIssued (recorder.go): the digest of every document ledgerd
//     issued (projections/document), so a replay can show that the
//     history yields exactly what was issued.
//
// Verify (verify.go) checks all three in one read of the history and a
// full replay through a fresh projection; ledgerctl audit runs it.
package audit
