package ctl

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go/format"
)

// zigzag appends a Thrift compact i32.
func zigzag(b []byte, v int32) []byte {
	return binary.AppendUvarint(b, uint64(uint32(v<<1)^uint32(v>>31)))
}

// pageHeader is a Thrift PageHeader of a data page with the sizes given.
func pageHeader(uncompressed, compressed int32) []byte {
	b := zigzag([]byte{0x15}, 0) // 1: type DATA_PAGE
	b = zigzag(append(b, 0x15), uncompressed)
	b = zigzag(append(b, 0x15), compressed)
	return append(b, 0) // stop
}

// TestParquetClaimedSizes checks that sizes a damaged Parquet file states
// beyond what it holds are refused before the Parquet library allocates
// by them: a footer's length, a Thrift string's, a chunk's extent, a
// page's compressed and uncompressed sizes.
func TestParquetClaimedSizes(t *testing.T) {
	chunk := func(offset, size int64) *format.FileMetaData {
		return &format.FileMetaData{RowGroups: []format.RowGroup{{Columns: []format.ColumnChunk{{
			MetaData: format.ColumnMetaData{DataPageOffset: offset, TotalCompressedSize: size},
		}}}}}
	}
	body := make([]byte, 100)
	// whole is a chunk of a header and the body.
	whole := func(header []byte) ([]byte, *format.FileMetaData) {
		return append(header, body...), chunk(4, int64(len(header)+len(body)))
	}
	type tc struct {
		name string
		data []byte // from byte 4, after PAR1
		md   *format.FileMetaData
		says string
	}
	var cases []tc
	add := func(name string, header []byte, says string) {
		data, md := whole(header)
		cases = append(cases, tc{name, data, md, says})
	}
	add("a page within its chunk", pageHeader(100, 100), "")
	add("a page beyond its chunk", pageHeader(100, 1<<30), "claims 1073741824 bytes, 100 are left in its chunk")
	add("a page of gigabytes uncompressed", pageHeader(1<<30, 100), "claims 1073741824 bytes uncompressed")
	add("a negative page size", pageHeader(100, -5), "claims -5 bytes")
	add("a header's string beyond its chunk", []byte{0x18, 0xff, 0xff, 0xff, 0xff, 0x07}, "a Thrift string claims 2147483647 bytes")
	add("a header's list beyond its chunk", []byte{0x19, 0xf5, 0xff, 0xff, 0xff, 0xff, 0x07}, "a Thrift list claims 2147483647 elements")
	data, _ := whole(pageHeader(100, 100))
	cases = append(cases, tc{"a chunk beyond the file", data, chunk(4, 1<<40), "whose data ends at"})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := append(append([]byte("PAR1"), c.data...), 0, 0, 0, 0, 'P', 'A', 'R', '1') // an empty footer
			err := checkParquetPages(bytes.NewReader(file), int64(len(file)), 0, c.md)
			if c.says == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), "row group 0, column 0") {
				t.Fatalf("err %v, want one naming the chunk and saying %q", err, c.says)
			}
		})
	}

	// A footer that claims 4 GiB, and one whose string does: refused as
	// files, by scanFOCUS, without allocating gigabytes.
	dir := t.TempDir()
	footer := []byte{0x28, 0xff, 0xff, 0xff, 0xff, 0x07, 0} // field 2, binary of 2^31-1 bytes
	for name, file := range map[string][]byte{
		"footer.parquet": append([]byte("PAR1PAR1"), 0xf0, 0xff, 0xff, 0xff, 'P', 'A', 'R', '1'),
		"string.parquet": append(append([]byte("PAR1"), footer...), byte(len(footer)), 0, 0, 0, 'P', 'A', 'R', '1'),
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, file, 0o644); err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := scanFOCUS(path, nil)
		runtime.ReadMemStats(&after)
		var fe *FileError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), "not a Parquet file") || !strings.Contains(err.Error(), "claims") {
			t.Errorf("%s: %v", name, err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 16<<20 {
			t.Errorf("%s: %d MiB allocated to refuse it", name, n>>20)
		}
	}
}
