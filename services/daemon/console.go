package daemon

import (
	"net/http"

	"github.com/ledger-billing/ledger/services/console"
)

// mountConsole mounts the web console (services/console) at / on mux,
// and returns what goes in front of the access guard: the console's
// sign-in cookie read as the Authorization header, and its pages for the
// guard's 401 and 403.
func (d *Daemon) mountConsole(mux *http.ServeMux) (func(http.Handler) http.Handler, error) {
	c, err := console.New(console.Config{Queries: d.query, Auth: d.cfg.AuthConfigured(), Logger: d.log})
	if err != nil {
		return nil, err
	}
	mux.Handle("/", c)
	return c.Front, nil
}
