package daemon

import (
	"github.com/ledger-billing/ledger/services/audit"
)

// sign loads (or, at first start, generates) the key ledgerd signs every
// event it appends with, so that an auditor can tell its events from any
// appended behind its back (README, "Auditing").
func (d *Daemon) sign() error {
	var s *audit.Signer
	var err error
	if d.cfg.SigningKey != "" {
		s, err = audit.LoadSigner(d.cfg.SigningKey)
	} else {
		var created bool
		s, created, err = audit.LoadOrCreateSigner(d.cfg.DataDir)
		if created {
			d.log.Info("ledgerd: generated a signing key; `ledgerctl audit public-key` prints its public half for auditors", "file", d.cfg.DataDir+"/"+audit.KeyFile, "kid", s.KeyID())
		}
	}
	if err != nil {
		return err
	}
	d.evlog.SignWith(s)
	return nil
}
