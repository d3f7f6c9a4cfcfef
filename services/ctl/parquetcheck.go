package ctl

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go/format"
)

// The Parquet library allocates whatever sizes a file states before it
// reads what they describe: a footer's length, a page's compressed and
// uncompressed sizes, the length of a Thrift string or list. A damaged
// file can state gigabytes, and the library keeps what it allocated in
// pools that outlive the file. So before the library reads a file, the
// import walks its footer and every page header itself and refuses sizes
// the file cannot hold.

// parquetPageSizeMax bounds a page's uncompressed size. Writers cut pages
// at about 1 MiB (Arrow, Spark, parquet-go) and dictionaries at a few;
// the bound leaves ample room while keeping a damaged page from costing
// gigabytes.
const parquetPageSizeMax = 128 << 20

// thriftDepthMax bounds the nesting of Thrift structures walked: Parquet's
// footer nests a handful deep.
const thriftDepthMax = 32

// errParquetSize is wrapped by every size a file cannot hold.
var errParquetSize = errors.New("a size the file cannot hold")

// thriftWalker walks Thrift compact-protocol data, checking that each
// length it states fits in what is left, without allocating by it.
type thriftWalker struct {
	r    *bufio.Reader
	left int64 // bytes left in the section walked
	// uncompressed and compressed are, when walking a PageHeader, its
	// top-level i32 fields 2 (uncompressed_page_size) and 3
	// (compressed_page_size).
	uncompressed, compressed int64
}

func (w *thriftWalker) byte() (byte, error) {
	if w.left <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	b, err := w.r.ReadByte()
	if err != nil {
		return 0, noEOF(err)
	}
	w.left--
	return b, nil
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (w *thriftWalker) skip(n int64) error {
	if n < 0 || n > w.left {
		return fmt.Errorf("a Thrift value claims %d bytes with %d left: %w", n, w.left, errParquetSize)
	}
	if _, err := w.r.Discard(int(n)); err != nil {
		return noEOF(err)
	}
	w.left -= n
	return nil
}

func (w *thriftWalker) uvarint() (uint64, error) {
	var x uint64
	for shift := 0; shift < 64; shift += 7 {
		b, err := w.byte()
		if err != nil {
			return 0, err
		}
		x |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return x, nil
		}
	}
	return 0, errors.New("a Thrift varint is too long")
}

// Thrift compact types.
const (
	tcTrue = 1 + iota
	tcFalse
	tcByte
	tcI16
	tcI32
	tcI64
	tcDouble
	tcBinary
	tcList
	tcSet
	tcMap
	tcStruct
)

// value walks one value of type t.
func (w *thriftWalker) value(t byte, depth int) error {
	switch t {
	case tcTrue, tcFalse:
		return nil // in a struct, the type is the value
	case tcByte:
		_, err := w.byte()
		return err
	case tcI16, tcI32, tcI64:
		_, err := w.uvarint()
		return err
	case tcDouble:
		return w.skip(8)
	case tcBinary:
		n, err := w.uvarint()
		if err != nil {
			return err
		}
		if n > uint64(w.left) {
			return fmt.Errorf("a Thrift string claims %d bytes with %d left: %w", n, w.left, errParquetSize)
		}
		return w.skip(int64(n))
	case tcList, tcSet:
		b, err := w.byte()
		if err != nil {
			return err
		}
		n, et := uint64(b>>4), b&0x0f
		if n == 0x0f {
			if n, err = w.uvarint(); err != nil {
				return err
			}
		}
		// Every element takes a byte at least (a bool in a list is one).
		if n > uint64(w.left) {
			return fmt.Errorf("a Thrift list claims %d elements with %d bytes left: %w", n, w.left, errParquetSize)
		}
		for range n {
			if et == tcTrue || et == tcFalse {
				if _, err := w.byte(); err != nil {
					return err
				}
				continue
			}
			if err := w.value(et, depth+1); err != nil {
				return err
			}
		}
		return nil
	case tcMap:
		n, err := w.uvarint()
		if err != nil || n == 0 {
			return err
		}
		kv, err := w.byte()
		if err != nil {
			return err
		}
		if 2*n > uint64(w.left) {
			return fmt.Errorf("a Thrift map claims %d entries with %d bytes left: %w", n, w.left, errParquetSize)
		}
		for range n {
			for _, et := range []byte{kv >> 4, kv & 0x0f} {
				if et == tcTrue || et == tcFalse {
					if _, err := w.byte(); err != nil {
						return err
					}
				} else if err := w.value(et, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	case tcStruct:
		return w.structure(depth + 1)
	}
	return fmt.Errorf("an unknown Thrift type %d", t)
}

// structure walks a struct; at depth 1, it notes a PageHeader's sizes.
func (w *thriftWalker) structure(depth int) error {
	if depth > thriftDepthMax {
		return fmt.Errorf("Thrift structures nested more than %d deep", thriftDepthMax)
	}
	id := int64(0)
	for {
		b, err := w.byte()
		if err != nil {
			return err
		}
		if b == 0 {
			return nil // stop
		}
		t := b & 0x0f
		if delta := int64(b >> 4); delta != 0 {
			id += delta
		} else {
			v, err := w.uvarint() // a zigzag i16
			if err != nil {
				return err
			}
			id = int64(v>>1) ^ -int64(v&1)
		}
		if depth == 1 && t == tcI32 && (id == 2 || id == 3) {
			v, err := w.uvarint()
			if err != nil {
				return err
			}
			size := int64(int32(uint32(v>>1) ^ -uint32(v&1)))
			if id == 2 {
				w.uncompressed = size
			} else {
				w.compressed = size
			}
			continue
		}
		if err := w.value(t, depth); err != nil {
			return err
		}
	}
}

// checkParquetFooter checks the footer's length, the last thing a Parquet
// file says, against the file's size, and walks the footer, and returns
// its length.
func checkParquetFooter(r io.ReaderAt, size int64) (int64, error) {
	// "PAR1", the footer, its length (4 bytes) and "PAR1" again.
	const framing = 4 + 4 + 4
	if size < framing {
		return 0, fmt.Errorf("the file is %d bytes long, too short for a Parquet file", size)
	}
	var tail [8]byte
	if _, err := r.ReadAt(tail[:], size-8); err != nil {
		return 0, fmt.Errorf("reading the footer's length: %w", err)
	}
	if string(tail[4:]) != "PAR1" {
		return 0, fmt.Errorf("it ends with %q, not PAR1 (an encrypted footer is not read)", tail[4:])
	}
	n := int64(binary.LittleEndian.Uint32(tail[:4]))
	if n > size-framing {
		return 0, fmt.Errorf("its footer claims %d bytes, in a file of %d: %w", n, size, errParquetSize)
	}
	w := &thriftWalker{r: bufio.NewReader(io.NewSectionReader(r, size-8-n, n)), left: n}
	if err := w.structure(1); err != nil {
		return 0, fmt.Errorf("its footer: %w", err)
	}
	return n, nil
}

// checkParquetPages walks the page headers of every column chunk,
// checking each page lies within its chunk, and each chunk within the
// file's data, before the library allocates by them.
func checkParquetPages(r io.ReaderAt, size, footerLen int64, md *format.FileMetaData) error {
	dataEnd := size - 8 - footerLen
	// Page headers are small; a header with large statistics reads on
	// past the buffer.
	br := bufio.NewReaderSize(nil, 1024)
	for g, rg := range md.RowGroups {
		for c, cc := range rg.Columns {
			m := &cc.MetaData
			start := m.DataPageOffset
			if m.DictionaryPageOffset > 0 && m.DictionaryPageOffset < start {
				start = m.DictionaryPageOffset
			}
			where := fmt.Sprintf("row group %d, column %d", g, c)
			if start < 4 || m.TotalCompressedSize < 0 || start > dataEnd || m.TotalCompressedSize > dataEnd-start {
				return fmt.Errorf("%s claims bytes %d to %d of a file whose data ends at %d: %w", where, start, start+m.TotalCompressedSize, dataEnd, errParquetSize)
			}
			end := start + m.TotalCompressedSize
			for pos := start; pos < end; {
				// Each header is read from where it starts: the pages
				// between are skipped, not read.
				br.Reset(io.NewSectionReader(r, pos, end-pos))
				w := &thriftWalker{r: br, left: end - pos}
				if err := w.structure(1); err != nil {
					return fmt.Errorf("%s, the page header at byte %d: %w", where, pos, err)
				}
				pos = end - w.left
				switch {
				case w.compressed < 0 || w.compressed > end-pos:
					return fmt.Errorf("%s, the page at byte %d claims %d bytes, %d are left in its chunk: %w", where, pos, w.compressed, end-pos, errParquetSize)
				case w.uncompressed < 0 || w.uncompressed > parquetPageSizeMax:
					return fmt.Errorf("%s, the page at byte %d claims %d bytes uncompressed, more than the %d a page may hold: %w", where, pos, w.uncompressed, parquetPageSizeMax, errParquetSize)
				}
				pos += w.compressed
			}
		}
	}
	return nil
}
