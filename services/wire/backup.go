package wire

// ledgerd's backup endpoint, on its HTTP address: a POST streams a tar of
// the embedded event store, which unpacked is a store directory that
// ledgerd opens as <data-dir>/eventstore. The headers, sent before the
// tar, say what it holds, so that a client can show progress and tell a
// whole backup from a cut one.
const (
	BackupPath = "/backup"

	// HeaderBackupPosition is the $all position of the last event in the
	// backup (0: the store is empty).
	HeaderBackupPosition = "Ledger-Backup-Position"
	// HeaderBackupFiles and HeaderBackupBytes are the number of files in
	// the tar and the sum of their sizes.
	HeaderBackupFiles = "Ledger-Backup-Files"
	HeaderBackupBytes = "Ledger-Backup-Bytes"
)
