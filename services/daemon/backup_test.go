package daemon_test

import (
	"archive/tar"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/ledger-billing/ledger/services/daemon/daemontest"
	"github.com/ledger-billing/ledger/services/eventstore"
	"github.com/ledger-billing/ledger/services/testkit"
	"github.com/ledger-billing/ledger/services/wire"
)

func postBackup(t *testing.T, addr string) *http.Response {
	t.Helper()
	resp, err := http.Post("http://"+addr+wire.BackupPath, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func bodyText(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return strings.TrimSpace(string(b))
}

// TestBackupOfExternalStore: KurrentDB is backed up with its own tools.
func TestBackupOfExternalStore(t *testing.T) {
	store := testkit.StartStore(t, eventstore.Config{})
	cfg := daemontest.Config(t.TempDir())
	cfg.EventstoreURL = store.URL()
	d := daemontest.Start(t, cfg)
	resp := postBackup(t, d.HTTPAddr())
	if body := bodyText(resp); resp.StatusCode != http.StatusNotImplemented || !strings.Contains(body, "KurrentDB's own backups") {
		t.Fatalf("POST /backup with an external store: %d %q; want 501 naming KurrentDB's backups", resp.StatusCode, body)
	}
}

// TestBackupOneAtATime holds a backup open (its client reads nothing, so
// ledgerd's writes block once the socket buffers are full): a second one
// is refused, ingestion and queries go on, and once the first client
// hangs up, the next backup is taken and the checkpoint of the first is
// gone.
func TestBackupOneAtATime(t *testing.T) {
	dir := t.TempDir()
	d := daemontest.Start(t, daemontest.Config(dir))
	daemontest.WaitReady(t, d)
	// Incompressible events the projections skip (not billing.v1.*),
	// enough that a backup outlasts what loopback sockets buffer.
	c := testkit.Client(t, d.EventstoreURL())
	for i := range 48 {
		data := make([]byte, 1<<20)
		_, _ = rand.Read(data)
		ev := esdb.EventData{EventID: uuid.New(), EventType: "test.filler", ContentType: esdb.ContentTypeBinary, Data: data}
		if _, err := c.AppendToStream(testkit.Context(t, 30*time.Second), fmt.Sprintf("filler-%d", i), esdb.AppendToStreamOptions{}, ev); err != nil {
			t.Fatal(err)
		}
	}
	before := testkit.DirNames(t, dir)

	first := postBackup(t, d.HTTPAddr())
	if first.StatusCode != http.StatusOK {
		t.Fatalf("first backup: %d %s", first.StatusCode, bodyText(first))
	}
	second := postBackup(t, d.HTTPAddr())
	if body := bodyText(second); second.StatusCode != http.StatusConflict || !strings.Contains(body, "a backup is already running") {
		t.Fatalf("second backup while the first streams: %d %q; want 409", second.StatusCode, body)
	}

	// Meanwhile ledgerd ingests and answers.
	_, js := testkit.JetStream(t, d.NATSURL())
	seedOrganization(t, js)
	publishProto(t, js, ec2("u-during-backup", "2018-01-10T00:00:00Z", "7.25"))
	testkit.Eventually(t, "usage billed during the backup", func() error {
		inv, err := invoice(d, "BAN-100", "2018-01")
		if err == nil && total(inv) != "7.25" {
			err = fmt.Errorf("draft %s, want 7.25", total(inv))
		}
		return err
	})

	first.Body.Close() // hangs up in the middle
	var third *http.Response
	testkit.Eventually(t, "a backup once the first has hung up", func() error {
		third = postBackup(t, d.HTTPAddr())
		if third.StatusCode != http.StatusOK {
			return fmt.Errorf("%d %s", third.StatusCode, bodyText(third))
		}
		return nil
	})
	files, size := readTar(t, third.Body)
	third.Body.Close()
	if want := third.Header.Get(wire.HeaderBackupFiles); strconv.Itoa(files) != want {
		t.Fatalf("the tar holds %d files; ledgerd announced %s", files, want)
	}
	if want := third.Header.Get(wire.HeaderBackupBytes); strconv.FormatInt(size, 10) != want || size < 48<<20 {
		t.Fatalf("the tar holds %d bytes; ledgerd announced %s (and the filler is 48 MiB)", size, want)
	}
	if pos, err := strconv.ParseUint(third.Header.Get(wire.HeaderBackupPosition), 10, 64); err != nil || pos == 0 {
		t.Fatalf("position %q: %v", third.Header.Get(wire.HeaderBackupPosition), err)
	}
	testkit.Eventually(t, "the checkpoints removed", func() error {
		if after := testkit.DirNames(t, dir); !slices.Equal(after, before) {
			return fmt.Errorf("the data directory holds %v, before the backups %v", after, before)
		}
		return nil
	})
}

// readTar reads a whole tar and counts its files and their bytes.
func readTar(t *testing.T, r io.Reader) (files int, size int64) {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, size
		}
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, tr)
		if err != nil {
			t.Fatalf("%s: %v", hdr.Name, err)
		}
		files++
		size += n
	}
}
