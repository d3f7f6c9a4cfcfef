package ctl

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ledger-billing/ledger/services/wire"
)

// entry is one entry of a tar a test builds.
type entry struct {
	name     string
	typeflag byte
	body     string
	link     string
}

func tarOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typeflag, Mode: 0o777, Size: int64(len(e.body)), Linkname: e.link, Format: tar.FormatPAX}
		if e.typeflag != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("tar header %q: %v", e.name, err)
		}
		if hdr.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func announcedFor(entries ...entry) backupAnnounced {
	var a backupAnnounced
	for _, e := range entries {
		if e.typeflag == tar.TypeReg {
			a.files++
			a.bytes += int64(len(e.body))
		}
	}
	return a
}

// files lists every path under root, relative, with "/" after directories.
func files(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			rel += "/"
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUnpackRefusesHostileTars: a tar from the network may name files
// anywhere, link out of the directory, or come with more than announced.
// Each is refused with a sentence naming the entry, and nothing is written
// outside the directory.
func TestUnpackRefusesHostileTars(t *testing.T) {
	reg := func(name, body string) entry { return entry{name: name, typeflag: tar.TypeReg, body: body} }
	for _, c := range []struct {
		name    string
		entries func(outside string) []entry
		// announced overrides what the entries announce, when set.
		announced *backupAnnounced
		want      string
	}{
		{"absolute path", func(outside string) []entry {
			return []entry{reg("MANIFEST-000001", "m"), reg(filepath.Join(outside, "evil"), "x")}
		}, nil, "has an absolute path"},
		{"dot-dot", func(string) []entry { return []entry{reg("../evil", "x")} }, nil, `climbs out of the backup's directory with ".."`},
		{"dot-dot inside a path", func(string) []entry { return []entry{reg("a/../../evil", "x")} }, nil, `climbs out`},
		{"dot-dot that stays inside", func(string) []entry { return []entry{reg("a/../b", "x")} }, nil, `climbs out`},
		{"symbolic link out", func(outside string) []entry {
			return []entry{{name: "link", typeflag: tar.TypeSymlink, link: outside}, reg("link/evil", "x")}
		}, nil, `"link" is a symbolic link`},
		{"hard link", func(outside string) []entry {
			return []entry{{name: "hard", typeflag: tar.TypeLink, link: filepath.Join(outside, "target")}}
		}, nil, `"hard" is a hard link`},
		{"device", func(string) []entry { return []entry{{name: "dev", typeflag: tar.TypeChar}} }, nil, "is a device"},
		{"fifo", func(string) []entry { return []entry{{name: "fifo", typeflag: tar.TypeFifo}} }, nil, "is a named pipe"},
		{"a name twice", func(string) []entry { return []entry{reg("000001.sst", "a"), reg("./000001.sst", "b")} },
			&backupAnnounced{files: 2, bytes: 2}, `"000001.sst" comes twice`},
		{"more bytes than announced", func(string) []entry { return []entry{reg("000001.sst", strings.Repeat("x", 100))} },
			&backupAnnounced{files: 1, bytes: 10}, "holds more than the 1 file and 10 bytes ledgerd announced"},
		{"more files than announced", func(string) []entry { return []entry{reg("a", "x"), reg("b", "y")} },
			&backupAnnounced{files: 1, bytes: 2}, `holds more than the 1 file and 2 bytes ledgerd announced (at entry "b")`},
		{"a file named after the directory", func(string) []entry { return []entry{reg(".", "x")} }, nil, "a file without a name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			parent := t.TempDir()
			outside := filepath.Join(parent, "outside")
			if err := os.Mkdir(outside, 0o700); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(parent, "backup")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			entries := c.entries(outside)
			want := announcedFor(entries...)
			if c.announced != nil {
				want = *c.announced
			}
			_, err := unpack(bytes.NewReader(tarOf(t, entries...)), dir, want, true, func(int, int64) {})
			if !errors.Is(err, ErrBadBackup) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("unpack: %v; want ErrBadBackup saying %q", err, c.want)
			}
			if got := files(t, outside); len(got) > 0 {
				t.Fatalf("written outside the directory: %v", got)
			}
			for _, p := range files(t, parent) {
				if !strings.HasPrefix(p, "backup/") && !strings.HasPrefix(p, "outside/") {
					t.Fatalf("written beside the directory: %s", p)
				}
			}
		})
	}
}

// TestUnpack writes files and directories, each file with its content and
// private to its owner, and counts them.
func TestUnpack(t *testing.T) {
	entries := []entry{
		{name: "MANIFEST-000001", typeflag: tar.TypeReg, body: "manifest"},
		{name: "sub/", typeflag: tar.TypeDir},
		{name: "sub/deeper/000001.sst", typeflag: tar.TypeReg, body: "table"},
		{name: "./OPTIONS-000003", typeflag: tar.TypeReg, body: ""},
	}
	dir := t.TempDir()
	var calls int
	got, err := unpack(bytes.NewReader(tarOf(t, entries...)), dir, announcedFor(entries...), true, func(int, int64) { calls++ })
	if err != nil {
		t.Fatal(err)
	}
	if got != (unpacked{files: 3, bytes: int64(len("manifest") + len("table"))}) || calls == 0 {
		t.Fatalf("unpacked %+v with %d progress calls", got, calls)
	}
	if want := []string{"MANIFEST-000001", "OPTIONS-000003", "sub/", "sub/deeper/", "sub/deeper/000001.sst"}; !slices.Equal(files(t, dir), want) {
		t.Fatalf("files %v, want %v", files(t, dir), want)
	}
	body, err := os.ReadFile(filepath.Join(dir, "sub", "deeper", "000001.sst"))
	if err != nil || string(body) != "table" {
		t.Fatalf("sub/deeper/000001.sst: %q, %v", body, err)
	}
	info, err := os.Stat(filepath.Join(dir, "MANIFEST-000001"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("MANIFEST-000001: %v, %v; want mode 0600 whatever the tar says", info.Mode(), err)
	}
}

// backupServer answers POST /backup with the tar, announcing want.
func backupServer(t *testing.T, body []byte, want backupAnnounced) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != wire.BackupPath {
			http.NotFound(w, r)
			return
		}
		w.Header().Set(wire.HeaderBackupFiles, strconv.Itoa(want.files))
		w.Header().Set(wire.HeaderBackupBytes, strconv.FormatInt(want.bytes, 10))
		w.Header().Set(wire.HeaderBackupPosition, "42")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestBackupRemovesWhatFails: a backup refused half-way leaves nothing
// behind, neither the directory Backup created nor the files it wrote into
// an empty one; a whole one is reported.
func TestBackupRemovesWhatFails(t *testing.T) {
	good := []entry{{name: "000001.log", typeflag: tar.TypeReg, body: strings.Repeat("l", 2000)}, {name: "MANIFEST-000001", typeflag: tar.TypeReg, body: "m"}}
	hostile := append(slices.Clone(good), entry{name: "../evil", typeflag: tar.TypeReg, body: "x"})
	short := good[:1]
	for _, c := range []struct {
		name      string
		body      []byte
		announced backupAnnounced
		want      string
	}{
		{"hostile", tarOf(t, hostile...), announcedFor(hostile...), `backup entry "../evil" climbs out`},
		{"fewer files than announced", tarOf(t, short...), announcedFor(good...), "the backup ended early: 1 of 2 files, 2,000 of 2,001 bytes"},
		{"cut in the middle", tarOf(t, good...)[:1000], announcedFor(good...), "the backup stopped after 0 of 2 files: 000001.log: unexpected EOF"},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr := backupServer(t, c.body, c.announced)
			parent := t.TempDir()
			empty := filepath.Join(parent, "empty")
			if err := os.Mkdir(empty, 0o700); err != nil {
				t.Fatal(err)
			}
			for _, dir := range []string{filepath.Join(parent, "new", "dir"), empty} {
				err := New(Config{HTTP: addr}).Backup(context.Background(), dir)
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("backup into %s: %v; want %q", dir, err, c.want)
				}
			}
			if got := files(t, parent); !slices.Equal(got, []string{"empty/", "new/"}) {
				t.Fatalf("left behind: %v", got)
			}
		})
	}

	t.Run("whole", func(t *testing.T) {
		addr := backupServer(t, tarOf(t, good...), announcedFor(good...))
		dir := filepath.Join(t.TempDir(), "backup")
		var out bytes.Buffer
		if err := New(Config{HTTP: addr, Out: &out}).Backup(context.Background(), dir); err != nil {
			t.Fatal(err)
		}
		if want := "Backed up the event store into " + dir + ": 2 files, 2.0 KiB, up to $all position 42.\n"; !strings.HasPrefix(out.String(), want) {
			t.Fatalf("output %q, want it to start %q", out.String(), want)
		}
		if got := files(t, dir); !slices.Equal(got, []string{"000001.log", "MANIFEST-000001"}) {
			t.Fatalf("files %v", got)
		}
		// Not into a directory that is not empty, whatever ledgerd sends.
		err := New(Config{HTTP: addr}).Backup(context.Background(), dir)
		if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "is not empty") {
			t.Fatalf("backup into a full directory: %v", err)
		}
	})
}

func TestByteSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 2789 << 20: "2.7 GiB"} {
		if got := byteSize(n); got != want {
			t.Errorf("byteSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestRenderBackupProgress(t *testing.T) {
	got := renderBackupProgress(3, 12, 1<<30, 4<<30, 2*time.Second)
	if want := "[#######-----------------------]  25%  1.0 GiB of 4.0 GiB  3/12 files  512.0 MiB/s"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// FuzzUnpack: whatever the bytes, unpack writes nothing outside its
// directory, never panics, and counts no more than announced.
func FuzzUnpack(f *testing.F) {
	f.Add(tarOf(f, entry{name: "000001.sst", typeflag: tar.TypeReg, body: "table"}))
	f.Add(tarOf(f, entry{name: "../evil", typeflag: tar.TypeReg, body: "x"}))
	f.Add(tarOf(f, entry{name: "/evil", typeflag: tar.TypeReg, body: "x"}))
	f.Add(tarOf(f, entry{name: "link", typeflag: tar.TypeSymlink, link: ".."}, entry{name: "link/evil", typeflag: tar.TypeReg, body: "x"}))
	f.Add(tarOf(f, entry{name: "a/", typeflag: tar.TypeDir}, entry{name: "a/b", typeflag: tar.TypeReg, body: "x"}))
	want := backupAnnounced{files: 4, bytes: 1 << 10}
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "backup")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		got, err := unpack(bytes.NewReader(data), dir, want, false, func(int, int64) {})
		if got.files > want.files || got.bytes > want.bytes {
			t.Fatalf("unpacked %+v, more than the %+v announced (err %v)", got, want, err)
		}
		for _, p := range files(t, parent) {
			if !strings.HasPrefix(p, "backup/") {
				t.Fatalf("written outside the directory: %s", p)
			}
			if info, err := os.Lstat(filepath.Join(parent, p)); err == nil && info.Mode()&fs.ModeSymlink != 0 {
				t.Fatalf("a symbolic link was written: %s", p)
			}
		}
	})
}
