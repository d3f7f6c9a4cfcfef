package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/ledger-billing/ledger/services/daemon"
	"github.com/ledger-billing/ledger/services/daemon/daemontest"
	"github.com/ledger-billing/ledger/services/testkit"
	"github.com/ledger-billing/ledger/services/wire"
)

// smallDisk mounts a tmpfs of size bytes for the test, or skips the test
// where that is not allowed (it needs root on Linux).
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a small tmpfs for a full disk (needs root on Linux): %v: %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file in dir until the disk is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 64<<10)
	for {
		if _, err := f.Write(block); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return path
			}
			t.Fatal(err)
		}
	}
}

// readyz returns /readyz's status and body.
func readyz(addr string) (int, string, error) {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body)), nil
}

// TestFullDisk fills the disk under a running ledgerd: /readyz turns 503
// saying why, and once space is freed everything acknowledged before,
// during and after is billed, once, without a restart.
func TestFullDisk(t *testing.T) {
	disk := smallDisk(t, 256<<20)
	cfg := daemontest.Config(filepath.Join(disk, "data"))
	cfg.OutageMax = time.Second
	d := daemontest.Start(t, cfg)
	daemontest.WaitReady(t, d)
	_, js := testkit.JetStream(t, d.NATSURL())
	seedOrganization(t, js)
	publishProto(t, js, ec2("u-before", "2018-01-10T00:00:00Z", "1.00"))
	testkit.Eventually(t, "the first usage billed", func() error { return wantDraft(d, "1.00") })

	filler := fill(t, disk)
	testkit.Eventually(t, "/readyz 503 on a full disk", func() error {
		code, body, err := readyz(d.HTTPAddr())
		if err != nil {
			return err
		}
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "is full") {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	// Publishing now fails or is taken; what JetStream acknowledged must
	// be billed once space is back.
	acked := 1
	for i := range 5 {
		if tryPublish(js, ec2(fmt.Sprintf("u-full-%d", i), "2018-01-11T00:00:00Z", "1.00")) == nil {
			acked++
		}
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "/readyz 200 once space is freed", func() error {
		code, body, err := readyz(d.HTTPAddr())
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	publishProto(t, js, ec2("u-after", "2018-01-12T00:00:00Z", "1.00"))
	acked++
	testkit.Eventually(t, "every acknowledged message billed once", func() error { return wantDraft(d, fmt.Sprintf("%d.00", acked)) })
}

// wantDraft checks the draft of BAN-100 for 2018-01.
func wantDraft(d *daemon.Daemon, want string) error {
	inv, err := invoice(d, "BAN-100", "2018-01")
	if err != nil {
		return err
	}
	if total(inv) != want {
		return fmt.Errorf("draft total %s, want %s", total(inv), want)
	}
	return nil
}

// tryPublish publishes m as protobuf and reports whether JetStream
// acknowledged it.
func tryPublish(js jetstream.JetStream, m proto.Message) error {
	subject, err := wire.Subject(m)
	if err != nil {
		return err
	}
	data, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = js.Publish(ctx, subject, data)
	return err
}
